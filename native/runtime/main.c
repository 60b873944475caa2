/* berth-runtime: command line, and the commands that act on an existing container. */
#include "rt.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- options: --name value, --name=value, -name value, -n value ------------------------------- */
struct opt { const char *name; char short_name; int has_arg; const char *value; int set; const char **multi; size_t nmulti; };

static char **parse_opts(int argc, char **argv, struct opt *opts, const char *cmd) {
  char **rest = xcalloc((size_t)argc + 1, sizeof *rest);
  size_t nrest = 0;
  int i = 0;
  for (; i < argc; i++) {
    char *a = argv[i];
    if (!strcmp(a, "--")) {
      i++;
      break;
    }
    if (a[0] != '-' || !a[1]) {
      rest[nrest++] = a;
      /* exec ID cmd args...: options end at the id; the rest belongs to the command */
      if (!strcmp(cmd, "exec")) {
        i++;
        break;
      }
      continue;
    }
    const char *name = a + (a[1] == '-' ? 2 : 1);
    char *eq = strchr(name, '=');
    size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
    struct opt *o = NULL;
    for (struct opt *p = opts; p->name; p++)
      if ((strlen(p->name) == nlen && !strncmp(p->name, name, nlen)) || (nlen == 1 && p->short_name == name[0])) o = p;
    if (!o) fail("%s: flag provided but not defined: %s", cmd, a);
    o->set = 1;
    if (!o->has_arg) {
      if (eq && (!strcmp(eq + 1, "false"))) o->set = 0;
      continue;
    }
    const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
    if (!v) fail("%s: flag needs an argument: %s", cmd, a);
    o->value = v;
    if (o->multi) {
      o->multi = realloc(o->multi, (o->nmulti + 2) * sizeof *o->multi);
      o->multi[o->nmulti++] = v;
    }
  }
  for (; i < argc; i++) rest[nrest++] = argv[i];
  return rest;
}

static struct opt *find(struct opt *opts, const char *name) {
  for (struct opt *p = opts; p->name; p++)
    if (!strcmp(p->name, name)) return p;
  return NULL;
}
#define OPTV(opts, n) (find(opts, n)->value)
#define OPTSET(opts, n) (find(opts, n)->set)

static const char *need_id(char **rest, const char *cmd) {
  if (!rest[0]) fail("%s: requires a container id", cmd);
  return rest[0];
}

static void print_json(json_object *o) {
  printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* ---- commands --------------------------------------------------------------------------------- */
static int cmd_state(char **rest) {
  struct state *s = state_load(need_id(rest, "state"), 1);
  print_json(state_json(s, state_status(s)));
  return 0;
}

static int cmd_kill(int argc, char **argv) {
  struct opt opts[] = {{"all", 'a', 0, 0, 0, 0, 0}, {0}};
  char **rest = parse_opts(argc, argv, opts, "kill");
  struct state *s = state_load(need_id(rest, "kill"), 1);
  int sig = rest[1] ? parse_signal(rest[1]) : SIGTERM;
  if (sig <= 0) fail("kill: invalid signal %s", rest[1]);
  if (OPTSET(opts, "all") && s->cg) {
    size_t n = 0;
    pid_t *p = cg_pids(s->cg, &n);
    for (size_t i = 0; i < n; i++) kill(p[i], sig);
    if (sig == SIGKILL && cg_frozen(s->cg)) cg_freeze(s->cg, 0);
    free(p);
    return 0;
  }
  if (!pid_alive(s->pid, s->start_time)) fail("container not running");
  if (kill(s->pid, sig) < 0) fail_errno("kill %d", (int)s->pid);
  return 0;
}

static void kill_all_and_wait(struct state *s) {
  for (int round = 0; round < 500; round++) {
    size_t n = 0;
    pid_t *p = s->cg ? cg_pids(s->cg, &n) : NULL;
    for (size_t i = 0; i < n; i++) kill(p[i], SIGKILL);
    free(p);
    if (s->cg && cg_frozen(s->cg)) cg_freeze(s->cg, 0);
    if (pid_alive(s->pid, s->start_time)) kill(s->pid, SIGKILL);
    if (!n && !pid_alive(s->pid, s->start_time)) return;
    sleep_ms(round < 20 ? 1 : 10);
  }
  fail("container %s: processes did not die after SIGKILL", s->id);
}

static int cmd_delete(int argc, char **argv) {
  struct opt opts[] = {{"force", 'f', 0, 0, 0, 0, 0}, {0}};
  char **rest = parse_opts(argc, argv, opts, "delete");
  const char *id = need_id(rest, "delete");
  int force = OPTSET(opts, "force");
  struct state *s = state_load(id, 0);
  if (!s) {
    /* a create that died before writing state.json may have left its dir */
    validate_id(id);
    char *dir = state_dir(id);
    struct stat st;
    int had = stat(dir, &st) == 0;
    rm_rf(dir);
    if (force || had) return 0;
    fail("container %s does not exist", id);
  }
  const char *status = state_status(s);
  if (!strcmp(status, "running") || !strcmp(status, "paused")) {
    if (!force) fail("cannot delete container %s that is not stopped: %s", id, status);
  }
  kill_all_and_wait(s);
  if (s->cg && cg_destroy(s->cg) < 0) fail_errno("remove the cgroup of %s", id);
  char *cfgp = xasprintf("%s/config.json", s->dir);
  if (access(cfgp, F_OK) == 0) {
    json_object *cfg = state_config(s);
    json_object *st = state_json(s, "stopped");
    run_hooks(jget(cfg, "hooks"), "poststop", st, 0);
  }
  if (rm_rf(s->dir) < 0 && errno != ENOENT) fail_errno("remove %s", s->dir);
  return 0;
}

static int cmd_pause(char **rest, int freeze) {
  struct state *s = state_load(need_id(rest, freeze ? "pause" : "resume"), 1);
  const char *status = state_status(s);
  if (freeze && strcmp(status, "running")) fail("container not running");
  if (!freeze && strcmp(status, "paused")) fail("container not paused");
  if (!s->cg || cg_freeze(s->cg, freeze) < 0) fail_errno("%s %s", freeze ? "freeze" : "thaw", s->id);
  return 0;
}

static int cmd_update(int argc, char **argv) {
  struct opt opts[] = {{"resources", 'r', 1, 0, 0, 0, 0}, {0}};
  char **rest = parse_opts(argc, argv, opts, "update");
  struct state *s = state_load(need_id(rest, "update"), 1);
  const char *file = OPTV(opts, "resources");
  if (!file) fail("update: --resources FILE is required (single-value flags are not supported)");
  size_t len;
  char *text = !strcmp(file, "-") ? NULL : read_file(file, &len);
  if (!strcmp(file, "-")) {
    size_t cap = 4096;
    len = 0;
    text = xmalloc(cap);
    ssize_t n;
    while ((n = read(0, text + len, cap - len - 1)) > 0)
      if ((len += (size_t)n) + 1 >= cap) text = realloc(text, cap *= 2);
    text[len] = 0;
  }
  if (!text) fail_errno("read %s", file);
  json_object *r = json_tokener_parse(text);
  if (!r || !json_object_is_type(r, json_type_object)) fail("update: %s is not a JSON object", file);
  if (!strcmp(state_status(s), "stopped")) fail("container not running");
  cg_apply(s->cg, r, 1);
  /* keep the copy of config.json current, so a later `update` or `ps` sees these values */
  json_object *cfg = state_config(s);
  json_object *lx = jget(cfg, "linux");
  if (lx) {
    json_object *res = jget(lx, "resources");
    if (!res) json_object_object_add(lx, "resources", res = json_object_new_object());
    json_object_object_foreach(r, k, v) json_object_object_add(res, k, json_object_get(v));
    const char *out = json_object_to_json_string_ext(cfg, JSON_C_TO_STRING_PLAIN);
    char *p = xasprintf("%s/config.json", s->dir);
    if (atomic_write(p, out, strlen(out)) < 0) fail_errno("write %s", p);
  }
  return 0;
}

static int cmd_ps(int argc, char **argv) {
  struct opt opts[] = {{"format", 'f', 1, 0, 0, 0, 0}, {0}};
  char **rest = parse_opts(argc, argv, opts, "ps");
  struct state *s = state_load(need_id(rest, "ps"), 1);
  const char *fmt = OPTV(opts, "format") ? OPTV(opts, "format") : "table";
  size_t n = 0;
  pid_t *p = s->cg ? cg_pids(s->cg, &n) : NULL;
  if (!strcmp(fmt, "json")) {
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < n; i++) json_object_array_add(a, json_object_new_int(p[i]));
    printf("%s\n", json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN));
  } else if (!strcmp(fmt, "table")) {
    printf("PID\n");
    for (size_t i = 0; i < n; i++) printf("%d\n", (int)p[i]);
  } else {
    fail("ps: invalid format %s (table or json)", fmt);
  }
  return 0;
}

static int cmd_list(int argc, char **argv) {
  struct opt opts[] = {{"format", 'f', 1, 0, 0, 0, 0}, {"quiet", 'q', 0, 0, 0, 0, 0}, {0}};
  parse_opts(argc, argv, opts, "list");
  DIR *d = opendir(g_root);
  json_object *a = json_object_new_array();
  int quiet = OPTSET(opts, "quiet");
  const char *fmt = OPTV(opts, "format") ? OPTV(opts, "format") : "table";
  if (!quiet && strcmp(fmt, "json")) printf("ID\tPID\tSTATUS\tBUNDLE\tCREATED\n");
  for (struct dirent *e; d && (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    struct state *s = state_load(e->d_name, 0);
    if (!s) continue;
    const char *status = state_status(s);
    if (quiet) printf("%s\n", s->id);
    else if (!strcmp(fmt, "json")) json_object_array_add(a, state_json(s, status));
    else printf("%s\t%d\t%s\t%s\t%s\n", s->id, strcmp(status, "stopped") ? (int)s->pid : 0, status, s->bundle, s->created);
  }
  if (d) closedir(d);
  if (!quiet && !strcmp(fmt, "json")) printf("%s\n", json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN));
  return 0;
}

static json_object *strings(const char *const *v) {
  json_object *a = json_object_new_array();
  for (; *v; v++) json_object_array_add(a, json_object_new_string(*v));
  return a;
}

static int cmd_features(void) {
  static const char *const hooks[] = {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop", NULL};
  static const char *const mopts[] = {"async", "atime", "bind", "dev", "diratime", "dirsync", "exec", "loud", "mand", "noatime", "nodev",
                                      "nodiratime", "noexec", "nomand", "norelatime", "nostrictatime", "nosuid", "private", "rbind",
                                      "relatime", "remount", "ro", "rprivate", "rshared", "rslave", "runbindable", "rw", "shared",
                                      "silent", "slave", "strictatime", "suid", "sync", "unbindable", NULL};
  static const char *const ns[] = {"cgroup", "ipc", "mount", "network", "pid", "user", "uts", NULL};
  static const char *const actions[] = {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
                                        "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP", NULL};
  static const char *const ops[] = {"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE", NULL};
  static const char *const archs[] = {"SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", NULL};
  json_object *o = json_object_new_object();
  json_object_object_add(o, "ociVersionMin", json_object_new_string("1.0.0"));
  json_object_object_add(o, "ociVersionMax", json_object_new_string(OCI_VERSION));
  json_object_object_add(o, "hooks", strings(hooks));
  json_object_object_add(o, "mountOptions", strings(mopts));
  json_object *lx = json_object_new_object();
  json_object_object_add(lx, "namespaces", strings(ns));
  json_object *caps = json_object_new_array();
  for (int c = 0; c <= last_cap() && cap_name(c); c++) json_object_array_add(caps, json_object_new_string(cap_name(c)));
  json_object_object_add(lx, "capabilities", caps);
  json_object *cg = json_object_new_object();
  json_object_object_add(cg, "v1", json_object_new_boolean(1));
  json_object_object_add(cg, "v2", json_object_new_boolean(1));
  json_object_object_add(cg, "systemd", json_object_new_boolean(0));
  json_object_object_add(cg, "systemdUser", json_object_new_boolean(0));
  json_object_object_add(lx, "cgroup", cg);
  json_object *sc = json_object_new_object();
  json_object_object_add(sc, "enabled", json_object_new_boolean(1));
  json_object_object_add(sc, "actions", strings(actions));
  json_object_object_add(sc, "operators", strings(ops));
  json_object_object_add(sc, "archs", strings(archs));
  json_object_object_add(lx, "seccomp", sc);
  json_object *no = json_object_new_object();
  json_object_object_add(no, "enabled", json_object_new_boolean(0));
  json_object_object_add(lx, "apparmor", no);
  json_object_object_add(lx, "selinux", json_object_get(no));
  json_object_object_add(o, "linux", lx);
  print_json(o);
  return 0;
}

static int cmd_spec(int argc, char **argv) {
  struct opt opts[] = {{"bundle", 'b', 1, 0, 0, 0, 0}, {"rootless", 0, 0, 0, 0, 0, 0}, {0}};
  parse_opts(argc, argv, opts, "spec");
  if (OPTSET(opts, "rootless")) fail("spec: --rootless is not supported by berth-runtime");
  const char *dir = OPTV(opts, "bundle") ? OPTV(opts, "bundle") : ".";
  char *path = xasprintf("%s/config.json", dir);
  if (access(path, F_OK) == 0) fail("File %s exists. Remove it first", path);
  const char *text = json_object_to_json_string_ext(default_spec(), JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
  if (atomic_write(path, text, strlen(text)) < 0) fail_errno("write %s", path);
  return 0;
}

/* create and run share their options (run adds --detach and --keep) */
#define CREATE_OPTS                                                                                                     \
  {{"bundle", 'b', 1, 0, 0, 0, 0},       {"pid-file", 0, 1, 0, 0, 0, 0},       {"console-socket", 0, 1, 0, 0, 0, 0}, \
   {"preserve-fds", 0, 1, 0, 0, 0, 0},   {"no-new-keyring", 0, 0, 0, 0, 0, 0}, {"no-pivot", 0, 0, 0, 0, 0, 0},      \
   {"detach", 'd', 0, 0, 0, 0, 0},       {"keep", 0, 0, 0, 0, 0, 0},           {0}}

static void fill_create(struct opt *opts, struct create_opts *o) {
  if (OPTSET(opts, "no-pivot")) fail("--no-pivot is not supported by berth-runtime: it always uses pivot_root");
  o->bundle = OPTV(opts, "bundle");
  o->pid_file = OPTV(opts, "pid-file");
  o->console_socket = OPTV(opts, "console-socket");
  o->preserve_fds = OPTV(opts, "preserve-fds") ? atoi(OPTV(opts, "preserve-fds")) : 0;
  if (o->preserve_fds < 0) fail("--preserve-fds must not be negative");
}

static int cmd_create(int argc, char **argv) {
  struct opt opts[] = CREATE_OPTS;
  char **rest = parse_opts(argc, argv, opts, "create");
  if (OPTSET(opts, "detach") || OPTSET(opts, "keep")) fail("create: flag provided but not defined: %s", OPTSET(opts, "detach") ? "--detach" : "--keep");
  struct create_opts o = {0};
  fill_create(opts, &o);
  container_create(need_id(rest, "create"), &o);
  return 0;
}

static int cmd_run(int argc, char **argv) {
  struct opt opts[] = CREATE_OPTS;
  char **rest = parse_opts(argc, argv, opts, "run");
  struct create_opts o = {0};
  fill_create(opts, &o);
  int detach = OPTSET(opts, "detach");
  if (!detach && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) fail_errno("become a subreaper");
  struct state *s = container_create(need_id(rest, "run"), &o);
  container_start(s);
  if (detach) return 0;
  int code = wait_foreground(s->pid);
  if (!OPTSET(opts, "keep")) {
    char *argv_del[] = {"--force", s->id, NULL};
    cmd_delete(2, argv_del);
  }
  return code;
}

static int cmd_exec(int argc, char **argv) {
  struct opt opts[] = {{"process", 'p', 1, 0, 0, 0, 0}, {"pid-file", 0, 1, 0, 0, 0, 0}, {"console-socket", 0, 1, 0, 0, 0, 0},
                       {"detach", 'd', 0, 0, 0, 0, 0},   {"tty", 't', 0, 0, 0, 0, 0},          {"cwd", 0, 1, 0, 0, 0, 0},
                       {"env", 'e', 1, 0, 0, 0, 0},      {"preserve-fds", 0, 1, 0, 0, 0, 0},   {0}};
  find(opts, "env")->multi = xcalloc(1, sizeof(char *));
  char **rest = parse_opts(argc, argv, opts, "exec");
  struct state *s = state_load(need_id(rest, "exec"), 1);
  struct exec_opts o = {0};
  o.process_file = OPTV(opts, "process");
  o.pid_file = OPTV(opts, "pid-file");
  o.console_socket = OPTV(opts, "console-socket");
  o.cwd = OPTV(opts, "cwd");
  o.detach = OPTSET(opts, "detach");
  o.tty = OPTSET(opts, "tty");
  o.preserve_fds = OPTV(opts, "preserve-fds") ? atoi(OPTV(opts, "preserve-fds")) : 0;
  o.args = rest + 1;
  o.env = (char **)find(opts, "env")->multi;
  o.nenv = find(opts, "env")->nmulti;
  return container_exec(s, &o);
}

static void usage(void) {
  printf("berth-runtime: an OCI runtime\n\nusage: berth-runtime [--root DIR] [--log FILE] [--log-format text|json] COMMAND ...\n\n"
         "commands: create, start, run, state, kill, delete, exec, pause, resume, update, ps, list, features, spec\n");
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    const char *a = argv[i] + (argv[i][1] == '-' ? 2 : 1);
    const char *eq = strchr(a, '=');
    size_t n = eq ? (size_t)(eq - a) : strlen(a);
#define IS(s) (n == strlen(s) && !strncmp(a, s, n))
#define VAL() (eq ? eq + 1 : (i + 1 < argc ? argv[++i] : (fail("flag needs an argument: %s", argv[i]), "")))
    if (IS("root")) g_root = VAL();
    else if (IS("log")) g_log_path = VAL();
    else if (IS("log-format")) {
      const char *f = VAL();
      if (strcmp(f, "json") && strcmp(f, "text")) fail("invalid log format %s (text or json)", f);
      g_log_json = !strcmp(f, "json");
    } else if (IS("debug")) {
    } else if (IS("systemd-cgroup")) fail("--systemd-cgroup is not supported by berth-runtime (cgroupfs only)");
    else if (IS("rootless")) {
      const char *v = VAL();
      if (strcmp(v, "false") && strcmp(v, "auto")) fail("--rootless is not supported by berth-runtime");
    } else if (IS("criu")) (void)VAL();
    else if (IS("version") || IS("v")) {
      printf("berth-runtime version %s\nspec: %s\n", RT_VERSION, OCI_VERSION);
      return 0;
    } else if (IS("help") || IS("h")) {
      usage();
      return 0;
    } else fail("flag provided but not defined: %s", argv[i]);
  }
  if (i >= argc) {
    usage();
    return 1;
  }
  const char *cmd = argv[i++];
  int sub_argc = argc - i;
  char **sub = argv + i;
  if (!strcmp(cmd, "create")) return cmd_create(sub_argc, sub);
  if (!strcmp(cmd, "run")) return cmd_run(sub_argc, sub);
  if (!strcmp(cmd, "exec")) return cmd_exec(sub_argc, sub);
  if (!strcmp(cmd, "kill")) return cmd_kill(sub_argc, sub);
  if (!strcmp(cmd, "delete")) return cmd_delete(sub_argc, sub);
  if (!strcmp(cmd, "update")) return cmd_update(sub_argc, sub);
  if (!strcmp(cmd, "ps")) return cmd_ps(sub_argc, sub);
  if (!strcmp(cmd, "list")) return cmd_list(sub_argc, sub);
  if (!strcmp(cmd, "spec")) return cmd_spec(sub_argc, sub);
  if (!strcmp(cmd, "features")) return cmd_features();
  if (!strcmp(cmd, "version")) {
    printf("berth-runtime version %s\nspec: %s\n", RT_VERSION, OCI_VERSION);
    return 0;
  }
  struct opt none[] = {{0}};
  char **rest = parse_opts(sub_argc, sub, none, cmd);
  if (!strcmp(cmd, "start")) {
    container_start(state_load(need_id(rest, "start"), 1));
    return 0;
  }
  if (!strcmp(cmd, "state")) return cmd_state(rest);
  if (!strcmp(cmd, "pause")) return cmd_pause(rest, 1);
  if (!strcmp(cmd, "resume")) return cmd_pause(rest, 0);
  fail("unknown command %s", cmd);
}
