// Worker thread of the layer unpacking pool (unpack.ts). Each job comes with a MessagePort and
// either a download to make (registry/blob-download.ts; progress goes back as {bytes} and
// {retry}) or a stream the main thread sends when asked ({more}), then {end}; {abort} stops
// either. The answer is {done: Unpacked} or {error}.
import { Readable } from 'node:stream';
import { parentPort, type MessagePort } from 'node:worker_threads';
import { downloadBlob, type BlobDownload } from '../services/registry/blob-download.js';
import { unpackLayer } from './unpack.js';

interface Job { port: MessagePort; ingestPath: string; diffDir: string; keepInput?: boolean; download?: BlobDownload }

/** Least time between two byte counts sent back: the main thread reports ten a second at most. */
const BYTES_MS = 100;

parentPort!.on('message', (job: Job) => {
  const { port } = job;
  const stop = new AbortController();
  let input: Readable;
  if (job.download) {
    let last = 0;
    input = downloadBlob(job.download, stop.signal, {
      bytes: (n) => {
        if (n !== job.download!.size && Date.now() - last < BYTES_MS) return;
        last = Date.now();
        port.postMessage({ bytes: n });
      },
      retry: (seconds) => port.postMessage({ retry: seconds }),
    });
  } else {
    input = new Readable({ highWaterMark: 2 << 20, read() { port.postMessage({ more: true }); } });
  }
  port.on('message', (m: { chunk?: ArrayBuffer; end?: true; abort?: string }) => {
    if (m.chunk) input.push(Buffer.from(m.chunk));
    else if (m.end) input.push(null);
    else if (m.abort !== undefined) { const e = new Error(m.abort); stop.abort(e); input.destroy(e); }
  });
  unpackLayer(input, job.ingestPath, job.diffDir, true, !!job.keepInput).then(
    (done) => port.postMessage({ done }),
    (err: any) => port.postMessage({ error: { name: err?.constructor?.name ?? 'Error', message: String(err?.message ?? err), code: err?.code, status: err?.status } }),
  ).finally(() => { input.destroy(); port.close(); });
});

// loaded: the pool may send jobs (a worker that ends before this never got one)
parentPort!.postMessage({ ready: true });
