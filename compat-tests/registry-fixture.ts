// A real registry for pull/push tests: Debian's docker-registry (distribution 2.8) on
// 127.0.0.1 with a CA and server certificate made here, and htpasswd (bcrypt) basic auth, or
// token auth with a small token server here that signs RS256 JWTs by a policy.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomBytes, sign } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile, copyFile } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import { createServer, type AddressInfo } from 'node:net';
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
  /** The registry server's process (benchmarks read its CPU time). */
  pid: number;
  /** Token auth: every token request, in order, with the user who asked ('' when anonymous). */
  tokenRequests: Array<{ user: string; scopes: string[] }>;
  /** Puts the CA where a daemon with this config dir looks for it (certs.d/<host>/ca.crt). */
  trustIn(configDir: string): Promise<void>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as any).port; s.close(() => resolve(p)); });
  });
}

/** Token auth: user -> password and the actions granted per repository ('*' for any other). */
export type TokenPolicy = Record<string, { password: string; access: Record<string, string[]> }>;

/**
 * The token service of distribution's token auth: Basic credentials checked against the
 * policy (none: anonymous, granted nothing), the asked scopes cut down to what is granted, and
 * a JWT signed with key.pem whose x5c header carries its certificate (issued by the CA that is
 * the registry's rootcertbundle).
 */
async function startTokenServer(dir: string, policy: TokenPolicy, requests: Registry['tokenRequests']) {
  const key = readFileSync(join(dir, 'token-key.pem'));
  const x5c = readFileSync(join(dir, 'token-cert.pem'), 'utf8').replace(/-----[^-]+-----|\s/g, '');
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const server = createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const [user = '', ...pw] = basic ? Buffer.from(basic, 'base64').toString('utf8').split(':') : [];
    if (basic && policy[user]?.password !== pw.join(':')) { res.writeHead(401).end('{"details":"invalid credentials"}'); return; }
    const scopes = url.searchParams.getAll('scope');
    requests.push({ user, scopes });
    const grants = policy[user]?.access ?? {};
    const access = scopes.map((s) => {
      const m = /^([^:]+):(.+):([^:]*)$/.exec(s);
      if (!m) return null;
      const granted = grants[m[2]!] ?? grants['*'] ?? [];
      return { type: m[1], name: m[2], actions: m[3]!.split(',').filter((a) => granted.includes(a)) };
    }).filter(Boolean);
    const now = Math.floor(Date.now() / 1000);
    const body = `${b64({ typ: 'JWT', alg: 'RS256', x5c: [x5c] })}.${b64({
      iss: 'berth-test-issuer', sub: user, aud: url.searchParams.get('service'), exp: now + 300, nbf: now - 10, iat: now,
      jti: randomBytes(8).toString('hex'), access,
    })}`;
    const token = `${body}.${sign('sha256', Buffer.from(body), key).toString('base64url')}`;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, expires_in: 300, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { realm: `https://127.0.0.1:${(server.address() as AddressInfo).port}/token`, stop: () => { server.closeAllConnections(); server.close(); } };
}

/** `auth: 'token'` grants the default user pull and push everywhere; `policy` adds users. */
/**
 * `prefix`: the API is served under this path (/prefix/v2/), as behind a proxy; `storage`:
 * serve another registry's storage directory (read by both).
 */
export async function startRegistry(o: { auth?: boolean | 'token'; policy?: TokenPolicy; prefix?: string; storage?: string } = {}): Promise<Registry> {
  const dir = await mkdtemp('/tmp/breg-');
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const ssl = (args: string[]) => run('openssl', args, { cwd: dir });
  await ssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=berth-test-registry-ca']);
  await writeFile(join(dir, 'ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'req.csr', '-subj', '/CN=127.0.0.1']);
  await ssl(['x509', '-req', '-in', 'req.csr', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', 'cert.pem', '-days', '2', '-extfile', 'ext']);
  const user = 'tester', password = 'p4ss-word';
  const tokenRequests: Registry['tokenRequests'] = [];
  let tokens: Awaited<ReturnType<typeof startTokenServer>> | undefined;
  if (o.auth === 'token') {
    await writeFile(join(dir, 'token-ext'), 'keyUsage=digitalSignature\n');
    await ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'token-key.pem', '-out', 'token.csr', '-subj', '/CN=berth-test-token-signer']);
    await ssl(['x509', '-req', '-in', 'token.csr', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', 'token-cert.pem', '-days', '2', '-extfile', 'token-ext']);
    tokens = await startTokenServer(dir, { [user]: { password, access: { '*': ['pull', 'push'] } }, ...o.policy }, tokenRequests);
  } else if (o.auth !== false) {
    const { stdout } = await run('htpasswd', ['-Bbn', user, password]);
    await writeFile(join(dir, 'htpasswd'), stdout);
  }
  const storage = o.storage ?? join(dir, 'storage');
  if (!o.storage) await mkdir(storage);
  await writeFile(join(dir, 'config.yml'), [
    'version: 0.1',
    'log: { level: error }',
    `storage: { filesystem: { rootdirectory: ${storage} }, delete: { enabled: true } }`,
    `http: { addr: "${host}",${o.prefix ? ` prefix: "${o.prefix}",` : ''} tls: { certificate: ${join(dir, 'cert.pem')}, key: ${join(dir, 'key.pem')} } }`,
    ...(tokens ? [`auth: { token: { realm: "${tokens.realm}", service: berth-test-registry, issuer: berth-test-issuer, rootcertbundle: ${join(dir, 'ca.pem')} } }`]
      : o.auth !== false ? [`auth: { htpasswd: { realm: basic-realm, path: ${join(dir, 'htpasswd')} } }`] : []),
    '',
  ].join('\n'));
  const child: ChildProcess = spawn('/usr/bin/docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (b) => { err += b; });
  const agent = new Agent({ connect: { ca: readFileSync(join(dir, 'ca.pem')) } });
  for (let i = 0; ; i++) {
    try { const r = await request(`https://${host}${o.prefix ?? '/'}v2/`, { dispatcher: agent }); await r.body.dump(); break; } catch {
      if (i > 200 || child.exitCode !== null) {
        child.kill('SIGKILL');
        tokens?.stop();
        await rm(dir, { recursive: true, force: true });
        throw new Error(`docker-registry did not start: ${err}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  await agent.close();
  return {
    host, dir, storage, caFile: join(dir, 'ca.pem'), user, password, tokenRequests, pid: child.pid!,
    trustIn: async (configDir) => {
      await mkdir(join(configDir, 'certs.d', host), { recursive: true });
      await copyFile(join(dir, 'ca.pem'), join(configDir, 'certs.d', host, 'ca.crt'));
    },
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => { if (child.exitCode !== null || child.signalCode !== null) r(null); else child.once('exit', r); });
      tokens?.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
