/* berth-monitor entry point: argument parsing, detaching, launching the runtime and the
 * event loop (container output, attach clients, child exits). Protocol: native/PROTOCOL.md. */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK (16 * 1024)
#define CLIENT_HIGH_WATER (256 * 1024) /* pause container output while a client lags this much */
#define STDIN_HIGH_WATER (64 * 1024)   /* stop reading client stdin while the container lags */
#define DRAIN_AFTER_EXIT_MS 2000       /* wait this long for output EOF after the process exited */
#define CLIENT_LINGER_MS 5000          /* after EXIT, wait this long for clients to read it */

enum { K_SIG = 1, K_LISTEN, K_OUT, K_ERR, K_IN, K_CLIENT };

struct client {
  int fd;
  int flags; /* HELLO flags; -1 until HELLO */
  unsigned char hdr[8];
  size_t hdr_len;
  uint32_t remaining;
  unsigned char ctl[8];
  size_t ctl_len;
  struct buf out;
  uint32_t events;
  int closing; /* close once `out` is flushed */
  struct client *next;
};

static struct options opt;
static int epfd = -1, sigfd = -1, listenfd = -1, report_fd = -1;
static int out_fd[2] = {-1, -1}; /* container stdout/stderr (tty: [0] is the pty master) */
static int in_fd = -1;           /* container stdin: pipe or a dup of the pty master */
static struct buf in_q;
static int in_close_pending, in_last_byte = '\n';
static uint32_t in_events;
static struct jsonlog *jlog;
static pid_t child_pid;
static int child_exited, child_status, launched, done;
static int oom_fd = -1;
static long long oom_before = -1;
static struct client *clients;
static int output_paused, input_paused;
static struct buf exit_json;
static char abs_dir[PATH_MAX];

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void ep_set(int op, int fd, int kind, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.u64 = ((uint64_t)kind << 32) | (uint32_t)fd};
  if (epoll_ctl(epfd, op, fd, &ev) && op != EPOLL_CTL_DEL) diag("epoll_ctl(%d, fd %d): %s", op, fd, strerror(errno));
}

/* ---- detaching and reporting to the process that started us ---------------------------- */

static void report(int ok, const char *text) {
  if (report_fd < 0) return;
  char c = ok ? '0' : '1';
  write_all(report_fd, &c, 1);
  write_all(report_fd, text, strlen(text));
  close(report_fd);
  report_fd = -1;
}

/* The first process waits for the monitor proper's verdict and relays it (PROTOCOL.md). */
static int relay_report(int rfd, pid_t middle) {
  waitpid(middle, NULL, 0);
  char msg[8192];
  size_t n = 0;
  ssize_t r;
  while (n < sizeof msg - 1 && ((r = read(rfd, msg + n, sizeof msg - 1 - n)) > 0 || (r < 0 && errno == EINTR)))
    if (r > 0) n += (size_t)r;
  msg[n] = 0;
  if (n > 0 && msg[0] == '0') {
    write_all(1, msg + 1, n - 1);
    write_all(1, "\n", 1);
    return 0;
  }
  const char *err = n > 1 ? msg + 1 : "berth-monitor: the monitor exited before it was ready (see monitor.log)";
  write_all(2, err, strlen(err));
  write_all(2, "\n", 1);
  return 1;
}

/* ---- container stdin --------------------------------------------------------------------- */

static void stdin_update_events(void) {
  uint32_t want = buf_pending(&in_q) ? EPOLLOUT : 0;
  if (in_fd < 0 || want == in_events) return;
  ep_set(in_events ? (want ? EPOLL_CTL_MOD : EPOLL_CTL_DEL) : EPOLL_CTL_ADD, in_fd, K_IN, want);
  in_events = want;
}

static void stdin_close_now(void) {
  if (in_fd < 0) return;
  if (in_events) ep_set(EPOLL_CTL_DEL, in_fd, K_IN, 0);
  in_events = 0;
  if (opt.tty) {
    /* A terminal has no half-close: EOF is the VEOF character (twice if a line is pending). */
    struct termios t;
    char eof = 4;
    if (tcgetattr(in_fd, &t) == 0 && t.c_cc[VEOF]) eof = (char)t.c_cc[VEOF];
    if (in_last_byte != '\n' && in_last_byte != eof) (void)write(in_fd, &eof, 1);
    (void)write(in_fd, &eof, 1);
  }
  close(in_fd);
  in_fd = -1;
  buf_free(&in_q);
}

static void stdin_flush(void) {
  while (in_fd >= 0 && buf_pending(&in_q)) {
    ssize_t w = write(in_fd, in_q.data + in_q.off, buf_pending(&in_q));
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      diag("container stdin: %s", strerror(errno));
      in_close_pending = 0;
      stdin_close_now();
      return;
    }
    in_last_byte = (unsigned char)in_q.data[in_q.off + (size_t)w - 1];
    buf_consume(&in_q, (size_t)w);
  }
  if (in_fd >= 0 && in_close_pending && !buf_pending(&in_q)) stdin_close_now();
  stdin_update_events();
}

static void stdin_write(const void *p, size_t n) {
  if (in_fd < 0 || in_close_pending || n == 0) return;
  buf_append(&in_q, p, n);
  stdin_flush();
}

static void stdin_close_request(void) {
  in_close_pending = 1;
  stdin_flush();
}

/* ---- attach clients ------------------------------------------------------------------------ */

static void client_update_events(struct client *c) {
  uint32_t want = (input_paused ? 0 : EPOLLIN) | (buf_pending(&c->out) ? EPOLLOUT : 0);
  if (want != c->events) {
    ep_set(EPOLL_CTL_MOD, c->fd, K_CLIENT, want);
    c->events = want;
  }
}

static void client_drop(struct client *c) {
  struct client **pp = &clients;
  while (*pp && *pp != c) pp = &(*pp)->next;
  if (*pp) *pp = c->next;
  ep_set(EPOLL_CTL_DEL, c->fd, K_CLIENT, 0);
  close(c->fd);
  int was_stdin = c->flags >= 0 && (c->flags & H_STDIN);
  buf_free(&c->out);
  free(c);
  if (was_stdin && opt.stdin_once && !done) stdin_close_request();
}

/* Returns -1 if the client was dropped. */
static int client_flush(struct client *c) {
  while (buf_pending(&c->out)) {
    ssize_t w = write(c->fd, c->out.data + c->out.off, buf_pending(&c->out));
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      client_drop(c); /* EPIPE and friends: the client went away */
      return -1;
    }
    buf_consume(&c->out, (size_t)w);
  }
  if (c->closing && !buf_pending(&c->out)) {
    client_drop(c);
    return -1;
  }
  client_update_events(c);
  return 0;
}

static int client_send(struct client *c, int type, const void *p, size_t n) {
  unsigned char h[8] = {(unsigned char)type, 0, 0, 0,
                        (unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8), (unsigned char)n};
  if (buf_append(&c->out, h, 8) || buf_append(&c->out, p, n)) {
    client_drop(c);
    return -1;
  }
  return client_flush(c);
}

static void client_send_exit(struct client *c) {
  if (c->flags >= 0 && (c->flags & H_EXIT)) {
    if (client_send(c, F_EXIT, exit_json.data + exit_json.off, buf_pending(&exit_json))) return;
  }
  c->closing = 1;
  client_flush(c);
}

static void start_exec(void);

static void client_frame_done(struct client *c, int type) {
  switch (type) {
  case F_HELLO:
    c->flags = c->ctl_len ? c->ctl[0] : 0;
    if (done) client_send_exit(c);
    break;
  case F_CLOSE_STDIN:
    if (!done) stdin_close_request();
    break;
  case F_RESIZE:
    if (opt.tty && out_fd[0] >= 0 && c->ctl_len >= 4) {
      struct winsize ws = {.ws_row = (unsigned short)(c->ctl[0] << 8 | c->ctl[1]),
                           .ws_col = (unsigned short)(c->ctl[2] << 8 | c->ctl[3])};
      if (ioctl(out_fd[0], TIOCSWINSZ, &ws)) diag("resize: %s", strerror(errno));
    }
    break;
  case F_START:
    if (opt.exec_process && !launched && !done) start_exec();
    break;
  default:
    break;
  }
}

static void client_read(struct client *c) {
  unsigned char data[8192];
  ssize_t n = read(c->fd, data, sizeof data);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    client_drop(c);
    return;
  }
  size_t i = 0;
  while (i < (size_t)n) {
    if (c->hdr_len < 8) {
      c->hdr[c->hdr_len++] = data[i++];
      if (c->hdr_len == 8) {
        c->remaining = (uint32_t)c->hdr[4] << 24 | (uint32_t)c->hdr[5] << 16 | (uint32_t)c->hdr[6] << 8 | c->hdr[7];
        c->ctl_len = 0;
        if (c->remaining == 0) {
          c->hdr_len = 0;
          client_frame_done(c, c->hdr[0]);
        }
      }
      continue;
    }
    size_t take = (size_t)n - i < c->remaining ? (size_t)n - i : c->remaining;
    if (c->hdr[0] == F_STDIN) {
      if (!done) stdin_write(data + i, take);
    } else {
      for (size_t k = 0; k < take && c->ctl_len < sizeof c->ctl; k++) c->ctl[c->ctl_len++] = data[i + k];
    }
    i += take;
    c->remaining -= (uint32_t)take;
    if (c->remaining == 0) {
      c->hdr_len = 0;
      client_frame_done(c, c->hdr[0]);
    }
  }
}

static void accept_clients(void) {
  for (;;) {
    int fd = accept4(listenfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    struct client *c = calloc(1, sizeof *c);
    if (!c) {
      close(fd);
      return;
    }
    c->fd = fd;
    c->flags = -1;
    c->events = input_paused ? 0 : EPOLLIN;
    c->next = clients;
    clients = c;
    ep_set(EPOLL_CTL_ADD, fd, K_CLIENT, c->events);
  }
}

static struct client *client_by_fd(int fd) {
  for (struct client *c = clients; c; c = c->next)
    if (c->fd == fd) return c;
  return NULL;
}

/* ---- container output ---------------------------------------------------------------------- */

static void output_eof(int s) {
  ep_set(EPOLL_CTL_DEL, out_fd[s], s ? K_ERR : K_OUT, 0);
  close(out_fd[s]);
  out_fd[s] = -1;
  if (jlog) jsonlog_flush(jlog, s);
}

static void output_read(int s) {
  char data[READ_CHUNK];
  ssize_t n = read(out_fd[s], data, sizeof data);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) { /* EOF, or EIO from a pty master whose terminal is closed */
    output_eof(s);
    return;
  }
  if (jlog) jsonlog_feed(jlog, s, data, (size_t)n);
  int want = s ? H_STDERR : H_STDOUT;
  for (struct client *c = clients, *next; c; c = next) {
    next = c->next;
    if (c->flags >= 0 && (c->flags & want) && !c->closing) client_send(c, s ? F_STDERR : F_STDOUT, data, (size_t)n);
  }
}

/* Backpressure: a lagging client pauses container output (as the Engine's attach does), and
 * a container that does not read its stdin pauses client input. */
static void update_flow(void) {
  int lag = 0;
  for (struct client *c = clients; c; c = c->next)
    if (buf_pending(&c->out) > CLIENT_HIGH_WATER) lag = 1;
  if (lag != output_paused) {
    output_paused = lag;
    for (int s = 0; s < 2; s++)
      if (out_fd[s] >= 0) ep_set(EPOLL_CTL_MOD, out_fd[s], s ? K_ERR : K_OUT, lag ? 0 : EPOLLIN);
  }
  int full = buf_pending(&in_q) > STDIN_HIGH_WATER;
  if (full != input_paused) {
    input_paused = full;
    for (struct client *c = clients; c; c = c->next) client_update_events(c);
  }
}

/* ---- launching the process -------------------------------------------------------------- */

static void read_text(int fd, char *out, size_t cap) {
  size_t n = strlen(out);
  set_nonblock(fd);
  ssize_t r;
  while (n < cap - 1 && (r = read(fd, out + n, cap - 1 - n)) > 0) n += (size_t)r;
  while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' ')) n--;
  out[n] = 0;
}

static void close_pair(int p[2]) {
  for (int i = 0; i < 2; i++)
    if (p[i] >= 0) close(p[i]);
  p[0] = p[1] = -1;
}

/* Runs `create` (container mode) or `exec --detach` (exec mode). On success the process
 * exists, its pid is known and its stdio is ours; on failure err holds the runtime's text. */
static int launch(char *err, size_t errlen) {
  int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
  int lfd = -1;
  char cs[PATH_MAX] = "", pidfile[PATH_MAX + 8];
  err[0] = 0;
  snprintf(pidfile, sizeof pidfile, "%s/pid", abs_dir);
  if (pipe2(perr, O_CLOEXEC)) goto sysfail;
  if (opt.tty) {
    if ((lfd = console_listen(&opt, cs, sizeof cs)) < 0) goto sysfail;
  } else {
    if (opt.stdin_open && pipe2(pin, O_CLOEXEC)) goto sysfail;
    if (pipe2(pout, O_CLOEXEC)) goto sysfail;
  }
  const char *args[16];
  size_t a = 0;
  if (opt.exec_process) {
    args[a++] = "exec";
    args[a++] = "--process";
    args[a++] = opt.exec_process;
    args[a++] = "--detach";
  } else {
    args[a++] = "create";
    args[a++] = "--bundle";
    args[a++] = opt.bundle;
  }
  args[a++] = "--pid-file";
  args[a++] = pidfile;
  if (opt.tty) {
    args[a++] = "--console-socket";
    args[a++] = cs;
  }
  args[a++] = opt.id;
  args[a] = NULL;

  unlink("pid");
  int status = run_runtime(&opt, pin[0], pout[1], perr[1], args);
  if (pin[0] >= 0) close(pin[0]);
  if (pout[1] >= 0) close(pout[1]);
  close(perr[1]);
  pin[0] = pout[1] = perr[1] = -1;
  if (status != 0) {
    /* Before `start` the container cannot write anything: all of this is the runtime's. */
    read_text(perr[0], err, errlen);
    if (pout[0] >= 0) read_text(pout[0], err, errlen);
    if (!err[0]) snprintf(err, errlen, "%s exited with status %d", opt.runtime, status);
    goto fail;
  }
  char pidtext[32] = "";
  int pf = open("pid", O_RDONLY | O_CLOEXEC);
  if (pf >= 0) {
    read_text(pf, pidtext, sizeof pidtext);
    close(pf);
  }
  child_pid = (pid_t)atoi(pidtext);
  if (child_pid <= 0) {
    snprintf(err, errlen, "%.200s did not write the pid file %.1000s", opt.runtime, pidfile);
    goto fail;
  }
  if (opt.tty) {
    int master = console_receive(lfd);
    close(lfd);
    lfd = -1;
    unlink("console.sock");
    if (master < 0) {
      snprintf(err, errlen, "%s did not send the terminal to the console socket", opt.runtime);
      goto fail;
    }
    out_fd[0] = master;
    if (opt.stdin_open) in_fd = fcntl(master, F_DUPFD_CLOEXEC, 3);
    close(perr[0]); /* a terminal has no separate stderr */
  } else {
    out_fd[0] = pout[0];
    out_fd[1] = perr[0];
    in_fd = pin[1];
  }
  for (int s = 0; s < 2; s++) {
    if (out_fd[s] < 0) continue;
    set_nonblock(out_fd[s]);
    ep_set(EPOLL_CTL_ADD, out_fd[s], s ? K_ERR : K_OUT, EPOLLIN);
  }
  if (in_fd >= 0) set_nonblock(in_fd);
  if (!opt.exec_process) {
    oom_fd = oom_watch_open(child_pid);
    oom_before = oom_count(oom_fd);
  }
  launched = 1;
  return 0;

sysfail:
  snprintf(err, errlen, "berth-monitor: %s", strerror(errno));
fail:
  close_pair(pin);
  close_pair(pout);
  close_pair(perr);
  if (lfd >= 0) {
    close(lfd);
    unlink("console.sock");
  }
  if (child_pid > 0 && opt.exec_process) kill(child_pid, SIGKILL);
  child_pid = 0;
  return -1;
}

/* START from a client (exec mode with --wait-start). A failure is reported like the Engine
 * does for an exec that cannot start: the text on stderr and exit code 126. */
static void start_exec(void) {
  char err[4096];
  if (launch(err, sizeof err) == 0) return;
  diag("exec failed: %s", err);
  size_t n = strlen(err);
  err[n++] = '\n';
  for (struct client *c = clients, *next; c; c = next) {
    next = c->next;
    if (c->flags >= 0 && (c->flags & H_STDERR)) client_send(c, F_STDERR, err, n);
  }
  launched = 1;
  child_exited = 1;
  child_status = 126 << 8;
}

/* ---- the end -------------------------------------------------------------------------------- */

static void reap(void) {
  struct signalfd_siginfo si;
  while (read(sigfd, &si, sizeof si) > 0) {
  }
  int st;
  pid_t p;
  while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
    if (p == child_pid && child_pid > 0) {
      child_exited = 1;
      child_status = st;
    }
  }
}

static void finish(void) {
  for (int s = 0; s < 2; s++)
    if (out_fd[s] >= 0) output_eof(s);
  jsonlog_close(jlog);
  jlog = NULL;
  if (in_fd >= 0) {
    in_close_pending = 0;
    stdin_close_now();
  }
  long long after = oom_count(oom_fd);
  int oom = oom_before >= 0 && after > oom_before;
  if (oom_fd >= 0) close(oom_fd);
  write_exit_file(child_status, oom, &exit_json);
  diag("process %d exited: %.*s", (int)child_pid, (int)buf_pending(&exit_json), exit_json.data);
  if (!opt.exec_process) {
    const char *args[] = {"delete", "--force", opt.id, NULL};
    int st = run_runtime(&opt, -1, -1, 2, args);
    if (st != 0) diag("runtime delete exited with status %d", st);
  }
  done = 1;
  for (struct client *c = clients, *next; c; c = next) {
    next = c->next;
    client_send_exit(c);
  }
}

/* ---- set-up ------------------------------------------------------------------------------- */

static void usage(const char *msg) {
  dprintf(2, "berth-monitor: %s\nusage: berth-monitor --id ID --dir DIR --runtime PATH --runtime-root DIR "
             "(--bundle DIR | --exec-process FILE) [--log-path FILE] [--log-max-size N] [--log-max-file N] "
             "[--tty] [--stdin] [--stdin-once] [--wait-start]\n", msg);
  exit(2);
}

static void parse_args(int argc, char **argv) {
  static const struct option longopts[] = {
      {"id", required_argument, 0, 'i'},          {"dir", required_argument, 0, 'd'},
      {"runtime", required_argument, 0, 'r'},     {"runtime-root", required_argument, 0, 'R'},
      {"bundle", required_argument, 0, 'b'},      {"exec-process", required_argument, 0, 'e'},
      {"log-path", required_argument, 0, 'l'},    {"log-max-size", required_argument, 0, 's'},
      {"log-max-file", required_argument, 0, 'f'}, {"tty", no_argument, 0, 't'},
      {"stdin", no_argument, 0, 'I'},             {"stdin-once", no_argument, 0, 'o'},
      {"wait-start", no_argument, 0, 'w'},        {0, 0, 0, 0}};
  opt.log_max_file = 1;
  int ch;
  while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (ch) {
    case 'i': opt.id = optarg; break;
    case 'd': opt.dir = optarg; break;
    case 'r': opt.runtime = optarg; break;
    case 'R': opt.runtime_root = optarg; break;
    case 'b': opt.bundle = optarg; break;
    case 'e': opt.exec_process = optarg; break;
    case 'l': opt.log_path = optarg; break;
    case 's': opt.log_max_size = atoll(optarg); break;
    case 'f': opt.log_max_file = atoi(optarg); break;
    case 't': opt.tty = 1; break;
    case 'I': opt.stdin_open = 1; break;
    case 'o': opt.stdin_once = 1; break;
    case 'w': opt.wait_start = 1; break;
    default: usage("unknown option");
    }
  }
  if (optind != argc) usage("unexpected argument");
  if (!opt.id || !opt.dir || !opt.runtime || !opt.runtime_root) usage("--id, --dir, --runtime and --runtime-root are required");
  if (!opt.bundle == !opt.exec_process) usage("exactly one of --bundle and --exec-process is required");
  if (opt.wait_start && !opt.exec_process) usage("--wait-start is for exec mode");
  if (opt.exec_process) opt.log_path = NULL; /* exec output is not logged (as on the Engine) */
}

static int setup_listener(void) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  strcpy(sa.sun_path, "attach.sock"); /* relative to DIR, so any DIR length works */
  unlink("attach.sock");
  listenfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listenfd < 0 || bind(listenfd, (struct sockaddr *)&sa, sizeof sa) || listen(listenfd, 64)) return -1;
  chmod("attach.sock", 0600);
  ep_set(EPOLL_CTL_ADD, listenfd, K_LISTEN, EPOLLIN);
  return 0;
}

static void monitor_main(void) {
  /* stdio: nothing of the daemon's may stay open here (it would keep its pipes alive). */
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  int logfd = open("monitor.log", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  dup2(null, 0);
  dup2(null, 1);
  dup2(logfd >= 0 ? logfd : null, 2);
  close(null);
  if (logfd >= 0) close(logfd);

  prctl(PR_SET_CHILD_SUBREAPER, 1);
  signal(SIGPIPE, SIG_IGN);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (sigfd < 0 || epfd < 0) {
    report(0, "berth-monitor: epoll/signalfd failed");
    exit(1);
  }
  ep_set(EPOLL_CTL_ADD, sigfd, K_SIG, EPOLLIN);

  char text[4096];
  snprintf(text, sizeof text, "%d\n", (int)getpid());
  int pf = open("monitor.pid", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (pf >= 0) {
    write_all(pf, text, strlen(text));
    close(pf);
  }
  if (setup_listener()) {
    snprintf(text, sizeof text, "berth-monitor: attach socket in %.1000s: %s", abs_dir, strerror(errno));
    report(0, text);
    exit(1);
  }
  if (opt.log_path && !(jlog = jsonlog_open(opt.log_path, opt.log_max_size, opt.log_max_file))) {
    snprintf(text, sizeof text, "berth-monitor: cannot open log file %s: %s", opt.log_path, strerror(errno));
    report(0, text);
    exit(1);
  }
  if (!opt.wait_start) {
    if (launch(text, sizeof text)) {
      diag("launch failed: %s", text);
      if (!opt.exec_process) {
        const char *args[] = {"delete", "--force", opt.id, NULL};
        run_runtime(&opt, -1, -1, -1, args);
      }
      unlink("attach.sock");
      unlink("monitor.pid");
      report(0, text);
      exit(1);
    }
  }
  snprintf(text, sizeof text, "{\"monitorPid\":%d,\"pid\":%d}", (int)getpid(), (int)child_pid);
  report(1, text);
  diag("monitoring %s (pid %d)", opt.id, (int)child_pid);

  long long deadline = -1; /* drain deadline after the exit, then client linger deadline */
  for (;;) {
    if (child_exited && !done) {
      int open_outputs = out_fd[0] >= 0 || out_fd[1] >= 0;
      if (deadline < 0) deadline = now_ms() + DRAIN_AFTER_EXIT_MS;
      if (!open_outputs || output_paused || now_ms() >= deadline) {
        if (open_outputs && !output_paused) diag("output still open %d ms after the exit; closing it", DRAIN_AFTER_EXIT_MS);
        finish();
        deadline = now_ms() + CLIENT_LINGER_MS;
      }
    }
    if (done && (!clients || now_ms() >= deadline)) break;
    update_flow();
    int timeout = -1;
    if (deadline >= 0) {
      long long left = deadline - now_ms();
      timeout = left < 0 ? 0 : (int)left;
    }
    struct epoll_event evs[16];
    int n = epoll_wait(epfd, evs, 16, timeout);
    if (n < 0 && errno != EINTR) {
      diag("epoll_wait: %s", strerror(errno));
      break;
    }
    for (int i = 0; i < n; i++) {
      int kind = (int)(evs[i].data.u64 >> 32), fd = (int)(uint32_t)evs[i].data.u64;
      uint32_t e = evs[i].events;
      switch (kind) {
      case K_SIG: reap(); break;
      case K_LISTEN: accept_clients(); break;
      case K_OUT:
      case K_ERR:
        if (out_fd[kind == K_ERR] == fd) output_read(kind == K_ERR);
        break;
      case K_IN:
        if (fd == in_fd) stdin_flush();
        break;
      case K_CLIENT: {
        struct client *c = client_by_fd(fd);
        if (!c) break;
        if (e & EPOLLOUT && client_flush(c)) break;
        if (e & (EPOLLIN | EPOLLHUP | EPOLLERR)) client_read(c);
        break;
      }
      }
    }
  }
  unlink("attach.sock");
  diag("exiting");
  exit(0);
}

/* The monitor works in DIR; paths given relative to the caller's cwd are made absolute. */
static const char *absolute(const char *p) {
  if (!p || p[0] == '/') return p;
  char cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof cwd)) return p;
  size_t n = strlen(cwd) + strlen(p) + 2;
  char *a = malloc(n);
  if (!a) return p;
  snprintf(a, n, "%s/%s", cwd, p);
  return a;
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  opt.bundle = absolute(opt.bundle);
  opt.exec_process = absolute(opt.exec_process);
  opt.log_path = absolute(opt.log_path);
  opt.runtime_root = absolute(opt.runtime_root);
  if (strchr(opt.runtime, '/')) opt.runtime = absolute(opt.runtime);
  close_range(3, ~0U, 0); /* nothing the caller leaked may reach the container */
  if (!realpath(opt.dir, abs_dir) || chdir(abs_dir)) {
    dprintf(2, "berth-monitor: state dir %s: %s\n", opt.dir, strerror(errno));
    return 1;
  }
  opt.dir = abs_dir;
  int rp[2];
  if (pipe2(rp, O_CLOEXEC)) return 1;
  pid_t middle = fork();
  if (middle < 0) return 1;
  if (middle > 0) {
    close(rp[1]);
    return relay_report(rp[0], middle);
  }
  close(rp[0]);
  setsid();
  pid_t mon = fork();
  if (mon < 0) _exit(1);
  if (mon > 0) _exit(0);
  report_fd = rp[1];
  monitor_main();
  return 0;
}
