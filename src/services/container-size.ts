// Sizes for `docker ps -s` and `docker inspect --size`: SizeRw is what the container wrote (its
// overlay upper dir), SizeRootFs adds the image's size, as the Engine reports them.
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { rootfsPaths } from './rootfs.js';

/** Bytes of regular files and symlinks below dir; hard links counted once. */
export async function treeSize(dir: string): Promise<number> {
  const seen = new Set<string>();
  let total = 0;
  const walk = async (d: string): Promise<void> => {
    let names: string[];
    try { names = await readdir(d); } catch { return; }
    for (const n of names) {
      const p = join(d, n);
      let st;
      try { st = await lstat(p); } catch { continue; }
      if (st.isDirectory()) { await walk(p); continue; }
      if (st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        if (seen.has(key)) continue;
        seen.add(key);
      }
      if (st.isFile() || st.isSymbolicLink()) total += st.size;
    }
  };
  await walk(dir);
  return total;
}

export async function containerSizes(containerDir: string, imageSize: number): Promise<{ rw: number; rootFs: number }> {
  const rw = await treeSize(rootfsPaths(containerDir).upper);
  return { rw, rootFs: rw + imageSize };
}
