// A bounded number of async tasks at a time: the layers of a pull (max-concurrent-downloads)
// or a push (max-concurrent-uploads). The first failure stops new tasks and is thrown.

/** Runs at most `limit` of the tasks at a time. */
export async function limited<T>(items: T[], limit: number, fn: (x: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length && failed === undefined) {
      const i = next++;
      try { await fn(items[i]!, i); } catch (err) { failed ??= err; }
    }
  }));
  if (failed !== undefined) throw failed;
}
