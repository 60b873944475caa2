import test from 'ava';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidParameterError } from '../errors.js';
import type { ContainerConfig, HostConfig } from './docker-types.js';
import { DEFAULT_CAPABILITIES } from './defaults.js';
import { buildSpec, parseSecurityOpt, replaceOrAppendEnv, type SpecInput } from './spec.js';

const ID = 'ab'.repeat(32);
const host = { arch: 'x64', kernel: '6.1.0', defaultCgroupnsMode: 'host' as const, hostname: 'the-host', hostDevices: () => [] };

function spec(config: ContainerConfig = {}, hostConfig: HostConfig = {}, extra: Partial<SpecInput> = {}) {
  return buildSpec({
    id: ID, rootfs: '/var/lib/berth/containers/x/merged',
    config: { Cmd: ['sh'], Hostname: 'abcdef', ...config }, hostConfig,
    user: { uid: 0, gid: 0, additionalGids: [0, 10] }, files: {}, host, ...extra,
  });
}
const mount = (s: ReturnType<typeof spec>, dst: string) => s.mounts.find((m) => m.destination === dst);
const nsTypes = (s: ReturnType<typeof spec>) => s.linux.namespaces.map((n) => n.type);

function tmp(t: any): string {
  const d = mkdtempSync(join(tmpdir(), 'berth-spec-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

test('defaults follow the Engine', (t) => {
  const s = spec({ Entrypoint: ['/entry'], Cmd: ['a', 'b'], Env: ['FOO=1', 'PATH=/x'] });
  t.is(s.ociVersion, '1.1.0');
  t.deepEqual(s.process.args, ['/entry', 'a', 'b']);
  t.deepEqual(s.process.env, ['PATH=/x', 'HOSTNAME=abcdef', 'FOO=1', 'HOME=/']);
  t.is(s.process.cwd, '/');
  t.false(s.process.terminal);
  t.deepEqual(s.process.user, { uid: 0, gid: 0, additionalGids: [0, 10] });
  t.deepEqual(s.process.capabilities?.bounding, [...DEFAULT_CAPABILITIES]);
  t.deepEqual(s.process.capabilities?.effective, [...DEFAULT_CAPABILITIES]);
  t.deepEqual(s.process.capabilities?.inheritable, []);
  t.deepEqual(s.process.capabilities?.ambient, []);
  t.false(s.process.noNewPrivileges);
  t.is(s.process.oomScoreAdj, 0);
  t.deepEqual(s.root, { path: '/var/lib/berth/containers/x/merged', readonly: false });
  t.is(s.hostname, 'abcdef');
  t.deepEqual(s.mounts.map((m) => m.destination), ['/proc', '/dev', '/dev/pts', '/sys', '/sys/fs/cgroup', '/dev/mqueue', '/dev/shm']);
  t.deepEqual(mount(s, '/dev')?.options, ['nosuid', 'strictatime', 'mode=755', 'size=65536k']);
  t.deepEqual(mount(s, '/dev/pts')?.options, ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5']);
  t.true(mount(s, '/sys')?.options?.includes('ro'));
  t.true(mount(s, '/sys/fs/cgroup')?.options?.includes('ro'));
  t.deepEqual(mount(s, '/dev/shm')?.options, ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=67108864']);
  t.deepEqual(nsTypes(s), ['mount', 'network', 'uts', 'pid', 'ipc']);
  t.is(s.linux.cgroupsPath, `/berth/${ID}`);
  t.is(s.linux.rootfsPropagation, 'rprivate');
  t.deepEqual(s.linux.sysctl, { 'net.ipv4.ping_group_range': '0 2147483647', 'net.ipv4.ip_unprivileged_port_start': '0' });
  t.true(s.linux.maskedPaths!.includes('/proc/kcore'));
  t.true(s.linux.maskedPaths!.includes('/sys/firmware'));
  t.deepEqual(s.linux.readonlyPaths, ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']);
  t.deepEqual(s.linux.resources?.devices?.slice(0, 8), [
    { allow: false, access: 'rwm' },
    { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
    { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
    { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' },
    { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' },
    { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' },
    { allow: true, type: 'c', major: 5, minor: 1, access: 'rwm' },
    { allow: false, type: 'c', major: 10, minor: 229, access: 'rwm' },
  ]);
  t.is(s.linux.seccomp?.defaultAction, 'SCMP_ACT_ERRNO');
  t.deepEqual(s.linux.devices, []);
  t.is(s.annotations, undefined);
  t.throws(() => spec({ WorkingDir: 'rel' }), { instanceOf: InvalidParameterError, message: /needs to be an absolute path/ });
});

test('Tty, WorkingDir, user home, console size, annotations, cgroup parent', (t) => {
  const s = spec({ Tty: true, WorkingDir: '/srv/app/', Env: ['HOSTNAME=mine'] }, { ConsoleSize: [30, 100], Annotations: { a: 'b' }, OomScoreAdj: 500 },
    { user: { uid: 1000, gid: 1000, additionalGids: [1000, 1000, 29], home: '/home/app' }, cgroupParent: '/custom' });
  t.true(s.process.terminal);
  t.deepEqual(s.process.env, [`PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`, 'HOSTNAME=mine', 'TERM=xterm', 'HOME=/home/app']);
  t.is(s.process.cwd, '/srv/app');
  t.deepEqual(s.process.consoleSize, { height: 30, width: 100 });
  t.deepEqual(s.process.user.additionalGids, [1000, 29]);
  t.deepEqual(s.annotations, { a: 'b' });
  t.is(s.process.oomScoreAdj, 500);
  t.is(s.linux.cgroupsPath, `/custom/${ID}`);
});

test('env: overrides replace, bare names unset', (t) => {
  t.deepEqual(replaceOrAppendEnv(['A=1', 'B=2'], ['B=3', 'C=4', 'A']), ['B=3', 'C=4']);
});

test('CapAdd / CapDrop with and without CAP_ prefix, ALL', (t) => {
  const s1 = spec({}, { CapAdd: ['net_admin', 'CAP_SYS_PTRACE'], CapDrop: ['chown', 'CAP_MKNOD'] });
  const caps = s1.process.capabilities!.bounding!;
  t.true(caps.includes('CAP_NET_ADMIN'));
  t.true(caps.includes('CAP_SYS_PTRACE'));
  t.false(caps.includes('CAP_CHOWN'));
  t.false(caps.includes('CAP_MKNOD'));
  const s2 = spec({}, { CapDrop: ['ALL'], CapAdd: ['NET_BIND_SERVICE'] });
  t.deepEqual(s2.process.capabilities!.bounding, ['CAP_NET_BIND_SERVICE']);
  const s3 = spec({}, { CapAdd: ['all'], CapDrop: ['SYS_ADMIN'] });
  t.true(s3.process.capabilities!.bounding!.includes('CAP_NET_ADMIN'));
  t.false(s3.process.capabilities!.bounding!.includes('CAP_SYS_ADMIN'));
  t.throws(() => spec({}, { CapAdd: ['FLY'] }), { instanceOf: InvalidParameterError, message: 'unknown capability: "CAP_FLY"' });
});

test('seccomp follows the capabilities: CAP_SYS_ADMIN allows unshare', (t) => {
  const allowed = (s: ReturnType<typeof spec>, n: string) => s.linux.seccomp!.syscalls!.some((r) => r.names.includes(n) && r.action === 'SCMP_ACT_ALLOW' && !r.args);
  t.false(allowed(spec(), 'unshare'));
  t.true(allowed(spec({}, { CapAdd: ['SYS_ADMIN'] }), 'unshare'));
});

test('SecurityOpt: seccomp unconfined, builtin, custom JSON, no-new-privileges', (t) => {
  t.is(spec({}, { SecurityOpt: ['seccomp=unconfined'] }).linux.seccomp, undefined);
  t.is(spec({}, { SecurityOpt: ['seccomp=builtin'] }).linux.seccomp?.defaultAction, 'SCMP_ACT_ERRNO');
  const custom = JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['chmod'], action: 'SCMP_ACT_ERRNO' }] });
  t.deepEqual(spec({}, { SecurityOpt: [`seccomp=${custom}`] }).linux.seccomp, { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['chmod'], action: 'SCMP_ACT_ERRNO' }] });
  t.is(spec({}, {}, { seccompProfileJson: custom }).linux.seccomp?.defaultAction, 'SCMP_ACT_ALLOW');
  t.throws(() => spec({}, { SecurityOpt: ['seccomp={broken'] }), { instanceOf: InvalidParameterError });
  t.true(spec({}, { SecurityOpt: ['no-new-privileges'] }).process.noNewPrivileges);
  t.true(spec({}, { SecurityOpt: ['no-new-privileges:true'] }).process.noNewPrivileges);
  t.false(spec({}, { SecurityOpt: ['no-new-privileges=false'] }).process.noNewPrivileges);
  t.true(spec({}, { SecurityOpt: ['apparmor=unconfined', 'label=disable', 'no-new-privileges=1'] }).process.noNewPrivileges);
  t.throws(() => parseSecurityOpt(['bogus=1']), { instanceOf: InvalidParameterError, message: 'invalid --security-opt 2: "bogus=1"' });
  t.throws(() => parseSecurityOpt(['bogus']), { message: 'invalid --security-opt 1: "bogus"' });
});

test('privileged: all caps, no seccomp, no masking, writable /sys and cgroups, host devices', (t) => {
  const s = buildSpec({
    id: ID, rootfs: '/r', config: { Cmd: ['sh'] }, hostConfig: { Privileged: true },
    user: { uid: 0, gid: 0, additionalGids: [0] }, files: {}, host: { ...host, hostDevices: undefined },
  });
  t.true(s.process.capabilities!.bounding!.includes('CAP_SYS_ADMIN'));
  t.is(s.linux.seccomp, undefined);
  t.deepEqual(s.linux.maskedPaths, []);
  t.deepEqual(s.linux.readonlyPaths, []);
  t.false(mount(s, '/sys')!.options!.includes('ro'));
  t.false(mount(s, '/sys/fs/cgroup')!.options!.includes('ro'));
  t.deepEqual(s.linux.resources?.devices, [{ allow: true, access: 'rwm' }]);
  const nul = s.linux.devices!.find((d) => d.path === '/dev/null');
  if (!nul) { t.log('skipped host device check: no /dev/null char device here'); return; }
  t.like(nul, { type: 'c', major: 1, minor: 3 });
  t.false(s.linux.devices!.some((d) => d.path.startsWith('/dev/pts/') || d.path === '/dev/console'));
});

test('namespace modes', (t) => {
  const hostPid = spec({}, { PidMode: 'host', IpcMode: 'host', UTSMode: 'host' });
  t.deepEqual(nsTypes(hostPid), ['mount', 'network']);
  t.is(hostPid.hostname, undefined);
  t.deepEqual(mount(hostPid, '/dev/shm'), { destination: '/dev/shm', type: 'bind', source: '/dev/shm', options: ['rbind', 'rprivate'] });

  const hostNet = spec({ Hostname: '' }, { NetworkMode: 'host' });
  t.deepEqual(nsTypes(hostNet), ['mount', 'uts', 'pid', 'ipc']);
  t.is(hostNet.hostname, 'the-host');
  t.true(hostNet.process.env!.includes('HOSTNAME=the-host'));
  t.is(hostNet.linux.sysctl, undefined);

  const none = spec({}, { NetworkMode: 'none' });
  t.deepEqual(nsTypes(none), ['mount', 'network', 'uts', 'pid', 'ipc']);
  t.deepEqual(spec({}, {}, { netnsPath: '/run/netns/x' }).linux.namespaces[1], { type: 'network', path: '/run/netns/x' });

  t.deepEqual(nsTypes(spec({}, { CgroupnsMode: 'private' })), ['mount', 'network', 'uts', 'pid', 'ipc', 'cgroup']);
  t.deepEqual(nsTypes(spec({}, {}, { host: { ...host, defaultCgroupnsMode: 'private' } })).at(-1), 'cgroup');
  t.false(nsTypes(spec({}, { CgroupnsMode: 'host' }, { host: { ...host, defaultCgroupnsMode: 'private' } })).includes('cgroup'));

  t.is(mount(spec({}, { IpcMode: 'none' }), '/dev/shm'), undefined);
  t.true(nsTypes(spec({}, { IpcMode: 'shareable' })).includes('ipc'));

  // container:<id> joins the namespace the caller found; without it there is nothing to join
  t.throws(() => spec({}, { NetworkMode: `container:${ID}` }), { instanceOf: InvalidParameterError, message: /namespace is unknown/ });
  t.deepEqual(spec({}, { NetworkMode: `container:${ID}` }, { netnsPath: '/proc/42/ns/net' }).linux.namespaces[1], { type: 'network', path: '/proc/42/ns/net' });
  t.throws(() => spec({}, { PidMode: 'container:x' }), { instanceOf: InvalidParameterError, message: /not supported yet/ });
  t.throws(() => spec({}, { IpcMode: 'bogus' }), { instanceOf: InvalidParameterError, message: 'invalid IPC mode: bogus' });
  // a user-defined network (checked by the network service) gets a namespace of its own
  t.true(nsTypes(spec({}, { NetworkMode: 'mynet' })).includes('network'));
});

test('Domainname goes to kernel.domainname; ShmSize sizes /dev/shm', (t) => {
  const s = spec({ Domainname: 'example.org' }, { ShmSize: 1 << 20 });
  t.is(s.linux.sysctl!['kernel.domainname'], 'example.org');
  t.true(mount(s, '/dev/shm')!.options!.includes('size=1048576'));
});

test('Binds: host paths with modes; named volumes are not supported yet', (t) => {
  const dir = tmp(t);
  const created = join(dir, 'made/by/bind');
  const s = spec({}, { Binds: [`${dir}:/data:ro`, `${created}:/deep/er/path`, `${dir}:/sh:rw,rshared,z`] });
  t.deepEqual(mount(s, '/data'), { destination: '/data', type: 'bind', source: dir, options: ['rbind', 'ro', 'rprivate'] });
  t.deepEqual(mount(s, '/deep/er/path')?.options, ['rbind', 'rprivate']);
  t.true(statSync(created).isDirectory());
  t.deepEqual(mount(s, '/sh')?.options, ['rbind', 'rshared']);
  t.is(s.linux.rootfsPropagation, 'shared');
  // User mounts come after the defaults, parents before children.
  const dsts = s.mounts.map((m) => m.destination);
  t.deepEqual(dsts.slice(7), ['/data', '/sh', '/deep/er/path']);

  t.throws(() => spec({}, { Binds: ['myvol:/data'] }), { instanceOf: InvalidParameterError, message: /^named volumes are not supported yet/ });
  t.throws(() => spec({}, { Binds: ['/anon'] }), { instanceOf: InvalidParameterError, message: /^named volumes are not supported yet/ });
  t.throws(() => spec({}, { Binds: [`${dir}:relative`] }), { instanceOf: InvalidParameterError, message: /must be absolute/ });
  t.throws(() => spec({}, { Binds: [`${dir}:/x:bogus`] }), { instanceOf: InvalidParameterError, message: 'invalid mode: bogus' });
  t.throws(() => spec({}, { Binds: [`${dir}:/x`, `${dir}:/x`] }), { instanceOf: InvalidParameterError, message: 'Duplicate mount point: /x' });
  t.throws(() => spec({}, { Binds: [`${dir}:/`] }), { instanceOf: InvalidParameterError });
});

test('Mounts bind and tmpfs, Tmpfs map', (t) => {
  const dir = tmp(t);
  const s = spec({}, {
    Mounts: [
      { Type: 'bind', Source: dir, Target: '/b', ReadOnly: true, BindOptions: { Propagation: 'rslave', NonRecursive: true } },
      { Type: 'tmpfs', Target: '/t', TmpfsOptions: { SizeBytes: 64 * 1024 * 1024, Mode: 0o1700 } },
    ],
    Tmpfs: { '/run': 'rw,exec,size=10m', '/cache': '' },
  });
  t.deepEqual(mount(s, '/b'), { destination: '/b', type: 'bind', source: dir, options: ['bind', 'ro', 'rslave'] });
  t.is(s.linux.rootfsPropagation, 'rslave');
  t.deepEqual(mount(s, '/t'), { destination: '/t', type: 'tmpfs', source: 'tmpfs', options: ['noexec', 'nosuid', 'nodev', 'rprivate', 'size=64m', 'mode=1700'] });
  t.deepEqual(mount(s, '/run')?.options, ['nosuid', 'nodev', 'rprivate', 'rw', 'exec', 'size=10m']);
  t.deepEqual(mount(s, '/cache')?.options, ['noexec', 'nosuid', 'nodev', 'rprivate']);
  t.throws(() => spec({}, { Mounts: [{ Type: 'bind', Source: join(dir, 'missing'), Target: '/m' }] }),
    { instanceOf: InvalidParameterError, message: `invalid mount config for type "bind": bind source path does not exist: ${join(dir, 'missing')}` });
  t.throws(() => spec({}, { Mounts: [{ Type: 'volume', Source: 'v', Target: '/v' }] }), { message: /^named volumes are not supported yet/ });
  t.throws(() => spec({}, { Tmpfs: { '/x': 'size=1m,bogus' } }), { instanceOf: InvalidParameterError });
  // A user mount over /dev/shm replaces the default one.
  const shm = spec({}, { Tmpfs: { '/dev/shm': 'size=1m' } });
  t.is(shm.mounts.filter((m) => m.destination === '/dev/shm').length, 1);
  t.is(mount(shm, '/dev/shm')?.source, 'tmpfs');
});

test('etc files are bind-mounted unless the user mounts their own; ReadonlyRootfs', (t) => {
  const dir = tmp(t);
  const files = { hostsPath: join(dir, 'hosts'), resolvConfPath: join(dir, 'resolv.conf'), hostnamePath: join(dir, 'hostname') };
  for (const f of Object.values(files)) writeFileSync(f, '');
  const s = spec({}, { Binds: [`${dir}:/etc/hosts:ro`] }, { files });
  t.deepEqual(mount(s, '/etc/resolv.conf'), { destination: '/etc/resolv.conf', type: 'bind', source: files.resolvConfPath, options: ['rbind', 'rprivate'] });
  t.is(mount(s, '/etc/hostname')?.source, files.hostnamePath);
  t.is(mount(s, '/etc/hosts')?.source, dir);

  const ro = spec({}, { ReadonlyRootfs: true, Tmpfs: { '/tmp': '' } }, { files });
  t.true(ro.root.readonly);
  t.true(mount(ro, '/etc/hosts')!.options!.includes('ro'));
  t.false(mount(ro, '/tmp')!.options!.includes('ro'));
  t.false(mount(ro, '/dev')!.options!.includes('ro'));
  t.true(mount(ro, '/sys')!.options!.includes('ro'));
});

test('Sysctls: namespaced ones only', (t) => {
  const s = spec({}, { Sysctls: { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '100', 'fs.mqueue.msg_max': '20', 'net.ipv4.ip_unprivileged_port_start': '1024' } });
  t.like(s.linux.sysctl, { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '100', 'fs.mqueue.msg_max': '20', 'net.ipv4.ip_unprivileged_port_start': '1024' });
  t.throws(() => spec({}, { Sysctls: { 'kernel.panic': '1' } }), { instanceOf: InvalidParameterError, message: /sysctl "kernel.panic" is not allowed/ });
  t.throws(() => spec({}, { NetworkMode: 'host', Sysctls: { 'net.core.somaxconn': '1' } }), { instanceOf: InvalidParameterError, message: /host network namespace/ });
  t.throws(() => spec({}, { IpcMode: 'host', Sysctls: { 'kernel.msgmax': '1' } }), { instanceOf: InvalidParameterError, message: /host IPC namespace/ });
});

test('Ulimits become rlimits', (t) => {
  const s = spec({}, { Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 2048 }, { Name: 'core', Soft: -1, Hard: -1 }] });
  t.deepEqual(s.process.rlimits, [{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 2048 }, { type: 'RLIMIT_CORE', soft: 2 ** 64 - 1, hard: 2 ** 64 - 1 }]);
  t.is(spec().process.rlimits, undefined);
  t.throws(() => spec({}, { Ulimits: [{ Name: 'nofile', Soft: 10, Hard: 5 }] }), { instanceOf: InvalidParameterError });
});

test('resources', (t) => {
  const s = spec({}, {
    Memory: 64 << 20, MemoryReservation: 32 << 20, NanoCpus: 1.5e9, CpuShares: 512, CpusetCpus: '0', CpusetMems: '0',
    PidsLimit: 0, BlkioWeight: 300, MemorySwappiness: -1,
  });
  t.deepEqual(s.linux.resources?.memory, { limit: 64 << 20, reservation: 32 << 20, swap: 128 << 20 });
  t.deepEqual(s.linux.resources?.cpu, { shares: 512, cpus: '0', mems: '0', period: 100000, quota: 150000 });
  t.deepEqual(s.linux.resources?.pids, { limit: -1 });
  t.deepEqual(s.linux.resources?.blockIO, { weight: 300 });
  const q = spec({}, { CpuQuota: 50000, CpuPeriod: 200000, MemorySwap: -1, Memory: 1 << 30, PidsLimit: 100 });
  t.deepEqual(q.linux.resources?.cpu, { quota: 50000, period: 200000 });
  t.deepEqual(q.linux.resources?.memory, { limit: 1 << 30 });
  t.deepEqual(q.linux.resources?.pids, { limit: 100 });
  t.is(spec().linux.resources?.memory, undefined);
});

test('Devices: host device nodes with their cgroup permissions; DeviceCgroupRules', (t) => {
  let st;
  try { st = statSync('/dev/null'); } catch { /* none */ }
  if (!st?.isCharacterDevice()) { t.log('skipped: /dev/null is not a character device here'); t.pass(); return; }
  const s = spec({}, { Devices: [{ PathOnHost: '/dev/null', PathInContainer: '/dev/mynull', CgroupPermissions: 'rw' }], DeviceCgroupRules: ['c 42:* rmw'] });
  t.like(s.linux.devices![0], { type: 'c', path: '/dev/mynull', major: 1, minor: 3 });
  const rules = s.linux.resources!.devices!;
  t.deepEqual(rules.at(-2), { allow: true, type: 'c', major: 1, minor: 3, access: 'rw' });
  t.deepEqual(rules.at(-1), { allow: true, type: 'c', major: 42, access: 'rmw' });
  const dir = tmp(t);
  t.throws(() => spec({}, { Devices: [{ PathOnHost: join(dir, 'nodev') }] }), { instanceOf: InvalidParameterError, message: /error gathering device information/ });
  t.throws(() => spec({}, { DeviceCgroupRules: ['x 1:2 r'] }), { instanceOf: InvalidParameterError });
});

test('no command is an error', (t) => {
  t.throws(() => spec({ Cmd: [] }), { instanceOf: InvalidParameterError, message: 'no command specified' });
});
