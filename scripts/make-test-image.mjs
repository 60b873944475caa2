#!/usr/bin/env node
// Builds busybox:latest as a `docker load` archive from Debian's busybox-static, deterministically
// (fixed mtimes, sorted entries, root-owned) so the image ID is the same on every machine with
// the same busybox binary. Usage: scripts/make-test-image [out.tar] [--tag name:tag]
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const require = createRequire(join(dirname(fileURLToPath(import.meta.url)), '..', 'package.json'));
const tar = require('tar-stream');

const args = process.argv.slice(2);
let out = 'busybox.tar';
let tag = 'busybox:latest';
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--tag') tag = args[++i];
  else out = args[i];
}
const BUSYBOX = process.env.BUSYBOX || '/bin/busybox';
const MTIME = new Date('2024-01-01T00:00:00Z');
const CREATED = MTIME.toISOString().replace('.000Z', 'Z');

function packToBuffer(entries) {
  return new Promise((resolve, reject) => {
    const pack = tar.pack();
    const chunks = [];
    pack.on('data', (c) => chunks.push(c));
    pack.on('end', () => resolve(Buffer.concat(chunks)));
    pack.on('error', reject);
    for (const e of entries) pack.entry({ uid: 0, gid: 0, uname: 'root', gname: 'root', mtime: MTIME, ...e.header }, e.data);
    pack.finalize();
  });
}

const sha = (b) => 'sha256:' + createHash('sha256').update(b).digest('hex');

const busybox = readFileSync(BUSYBOX);
const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox').sort();
const dir = (name, mode = 0o755) => ({ header: { name: name + '/', type: 'directory', mode } });
const file = (name, data, mode = 0o644) => ({ header: { name, type: 'file', mode }, data: Buffer.from(data) });
const entries = [
  dir('bin'),
  { header: { name: 'bin/busybox', type: 'file', mode: 0o755 }, data: busybox },
  ...applets.map((a) => ({ header: { name: `bin/${a}`, type: 'symlink', linkname: 'busybox', mode: 0o777 } })),
  dir('dev'),
  dir('etc'),
  file('etc/group', 'root:x:0:\ndaemon:x:1:\nbin:x:2:\nsys:x:3:\nadm:x:4:\ntty:x:5:\nwheel:x:10:\nusers:x:100:\nnogroup:x:65534:\n'),
  file('etc/hostname', 'busybox\n'),
  file('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n'),
  file('etc/shadow', 'root:*:10933:0:99999:7:::\nnobody:*:10933:0:99999:7:::\n', 0o600),
  dir('home'),
  dir('proc'),
  dir('root', 0o700),
  dir('sys'),
  dir('tmp', 0o1777),
  dir('usr'),
  dir('usr/sbin'),
  dir('var'),
  dir('var/spool'),
  dir('var/spool/mail'),
  dir('var/www'),
];
const layer = await packToBuffer(entries);
const diffId = sha(layer);
const config = {
  architecture: 'amd64',
  config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] },
  created: CREATED,
  history: [
    { created: CREATED, created_by: 'BusyBox from Debian busybox-static (scripts/make-test-image)' },
    { created: CREATED, created_by: 'CMD ["sh"]', empty_layer: true },
  ],
  os: 'linux',
  rootfs: { type: 'layers', diff_ids: [diffId] },
};
const configBytes = Buffer.from(JSON.stringify(config));
const configDigest = sha(configBytes);
const layerPath = `${diffId.slice(7)}/layer.tar`;
const archive = await packToBuffer([
  dir(diffId.slice(7)),
  { header: { name: layerPath, type: 'file', mode: 0o644 }, data: layer },
  file(`${configDigest.slice(7)}.json`, configBytes),
  file('manifest.json', JSON.stringify([{ Config: `${configDigest.slice(7)}.json`, RepoTags: [tag], Layers: [layerPath] }])),
]);
writeFileSync(out, archive);
process.stdout.write(`${configDigest}\n`);
