/* linux.seccomp compiled with libseccomp. Syscall names this libseccomp does not know are
 * skipped (profiles list syscalls of newer kernels); everything else unsupported is an error. */
#include "rt.h"

#include <ctype.h>
#include <errno.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>

static const char *const seccomp_keys[] = {"defaultAction", "defaultErrnoRet", "architectures", "flags", "syscalls", "listenerPath", "listenerMetadata", NULL};

static uint32_t action(const char *name, json_object *errno_ret, uint32_t def_errno, const char *ctx) {
  if (!name) fail("config: %s: action is required", ctx);
  uint32_t e = errno_ret ? (uint32_t)json_object_get_int64(errno_ret) : def_errno;
  if (!strcmp(name, "SCMP_ACT_ALLOW")) return SCMP_ACT_ALLOW;
  if (!strcmp(name, "SCMP_ACT_ERRNO")) return SCMP_ACT_ERRNO(e);
  if (!strcmp(name, "SCMP_ACT_KILL") || !strcmp(name, "SCMP_ACT_KILL_THREAD")) return SCMP_ACT_KILL_THREAD;
  if (!strcmp(name, "SCMP_ACT_KILL_PROCESS")) return SCMP_ACT_KILL_PROCESS;
  if (!strcmp(name, "SCMP_ACT_TRAP")) return SCMP_ACT_TRAP;
  if (!strcmp(name, "SCMP_ACT_TRACE")) return SCMP_ACT_TRACE(e);
  if (!strcmp(name, "SCMP_ACT_LOG")) return SCMP_ACT_LOG;
  if (!strcmp(name, "SCMP_ACT_NOTIFY")) fail("config: %s: SCMP_ACT_NOTIFY is not supported by berth-runtime", ctx);
  fail("config: %s: unknown action %s", ctx, name);
}

static enum scmp_compare op(const char *name, const char *ctx) {
  static const struct { const char *n; enum scmp_compare o; } t[] = {
      {"SCMP_CMP_NE", SCMP_CMP_NE}, {"SCMP_CMP_LT", SCMP_CMP_LT}, {"SCMP_CMP_LE", SCMP_CMP_LE}, {"SCMP_CMP_EQ", SCMP_CMP_EQ},
      {"SCMP_CMP_GE", SCMP_CMP_GE}, {"SCMP_CMP_GT", SCMP_CMP_GT}, {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
  };
  for (size_t i = 0; name && i < sizeof t / sizeof t[0]; i++)
    if (!strcmp(t[i].n, name)) return t[i].o;
  fail("config: %s: unknown operator %s", ctx, name ? name : "(none)");
}

static void add_rule(scmp_filter_ctx ctx, uint32_t act, int nr, struct scmp_arg_cmp *cmp, unsigned n, const char *name) {
  int r = seccomp_rule_add_array(ctx, act, nr, n, cmp);
  if (r < 0) fail("seccomp: adding the rule for %s: %s", name, strerror(-r));
}

void *seccomp_build(json_object *sc) {
  if (!sc) return NULL;
  jcheck_keys(sc, "linux.seccomp", seccomp_keys);
  if (jhas(sc, "listenerPath")) fail("config: linux.seccomp.listenerPath (seccomp notify) is not supported by berth-runtime");
  uint32_t def_errno = (uint32_t)jint(sc, "defaultErrnoRet", EPERM, "linux.seccomp");
  uint32_t def = action(jstr(sc, "defaultAction", "linux.seccomp"), jget(sc, "defaultErrnoRet"), def_errno, "linux.seccomp.defaultAction");
  scmp_filter_ctx ctx = seccomp_init(def);
  if (!ctx) fail("seccomp: init failed");
  /* NO_NEW_PRIVS is the process's setting, set by the caller; not libseccomp's default. */
  seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  json_object *arches = jarr(sc, "architectures", "linux.seccomp");
  for (size_t i = 0; arches && i < json_object_array_length(arches); i++) {
    const char *a = json_object_get_string(json_object_array_get_idx(arches, i));
    if (!a || strncmp(a, "SCMP_ARCH_", 10)) fail("config: linux.seccomp.architectures: %s is not valid", a ? a : "(null)");
    char low[32];
    size_t k = 0;
    for (const char *s = a + 10; *s && k < sizeof low - 1; s++) low[k++] = (char)tolower((unsigned char)*s);
    low[k] = 0;
    uint32_t arch = seccomp_arch_resolve_name(low);
    if (!arch) fail("config: linux.seccomp.architectures: %s is not known to libseccomp", a);
    int r = seccomp_arch_add(ctx, arch);
    if (r < 0 && r != -EEXIST) fail("seccomp: adding architecture %s: %s", a, strerror(-r));
  }
  json_object *flags = jarr(sc, "flags", "linux.seccomp");
  for (size_t i = 0; flags && i < json_object_array_length(flags); i++) {
    const char *f = json_object_get_string(json_object_array_get_idx(flags, i));
    if (!f) continue;
    if (!strcmp(f, "SECCOMP_FILTER_FLAG_LOG")) seccomp_attr_set(ctx, SCMP_FLTATR_CTL_LOG, 1);
    else if (!strcmp(f, "SECCOMP_FILTER_FLAG_SPEC_ALLOW")) seccomp_attr_set(ctx, SCMP_FLTATR_CTL_SSB, 1);
    else if (!strcmp(f, "SECCOMP_FILTER_FLAG_TSYNC")) seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    else fail("config: linux.seccomp.flags: %s is not supported", f);
  }
  json_object *calls = jarr(sc, "syscalls", "linux.seccomp");
  for (size_t i = 0; calls && i < json_object_array_length(calls); i++) {
    json_object *rule = json_object_array_get_idx(calls, i);
    static const char *const rk[] = {"names", "action", "errnoRet", "args", "comment", "includes", "excludes", NULL};
    jcheck_keys(rule, "linux.seccomp.syscalls[]", rk);
    uint32_t act = action(jstr(rule, "action", "linux.seccomp.syscalls"), jget(rule, "errnoRet"), def_errno, "linux.seccomp.syscalls");
    if (act == def) continue; /* libseccomp refuses rules that repeat the default */
    json_object *args = jarr(rule, "args", "linux.seccomp.syscalls");
    size_t na = args ? json_object_array_length(args) : 0;
    if (na > 6) fail("config: linux.seccomp: more than 6 argument conditions");
    struct scmp_arg_cmp cmp[6];
    int same_index = 0;
    for (size_t k = 0; k < na; k++) {
      json_object *a = json_object_array_get_idx(args, k);
      uint64_t idx = juint(a, "index", 0, "linux.seccomp.args");
      if (idx > 5) fail("config: linux.seccomp.args: index %llu is out of range", (unsigned long long)idx);
      enum scmp_compare o = op(jstr(a, "op", "linux.seccomp.args"), "linux.seccomp.args");
      uint64_t v = juint(a, "value", 0, "linux.seccomp.args"), v2 = juint(a, "valueTwo", 0, "linux.seccomp.args");
      cmp[k] = (struct scmp_arg_cmp){(unsigned)idx, o, v, o == SCMP_CMP_MASKED_EQ ? v2 : 0};
      if (o == SCMP_CMP_MASKED_EQ) {
        cmp[k].datum_a = v;
        cmp[k].datum_b = v2;
      }
      for (size_t j = 0; j < k; j++) same_index |= cmp[j].arg == cmp[k].arg;
    }
    json_object *names = jarr(rule, "names", "linux.seccomp.syscalls");
    for (size_t k = 0; names && k < json_object_array_length(names); k++) {
      const char *name = json_object_get_string(json_object_array_get_idx(names, k));
      if (!name) continue;
      int nr = seccomp_syscall_resolve_name(name);
      if (nr == __NR_SCMP_ERROR) continue;
      if (same_index) {
        /* conditions on one argument index: each one is a rule of its own (any may match) */
        for (size_t j = 0; j < na; j++) add_rule(ctx, act, nr, &cmp[j], 1, name);
      } else {
        add_rule(ctx, act, nr, cmp, (unsigned)na, name);
      }
    }
  }
  return ctx;
}

void seccomp_load_filter(void *filter) {
  if (!filter) return;
  int r = seccomp_load((scmp_filter_ctx)filter);
  seccomp_release((scmp_filter_ctx)filter);
  if (r < 0) fail("seccomp: loading the filter: %s", strerror(-r));
}
