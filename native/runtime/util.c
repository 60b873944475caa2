/* Errors, logging and small file helpers. */
#include "rt.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

const char *g_log_path;
int g_log_json;
int g_child_errfd = -1;

static void json_escape(FILE *f, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c < 0x20) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
}

void rfc3339_now(char *buf, size_t n) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char base[32];
  strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf, n, "%s.%09ldZ", base, ts.tv_nsec);
}

static void log_line(const char *level, const char *msg) {
  if (!g_log_path) return;
  int fd = open(g_log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  FILE *f = fdopen(fd, "a");
  if (!f) {
    close(fd);
    return;
  }
  char ts[64];
  rfc3339_now(ts, sizeof ts);
  if (g_log_json) {
    fprintf(f, "{\"level\":\"%s\",\"msg\":\"", level);
    json_escape(f, msg);
    fprintf(f, "\",\"time\":\"%s\"}\n", ts);
  } else {
    fprintf(f, "time=\"%s\" level=%s msg=\"", ts, level);
    json_escape(f, msg);
    fprintf(f, "\"\n");
  }
  fclose(f);
}

void log_error_text(const char *msg) {
  log_line("error", msg);
  dprintf(2, "berth-runtime: %s\n", msg);
}

static __attribute__((noreturn)) void vfail(int err, const char *fmt, va_list ap) {
  char msg[4096];
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  if (n < 0) n = 0;
  if ((size_t)n >= sizeof msg) n = sizeof msg - 1;
  if (err) snprintf(msg + n, sizeof msg - (size_t)n, ": %s", strerror(err));
  if (g_child_errfd >= 0) {
    sync_send(g_child_errfd, SYNC_ERR, msg);
    _exit(1);
  }
  log_error_text(msg);
  exit(1);
}

void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfail(0, fmt, ap);
}

void fail_errno(const char *fmt, ...) {
  int e = errno;
  va_list ap;
  va_start(ap, fmt);
  vfail(e, fmt, ap);
}

void warnx_(const char *fmt, ...) {
  char msg[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  log_line("warning", msg);
}

void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) fail("out of memory");
  return p;
}

void *xcalloc(size_t n, size_t m) {
  void *p = calloc(n ? n : 1, m ? m : 1);
  if (!p) fail("out of memory");
  return p;
}

char *xstrdup(const char *s) {
  char *p = strdup(s);
  if (!p) fail("out of memory");
  return p;
}

char *xasprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s;
  int r = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (r < 0) fail("out of memory");
  return s;
}


int read_full(int fd, void *buf, size_t n) {
  char *p = buf;
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, p + got, n - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  return (int)got;
}

char *read_file(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  size_t cap = 4096, n = 0;
  char *buf = xmalloc(cap + 1);
  for (;;) {
    if (n == cap) {
      cap *= 2;
      char *nb = realloc(buf, cap + 1);
      if (!nb) fail("out of memory");
      buf = nb;
    }
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      free(buf);
      close(fd);
      errno = e;
      return NULL;
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  close(fd);
  buf[n] = 0;
  if (len) *len = n;
  return buf;
}

int write_file(const char *path, const char *data) { return write_file_at(AT_FDCWD, path, data); }

int write_file_at(int dirfd, const char *name, const char *data) {
  int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC | O_TRUNC);
  if (fd < 0) return -1;
  int r = write_all(fd, data, strlen(data));
  int e = errno;
  close(fd);
  errno = e;
  return r;
}

int atomic_write(const char *path, const char *data, size_t len) {
  char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    free(tmp);
    return -1;
  }
  if (write_all(fd, data, len) < 0 || close(fd) < 0 || rename(tmp, path) < 0) {
    int e = errno;
    unlink(tmp);
    free(tmp);
    errno = e;
    return -1;
  }
  free(tmp);
  return 0;
}

int mkdir_p(const char *path, mode_t mode) {
  char *p = xstrdup(path);
  for (char *s = p + 1; *s; s++) {
    if (*s != '/') continue;
    *s = 0;
    if (mkdir(p, mode) < 0 && errno != EEXIST) {
      int e = errno;
      free(p);
      errno = e;
      return -1;
    }
    *s = '/';
  }
  int r = mkdir(p, mode);
  free(p);
  if (r < 0 && errno == EEXIST) return 0;
  return r;
}

static int rm_rf_at(int dfd, const char *name) {
  if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT) return 0;
  if (errno != EISDIR && errno != EPERM) return -1;
  int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -1;
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return -1;
  }
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    rm_rf_at(dirfd(d), e->d_name);
  }
  closedir(d);
  return unlinkat(dfd, name, AT_REMOVEDIR);
}

int rm_rf(const char *path) { return rm_rf_at(AT_FDCWD, path); }

/* Field 22 of /proc/PID/stat: start time in clock ticks; identifies the process across pid reuse. */
unsigned long long proc_start_time(pid_t pid, char *state_out) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  int n = read_full(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  if (!p) return 0;
  p += 2; /* state */
  if (state_out) *state_out = *p;
  for (int field = 3; field < 22; field++) {
    p = strchr(p, ' ');
    if (!p) return 0;
    p++;
  }
  return strtoull(p, NULL, 10);
}

static const struct { const char *name; int num; } signals[] = {
    {"HUP", SIGHUP},     {"INT", SIGINT},       {"QUIT", SIGQUIT},   {"ILL", SIGILL},     {"TRAP", SIGTRAP},
    {"ABRT", SIGABRT},   {"IOT", SIGIOT},       {"BUS", SIGBUS},     {"FPE", SIGFPE},     {"KILL", SIGKILL},
    {"USR1", SIGUSR1},   {"SEGV", SIGSEGV},     {"USR2", SIGUSR2},   {"PIPE", SIGPIPE},   {"ALRM", SIGALRM},
    {"TERM", SIGTERM},   {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD},   {"CONT", SIGCONT},   {"STOP", SIGSTOP},
    {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},     {"TTOU", SIGTTOU},   {"URG", SIGURG},     {"XCPU", SIGXCPU},
    {"XFSZ", SIGXFSZ},   {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},   {"WINCH", SIGWINCH}, {"IO", SIGIO},
    {"POLL", SIGPOLL},   {"PWR", SIGPWR},       {"SYS", SIGSYS},
};

int parse_signal(const char *s) {
  if (!s || !*s) return -1;
  if (isdigit((unsigned char)*s)) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v <= 0 || v > SIGRTMAX) return -1;
    return (int)v;
  }
  char up[32];
  size_t i = 0;
  for (; s[i] && i < sizeof up - 1; i++) up[i] = (char)toupper((unsigned char)s[i]);
  up[i] = 0;
  const char *n = up;
  if (!strncmp(n, "SIG", 3)) n += 3;
  for (size_t k = 0; k < sizeof signals / sizeof signals[0]; k++)
    if (!strcmp(signals[k].name, n)) return signals[k].num;
  if (!strncmp(n, "RTMIN", 5) || !strncmp(n, "RTMAX", 5)) {
    int base = n[2] == 'M' && n[3] == 'I' ? SIGRTMIN : SIGRTMAX;
    int off = 0;
    if (n[5]) off = atoi(n + 5);
    int v = base + off;
    if (v < SIGRTMIN || v > SIGRTMAX) return -1;
    return v;
  }
  return -1;
}

void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void sync_send(int fd, char type, const char *text) {
  char buf[4100];
  size_t n = text ? strlen(text) : 0;
  if (n > sizeof buf - 2) n = sizeof buf - 2;
  buf[0] = type;
  if (n) memcpy(buf + 1, text, n);
  /* SOCK_SEQPACKET: one message per send */
  while (send(fd, buf, n + 1, MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
}

char sync_recv(int fd, char *text, size_t n) {
  char buf[4100];
  ssize_t r;
  do r = recv(fd, buf, sizeof buf, 0);
  while (r < 0 && errno == EINTR);
  if (r <= 0) return 0;
  if (text && n) {
    size_t len = (size_t)r - 1;
    if (len >= n) len = n - 1;
    memcpy(text, buf + 1, len);
    text[len] = 0;
  }
  return buf[0];
}

int send_fd(int sock, int fd, const char *name) {
  struct iovec iov = {.iov_base = (void *)name, .iov_len = strlen(name)};
  union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } ctl;
  memset(&ctl, 0, sizeof ctl);
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof ctl.b};
  struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &fd, sizeof(int));
  ssize_t r;
  do r = sendmsg(sock, &mh, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -1 : 0;
}

int console_connect(const char *path) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  strcpy(sa.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}
