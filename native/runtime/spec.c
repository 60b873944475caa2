/* Reading config.json (OCI runtime spec 1.0-1.2) with json-c. Fields the runtime cannot honour
 * are refused with an error naming them, never ignored. */
#include "rt.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

json_object *jget(json_object *o, const char *key) {
  json_object *v = NULL;
  if (!o || !json_object_is_type(o, json_type_object)) return NULL;
  if (!json_object_object_get_ex(o, key, &v)) return NULL;
  if (json_object_is_type(v, json_type_null)) return NULL;
  return v;
}

int jhas(json_object *o, const char *key) { return jget(o, key) != NULL; }

const char *jstr(json_object *o, const char *key, const char *ctx) {
  json_object *v = jget(o, key);
  if (!v) return NULL;
  if (!json_object_is_type(v, json_type_string)) fail("config: %s.%s must be a string", ctx, key);
  return json_object_get_string(v);
}

int64_t jint(json_object *o, const char *key, int64_t def, const char *ctx) {
  json_object *v = jget(o, key);
  if (!v) return def;
  if (!json_object_is_type(v, json_type_int)) fail("config: %s.%s must be an integer", ctx, key);
  return json_object_get_int64(v);
}

uint64_t juint(json_object *o, const char *key, uint64_t def, const char *ctx) {
  json_object *v = jget(o, key);
  if (!v) return def;
  if (!json_object_is_type(v, json_type_int)) fail("config: %s.%s must be an integer", ctx, key);
  errno = 0;
  uint64_t u = json_object_get_uint64(v);
  if (json_object_get_int64(v) < 0 && u == 0) fail("config: %s.%s must not be negative", ctx, key);
  return u;
}

int jbool(json_object *o, const char *key, int def, const char *ctx) {
  json_object *v = jget(o, key);
  if (!v) return def;
  if (!json_object_is_type(v, json_type_boolean)) fail("config: %s.%s must be a boolean", ctx, key);
  return json_object_get_boolean(v);
}

json_object *jarr(json_object *o, const char *key, const char *ctx) {
  json_object *v = jget(o, key);
  if (v && !json_object_is_type(v, json_type_array)) fail("config: %s.%s must be an array", ctx, key);
  return v;
}

json_object *jobj(json_object *o, const char *key, const char *ctx) {
  json_object *v = jget(o, key);
  if (v && !json_object_is_type(v, json_type_object)) fail("config: %s.%s must be an object", ctx, key);
  return v;
}

void jcheck_keys(json_object *o, const char *ctx, const char *const allowed[]) {
  if (!o) return;
  json_object_object_foreach(o, k, v) {
    int ok = 0;
    for (size_t i = 0; allowed[i]; i++)
      if (!strcmp(allowed[i], k)) ok = 1;
    if (!ok && !json_object_is_type(v, json_type_null)) fail("config: %s.%s is not supported by berth-runtime", ctx, k);
  }
}

char **jstrv(json_object *arr, const char *ctx) {
  size_t n = arr ? json_object_array_length(arr) : 0;
  char **v = xcalloc(n + 1, sizeof *v);
  for (size_t i = 0; i < n; i++) {
    json_object *e = json_object_array_get_idx(arr, i);
    if (!json_object_is_type(e, json_type_string)) fail("config: %s[%zu] must be a string", ctx, i);
    v[i] = (char *)json_object_get_string(e);
  }
  return v;
}

/* ---- capabilities ------------------------------------------------------------------------------ */
static const char *const cap_names[] = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
};
#define NCAPNAMES ((int)(sizeof cap_names / sizeof cap_names[0]))

int cap_from_name(const char *name) {
  for (int i = 0; i < NCAPNAMES; i++)
    if (!strcasecmp(cap_names[i], name) || !strcasecmp(cap_names[i] + 4, name)) return i;
  return -1;
}

const char *cap_name(int cap) { return cap >= 0 && cap < NCAPNAMES ? cap_names[cap] : NULL; }

int last_cap(void) {
  static int last = -1;
  if (last < 0) {
    char *t = read_file("/proc/sys/kernel/cap_last_cap", NULL);
    last = t ? atoi(t) : NCAPNAMES - 1;
    free(t);
    if (last <= 0 || last > 63) last = NCAPNAMES - 1;
  }
  return last;
}

static uint64_t caps_mask(json_object *arr, const char *ctx) {
  uint64_t m = 0;
  size_t n = arr ? json_object_array_length(arr) : 0;
  for (size_t i = 0; i < n; i++) {
    json_object *e = json_object_array_get_idx(arr, i);
    if (!json_object_is_type(e, json_type_string)) fail("config: %s[%zu] must be a string", ctx, i);
    int c = cap_from_name(json_object_get_string(e));
    if (c < 0) fail("config: %s: unknown capability %s", ctx, json_object_get_string(e));
    if (c > last_cap()) continue; /* the kernel does not know it: as runc, leave it out */
    m |= 1ULL << c;
  }
  return m;
}

/* ---- rlimits ----------------------------------------------------------------------------------- */
static const struct { const char *name; int res; } rlimit_names[] = {
    {"RLIMIT_AS", RLIMIT_AS},           {"RLIMIT_CORE", RLIMIT_CORE},         {"RLIMIT_CPU", RLIMIT_CPU},
    {"RLIMIT_DATA", RLIMIT_DATA},       {"RLIMIT_FSIZE", RLIMIT_FSIZE},       {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_NOFILE", RLIMIT_NOFILE},   {"RLIMIT_NPROC", RLIMIT_NPROC},       {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},   {"RLIMIT_RTTIME", RLIMIT_RTTIME},     {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_STACK", RLIMIT_STACK},
};

void process_parse(json_object *p, struct process *out, int for_exec) {
  static const char *const keys[] = {"terminal", "consoleSize", "user", "args", "env", "cwd", "capabilities",
                                     "rlimits", "noNewPrivileges", "apparmorProfile", "oomScoreAdj",
                                     "selinuxLabel", "ioPriority", "commandLine", NULL};
  memset(out, 0, sizeof *out);
  if (!p || !json_object_is_type(p, json_type_object)) fail("config: process must be an object");
  jcheck_keys(p, "process", keys);
  if (jhas(p, "commandLine")) fail("config: process.commandLine is for Windows");
  const char *aa = jstr(p, "apparmorProfile", "process");
  if (aa && *aa) fail("config: process.apparmorProfile: AppArmor is not supported by berth-runtime");
  const char *se = jstr(p, "selinuxLabel", "process");
  if (se && *se) fail("config: process.selinuxLabel: SELinux is not supported by berth-runtime");
  out->terminal = jbool(p, "terminal", 0, "process");
  json_object *cs = jobj(p, "consoleSize", "process");
  if (cs) {
    out->rows = (unsigned short)juint(cs, "height", 0, "process.consoleSize");
    out->cols = (unsigned short)juint(cs, "width", 0, "process.consoleSize");
  }
  json_object *u = jobj(p, "user", "process");
  static const char *const ukeys[] = {"uid", "gid", "umask", "additionalGids", "username", NULL};
  jcheck_keys(u, "process.user", ukeys);
  out->uid = (uid_t)juint(u, "uid", 0, "process.user");
  out->gid = (gid_t)juint(u, "gid", 0, "process.user");
  if (jhas(u, "umask")) {
    out->has_umask = 1;
    out->umask = (mode_t)juint(u, "umask", 022, "process.user") & 07777;
  }
  json_object *ag = jarr(u, "additionalGids", "process.user");
  out->ngids = ag ? json_object_array_length(ag) : 0;
  out->gids = xcalloc(out->ngids, sizeof(gid_t));
  for (size_t i = 0; i < out->ngids; i++) {
    json_object *e = json_object_array_get_idx(ag, i);
    if (!json_object_is_type(e, json_type_int) || json_object_get_int64(e) < 0) fail("config: process.user.additionalGids[%zu] must be a gid", i);
    out->gids[i] = (gid_t)json_object_get_int64(e);
  }
  json_object *args = jarr(p, "args", "process");
  if (!args || json_object_array_length(args) == 0) fail("config: process.args must not be empty");
  out->args = jstrv(args, "process.args");
  out->env = jstrv(jarr(p, "env", "process"), "process.env");
  out->cwd = jstr(p, "cwd", "process");
  if (!out->cwd || !*out->cwd) {
    if (!for_exec) fail("config: process.cwd is required");
    out->cwd = "/";
  }
  if (out->cwd[0] != '/') fail("config: process.cwd %s must be an absolute path", out->cwd);
  json_object *caps = jobj(p, "capabilities", "process");
  if (caps) {
    static const char *const ckeys[] = {"bounding", "effective", "inheritable", "permitted", "ambient", NULL};
    jcheck_keys(caps, "process.capabilities", ckeys);
    out->has_caps = 1;
    for (int i = 0; i < NCAPSETS; i++) {
      char ctx[64];
      snprintf(ctx, sizeof ctx, "process.capabilities.%s", ckeys[i]);
      out->caps[i] = caps_mask(jarr(caps, ckeys[i], "process.capabilities"), ctx);
    }
  }
  json_object *rl = jarr(p, "rlimits", "process");
  out->nrlimits = rl ? json_object_array_length(rl) : 0;
  out->rlimits = xcalloc(out->nrlimits, sizeof *out->rlimits);
  for (size_t i = 0; i < out->nrlimits; i++) {
    json_object *e = json_object_array_get_idx(rl, i);
    const char *type = jstr(e, "type", "process.rlimits");
    int res = -1;
    for (size_t k = 0; type && k < sizeof rlimit_names / sizeof rlimit_names[0]; k++)
      if (!strcmp(rlimit_names[k].name, type)) res = rlimit_names[k].res;
    if (res < 0) fail("config: process.rlimits: unknown rlimit type %s", type ? type : "(none)");
    out->rlimits[i].resource = res;
    out->rlimits[i].soft = juint(e, "soft", 0, "process.rlimits");
    out->rlimits[i].hard = juint(e, "hard", 0, "process.rlimits");
  }
  out->nnp = jbool(p, "noNewPrivileges", 0, "process");
  if (jhas(p, "oomScoreAdj")) {
    out->has_oom = 1;
    out->oom_score_adj = (int)jint(p, "oomScoreAdj", 0, "process");
    if (out->oom_score_adj < -1000 || out->oom_score_adj > 1000) fail("config: process.oomScoreAdj must be in -1000..1000");
  }
  json_object *io = jobj(p, "ioPriority", "process");
  if (io) {
    const char *cls = jstr(io, "class", "process.ioPriority");
    int c = !cls ? -1 : !strcmp(cls, "IOPRIO_CLASS_RT") ? 1 : !strcmp(cls, "IOPRIO_CLASS_BE") ? 2 : !strcmp(cls, "IOPRIO_CLASS_IDLE") ? 3 : -1;
    if (c < 0) fail("config: process.ioPriority.class %s is not valid", cls ? cls : "(none)");
    int64_t pr = jint(io, "priority", 0, "process.ioPriority");
    if (pr < 0 || pr > 7) fail("config: process.ioPriority.priority must be in 0..7");
    out->has_ioprio = 1;
    out->ioprio = (c << 13) | (int)pr;
  }
}

/* ---- namespaces -------------------------------------------------------------------------------- */
static const struct { const char *type; int flag; const char *proc; } ns_table[] = {
    {"user", CLONE_NEWUSER, "user"}, {"pid", CLONE_NEWPID, "pid"},   {"network", CLONE_NEWNET, "net"},
    {"ipc", CLONE_NEWIPC, "ipc"},    {"uts", CLONE_NEWUTS, "uts"},   {"mount", CLONE_NEWNS, "mnt"},
    {"cgroup", CLONE_NEWCGROUP, "cgroup"},
};

int ns_flag(const char *type) {
  for (size_t i = 0; i < sizeof ns_table / sizeof ns_table[0]; i++)
    if (!strcmp(ns_table[i].type, type)) return ns_table[i].flag;
  return 0;
}

const char *ns_proc_name(int flag) {
  for (size_t i = 0; i < sizeof ns_table / sizeof ns_table[0]; i++)
    if (ns_table[i].flag == flag) return ns_table[i].proc;
  return NULL;
}

static struct idmap *parse_idmap(json_object *arr, size_t *n, const char *ctx) {
  *n = arr ? json_object_array_length(arr) : 0;
  struct idmap *m = xcalloc(*n, sizeof *m);
  for (size_t i = 0; i < *n; i++) {
    json_object *e = json_object_array_get_idx(arr, i);
    m[i].container = (uint32_t)juint(e, "containerID", 0, ctx);
    m[i].host = (uint32_t)juint(e, "hostID", 0, ctx);
    m[i].size = (uint32_t)juint(e, "size", 0, ctx);
    if (!m[i].size) fail("config: %s[%zu].size must be positive", ctx, i);
  }
  return m;
}

unsigned long mount_prop_flag(const char *name) {
  static const struct { const char *n; unsigned long f; } t[] = {
      {"private", MS_PRIVATE}, {"rprivate", MS_PRIVATE | MS_REC}, {"shared", MS_SHARED}, {"rshared", MS_SHARED | MS_REC},
      {"slave", MS_SLAVE},     {"rslave", MS_SLAVE | MS_REC},     {"unbindable", MS_UNBINDABLE},
      {"runbindable", MS_UNBINDABLE | MS_REC},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    if (!strcmp(t[i].n, name)) return t[i].f;
  return 0;
}

static void check_resources(json_object *r) {
  static const char *const keys[] = {"devices", "memory", "cpu", "pids", "blockIO", "hugepageLimits", "network", "rdma", "unified", NULL};
  jcheck_keys(r, "linux.resources", keys);
  json_object *rdma = jobj(r, "rdma", "linux.resources");
  if (rdma && json_object_object_length(rdma)) fail("config: linux.resources.rdma is not supported by berth-runtime");
  static const char *const mem[] = {"limit", "reservation", "swap", "kernel", "kernelTCP", "swappiness", "disableOOMKiller", "useHierarchy", "checkBeforeUpdate", NULL};
  jcheck_keys(jobj(r, "memory", "linux.resources"), "linux.resources.memory", mem);
  static const char *const cpu[] = {"shares", "quota", "burst", "period", "realtimeRuntime", "realtimePeriod", "cpus", "mems", "idle", NULL};
  jcheck_keys(jobj(r, "cpu", "linux.resources"), "linux.resources.cpu", cpu);
  static const char *const pids[] = {"limit", NULL};
  jcheck_keys(jobj(r, "pids", "linux.resources"), "linux.resources.pids", pids);
  static const char *const bio[] = {"weight", "leafWeight", "weightDevice", "throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice", "throttleWriteIOPSDevice", NULL};
  jcheck_keys(jobj(r, "blockIO", "linux.resources"), "linux.resources.blockIO", bio);
  static const char *const net[] = {"classID", "priorities", NULL};
  jcheck_keys(jobj(r, "network", "linux.resources"), "linux.resources.network", net);
  jarr(r, "devices", "linux.resources");
  jarr(r, "hugepageLimits", "linux.resources");
  jobj(r, "unified", "linux.resources");
}

struct spec *spec_load(const char *bundle) {
  struct spec *s = xcalloc(1, sizeof *s);
  s->bundle = bundle;
  char *path = xasprintf("%s/config.json", bundle);
  size_t len;
  char *text = read_file(path, &len);
  if (!text) fail_errno("open %s", path);
  json_tokener *tok = json_tokener_new();
  s->root_json = json_tokener_parse_ex(tok, text, (int)len);
  enum json_tokener_error jerr = json_tokener_get_error(tok);
  json_tokener_free(tok);
  if (!s->root_json || jerr != json_tokener_success) fail("%s: invalid JSON: %s", path, json_tokener_error_desc(jerr));
  free(text);
  free(path);
  json_object *c = s->root_json;
  if (!json_object_is_type(c, json_type_object)) fail("config.json must hold an object");
  static const char *const top[] = {"ociVersion", "process", "root", "hostname", "domainname", "mounts", "hooks", "annotations", "linux", NULL};
  jcheck_keys(c, "config", top);
  const char *ver = jstr(c, "ociVersion", "config");
  if (!ver) fail("config: ociVersion is required");
  if (strncmp(ver, "1.", 2)) fail("config: ociVersion %s is not supported (1.x only)", ver);

  process_parse(jobj(c, "process", "config"), &s->proc, 0);

  json_object *root = jobj(c, "root", "config");
  const char *rp = jstr(root, "path", "root");
  if (!rp || !*rp) fail("config: root.path is required");
  char *abs = rp[0] == '/' ? xstrdup(rp) : xasprintf("%s/%s", bundle, rp);
  s->rootfs = realpath(abs, NULL);
  if (!s->rootfs) fail_errno("rootfs %s", abs);
  free(abs);
  struct stat st;
  if (stat(s->rootfs, &st) < 0 || !S_ISDIR(st.st_mode)) fail("rootfs %s is not a directory", s->rootfs);
  s->root_readonly = jbool(root, "readonly", 0, "root");
  s->hostname = jstr(c, "hostname", "config");
  s->domainname = jstr(c, "domainname", "config");
  s->mounts = jarr(c, "mounts", "config");
  s->hooks = jobj(c, "hooks", "config");
  static const char *const hk[] = {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop", NULL};
  jcheck_keys(s->hooks, "hooks", hk);

  json_object *lx = jobj(c, "linux", "config");
  if (!lx) fail("config: linux is required");
  static const char *const lkeys[] = {"namespaces", "uidMappings", "gidMappings", "devices", "cgroupsPath", "resources",
                                      "rootfsPropagation", "seccomp", "sysctl", "maskedPaths", "readonlyPaths",
                                      "mountLabel", "personality", "intelRdt", "timeOffsets", NULL};
  jcheck_keys(lx, "linux", lkeys);
  const char *ml = jstr(lx, "mountLabel", "linux");
  if (ml && *ml) fail("config: linux.mountLabel: SELinux is not supported by berth-runtime");
  if (jhas(lx, "intelRdt")) fail("config: linux.intelRdt is not supported by berth-runtime");
  if (jhas(lx, "timeOffsets")) fail("config: linux.timeOffsets (time namespace) is not supported by berth-runtime");
  json_object *nss = jarr(lx, "namespaces", "linux");
  size_t nn = nss ? json_object_array_length(nss) : 0;
  for (size_t i = 0; i < nn; i++) {
    json_object *e = json_object_array_get_idx(nss, i);
    const char *type = jstr(e, "type", "linux.namespaces");
    if (!type) fail("config: linux.namespaces[%zu].type is required", i);
    int f = ns_flag(type);
    if (!f) fail("config: linux.namespaces: %s namespaces are not supported by berth-runtime", type);
    for (size_t k = 0; k < s->nns; k++)
      if (s->ns[k].flag == f) fail("config: linux.namespaces: %s is listed twice", type);
    if (s->nns >= 8) fail("config: too many namespaces");
    const char *p = jstr(e, "path", "linux.namespaces");
    if (p && !*p) p = NULL;
    s->ns[s->nns++] = (struct ns_spec){f, type, p};
    if (!p) s->clone_flags |= f;
  }
  if (!(s->clone_flags & CLONE_NEWNS)) {
    int joined = 0;
    for (size_t k = 0; k < s->nns; k++) joined |= s->ns[k].flag;
    if (!(joined & CLONE_NEWNS)) fail("config: a mount namespace is required");
  }
  s->uidmap = parse_idmap(jarr(lx, "uidMappings", "linux"), &s->nuidmap, "linux.uidMappings");
  s->gidmap = parse_idmap(jarr(lx, "gidMappings", "linux"), &s->ngidmap, "linux.gidMappings");
  if ((s->nuidmap || s->ngidmap) && !(s->clone_flags & CLONE_NEWUSER)) {
    int joined_user = 0;
    for (size_t k = 0; k < s->nns; k++) joined_user |= s->ns[k].flag == CLONE_NEWUSER;
    if (!joined_user) fail("config: uid/gid mappings need a user namespace");
  }
  if ((s->clone_flags & CLONE_NEWUSER) && (!s->nuidmap || !s->ngidmap)) fail("config: a new user namespace needs uidMappings and gidMappings");
  s->devices = jarr(lx, "devices", "linux");
  s->cgroups_path = jstr(lx, "cgroupsPath", "linux");
  s->resources = jobj(lx, "resources", "linux");
  check_resources(s->resources);
  const char *prop = jstr(lx, "rootfsPropagation", "linux");
  if (prop && *prop) {
    s->rootfs_prop = mount_prop_flag(prop);
    if (!s->rootfs_prop) fail("config: linux.rootfsPropagation %s is not valid", prop);
  }
  s->seccomp = jobj(lx, "seccomp", "linux");
  s->sysctl = jobj(lx, "sysctl", "linux");
  s->masked = jarr(lx, "maskedPaths", "linux");
  s->readonly_paths = jarr(lx, "readonlyPaths", "linux");
  json_object *pers = jobj(lx, "personality", "linux");
  if (pers) {
    const char *d = jstr(pers, "domain", "linux.personality");
    if (!d || (strcmp(d, "LINUX") && strcmp(d, "LINUX32"))) fail("config: linux.personality.domain must be LINUX or LINUX32");
    if (jarr(pers, "flags", "linux.personality") && json_object_array_length(jget(pers, "flags"))) fail("config: linux.personality.flags are not supported");
    s->has_personality = 1;
    s->personality = strcmp(d, "LINUX32") ? PER_LINUX : PER_LINUX32;
  }
  if (s->proc.terminal && !(s->clone_flags & CLONE_NEWNS)) fail("config: a terminal needs a new mount namespace");
  return s;
}

/* `spec`: the default configuration, as runc and crun write it (a shell in ./rootfs). */
json_object *default_spec(void) {
  const char *text =
      "{\"ociVersion\":\"" OCI_VERSION "\",\"process\":{\"terminal\":true,\"user\":{\"uid\":0,\"gid\":0},"
      "\"args\":[\"sh\"],\"env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\",\"TERM=xterm\"],"
      "\"cwd\":\"/\",\"capabilities\":{\"bounding\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"],"
      "\"effective\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"],"
      "\"permitted\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"],"
      "\"ambient\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"]},"
      "\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"hard\":1024,\"soft\":1024}],\"noNewPrivileges\":true},"
      "\"root\":{\"path\":\"rootfs\",\"readonly\":true},\"hostname\":\"berth\","
      "\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
      "{\"destination\":\"/dev\",\"type\":\"tmpfs\",\"source\":\"tmpfs\",\"options\":[\"nosuid\",\"strictatime\",\"mode=755\",\"size=65536k\"]},"
      "{\"destination\":\"/dev/pts\",\"type\":\"devpts\",\"source\":\"devpts\",\"options\":[\"nosuid\",\"noexec\",\"newinstance\",\"ptmxmode=0666\",\"mode=0620\",\"gid=5\"]},"
      "{\"destination\":\"/dev/shm\",\"type\":\"tmpfs\",\"source\":\"shm\",\"options\":[\"nosuid\",\"noexec\",\"nodev\",\"mode=1777\",\"size=65536k\"]},"
      "{\"destination\":\"/dev/mqueue\",\"type\":\"mqueue\",\"source\":\"mqueue\",\"options\":[\"nosuid\",\"noexec\",\"nodev\"]},"
      "{\"destination\":\"/sys\",\"type\":\"sysfs\",\"source\":\"sysfs\",\"options\":[\"nosuid\",\"noexec\",\"nodev\",\"ro\"]},"
      "{\"destination\":\"/sys/fs/cgroup\",\"type\":\"cgroup\",\"source\":\"cgroup\",\"options\":[\"nosuid\",\"noexec\",\"nodev\",\"relatime\",\"ro\"]}],"
      "\"linux\":{\"resources\":{\"devices\":[{\"allow\":false,\"access\":\"rwm\"}]},"
      "\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"network\"},{\"type\":\"ipc\"},{\"type\":\"uts\"},{\"type\":\"mount\"},{\"type\":\"cgroup\"}],"
      "\"maskedPaths\":[\"/proc/acpi\",\"/proc/asound\",\"/proc/kcore\",\"/proc/keys\",\"/proc/latency_stats\",\"/proc/timer_list\","
      "\"/proc/timer_stats\",\"/proc/sched_debug\",\"/sys/firmware\",\"/proc/scsi\"],"
      "\"readonlyPaths\":[\"/proc/bus\",\"/proc/fs\",\"/proc/irq\",\"/proc/sys\",\"/proc/sysrq-trigger\"]}}";
  return json_tokener_parse(text);
}
