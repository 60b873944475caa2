import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidParameterError } from '../errors.js';
import { DEFAULT_CAPABILITIES } from './defaults.js';
import { kernelAtLeast, seccompFromDockerProfile } from './seccomp.js';
import type { OciSeccomp } from './runtime-spec.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const ctx = { capabilities: DEFAULT_CAPABILITIES, arch: 'x64', kernel: '6.1.0' };

/** The action the filter applies to a syscall called without argument filters. */
function actionFor(s: OciSeccomp, name: string): string {
  const rule = s.syscalls?.find((r) => r.names.includes(name) && !r.args?.length);
  return rule?.action ?? s.defaultAction;
}

test('default profile: errno by default, x86_64 with its sub-architectures', (t) => {
  const s = seccompFromDockerProfile('default', ctx)!;
  t.is(s.defaultAction, 'SCMP_ACT_ERRNO');
  t.is(s.defaultErrnoRet, 1);
  t.deepEqual(s.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  t.is(actionFor(s, 'read'), 'SCMP_ACT_ALLOW');
  t.is(actionFor(s, 'arch_prctl'), 'SCMP_ACT_ALLOW'); // amd64-only rule
  t.is(actionFor(s, 'sync_file_range2'), 'SCMP_ACT_ERRNO'); // ppc64le-only rule
});

test('default profile denies unshare, mount, setns, keyctl without CAP_SYS_ADMIN', (t) => {
  const s = seccompFromDockerProfile('default', ctx)!;
  for (const name of ['unshare', 'mount', 'umount2', 'setns', 'keyctl', 'add_key', 'reboot', 'init_module']) {
    t.is(actionFor(s, name), 'SCMP_ACT_ERRNO', name);
  }
  // clone is allowed only without namespace flags; clone3 gets ENOSYS so libc falls back to clone.
  const clone = s.syscalls!.find((r) => r.names.includes('clone'))!;
  t.deepEqual(clone.args, [{ index: 0, value: 2114060288, op: 'SCMP_CMP_MASKED_EQ' }]);
  const clone3 = s.syscalls!.find((r) => r.names.includes('clone3'))!;
  t.deepEqual([clone3.action, clone3.errnoRet], ['SCMP_ACT_ERRNO', 38]);
});

test('CAP_SYS_ADMIN opens what the Docker profile ties to it; keyctl stays denied', (t) => {
  const s = seccompFromDockerProfile('default', { ...ctx, capabilities: [...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN'] })!;
  for (const name of ['unshare', 'mount', 'setns', 'clone', 'clone3']) t.is(actionFor(s, name), 'SCMP_ACT_ALLOW', name);
  t.is(actionFor(s, 'keyctl'), 'SCMP_ACT_ERRNO');
  t.falsy(s.syscalls!.find((r) => r.names.includes('clone3') && r.action === 'SCMP_ACT_ERRNO'));
  t.is(actionFor(s, 'reboot'), 'SCMP_ACT_ERRNO');
  const b = seccompFromDockerProfile('default', { ...ctx, capabilities: [...DEFAULT_CAPABILITIES, 'CAP_SYS_BOOT'] })!;
  t.is(actionFor(b, 'reboot'), 'SCMP_ACT_ALLOW');
});

test('architecture selects the archMap entry and arch-only rules', (t) => {
  const s = seccompFromDockerProfile('default', { ...ctx, arch: 'arm64' })!;
  t.deepEqual(s.architectures, ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
  t.is(actionFor(s, 'arch_prctl'), 'SCMP_ACT_ERRNO');
  t.is(actionFor(s, 'arm_fadvise64_64'), 'SCMP_ACT_ALLOW');
});

test('minKernel includes depend on the kernel release', (t) => {
  const newer = seccompFromDockerProfile('default', ctx)!;
  const older = seccompFromDockerProfile('default', { ...ctx, kernel: '4.4.0-generic' })!;
  // ptrace is safe from 4.8 on; before, only with CAP_SYS_PTRACE.
  t.is(actionFor(newer, 'ptrace'), 'SCMP_ACT_ALLOW');
  t.is(actionFor(older, 'ptrace'), 'SCMP_ACT_ERRNO');
  const olderPtrace = seccompFromDockerProfile('default', { ...ctx, kernel: '4.4.0', capabilities: [...DEFAULT_CAPABILITIES, 'CAP_SYS_PTRACE'] })!;
  t.is(actionFor(olderPtrace, 'ptrace'), 'SCMP_ACT_ALLOW');
  t.true(kernelAtLeast('4.8.0', '4.8'));
  t.true(kernelAtLeast('5.0', '4.8'));
  t.false(kernelAtLeast('4.7.9', '4.8'));
});

test('a custom profile is honoured: name/names, args, errnoRet, architectures, excludes', (t) => {
  const profile = {
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ['SCMP_ARCH_X86_64'],
    syscalls: [
      { name: 'chmod', action: 'SCMP_ACT_ERRNO', errnoRet: 13 },
      { names: ['personality'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 8, op: 'SCMP_CMP_NE' }] },
      { names: ['mkdir'], action: 'SCMP_ACT_ERRNO', excludes: { caps: ['CAP_CHOWN'] } },
      { names: ['rmdir'], action: 'SCMP_ACT_KILL', includes: { caps: ['CAP_SYS_ADMIN', 'CAP_CHOWN'] } },
    ],
  };
  const s = seccompFromDockerProfile(JSON.stringify(profile), ctx)!;
  t.deepEqual(s, {
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ['SCMP_ARCH_X86_64'],
    syscalls: [
      { names: ['chmod'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 },
      { names: ['personality'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 8, op: 'SCMP_CMP_NE' }] },
    ],
  });
});

test('malformed profiles are InvalidParameterError', (t) => {
  const bad = [
    '{not json',
    '[]',
    JSON.stringify({ defaultAction: 'SCMP_ACT_NOPE' }),
    JSON.stringify({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'ALLOW' }] }),
    JSON.stringify({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ name: 'read', names: ['write'], action: 'SCMP_ACT_ALLOW' }] }),
    JSON.stringify({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: [1], action: 'SCMP_ACT_ALLOW' }] }),
    JSON.stringify({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, op: 'EQ' }] }] }),
    JSON.stringify({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: 'four' } }] }),
    JSON.stringify({ defaultAction: 'SCMP_ACT_ERRNO', architectures: ['SCMP_ARCH_X86_64'], archMap: [{ architecture: 'SCMP_ARCH_X86_64' }] }),
  ];
  for (const p of bad) t.throws(() => seccompFromDockerProfile(p, ctx), { instanceOf: InvalidParameterError }, p);
});

test('an empty profile means no filter', (t) => {
  t.is(seccompFromDockerProfile('{}', ctx), undefined);
});

test('the generated default profile is up to date with the generator and its source', (t) => {
  const source = resolve(repo, '../shared/spec/seccomp-default.json');
  if (!existsSync(source)) { t.log(`skipped: ${source} not present`); t.pass(); return; }
  const dir = mkdtempSync(join(tmpdir(), 'berth-seccomp-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'seccomp-default.ts');
  execFileSync(process.execPath, [join(repo, 'scripts/gen-seccomp.mjs'), source, out]);
  t.is(readFileSync(out, 'utf8'), readFileSync(join(repo, 'src/oci/seccomp-default.ts'), 'utf8'));
  // Every syscall name of the source survives the regrouping.
  const src = JSON.parse(readFileSync(source, 'utf8'));
  const names = new Set<string>(src.syscalls.flatMap((s: any) => s.names ?? [s.name]));
  const generated = readFileSync(out, 'utf8');
  for (const n of names) t.true(generated.includes(JSON.stringify(n)), n);
});
