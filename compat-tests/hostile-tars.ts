// One table of hostile tar archives, used against every way Berth unpacks a tar it did not make
// (layer extraction, docker load, docker import; docker cp, build contexts and pulls use it too).
// Each case writes, if it escaped, under `outside` (a directory the test owns) or changes `outside`
// itself, so a test only has to check that outsideState(outside) is what it was.
import tar from 'tar-stream';
import { createHash } from 'node:crypto';
import { lstat, readdir } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

export interface HostileCase { name: string; tar: Buffer }

type Entry = { header: Partial<tar.Header> & { name: string }; data?: string | Buffer };

export function packTar(entries: Entry[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const p = tar.pack();
    const chunks: Buffer[] = [];
    p.on('data', (c: unknown) => chunks.push(c as Buffer));
    p.on('end', () => resolve(Buffer.concat(chunks)));
    p.on('error', reject);
    for (const e of entries) p.entry(e.header as tar.Header, e.data ?? '');
    p.finalize();
  });
}

/** A raw ustar header whose size field claims `size` bytes, followed by far fewer. */
function giantHeader(name: string, size: number): Buffer {
  const hdr = Buffer.alloc(512);
  hdr.write(name, 0);
  hdr.write('0000644\0', 100); hdr.write('0000000\0', 108); hdr.write('0000000\0', 116);
  hdr.write(size.toString(8).padStart(11, '0') + '\0', 124);
  hdr.write('00000000000\0', 136); hdr.write('        ', 148); hdr.write('0', 156); hdr.write('ustar\x0000', 257);
  let sum = 0; for (const b of hdr) sum += b;
  hdr.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return Buffer.concat([hdr, Buffer.alloc(4096)]);
}

/** Relative path from the extraction root to `outside`, through enough `..` to reach `/`. */
const up = (outside: string) => '../'.repeat(40) + outside.replace(/^\//, '');

export async function hostileTars(outside: string): Promise<HostileCase[]> {
  const deep = Array.from({ length: 300 }, () => 'd').join('/');
  return [
    { name: 'path traversal', tar: await packTar([{ header: { name: `${up(outside)}/traversal` }, data: 'x' }]) },
    { name: 'absolute path', tar: await packTar([{ header: { name: `${outside}/absolute` }, data: 'x' }]) },
    { name: 'symlink then write through it', tar: await packTar([
      { header: { name: 'link', type: 'symlink', linkname: outside } },
      { header: { name: 'link/through-symlink' }, data: 'x' },
    ]) },
    { name: 'relative symlink then write', tar: await packTar([
      { header: { name: 'rel', type: 'symlink', linkname: up(outside) } },
      { header: { name: 'rel/through-relative-symlink' }, data: 'x' },
    ]) },
    { name: 'symlink to a directory, then a directory through it', tar: await packTar([
      { header: { name: 'dlink', type: 'symlink', linkname: outside } },
      { header: { name: 'dlink/sub', type: 'directory' } },
      { header: { name: 'dlink/sub/file' }, data: 'x' },
    ]) },
    { name: 'hard link to a file outside', tar: await packTar([
      { header: { name: 'hl', type: 'link', linkname: '/etc/hostname' } },
      { header: { name: 'hl2', type: 'link', linkname: `${up(outside)}/../hostname` } },
    ]) },
    { name: 'device node', tar: await packTar([{ header: { name: 'disk', type: 'block-device', devmajor: 8, devminor: 0 } }]) },
    { name: 'giant size field', tar: giantHeader('giant', 2 ** 33 - 1) },
    { name: 'deep nesting', tar: await packTar([{ header: { name: `${deep}/file` }, data: 'x' }]) },
    // owner, mode and times of directories are set at the end: by then `a` is a symlink to
    // outside's parent, and a fix-up that followed it would change outside itself
    { name: 'directory fixed up through a symlink put in its parent\'s place', tar: await packTar([
      { header: { name: 'a/', type: 'directory' } },
      { header: { name: `a/${basename(outside)}/`, type: 'directory', mode: 0o777, mtime: new Date('2001-02-03T04:05:06Z') } },
      { header: { name: 'a', type: 'symlink', linkname: dirname(outside) } },
    ]) },
    { name: 'symlink fixed up through a symlink put in its parent\'s place', tar: await packTar([
      { header: { name: 'b/', type: 'directory' } },
      { header: { name: `b/${basename(outside)}`, type: 'symlink', linkname: 'x', mtime: new Date('2001-02-03T04:05:06Z') } },
      { header: { name: 'b', type: 'symlink', linkname: dirname(outside) } },
    ]) },
    // whiteouts naming the directory they are in, or its parent (the layer's own parent at the top)
    { name: 'whiteout of "." and ".."', tar: await packTar([
      { header: { name: 'sub/', type: 'directory' } },
      { header: { name: 'sub/.wh..' } },
      { header: { name: '.wh...' } },
    ]) },
    { name: 'duplicate entries', tar: await packTar([
      { header: { name: 'dup' }, data: 'first' },
      { header: { name: 'dup', type: 'symlink', linkname: outside } },
      { header: { name: 'dup/after-duplicate' }, data: 'x' },
    ]) },
  ];
}

/** What a hostile archive must leave as it was: outside's entries, owner, mode and times. */
export async function outsideState(outside: string): Promise<Record<string, unknown>> {
  const st = await lstat(outside);
  return { entries: await readdir(outside), mode: st.mode, uid: st.uid, gid: st.gid, mtime: st.mtimeMs };
}

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** Wraps a layer tar as a docker-archive (manifest.json + config) for `docker load`. */
export async function asImageArchive(layer: Buffer, tag: string): Promise<Buffer> {
  const config = JSON.stringify({
    architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: [`sha256:${sha(layer)}`] }, history: [{ created_by: 'hostile' }],
  });
  const configName = `${sha(config)}.json`;
  return packTar([
    { header: { name: 'layer/layer.tar' }, data: layer },
    { header: { name: configName }, data: config },
    { header: { name: 'manifest.json' }, data: JSON.stringify([{ Config: configName, RepoTags: [tag], Layers: ['layer/layer.tar'] }]) },
  ]);
}

/** docker-archives whose own structure is hostile (manifest pointing outside the archive). */
export async function hostileArchives(outside: string): Promise<HostileCase[]> {
  return [
    { name: 'manifest layer path outside the archive', tar: await packTar([
      { header: { name: 'manifest.json' }, data: JSON.stringify([{ Config: '../../../../etc/hostname', RepoTags: ['evil:1'], Layers: [`${up(outside)}/x`] }]) },
    ]) },
    { name: 'archive entry through a symlink', tar: await packTar([
      { header: { name: 'blobs', type: 'symlink', linkname: outside } },
      { header: { name: 'blobs/planted' }, data: 'x' },
      { header: { name: 'manifest.json' }, data: '[]' },
    ]) },
  ];
}
