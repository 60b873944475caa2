/* cgroups: v1 (one dir per mounted hierarchy) and v2 (one dir in the unified hierarchy).
 * The test hook BERTH_CGROUP2_ROOT=<cgroup2 mount> forces the v2 code path on a hybrid host. */
#include "rt.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

struct cgdir {
  char *path;  /* the container's dir */
  char *ctrls; /* comma-separated controllers of the hierarchy ("" for v2 / unified) */
  char *mnt;   /* where the hierarchy is mounted */
};

struct cg {
  int v2;
  struct cgdir *dirs;
  size_t n;
};

struct hier {
  char *mnt, *ctrls, *own; /* own: the runtime's cgroup in it, relative to the mount */
  int v2;
};
static struct hier *hiers;
static size_t nhiers;
static int hybrid_v2_mode;

static const char *const known_ctrls[] = {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "net_prio",
                                         "blkio", "perf_event", "hugetlb", "pids", "rdma", "misc", NULL};

static int has_ctrl(const char *list, const char *c) {
  size_t n = strlen(c);
  for (const char *p = list; p && *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n && !strncmp(p, c, n)) return 1;
    p = e ? e + 1 : NULL;
  }
  return 0;
}

/* mountinfo escapes spaces etc. as \ooo */
static char *unescape(const char *s) {
  char *o = xmalloc(strlen(s) + 1), *d = o;
  while (*s) {
    if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] && s[3]) {
      *d++ = (char)(((s[1] - '0') << 6) | ((s[2] - '0') << 3) | (s[3] - '0'));
      s += 4;
    } else {
      *d++ = *s++;
    }
  }
  *d = 0;
  return o;
}

static char *own_cgroup(const char *ctrls, int v2) {
  static char *text;
  if (!text) text = read_file("/proc/self/cgroup", NULL);
  if (!text) return xstrdup("/");
  for (char *line = text; line && *line;) {
    char *nl = strchr(line, '\n');
    size_t len = nl ? (size_t)(nl - line) : strlen(line);
    char *l = strndup(line, len);
    char *c1 = strchr(l, ':');
    char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (c1 && c2) {
      *c2 = 0;
      const char *lc = c1 + 1;
      int match = v2 ? !strcmp(l, "0") && !*lc : 0;
      if (!v2 && *lc) {
        /* the first controller of each list decides: hierarchies do not share controllers */
        char first[64];
        size_t fl = strcspn(ctrls, ",");
        if (fl < sizeof first) {
          memcpy(first, ctrls, fl);
          first[fl] = 0;
          match = has_ctrl(lc, first);
        }
      }
      if (match) {
        char *r = xstrdup(c2 + 1);
        free(l);
        return r;
      }
    }
    free(l);
    line = nl ? nl + 1 : NULL;
  }
  return xstrdup("/");
}

static void discover(void) {
  if (hiers) return;
  hiers = xcalloc(32, sizeof *hiers);
  const char *force = getenv("BERTH_CGROUP2_ROOT");
  if (force && *force) {
    hybrid_v2_mode = 1;
    hiers[0] = (struct hier){xstrdup(force), xstrdup(""), NULL, 1};
    hiers[0].own = own_cgroup("", 1);
    nhiers = 1;
    return;
  }
  struct statfs sf;
  if (statfs("/sys/fs/cgroup", &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC) {
    hiers[0] = (struct hier){xstrdup("/sys/fs/cgroup"), xstrdup(""), own_cgroup("", 1), 1};
    nhiers = 1;
    return;
  }
  char *mi = read_file("/proc/self/mountinfo", NULL);
  if (!mi) fail_errno("read /proc/self/mountinfo");
  for (char *line = mi; line && *line && nhiers < 32;) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = 0;
    /* id parent maj:min root mountpoint opts [optional...] - fstype source superopts */
    char *sep = strstr(line, " - ");
    if (sep) {
      char *f[6] = {0};
      char *save = NULL, *tok = strtok_r(line, " ", &save);
      for (int i = 0; i < 5 && tok; i++, tok = strtok_r(NULL, " ", &save)) f[i] = tok;
      char *fstype = strtok_r(sep + 3, " ", &save);
      strtok_r(NULL, " ", &save); /* source */
      char *sopts = strtok_r(NULL, " ", &save);
      if (f[4] && fstype && !strcmp(fstype, "cgroup") && sopts) {
        char ctrls[256] = "";
        char *s2 = NULL;
        for (char *o = strtok_r(sopts, ",", &s2); o; o = strtok_r(NULL, ",", &s2)) {
          int known = !strncmp(o, "name=", 5);
          for (int k = 0; known_ctrls[k] && !known; k++) known = !strcmp(known_ctrls[k], o);
          if (!known) continue;
          if (*ctrls) strncat(ctrls, ",", sizeof ctrls - strlen(ctrls) - 1);
          strncat(ctrls, o, sizeof ctrls - strlen(ctrls) - 1);
        }
        int dup = 0;
        for (size_t k = 0; k < nhiers; k++) dup |= !hiers[k].v2 && !strcmp(hiers[k].ctrls, ctrls);
        if (*ctrls && !dup) {
          hiers[nhiers].mnt = unescape(f[4]);
          hiers[nhiers].ctrls = xstrdup(ctrls);
          hiers[nhiers].own = own_cgroup(ctrls, 0);
          nhiers++;
        }
      } else if (f[4] && fstype && !strcmp(fstype, "cgroup2")) {
        int dup = 0;
        for (size_t k = 0; k < nhiers; k++) dup |= hiers[k].v2;
        if (!dup) {
          hiers[nhiers].mnt = unescape(f[4]);
          hiers[nhiers].ctrls = xstrdup("");
          hiers[nhiers].own = own_cgroup("", 1);
          hiers[nhiers].v2 = 1;
          nhiers++;
        }
      }
    }
    line = nl ? nl + 1 : NULL;
  }
  free(mi);
  if (!nhiers) fail("no cgroup hierarchy is mounted");
}

static char *join_path(const char *a, const char *b) {
  size_t la = strlen(a);
  while (la > 1 && a[la - 1] == '/') la--;
  while (*b == '/') b++;
  if (!*b) return strndup(a, la);
  return xasprintf("%.*s/%s", (int)la, a, b);
}

struct cg *cg_new(const char *cgroups_path, const char *id) {
  discover();
  struct cg *c = xcalloc(1, sizeof *c);
  c->dirs = xcalloc(nhiers, sizeof *c->dirs);
  int pure_v2 = nhiers == 1 && hiers[0].v2;
  c->v2 = pure_v2;
  for (size_t i = 0; i < nhiers; i++) {
    char *rel;
    if (cgroups_path && *cgroups_path) {
      if (strstr(cgroups_path, "..")) fail("config: linux.cgroupsPath %s must not contain ..", cgroups_path);
      if (cgroups_path[0] == '/') rel = xstrdup(cgroups_path);
      else rel = join_path(hiers[i].own, cgroups_path);
    } else {
      rel = join_path(hiers[i].own, id);
    }
    c->dirs[c->n].path = join_path(hiers[i].mnt, rel);
    c->dirs[c->n].ctrls = xstrdup(hiers[i].ctrls);
    c->dirs[c->n].mnt = xstrdup(hiers[i].mnt);
    c->n++;
    free(rel);
  }
  return c;
}

int cg_is_v2(struct cg *c) { return c->v2; }

const char *cg_v2_dir(struct cg *c) {
  for (size_t i = 0; i < c->n; i++)
    if (!*c->dirs[i].ctrls) return c->dirs[i].path;
  return NULL;
}

json_object *cg_to_json(struct cg *c) {
  json_object *o = json_object_new_object();
  json_object_object_add(o, "v2", json_object_new_boolean(c->v2));
  json_object *a = json_object_new_array();
  for (size_t i = 0; i < c->n; i++) {
    json_object *d = json_object_new_object();
    json_object_object_add(d, "path", json_object_new_string(c->dirs[i].path));
    json_object_object_add(d, "controllers", json_object_new_string(c->dirs[i].ctrls));
    json_object_object_add(d, "mount", json_object_new_string(c->dirs[i].mnt));
    json_object_array_add(a, d);
  }
  json_object_object_add(o, "dirs", a);
  return o;
}

struct cg *cg_from_json(json_object *o) {
  struct cg *c = xcalloc(1, sizeof *c);
  if (!o) return c;
  c->v2 = jbool(o, "v2", 0, "state.cgroup");
  json_object *a = jarr(o, "dirs", "state.cgroup");
  c->n = a ? json_object_array_length(a) : 0;
  c->dirs = xcalloc(c->n, sizeof *c->dirs);
  for (size_t i = 0; i < c->n; i++) {
    json_object *d = json_object_array_get_idx(a, i);
    const char *p = jstr(d, "path", "state.cgroup"), *ct = jstr(d, "controllers", "state.cgroup"), *m = jstr(d, "mount", "state.cgroup");
    c->dirs[i].path = xstrdup(p ? p : "");
    c->dirs[i].ctrls = xstrdup(ct ? ct : "");
    c->dirs[i].mnt = xstrdup(m ? m : "");
  }
  return c;
}

static struct cgdir *find_dir(struct cg *c, const char *ctrl) {
  for (size_t i = 0; i < c->n; i++) {
    if (!ctrl && !*c->dirs[i].ctrls) return &c->dirs[i];
    if (ctrl && (c->v2 ? !*c->dirs[i].ctrls : has_ctrl(c->dirs[i].ctrls, ctrl))) return &c->dirs[i];
  }
  return NULL;
}

static int cg_write_try(const char *dir, const char *file, const char *val) {
  char *p = xasprintf("%s/%s", dir, file);
  int r = write_file(p, val);
  int e = errno;
  free(p);
  errno = e;
  return r;
}

static void cg_write(const char *dir, const char *file, const char *val) {
  if (cg_write_try(dir, file, val) < 0) fail_errno("cgroup: write %s to %s/%s", val, dir, file);
}

static char *cg_read(const char *dir, const char *file) {
  char *p = xasprintf("%s/%s", dir, file);
  char *t = read_file(p, NULL);
  free(p);
  return t;
}

static int exists_in(const char *dir, const char *file) {
  char *p = xasprintf("%s/%s", dir, file);
  int r = access(p, F_OK) == 0;
  free(p);
  return r;
}

/* A new cpuset cgroup (v1) starts with no cpus and mems: copy them down from the parent. */
static void cpuset_fill(const char *mnt, const char *path) {
  size_t ml = strlen(mnt);
  char *buf = xstrdup(path);
  for (char *s = buf + ml + 1; s && *s;) {
    char *slash = strchr(s, '/');
    if (slash) *slash = 0;
    char *parent = strndup(buf, (size_t)(strrchr(buf, '/') - buf));
    for (int k = 0; k < 2; k++) {
      const char *f = k ? "cpuset.mems" : "cpuset.cpus";
      char *cur = cg_read(buf, f);
      if (cur && (cur[0] == '\n' || !cur[0])) {
        char *pv = cg_read(parent, f);
        if (pv) cg_write_try(buf, f, pv);
        free(pv);
      }
      free(cur);
    }
    free(parent);
    if (slash) *slash = '/';
    s = slash ? slash + 1 : NULL;
  }
  free(buf);
}

/* v2: enable every available controller in each ancestor of the leaf. */
static void v2_enable_subtree(const char *mnt, const char *path) {
  size_t ml = strlen(mnt);
  if (strlen(path) <= ml) return;
  char *buf = xstrdup(path);
  char *leaf = strrchr(buf, '/');
  for (char *s = buf + ml;; s = strchr(s + 1, '/')) {
    if (!s || s >= leaf) {
      if (s == leaf) {
        /* the leaf's parent itself */
      } else break;
    }
    char saved = *s;
    *s = 0;
    const char *dir = *buf ? buf : "/";
    char *ctl = cg_read(dir, "cgroup.controllers");
    if (ctl) {
      char *save = NULL;
      for (char *t = strtok_r(ctl, " \n", &save); t; t = strtok_r(NULL, " \n", &save)) {
        char v[80];
        snprintf(v, sizeof v, "+%s", t);
        cg_write_try(dir, "cgroup.subtree_control", v);
      }
      free(ctl);
    }
    *s = saved;
    if (s == leaf) break;
  }
  free(buf);
}

void cg_create(struct cg *c) {
  for (size_t i = 0; i < c->n; i++) {
    struct cgdir *d = &c->dirs[i];
    if (mkdir_p(d->path, 0755) < 0) fail_errno("cgroup: mkdir %s", d->path);
    if (has_ctrl(d->ctrls, "cpuset")) cpuset_fill(d->mnt, d->path);
    if (!*d->ctrls && (c->v2 || hybrid_v2_mode)) v2_enable_subtree(d->mnt, d->path);
  }
}

void cg_join(struct cg *c, pid_t pid) {
  char v[32];
  snprintf(v, sizeof v, "%d", (int)pid);
  for (size_t i = 0; i < c->n; i++) {
    /* a process that already died (its setup failed) reports why over the sync socket: that
       reason, not ESRCH from here, is the error to show */
    if (cg_write_try(c->dirs[i].path, "cgroup.procs", v) < 0 && errno != ESRCH) fail_errno("cgroup: write %s to %s/cgroup.procs", v, c->dirs[i].path);
  }
}

int cg_destroy(struct cg *c) {
  int ret = 0;
  for (size_t i = 0; i < c->n; i++) {
    const char *p = c->dirs[i].path;
    long delay = 1;
    for (int tries = 0;; tries++) {
      if (rmdir(p) == 0 || errno == ENOENT) break;
      if (errno != EBUSY || tries >= 14) {
        warnx_("cgroup: rmdir %s: %s", p, strerror(errno));
        ret = -1;
        break;
      }
      /* tasks still exiting; anything else left gets killed */
      size_t n = 0;
      pid_t *pids = NULL;
      struct cg one = {c->v2, &c->dirs[i], 1};
      pids = cg_pids(&one, &n);
      for (size_t k = 0; k < n; k++) kill(pids[k], SIGKILL);
      free(pids);
      sleep_ms(delay);
      if (delay < 100) delay *= 2;
    }
  }
  return ret;
}

pid_t *cg_pids(struct cg *c, size_t *n) {
  *n = 0;
  struct cgdir *d = NULL;
  const char *pref[] = {"pids", "freezer", "memory", "cpu", "devices", NULL};
  for (int k = 0; pref[k] && !d; k++) d = find_dir(c, pref[k]);
  if (!d && c->n) d = &c->dirs[0];
  if (!d) return NULL;
  char *t = cg_read(d->path, "cgroup.procs");
  if (!t) return NULL;
  size_t cap = 16;
  pid_t *v = xmalloc(cap * sizeof *v);
  char *save = NULL;
  for (char *tok = strtok_r(t, "\n", &save); tok; tok = strtok_r(NULL, "\n", &save)) {
    if (*n == cap) {
      cap *= 2;
      pid_t *nv = realloc(v, cap * sizeof *v);
      if (!nv) fail("out of memory");
      v = nv;
    }
    v[(*n)++] = (pid_t)atoi(tok);
  }
  free(t);
  return v;
}

int cg_frozen(struct cg *c) {
  if (c->v2 || hybrid_v2_mode || !find_dir(c, "freezer")) {
    const char *d = cg_v2_dir(c);
    if (!d) return 0;
    char *ev = cg_read(d, "cgroup.events");
    int frozen = ev && strstr(ev, "frozen 1");
    free(ev);
    return frozen;
  }
  char *s = cg_read(find_dir(c, "freezer")->path, "freezer.state");
  int frozen = s && !strncmp(s, "FROZEN", 6);
  free(s);
  return frozen;
}

int cg_freeze(struct cg *c, int freeze) {
  struct cgdir *fz = c->v2 ? NULL : find_dir(c, "freezer");
  if (!fz) {
    const char *d = cg_v2_dir(c);
    if (!d) fail("cgroup: no freezer hierarchy is mounted");
    cg_write(d, "cgroup.freeze", freeze ? "1" : "0");
    for (int i = 0; i < 2000; i++) {
      char *ev = cg_read(d, "cgroup.events");
      int frozen = ev && strstr(ev, "frozen 1");
      free(ev);
      if (frozen == freeze) return 0;
      sleep_ms(1);
    }
    fail("cgroup: %s did not %s in time", d, freeze ? "freeze" : "thaw");
  }
  for (int i = 0; i < 2000; i++) {
    cg_write(fz->path, "freezer.state", freeze ? "FROZEN" : "THAWED");
    char *s = cg_read(fz->path, "freezer.state");
    int ok = s && !strncmp(s, freeze ? "FROZEN" : "THAWED", 6);
    free(s);
    if (ok) return 0;
    sleep_ms(1);
  }
  fail("cgroup: %s did not %s in time", fz->path, freeze ? "freeze" : "thaw");
}

/* ---- resources --------------------------------------------------------------------------------- */
static const char *need(struct cg *c, const char *ctrl, const char *what) {
  struct cgdir *d = find_dir(c, ctrl);
  if (!d) fail("cgroup: %s needs the %s controller, which is not mounted", what, ctrl);
  if (c->v2 && !exists_in(d->path, "cgroup.controllers")) fail("cgroup: %s is not a cgroup", d->path);
  return d->path;
}

static void v2_need_file(const char *dir, const char *file, const char *what) {
  if (!exists_in(dir, file)) fail("cgroup: %s needs %s/%s (controller not enabled)", what, dir, file);
}

static char *num(int64_t v) { return xasprintf("%lld", (long long)v); }

static void dev_rules_v1(const char *dir, json_object *devs, int updating) {
  size_t n = devs ? json_object_array_length(devs) : 0;
  (void)updating;
  for (size_t i = 0; i < n; i++) {
    json_object *r = json_object_array_get_idx(devs, i);
    int allow = jbool(r, "allow", 0, "linux.resources.devices");
    const char *type = jstr(r, "type", "linux.resources.devices");
    if (!type || !*type) type = "a";
    if (strcmp(type, "a") && strcmp(type, "c") && strcmp(type, "b")) fail("config: linux.resources.devices: type %s is not valid", type);
    const char *access = jstr(r, "access", "linux.resources.devices");
    if (!access || !*access) access = "rwm";
    if (strspn(access, "rwm") != strlen(access)) fail("config: linux.resources.devices: access %s is not valid", access);
    char maj[24] = "*", min[24] = "*";
    int64_t M = jint(r, "major", -1, "linux.resources.devices"), m = jint(r, "minor", -1, "linux.resources.devices");
    if (M >= 0) snprintf(maj, sizeof maj, "%lld", (long long)M);
    if (m >= 0) snprintf(min, sizeof min, "%lld", (long long)m);
    char rule[96];
    if (!strcmp(type, "a")) snprintf(rule, sizeof rule, "a");
    else snprintf(rule, sizeof rule, "%s %s:%s %s", type, maj, min, access);
    cg_write(dir, allow ? "devices.allow" : "devices.deny", rule);
  }
}

static void memory_v1(const char *dir, json_object *mem) {
  int has_limit = jhas(mem, "limit"), has_swap = jhas(mem, "swap");
  int64_t limit = jint(mem, "limit", 0, "linux.resources.memory"), swap = jint(mem, "swap", 0, "linux.resources.memory");
  char *lv = num(limit ? limit : -1), *sv = num(swap ? swap : -1);
  int memsw = exists_in(dir, "memory.memsw.limit_in_bytes");
  if (has_swap && !memsw && swap != limit && swap > 0) fail("cgroup: memory.swap is set but swap accounting is not enabled in the kernel");
  if (has_limit && has_swap && memsw) {
    if (cg_write_try(dir, "memory.limit_in_bytes", lv) < 0) {
      if (errno != EINVAL) fail_errno("cgroup: write %s to %s/memory.limit_in_bytes", lv, dir);
      cg_write(dir, "memory.memsw.limit_in_bytes", sv);
      cg_write(dir, "memory.limit_in_bytes", lv);
    } else {
      cg_write(dir, "memory.memsw.limit_in_bytes", sv);
    }
  } else if (has_limit) {
    if (cg_write_try(dir, "memory.limit_in_bytes", lv) < 0) {
      /* raising the limit above the old memory+swap limit: lift that one first */
      if (errno != EINVAL || !memsw) fail_errno("cgroup: write %s to %s/memory.limit_in_bytes", lv, dir);
      cg_write(dir, "memory.memsw.limit_in_bytes", "-1");
      cg_write(dir, "memory.limit_in_bytes", lv);
    }
  } else if (has_swap && memsw) {
    cg_write(dir, "memory.memsw.limit_in_bytes", sv);
  }
  free(lv);
  free(sv);
  if (jhas(mem, "reservation")) {
    char *v = num(jint(mem, "reservation", 0, "linux.resources.memory"));
    cg_write(dir, "memory.soft_limit_in_bytes", v);
    free(v);
  }
  if (jhas(mem, "kernel")) {
    char *v = num(jint(mem, "kernel", 0, "linux.resources.memory"));
    if (cg_write_try(dir, "memory.kmem.limit_in_bytes", v) < 0) fail_errno("cgroup: kernel memory limit");
    free(v);
  }
  if (jhas(mem, "kernelTCP")) {
    char *v = num(jint(mem, "kernelTCP", 0, "linux.resources.memory"));
    cg_write(dir, "memory.kmem.tcp.limit_in_bytes", v);
    free(v);
  }
  if (jhas(mem, "swappiness")) {
    uint64_t sw = juint(mem, "swappiness", 0, "linux.resources.memory");
    if (sw > 100) fail("config: linux.resources.memory.swappiness must be 0..100");
    char *v = num((int64_t)sw);
    cg_write(dir, "memory.swappiness", v);
    free(v);
  }
  if (jbool(mem, "disableOOMKiller", 0, "linux.resources.memory")) cg_write(dir, "memory.oom_control", "1");
}

static void memory_v2(const char *dir, json_object *mem) {
  int has_limit = jhas(mem, "limit"), has_swap = jhas(mem, "swap");
  int64_t limit = jint(mem, "limit", 0, "linux.resources.memory"), swap = jint(mem, "swap", 0, "linux.resources.memory");
  if (has_limit) {
    v2_need_file(dir, "memory.max", "memory.limit");
    char *v = limit > 0 ? num(limit) : xstrdup("max");
    cg_write(dir, "memory.max", v);
    free(v);
  }
  if (has_swap) {
    char *v;
    if (swap == -1) v = xstrdup("max");
    else if (has_limit && limit > 0) {
      if (swap < limit && swap != 0) fail("config: memory.swap (%lld) must not be less than memory.limit (%lld)", (long long)swap, (long long)limit);
      v = num(swap ? swap - limit : 0);
    } else if (swap == 0) v = NULL;
    else fail("config: memory.swap needs memory.limit on cgroup v2");
    if (v) {
      v2_need_file(dir, "memory.swap.max", "memory.swap");
      cg_write(dir, "memory.swap.max", v);
      free(v);
    }
  }
  if (jhas(mem, "reservation")) {
    int64_t r = jint(mem, "reservation", 0, "linux.resources.memory");
    char *v = r > 0 ? num(r) : xstrdup("0");
    v2_need_file(dir, "memory.low", "memory.reservation");
    cg_write(dir, "memory.low", v);
    free(v);
  }
  if (jhas(mem, "kernel") || jhas(mem, "kernelTCP")) fail("config: kernel memory limits do not exist on cgroup v2");
  if (jhas(mem, "swappiness") && juint(mem, "swappiness", 0, "linux.resources.memory") != 0)
    fail("config: memory.swappiness is not supported on cgroup v2");
  if (jbool(mem, "disableOOMKiller", 0, "linux.resources.memory")) fail("config: memory.disableOOMKiller is not supported on cgroup v2");
}

static void cpu_apply(struct cg *c, json_object *cpu) {
  const char *ctx = "linux.resources.cpu";
  uint64_t shares = juint(cpu, "shares", 0, ctx);
  int64_t quota = jint(cpu, "quota", 0, ctx);
  uint64_t period = juint(cpu, "period", 0, ctx);
  int has_quota = jhas(cpu, "quota");
  if (c->v2) {
    const char *d = need(c, "cpu", "cpu");
    if (shares) {
      if (shares < 2 || shares > 262144) fail("config: cpu.shares must be 2..262144");
      char *v = num((int64_t)(1 + ((shares - 2) * 9999) / 262142));
      v2_need_file(d, "cpu.weight", "cpu.shares");
      cg_write(d, "cpu.weight", v);
      free(v);
    }
    if (has_quota || period) {
      v2_need_file(d, "cpu.max", "cpu.quota");
      char v[64];
      if (!period) period = 100000;
      if (quota > 0) snprintf(v, sizeof v, "%lld %llu", (long long)quota, (unsigned long long)period);
      else snprintf(v, sizeof v, "max %llu", (unsigned long long)period);
      cg_write(d, "cpu.max", v);
    }
    if (jhas(cpu, "burst")) {
      char *v = num((int64_t)juint(cpu, "burst", 0, ctx));
      cg_write(d, "cpu.max.burst", v);
      free(v);
    }
    if (jhas(cpu, "idle")) {
      char *v = num(jint(cpu, "idle", 0, ctx));
      cg_write(d, "cpu.idle", v);
      free(v);
    }
    if (jint(cpu, "realtimeRuntime", 0, ctx) || juint(cpu, "realtimePeriod", 0, ctx)) fail("config: cpu realtime settings are not supported on cgroup v2");
  } else {
    if (shares || has_quota || period || jhas(cpu, "burst") || jhas(cpu, "realtimeRuntime") || jhas(cpu, "realtimePeriod") || jhas(cpu, "idle")) {
      const char *d = need(c, "cpu", "cpu");
      char *v;
      if (shares) {
        v = num((int64_t)shares);
        cg_write(d, "cpu.shares", v);
        free(v);
      }
      if (period) {
        v = num((int64_t)period);
        cg_write(d, "cpu.cfs_period_us", v);
        free(v);
      }
      if (has_quota) {
        v = num(quota > 0 ? quota : -1);
        cg_write(d, "cpu.cfs_quota_us", v);
        free(v);
      }
      if (jhas(cpu, "burst")) {
        v = num((int64_t)juint(cpu, "burst", 0, ctx));
        cg_write(d, "cpu.cfs_burst_us", v);
        free(v);
      }
      if (jhas(cpu, "realtimePeriod")) {
        v = num((int64_t)juint(cpu, "realtimePeriod", 0, ctx));
        cg_write(d, "cpu.rt_period_us", v);
        free(v);
      }
      if (jhas(cpu, "realtimeRuntime")) {
        v = num(jint(cpu, "realtimeRuntime", 0, ctx));
        cg_write(d, "cpu.rt_runtime_us", v);
        free(v);
      }
      if (jhas(cpu, "idle")) {
        v = num(jint(cpu, "idle", 0, ctx));
        cg_write(d, "cpu.idle", v);
        free(v);
      }
    }
  }
  const char *cpus = jstr(cpu, "cpus", ctx), *mems = jstr(cpu, "mems", ctx);
  if ((cpus && *cpus) || (mems && *mems)) {
    const char *d = need(c, "cpuset", "cpu.cpus/mems");
    if (cpus && *cpus) cg_write(d, "cpuset.cpus", cpus);
    if (mems && *mems) cg_write(d, "cpuset.mems", mems);
  }
}

static void blkio_apply(struct cg *c, json_object *b) {
  const char *ctx = "linux.resources.blockIO";
  const char *ctrl = c->v2 ? "io" : "blkio";
  const char *d = need(c, ctrl, "blockIO");
  uint64_t w = juint(b, "weight", 0, ctx);
  if (w) {
    if (w < 10 || w > 1000) fail("config: blockIO.weight must be 10..1000");
    char *v;
    if (c->v2) {
      if (exists_in(d, "io.bfq.weight")) cg_write(d, "io.bfq.weight", v = num((int64_t)w));
      else cg_write(d, "io.weight", v = num((int64_t)(1 + (w - 10) * 9999 / 990)));
    } else {
      if (exists_in(d, "blkio.weight")) cg_write(d, "blkio.weight", v = num((int64_t)w));
      else cg_write(d, "blkio.bfq.weight", v = num((int64_t)w));
    }
    free(v);
  }
  if (juint(b, "leafWeight", 0, ctx)) {
    if (c->v2) fail("config: blockIO.leafWeight is not supported on cgroup v2");
    char *v = num((int64_t)juint(b, "leafWeight", 0, ctx));
    cg_write(d, "blkio.leaf_weight", v);
    free(v);
  }
  json_object *wd = jarr(b, "weightDevice", ctx);
  for (size_t i = 0; wd && i < json_object_array_length(wd); i++) {
    json_object *e = json_object_array_get_idx(wd, i);
    char v[96];
    snprintf(v, sizeof v, "%lld:%lld %llu", (long long)jint(e, "major", 0, ctx), (long long)jint(e, "minor", 0, ctx),
             (unsigned long long)juint(e, "weight", 0, ctx));
    if (c->v2) cg_write(d, exists_in(d, "io.bfq.weight") ? "io.bfq.weight" : "io.weight", v);
    else cg_write(d, exists_in(d, "blkio.weight_device") ? "blkio.weight_device" : "blkio.bfq.weight_device", v);
  }
  static const char *const thr[4] = {"throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice", "throttleWriteIOPSDevice"};
  static const char *const v1f[4] = {"blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device", "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device"};
  static const char *const v2k[4] = {"rbps", "wbps", "riops", "wiops"};
  for (int k = 0; k < 4; k++) {
    json_object *a = jarr(b, thr[k], ctx);
    for (size_t i = 0; a && i < json_object_array_length(a); i++) {
      json_object *e = json_object_array_get_idx(a, i);
      char v[128];
      uint64_t rate = juint(e, "rate", 0, ctx);
      if (c->v2) {
        if (rate) snprintf(v, sizeof v, "%lld:%lld %s=%llu", (long long)jint(e, "major", 0, ctx), (long long)jint(e, "minor", 0, ctx), v2k[k], (unsigned long long)rate);
        else snprintf(v, sizeof v, "%lld:%lld %s=max", (long long)jint(e, "major", 0, ctx), (long long)jint(e, "minor", 0, ctx), v2k[k]);
        cg_write(d, "io.max", v);
      } else {
        snprintf(v, sizeof v, "%lld:%lld %llu", (long long)jint(e, "major", 0, ctx), (long long)jint(e, "minor", 0, ctx), (unsigned long long)rate);
        cg_write(d, v1f[k], v);
      }
    }
  }
}

void cg_apply(struct cg *c, json_object *r, int updating) {
  if (!r) return;
  const char *ctx = "linux.resources";
  json_object *mem = jobj(r, "memory", ctx);
  if (mem && json_object_object_length(mem)) {
    const char *d = need(c, "memory", "memory");
    if (c->v2) memory_v2(d, mem);
    else memory_v1(d, mem);
  }
  json_object *cpu = jobj(r, "cpu", ctx);
  if (cpu) cpu_apply(c, cpu);
  json_object *pids = jobj(r, "pids", ctx);
  if (pids && jhas(pids, "limit")) {
    int64_t l = jint(pids, "limit", 0, "linux.resources.pids");
    const char *d = need(c, "pids", "pids.limit");
    char *v = l > 0 ? num(l) : xstrdup("max");
    cg_write(d, "pids.max", v);
    free(v);
  }
  json_object *b = jobj(r, "blockIO", ctx);
  if (b && json_object_object_length(b)) blkio_apply(c, b);
  json_object *hp = jarr(r, "hugepageLimits", ctx);
  for (size_t i = 0; hp && i < json_object_array_length(hp); i++) {
    json_object *e = json_object_array_get_idx(hp, i);
    const char *ps = jstr(e, "pageSize", "linux.resources.hugepageLimits");
    if (!ps || strchr(ps, '/')) fail("config: hugepageLimits[%zu].pageSize is not valid", i);
    const char *d = need(c, "hugetlb", "hugepageLimits");
    char *f = xasprintf(c->v2 ? "hugetlb.%s.max" : "hugetlb.%s.limit_in_bytes", ps);
    if (!exists_in(d, f)) fail("cgroup: hugepage size %s is not supported (%s/%s missing)", ps, d, f);
    char *v = num((int64_t)juint(e, "limit", 0, "linux.resources.hugepageLimits"));
    cg_write(d, f, v);
    free(v);
    free(f);
  }
  json_object *net = jobj(r, "network", ctx);
  if (net && json_object_object_length(net)) {
    if (c->v2) fail("config: linux.resources.network is not supported on cgroup v2");
    if (jhas(net, "classID")) {
      char *v = num((int64_t)juint(net, "classID", 0, "linux.resources.network"));
      cg_write(need(c, "net_cls", "network.classID"), "net_cls.classid", v);
      free(v);
    }
    json_object *pr = jarr(net, "priorities", "linux.resources.network");
    for (size_t i = 0; pr && i < json_object_array_length(pr); i++) {
      json_object *e = json_object_array_get_idx(pr, i);
      char v[128];
      snprintf(v, sizeof v, "%s %llu", jstr(e, "name", "network.priorities") ?: "", (unsigned long long)juint(e, "priority", 0, "network.priorities"));
      cg_write(need(c, "net_prio", "network.priorities"), "net_prio.ifpriomap", v);
    }
  }
  json_object *un = jobj(r, "unified", ctx);
  if (un && json_object_object_length(un)) {
    const char *d = cg_v2_dir(c);
    if (!c->v2 && !hybrid_v2_mode) fail("config: linux.resources.unified needs cgroup v2");
    json_object_object_foreach(un, k, v) {
      if (strchr(k, '/') || !strcmp(k, ".") || !strcmp(k, "..") || !json_object_is_type(v, json_type_string))
        fail("config: linux.resources.unified.%s is not valid", k);
      cg_write(d, k, json_object_get_string(v));
    }
  }
  json_object *devs = jarr(r, "devices", ctx);
  if (devs) {
    if (c->v2 || hybrid_v2_mode) {
      const char *d = cg_v2_dir(c);
      int fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0) fail_errno("open %s", d);
      bpf_devices_attach(fd, devs);
      close(fd);
    } else {
      dev_rules_v1(need(c, "devices", "devices"), devs, updating);
    }
  }
}

size_t cg_count(struct cg *c) { return c->n; }

void cg_dir(struct cg *c, size_t i, const char **path, const char **ctrls, const char **mnt) {
  *path = c->dirs[i].path;
  *ctrls = c->dirs[i].ctrls;
  *mnt = c->dirs[i].mnt;
}
