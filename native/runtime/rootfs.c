/* The container's filesystem: mounts from config.json resolved inside the rootfs (openat2
 * RESOLVE_IN_ROOT, so a symlink in the image can never send a mount outside it), /dev, the
 * console, pivot_root, then masked and read-only paths. Runs in the container's mount ns. */
#include "rt.h"

#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

static int g_rootfd = -1;

static int open_in_root(const char *path, int flags, int quiet_enoent) {
  while (*path == '/') path++;
  if (!*path) path = ".";
  struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC), .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
  int fd;
  do fd = (int)syscall(SYS_openat2, g_rootfd, path, &how, sizeof how);
  while (fd < 0 && errno == EAGAIN);
  if (fd < 0 && !(quiet_enoent && errno == ENOENT)) fail_errno("open %s in the rootfs", path);
  return fd;
}

/* Creates every missing directory of path inside the root; the last component becomes a
 * directory or, with as_file, an empty file. Returns an O_PATH fd of it. */
static int mk_in_root(const char *path, int as_file, mode_t mode) {
  char *p = xstrdup(path);
  size_t len = strlen(p);
  for (size_t i = 1; i <= len; i++) {
    if (p[i] != '/' && p[i] != 0) continue;
    char saved = p[i];
    p[i] = 0;
    int last = saved == 0;
    int fd = open_in_root(p, O_PATH, 1);
    if (fd < 0) {
      char *slash = strrchr(p, '/');
      char *name = slash ? slash + 1 : p;
      char *parent = slash && slash != p ? xstrdup(p) : xstrdup("/");
      if (slash && slash != p) parent[slash - p] = 0;
      int pfd = open_in_root(parent, O_PATH | O_DIRECTORY, 0);
      if (last && as_file) {
        int f = openat(pfd, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (f < 0 && errno != EEXIST) fail_errno("create %s in the rootfs", p);
        if (f >= 0) close(f);
      } else if (mkdirat(pfd, name, mode) < 0 && errno != EEXIST) {
        fail_errno("mkdir %s in the rootfs", p);
      }
      close(pfd);
      free(parent);
      fd = open_in_root(p, O_PATH, 0);
    }
    if (last) {
      free(p);
      return fd;
    }
    close(fd);
    p[i] = saved;
  }
  free(p);
  return open_in_root("/", O_PATH, 0);
}

static char *fd_path(int fd) { return xasprintf("/proc/self/fd/%d", fd); }

struct mopt { const char *name; int clear; unsigned long flag; };
static const struct mopt mopts[] = {
    {"ro", 0, MS_RDONLY},         {"rw", 1, MS_RDONLY},         {"nosuid", 0, MS_NOSUID},         {"suid", 1, MS_NOSUID},
    {"nodev", 0, MS_NODEV},       {"dev", 1, MS_NODEV},         {"noexec", 0, MS_NOEXEC},         {"exec", 1, MS_NOEXEC},
    {"sync", 0, MS_SYNCHRONOUS},  {"async", 1, MS_SYNCHRONOUS}, {"dirsync", 0, MS_DIRSYNC},       {"remount", 0, MS_REMOUNT},
    {"mand", 0, MS_MANDLOCK},     {"nomand", 1, MS_MANDLOCK},   {"atime", 1, MS_NOATIME},         {"noatime", 0, MS_NOATIME},
    {"diratime", 1, MS_NODIRATIME}, {"nodiratime", 0, MS_NODIRATIME}, {"relatime", 0, MS_RELATIME}, {"norelatime", 1, MS_RELATIME},
    {"strictatime", 0, MS_STRICTATIME}, {"nostrictatime", 1, MS_STRICTATIME}, {"bind", 0, MS_BIND}, {"rbind", 0, MS_BIND | MS_REC},
    {"silent", 0, MS_SILENT},     {"loud", 1, MS_SILENT},
};

struct mparsed { unsigned long flags, prop; char *data; };

static void parse_mount_options(json_object *opts, const char *dest, struct mparsed *out) {
  size_t n = opts ? json_object_array_length(opts) : 0;
  size_t cap = 1;
  for (size_t i = 0; i < n; i++) cap += strlen(json_object_get_string(json_object_array_get_idx(opts, i))) + 1;
  out->data = xcalloc(1, cap);
  for (size_t i = 0; i < n; i++) {
    const char *o = json_object_get_string(json_object_array_get_idx(opts, i));
    int known = 0;
    for (size_t k = 0; k < sizeof mopts / sizeof mopts[0]; k++) {
      if (strcmp(mopts[k].name, o)) continue;
      if (mopts[k].clear) out->flags &= ~mopts[k].flag;
      else out->flags |= mopts[k].flag;
      known = 1;
    }
    unsigned long pf = mount_prop_flag(o);
    if (pf) {
      out->prop = pf;
      known = 1;
    }
    if (known) continue;
    if (!strcmp(o, "tmpcopyup") || !strcmp(o, "idmap") || !strcmp(o, "ridmap") || !strncmp(o, "rro", 3) || !strcmp(o, "rrw") ||
        !strcmp(o, "rnosuid") || !strcmp(o, "rnodev") || !strcmp(o, "rnoexec") || !strcmp(o, "copy-symlink"))
      fail("mount %s: option %s is not supported by berth-runtime", dest, o);
    if (*out->data) strcat(out->data, ",");
    strcat(out->data, o);
  }
}

/* Flags a bind remount must keep: the kernel refuses to clear them in a user namespace. */
static unsigned long locked_flags(const char *path) {
  struct statvfs sv;
  if (statvfs(path, &sv) < 0) return 0;
  unsigned long f = 0;
  if (sv.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) f |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (sv.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME) f |= MS_RELATIME;
  return f;
}

static void bind_remount(const char *target, unsigned long flags, int keep_locked) {
  unsigned long f = MS_BIND | MS_REMOUNT | (flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME));
  if (keep_locked) f |= locked_flags(target);
  if (mount(NULL, target, NULL, f, NULL) < 0) {
    /* the source may carry flags of its own that must stay (e.g. nodev on a user's mount) */
    f |= locked_flags(target);
    if (mount(NULL, target, NULL, f, NULL) < 0) fail_errno("remount %s", target);
  }
}

static int in_new_ns(struct spec *sp, int flag) {
  for (size_t i = 0; i < sp->nns; i++)
    if (sp->ns[i].flag == flag) return 1;
  return 0;
}

static void mount_cgroup(struct cinit *ci, const char *dest, int tfd, unsigned long flags) {
  char *target = fd_path(tfd);
  int cgns = (ci->sp->clone_flags & CLONE_NEWCGROUP) != 0;
  unsigned long base = flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME);
  if (cg_is_v2(ci->cg)) {
    if (cgns) {
      if (mount("cgroup2", target, "cgroup2", base | (flags & MS_RDONLY), NULL) < 0) fail_errno("mount cgroup2 on %s", dest);
    } else {
      if (mount(cg_v2_dir(ci->cg), target, NULL, MS_BIND, NULL) < 0) fail_errno("bind cgroup on %s", dest);
      int rfd = open_in_root(dest, O_PATH, 0);
      char *rt = fd_path(rfd);
      bind_remount(rt, flags, 0);
      free(rt);
      close(rfd);
    }
    free(target);
    return;
  }
  if (mount("tmpfs", target, "tmpfs", base, "mode=755") < 0) fail_errno("mount tmpfs on %s", dest);
  for (size_t i = 0; i < cg_count(ci->cg); i++) {
    const char *path, *ctrls, *mnt;
    cg_dir(ci->cg, i, &path, &ctrls, &mnt);
    if (!*ctrls) continue; /* the (empty) unified hierarchy of a hybrid host */
    const char *name = !strncmp(ctrls, "name=", 5) ? ctrls + 5 : ctrls;
    char *sub = xasprintf("%s/%s", dest, name);
    int sfd = mk_in_root(sub, 0, 0755);
    char *st = fd_path(sfd);
    if (cgns) {
      if (mount("cgroup", st, "cgroup", base | (flags & MS_RDONLY), ctrls) < 0) fail_errno("mount cgroup %s on %s", ctrls, sub);
    } else {
      if (mount(path, st, NULL, MS_BIND, NULL) < 0) fail_errno("bind %s on %s", path, sub);
      close(sfd);
      sfd = open_in_root(sub, O_PATH, 0); /* the new mount, not the dir under it */
      free(st);
      st = fd_path(sfd);
      bind_remount(st, base | (flags & MS_RDONLY), 0);
    }
    free(st);
    close(sfd);
    if (strchr(name, ',')) { /* cpu,cpuacct is reachable as cpu and cpuacct, as on the host */
      char *names = xstrdup(name), *save = NULL;
      int dfd = open_in_root(dest, O_PATH | O_DIRECTORY, 0);
      for (char *t = strtok_r(names, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (symlinkat(name, dfd, t) < 0 && errno != EEXIST) fail_errno("symlink %s/%s", dest, t);
      close(dfd);
      free(names);
    }
    free(sub);
  }
  if (flags & MS_RDONLY) {
    int rfd = open_in_root(dest, O_PATH, 0); /* the tmpfs itself, not the dir under it */
    free(target);
    target = fd_path(rfd);
    if (mount(NULL, target, NULL, MS_REMOUNT | MS_RDONLY | base, "mode=755") < 0) fail_errno("remount %s read-only", dest);
    close(rfd);
  }
  free(target);
}

static void mount_one(struct cinit *ci, json_object *m, size_t idx) {
  static const char *const keys[] = {"destination", "type", "source", "options", "uidMappings", "gidMappings", NULL};
  jcheck_keys(m, "mounts[]", keys);
  if (jhas(m, "uidMappings") || jhas(m, "gidMappings")) fail("config: mounts[%zu]: idmapped mounts are not supported by berth-runtime", idx);
  const char *dest = jstr(m, "destination", "mounts[]");
  if (!dest || dest[0] != '/') fail("config: mounts[%zu].destination must be an absolute path", idx);
  const char *type = jstr(m, "type", "mounts[]");
  const char *source = jstr(m, "source", "mounts[]");
  struct mparsed o = {0};
  parse_mount_options(jarr(m, "options", "mounts[]"), dest, &o);
  int bind = (o.flags & MS_BIND) || (type && !strcmp(type, "bind"));
  if (!bind && (!type || !*type)) fail("config: mounts[%zu] (%s) needs a type", idx, dest);

  char *src = NULL;
  int as_file = 0;
  if (bind) {
    if (!source) fail("config: mounts[%zu] (%s): a bind mount needs a source", idx, dest);
    src = source[0] == '/' ? xstrdup(source) : xasprintf("%s/%s", ci->sp->bundle, source);
    struct stat st;
    if (stat(src, &st) < 0) fail_errno("mount %s: source %s", dest, src);
    as_file = !S_ISDIR(st.st_mode);
  }
  int tfd = mk_in_root(dest, as_file, 0755);
  char *target = fd_path(tfd);
  if (type && !strcmp(type, "cgroup")) {
    mount_cgroup(ci, dest, tfd, o.flags);
  } else if (bind) {
    if (mount(src, target, NULL, MS_BIND | (o.flags & MS_REC), NULL) < 0) fail_errno("bind %s on %s", src, dest);
    unsigned long extra = o.flags & ~(MS_BIND | MS_REC | MS_REMOUNT);
    if (extra) {
      /* re-resolve: the fd still points at the directory under the new mount */
      close(tfd);
      tfd = open_in_root(dest, O_PATH, 0);
      free(target);
      target = fd_path(tfd);
      bind_remount(target, extra, (ci->sp->clone_flags & CLONE_NEWUSER) != 0);
    }
  } else {
    unsigned long flags = o.flags & ~MS_REMOUNT;
    const char *data = *o.data ? o.data : NULL;
    int r = mount(source ? source : type, target, type, flags, data);
    if (r < 0 && errno == EPERM && !strcmp(type, "sysfs") && !in_new_ns(ci->sp, CLONE_NEWNET)) {
      /* a sysfs of the host's network namespace cannot be mounted again: bind it, as runc does */
      r = mount("/sys", target, NULL, MS_BIND | MS_REC, NULL);
      if (r == 0) {
        close(tfd);
        tfd = open_in_root(dest, O_PATH, 0);
        free(target);
        target = fd_path(tfd);
        bind_remount(target, flags | MS_RDONLY, 1);
      }
    } else if (r < 0 && errno == EPERM && !strcmp(type, "mqueue")) {
      r = mount("/dev/mqueue", target, NULL, MS_BIND, NULL);
    }
    if (r < 0) fail_errno("mount %s (%s) on %s", source ? source : type, type, dest);
  }
  if (o.prop) {
    close(tfd);
    tfd = open_in_root(dest, O_PATH, 0);
    free(target);
    target = fd_path(tfd);
    if (mount(NULL, target, NULL, o.prop, NULL) < 0) fail_errno("set propagation of %s", dest);
  }
  free(target);
  close(tfd);
  free(src);
  free(o.data);
}

/* ---- /dev ------------------------------------------------------------------------------------- */
static void make_device(struct cinit *ci, const char *path, char type, unsigned maj, unsigned min, mode_t mode, uid_t uid, gid_t gid) {
  if (ci->sp->clone_flags & CLONE_NEWUSER) {
    /* mknod is not allowed in a user namespace: bind the host's node */
    int fd = mk_in_root(path, 1, 0755);
    char *t = fd_path(fd);
    if (mount(path, t, NULL, MS_BIND, NULL) < 0) fail_errno("bind device %s", path);
    free(t);
    close(fd);
    return;
  }
  char *dir = xstrdup(path);
  char *slash = strrchr(dir, '/');
  const char *name = slash + 1;
  *slash = 0;
  int dfd = mk_in_root(*dir ? dir : "/", 0, 0755);
  int dirfd = openat(dfd, ".", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (dirfd < 0) fail_errno("open %s", *dir ? dir : "/");
  mode_t fmt = type == 'b' ? S_IFBLK : type == 'p' ? S_IFIFO : S_IFCHR;
  unlinkat(dirfd, name, 0);
  if (mknodat(dirfd, name, fmt | (mode & 07777), makedev(maj, min)) < 0) fail_errno("mknod %s", path);
  if (fchmodat(dirfd, name, mode & 07777, 0) < 0) fail_errno("chmod %s", path);
  if (fchownat(dirfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) fail_errno("chown %s", path);
  close(dirfd);
  close(dfd);
  free(dir);
}

static void setup_dev(struct cinit *ci, int own_dev) {
  static const struct { const char *path; unsigned maj, min; } defaults[] = {
      {"/dev/null", 1, 3}, {"/dev/zero", 1, 5}, {"/dev/full", 1, 7}, {"/dev/random", 1, 8}, {"/dev/urandom", 1, 9}, {"/dev/tty", 5, 0}};
  if (own_dev)
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) make_device(ci, defaults[i].path, 'c', defaults[i].maj, defaults[i].min, 0666, 0, 0);
  json_object *devs = ci->sp->devices;
  for (size_t i = 0; devs && i < json_object_array_length(devs); i++) {
    json_object *d = json_object_array_get_idx(devs, i);
    const char *path = jstr(d, "path", "linux.devices");
    const char *type = jstr(d, "type", "linux.devices");
    if (!path || path[0] != '/' || !type || strlen(type) != 1 || !strchr("cbup", type[0])) fail("config: linux.devices[%zu] needs an absolute path and a type of c, b, u or p", i);
    mode_t mode = jhas(d, "fileMode") ? (mode_t)juint(d, "fileMode", 0666, "linux.devices") : 0666;
    make_device(ci, path, type[0] == 'u' ? 'c' : type[0], (unsigned)juint(d, "major", 0, "linux.devices"), (unsigned)juint(d, "minor", 0, "linux.devices"), mode,
                (uid_t)juint(d, "uid", 0, "linux.devices"), (gid_t)juint(d, "gid", 0, "linux.devices"));
  }
  if (!own_dev) return;
  static const struct { const char *name, *to; } links[] = {
      {"fd", "/proc/self/fd"}, {"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"}};
  int dfd = open_in_root("/dev", O_PATH | O_DIRECTORY, 0);
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
    if (symlinkat(links[i].to, dfd, links[i].name) < 0 && errno != EEXIST) fail_errno("symlink /dev/%s", links[i].name);
  if (access("/proc/kcore", F_OK) == 0 && symlinkat("/proc/kcore", dfd, "core") < 0 && errno != EEXIST) fail_errno("symlink /dev/core");
  struct stat st;
  if (fstatat(dfd, "pts/ptmx", &st, 0) == 0) {
    unlinkat(dfd, "ptmx", 0);
    if (symlinkat("pts/ptmx", dfd, "ptmx") < 0) fail_errno("symlink /dev/ptmx");
  }
  close(dfd);
}

int pty_open(const char *ptmx_path, int console_fd, unsigned short rows, unsigned short cols, int *slave) {
  int master = open_in_root(ptmx_path, O_RDWR | O_NOCTTY, 0);
  int unlock = 0;
  if (ioctl(master, TIOCSPTLCK, &unlock) < 0) fail_errno("unlock pty");
  int s = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (s < 0) fail_errno("open pty slave");
  if (rows || cols) {
    struct winsize ws = {.ws_row = rows, .ws_col = cols};
    ioctl(s, TIOCSWINSZ, &ws);
  }
  unsigned n = 0;
  ioctl(master, TIOCGPTN, &n);
  char name[64];
  snprintf(name, sizeof name, "/dev/pts/%u", n);
  if (send_fd(console_fd, master, name) < 0) fail_errno("send the pty master over the console socket");
  close(master);
  *slave = s;
  return 0;
}

/* pivot_root needs the new root's parent mount to be not shared */
static void parent_mount_private(const char *rootfs) {
  char *text = read_file("/proc/self/mountinfo", NULL);
  if (!text) return;
  char *best = NULL;
  size_t best_len = 0;
  char *dir = xstrdup(rootfs);
  char *parent = dirname(dir);
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    char mp[4096];
    if (sscanf(line, "%*d %*d %*s %*s %4095s", mp) != 1) continue;
    size_t l = strlen(mp);
    int prefix = !strcmp(mp, "/") || (!strncmp(parent, mp, l) && (parent[l] == 0 || parent[l] == '/'));
    if (prefix && l >= best_len) {
      free(best);
      best = xstrdup(mp);
      best_len = l;
    }
  }
  if (best) mount(NULL, best, NULL, MS_PRIVATE, NULL);
  free(best);
  free(dir);
  free(text);
}

void rootfs_prepare(struct cinit *ci) {
  struct spec *sp = ci->sp;
  unsigned long prop = sp->rootfs_prop ? sp->rootfs_prop : MS_SLAVE | MS_REC;
  if (mount(NULL, "/", NULL, prop, NULL) < 0) fail_errno("set propagation of /");
  parent_mount_private(sp->rootfs);
  if (mount(sp->rootfs, sp->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0) fail_errno("bind the rootfs %s", sp->rootfs);
  g_rootfd = open(sp->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (g_rootfd < 0) fail_errno("open %s", sp->rootfs);
  int own_dev = 0;
  json_object *ms = sp->mounts;
  for (size_t i = 0; ms && i < json_object_array_length(ms); i++) {
    json_object *m = json_object_array_get_idx(ms, i);
    const char *d = jstr(m, "destination", "mounts[]");
    if (d && !strcmp(d, "/dev")) own_dev = 1;
    mount_one(ci, m, i);
  }
  setup_dev(ci, own_dev);
  if (sp->proc.terminal) {
    pty_open("/dev/pts/ptmx", ci->console_fd, sp->proc.rows, sp->proc.cols, &ci->pty_slave);
    int cfd = mk_in_root("/dev/console", 1, 0755);
    char *t = fd_path(cfd);
    char *s = fd_path(ci->pty_slave);
    if (mount(s, t, NULL, MS_BIND, NULL) < 0) fail_errno("bind the console");
    free(s);
    free(t);
    close(cfd);
  }
}

void rootfs_pivot(struct cinit *ci) {
  const char *rootfs = ci->sp->rootfs;
  struct statfs sfs;
  if (statfs(rootfs, &sfs) == 0 && sfs.f_type == RAMFS_MAGIC) {
    /* pivot_root cannot leave the initial ramfs: move the rootfs over / instead */
    if (chdir(rootfs) < 0) fail_errno("chdir %s", rootfs);
    if (mount(rootfs, "/", NULL, MS_MOVE, NULL) < 0) fail_errno("move the rootfs to /");
    if (chroot(".") < 0) fail_errno("chroot");
    if (chdir("/") < 0) fail_errno("chdir /");
    return;
  }
  int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  int newroot = open(rootfs, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (oldroot < 0 || newroot < 0) fail_errno("open the roots");
  if (fchdir(newroot) < 0) fail_errno("chdir %s", rootfs);
  if (syscall(SYS_pivot_root, ".", ".") < 0) fail_errno("pivot_root %s", rootfs);
  /* the old root now sits on top of the new one: detach it without telling the host */
  if (fchdir(oldroot) < 0) fail_errno("fchdir the old root");
  if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0) fail_errno("make the old root a slave");
  if (umount2(".", MNT_DETACH) < 0) fail_errno("detach the old root");
  if (chdir("/") < 0) fail_errno("chdir /");
  close(oldroot);
  close(newroot);
  if (g_rootfd >= 0) close(g_rootfd);
  g_rootfd = -1;
}

static void write_sysctls(struct spec *sp) {
  if (!sp->sysctl) return;
  json_object_object_foreach(sp->sysctl, key, val) {
    if (!json_object_is_type(val, json_type_string)) fail("config: linux.sysctl.%s must be a string", key);
    if (!*key || strstr(key, "..") || key[0] == '.' || key[0] == '/') fail("config: linux.sysctl: %s is not a valid name", key);
    if (!strncmp(key, "net.", 4) && !in_new_ns(sp, CLONE_NEWNET)) fail("sysctl %s needs a network namespace of the container's own", key);
    char *path = xasprintf("/proc/sys/%s", key);
    for (char *p = path + 10; *p; p++)
      if (*p == '.') *p = '/';
    if (write_file(path, json_object_get_string(val)) < 0) fail_errno("sysctl %s", key);
    free(path);
  }
}

void rootfs_finish(struct cinit *ci) {
  struct spec *sp = ci->sp;
  write_sysctls(sp);
  json_object *ro = sp->readonly_paths;
  for (size_t i = 0; ro && i < json_object_array_length(ro); i++) {
    const char *p = json_object_get_string(json_object_array_get_idx(ro, i));
    if (!p || p[0] != '/') fail("config: linux.readonlyPaths must hold absolute paths");
    if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0) {
      if (errno == ENOENT) continue;
      fail_errno("bind %s", p);
    }
    bind_remount(p, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, 1);
  }
  json_object *mk = sp->masked;
  for (size_t i = 0; mk && i < json_object_array_length(mk); i++) {
    const char *p = json_object_get_string(json_object_array_get_idx(mk, i));
    if (!p || p[0] != '/') fail("config: linux.maskedPaths must hold absolute paths");
    struct stat st;
    if (lstat(p, &st) < 0) continue;
    int r = S_ISDIR(st.st_mode) ? mount("tmpfs", p, "tmpfs", MS_RDONLY, "size=0k") : mount("/dev/null", p, NULL, MS_BIND, NULL);
    if (r < 0 && errno != ENOENT) fail_errno("mask %s", p);
  }
  if (sp->root_readonly) bind_remount("/", MS_RDONLY, 1);
}
