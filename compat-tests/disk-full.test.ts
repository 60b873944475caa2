// Disk full: with the data-root on a small tmpfs, image imports and log writes that hit ENOSPC
// fail with a clear error, the daemon keeps serving, and the store stays loadable and consistent.
import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BERTHD, startDaemon } from './harness.js';
import { ensureBusyboxTar, removeAllAndStop } from './images-fixture.js';
import { startRegistry, type Registry } from './registry-fixture.js';

const run = promisify(execFile);

test('ENOSPC: clear errors, the daemon keeps serving, the store stays consistent', async (t) => {
  const mnt = await mkdtemp('/tmp/bdf-');
  await run('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', mnt]);
  const dataRoot = join(mnt, 'data');
  const d = await startDaemon({ dataRoot });
  let reg: Registry | undefined;
  try {
    t.is((await d.docker(['load', '-i', await ensureBusyboxTar()])).code, 0);
    // an image in a registry to pull once the disk is full
    reg = await startRegistry();
    await reg.trustIn(d.dir);
    await d.docker(['login', '-u', reg.user, '--password-stdin', reg.host], { input: `${reg.password}\n` });
    await d.docker(['tag', 'busybox', `${reg.host}/full/pull:1`]);
    t.is((await d.docker(['push', `${reg.host}/full/pull:1`])).code, 0);
    await d.docker(['rmi', `${reg.host}/full/pull:1`, 'busybox']);
    // fill the filesystem, leaving a few KiB
    const fill = async () => {
      const fs = await statfs(mnt);
      const free = fs.bavail * fs.bsize;
      await run('dd', ['if=/dev/zero', `of=${join(mnt, `filler-${Date.now()}`)}`, 'bs=4096', `count=${Math.max(0, Math.floor((free - 64 * 1024) / 4096))}`]).catch(() => {});
    };
    await fill();
    // a pull that needs more than is left: a clear error, nothing kept
    const pull = await d.docker(['pull', `${reg.host}/full/pull:1`]);
    t.not(pull.code, 0);
    t.regex(pull.stderr + pull.stdout, /no space left on device/i);
    t.is((await d.docker(['images', '-q'])).stdout.trim(), '');
    // room again for the image and a container with 2 MB of changes, then full again
    await run('sh', ['-c', `rm -f ${mnt}/filler-*`]);
    t.is((await d.docker(['load', '-i', await ensureBusyboxTar()])).code, 0);
    t.is((await d.docker(['run', '--name', 'changes', 'busybox', 'sh', '-c', 'head -c 2000000 /dev/urandom > /data.bin'])).code, 0);
    await fill();

    // an import that needs more than is left
    const imp = await new Promise<{ code: number; stderr: string }>((resolve) => {
      const p = spawn('sh', ['-c', `head -c 3000000 /dev/urandom > /tmp/bdf-blob.$$; tar -C /tmp -cf - bdf-blob.$$ | docker import - big:1; r=$?; rm -f /tmp/bdf-blob.$$; exit $r`],
        { env: { ...process.env, DOCKER_HOST: d.host } });
      let stderr = ''; p.stderr.on('data', (b) => { stderr += b; });
      p.on('close', (code) => resolve({ code: code ?? -1, stderr }));
    });
    t.not(imp.code, 0);
    t.regex(imp.stderr, /no space left on device/i);
    t.is((await d.docker(['images', '-q', 'big'])).stdout.trim(), '');

    // a container that logs faster than the disk allows: its monitor copes, the daemon serves
    const chatty = await d.docker(['run', '-d', '--name', 'chatty', 'busybox', 'sh', '-c', 'while true; do echo 0123456789012345678901234567890123456789; done']);
    if (chatty.code === 0) {
      await new Promise((r) => setTimeout(r, 1000));
      t.is((await d.docker(['ps', '-a', '--format', '{{.Names}}'])).code, 0);
      t.is((await d.docker(['logs', '--tail', '1', 'chatty'])).code, 0);
      t.is((await d.docker(['rm', '-f', 'chatty'])).code, 0);
    } else {
      t.regex(chatty.stderr, /no space left on device/i); // the create itself could not be written
    }
    const commit = await d.docker(['commit', 'changes', 'full:1']);
    if (commit.code === 0) t.fail('commit succeeded on a full disk');
    else t.regex(commit.stderr, /no space left on device/i);
    const ctx = await mkdtemp('/tmp/bdf-ctx-');
    await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN head -c 3000000 /dev/urandom > /big\n');
    const build = await d.docker(['build', '-t', 'full:2', ctx], { env: { DOCKER_BUILDKIT: '0' } });
    await rm(ctx, { recursive: true, force: true });
    t.not(build.code, 0);
    // the step's own 'No space left' may be lost (its log is on the full disk too): its exit status is reported
    t.regex(build.stderr + build.stdout, /[Nn]o space left on device|returned a non-zero code/);
    t.is((await d.docker(['images', '-q', 'full'])).stdout.trim(), '');
    t.is((await d.docker(['version'])).code, 0);

    // space comes back: everything works again after a restart, and the store checks clean
    await run('sh', ['-c', `rm -f ${mnt}/filler-*`]);
    await d.stop({ keep: true });
    const check = await run(process.execPath, [BERTHD, 'check', '--data-root', dataRoot, '--exec-root', d.execRoot]).catch((e) => e);
    t.is(check.stdout, '0 problems found\n', check.stdout);
    await d.restart();
    const hi = await d.docker(['run', '--rm', 'busybox', 'echo', 'hi']);
    t.is(hi.stdout, 'hi\n', hi.stderr);
  } finally {
    await removeAllAndStop(d);
    await reg?.stop();
    await run('umount', ['-l', mnt]).catch(() => {});
    await rm(mnt, { recursive: true, force: true });
  }
});
