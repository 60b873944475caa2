// The test image: busybox:latest built from Debian's busybox-static by scripts/make-test-image,
// cached under /tmp (deterministic, so the cache is keyed by the busybox binary's digest).
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from "node:crypto";
import { access, readFile, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startDaemon, type Daemon, type StartOptions } from './harness.js';

const run = promisify(execFile);
// dist/compat-tests/images-fixture.js → repo root
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Path of a `docker load` archive holding busybox:latest; built once and cached. */
export async function ensureBusyboxTar(): Promise<string> {
  const bin = await readFile('/bin/busybox');
  const key = createHash('sha256').update(bin).digest('hex').slice(0, 16);
  const path = `/tmp/berth-busybox-${key}.tar`;
  try { await access(path); return path; } catch { /* build it */ }
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  await run(join(ROOT, 'scripts', 'make-test-image'), [tmp]);
  await rename(tmp, path);
  return path;
}

/** A daemon with busybox:latest loaded, for tests that run containers. */
export async function startDaemonWithBusybox(opts: StartOptions = {}): Promise<Daemon> {
  const d = await startDaemon(opts);
  const load = await d.docker(['load', '-i', await ensureBusyboxTar()]);
  if (load.code !== 0) { await d.stop(); throw new Error(`docker load failed: ${load.stderr}`); }
  return d;
}

/** Removes every container (force) and stops the daemon: the usual after.always hook. */
export async function removeAllAndStop(d: Daemon | undefined): Promise<void> {
  if (!d) return;
  const ids = (await d.docker(['ps', '-aq'])).stdout.split('\n').filter(Boolean);
  for (let i = 0; i < ids.length; i += 50) await d.docker(['rm', '-f', ...ids.slice(i, i + 50)]);
  await d.stop();
}
