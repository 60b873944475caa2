/* Running the OCI runtime CLI and receiving the terminal it creates. */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

int run_runtime(const struct options *o, int in, int out, int err, const char *const args[]) {
  const char *argv[24];
  size_t n = 0;
  argv[n++] = o->runtime;
  argv[n++] = "--root";
  argv[n++] = o->runtime_root;
  for (size_t i = 0; args[i] && n < 23; i++) argv[n++] = args[i];
  argv[n] = NULL;

  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    int fds[3] = {in, out, err};
    for (int i = 0; i < 3; i++) dup2(fds[i] >= 0 ? fds[i] : null, i);
    /* The monitor blocks SIGCHLD (signalfd) and ignores SIGPIPE; the runtime must not inherit that. */
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    signal(SIGPIPE, SIG_DFL);
    execvp(argv[0], (char *const *)argv);
    dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return status;
}

int console_listen(const struct options *o, char *path, size_t pathlen) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  /* The monitor's cwd is DIR, so it binds a short relative name; the runtime gets a path
   * that fits sun_path even when DIR is long. */
  if (strlen(o->dir) + sizeof "/console.sock" <= sizeof sa.sun_path)
    snprintf(path, pathlen, "%s/console.sock", o->dir);
  else
    snprintf(path, pathlen, "/proc/%d/cwd/console.sock", (int)getpid());
  strcpy(sa.sun_path, "console.sock");
  unlink("console.sock");
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, 4)) {
    diag("console socket: %s", strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

int console_receive(int lfd) {
  int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  if (c < 0) {
    diag("console socket accept: %s", strerror(errno));
    return -1;
  }
  char name[512];
  struct iovec iov = {.iov_base = name, .iov_len = sizeof name};
  union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } ctl;
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof ctl.b};
  int master = -1;
  ssize_t r;
  do r = recvmsg(c, &mh, MSG_CMSG_CLOEXEC); while (r < 0 && errno == EINTR);
  if (r >= 0) {
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
      if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) memcpy(&master, CMSG_DATA(cm), sizeof(int));
    }
  }
  if (master < 0) diag("console socket: no terminal received");
  close(c);
  return master;
}
