/* berth-runtime: an OCI runtime with the command line runc and crun share. */
#ifndef BERTH_RT_H
#define BERTH_RT_H

#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include "io.h"
#include <sys/types.h>

#define RT_VERSION "0.1.0"
#define OCI_VERSION "1.2.0"

/* ---- util.c ---------------------------------------------------------------------------------- */
extern const char *g_log_path;
extern int g_log_json;
extern int g_child_errfd; /* set in a container process: errors go to the runtime over it */

__attribute__((noreturn, format(printf, 1, 2))) void fail(const char *fmt, ...);
__attribute__((noreturn, format(printf, 1, 2))) void fail_errno(const char *fmt, ...);
__attribute__((format(printf, 1, 2))) void warnx_(const char *fmt, ...);
void log_error_text(const char *msg);

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
char *xstrdup(const char *s);
__attribute__((format(printf, 1, 2))) char *xasprintf(const char *fmt, ...);
int read_full(int fd, void *buf, size_t n);
char *read_file(const char *path, size_t *len); /* NULL on error (errno set) */
int write_file(const char *path, const char *data); /* -1 with errno on error */
int write_file_at(int dirfd, const char *name, const char *data);
int atomic_write(const char *path, const char *data, size_t len);
int mkdir_p(const char *path, mode_t mode);
int rm_rf(const char *path);
void rfc3339_now(char *buf, size_t n);
unsigned long long proc_start_time(pid_t pid, char *state_out);
int parse_signal(const char *s);
void sleep_ms(long ms);
long long now_ns(void);

/* ---- json helpers (spec.c) ------------------------------------------------------------------- */
json_object *jget(json_object *o, const char *key);
const char *jstr(json_object *o, const char *key, const char *ctx);
int jhas(json_object *o, const char *key);
int64_t jint(json_object *o, const char *key, int64_t def, const char *ctx);
uint64_t juint(json_object *o, const char *key, uint64_t def, const char *ctx);
int jbool(json_object *o, const char *key, int def, const char *ctx);
json_object *jarr(json_object *o, const char *key, const char *ctx);
json_object *jobj(json_object *o, const char *key, const char *ctx);
void jcheck_keys(json_object *o, const char *ctx, const char *const allowed[]);
char **jstrv(json_object *arr, const char *ctx); /* NULL-terminated */

/* ---- spec.c: the parts of config.json the runtime acts on ------------------------------------ */
#define NCAPSETS 5
enum { CAP_BOUNDING, CAP_EFFECTIVE, CAP_INHERITABLE, CAP_PERMITTED, CAP_AMBIENT };

struct rlimit_spec { int resource; uint64_t soft, hard; };

struct process {
  int terminal;
  unsigned short rows, cols;
  uid_t uid;
  gid_t gid;
  gid_t *gids;
  size_t ngids;
  int has_umask;
  mode_t umask;
  char **args;
  char **env;
  const char *cwd;
  int has_caps;
  uint64_t caps[NCAPSETS];
  struct rlimit_spec *rlimits;
  size_t nrlimits;
  int nnp;
  int has_oom;
  int oom_score_adj;
  int has_ioprio;
  int ioprio;
};

struct ns_spec { int flag; const char *type; const char *path; };
struct idmap { uint32_t container, host, size; };

struct spec {
  json_object *root_json;
  const char *bundle;
  char *rootfs;
  int root_readonly;
  const char *hostname, *domainname;
  struct process proc;
  struct ns_spec ns[8];
  size_t nns;
  int clone_flags; /* namespaces to create */
  struct idmap *uidmap, *gidmap;
  size_t nuidmap, ngidmap;
  json_object *mounts, *resources, *devices, *seccomp, *hooks, *sysctl, *masked, *readonly_paths;
  const char *cgroups_path;
  unsigned long rootfs_prop;
  int has_personality;
  unsigned long personality;
};

struct spec *spec_load(const char *bundle);
void process_parse(json_object *p, struct process *out, int for_exec);
int ns_flag(const char *type);
const char *ns_proc_name(int flag);
int cap_from_name(const char *name);
const char *cap_name(int cap);
int last_cap(void);
json_object *default_spec(void);

/* ---- state.c ---------------------------------------------------------------------------------- */
struct cg; /* cgroup.c */
struct state {
  char *id, *dir;
  pid_t pid;
  unsigned long long start_time;
  char *bundle, *rootfs, *created;
  json_object *annotations;
  json_object *json;
  struct cg *cg;
};
extern const char *g_root;
char *state_dir(const char *id);
void validate_id(const char *id);
struct state *state_load(const char *id, int must_exist);
void state_save(struct state *s);
const char *state_status(struct state *s);
int pid_alive(pid_t pid, unsigned long long start_time);
json_object *state_json(struct state *s, const char *status);
json_object *state_config(struct state *s); /* copy of config.json kept in the state dir */

/* ---- cgroup.c --------------------------------------------------------------------------------- */
struct cg *cg_new(const char *cgroups_path, const char *id);
struct cg *cg_from_json(json_object *o);
json_object *cg_to_json(struct cg *c);
void cg_create(struct cg *c);               /* makes the dirs */
void cg_apply(struct cg *c, json_object *resources, int updating);
void cg_join(struct cg *c, pid_t pid);
int cg_destroy(struct cg *c);               /* rmdir, retrying while tasks exit */
pid_t *cg_pids(struct cg *c, size_t *n);
int cg_freeze(struct cg *c, int freeze);
int cg_frozen(struct cg *c);
int cg_is_v2(struct cg *c);
size_t cg_count(struct cg *c);
void cg_dir(struct cg *c, size_t i, const char **path, const char **ctrls, const char **mnt);
const char *cg_v2_dir(struct cg *c);
void bpf_devices_attach(int cgroup_fd, json_object *devices);

/* ---- rootfs.c --------------------------------------------------------------------------------- */
struct cinit {
  struct spec *sp;
  struct cg *cg;
  int sync_fd;
  int console_fd;
  int fifo_fd;
  int pty_slave;
};
void rootfs_prepare(struct cinit *ci);   /* mounts, devices, pty; before pivot_root */
void rootfs_pivot(struct cinit *ci);
void rootfs_finish(struct cinit *ci);    /* masked/readonly paths, sysctl, ro root */
int pty_open(const char *ptmx_path, int console_fd, unsigned short rows, unsigned short cols, int *slave);
unsigned long mount_prop_flag(const char *name);

/* ---- process.c: the last steps before execve, shared by create and exec ----------------------- */
void proc_setup_terminal(int slave);
char *proc_find_exec(struct process *p);
void proc_default_home(struct process *p);
void proc_finalize(struct process *p, void *seccomp_filter); /* filter from seccomp_build */
void fix_stdio_owner(uid_t uid, gid_t gid);
void *seccomp_build(json_object *seccomp); /* compiled, not loaded: bad profiles fail before the process runs */
void seccomp_load_filter(void *filter);
void apply_rlimits(struct process *p);

/* ---- hooks.c ---------------------------------------------------------------------------------- */
void run_hooks(json_object *hooks, const char *kind, json_object *state, int fatal);

/* ---- container.c ------------------------------------------------------------------------------ */
struct create_opts { const char *bundle, *pid_file, *console_socket; int preserve_fds; };
struct exec_opts { const char *process_file, *pid_file, *console_socket, *cwd; int detach, tty, preserve_fds; char **args; char **env; size_t nenv; };
struct state *container_create(const char *id, struct create_opts *o);
void container_start(struct state *s);
int container_exec(struct state *s, struct exec_opts *o);
int wait_foreground(pid_t pid);

/* ---- sync messages between the runtime and the container process ----------------------------- */
enum { SYNC_GO = 'G', SYNC_CGROUP = 'C', SYNC_HOOKS = 'H', SYNC_READY = 'R', SYNC_ERR = 'E' };
void sync_send(int fd, char type, const char *text);
char sync_recv(int fd, char *text, size_t n); /* 0 on EOF */

int send_fd(int sock, int fd, const char *name);
int console_connect(const char *path);

#endif
