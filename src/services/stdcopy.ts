// Docker's multiplexed stream framing: [stream, 0, 0, 0, size u32 BE] + payload.
// stream: 0 stdin, 1 stdout, 2 stderr, 3 system error.
export const STDIN = 0, STDOUT = 1, STDERR = 2, SYSERR = 3;

export function frame(stream: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}
