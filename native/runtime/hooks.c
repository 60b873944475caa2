/* OCI hooks: each gets the state JSON on stdin; a failing hook fails the step (or, where the
 * spec says so, is only logged). */
#include "rt.h"

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int run_one(json_object *h, const char *state_text, const char *kind, size_t idx) {
  static const char *const keys[] = {"path", "args", "env", "timeout", NULL};
  jcheck_keys(h, "hooks[]", keys);
  const char *path = jstr(h, "path", "hooks[]");
  if (!path || path[0] != '/') fail("config: hooks.%s[%zu].path must be absolute", kind, idx);
  char **args = jstrv(jarr(h, "args", "hooks[]"), "hooks[].args");
  char *argv0[] = {(char *)path, NULL};
  char **env = jstrv(jarr(h, "env", "hooks[]"), "hooks[].env");
  int64_t timeout = jint(h, "timeout", 0, "hooks[]");
  if (jhas(h, "timeout") && timeout <= 0) fail("config: hooks.%s[%zu].timeout must be positive", kind, idx);
  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC) < 0) fail_errno("pipe");
  pid_t pid = fork();
  if (pid < 0) fail_errno("fork");
  if (pid == 0) {
    dup2(pfd[0], 0);
    execve(path, args[0] ? args : argv0, env);
    dprintf(2, "berth-runtime: %s hook %s: %s\n", kind, path, strerror(errno));
    _exit(127);
  }
  close(pfd[0]);
  signal(SIGPIPE, SIG_IGN);
  write_all(pfd[1], state_text, strlen(state_text));
  close(pfd[1]);
  long long deadline = timeout > 0 ? now_ns() + timeout * 1000000000LL : 0;
  int status;
  for (;;) {
    pid_t r = waitpid(pid, &status, deadline ? WNOHANG : 0);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) fail_errno("wait for hook %s", path);
    if (deadline && now_ns() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      warnx_("%s hook %s timed out after %llds", kind, path, (long long)timeout);
      return -1;
    }
    if (deadline) sleep_ms(10);
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
  warnx_("%s hook %s failed: %s %d", kind, path, WIFEXITED(status) ? "exit status" : "signal",
         WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
  return -1;
}

void run_hooks(json_object *hooks, const char *kind, json_object *state, int fatal) {
  json_object *list = hooks ? jarr(hooks, kind, "hooks") : NULL;
  if (!list || !json_object_array_length(list)) return;
  const char *text = json_object_to_json_string_ext(state, JSON_C_TO_STRING_PLAIN);
  for (size_t i = 0; i < json_object_array_length(list); i++)
    if (run_one(json_object_array_get_idx(list, i), text, kind, i) < 0 && fatal)
      fail("error running %s hook #%zu: %s", kind, i, jstr(json_object_array_get_idx(list, i), "path", "hooks[]"));
}
