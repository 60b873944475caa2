// Benchmark: berthd start-up (spawn -> first OK /_ping, median of 10) and request throughput of
// /_ping and /info over the UNIX socket (undici, 16 connections, 3 s each). Needs a built dist/.
//   scripts/bench/startup [--runs 10] [--seconds 3] [--connections 16]
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BERTHD = join(ROOT, 'dist', 'src', 'cli', 'berthd.js');
const { values: o } = parseArgs({ options: { runs: { type: 'string', default: '10' }, seconds: { type: 'string', default: '3' }, connections: { type: 'string', default: '16' } } });

const dir = await mkdtemp('/tmp/bb-');
const socket = join(dir, 'api.sock');
await writeFile(join(dir, 'daemon.json'), '{}');
const args = [BERTHD, '-H', `unix://${socket}`, '--data-root', join(dir, 'data'), '--exec-root', join(dir, 'exec'), '--pidfile', join(dir, 'pid'), '--config-file', join(dir, 'daemon.json'), '--log-level', 'warn'];

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };

async function startOnce() {
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  const pool = new Pool('http://localhost', { socketPath: socket, connections: 1 });
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`berthd exited with ${child.exitCode}`);
      try {
        const r = await pool.request({ path: '/_ping', method: 'GET' });
        const body = await r.body.text();
        if (r.statusCode === 200 && body === 'OK') return { ms: performance.now() - t0, child };
      } catch { /* not listening yet */ }
      await new Promise((r) => setTimeout(r, 2));
    }
  } finally {
    await pool.close();
  }
}

async function stop(child) {
  child.kill('SIGTERM');
  if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
}

async function throughput(path, seconds, connections) {
  const pool = new Pool('http://localhost', { socketPath: socket, connections, pipelining: 1 });
  const end = performance.now() + seconds * 1000;
  let n = 0, errors = 0;
  await Promise.all(Array.from({ length: connections }, async () => {
    while (performance.now() < end) {
      const r = await pool.request({ path, method: 'GET' });
      await r.body.dump();
      if (r.statusCode === 200) n++; else errors++;
    }
  }));
  await pool.close();
  return { rps: n / seconds, errors };
}

try {
  const times = [];
  for (let i = 0; i < Number(o.runs); i++) {
    const { ms, child } = await startOnce();
    times.push(ms);
    await stop(child);
  }
  console.log(`startup to first OK /_ping: median ${median(times).toFixed(0)} ms (min ${Math.min(...times).toFixed(0)}, max ${Math.max(...times).toFixed(0)}, n=${times.length})`);
  const { child } = await startOnce();
  try {
    for (const path of ['/_ping', '/v1.50/info']) {
      await throughput(path, 0.5, Number(o.connections)); // warm-up
      const r = await throughput(path, Number(o.seconds), Number(o.connections));
      console.log(`GET ${path}: ${r.rps.toFixed(0)} req/s (${o.connections} connections, ${o.seconds} s${r.errors ? `, ${r.errors} errors` : ''})`);
    }
  } finally {
    await stop(child);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
