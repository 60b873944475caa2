// Fault injection: berthd is killed with SIGKILL at random moments while clients create, start,
// stop and remove containers and load, tag and remove images in parallel. After each kill the
// daemon must come back with every object whole or gone, running containers still running
// (live restore), and `berthd check` finding nothing wrong. Used by crash.test.ts (a few rounds)
// and scripts/bench/reliability (50 rounds).
import { spawn, type ChildProcess } from 'node:child_process';
import { BERTHD, type Daemon } from './harness.js';

export interface CrashRoundResult { round: number; problems: string[]; containers: number; running: number }

/** `berthd check` on the (stopped or killed) daemon's data-root and exec-root. */
export function runCheck(d: Daemon): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BERTHD, 'check', '--data-root', d.dataRoot, '--exec-root', d.execRoot]);
    let out = '';
    p.stdout.on('data', (b) => { out += b; });
    p.stderr.on('data', (b) => { out += b; });
    p.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

export async function crashRounds(d: Daemon, rounds: number, busyboxTar: string, log: (s: string) => void = () => {}): Promise<CrashRoundResult[]> {
  const results: CrashRoundResult[] = [];
  let n = 0;
  for (let round = 0; round < rounds; round++) {
    const clients = new Set<ChildProcess>();
    const cli = (args: string[]) => new Promise<void>((resolve) => {
      const p = spawn('docker', args, { env: { ...process.env, DOCKER_HOST: d.host }, stdio: 'ignore' });
      clients.add(p);
      p.on('close', () => { clients.delete(p); resolve(); });
      p.on('error', () => { clients.delete(p); resolve(); });
    });
    let stop = false;
    const worker = async (w: number) => {
      while (!stop) {
        const i = n++;
        switch ((i + w) % 9) {
          case 0: await cli(['run', '-d', '--name', `crash-${i}`, '--label', 'crash=1', 'busybox', 'sleep', '600']); break;
          case 1: await cli(['create', '--label', 'crash=1', 'busybox', 'true']); break;
          case 2: await cli(['rm', '-f', `crash-${i - 7}`]); break;
          case 3: await cli(['stop', '-t', '0', `crash-${i - 3}`]); break;
          case 4: await cli(['tag', 'busybox', `crash/tag:${i}`]); break;
          case 5: await cli(['rmi', `crash/tag:${i - 1}`]); break;
          case 6: await cli(i % 21 === 6 ? ['load', '-i', busyboxTar] : ['run', '--rm', 'busybox', 'true']); break;
          case 7: await cli(i % 2 ? ['volume', 'create', `crashvol-${i}`] : ['volume', 'rm', `crashvol-${i - 9}`]); break;
          case 8: await cli(i % 2 ? ['network', 'create', `crashnet-${i % 4}`] : ['network', 'rm', `crashnet-${(i + 1) % 4}`]); break;
        }
      }
    };
    const workers = [0, 1, 2, 3].map(worker);
    await new Promise((r) => setTimeout(r, 150 + Math.random() * 600));
    await d.kill();
    stop = true;
    await Promise.all(workers);
    for (const c of clients) c.kill('SIGKILL');

    const problems: string[] = [];
    await d.restart();
    const ps = await d.docker(['ps', '-aq', '--no-trunc']);
    if (ps.code !== 0) problems.push(`docker ps failed after restart: ${ps.stderr}`);
    const ids = ps.stdout.split('\n').filter(Boolean);
    if (new Set(ids).size !== ids.length) problems.push('a container is listed twice');
    let running = 0;
    if (ids.length) {
      const ins = await d.docker(['inspect', '--format', '{{.Id}} {{.State.Running}} {{.State.Pid}}', ...ids]);
      if (ins.code !== 0) problems.push(`inspect of listed containers failed: ${ins.stderr}`);
      for (const line of ins.stdout.split('\n').filter(Boolean)) {
        const [id, isRunning, pid] = line.split(' ');
        if (isRunning !== 'true') continue;
        running++;
        try { process.kill(Number(pid), 0); } catch { problems.push(`container ${id} says running but pid ${pid} is gone`); }
      }
    }
    const images = await d.docker(['images', '-q']);
    if (images.code !== 0) problems.push(`docker images failed: ${images.stderr}`);
    await d.stop({ keep: true });
    const check = await runCheck(d);
    if (check.code !== 0) problems.push(...check.out.trim().split('\n'));
    await d.restart();
    log(`round ${round + 1}: ${ids.length} containers, ${running} running, ${problems.length} problems`);
    results.push({ round, problems, containers: ids.length, running });
  }
  return results;
}
