// Worker thread of the layer unpacking pool (unpack.ts): each job comes with a MessagePort over
// which the main thread sends the layer's bytes when asked ({more}), then {end}, or {abort}
// when the download failed; the answer is {done: {diffId, size}} or {error}.
import { Readable } from 'node:stream';
import { parentPort, type MessagePort } from 'node:worker_threads';
import { unpackLayer } from './unpack.js';

interface Job { port: MessagePort; ingestPath: string; diffDir: string; keepInput?: boolean }

parentPort!.on('message', (job: Job) => {
  const { port } = job;
  const input = new Readable({ highWaterMark: 2 << 20, read() { port.postMessage({ more: true }); } });
  port.on('message', (m: { chunk?: ArrayBuffer; end?: true; abort?: string }) => {
    if (m.chunk) input.push(Buffer.from(m.chunk));
    else if (m.end) input.push(null);
    else if (m.abort !== undefined) input.destroy(new Error(m.abort));
  });
  unpackLayer(input, job.ingestPath, job.diffDir, true, !!job.keepInput).then(
    (done) => port.postMessage({ done }),
    (err: any) => port.postMessage({ error: { name: err?.constructor?.name ?? 'Error', message: String(err?.message ?? err), code: err?.code } }),
  ).finally(() => { input.destroy(); port.close(); });
});
