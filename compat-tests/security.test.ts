// Transport security (mutual TLS, plain-TCP warning, socket permissions) and what a container
// under default settings cannot do to the host.
import test from 'ava';
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { connect as tlsConnect } from 'node:tls';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { startDaemon, type Daemon } from './harness.js';
import { ensureBusyboxTar, removeAllAndStop } from './images-fixture.js';

function ssl(dir: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => spawn('openssl', args, { cwd: dir, stdio: 'ignore' })
    .on('error', reject).on('close', (c) => (c === 0 ? resolve() : reject(new Error(`openssl ${args.join(' ')} failed`)))));
}

/** A CA with a server and a client certificate, plus a client certificate from another CA. */
async function makePki(dir: string): Promise<void> {
  for (const ca of ['ca', 'otherca']) {
    await ssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${ca}-key.pem`, '-out', `${ca}.pem`, '-days', '2', '-subj', `/CN=berth-test-${ca}`]);
  }
  await writeFile(join(dir, 's.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await writeFile(join(dir, 'c.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const [name, ext, ca] of [['server', 's.ext', 'ca'], ['client', 'c.ext', 'ca'], ['stranger', 'c.ext', 'otherca']]) {
    await ssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
    await ssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}-key.pem`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', ext]);
  }
}

async function tcpPort(d: Daemon): Promise<string> {
  for (let i = 0; i < 60; i++) {
    const port = /API listen on tcp:\/\/127\.0\.0\.1:(\d+)/.exec(await d.logs())?.[1];
    if (port) return port;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('no TCP listen line in the daemon log');
}

/** Resolves with the HTTP status line, or with the error that ended the TLS connection. */
function tlsPing(port: string, opts: { ca: Buffer; cert?: Buffer; key?: Buffer }): Promise<string> {
  return new Promise((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port: Number(port), ca: opts.ca, cert: opts.cert, key: opts.key }, () => {
      s.write('GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    });
    let out = '';
    s.on('data', (b) => { out += b; });
    s.on('error', (e) => resolve(`error: ${e.message}`));
    s.on('close', () => resolve(out.split('\r\n')[0] || 'closed without a response'));
  });
}

test('mutual TLS: CLI flags and env work; no certificate, a stranger CA and plain HTTP are refused', async (t) => {
  const dir = await mkdtemp('/tmp/btls-');
  let d: Daemon | undefined;
  try {
    await makePki(dir);
    d = await startDaemon({ args: ['-H', 'tcp://127.0.0.1:0', '--tlsverify', '--tlscacert', join(dir, 'ca.pem'), '--tlscert', join(dir, 'server.pem'), '--tlskey', join(dir, 'server-key.pem')] });
    const port = await tcpPort(d);
    const host = `tcp://127.0.0.1:${port}`;
    const flags = await d.docker(['--tlsverify', '--tlscacert', join(dir, 'ca.pem'), '--tlscert', join(dir, 'client.pem'), '--tlskey', join(dir, 'client-key.pem'), '-H', host, 'version', '--format', '{{.Server.APIVersion}}'], { env: { DOCKER_HOST: '' } });
    t.is(flags.stdout.trim(), '1.55', flags.stderr);
    await mkdir(join(dir, 'certs'));
    for (const [from, to] of [['ca.pem', 'ca.pem'], ['client.pem', 'cert.pem'], ['client-key.pem', 'key.pem']]) await copyFile(join(dir, from), join(dir, 'certs', to));
    const env = await d.docker(['info', '--format', '{{.ID}}'], { env: { DOCKER_HOST: host, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: join(dir, 'certs') } });
    t.is(env.code, 0, env.stderr);
    const ca = await readFile(join(dir, 'ca.pem'));
    t.regex(await tlsPing(port, { ca, cert: await readFile(join(dir, 'client.pem')), key: await readFile(join(dir, 'client-key.pem')) }), /^HTTP\/1\.1 200/);
    t.notRegex(await tlsPing(port, { ca }), /^HTTP/);
    t.notRegex(await tlsPing(port, { ca, cert: await readFile(join(dir, 'stranger.pem')), key: await readFile(join(dir, 'stranger-key.pem')) }), /^HTTP/);
    const plain = await new Promise<string>((resolve) => {
      const s = netConnect(Number(port), '127.0.0.1', () => s.write('GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n'));
      let out = ''; s.on('data', (b) => { out += b; }); s.on('error', () => resolve(out)); s.on('close', () => resolve(out));
    });
    t.notRegex(plain, /^HTTP\/1\.1 200/);
    const cli = await d.docker(['version'], { env: { DOCKER_HOST: host }, timeoutMs: 10_000 });
    t.not(cli.code, 0);
  } finally {
    await d?.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('plain TCP prints the loud warning; the UNIX socket is 0660 and root-owned (docker group if present)', async (t) => {
  const d = await startDaemon({ args: ['-H', 'tcp://127.0.0.1:0'] });
  try {
    await tcpPort(d);
    t.regex(await d.logs(), /Binding to IP address without --tlsverify is insecure and gives root access/);
    const st = await stat(d.socket);
    t.is(st.mode & 0o777, 0o660);
    t.is(st.uid, 0);
    const docker = (await readFile('/etc/group', 'utf8')).split('\n').find((l) => l.startsWith('docker:'));
    t.is(st.gid, docker ? Number(docker.split(':')[2]) : 0);
  } finally {
    await d.stop();
  }
});

test('a default container cannot reach the host', async (t) => {
  const d = await startDaemon();
  try {
    await d.docker(['load', '-i', await ensureBusyboxTar()]);
    const run = (script: string) => d.docker(['run', '--rm', 'busybox', 'sh', '-c', script]);
    // host processes: only the container's own are visible
    const procs = await run('ls /proc | grep -c "^[0-9]"');
    t.true(Number(procs.stdout.trim()) <= 3, procs.stdout);
    // mounting, host disks through a device node, kernel modules, host sysctls
    const mnt = await run('mount -t tmpfs none /mnt');
    t.not(mnt.code, 0);
    t.regex(mnt.stderr, /permission denied|not permitted/i);
    const disk = await run('mknod /tmp/disk b 8 0 && head -c 1 /tmp/disk');
    t.not(disk.code, 0);
    t.regex(disk.stderr, /not permitted/i);
    const capEff = /CapEff:\s+([0-9a-f]+)/.exec((await run('cat /proc/self/status')).stdout)![1]!;
    t.is((BigInt(`0x${capEff}`) >> 16n) & 1n, 0n, 'CAP_SYS_MODULE must not be granted');
    const sysctl = await run('echo 0 > /proc/sys/net/ipv4/ip_forward_update_priority || echo 1 > /proc/sys/kernel/panic');
    t.not(sysctl.code, 0);
    t.regex(sysctl.stderr, /Read-only file system/);
    const swapBefore = await readFile('/proc/sys/vm/swappiness', 'utf8');
    await run('echo 7 > /proc/sys/vm/swappiness');
    t.is(await readFile('/proc/sys/vm/swappiness', 'utf8'), swapBefore);
    // the daemon's socket is nowhere in the container
    const sock = await run(`test -e ${d.socket} && echo visible; find / -xdev -type s 2>/dev/null | wc -l`);
    t.is(sock.stdout.trim(), '0');
    // the host's raw memory and kernel log are masked
    const kmsg = await run('head -c 1 /proc/kcore; cat /proc/kmsg');
    t.not(kmsg.code, 0);
  } finally {
    await removeAllAndStop(d);
  }
});
