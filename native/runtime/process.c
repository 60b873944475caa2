/* The last steps of a container or exec process before execve: terminal, rlimits, user,
 * capabilities, no_new_privs, seccomp. */
#include "rt.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

void proc_setup_terminal(int slave) {
  if (setsid() < 0 && errno != EPERM) fail_errno("setsid");
  if (ioctl(slave, TIOCSCTTY, 0) < 0) fail_errno("make the pty the controlling terminal");
  for (int fd = 0; fd < 3; fd++)
    if (dup2(slave, fd) < 0) fail_errno("dup2 the pty");
  if (slave > 2) close(slave);
}

static const char *env_get(char **env, const char *name) {
  size_t n = strlen(name);
  for (char **e = env; e && *e; e++)
    if (!strncmp(*e, name, n) && (*e)[n] == '=') return *e + n + 1;
  return NULL;
}

static int is_executable(const char *path, int *eacces) {
  struct stat st;
  if (stat(path, &st) < 0) return 0;
  if (S_ISDIR(st.st_mode) || !(st.st_mode & 0111)) {
    *eacces = 1;
    return 0;
  }
  return 1;
}

/* The same lookup (and the same error text) as runc, so clients map it to exit code 127/126. */
char *proc_find_exec(struct process *p) {
  const char *cmd = p->args[0];
  int eacces = 0;
  if (strchr(cmd, '/')) {
    char *full = cmd[0] == '/' ? xstrdup(cmd) : xasprintf("%s/%s", p->cwd, cmd);
    if (is_executable(full, &eacces)) return full;
    if (eacces) fail("exec: \"%s\": permission denied", cmd);
    fail("exec: \"%s\": stat %s: no such file or directory", cmd, cmd);
  }
  const char *path = env_get(p->env, "PATH");
  if (!path) path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  char *dirs = xstrdup(path), *save = NULL;
  for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
    char *full = xasprintf("%s/%s", *d ? d : ".", cmd);
    if (is_executable(full, &eacces)) return full;
    free(full);
  }
  if (eacces) fail("exec: \"%s\": permission denied", cmd);
  fail("exec: \"%s\": executable file not found in $PATH", cmd);
}

/* As runc: without HOME in the environment, the user's home from the container's /etc/passwd
 * (or "/") is set. Called inside the container's root. */
void proc_default_home(struct process *p) {
  if (env_get(p->env, "HOME")) return;
  const char *home = "/";
  char *pw = read_file("/etc/passwd", NULL);
  for (char *line = pw ? strtok(pw, "\n") : NULL; line; line = strtok(NULL, "\n")) {
    char *f[7] = {0};
    int n = 0;
    for (char *q = line; n < 7; n++) {
      f[n] = q;
      char *c = strchr(q, ':');
      if (!c) break;
      *c = 0;
      q = c + 1;
    }
    if (n >= 5 && f[2] && f[5] && (uid_t)strtoul(f[2], NULL, 10) == p->uid && *f[5]) {
      home = f[5];
      break;
    }
  }
  size_t n = 0;
  while (p->env && p->env[n]) n++;
  char **env = xcalloc(n + 2, sizeof *env);
  for (size_t i = 0; i < n; i++) env[i] = p->env[i];
  env[n] = xasprintf("HOME=%s", home);
  p->env = env;
}

void apply_rlimits(struct process *p) {
  for (size_t i = 0; i < p->nrlimits; i++) {
    struct rlimit rl = {.rlim_cur = p->rlimits[i].soft, .rlim_max = p->rlimits[i].hard};
    if (setrlimit(p->rlimits[i].resource, &rl) < 0) fail_errno("setrlimit %d", p->rlimits[i].resource);
  }
}

/* stdio pipes belong to root; a process running as another user must still be able to reopen
 * /dev/stdout and friends. */
void fix_stdio_owner(uid_t uid, gid_t gid) {
  if (!uid && !gid) return;
  for (int fd = 0; fd < 3; fd++) {
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_uid != 0) continue;
    if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISCHR(st.st_mode)) {
      if (S_ISCHR(st.st_mode) && major(st.st_rdev) != 136) continue; /* /dev/null etc. stay */
      (void)!fchown(fd, uid, gid);
    }
  }
}

/* needs CAP_SETPCAP in the effective set: done while still root, before the uid changes */
static void drop_bounding(struct process *p) {
  int last = last_cap();
  for (int c = 0; c <= last; c++)
    if (!(p->caps[CAP_BOUNDING] & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
      fail_errno("drop %s from the bounding set", cap_name(c));
}

static void set_caps(struct process *p) {
  int last = last_cap();
  struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct d[2];
  memset(d, 0, sizeof d);
  for (int i = 0; i < 2; i++) {
    d[i].effective = (uint32_t)(p->caps[CAP_EFFECTIVE] >> (32 * i));
    d[i].permitted = (uint32_t)(p->caps[CAP_PERMITTED] >> (32 * i));
    d[i].inheritable = (uint32_t)(p->caps[CAP_INHERITABLE] >> (32 * i));
  }
  if (syscall(SYS_capset, &h, d) < 0) fail_errno("capset");
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) fail_errno("clear ambient capabilities");
  for (int c = 0; c <= last; c++)
    /* the kernel raises an ambient cap only if it is also permitted and inheritable; runc lets
       the others go the same way, and configs (runc's own `spec`) rely on it */
    if (p->caps[CAP_AMBIENT] & (1ULL << c)) (void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0);
}

void proc_finalize(struct process *p, void *seccomp) {
  if (p->has_oom) {
    char v[16];
    snprintf(v, sizeof v, "%d", p->oom_score_adj);
    if (write_file("/proc/self/oom_score_adj", v) < 0) fail_errno("set oom_score_adj");
  }
  if (p->has_ioprio && syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, p->ioprio) < 0) fail_errno("ioprio_set");
  apply_rlimits(p);
  if (p->has_umask) umask(p->umask);
  fix_stdio_owner(p->uid, p->gid);
  /* without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it before dropping caps */
  if (seccomp && !p->nnp) seccomp_load_filter(seccomp);
  if (p->has_caps) drop_bounding(p);
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) fail_errno("keepcaps");
  if (setgroups(p->ngids, p->gids) < 0 && !(errno == EPERM && p->ngids == 0)) fail_errno("setgroups");
  if (setresgid(p->gid, p->gid, p->gid) < 0) fail_errno("setgid %u", (unsigned)p->gid);
  if (setresuid(p->uid, p->uid, p->uid) < 0) fail_errno("setuid %u", (unsigned)p->uid);
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) fail_errno("keepcaps");
  if (p->has_caps) set_caps(p);
  if (p->nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) fail_errno("no_new_privs");
  if (chdir(p->cwd) < 0) fail_errno("chdir to cwd (\"%s\") set in config.json failed", p->cwd);
  if (seccomp && p->nnp) seccomp_load_filter(seccomp);
}
