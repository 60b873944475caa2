// Reads ava's TAP output and prints the closing "N passed, N failed" line (skips are named).
// Exit code: non-zero when anything failed or when ava itself failed.
import { readFileSync } from 'node:fs';

const [file, avaStatus] = process.argv.slice(2);
const lines = readFileSync(file, 'utf8').split('\n');
let passed = 0, failed = 0, skipped = 0, todo = 0;
for (const line of lines) {
  const m = /^(not ok|ok) \d+ /.exec(line);
  if (!m) continue;
  if (/# SKIP/i.test(line)) skipped++;
  else if (/# TODO/i.test(line)) todo++;
  else if (m[1] === 'ok') passed++;
  else failed++;
}
// ava exits non-zero for uncaught errors and timeouts that may not appear as a "not ok" line.
if (Number(avaStatus) !== 0 && failed === 0) failed = 1;
// the last line must be exactly "N passed, N failed": skips and todos are reported before it
if (skipped || todo) console.log(`(${skipped} skipped, ${todo} todo: see the TAP output above for why)`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
