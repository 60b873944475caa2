/* berth-unpack --serve NAME: the daemon starts one server at start-up, while it is small, and
 * sends each layer over its own connection to the abstract unix socket NAME; the server forks a
 * small child per connection (no exec, libraries already loaded), so starting a job costs a
 * fraction of a millisecond where spawning from a large daemon costs tens. Only the process that
 * started the server is served (SO_PEERCRED: its pid and uid). The server ends when its stdin (a
 * pipe from the daemon) closes, or the daemon dies.
 *
 * A job's request: a 4-byte little-endian length, then "K\0DEST\0INGEST" (K: 1 to keep the
 * input as given, 0 to keep the tar), then the layer's bytes until the client shuts down its
 * side; or, for a registry blob the job downloads itself (download.c), the request goes on
 * with "\0URL\0SIZE\0ATTEMPTS\0DELAY_MS\0HEADERS\0CA_PEM" and the client sends nothing more (it
 * closes the connection to give up). Before its answer a download sends "bytes N" and
 * "retry S" lines. The answer: one line, "0 {json}" or "<exit code> message" (main.c). */
#include "unpack.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* Longest request header: paths, headers and a CA bundle. */
#define MAX_REQUEST (1u << 20)

static void read_exact(int fd, void *buf, size_t len) {
  char *p = buf;
  while (len > 0) {
    ssize_t n = read(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail(EXIT_IO, "request cut short");
    p += n;
    len -= (size_t)n;
  }
}

static void reap(int sig) {
  (void)sig;
  int saved = errno;
  while (waitpid(-1, NULL, WNOHANG) > 0) {}
  errno = saved;
}

static void job(int conn) {
  reply_fd = conn;
  unsigned char lb[4];
  read_exact(conn, lb, 4);
  uint32_t len = (uint32_t)lb[0] | (uint32_t)lb[1] << 8 | (uint32_t)lb[2] << 16 | (uint32_t)lb[3] << 24;
  if (len < 5 || len > MAX_REQUEST) fail(EXIT_IO, "bad request");
  char *req = calloc(1, len + 1);
  if (!req) fail(EXIT_IO, "out of memory");
  read_exact(conn, req, len);
  /* NUL-separated fields: keep, dest, ingest[, url, size, attempts, delay ms, headers, ca] */
  const char *f[9];
  size_t n = 0;
  for (size_t off = 0; off <= len && n < 9; n++) {
    f[n] = req + off;
    off += strlen(req + off) + 1;
  }
  if ((n != 3 && n != 9) || (strcmp(f[0], "0") && strcmp(f[0], "1")) || !*f[1] || !*f[2]) fail(EXIT_IO, "bad request");
  struct download d = {0};
  if (n == 9) {
    d.url = f[3];
    d.size = strtoll(f[4], NULL, 10);
    d.attempts = atoi(f[5]);
    d.delay_ms = atol(f[6]);
    d.headers = f[7];
    d.ca = f[8];
    if (d.attempts < 1) d.attempts = 1;
  }
  run_job(conn, f[1], f[2], f[0][0] == '1', n == 9 ? &d : NULL);
  _exit(0);
}

/* Listens on @name. padded: the name's address is all of sun_path, NUL-padded (how Node 20
 * connects to an abstract name), else just the name's bytes (how newer libuv does it). */
static int listen_on(const char *name, int padded) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  size_t len = strlen(name);
  if (len == 0 || len + 1 > sizeof a.sun_path) fail(EXIT_IO, "socket name too long");
  memcpy(a.sun_path + 1, name, len); /* sun_path[0] = 0: the abstract namespace, gone with us */
  socklen_t alen = padded ? (socklen_t)sizeof a : (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, alen) < 0 || listen(fd, 64) < 0)
    fail(EXIT_IO, "listen on @%s: %s", name, strerror(errno));
  return fd;
}

int serve(const char *name) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  /* jobs reaped as they end (by us, so their CPU time counts as ours in /proc: benchmarks see it) */
  struct sigaction sa = {.sa_handler = reap, .sa_flags = SA_RESTART | SA_NOCLDSTOP};
  sigaction(SIGCHLD, &sa, NULL);
  signal(SIGPIPE, SIG_IGN); /* a client gone: writes fail instead */
  /* load OpenSSL's sha256 once, here, rather than in every job */
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) fail(EXIT_IO, "sha256 is not available");
  EVP_MD_CTX_free(md);
  int lfd[2] = {listen_on(name, 0), listen_on(name, 1)};
  if (write_all(1, "ready\n", 6) < 0) return EXIT_IO;
  uid_t me = getuid();
  for (;;) {
    struct pollfd p[3] = {{.fd = 0, .events = POLLIN}, {.fd = lfd[0], .events = POLLIN}, {.fd = lfd[1], .events = POLLIN}};
    if (poll(p, 3, -1) < 0) {
      if (errno == EINTR) continue;
      fail(EXIT_IO, "poll: %s", strerror(errno));
    }
    if (p[0].revents) {
      char b[64];
      ssize_t n = read(0, b, sizeof b);
      if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) return 0; /* the daemon is gone */
    }
    int ready = (p[1].revents & POLLIN) ? lfd[0] : (p[2].revents & POLLIN) ? lfd[1] : -1;
    if (ready < 0) continue;
    int conn = accept4(ready, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0) continue;
    struct ucred cred;
    socklen_t clen = sizeof cred;
    /* only the daemon that started us: root in a container sharing the host's network (and
     * so its abstract sockets) must not get a root process to write where it says */
    if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 || cred.uid != me || cred.pid != getppid()) {
      close(conn);
      continue;
    }
    pid_t pid = fork();
    if (pid == 0) {
      close(lfd[0]);
      close(lfd[1]);
      close(0);
      signal(SIGCHLD, SIG_DFL);
      job(conn);
    }
    if (pid < 0) {
      reply_fd = conn;
      /* the answer goes to the client; the server itself carries on */
      char msg[128];
      int n = snprintf(msg, sizeof msg, "%d cannot start a job: %s\n", EXIT_IO, strerror(errno));
      (void)write_all(conn, msg, (size_t)n);
      reply_fd = -1;
    }
    close(conn);
  }
}
