/* The exit record (DIR/exit.json) and OOM detection through the container's memory cgroup. */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Opens the file holding the memory cgroup's oom_kill counter: memory.oom_control (v1) or
 * memory.events (v2). Opened while the process lives, because the cgroup path can only be
 * read from /proc/<pid>/cgroup then. */
int oom_watch_open(pid_t pid) {
  char path[64], data[2048];
  snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, data, sizeof data - 1);
  close(fd);
  if (n <= 0) return -1;
  data[n] = 0;
  char v1[1024] = "", v2[1024] = "";
  for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
    char *c1 = strchr(line, ':');
    char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2) continue;
    *c2 = 0;
    const char *ctrls = c1 + 1, *cg = c2 + 1;
    if (*ctrls == 0) snprintf(v2, sizeof v2, "%s", cg);
    else {
      /* controller list, comma separated */
      char list[256];
      snprintf(list, sizeof list, ",%s,", ctrls);
      if (strstr(list, ",memory,")) snprintf(v1, sizeof v1, "%s", cg);
    }
  }
  char file[1200];
  if (v1[0]) {
    snprintf(file, sizeof file, "/sys/fs/cgroup/memory%s/memory.oom_control", v1);
    if ((fd = open(file, O_RDONLY | O_CLOEXEC)) >= 0) return fd;
  }
  if (v2[0]) {
    snprintf(file, sizeof file, "/sys/fs/cgroup%s/memory.events", v2);
    if ((fd = open(file, O_RDONLY | O_CLOEXEC)) >= 0) return fd;
  }
  return -1;
}

long long oom_count(int fd) {
  if (fd < 0) return -1;
  char data[1024];
  ssize_t n = pread(fd, data, sizeof data - 1, 0);
  if (n <= 0) return -1;
  data[n] = 0;
  for (char *p = data; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
    if (strncmp(p, "oom_kill ", 9) == 0) return atoll(p + 9);
  }
  return -1;
}

int write_exit_file(int status, int oom_killed, struct buf *json) {
  int code = 255, sig = 0;
  if (WIFEXITED(status)) code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) {
    sig = WTERMSIG(status);
    code = 128 + sig;
  }
  char ts[40], text[256], sigtext[16] = "null";
  format_time_now(ts);
  if (sig) snprintf(sigtext, sizeof sigtext, "%d", sig);
  int n = snprintf(text, sizeof text, "{\"exitCode\":%d,\"signal\":%s,\"oomKilled\":%s,\"finishedAt\":\"%s\"}",
                   code, sigtext, oom_killed ? "true" : "false", ts);
  buf_append(json, text, (size_t)n);

  /* cwd is DIR. tmp + fsync + rename + fsync(dir): a reader sees nothing or the whole record. */
  int fd = open("exit.json.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || write_all(fd, text, (size_t)n) || fsync(fd)) {
    diag("write exit.json.tmp: %s", strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  close(fd);
  if (rename("exit.json.tmp", "exit.json")) {
    diag("rename exit.json: %s", strerror(errno));
    return -1;
  }
  int d = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d >= 0) {
    fsync(d);
    close(d);
  }
  return 0;
}
