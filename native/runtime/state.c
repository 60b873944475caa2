/* Container state kept under --root: <root>/<id>/state.json, config.json (a copy, for exec,
 * update and ps) and exec.fifo while the container is created but not started. */
#include "rt.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *g_root = "/run/berth-runtime";

char *state_dir(const char *id) { return xasprintf("%s/%s", g_root, id); }

void validate_id(const char *id) {
  if (!id || !*id) fail("container id cannot be empty");
  if (strlen(id) > 1024) fail("invalid id format: %.64s...", id);
  for (const char *p = id; *p; p++) {
    char c = *p;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.' || c == '+'))
      fail("invalid id format: %s", id);
  }
  if (!strcmp(id, ".") || !strcmp(id, "..")) fail("invalid id format: %s", id);
}

static json_object *parse_json_file(const char *path) {
  size_t len;
  char *text = read_file(path, &len);
  if (!text) return NULL;
  json_object *o = json_tokener_parse(text);
  free(text);
  return o;
}

struct state *state_load(const char *id, int must_exist) {
  validate_id(id);
  char *dir = state_dir(id);
  char *path = xasprintf("%s/state.json", dir);
  json_object *o = parse_json_file(path);
  if (!o) {
    if (errno == ENOENT || errno == ENOTDIR) {
      if (must_exist) fail("container %s does not exist", id);
      free(path);
      free(dir);
      return NULL;
    }
    fail_errno("read %s", path);
  }
  free(path);
  struct state *s = xcalloc(1, sizeof *s);
  s->id = xstrdup(id);
  s->dir = dir;
  s->json = o;
  s->pid = (pid_t)jint(o, "pid", 0, "state");
  s->start_time = juint(o, "start_time", 0, "state");
  s->bundle = xstrdup(jstr(o, "bundle", "state") ?: "");
  s->rootfs = xstrdup(jstr(o, "rootfs", "state") ?: "");
  s->created = xstrdup(jstr(o, "created", "state") ?: "");
  s->annotations = jget(o, "annotations");
  json_object *cg = jget(o, "cgroup");
  s->cg = cg ? cg_from_json(cg) : NULL;
  return s;
}

void state_save(struct state *s) {
  json_object *o = json_object_new_object();
  json_object_object_add(o, "id", json_object_new_string(s->id));
  json_object_object_add(o, "pid", json_object_new_int(s->pid));
  json_object_object_add(o, "start_time", json_object_new_uint64(s->start_time));
  json_object_object_add(o, "bundle", json_object_new_string(s->bundle));
  json_object_object_add(o, "rootfs", json_object_new_string(s->rootfs));
  json_object_object_add(o, "created", json_object_new_string(s->created));
  if (s->annotations) json_object_object_add(o, "annotations", json_object_get(s->annotations));
  if (s->cg) json_object_object_add(o, "cgroup", cg_to_json(s->cg));
  const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
  char *path = xasprintf("%s/state.json", s->dir);
  if (atomic_write(path, text, strlen(text)) < 0) fail_errno("write %s", path);
  free(path);
  json_object_put(o);
}

/* A pid counts as the container's only while its start time matches: pids are reused. A zombie
 * has exited (its parent, the monitor, just has not reaped it yet). */
int pid_alive(pid_t pid, unsigned long long start_time) {
  if (pid <= 0) return 0;
  char st = 0;
  unsigned long long t = proc_start_time(pid, &st);
  if (!t) return 0;
  if (start_time && t != start_time) return 0;
  return st != 'Z' && st != 'X';
}

const char *state_status(struct state *s) {
  if (!pid_alive(s->pid, s->start_time)) return "stopped";
  char *fifo = xasprintf("%s/exec.fifo", s->dir);
  int created = access(fifo, F_OK) == 0;
  free(fifo);
  if (created) return "created";
  if (s->cg && cg_frozen(s->cg)) return "paused";
  return "running";
}

json_object *state_json(struct state *s, const char *status) {
  json_object *o = json_object_new_object();
  json_object_object_add(o, "ociVersion", json_object_new_string(OCI_VERSION));
  json_object_object_add(o, "id", json_object_new_string(s->id));
  json_object_object_add(o, "pid", json_object_new_int(strcmp(status, "stopped") ? s->pid : 0));
  json_object_object_add(o, "status", json_object_new_string(status));
  json_object_object_add(o, "bundle", json_object_new_string(s->bundle));
  json_object_object_add(o, "rootfs", json_object_new_string(s->rootfs));
  json_object_object_add(o, "created", json_object_new_string(s->created));
  json_object_object_add(o, "owner", json_object_new_string(""));
  if (s->annotations) json_object_object_add(o, "annotations", json_object_get(s->annotations));
  return o;
}

json_object *state_config(struct state *s) {
  char *path = xasprintf("%s/config.json", s->dir);
  json_object *o = parse_json_file(path);
  if (!o) fail_errno("read %s", path);
  free(path);
  return o;
}
