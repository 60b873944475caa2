// A real registry for pull/push tests: Debian's docker-registry (distribution 2.8) on
// 127.0.0.1 with a CA and server certificate made here, and htpasswd (bcrypt) basic auth.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile, copyFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { readFileSync } from 'node:fs';

const run = promisify(execFile);

export interface Registry {
  /** host:port */
  host: string;
  dir: string;
  storage: string;
  caFile: string;
  user: string;
  password: string;
  /** Puts the CA where a daemon with this config dir looks for it (certs.d/<host>/ca.crt). */
  trustIn(configDir: string): Promise<void>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as any).port; s.close(() => resolve(p)); });
  });
}

export async function startRegistry(o: { auth?: boolean } = {}): Promise<Registry> {
  const dir = await mkdtemp('/tmp/breg-');
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const ssl = (args: string[]) => run('openssl', args, { cwd: dir });
  await ssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=berth-test-registry-ca']);
  await writeFile(join(dir, 'ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'req.csr', '-subj', '/CN=127.0.0.1']);
  await ssl(['x509', '-req', '-in', 'req.csr', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', 'cert.pem', '-days', '2', '-extfile', 'ext']);
  const user = 'tester', password = 'p4ss-word';
  if (o.auth !== false) {
    const { stdout } = await run('htpasswd', ['-Bbn', user, password]);
    await writeFile(join(dir, 'htpasswd'), stdout);
  }
  const storage = join(dir, 'storage');
  await mkdir(storage);
  await writeFile(join(dir, 'config.yml'), [
    'version: 0.1',
    'log: { level: error }',
    `storage: { filesystem: { rootdirectory: ${storage} }, delete: { enabled: true } }`,
    `http: { addr: "${host}", tls: { certificate: ${join(dir, 'cert.pem')}, key: ${join(dir, 'key.pem')} } }`,
    ...(o.auth !== false ? [`auth: { htpasswd: { realm: basic-realm, path: ${join(dir, 'htpasswd')} } }`] : []),
    '',
  ].join('\n'));
  const child: ChildProcess = spawn('/usr/bin/docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (b) => { err += b; });
  const agent = new Agent({ connect: { ca: readFileSync(join(dir, 'ca.pem')) } });
  for (let i = 0; ; i++) {
    try { const r = await request(`https://${host}/v2/`, { dispatcher: agent }); await r.body.dump(); break; } catch {
      if (i > 200 || child.exitCode !== null) { child.kill('SIGKILL'); throw new Error(`docker-registry did not start: ${err}`); }
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  await agent.close();
  return {
    host, dir, storage, caFile: join(dir, 'ca.pem'), user, password,
    trustIn: async (configDir) => {
      await mkdir(join(configDir, 'certs.d', host), { recursive: true });
      await copyFile(join(dir, 'ca.pem'), join(configDir, 'certs.d', host, 'ca.crt'));
    },
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => { if (child.exitCode !== null) r(null); else child.once('exit', r); });
      await rm(dir, { recursive: true, force: true });
    },
  };
}
