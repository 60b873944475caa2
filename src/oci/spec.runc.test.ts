// Oracle test: specs from buildSpec run under runc (the reference runtime) and behave like the
// Engine's containers. Needs root, runc and busybox-static; skipped visibly otherwise.
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, rmdirSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { HostConfig } from './docker-types.js';
import { buildSpec } from './spec.js';
import { resolveUser } from './user.js';

const run = promisify(execFile);
const BUSYBOX = '/bin/busybox';
const RUNC = ['/usr/sbin/runc', '/usr/bin/runc'].find((p) => existsSync(p));
const isRoot = process.getuid?.() === 0;
const skipReason = !isRoot ? 'needs root' : !RUNC ? 'runc not installed' : !existsSync(BUSYBOX) ? 'busybox-static not installed' : '';
const CGROUP_PARENT = `/berth-spec-test-${process.pid}`;

let base = '';
let rootfs = '';
let seq = 0;

test.before(async () => {
  if (skipReason) return;
  base = await mkdtemp(join(tmpdir(), 'berth-runc-'));
  rootfs = join(base, 'rootfs');
  for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp']) await mkdir(join(rootfs, d), { recursive: true });
  await copyFile(BUSYBOX, join(rootfs, 'bin/busybox'));
  for (const app of ['sh', 'id', 'cat', 'unshare', 'touch', 'grep', 'hostname']) await symlink('busybox', join(rootfs, 'bin', app));
  await writeFile(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  await writeFile(join(rootfs, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\nstaff:x:50:nobody\n');
});

test.after.always(async () => {
  if (skipReason || !base) return;
  await rm(base, { recursive: true, force: true });
  // runc removes each container's cgroup; remove the parent it created in every hierarchy.
  for (const ctrl of existsSync('/sys/fs/cgroup') ? readdirSync('/sys/fs/cgroup') : []) {
    const dir = join('/sys/fs/cgroup', ctrl, CGROUP_PARENT);
    try { rmdirSync(dir); } catch { /* not created there */ }
  }
});

/** Run `sh -c script` in a container built by buildSpec; returns stdout and the exit code. */
async function runIn(t: any, script: string, hostConfig: HostConfig = {}, user = ''): Promise<{ out: string; code: number }> {
  const n = ++seq; // captured: tests run concurrently
  const id = `${process.pid}${String(n).padStart(4, '0')}`.padEnd(64, 'c');
  const bundle = join(base, `b${n}`);
  await mkdir(bundle);
  const u = await resolveUser(rootfs, user, hostConfig.GroupAdd);
  const spec = buildSpec({ id, rootfs, config: { Cmd: ['sh', '-c', script], Hostname: 'box' }, hostConfig, user: u, files: {}, cgroupParent: CGROUP_PARENT });
  await writeFile(join(bundle, 'config.json'), JSON.stringify(spec));
  const name = `berth-spec-test-${process.pid}-${n}`;
  t.teardown(() => run(RUNC!, ['delete', '-f', name]).catch(() => {}));
  try {
    const { stdout } = await run(RUNC!, ['run', '--bundle', bundle, name], { timeout: 30_000 });
    return { out: stdout, code: 0 };
  } catch (err: any) {
    if (typeof err.code !== 'number') throw err;
    if (err.stderr) t.log(err.stderr);
    return { out: err.stdout ?? "", code: err.code };
  }
}

const maybe = skipReason ? test.skip : test;
if (skipReason) test(`runc oracle tests skipped: ${skipReason}`, (t) => { t.log(skipReason); t.pass(); });

maybe('default profile: non-root user, hostname, env, no unshare, network sysctl', async (t) => {
  const r = await runIn(t, 'id; hostname; echo HOME=$HOME; unshare -r true 2>/dev/null; echo unshare=$?; cat /proc/sys/net/ipv4/ip_unprivileged_port_start; grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status', {}, 'nobody');
  t.is(r.code, 0);
  t.is(r.out, [
    'uid=65534(nobody) gid=65534(nogroup) groups=50(staff),65534(nogroup)', 'box', 'HOME=/nonexistent', 'unshare=1', '0',
    'NoNewPrivs:\t0', 'Seccomp:\t2', '',
  ].join('\n'));
});

maybe('CAP_SYS_ADMIN lets the seccomp profile allow unshare; seccomp=unconfined removes the filter', async (t) => {
  const r = await runIn(t, 'unshare -m true; echo unshare=$?', { CapAdd: ['SYS_ADMIN'] });
  t.is(r.out, 'unshare=0\n');
  const u = await runIn(t, 'grep "^Seccomp:" /proc/self/status', { SecurityOpt: ['seccomp=unconfined'] });
  t.is(u.out, 'Seccomp:\t0\n');
});

maybe('read-only rootfs with a writable tmpfs, limits and no-new-privileges', async (t) => {
  const r = await runIn(t, 'touch /x 2>/dev/null; echo root=$?; touch /tmp/y; echo tmp=$?; ulimit -n; grep "^NoNewPrivs:" /proc/self/status', {
    ReadonlyRootfs: true, Tmpfs: { '/tmp': 'size=1m' }, Ulimits: [{ Name: 'nofile', Soft: 123, Hard: 456 }], SecurityOpt: ['no-new-privileges'],
  });
  t.is(r.out, 'root=1\ntmp=0\n123\nNoNewPrivs:\t1\n');
});

maybe('exit codes pass through', async (t) => {
  const r = await runIn(t, 'exit 7');
  t.is(r.code, 7);
});
