// `berthd check`: an offline consistency check of a data-root (and exec-root), run while no
// daemon uses it. Reports every object that is half there: records that do not parse, images
// whose config or layers are missing, layers without metadata, parent or blob (a pulled
// layer's compressed blob, named in its layer.json), blobs whose content does not match their digest, mounts or state left for containers that are not running.
// Other stores (volumes, networks) add their checks through `extraChecks`.
import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { isTempName } from './atomic.js';

export type Check = (dataRoot: string, execRoot: string | undefined, problems: string[]) => Promise<void>;
export const extraChecks: Check[] = [];

const HEX64 = /^[0-9a-f]{64}$/;
const exists = (p: string) => fsp.access(p).then(() => true, () => false);
const readJson = async (p: string): Promise<any> => JSON.parse(await fsp.readFile(p, 'utf8'));
const list = (p: string) => fsp.readdir(p).catch(() => [] as string[]);

async function fileDigest(p: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(p)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function mountPoints(): Promise<string[]> {
  const info = await fsp.readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').filter(Boolean).map((l) => l.split(' ')[4]!.replace(/\\(\d{3})/g, (_m, o) => String.fromCharCode(parseInt(o, 8))));
}

export async function checkDataRoot(dataRoot: string, execRoot?: string): Promise<string[]> {
  const problems: string[] = [];
  const contentDir = join(dataRoot, 'content', 'sha256');
  const layersDir = join(dataRoot, 'layers');

  // content blobs: the name is the digest of the bytes
  for (const name of await list(contentDir)) {
    if (isTempName(name) || name.startsWith('.ingest-')) continue; // blob being written: removed by the daemon at start
    if (!HEX64.test(name)) { problems.push(`content: unexpected file ${name}`); continue; }
    if (await fileDigest(join(contentDir, name)) !== name) problems.push(`content: blob ${name} does not match its digest`);
  }

  // layers: complete ones have layer.json and diff/, and their parent exists
  const layers = new Map<string, any>();
  for (const name of await list(layersDir)) {
    if (name.startsWith('.')) continue; // partial extraction: removed by the daemon at start
    try {
      const meta = await readJson(join(layersDir, name, 'layer.json'));
      if (!(await exists(join(layersDir, name, 'diff')))) problems.push(`layer ${name}: diff directory missing`);
      layers.set(meta.chainId, meta);
    } catch { problems.push(`layer ${name}: no readable layer.json`); }
  }
  for (const [chain, meta] of layers) {
    if (meta.parent && !layers.has(meta.parent)) problems.push(`layer ${chain}: parent ${meta.parent} missing`);
    // its blob: the compressed one it was pulled as (layer.json maps the diffID to it), else the
    // tar named by its diffID; committed before the layer, removed after it
    const blob = String(meta.blob?.digest ?? meta.diffId);
    const hex = blob.replace(/^sha256:/, '');
    const st = HEX64.test(hex) ? await fsp.stat(join(contentDir, hex)).catch(() => undefined) : undefined;
    if (!st) problems.push(`layer ${chain}: blob ${blob} missing`);
    else if (meta.blob && st.size !== meta.blob.size) problems.push(`layer ${chain}: blob ${blob} is ${st.size} bytes, layer.json says ${meta.blob.size}`);
  }

  // images: config blob present, every layer present
  const images = new Set<string>();
  for (const name of await list(join(dataRoot, 'images'))) {
    if (isTempName(name) || !name.endsWith('.json')) continue;
    let img: any;
    try { img = await readJson(join(dataRoot, 'images', name)); } catch { problems.push(`image record ${name} does not parse`); continue; }
    images.add(img.Id);
    const hex = String(img.Id).replace(/^sha256:/, '');
    if (`${hex}.json` !== name) problems.push(`image ${img.Id}: stored under ${name}`);
    if (!(await exists(join(contentDir, hex)))) problems.push(`image ${img.Id}: config blob missing`);
    for (const c of img.ChainIds ?? []) if (!layers.has(c)) problems.push(`image ${img.Id}: layer ${c} missing`);
  }

  // containers: records parse, their image exists, no mount or runtime state unless running
  const mounts = await mountPoints();
  const names = new Map<string, string>();
  for (const id of await list(join(dataRoot, 'containers'))) {
    if (!HEX64.test(id)) continue;
    let rec: any;
    try { rec = await readJson(join(dataRoot, 'containers', id, 'config.json')); } catch { problems.push(`container ${id}: no readable record`); continue; }
    if (rec.Id !== id) problems.push(`container ${id}: record names ${rec.Id}`);
    if (names.has(rec.Name)) problems.push(`container ${id}: name ${rec.Name} also used by ${names.get(rec.Name)}`);
    names.set(rec.Name, id);
    if (!images.has(rec.Image)) problems.push(`container ${id}: image ${rec.Image} missing`);
    if (rec.State?.Running) continue;
    if (mounts.includes(join(dataRoot, 'containers', id, 'merged'))) problems.push(`container ${id}: not running but its rootfs is mounted`);
    if (execRoot && await exists(join(execRoot, id))) problems.push(`container ${id}: not running but has runtime state in ${join(execRoot, id)}`);
  }
  const known = new Set(names.values());
  const containersDir = join(dataRoot, 'containers') + '/';
  for (const m of mounts) {
    const hit = /\/([0-9a-f]{64})\/merged$/.exec(m);
    if (hit && m.startsWith(containersDir) && !known.has(hit[1]!)) problems.push(`mount ${m} without a container`);
  }
  if (execRoot) {
    for (const n of await list(execRoot)) {
      if (HEX64.test(n) && !known.has(n)) problems.push(`exec-root ${n}: state of an unknown container`);
    }
  }
  // volumes: a record and a data directory each; every volume a container names exists
  const volumes = new Set<string>();
  for (const name of await list(join(dataRoot, 'volumes'))) {
    try {
      const rec = await readJson(join(dataRoot, 'volumes', name, 'volume.json'));
      if (rec.Name !== name) problems.push(`volume ${name}: record names ${rec.Name}`);
      if (!(await exists(join(dataRoot, 'volumes', name, '_data')))) problems.push(`volume ${name}: _data missing`);
      volumes.add(name);
    } catch { problems.push(`volume ${name}: no readable record`); }
  }
  for (const id of known) {
    const rec = await readJson(join(dataRoot, 'containers', id, 'config.json')).catch(() => null);
    for (const m of rec?.MountPoints ?? []) {
      if (m.Type === 'volume' && !volumes.has(m.Name)) problems.push(`container ${id}: volume ${m.Name} missing`);
    }
  }
  // networks: records parse; a bridge network's bridge exists (the daemon keeps it while stopped)
  for (const name of await list(join(dataRoot, 'network', 'records'))) {
    if (isTempName(name) || !name.endsWith('.json')) continue;
    let n: any;
    try { n = await readJson(join(dataRoot, 'network', 'records', name)); } catch { problems.push(`network record ${name} does not parse`); continue; }
    if (n.Driver !== 'bridge') continue;
    const bridge = n.Options?.['com.docker.network.bridge.name'] || `br-${String(n.Id).slice(0, 12)}`;
    if (!(await exists(join('/sys/class/net', bridge)))) problems.push(`network ${n.Name}: bridge ${bridge} missing`);
  }
  for (const c of extraChecks) await c(dataRoot, execRoot, problems);
  return problems;
}
