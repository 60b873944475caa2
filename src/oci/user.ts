// Resolving a container's User ("name", "uid", "name:group", "uid:gid") and GroupAdd against the
// image's /etc/passwd and /etc/group, with the Engine's (moby/sys/user) matching rules and messages.
// The files are read inside the rootfs with symlinks resolved relative to it, so a hostile image
// cannot make the daemon read host files.
import { lstat, readFile, readlink } from 'node:fs/promises';
import { posix } from 'node:path';
import { InvalidParameterError } from '../errors.js';

export interface ResolvedUser {
  uid: number;
  gid: number;
  /** The Engine's process.user.additionalGids: [gid, ...supplementary groups, ...GroupAdd]. */
  additionalGids: number[];
  home?: string;
}

interface PasswdEntry { name: string; uid: number; gid: number; home: string }
interface GroupEntry { name: string; gid: number; members: string[] }

const MAX_ID = 2 ** 31 - 1;
const MAX_SYMLINKS = 255;

/**
 * Resolve `path` (absolute, as seen inside the container) to a host path under `root`, following
 * symlinks as the container would see them: ".." and absolute targets never leave `root`.
 * A missing component ends the walk (the caller then gets ENOENT on open).
 */
export async function resolveInRoot(root: string, path: string): Promise<string> {
  const pending = path.split('/').filter((p) => p !== '' && p !== '.');
  const done: string[] = [];
  let links = 0;
  while (pending.length) {
    const part = pending.shift()!;
    if (part === '..') { done.pop(); continue; }
    const host = posix.join(root, ...done, part);
    let st;
    try { st = await lstat(host); } catch { return posix.join(root, ...done, part, ...pending); }
    if (!st.isSymbolicLink()) { done.push(part); continue; }
    if (++links > MAX_SYMLINKS) throw new InvalidParameterError(`too many levels of symbolic links: ${path}`);
    const target = await readlink(host);
    if (target.startsWith('/')) done.length = 0;
    pending.unshift(...target.split('/').filter((p) => p !== '' && p !== '.'));
  }
  return posix.join(root, ...done);
}

/** Contents of a file inside the rootfs, or undefined when it does not exist or is not a regular file. */
async function readInRoot(root: string, path: string): Promise<string | undefined> {
  const host = await resolveInRoot(root, path);
  try {
    const st = await lstat(host);
    if (!st.isFile()) return undefined;
    return await readFile(host, 'utf8');
  } catch {
    return undefined;
  }
}

function atoi(s: string | undefined): number {
  // Go's Atoi with the error ignored: anything unparsable is 0.
  return s !== undefined && /^[+-]?\d+$/.test(s) ? Number(s) : 0;
}

function lines(text: string | undefined): string[] {
  return (text ?? '').split('\n').map((l) => l.trim()).filter((l) => l !== '');
}

export function parsePasswd(text: string | undefined): PasswdEntry[] {
  return lines(text).map((l) => {
    const f = l.split(':');
    return { name: f[0] ?? '', uid: atoi(f[2]), gid: atoi(f[3]), home: f[5] ?? '' };
  });
}

export function parseGroup(text: string | undefined): GroupEntry[] {
  return lines(text).filter((l) => !l.startsWith('#')).map((l) => {
    const f = l.split(':');
    return { name: f[0] ?? '', gid: atoi(f[2]), members: f[3] ? f[3].split(',') : [] };
  });
}

/** A user or group argument: numeric ids must be in 0..2^31-1. */
function numeric(v: string): number | undefined {
  if (v === '' || !/^[+-]?\d+$/.test(v)) return undefined;
  const n = Number(v);
  if (n < 0 || n > MAX_ID) throw new InvalidParameterError(`uids and gids must be in range 0-${MAX_ID}`);
  return n;
}

/**
 * The Engine's user resolution for `--user` and `--group-add`. "" is root (uid 0 and root's
 * passwd entry if any); an unknown name is an error, an unknown numeric id is used as is.
 */
export async function resolveUser(rootfs: string, user: string | undefined, groupAdd?: string[] | null): Promise<ResolvedUser> {
  const passwdText = await readInRoot(rootfs, '/etc/passwd');
  const groupText = await readInRoot(rootfs, '/etc/group');
  const passwd = parsePasswd(passwdText);
  const groups = parseGroup(groupText);

  const [userArg = '', groupArg = ''] = (user ?? '').split(':');
  const uidArg = numeric(userArg);
  const gidArg = numeric(groupArg);

  let uid = 0, gid = 0, home: string | undefined;
  let sgids: number[] = [];
  const match = passwd.find((u) => (userArg === '' ? u.uid === 0 : uidArg !== undefined ? u.uid === uidArg : u.name === userArg));
  let matchedName = '';
  if (match) {
    matchedName = match.name; uid = match.uid; gid = match.gid; home = match.home;
  } else if (userArg !== '') {
    if (uidArg === undefined) throw new InvalidParameterError(`unable to find user ${userArg}: no matching entries in passwd file`);
    uid = uidArg;
  }

  if (groupArg !== '') {
    const g = groups.find((e) => (gidArg !== undefined ? e.gid === gidArg : e.name === groupArg));
    if (g) gid = g.gid;
    else if (gidArg === undefined) throw new InvalidParameterError(`unable to find group ${groupArg}: no matching entries in group file`);
    else gid = gidArg;
  } else if (matchedName !== '') {
    // Supplementary groups only in the implicit form (no explicit group given).
    sgids = groups.filter((e) => e.members.includes(matchedName)).map((e) => e.gid);
  }

  const extra = resolveGroupAdd(groupAdd ?? [], groups);
  const result: ResolvedUser = { uid, gid, additionalGids: [...new Set([gid, ...sgids, ...extra])] };
  if (home !== undefined) result.home = home;
  return result;
}

/** GroupAdd entries: a group name from the image's /etc/group, or a numeric gid. */
function resolveGroupAdd(names: string[], groups: GroupEntry[]): number[] {
  const out: number[] = [];
  for (const name of names) {
    const id = numeric(name);
    const g = groups.find((e) => e.name === name || (id !== undefined && e.gid === id));
    if (g) out.push(g.gid);
    else if (id !== undefined) out.push(id);
    else throw new InvalidParameterError(`unable to find group ${name}: no matching entries in group file`);
  }
  return out;
}
