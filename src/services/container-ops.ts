// Container operations beyond the lifecycle: pause/unpause, update, stats, top, commit, prune.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { ConflictError, InvalidParameterError, SystemError } from '../errors.js';
import type { ContainerRecord } from '../store/containers.js';
import type { ContainerService } from './containers.js';
import type { ImageService } from './images.js';
import { applyChanges } from './images.js';
import type { ContainerFs } from './container-fs.js';
import { sample, top } from './container-stats.js';
import { validateRestartPolicy } from './restart-policy.js';
import { treeSize } from './container-size.js';
import { rootfsPaths } from './rootfs.js';

function runtime(path: string, root: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => execFile(path, ['--root', root, ...args], { timeout: 30_000 }, (err, _o, stderr) => {
    if (err) reject(new SystemError(String(stderr || err.message).trim().split('\n').pop() ?? 'runtime failed')); else resolve();
  }));
}

const cgroupPathOf = (rec: ContainerRecord): string => `${rec.HostConfig.CgroupParent || '/berth'}/${rec.Id}`;

export class ContainerOps {
  constructor(private readonly containers: ContainerService, private readonly images: ImageService, private readonly fs: ContainerFs) {}

  private running(ref: string): ContainerRecord {
    const rec = this.containers.get(ref);
    if (!rec.State.Running) throw new ConflictError(`Container ${rec.Id} is not running`);
    return rec;
  }

  async pause(ref: string): Promise<void> {
    const rec = this.running(ref);
    if (rec.State.Paused) throw new ConflictError(`Container ${rec.Id} is already paused`);
    const rt = this.containers.runtimeFor(rec);
    await runtime(rt.path, rt.root, ['pause', rec.Id]);
    rec.State.Paused = true;
    rec.State.Status = 'paused';
    await this.containers.store.save(rec);
    this.containers.publishEvent(rec, 'pause');
  }

  async unpause(ref: string): Promise<void> {
    const rec = this.running(ref);
    if (!rec.State.Paused) throw new ConflictError(`Container ${rec.Id} is not paused`);
    const rt = this.containers.runtimeFor(rec);
    await runtime(rt.path, rt.root, ['resume', rec.Id]);
    rec.State.Paused = false;
    rec.State.Status = 'running';
    await this.containers.store.save(rec);
    this.containers.publishEvent(rec, 'unpause');
  }

  /** docker update: resources (applied live through the runtime) and the restart policy. */
  async update(ref: string, body: Record<string, any>): Promise<{ Warnings: string[] }> {
    const rec = this.containers.get(ref);
    const h = rec.HostConfig;
    if (body.RestartPolicy) {
      validateRestartPolicy(body.RestartPolicy);
      if (h.AutoRemove && !['', 'no'].includes(body.RestartPolicy.Name ?? '')) throw new InvalidParameterError("Restart policy cannot be updated because AutoRemove is enabled for the container");
    }
    const keys = ['Memory', 'MemorySwap', 'MemoryReservation', 'CpuShares', 'CpuQuota', 'CpuPeriod', 'NanoCpus', 'CpusetCpus', 'CpusetMems', 'PidsLimit', 'BlkioWeight', 'KernelMemory'] as const;
    const next: Record<string, any> = { ...h };
    for (const k of keys) if (body[k] !== undefined && body[k] !== null && !(body[k] === 0 && k !== 'PidsLimit')) next[k] = body[k];
    if (body.NanoCpus && (next.CpuQuota || next.CpuPeriod) && (body.CpuQuota || body.CpuPeriod)) throw new InvalidParameterError('Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set');
    if (next.Memory && next.MemorySwap > 0 && next.MemorySwap < next.Memory) {
      throw new InvalidParameterError('Minimum memoryswap limit should be larger than memory limit, see usage');
    }
    if (rec.State.Running) {
      const res: Record<string, any> = {};
      if (next.Memory) res.memory = { limit: next.Memory, ...(next.MemorySwap ? { swap: next.MemorySwap } : { swap: next.Memory * 2 }), ...(next.MemoryReservation ? { reservation: next.MemoryReservation } : {}) };
      const cpu: Record<string, any> = {};
      if (next.CpuShares) cpu.shares = next.CpuShares;
      if (next.NanoCpus) { cpu.period = 100000; cpu.quota = Math.round(next.NanoCpus / 1e9 * 100000); } else {
        if (next.CpuQuota) cpu.quota = next.CpuQuota;
        if (next.CpuPeriod) cpu.period = next.CpuPeriod;
      }
      if (next.CpusetCpus) cpu.cpus = next.CpusetCpus;
      if (next.CpusetMems) cpu.mems = next.CpusetMems;
      if (Object.keys(cpu).length) res.cpu = cpu;
      if (next.PidsLimit !== undefined && next.PidsLimit !== null) res.pids = { limit: next.PidsLimit > 0 ? next.PidsLimit : -1 };
      if (next.BlkioWeight) res.blockIO = { weight: next.BlkioWeight };
      const file = join(this.containers.stateDir(rec.Id), 'update.json');
      await writeFile(file, JSON.stringify(res));
      const rt = this.containers.runtimeFor(rec);
      await runtime(rt.path, rt.root, ['update', '--resources', file, rec.Id]).catch((e: Error) => {
        throw new InvalidParameterError(`Cannot update container ${rec.Id}: ${e.message}`);
      });
    }
    for (const k of keys) if (next[k] !== undefined) h[k] = next[k];
    if (body.RestartPolicy) h.RestartPolicy = { Name: body.RestartPolicy.Name || 'no', MaximumRetryCount: body.RestartPolicy.MaximumRetryCount ?? 0 };
    await this.containers.store.save(rec);
    this.containers.publishEvent(rec, 'update');
    return { Warnings: [] };
  }

  /** GET /containers/{id}/stats: one sample (one-shot), two a second apart (stream=false), or a stream. */
  async stats(ref: string, o: { stream: boolean; oneShot: boolean; signal: AbortSignal }): Promise<Readable | Record<string, any>> {
    const rec = this.containers.get(ref);
    let pre: Record<string, any> | null = null;
    const frame = async (): Promise<Record<string, any>> => {
      const cur = this.containers.get(rec.Id);
      const now = new Date().toISOString();
      const base = { read: now, preread: pre?.read ?? '0001-01-01T00:00:00Z', id: rec.Id, name: rec.Name, num_procs: 0 };
      if (!cur.State.Running) {
        return { ...base, cpu_stats: { cpu_usage: { total_usage: 0 }, throttling_data: {} }, precpu_stats: { cpu_usage: { total_usage: 0 }, throttling_data: {} }, memory_stats: {}, pids_stats: {}, blkio_stats: {}, storage_stats: {} };
      }
      const s = await sample(cgroupPathOf(cur), cur.State.Pid);
      const out = { ...base, ...s, precpu_stats: pre?.cpu_stats ?? { cpu_usage: { total_usage: 0 }, throttling_data: {} }, storage_stats: {} };
      pre = { read: now, cpu_stats: s.cpu_stats };
      return out;
    };
    if (!o.stream) {
      if (!o.oneShot && rec.State.Running) { await frame(); await new Promise((r) => setTimeout(r, 1000)); }
      return frame();
    }
    const out = new PassThrough();
    let timer: NodeJS.Timeout | undefined;
    const tick = async () => {
      try {
        const f = await frame();
        if (out.destroyed) return;
        out.write(JSON.stringify(f) + '\n');
        if (!this.containers.get(rec.Id).State.Running && f.read) { /* keep reporting zeros, as the Engine does */ }
      } catch { out.end(); return; }
      timer = setTimeout(tick, 1000);
    };
    const stop = () => { if (timer) clearTimeout(timer); if (!out.writableEnded) out.end(); };
    o.signal.addEventListener('abort', stop);
    out.on('close', stop);
    void tick();
    return out;
  }

  async top(ref: string, psArgs?: string): Promise<{ Titles: string[]; Processes: string[][] }> {
    const rec = this.running(ref);
    return top(cgroupPathOf(rec), psArgs || '-ef');
  }

  /** docker commit: the container's rw layer on top of its image, with the container's config. */
  async commit(ref: string, o: { repo?: string; tag?: string; comment?: string; author?: string; changes?: string[]; pause?: boolean; config?: Record<string, any> }): Promise<string> {
    const rec = this.containers.get(ref);
    const pause = (o.pause ?? true) && rec.State.Running && !rec.State.Paused;
    if (pause) await this.pause(rec.Id);
    try {
      const base = this.images.configOf(rec.Image);
      const baseImg = this.images.find(rec.Image);
      const layer = await this.images.addLayer(this.fs.layerTar(rec), baseImg.ChainIds.at(-1) ?? null);
      const now = new Date().toISOString();
      const config = applyChanges({ ...rec.Config, ...(o.config ?? {}) }, o.changes ?? []);
      delete config.Hostname; delete config.Domainname;
      const blob = {
        ...(base ?? {}), architecture: base?.architecture ?? 'amd64', os: base?.os ?? 'linux', created: now, config,
        container: rec.Id, container_config: rec.Config,
        ...(o.author ? { author: o.author } : {}), ...(o.comment ? { comment: o.comment } : {}),
        rootfs: { type: 'layers', diff_ids: [...(base?.rootfs?.diff_ids ?? []), layer.diffId] },
        history: [...(base?.history ?? []), { created: now, created_by: [rec.Path, ...rec.Args].join(' '), ...(o.author ? { author: o.author } : {}), ...(o.comment ? { comment: o.comment } : {}) }],
      };
      let tag: string[] = [];
      if (o.repo) tag = [o.tag ? `${o.repo}:${o.tag}` : o.repo];
      // the container's image is the new image's parent, as the Engine records it
      const img = await this.images.addImage(Buffer.from(JSON.stringify(blob)), tag, baseImg.Id);
      this.containers.publishEvent(rec, 'commit', { comment: o.comment ?? '' });
      return img.Id;
    } finally {
      if (pause) await this.unpause(rec.Id).catch(() => {});
    }
  }

  /** docker container prune: stopped containers (filters until, label, label!). */
  async prune(filters: Record<string, string[]> = {}): Promise<{ ContainersDeleted: string[]; SpaceReclaimed: number }> {
    for (const k of Object.keys(filters)) if (!['until', 'label', 'label!'].includes(k)) throw new InvalidParameterError(`invalid filter '${k}'`);
    const until = filters.until?.[0] ? untilMs(filters.until[0]) : undefined;
    const deleted: string[] = [];
    let space = 0;
    for (const rec of this.containers.all()) {
      if (rec.State.Running || rec.State.Restarting) continue;
      const labels = (rec.Config.Labels ?? {}) as Record<string, string>;
      if (filters.label?.length && !filters.label.every((l) => labelMatches(labels, l))) continue;
      if (filters['label!']?.length && filters['label!'].some((l) => labelMatches(labels, l))) continue;
      if (until !== undefined && Date.parse(rec.Created) >= until) continue;
      const size = await treeSize(rootfsPaths(this.containers.containerDir(rec.Id)).upper);
      await this.containers.remove(rec.Id).then(() => { deleted.push(rec.Id); space += size; }, () => {});
    }
    return { ContainersDeleted: deleted, SpaceReclaimed: space };
  }
}

function untilMs(v: string): number {
  const rel = /^(\d+)(s|m|h)$/.exec(v);
  if (rel) return Date.now() - Number(rel[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[rel[2] as 's' | 'm' | 'h'];
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new InvalidParameterError(`invalid until filter: ${v}`);
  return t;
}

function labelMatches(labels: Record<string, string>, f: string): boolean {
  const i = f.indexOf('=');
  return i < 0 ? f in labels : labels[f.slice(0, i)] === f.slice(i + 1);
}
