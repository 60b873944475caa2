// The classic builder behind POST /build: runs a Dockerfile's stages step by step, each step
// an image (RUN in a real container whose rw layer is committed; COPY/ADD as a layer made from
// the context; the rest as config-only steps), with a step cache keyed by the parent image,
// the instruction and (for COPY/ADD) the content of its sources.
import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { createReadStream, promises as fsp } from 'node:fs';
import { join, posix } from 'node:path';
import { promisify } from 'node:util';
import { Transform, type Readable } from 'node:stream';
import dockerignore, { type Ignore } from '@balena/dockerignore';

// the package is CommonJS with a default export; both shapes are handled
const ignore = ((dockerignore as any).default ?? dockerignore) as (o?: object) => Ignore;
import { InvalidParameterError, NotFoundError } from '../../errors.js';
import { extractLayer, maybeDecompress } from '../../oci/tar-extract.js';
import { tarTree } from '../../oci/tar-create.js';
import { shortId } from '../../oci/image.js';
import { parseHealthcheck } from '../images.js';
import type { ImageService } from '../images.js';
import type { ContainerService } from '../containers.js';
import type { ContainerFs } from '../container-fs.js';
import { readLogs } from '../logs.js';
import { expand, keyValues, parseDockerfile, words, type Instruction } from './dockerfile.js';

const run = promisify(execFile);
const DEFAULT_SHELL = ['/bin/sh', '-c'];
const PROXY_ARGS = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy'];

export interface BuildOptions {
  dockerfile: string; tags: string[]; buildArgs: Record<string, string>; labels: Record<string, string>;
  target?: string; noCache: boolean; rm: boolean; forceRm: boolean; quiet: boolean; networkMode: string;
  platform?: string; extraHosts: string[]; shmSize?: number; memory?: number; cpuShares?: number;
  /** pull=1: fetch the base images again from their registry first. */
  pull?: (ref: string) => Promise<void>;
}

export type Emit = (m: Record<string, unknown>) => void;

interface State {
  imageId: string;          // '' for scratch
  config: Record<string, any>;
  diffIds: string[];
  history: Array<Record<string, any>>;
  chain: string | null;
  arch: string; os: string;
  args: Record<string, string>;   // ARGs in scope (with values)
  name?: string;
}

class BuildError extends InvalidParameterError {}

export class Builder {
  private readonly cacheDir: string;
  constructor(private readonly images: ImageService, private readonly containers: ContainerService, private readonly fs: ContainerFs, dataRoot: string) {
    this.cacheDir = join(dataRoot, 'build-cache');
  }

  async build(context: Readable, o: BuildOptions, emit: Emit): Promise<string> {
    const dir = join(this.cacheDir, '..', 'tmp', `build-${randomBytes(6).toString('hex')}`);
    const ctx = join(dir, 'context');
    await fsp.mkdir(ctx, { recursive: true, mode: 0o700 });
    await fsp.mkdir(this.cacheDir, { recursive: true, mode: 0o700 });
    const out = (s: string) => { if (!o.quiet) emit({ stream: s }); };
    const created: string[] = [];
    try {
      // the CLI's context for `-f -` ends without padding or tar's two zero blocks: complete the last block and add them
      let seen = 0;
      const padded = maybeDecompress(context).pipe(new Transform({
        transform(chunk, _e, cb) { seen += chunk.length; cb(null, chunk); },
        flush(cb) { cb(null, Buffer.alloc((512 - (seen % 512)) % 512 + 1024)); },
      }));
      await extractLayer(padded, ctx, { whiteouts: false });
      const dfName = posix.normalize(o.dockerfile || 'Dockerfile').replace(/^\/+/, '');
      if (dfName.startsWith('..')) throw new BuildError('the Dockerfile must be inside the build context');
      const dfText = await fsp.readFile(join(ctx, dfName), 'utf8').catch(() => { throw new BuildError(`Cannot locate specified Dockerfile: ${o.dockerfile || 'Dockerfile'}`); });
      const ignoreText = await fsp.readFile(join(ctx, '.dockerignore'), 'utf8').catch(() => '');
      const ig = ignore().add(ignoreText.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')));
      const df = parseDockerfile(dfText);
      for (const w of df.warnings) out(`[WARNING]: ${w}\n`);

      // stages, and which of them the target needs
      const stages: Array<{ from: Instruction; steps: Instruction[]; name?: string }> = [];
      const globalArgs: Instruction[] = [];
      for (const ins of df.instructions) {
        if (ins.cmd === 'FROM') stages.push({ from: ins, steps: [], name: /\s+AS\s+(\S+)\s*$/i.exec(ins.rest)?.[1]?.toLowerCase() });
        else if (!stages.length) {
          if (ins.cmd !== 'ARG') throw new BuildError(`dockerfile parse error on line ${ins.line}: no build stage in current context`);
          globalArgs.push(ins);
        } else stages.at(-1)!.steps.push(ins);
      }
      if (!stages.length) throw new BuildError('the Dockerfile (Dockerfile) cannot be empty');
      let last = stages.length - 1;
      if (o.target) {
        last = stages.findIndex((s) => s.name === o.target!.toLowerCase());
        if (last < 0) throw new BuildError(`failed to reach build target ${o.target} in Dockerfile`);
      }
      // only the stages the target needs (FROM <stage>, COPY --from=<stage>), in file order
      const needed = new Set<number>();
      const need = (i: number): void => {
        if (needed.has(i)) return;
        needed.add(i);
        const refs = [words(stages[i]!.from.rest)[0] ?? '', ...stages[i]!.steps.map((s) => s.flags.from).filter((f): f is string => !!f)];
        for (const r of refs) {
          const j = stages.findIndex((st, k) => k < i && (st.name === r.toLowerCase() || String(k) === r));
          if (j >= 0) need(j);
        }
      };
      need(last);
      const used = new Set(Object.keys(o.buildArgs));
      const metaArgs: Record<string, string> = {};
      for (const a of globalArgs) for (const [k, v] of argDecls(a.rest)) { used.add(k); metaArgs[k] = o.buildArgs[k] ?? (v !== undefined ? expand(v, metaArgs) : ''); }

      const total = stages.reduce((n, s, i) => n + (needed.has(i) ? 1 + s.steps.length : 0), 0) + globalArgs.length;
      let stepNo = 0;
      const step = (ins: Instruction) => out(`Step ${++stepNo}/${total} : ${ins.original}\n`);
      for (const a of globalArgs) step(a);

      const results: State[] = [];
      for (let si = 0; si <= last; si++) {
        if (!needed.has(si)) continue;
        const stage = stages[si]!;
        step(stage.from);
        const fromWords = words(stage.from.rest);
        const baseRef = expand(fromWords[0] ?? '', metaArgs);
        let state: State;
        const prev = stages.slice(0, si).findIndex((s) => s.name === baseRef.toLowerCase());
        if (prev >= 0) state = clone(results[prev]!);
        else if (baseRef === 'scratch') state = { imageId: '', config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] }, diffIds: [], history: [], chain: null, arch: 'amd64', os: 'linux', args: {} };
        else {
          if (c_pull(o) && /^[^/]+[.:][^/]*\//.test(baseRef)) await o.pull!(baseRef); // images named with a registry
          state = this.fromImage(baseRef);
        }
        // the predefined proxy ARGs reach RUN without an ARG line, as on the Engine
        state.args = Object.fromEntries(PROXY_ARGS.filter((k) => o.buildArgs[k] !== undefined).map((k) => [k, o.buildArgs[k]!]));
        state.name = stage.name;
        out(` ---> ${state.imageId ? shortId(state.imageId) : 'scratch'}\n`);
        // ONBUILD triggers of the base image run first
        const triggers = (state.config.OnBuild ?? []) as string[];
        state.config.OnBuild = null;
        const steps = [...parseDockerfile(triggers.join('\n')).instructions, ...stage.steps];
        for (const ins of steps) {
          if (stage.steps.includes(ins)) step(ins); else out(`# Executing ${triggers.length} build trigger${triggers.length === 1 ? '' : 's'}\n`);
          state = await this.step(state, ins, { ctx, ig, o, out, results, stages, metaArgs, used, created, dir, escape: df.escape });
          out(` ---> ${shortId(state.imageId)}\n`);
        }
        results[si] = state;
      }
      const finalState = results[last]!;
      if (!finalState.imageId) throw new BuildError('no image was generated. Is your Dockerfile empty?');
      const unused = Object.keys(o.buildArgs).filter((k) => !used.has(k) && !PROXY_ARGS.includes(k));
      if (unused.length) out(`[Warning] One or more build-args [${unused.join(' ')}] were not consumed\n`);
      let id = finalState.imageId;
      if (Object.keys(o.labels).length) {
        id = (await this.commitConfig({ ...finalState, config: { ...finalState.config, Labels: { ...(finalState.config.Labels ?? {}), ...o.labels } } }, 'LABEL', true)).imageId;
      }
      emit({ aux: { ID: id } });
      out(`Successfully built ${shortId(id)}\n`);
      for (const t of o.tags) {
        const [repo, tag] = splitTag(t);
        await this.images.tag(id, repo, tag);
        out(`Successfully tagged ${repo}:${tag}\n`);
      }
      if (o.quiet) emit({ stream: `${id}\n` });
      return id;
    } finally {
      await fsp.rm(dir, { recursive: true, force: true }).catch(() => {});
    }
  }

  /** POST /build/prune: the step cache index (the step images go with docker image prune). */
  async prune(): Promise<{ CachesDeleted: string[]; SpaceReclaimed: number }> {
    const names = await fsp.readdir(this.cacheDir).catch(() => [] as string[]);
    for (const n of names) await fsp.rm(join(this.cacheDir, n), { force: true });
    return { CachesDeleted: names, SpaceReclaimed: 0 };
  }

  private fromImage(ref: string): State {
    let img;
    try { img = this.images.find(ref); } catch { throw new NotFoundError(`pull access denied for ${ref.replace(/:.*$/, '')}, repository does not exist or may require 'docker login': image not found locally (berth's builder does not pull: docker pull it first)`); }
    const cfg = this.images.configOf(img.Id) ?? {} as any;
    return {
      imageId: img.Id, config: structuredClone(cfg.config ?? {}), diffIds: [...(cfg.rootfs?.diff_ids ?? [])],
      history: [...(cfg.history ?? [])], chain: img.ChainIds.at(-1) ?? null, arch: cfg.architecture ?? 'amd64', os: cfg.os ?? 'linux', args: {},
    };
  }

  private async cacheGet(key: string): Promise<string | null> {
    const raw = (await fsp.readFile(join(this.cacheDir, key), 'utf8').catch(() => '')).trim();
    let id = raw;
    try { id = JSON.parse(raw).id; } catch { /* an older plain entry */ }
    if (!id) return null;
    try { return this.images.find(id).Id; } catch { return null; }
  }

  private async cachePut(key: string, id: string, description = ''): Promise<void> {
    await fsp.writeFile(join(this.cacheDir, key), JSON.stringify({ id, description, created: new Date().toISOString() }));
  }

  /** /system/df's BuildCache: one record per cached step, sized by the layer it added. */
  async usage(): Promise<Array<Record<string, unknown>>> {
    const out: Array<Record<string, unknown>> = [];
    for (const key of await fsp.readdir(this.cacheDir).catch(() => [] as string[])) {
      let e: { id: string; description?: string; created?: string };
      try { e = JSON.parse(await fsp.readFile(join(this.cacheDir, key), 'utf8')); } catch { continue; }
      let img;
      try { img = this.images.find(e.id); } catch { continue; }
      const parent = img.Parent ? (() => { try { return this.images.find(img.Parent); } catch { return undefined; } })() : undefined;
      out.push({
        ID: key.slice(0, 25), Parents: parent ? [parent.Id] : null, Type: 'regular', Description: e.description ?? '',
        InUse: false, Shared: false, Size: Math.max(0, img.Size - (parent?.Size ?? 0)), CreatedAt: e.created ?? img.Created,
        LastUsedAt: e.created ?? img.Created, UsageCount: 1,
      });
    }
    return out;
  }

  private stateOf(id: string, prev: State): State {
    const cfg = this.images.configOf(id)!;
    return { ...prev, imageId: id, config: structuredClone(cfg.config ?? {}), diffIds: [...cfg.rootfs.diff_ids], history: [...(cfg.history ?? [])], chain: this.images.find(id).ChainIds.at(-1) ?? null };
  }

  /** A config-only step (ENV, CMD, ...): an image with an empty-layer history entry. */
  private async commitConfig(s: State, createdBy: string, emptyLayer: boolean, diffId?: string): Promise<State> {
    const now = new Date().toISOString();
    const diffIds = diffId ? [...s.diffIds, diffId] : s.diffIds;
    const blob = {
      architecture: s.arch, os: s.os, created: now, config: s.config,
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: [...s.history, { created: now, created_by: createdBy, ...(emptyLayer ? { empty_layer: true } : {}) }],
    };
    const img = await this.images.addImage(Buffer.from(JSON.stringify(blob)), [], s.imageId);
    return { ...s, imageId: img.Id, diffIds, history: blob.history, chain: img.ChainIds.at(-1) ?? null };
  }

  private async step(s: State, ins: Instruction, c: StepContext): Promise<State> {
    const env = { ...envMap(s.config.Env), ...s.args };
    const x = (v: string) => expand(v, env, c.escape);
    const cmdKey = `${ins.cmd} ${JSON.stringify(ins.flags)} ${ins.rest} ${JSON.stringify(ins.heredocs)} ${JSON.stringify(s.args)}`;
    const nop = (text: string) => `/bin/sh -c #(nop) ${text}`;
    const cached = async (key: string, make: () => Promise<State>): Promise<State> => {
      const k = createHash('sha256').update(`${s.imageId}\n${key}`).digest('hex');
      if (!c.o.noCache) {
        const hit = await this.cacheGet(k);
        if (hit) { c.out(' ---> Using cache\n'); return { ...this.stateOf(hit, s), args: s.args, name: s.name }; }
      }
      const next = await make();
      await this.cachePut(k, next.imageId, ins.original);
      return { ...next, args: s.args, name: s.name };
    };
    const meta = (mutate: (cfg: Record<string, any>) => void, text: string) => cached(cmdKey, async () => {
      const cfg = structuredClone(s.config);
      mutate(cfg);
      return this.commitConfig({ ...s, config: cfg }, nop(text), true);
    });

    switch (ins.cmd) {
      case 'ARG': {
        const args = { ...s.args };
        for (const [k, v] of argDecls(ins.rest)) {
          c.used.add(k);
          args[k] = c.o.buildArgs[k] ?? (v !== undefined ? x(v) : c.metaArgs[k] ?? '');
        }
        const next = { ...s, args };
        const done = await cached(`ARG ${JSON.stringify(args)}`, () => this.commitConfig(next, nop(`ARG ${ins.rest}`), true));
        return { ...done, args };
      }
      case 'ENV': return meta((cfg) => {
        const e = envMap(cfg.Env);
        for (const [k, v] of keyValues(ins.rest, c.escape)) e[k] = x(v);
        cfg.Env = Object.entries(e).map(([k, v]) => `${k}=${v}`);
      }, `ENV ${ins.rest}`);
      case 'LABEL': return meta((cfg) => { cfg.Labels = { ...(cfg.Labels ?? {}) }; for (const [k, v] of keyValues(ins.rest, c.escape)) cfg.Labels[x(k)] = x(v); }, `LABEL ${ins.rest}`);
      case 'MAINTAINER': return meta(() => {}, `MAINTAINER ${ins.rest}`);
      case 'CMD': return meta((cfg) => { cfg.Cmd = ins.json ?? [...shellOf(cfg), ins.rest]; }, `CMD ${JSON.stringify(ins.json ?? [...shellOf(s.config), ins.rest])}`);
      case 'ENTRYPOINT': return meta((cfg) => { cfg.Entrypoint = ins.json ?? [...shellOf(cfg), ins.rest]; cfg.Cmd = null; }, `ENTRYPOINT ${JSON.stringify(ins.json ?? [...shellOf(s.config), ins.rest])}`);
      case 'EXPOSE': return meta((cfg) => { cfg.ExposedPorts = { ...(cfg.ExposedPorts ?? {}) }; for (const p of words(x(ins.rest))) cfg.ExposedPorts[p.includes('/') ? p : `${p}/tcp`] = {}; }, `EXPOSE ${ins.rest}`);
      case 'VOLUME': return meta((cfg) => { cfg.Volumes = { ...(cfg.Volumes ?? {}) }; for (const v of ins.json ?? words(x(ins.rest))) cfg.Volumes[v] = {}; }, `VOLUME ${JSON.stringify(ins.json ?? words(x(ins.rest)))}`);
      case 'USER': return meta((cfg) => { cfg.User = x(ins.rest); }, `USER ${ins.rest}`);
      case 'WORKDIR': return meta((cfg) => { const w = x(ins.rest); cfg.WorkingDir = w.startsWith('/') ? posix.normalize(w) : posix.join(cfg.WorkingDir || '/', w); }, `WORKDIR ${ins.rest}`);
      case 'STOPSIGNAL': return meta((cfg) => { cfg.StopSignal = x(ins.rest); }, `STOPSIGNAL ${ins.rest}`);
      case 'SHELL': {
        if (!ins.json) throw new BuildError(`dockerfile parse error on line ${ins.line}: SHELL requires the arguments to be in JSON form`);
        return meta((cfg) => { cfg.Shell = ins.json; }, `SHELL ${JSON.stringify(ins.json)}`);
      }
      case 'ONBUILD': {
        if (/^\s*(ONBUILD|FROM|MAINTAINER)\b/i.test(ins.rest)) throw new BuildError(`${ins.rest.split(/\s/)[0]} isn't allowed as an ONBUILD trigger`);
        return meta((cfg) => { cfg.OnBuild = [...(cfg.OnBuild ?? []), ins.rest]; }, `ONBUILD ${ins.rest}`);
      }
      case 'HEALTHCHECK': {
        const flags = Object.entries(ins.flags).map(([k, v]) => `--${k}=${v}`).join(' ');
        return meta((cfg) => { cfg.Healthcheck = parseHealthcheck(`${flags} ${ins.rest}`); }, `HEALTHCHECK ${ins.rest}`);
      }
      case 'RUN': return this.runStep(s, ins, c, cmdKey, cached);
      case 'COPY': case 'ADD': return this.copyStep(s, ins, c, x, cached);
      default: throw new BuildError(`dockerfile parse error on line ${ins.line}: unknown instruction: ${ins.cmd}`);
    }
  }

  private async runStep(s: State, ins: Instruction, c: StepContext, cmdKey: string, cached: (k: string, f: () => Promise<State>) => Promise<State>): Promise<State> {
    if (!s.imageId) throw new BuildError('RUN needs a base image: nothing runs in an empty (scratch) image');
    const shell = shellOf(s.config);
    let cmd: string[];
    if (ins.json) cmd = ins.json;
    else if (ins.heredocs.length && /^<<-?["']?\w+["']?\s*$/.test(ins.rest)) cmd = [...shell, ins.heredocs[0]!.body];
    else cmd = [...shell, ins.rest];
    return cached(cmdKey, async () => {
      const argEnv = Object.entries(s.args).map(([k, v]) => `${k}=${v}`);
      const { Id } = await this.containers.create({
        Image: s.imageId, Cmd: cmd, Entrypoint: [''], Env: [...(s.config.Env ?? []), ...argEnv], User: s.config.User ?? '',
        WorkingDir: s.config.WorkingDir ?? '', Labels: {}, AttachStdout: true, AttachStderr: true,
        HostConfig: {
          NetworkMode: c.o.networkMode || 'default', ExtraHosts: c.o.extraHosts, ShmSize: c.o.shmSize, Memory: c.o.memory, CpuShares: c.o.cpuShares,
          LogConfig: { Type: 'json-file', Config: {} },
        },
      });
      c.created.push(Id);
      c.out(` ---> Running in ${shortId(Id)}\n`);
      let removed = false;
      try {
        const exit = this.containers.nextExit(Id);
        await this.containers.start(Id);
        const rec = this.containers.get(Id);
        const logs = readLogs(rec.LogPath, { stdout: true, stderr: true, since: 0, until: 0, timestamps: false, tail: -1, follow: true, multiplex: false } as any, exit);
        for await (const chunk of logs) c.out(String(chunk));
        const st = await exit;
        if (st.exitCode !== 0) {
          const shown = ins.json ? JSON.stringify(cmd) : cmd.join(' ');
          const err = new BuildError(`The command '${shown}' returned a non-zero code: ${st.exitCode}`);
          (err as any).code = st.exitCode;
          if (c.o.forceRm) { await this.containers.remove(Id, { force: true }); removed = true; }
          throw err;
        }
        const layer = await this.images.addLayer(this.fs.layerTar(this.containers.get(Id)), s.chain);
        // the new layer is referenced once its image exists: until then garbage collection spares it
        this.images.pin([layer.chainId]);
        let next: State;
        try { next = await this.commitConfig(s, ins.json ? JSON.stringify(cmd) : cmd.join(' '), false, layer.diffId); } finally { this.images.unpin([layer.chainId]); }
        if (c.o.rm) {
          await this.containers.remove(Id, { force: true });
          removed = true;
          c.out(`Removing intermediate container ${shortId(Id)}\n`);
        }
        return next;
      } finally {
        if (!removed && c.o.forceRm) await this.containers.remove(Id, { force: true }).catch(() => {});
      }
    });
  }

  private async copyStep(s: State, ins: Instruction, c: StepContext, x: (v: string) => string, cached: (k: string, f: () => Promise<State>) => Promise<State>): Promise<State> {
    const args = ins.heredocs.length ? [] : (ins.json ?? words(ins.rest, c.escape)).map(x);
    if (!ins.heredocs.length && args.length < 2) throw new BuildError(`${ins.cmd} requires at least two arguments, but only one was provided. Destination could not be determined.`);
    const destRaw = ins.heredocs.length ? x(words(ins.rest.replace(/<<-?["']?\w+["']?/g, ''), c.escape).at(-1) ?? '') : args.at(-1)!;
    const sources = args.slice(0, -1);
    const workdir = s.config.WorkingDir || '/';
    const dest = destRaw.startsWith('/') ? destRaw : posix.join(workdir, destRaw);
    const destIsDir = destRaw.endsWith('/') || sources.length + ins.heredocs.length > 1;
    for (const flag of Object.keys(ins.flags)) if (!['from', 'chown', 'chmod', 'link', 'parents', 'exclude'].includes(flag)) throw new BuildError(`dockerfile parse error on line ${ins.line}: Unknown flag: ${flag}`);

    // the source root: the context (less .dockerignore'd files), or a stage's / image's rootfs
    let srcRoot = c.ctx;
    let unmount: (() => Promise<void>) | undefined;
    const from = ins.flags.from;
    if (from) {
      const stageIdx = c.stages.findIndex((st) => st.name === from.toLowerCase() || String(c.stages.indexOf(st)) === from);
      const imageId = stageIdx >= 0 ? c.results[stageIdx]?.imageId : this.fromImage(from).imageId;
      if (imageId === undefined) throw new BuildError(`COPY --from=${from}: the stage has not been built`);
      const m = await this.mountImage(imageId, c.dir);
      srcRoot = m.root; unmount = m.unmount;
    } else if (ins.cmd === 'ADD' && sources.some((src) => /^[a-z]+:\/\//i.test(src))) {
      throw new BuildError('ADD from a URL is not supported here: berth builds without network access to remote sources');
    }
    const stage = join(c.dir, `stage-${randomBytes(4).toString('hex')}`);
    try {
      await fsp.mkdir(stage, { recursive: true });
      const target = join(stage, dest);
      if (destIsDir) await fsp.mkdir(target, { recursive: true });
      else await fsp.mkdir(posix.dirname(target), { recursive: true });
      for (const h of ins.heredocs) await fsp.writeFile(destIsDir ? join(target, h.name) : target, h.body);
      let matched = 0;
      for (const src of sources) {
        const rels = await matchSources(srcRoot, src, from ? null : c.ig);
        if (!rels.length) throw new BuildError(`${ins.cmd} failed: file not found in build context or excluded by .dockerignore: stat ${src}: file does not exist`);
        for (const rel of rels) {
          matched++;
          const host = await resolveInside(srcRoot, rel);
          const st = await fsp.lstat(host);
          if (ins.cmd === 'ADD' && st.isFile() && !from && await isArchive(host)) {
            await fsp.mkdir(target, { recursive: true });
            await extractLayer(maybeDecompress(createReadStream(host)), destIsDir || destRaw.endsWith('/') ? target : target, { whiteouts: false });
            continue;
          }
          if (st.isDirectory()) {
            await fsp.mkdir(destIsDir || sources.length === 1 ? target : target, { recursive: true });
            await copyFiltered(host, target, rel, from ? null : c.ig);
          } else {
            const to = destIsDir ? join(target, posix.basename(rel)) : target;
            await run('cp', ['-a', '--no-dereference', host, to]);
          }
        }
      }
      void matched;
      // ownership (root unless --chown) and --chmod on what was copied
      const { uid, gid } = await this.chownIds(ins.flags.chown ? x(ins.flags.chown) : '', s);
      await run('chown', ['-R', '-h', `${uid}:${gid}`, stage]);
      if (ins.flags.chmod) {
        if (!/^[0-7]{3,4}$/.test(ins.flags.chmod)) throw new BuildError(`invalid chmod parameter: ${ins.flags.chmod}`);
        await run('chmod', ['-R', ins.flags.chmod, target]);
      }
      const digest = await treeDigest(stage);
      return await cached(`${ins.cmd} ${JSON.stringify(ins.flags)} ${JSON.stringify(sources)} ${dest} ${digest}`, async () => {
        const layer = await this.images.addLayer(tarTree(stage, '.'), s.chain);
        this.images.pin([layer.chainId]);
        try {
          return await this.commitConfig(s, `/bin/sh -c #(nop) ${ins.cmd} ${sources.length ? `dir:${digest.slice(0, 12)}` : 'heredoc'} in ${dest} `, false, layer.diffId);
        } finally { this.images.unpin([layer.chainId]); }
      });
    } finally {
      await fsp.rm(stage, { recursive: true, force: true }).catch(() => {});
      await unmount?.();
    }
  }

  /** A read-only view of an image's filesystem (COPY --from). */
  private async mountImage(imageId: string, dir: string): Promise<{ root: string; unmount: () => Promise<void> }> {
    const root = join(dir, `from-${randomBytes(4).toString('hex')}`);
    const empty = join(dir, `empty-${randomBytes(4).toString('hex')}`);
    await fsp.mkdir(root); await fsp.mkdir(empty);
    const layers = imageId ? this.images.layerDirs(imageId) : [];
    // overlay wants two lower dirs when there is no upper one: the empty dir makes the second
    await run('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${[...layers, empty].join(':')}`, root]);
    return { root, unmount: async () => { await run('umount', [root]).catch(() => run('umount', ['-l', root]).catch(() => {})); } };
  }

  private async chownIds(spec: string, s: State): Promise<{ uid: number; gid: number }> {
    if (!spec) return { uid: 0, gid: 0 };
    const [u, g] = spec.split(':');
    const lookup = async (file: string, name: string): Promise<number> => {
      if (/^\d+$/.test(name)) return Number(name);
      const dirs = s.imageId ? this.images.layerDirs(s.imageId) : [];
      for (const d of dirs) {
        const text = await fsp.readFile(join(d, 'etc', file), 'utf8').catch(() => null);
        if (text === null) continue;
        const line = text.split('\n').find((l) => l.split(':')[0] === name);
        if (line) return Number(line.split(':')[2]);
        break;
      }
      throw new BuildError(`unable to convert uid/gid chown string to host mapping: can't find uid for user ${name}: no such user: ${name}`);
    };
    const uid = await lookup('passwd', u!);
    const gid = g !== undefined ? await lookup('group', g) : uid;
    return { uid, gid };
  }
}

interface StepContext {
  ctx: string; ig: Ignore; o: BuildOptions; out: (s: string) => void; results: State[];
  stages: Array<{ name?: string }>; metaArgs: Record<string, string>; used: Set<string>; created: string[]; dir: string; escape: string;
}

const c_pull = (o: BuildOptions): boolean => typeof o.pull === 'function';
const clone = (s: State): State => structuredClone(s);
const shellOf = (cfg: Record<string, any>): string[] => (Array.isArray(cfg.Shell) && cfg.Shell.length ? cfg.Shell : DEFAULT_SHELL);

function envMap(env: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of env ?? []) { const i = e.indexOf('='); out[i < 0 ? e : e.slice(0, i)] = i < 0 ? '' : e.slice(i + 1); }
  return out;
}

function argDecls(rest: string): Array<[string, string | undefined]> {
  return words(rest).map((w) => { const i = w.indexOf('='); return i < 0 ? [w, undefined] : [w.slice(0, i), w.slice(i + 1)]; });
}

function splitTag(t: string): [string, string] {
  const i = t.lastIndexOf(':');
  return i > t.lastIndexOf('/') && i > 0 ? [t.slice(0, i), t.slice(i + 1)] : [t, 'latest'];
}

/** A path inside root with symlinks resolved inside it; refuses to leave. */
async function resolveInside(root: string, rel: string): Promise<string> {
  if (rel === '.' || rel === '') return root;
  const real = await fsp.realpath(join(root, rel)).catch(() => join(root, rel));
  const realRoot = await fsp.realpath(root);
  // a final symlink is copied as a link (lstat); its parents must stay inside
  const parent = await fsp.realpath(posix.dirname(join(root, rel))).catch(() => realRoot);
  if (parent !== realRoot && !parent.startsWith(realRoot + '/')) throw new BuildError(`forbidden path outside the build context: ${rel}`);
  void real;
  return join(parent, posix.basename(rel));
}

/** Context paths a COPY source names: an exact path or a Go-style glob, minus ignored ones. */
async function matchSources(root: string, src: string, ig: Ignore | null): Promise<string[]> {
  const clean = posix.normalize('/' + src).slice(1);
  if (src.split('/').includes('..') && posix.normalize(src).startsWith('..')) throw new BuildError(`forbidden path outside the build context: ${src}`);
  if (clean === '' || clean === '.') return ['.'];
  if (!/[*?[]/.test(clean)) {
    const ok = await fsp.lstat(join(root, clean)).then(() => true, () => false);
    if (!ok || (ig && ig.ignores(clean))) return [];
    return [clean];
  }
  const segs = clean.split('/');
  const out: string[] = [];
  const walk = async (dir: string, i: number, prefix: string): Promise<void> => {
    if (i === segs.length) { out.push(prefix); return; }
    const re = globToRegExp(segs[i]!);
    for (const name of (await fsp.readdir(join(root, dir)).catch(() => [] as string[])).sort()) {
      if (!re.test(name)) continue;
      const rel = prefix ? `${prefix}/${name}` : name;
      if (ig && ig.ignores(rel)) continue;
      if (i < segs.length - 1) { const st = await fsp.lstat(join(root, rel)); if (!st.isDirectory()) continue; }
      await walk(rel, i + 1, rel);
    }
  };
  await walk('', 0, '');
  return out;
}

function globToRegExp(seg: string): RegExp {
  let re = '';
  for (let i = 0; i < seg.length; i++) {
    const ch = seg[i]!;
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '[') { const j = seg.indexOf(']', i); if (j < 0) { re += '\\['; continue; } re += `[${seg.slice(i + 1, j).replace(/^!/, '^')}]`; i = j; }
    else if (ch === '\\' && i + 1 < seg.length) re += '\\' + seg[++i];
    else re += ch.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Copies a directory's contents, leaving out what .dockerignore excludes (paths relative to the context). */
async function copyFiltered(from: string, to: string, rel: string, ig: Ignore | null): Promise<void> {
  for (const name of await fsp.readdir(from)) {
    const r = rel === '.' ? name : `${rel}/${name}`;
    if (ig && ig.ignores(r)) {
      const st = await fsp.lstat(join(from, name));
      if (!st.isDirectory()) continue;
      // an excluded directory may still have re-included entries (! patterns)
      await fsp.mkdir(join(to, name), { recursive: true });
      await copyFiltered(join(from, name), join(to, name), r, ig);
      if ((await fsp.readdir(join(to, name))).length === 0) await fsp.rmdir(join(to, name));
      continue;
    }
    const st = await fsp.lstat(join(from, name));
    if (st.isDirectory()) {
      await fsp.mkdir(join(to, name), { recursive: true });
      await fsp.chmod(join(to, name), st.mode & 0o7777);
      await copyFiltered(join(from, name), join(to, name), r, ig);
    } else {
      await run('cp', ['-a', '--no-dereference', join(from, name), join(to, name)]);
    }
  }
}

async function isArchive(path: string): Promise<boolean> {
  const fh = await fsp.open(path, 'r');
  try {
    const b = Buffer.alloc(512);
    const { bytesRead } = await fh.read(b, 0, 512, 0);
    if (bytesRead >= 2 && b[0] === 0x1f && b[1] === 0x8b) return true;
    return bytesRead >= 262 && b.toString('latin1', 257, 262) === 'ustar';
  } finally { await fh.close(); }
}

/** Digest of a staged tree: names, types, modes, owners, link targets and contents (not mtimes). */
async function treeDigest(dir: string): Promise<string> {
  const h = createHash('sha256');
  const walk = async (p: string, rel: string): Promise<void> => {
    for (const name of (await fsp.readdir(p)).sort()) {
      const full = join(p, name);
      const st = await fsp.lstat(full);
      h.update(`${rel}/${name}\0${st.mode}\0${st.uid}:${st.gid}\0`);
      if (st.isDirectory()) await walk(full, `${rel}/${name}`);
      else if (st.isSymbolicLink()) h.update(await fsp.readlink(full));
      else if (st.isFile()) h.update(await fsp.readFile(full));
    }
  };
  await walk(dir, '');
  return h.digest('hex');
}
