// docker stats and docker top: numbers read from the container's cgroup (v1 controllers, or the
// unified v2 hierarchy) and /proc, in the Engine's JSON shapes.
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { InvalidParameterError } from '../errors.js';

const CG = '/sys/fs/cgroup';
const NS_PER_TICK = 1e9 / 100; // USER_HZ is 100 on Linux

const read = (p: string): Promise<string | null> => readFile(p, 'utf8').then((s) => s.trim(), () => null);
const num = async (p: string): Promise<number> => Number(await read(p)) || 0;

function kv(text: string | null): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of (text ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined) out[k] = Number(v);
  }
  return out;
}

/** True when the host runs the unified (v2-only) hierarchy. */
export const isCgroupV2 = (): boolean => existsSync(join(CG, 'cgroup.controllers'));

/** Host CPU time in ns from /proc/stat (what the Engine reports as system_cpu_usage). */
async function systemCpuNs(): Promise<number> {
  const line = ((await read('/proc/stat')) ?? '').split('\n')[0] ?? '';
  return line.split(/\s+/).slice(1, 8).reduce((s, v) => s + Number(v || 0), 0) * NS_PER_TICK;
}

async function networks(pid: number): Promise<Record<string, Record<string, number>> | undefined> {
  const text = pid ? await read(`/proc/${pid}/net/dev`) : null;
  if (!text) return undefined;
  const out: Record<string, Record<string, number>> = {};
  for (const line of text.split('\n').slice(2)) {
    const [name, rest] = line.split(':');
    if (!rest || name!.trim() === 'lo') continue;
    const f = rest.trim().split(/\s+/).map(Number);
    out[name!.trim()] = {
      rx_bytes: f[0]!, rx_packets: f[1]!, rx_errors: f[2]!, rx_dropped: f[3]!,
      tx_bytes: f[8]!, tx_packets: f[9]!, tx_errors: f[10]!, tx_dropped: f[11]!,
    };
  }
  return out;
}

/** One sample of a container's numbers: cgroupPath as the spec set it ("/berth/<id>"). */
export async function sample(cgroupPath: string, pid: number): Promise<Record<string, any>> {
  const onlineCpus = cpus().length;
  const systemCpu = await systemCpuNs();
  if (isCgroupV2()) {
    const dir = join(CG, cgroupPath);
    const cpu = kv(await read(join(dir, 'cpu.stat')));
    const mem = kv(await read(join(dir, 'memory.stat')));
    const maxRaw = await read(join(dir, 'memory.max'));
    const io = await read(join(dir, 'io.stat'));
    const ioEntries: any[] = [];
    for (const line of (io ?? '').split('\n')) {
      const [dev, ...pairs] = line.trim().split(/\s+/);
      if (!dev) continue;
      const [major, minor] = dev.split(':').map(Number);
      const m = Object.fromEntries(pairs.map((p) => p.split('=')).map(([k, v]) => [k, Number(v)]));
      ioEntries.push({ major, minor, op: 'read', value: m.rbytes ?? 0 }, { major, minor, op: 'write', value: m.wbytes ?? 0 });
    }
    return {
      cpu_stats: { cpu_usage: { total_usage: (cpu.usage_usec ?? 0) * 1000, usage_in_kernelmode: (cpu.system_usec ?? 0) * 1000, usage_in_usermode: (cpu.user_usec ?? 0) * 1000 },
        system_cpu_usage: systemCpu, online_cpus: onlineCpus, throttling_data: { periods: cpu.nr_periods ?? 0, throttled_periods: cpu.nr_throttled ?? 0, throttled_time: (cpu.throttled_usec ?? 0) * 1000 } },
      memory_stats: { usage: await num(join(dir, 'memory.current')), limit: maxRaw && maxRaw !== 'max' ? Number(maxRaw) : hostMemory(), stats: mem },
      pids_stats: { current: await num(join(dir, 'pids.current')), limit: Number(await read(join(dir, 'pids.max'))) || 0 },
      blkio_stats: { io_service_bytes_recursive: ioEntries, io_serviced_recursive: null, io_queue_recursive: null, io_service_time_recursive: null, io_wait_time_recursive: null, io_merged_recursive: null, io_time_recursive: null, sectors_recursive: null },
      networks: await networks(pid),
    };
  }
  const cg = (ctrl: string) => join(CG, ctrl, cgroupPath);
  const percpu = ((await read(join(cg('cpuacct'), 'cpuacct.usage_percpu'))) ?? '').split(/\s+/).filter(Boolean).map(Number);
  const acct = kv(await read(join(cg('cpuacct'), 'cpuacct.stat')));
  const throttle = kv(await read(join(cg('cpu'), 'cpu.stat')));
  const memStat = kv(await read(join(cg('memory'), 'memory.stat')));
  const limit = await num(join(cg('memory'), 'memory.limit_in_bytes'));
  const blk = ((await read(join(cg('blkio'), 'blkio.throttle.io_service_bytes_recursive'))) ?? '').split('\n')
    .map((l) => l.split(/\s+/)).filter((f) => f.length === 3 && f[0]!.includes(':'))
    .map(([dev, op, v]) => ({ major: Number(dev!.split(':')[0]), minor: Number(dev!.split(':')[1]), op: op!.toLowerCase(), value: Number(v) }));
  const pidsMax = await read(join(cg('pids'), 'pids.max'));
  return {
    cpu_stats: {
      cpu_usage: { total_usage: await num(join(cg('cpuacct'), 'cpuacct.usage')), percpu_usage: percpu,
        usage_in_kernelmode: (acct.system ?? 0) * NS_PER_TICK, usage_in_usermode: (acct.user ?? 0) * NS_PER_TICK },
      system_cpu_usage: systemCpu, online_cpus: onlineCpus,
      throttling_data: { periods: throttle.nr_periods ?? 0, throttled_periods: throttle.nr_throttled ?? 0, throttled_time: throttle.throttled_time ?? 0 },
    },
    memory_stats: { usage: await num(join(cg('memory'), 'memory.usage_in_bytes')), max_usage: await num(join(cg('memory'), 'memory.max_usage_in_bytes')),
      failcnt: await num(join(cg('memory'), 'memory.failcnt')), limit: Math.min(limit || Infinity, hostMemory()), stats: memStat },
    pids_stats: { current: await num(join(cg('pids'), 'pids.current')), ...(pidsMax && pidsMax !== 'max' ? { limit: Number(pidsMax) } : {}) },
    blkio_stats: { io_service_bytes_recursive: blk, io_serviced_recursive: null, io_queue_recursive: null, io_service_time_recursive: null, io_wait_time_recursive: null, io_merged_recursive: null, io_time_recursive: null, sectors_recursive: null },
    networks: await networks(pid),
  };
}

function hostMemory(): number {
  const m = /MemTotal:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Processes of the container (cgroup.procs), in `ps` columns as the Engine's top returns them. */
export async function top(cgroupPath: string, psArgs = '-ef'): Promise<{ Titles: string[]; Processes: string[][] }> {
  if (/[;&|`$<>]/.test(psArgs)) throw new InvalidParameterError(`invalid ps arguments: ${psArgs}`);
  const procsFile = isCgroupV2() ? join(CG, cgroupPath, 'cgroup.procs') : join(CG, 'pids', cgroupPath, 'cgroup.procs');
  const pids = new Set(((await read(procsFile)) ?? '').split('\n').filter(Boolean));
  const out = await new Promise<string>((resolve, reject) => {
    execFile('ps', psArgs.split(/\s+/).filter(Boolean), { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new InvalidParameterError(`Error running ps: ${String(stderr || err.message).trim()}`)); else resolve(stdout);
    });
  });
  const lines = out.split('\n').filter(Boolean);
  const titles = lines[0]!.trim().split(/\s+/);
  const pidCol = titles.indexOf('PID');
  if (pidCol < 0) throw new InvalidParameterError(`Couldn't find PID field in ps output`);
  const processes: string[][] = [];
  for (const line of lines.slice(1)) {
    const f = line.trim().split(/\s+/);
    if (!pids.has(f[pidCol]!)) continue;
    // the last column (the command) keeps its spaces
    processes.push([...f.slice(0, titles.length - 1), f.slice(titles.length - 1).join(' ')]);
  }
  return { Titles: titles, Processes: processes };
}
