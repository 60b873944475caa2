// Load: N containers created and started by C concurrent CLI clients, then ps, stats, logs and
// removal of all of them; reports lost/duplicated containers, failed calls and daemon memory.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Daemon } from './harness.js';

export interface LoadResult {
  containers: number; clients: number; failedCalls: string[]; lost: number; duplicated: number;
  rssIdleMiB: number; rssPeakMiB: number; rssAfterMiB: number; seconds: number;
}

const rssMiB = (pid: number): number => {
  try { return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024; } catch { return 0; }
};

function cli(d: Daemon, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn('docker', args, { env: { ...process.env, DOCKER_HOST: d.host } });
    let stdout = '', stderr = '';
    p.stdout.on('data', (b) => { stdout += b; });
    p.stderr.on('data', (b) => { stderr += b; });
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

async function pool<T>(items: T[], width: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => { while (next < items.length) await fn(items[next++]!); }));
}

export async function loadRun(d: Daemon, count: number, clients: number): Promise<LoadResult> {
  const t0 = Date.now();
  const failed: string[] = [];
  const fail = (what: string, r: { code: number; stderr: string }) => { if (r.code !== 0) failed.push(`${what}: ${r.stderr.trim().slice(0, 200)}`); };
  const rssIdle = rssMiB(d.pid);
  let peak = rssIdle;
  const sampler = setInterval(() => { peak = Math.max(peak, rssMiB(d.pid)); }, 100);
  const names = Array.from({ length: count }, (_, i) => `load-${i}`);
  try {
    await pool(names, clients, async (n) => fail(`run ${n}`, await cli(d, ['run', '-d', '--name', n, '--label', 'load=1', 'busybox', 'sh', '-c', `echo ${n}; exec sleep 600`])));
    const ps = await cli(d, ['ps', '--filter', 'label=load=1', '--format', '{{.Names}}']);
    fail('ps', ps);
    const listed = ps.stdout.split('\n').filter(Boolean);
    const lost = names.filter((n) => !listed.includes(n)).length;
    const duplicated = listed.length - new Set(listed).size;
    fail('stats --no-stream', await cli(d, ['stats', '--no-stream', '--format', '{{.Name}}', ...names.slice(0, 20)]));
    await pool(names, clients, async (n) => {
      const r = await cli(d, ['logs', n]);
      fail(`logs ${n}`, r);
      if (r.code === 0 && r.stdout !== `${n}\n`) failed.push(`logs ${n}: got ${JSON.stringify(r.stdout.slice(0, 50))}`);
    });
    await pool(names, clients, async (n) => fail(`rm ${n}`, await cli(d, ['rm', '-f', n])));
    const left = await cli(d, ['ps', '-aq', '--filter', 'label=load=1']);
    if (left.stdout.trim()) failed.push(`containers left after removal: ${left.stdout.trim().split('\n').length}`);
    // let the heap settle before the after-figure
    await new Promise((r) => setTimeout(r, 2000));
    return { containers: count, clients, failedCalls: failed, lost, duplicated, rssIdleMiB: rssIdle, rssPeakMiB: peak, rssAfterMiB: rssMiB(d.pid), seconds: (Date.now() - t0) / 1000 };
  } finally {
    clearInterval(sampler);
  }
}
