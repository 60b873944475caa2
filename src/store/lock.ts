// An exclusive lock on a directory for one daemon process. Node has no flock(2), so the lock is
// a file created with O_EXCL that records the owner's PID and process start time; a lock whose
// owner is gone (crash, SIGKILL) is stale and is taken over. The start time guards against PID reuse.
import { open, readFile, unlink } from 'node:fs/promises';

export interface LockOwner { pid: number; start: string }

export class LockedError extends Error {
  constructor(readonly path: string, readonly owner: LockOwner) {
    super(`${path} is held by another process (pid ${owner.pid})`);
  }
}

export interface HeldLock {
  path: string;
  release(): Promise<void>;
}

/** Field 22 of /proc/<pid>/stat: start time in clock ticks since boot; '' if no such process. */
export async function processStartTime(pid: number): Promise<string> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  if (!stat) return '';
  // The command name (field 2) may contain spaces and parentheses: split after its last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return rest[19] ?? '';
}

async function readOwner(path: string): Promise<LockOwner | undefined> {
  const text = await readFile(path, 'utf8').catch((e) => { if (e.code === 'ENOENT') return undefined; throw e; });
  if (text === undefined) return undefined;
  const [pid, start] = text.trim().split(/\s+/);
  return { pid: Number(pid) || 0, start: start ?? '' };
}

export async function isAlive(owner: LockOwner): Promise<boolean> {
  if (!(owner.pid > 0)) return false;
  const start = await processStartTime(owner.pid);
  return start !== '' && (owner.start === '' || owner.start === start);
}

async function createExclusive(path: string, content: string): Promise<boolean> {
  try {
    const fh = await open(path, 'wx', 0o600);
    try { await fh.writeFile(content); await fh.sync(); } finally { await fh.close(); }
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

/**
 * Takes the lock at `path` or throws LockedError naming the live owner. Takeover of a stale lock
 * is serialised through `<path>.takeover`, so two starting daemons cannot both remove it.
 */
export async function acquireLock(path: string): Promise<HeldLock> {
  const me = `${process.pid} ${await processStartTime(process.pid)}\n`;
  for (let attempt = 0; attempt < 50; attempt++) {
    if (await createExclusive(path, me)) return held(path, me);
    const owner = await readOwner(path);
    if (!owner) continue; // released in between: try again
    if (await isAlive(owner) && owner.pid !== process.pid) throw new LockedError(path, owner);
    const guard = `${path}.takeover`;
    if (!(await createExclusive(guard, me))) {
      const g = await readOwner(guard);
      if (g && !(await isAlive(g))) await unlink(guard).catch(() => {});
      await new Promise((r) => setTimeout(r, 20));
      continue;
    }
    try {
      const again = await readOwner(path);
      if (again && again.pid === owner.pid && again.start === owner.start) await unlink(path).catch(() => {});
    } finally {
      await unlink(guard).catch(() => {});
    }
  }
  throw new Error(`could not acquire ${path}`);
}

function held(path: string, me: string): HeldLock {
  return {
    path,
    release: async () => {
      const text = await readFile(path, 'utf8').catch(() => '');
      if (text === me) await unlink(path).catch(() => {});
    },
  };
}
