/* create, start, run and exec. The runtime forks an intermediate process that joins the
 * namespaces given by path and clones the container's init with the new ones; the init reports
 * each step over a SOCK_SEQPACKET pair and then blocks opening exec.fifo until `start` reads
 * it. The intermediate exits at once, so the init is reparented to the caller's subreaper (the
 * monitor) just as with runc. */
#include "rt.h"

#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/close_range.h>

static struct { char *dir; struct cg *cg; pid_t pid; int armed; } g_undo;

/* Whatever a failed create made is taken back: no state dir, no cgroup, no process. */
static void undo_create(void) {
  if (!g_undo.armed) return;
  g_undo.armed = 0;
  if (g_undo.pid > 0) kill(g_undo.pid, SIGKILL);
  if (g_undo.cg) {
    size_t n = 0;
    pid_t *p = cg_pids(g_undo.cg, &n);
    for (size_t i = 0; i < n; i++) kill(p[i], SIGKILL);
    free(p);
    cg_destroy(g_undo.cg);
  }
  if (g_undo.dir) rm_rf(g_undo.dir);
}

static void reset_signals(void) {
  sigset_t all;
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all, NULL);
  for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
}

/* Every fd above stdio (and the preserved ones) closes on exec: nothing of the runtime leaks. */
static void cloexec_from(int first) {
  if (syscall(SYS_close_range, (unsigned)first, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return;
  for (int fd = first; fd < 1024; fd++) fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static void write_idmap(pid_t pid, const char *file, struct idmap *m, size_t n) {
  char *buf = xcalloc(n + 1, 40), *p = buf;
  for (size_t i = 0; i < n; i++) p += sprintf(p, "%u %u %u\n", m[i].container, m[i].host, m[i].size);
  char *path = xasprintf("/proc/%d/%s", (int)pid, file);
  if (write_file(path, buf) < 0) fail_errno("write %s", path);
  free(path);
  free(buf);
}

static void join_ns_fds(int *fds, int *flags, size_t n) {
  /* the user namespace first (it grants the rights for the others), the mount namespace last */
  for (int pass = 0; pass < 3; pass++)
    for (size_t i = 0; i < n; i++) {
      int want = pass == 0 ? flags[i] == CLONE_NEWUSER : pass == 2 ? flags[i] == CLONE_NEWNS : flags[i] != CLONE_NEWUSER && flags[i] != CLONE_NEWNS;
      if (!want) continue;
      if (setns(fds[i], flags[i]) < 0) fail_errno("join the %s namespace", ns_proc_name(flags[i]));
      close(fds[i]);
    }
}

static json_object *creating_state(struct spec *sp, const char *id, pid_t pid, const char *status) {
  json_object *o = json_object_new_object();
  json_object_object_add(o, "ociVersion", json_object_new_string(OCI_VERSION));
  json_object_object_add(o, "id", json_object_new_string(id));
  json_object_object_add(o, "status", json_object_new_string(status));
  json_object_object_add(o, "pid", json_object_new_int(pid));
  json_object_object_add(o, "bundle", json_object_new_string(sp->bundle));
  json_object *a = jget(sp->root_json, "annotations");
  if (a) json_object_object_add(o, "annotations", json_object_get(a));
  return o;
}

/* As runc does, the default device nodes (and mknod of any) stay allowed after the config's
 * own device rules, so a "deny all" config still gets a working /dev. */
static void add_default_device_rules(struct spec *sp) {
  static const struct { char type; int major, minor; const char *access; } d[] = {
      {'c', -1, -1, "m"}, {'b', -1, -1, "m"}, {'c', 1, 3, "rwm"}, {'c', 1, 8, "rwm"}, {'c', 1, 7, "rwm"},   {'c', 5, 0, "rwm"},
      {'c', 1, 5, "rwm"}, {'c', 1, 9, "rwm"}, {'c', 5, 1, "rwm"}, {'c', 136, -1, "rwm"}, {'c', 5, 2, "rwm"}};
  json_object *lx = jget(sp->root_json, "linux");
  if (!sp->resources) json_object_object_add(lx, "resources", sp->resources = json_object_new_object());
  json_object *devs = jget(sp->resources, "devices");
  if (!devs) json_object_object_add(sp->resources, "devices", devs = json_object_new_array());
  for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) {
    json_object *r = json_object_new_object();
    char t[2] = {d[i].type, 0};
    json_object_object_add(r, "allow", json_object_new_boolean(1));
    json_object_object_add(r, "type", json_object_new_string(t));
    if (d[i].major >= 0) json_object_object_add(r, "major", json_object_new_int(d[i].major));
    if (d[i].minor >= 0) json_object_object_add(r, "minor", json_object_new_int(d[i].minor));
    json_object_object_add(r, "access", json_object_new_string(d[i].access));
    json_object_array_add(devs, r);
  }
}

static void wait_cgroup(int fd) {
  if (sync_recv(fd, NULL, 0) != SYNC_CGROUP) _exit(1);
}

static char wait_go(int fd, char *text, size_t n) {
  char t = sync_recv(fd, text, n);
  if (t != SYNC_GO) _exit(1); /* the runtime is gone or gave up */
  return t;
}

/* The runtime's side of the intermediate process: its report of the pid it cloned or forked
 * (or the error it hit), once it has exited. */
static pid_t await_intermediate(int sock, pid_t mid, const char *what) {
  char text[4100];
  char t = sync_recv(sock, text, sizeof text);
  int st;
  while (waitpid(mid, &st, 0) < 0 && errno == EINTR) {
  }
  if (t == SYNC_ERR) fail("%s", text);
  if (t != 'P') fail("the runtime's intermediate process died before %s", what);
  return (pid_t)atoi(text);
}

/* ---- the container's init, inside its namespaces ---------------------------------------------- */
static __attribute__((noreturn)) void container_init(struct cinit *ci, const char *id, int preserve_fds) {
  struct spec *sp = ci->sp;
  char text[64];
  wait_go(ci->sync_fd, text, sizeof text);
  pid_t host_pid = (pid_t)atoi(text);
  if (sp->clone_flags & CLONE_NEWUSER) {
    if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) fail_errno("become root in the user namespace");
  }
  /* the runtime moves us into the cgroups while we set up the mounts (a first cgroup v1
     migration waits for an RCU grace period, ~10 ms); a cgroup namespace must wait for it */
  int in_cgroup = 0;
  if (sp->clone_flags & CLONE_NEWCGROUP) {
    wait_cgroup(ci->sync_fd);
    in_cgroup = 1;
    if (unshare(CLONE_NEWCGROUP) < 0) fail_errno("unshare the cgroup namespace");
  }
  if (setsid() < 0) fail_errno("setsid");
  syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, NULL); /* a keyring of its own; absent keyctl is fine */
  int own_uts = (sp->clone_flags & CLONE_NEWUTS) != 0;
  if (sp->hostname && *sp->hostname) {
    if (!own_uts) fail("config: a hostname needs a UTS namespace of the container's own");
    if (sethostname(sp->hostname, strlen(sp->hostname)) < 0) fail_errno("sethostname");
  }
  if (sp->domainname && *sp->domainname) {
    if (!own_uts) fail("config: a domainname needs a UTS namespace of the container's own");
    if (setdomainname(sp->domainname, strlen(sp->domainname)) < 0) fail_errno("setdomainname");
  }
  if (sp->clone_flags & CLONE_NEWNS) rootfs_prepare(ci);
  if (!in_cgroup) wait_cgroup(ci->sync_fd);
  sync_send(ci->sync_fd, SYNC_HOOKS, NULL);
  wait_go(ci->sync_fd, text, sizeof text);
  json_object *st = creating_state(sp, id, host_pid, "created");
  run_hooks(sp->hooks, "createContainer", st, 1);
  if (sp->clone_flags & CLONE_NEWNS) {
    rootfs_pivot(ci);
    rootfs_finish(ci);
  }
  if (sp->proc.terminal) proc_setup_terminal(ci->pty_slave);
  if (chdir(sp->proc.cwd) < 0) fail_errno("chdir to cwd (\"%s\") set in config.json failed", sp->proc.cwd);
  char *exe = proc_find_exec(&sp->proc);
  proc_default_home(&sp->proc);
  void *filter = seccomp_build(sp->seccomp);
  cloexec_from(3 + preserve_fds);
  sync_send(ci->sync_fd, SYNC_READY, NULL);
  g_child_errfd = -1; /* from here on the runtime has returned: errors go to the container's stderr */
  char *fifo = xasprintf("/proc/self/fd/%d", ci->fifo_fd);
  int w = open(fifo, O_WRONLY | O_CLOEXEC);
  if (w < 0) fail_errno("open exec fifo");
  if (write(w, "0", 1) != 1) fail_errno("write exec fifo");
  close(w);
  close(ci->fifo_fd);
  close(ci->sync_fd);
  json_object_object_add(st, "status", json_object_new_string("running"));
  run_hooks(sp->hooks, "startContainer", st, 1);
  reset_signals();
  proc_finalize(&sp->proc, filter);
  if (sp->has_personality && personality(sp->personality) < 0) fail_errno("personality");
  execve(exe, sp->proc.args, sp->proc.env);
  fail_errno("exec %s", exe);
}

/* ---- create ----------------------------------------------------------------------------------- */

static void write_pid_file(const char *path, pid_t pid) {
  if (!path) return;
  char v[24];
  int n = snprintf(v, sizeof v, "%d", (int)pid);
  if (atomic_write(path, v, (size_t)n) < 0) fail_errno("write pid file %s", path);
}

/* Returns the state of the created container (status "created"). */
struct state *container_create(const char *id, struct create_opts *o) {
  validate_id(id);
  char *bundle = realpath(o->bundle ? o->bundle : ".", NULL);
  if (!bundle) fail_errno("bundle %s", o->bundle ? o->bundle : ".");
  struct spec *sp = spec_load(bundle);
  if (sp->proc.terminal && !o->console_socket) fail("cannot allocate tty if runc will detach without setting console socket");
  if (!sp->proc.terminal && o->console_socket) fail("cannot use console socket if runc will not detach or allocate tty");

  if (mkdir_p(g_root, 0711) < 0) fail_errno("mkdir %s", g_root);
  char *dir = state_dir(id);
  if (mkdir(dir, 0711) < 0) {
    if (errno == EEXIST) fail("container with id exists: %s", id);
    fail_errno("mkdir %s", dir);
  }
  g_undo.dir = dir;
  g_undo.armed = 1;
  atexit(undo_create);

  char *cfg_src = xasprintf("%s/config.json", bundle), *cfg_dst = xasprintf("%s/config.json", dir);
  size_t clen;
  char *cfg = read_file(cfg_src, &clen);
  if (!cfg || atomic_write(cfg_dst, cfg, clen) < 0) fail_errno("copy %s", cfg_src);
  free(cfg);

  struct cg *cg = cg_new(sp->cgroups_path, id);
  g_undo.cg = cg;
  cg_create(cg);
  add_default_device_rules(sp);
  cg_apply(cg, sp->resources, 0);

  char *fifo = xasprintf("%s/exec.fifo", dir);
  mode_t old = umask(0);
  if (mkfifo(fifo, 0622) < 0) fail_errno("mkfifo %s", fifo);
  umask(old);
  /* opened here: a mapped root in a user namespace may not be able to reach the state dir */
  int fifo_fd = open(fifo, O_PATH | O_CLOEXEC);
  if (fifo_fd < 0) fail_errno("open %s", fifo);

  int console_fd = -1;
  if (o->console_socket && (console_fd = console_connect(o->console_socket)) < 0) fail_errno("connect to the console socket %s", o->console_socket);

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) fail_errno("socketpair");
  /* joined namespaces are opened here, so a bad path fails before anything runs */
  int nsfds[8], nsflags[8];
  size_t njoin = 0;
  for (size_t i = 0; i < sp->nns; i++) {
    if (!sp->ns[i].path) continue;
    nsfds[njoin] = open(sp->ns[i].path, O_RDONLY | O_CLOEXEC);
    if (nsfds[njoin] < 0) fail_errno("open the %s namespace %s", sp->ns[i].type, sp->ns[i].path);
    nsflags[njoin++] = sp->ns[i].flag;
  }

  pid_t mid = fork();
  if (mid < 0) fail_errno("fork");
  if (mid == 0) {
    close(sv[0]);
    g_child_errfd = sv[1];
    g_undo.armed = 0;
    join_ns_fds(nsfds, nsflags, njoin);
    pid_t init = (pid_t)syscall(SYS_clone, (unsigned long)((sp->clone_flags & ~CLONE_NEWCGROUP) | SIGCHLD), NULL, NULL, NULL, NULL);
    if (init < 0) fail_errno("clone the container's namespaces");
    if (init == 0) {
      struct cinit ci = {.sp = sp, .cg = cg, .sync_fd = sv[1], .console_fd = console_fd, .fifo_fd = fifo_fd, .pty_slave = -1};
      container_init(&ci, id, o->preserve_fds);
    }
    char v[24];
    snprintf(v, sizeof v, "%d", (int)init);
    sync_send(sv[1], 'P', v);
    _exit(0);
  }
  close(sv[1]);
  close(fifo_fd);
  for (size_t i = 0; i < njoin; i++) close(nsfds[i]);
  if (console_fd >= 0) close(console_fd);
  pid_t pid = await_intermediate(sv[0], mid, "cloning the container");
  g_undo.pid = pid;
  char text[4100];
  char t;
  if (sp->clone_flags & CLONE_NEWUSER) {
    write_idmap(pid, "uid_map", sp->uidmap, sp->nuidmap);
    write_idmap(pid, "gid_map", sp->gidmap, sp->ngidmap);
  }
  snprintf(text, sizeof text, "%d", (int)pid);
  sync_send(sv[0], SYNC_GO, text);
  cg_join(cg, pid);
  sync_send(sv[0], SYNC_CGROUP, NULL);
  for (;;) {
    t = sync_recv(sv[0], text, sizeof text);
    if (t == SYNC_READY) break;
    if (t == SYNC_ERR) fail("%s", text);
    if (t == SYNC_HOOKS) {
      json_object *s = creating_state(sp, id, pid, "creating");
      run_hooks(sp->hooks, "prestart", s, 1);
      run_hooks(sp->hooks, "createRuntime", s, 1);
      json_object_put(s);
      sync_send(sv[0], SYNC_GO, NULL);
      continue;
    }
    fail("the container's init exited before it was ready");
  }
  close(sv[0]);

  struct state *s = xcalloc(1, sizeof *s);
  s->id = xstrdup(id);
  s->dir = dir;
  s->pid = pid;
  s->start_time = proc_start_time(pid, NULL);
  s->bundle = bundle;
  s->rootfs = sp->rootfs;
  char created[64];
  rfc3339_now(created, sizeof created);
  s->created = xstrdup(created);
  s->annotations = jget(sp->root_json, "annotations");
  s->cg = cg;
  state_save(s);
  write_pid_file(o->pid_file, pid);
  g_undo.armed = 0;
  return s;
}

/* ---- start ------------------------------------------------------------------------------------ */
void container_start(struct state *s) {
  const char *status = state_status(s);
  if (!strcmp(status, "stopped")) fail("cannot start a container that has stopped");
  if (strcmp(status, "created")) fail("cannot start an already %s container", status);
  char *fifo = xasprintf("%s/exec.fifo", s->dir);
  int fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) fail("open %s: no such file or directory", fifo);
    fail_errno("open %s", fifo);
  }
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, 100);
    if (r > 0) {
      char c;
      ssize_t n = read(fd, &c, 1);
      if (n == 1) break;
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) fail("the container's init exited before it started");
    } else if (r < 0 && errno != EINTR) {
      fail_errno("poll %s", fifo);
    }
    if (!pid_alive(s->pid, s->start_time)) fail("cannot start a container that has stopped");
  }
  close(fd);
  if (unlink(fifo) < 0 && errno != ENOENT) fail_errno("remove %s", fifo);
  free(fifo);
  /* the process runs now; a short one may already have exited and its monitor deleted the
     state dir: then there is no config to read and no poststart hook to run, and no error */
  char *cfgp = xasprintf("%s/config.json", s->dir);
  char *text = read_file(cfgp, NULL);
  free(cfgp);
  json_object *cfg = text ? json_tokener_parse(text) : NULL;
  free(text);
  if (cfg) {
    json_object *st = state_json(s, "running");
    run_hooks(jget(cfg, "hooks"), "poststart", st, 0);
    json_object_put(st);
    json_object_put(cfg);
  }
}

/* ---- waiting in the foreground (run, exec without --detach) ---------------------------------- */
static volatile pid_t g_fwd_pid;
static void forward(int sig) {
  if (g_fwd_pid > 0) kill(g_fwd_pid, sig);
}

int wait_foreground(pid_t pid) {
  g_fwd_pid = pid;
  static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], forward);
  for (;;) {
    int st;
    pid_t r = waitpid(-1, &st, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return 255;
    }
    if (r != pid) continue; /* an orphan of the container, reparented to us */
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  }
}

/* ---- exec ------------------------------------------------------------------------------------- */

int container_exec(struct state *s, struct exec_opts *o) {
  const char *status = state_status(s);
  if (!strcmp(status, "stopped")) fail("cannot exec in a stopped container");
  if (!strcmp(status, "paused")) fail("cannot exec in a paused container");
  json_object *cfg = state_config(s);
  json_object *pj;
  if (o->process_file) {
    size_t len;
    char *text = read_file(o->process_file, &len);
    if (!text) fail_errno("read %s", o->process_file);
    pj = json_tokener_parse(text);
    free(text);
    if (!pj) fail("%s: invalid JSON", o->process_file);
  } else {
    if (!o->args || !o->args[0]) fail("exec needs a command or --process");
    pj = json_object_get(jget(cfg, "process"));
    json_object *a = json_object_new_array();
    for (char **p = o->args; *p; p++) json_object_array_add(a, json_object_new_string(*p));
    json_object_object_add(pj, "args", a);
    json_object_object_add(pj, "terminal", json_object_new_boolean(o->tty));
    if (o->cwd) json_object_object_add(pj, "cwd", json_object_new_string(o->cwd));
    json_object *env = jget(pj, "env");
    for (size_t i = 0; env && i < o->nenv; i++) json_object_array_add(env, json_object_new_string(o->env[i]));
  }
  struct process p = {0};
  process_parse(pj, &p, 1);
  if (p.terminal && !o->console_socket) fail("cannot allocate tty if runc will detach without setting console socket");
  json_object *seccomp = jget(jget(cfg, "linux"), "seccomp");

  /* the container's namespaces, taken from its init */
  json_object *nss = jget(jget(cfg, "linux"), "namespaces");
  int nsfds[8], nsflags[8];
  size_t njoin = 0;
  for (size_t i = 0; nss && i < json_object_array_length(nss) && njoin < 8; i++) {
    const char *type = jstr(json_object_array_get_idx(nss, i), "type", "linux.namespaces");
    int f = type ? ns_flag(type) : 0;
    if (!f) continue;
    char *path = xasprintf("/proc/%d/ns/%s", (int)s->pid, ns_proc_name(f));
    nsfds[njoin] = open(path, O_RDONLY | O_CLOEXEC);
    if (nsfds[njoin] < 0) fail_errno("open %s", path);
    nsflags[njoin++] = f;
    free(path);
  }
  int console_fd = -1;
  if (o->console_socket && (console_fd = console_connect(o->console_socket)) < 0) fail_errno("connect to the console socket %s", o->console_socket);
  if (!o->detach && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) fail_errno("become a subreaper");
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) fail_errno("socketpair");
  pid_t mid = fork();
  if (mid < 0) fail_errno("fork");
  if (mid == 0) {
    close(sv[0]);
    g_child_errfd = sv[1];
    join_ns_fds(nsfds, nsflags, njoin);
    pid_t child = fork();
    if (child < 0) fail_errno("fork");
    if (child == 0) {
      char text[64];
      wait_go(sv[1], text, sizeof text);
      if (p.terminal) {
        int slave;
        int master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (master < 0) master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (master < 0) fail_errno("open /dev/ptmx in the container");
        int unlock = 0;
        if (ioctl(master, TIOCSPTLCK, &unlock) < 0) fail_errno("unlock pty");
        slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (slave < 0) fail_errno("open pty slave");
        if (p.rows || p.cols) {
          struct winsize ws = {.ws_row = p.rows, .ws_col = p.cols};
          ioctl(slave, TIOCSWINSZ, &ws);
        }
        if (send_fd(console_fd, master, "/dev/ptmx") < 0) fail_errno("send the pty master");
        close(master);
        close(console_fd);
        proc_setup_terminal(slave);
      }
      if (chdir(p.cwd) < 0) fail_errno("chdir to cwd (\"%s\") set in config.json failed", p.cwd);
      char *exe = proc_find_exec(&p);
      proc_default_home(&p);
      void *filter = seccomp_build(seccomp);
      cloexec_from(3 + o->preserve_fds);
      wait_cgroup(sv[1]);
      sync_send(sv[1], SYNC_READY, NULL);
      g_child_errfd = -1;
      close(sv[1]);
      reset_signals();
      proc_finalize(&p, filter);
      execve(exe, p.args, p.env);
      fail_errno("exec %s", exe);
    }
    char v[24];
    snprintf(v, sizeof v, "%d", (int)child);
    sync_send(sv[1], 'P', v);
    _exit(0);
  }
  close(sv[1]);
  for (size_t i = 0; i < njoin; i++) close(nsfds[i]);
  if (console_fd >= 0) close(console_fd);
  pid_t pid = await_intermediate(sv[0], mid, "forking the exec process");
  sync_send(sv[0], SYNC_GO, NULL);
  if (s->cg) cg_join(s->cg, pid);
  sync_send(sv[0], SYNC_CGROUP, NULL);
  char text[4100];
  char t = sync_recv(sv[0], text, sizeof text);
  if (t != SYNC_READY) {
    kill(pid, SIGKILL);
    if (t == SYNC_ERR) fail("%s", text);
    fail("the exec process died before it was ready");
  }
  close(sv[0]);
  write_pid_file(o->pid_file, pid);
  if (o->detach) return 0;
  return wait_foreground(pid);
}
