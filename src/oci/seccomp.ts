// Docker-format seccomp profiles -> the OCI linux.seccomp section, evaluating each rule's
// includes/excludes (caps, arches, minKernel) against the container the way the Engine does:
// caps are checked against the bounding set, arches against the daemon's native arch name.
import { release } from 'node:os';
import { InvalidParameterError } from '../errors.js';
import type { OciSeccomp, OciSeccompArg, OciSyscall, SeccompAction } from './runtime-spec.js';
import { DEFAULT_SECCOMP_PROFILE } from './seccomp-default.js';

export interface SeccompFilter { caps?: string[]; arches?: string[]; minKernel?: string }

/** A syscall rule of a Docker-format profile. */
export interface DockerSyscallRule {
  name?: string;
  names?: string[];
  action: SeccompAction;
  errnoRet?: number;
  args?: OciSeccompArg[] | null;
  comment?: string;
  includes?: SeccompFilter | null;
  excludes?: SeccompFilter | null;
}

/** A profile as `docker run --security-opt seccomp=<file>` takes it. */
export interface DockerSeccompProfile {
  defaultAction: SeccompAction;
  defaultErrnoRet?: number;
  architectures?: string[];
  archMap?: { architecture: string; subArchitectures?: string[] | null }[] | null;
  flags?: string[];
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls?: DockerSyscallRule[] | null;
}

/** The generated default profile's form (see scripts/gen-seccomp.mjs). */
export interface CompactSeccompProfile {
  defaultAction: string;
  defaultErrnoRet: number | null;
  archMap: Record<string, string[]>;
  groups: { action?: string; errnoRet?: number; args?: OciSeccompArg[]; when?: SeccompFilter; unless?: SeccompFilter; names: string[] }[];
}

export interface SeccompContext {
  /** The container's bounding capabilities, CAP_ names. */
  capabilities: readonly string[];
  /** Architecture: Node's process.arch ("x64", "arm64", ...) or the Engine's names ("amd64", ...). */
  arch?: string;
  /** Kernel release "6.1.0-..." for minKernel checks; default: this host's. */
  kernel?: string;
}

const ACTIONS: ReadonlySet<string> = new Set([
  'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO',
  'SCMP_ACT_TRACE', 'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY',
]);
const OPS: ReadonlySet<string> = new Set([
  'SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ',
]);

/** Node arch names and Go arch names -> the Engine's "native" names used in profiles' arches. */
const NATIVE_ARCH: Record<string, string> = {
  x64: 'amd64', amd64: 'amd64', ia32: 'x86', '386': 'x86', x86: 'x86', arm: 'arm', arm64: 'arm64',
  ppc64: 'ppc64le', ppc64le: 'ppc64le', s390x: 's390x', s390: 's390', riscv64: 'riscv64',
  loong64: 'loongarch64', loongarch64: 'loongarch64', mips: 'mips', mipsel: 'mipsel', mips64: 'mips64', mips64el: 'mipsel64',
};
/** Native names -> libseccomp architecture names, to pick the archMap entry. */
const SCMP_ARCH: Record<string, string> = {
  x86: 'SCMP_ARCH_X86', amd64: 'SCMP_ARCH_X86_64', arm: 'SCMP_ARCH_ARM', arm64: 'SCMP_ARCH_AARCH64',
  loongarch64: 'SCMP_ARCH_LOONGARCH64', mips64: 'SCMP_ARCH_MIPS64', mipsel64: 'SCMP_ARCH_MIPSEL64',
  mipsel: 'SCMP_ARCH_MIPSEL', ppc64le: 'SCMP_ARCH_PPC64LE', riscv64: 'SCMP_ARCH_RISCV64',
  s390: 'SCMP_ARCH_S390', s390x: 'SCMP_ARCH_S390X',
};

/** The built-in default profile in Docker format. */
export function defaultDockerProfile(): DockerSeccompProfile {
  const p = DEFAULT_SECCOMP_PROFILE;
  return {
    defaultAction: p.defaultAction as SeccompAction,
    ...(p.defaultErrnoRet !== null ? { defaultErrnoRet: p.defaultErrnoRet } : {}),
    archMap: Object.entries(p.archMap).map(([architecture, subArchitectures]) => ({ architecture, subArchitectures })),
    syscalls: p.groups.map((g) => ({
      names: [...g.names],
      action: (g.action ?? 'SCMP_ACT_ALLOW') as SeccompAction,
      ...(g.errnoRet !== undefined ? { errnoRet: g.errnoRet } : {}),
      ...(g.args ? { args: g.args.map((a) => ({ ...a })) } : {}),
      ...(g.when ? { includes: g.when } : {}),
      ...(g.unless ? { excludes: g.unless } : {}),
    })),
  };
}

/**
 * Convert a Docker-format profile (JSON text, a parsed object, or "default" for the built-in one)
 * into OCI linux.seccomp for a container with these capabilities on this architecture.
 * Returns undefined for a profile that has neither a default action nor rules (no filtering).
 */
export function seccompFromDockerProfile(profile: string | DockerSeccompProfile | 'default', ctx: SeccompContext): OciSeccomp | undefined {
  const p = profile === 'default' ? defaultDockerProfile() : typeof profile === 'string' ? parseProfile(profile) : validateProfile(profile);
  if (!p.defaultAction && !(p.syscalls?.length)) return undefined;
  if (p.architectures?.length && p.archMap?.length) {
    throw new InvalidParameterError("both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'");
  }
  const arch = NATIVE_ARCH[ctx.arch ?? process.arch] ?? (ctx.arch ?? process.arch);
  const kernel = ctx.kernel ?? release();
  const caps = new Set(ctx.capabilities);

  const out: OciSeccomp = { defaultAction: p.defaultAction };
  if (p.defaultErrnoRet !== undefined) out.defaultErrnoRet = p.defaultErrnoRet;
  const archs = [...(p.architectures ?? [])];
  const mapped = p.archMap?.find((a) => a.architecture === SCMP_ARCH[arch]);
  if (mapped) archs.push(mapped.architecture, ...(mapped.subArchitectures ?? []));
  if (archs.length) out.architectures = archs;
  if (p.flags?.length) out.flags = [...p.flags];
  if (p.listenerPath) out.listenerPath = p.listenerPath;
  if (p.listenerMetadata) out.listenerMetadata = p.listenerMetadata;

  const syscalls: OciSyscall[] = [];
  for (const rule of p.syscalls ?? []) {
    if (rule.excludes && excluded(rule.excludes, arch, caps, kernel)) continue;
    if (rule.includes && !included(rule.includes, arch, caps, kernel)) continue;
    const names = rule.name ? [rule.name] : [...(rule.names ?? [])];
    const sc: OciSyscall = { names, action: rule.action };
    if (rule.errnoRet !== undefined) sc.errnoRet = rule.errnoRet;
    if (rule.args?.length) sc.args = rule.args.map((a) => ({ ...a }));
    syscalls.push(sc);
  }
  out.syscalls = syscalls;
  return out;
}

function excluded(f: SeccompFilter, arch: string, caps: Set<string>, kernel: string): boolean {
  if (f.arches?.length && f.arches.includes(arch)) return true;
  if (f.caps?.length && f.caps.some((c) => caps.has(c))) return true;
  if (f.minKernel && kernelAtLeast(kernel, f.minKernel)) return true;
  return false;
}

function included(f: SeccompFilter, arch: string, caps: Set<string>, kernel: string): boolean {
  if (f.arches?.length && !f.arches.includes(arch)) return false;
  if (f.caps?.length && !f.caps.every((c) => caps.has(c))) return false;
  if (f.minKernel && !kernelAtLeast(kernel, f.minKernel)) return false;
  return true;
}

/** "6.1.0-13-amd64" >= "4.8" ? */
export function kernelAtLeast(kernelRelease: string, min: string): boolean {
  const [k, m] = parseKernelVersion(min);
  const found = /^(\d+)\.(\d+)/.exec(kernelRelease);
  if (!found) return false;
  const rk = Number(found[1]), rm = Number(found[2]);
  return rk > k || (rk === k && rm >= m);
}

function parseKernelVersion(v: string): [number, number] {
  const m = /^(\d+)\.(\d+)$/.exec(v);
  if (!m || (Number(m[1]) === 0 && Number(m[2]) === 0)) {
    throw new InvalidParameterError(`invalid kernel version: "${v}", expected "<kernel>.<major>"`);
  }
  return [Number(m[1]), Number(m[2])];
}

function parseProfile(text: string): DockerSeccompProfile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new InvalidParameterError(`Decoding seccomp profile failed: ${(err as Error).message}`);
  }
  return validateProfile(parsed);
}

/** Type-check a parsed profile, with messages that say which field is wrong. */
function validateProfile(p: unknown): DockerSeccompProfile {
  const bad = (what: string): never => { throw new InvalidParameterError(`Decoding seccomp profile failed: ${what}`); };
  if (!p || typeof p !== 'object' || Array.isArray(p)) bad('profile must be a JSON object');
  const prof = p as Record<string, any>;
  if (prof.defaultAction !== undefined && prof.defaultAction !== '' && !ACTIONS.has(prof.defaultAction)) bad(`invalid defaultAction ${JSON.stringify(prof.defaultAction)}`);
  if (prof.defaultErrnoRet !== undefined && !Number.isInteger(prof.defaultErrnoRet)) bad('defaultErrnoRet must be an integer');
  if (prof.architectures !== undefined && prof.architectures !== null && !isStringArray(prof.architectures)) bad('architectures must be a list of strings');
  if (prof.archMap !== undefined && prof.archMap !== null) {
    if (!Array.isArray(prof.archMap)) bad('archMap must be a list');
    for (const a of prof.archMap) {
      if (!a || typeof a.architecture !== 'string') bad('archMap entries need an architecture');
      if (a.subArchitectures != null && !isStringArray(a.subArchitectures)) bad('subArchitectures must be a list of strings');
    }
  }
  if (prof.syscalls !== undefined && prof.syscalls !== null) {
    if (!Array.isArray(prof.syscalls)) bad('syscalls must be a list');
    for (const [i, sc] of (prof.syscalls as any[]).entries()) {
      if (!sc || typeof sc !== 'object') bad(`syscalls[${i}] must be an object`);
      if (sc.name && sc.names?.length) bad("both 'name' and 'names' are specified in the seccomp profile, use either 'name' or 'names'");
      if (sc.name !== undefined && typeof sc.name !== 'string') bad(`syscalls[${i}].name must be a string`);
      if (sc.names != null && !isStringArray(sc.names)) bad(`syscalls[${i}].names must be a list of strings`);
      if (!ACTIONS.has(sc.action)) bad(`syscalls[${i}] has invalid action ${JSON.stringify(sc.action)}`);
      if (sc.errnoRet != null && !Number.isInteger(sc.errnoRet)) bad(`syscalls[${i}].errnoRet must be an integer`);
      if (sc.args != null) {
        if (!Array.isArray(sc.args)) bad(`syscalls[${i}].args must be a list`);
        for (const a of sc.args) {
          if (!a || !Number.isInteger(a.index) || typeof a.value !== 'number' || !OPS.has(a.op)) bad(`syscalls[${i}].args has an invalid argument filter`);
        }
      }
      for (const key of ['includes', 'excludes']) {
        const f = sc[key];
        if (f == null) continue;
        if (typeof f !== 'object') bad(`syscalls[${i}].${key} must be an object`);
        if (f.caps != null && !isStringArray(f.caps)) bad(`syscalls[${i}].${key}.caps must be a list of strings`);
        if (f.arches != null && !isStringArray(f.arches)) bad(`syscalls[${i}].${key}.arches must be a list of strings`);
        if (f.minKernel != null && f.minKernel !== '') parseKernelVersion(String(f.minKernel));
      }
    }
  }
  return prof as DockerSeccompProfile;
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}
