// What ContainerService and ExecService use from the OCI spec builder, in one import.
export { buildSpec, containerEnv, parseSecurityOpt, replaceOrAppendEnv, type SpecInput, type HostFacts } from './spec.js';
export { mergeImageConfig } from './merge-config.js';
export { resolveUser, resolveInRoot, type ResolvedUser } from './user.js';
export { seccompFromDockerProfile, defaultDockerProfile } from './seccomp.js';
export type { OciSpec } from './runtime-spec.js';
export type { ContainerConfig, HostConfig } from './docker-types.js';
