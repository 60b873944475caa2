/* berth-monitor: one process per container (or exec) that owns its stdio, writes the
 * json-file log, serves attach.sock and records the exit. See native/PROTOCOL.md. */
#ifndef BERTH_MONITOR_H
#define BERTH_MONITOR_H

#include <stddef.h>
#include "io.h"
#include <stdint.h>
#include <sys/types.h>

/* Frame types, both directions (PROTOCOL.md). */
enum {
  F_STDIN = 0, F_STDOUT = 1, F_STDERR = 2, F_EXIT = 3, F_HELLO = 4,
  F_CLOSE_STDIN = 5, F_RESIZE = 6, F_START = 7,
};
/* HELLO flags. */
enum { H_STDOUT = 1, H_STDERR = 2, H_STDIN = 4, H_EXIT = 8 };

struct options {
  const char *id, *dir, *runtime, *runtime_root, *bundle, *exec_process, *log_path;
  long long log_max_size;
  int log_max_file;
  int tty, stdin_open, stdin_once, wait_start;
};

/* util.c */
void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void set_nonblock(int fd);
/* A growable byte buffer; storage is freed when it becomes empty so an idle monitor
 * holds no buffers. */
struct buf { char *data; size_t len, cap, off; };
int buf_append(struct buf *b, const void *p, size_t n);
void buf_consume(struct buf *b, size_t n);
static inline size_t buf_pending(const struct buf *b) { return b->len - b->off; }
void buf_free(struct buf *b);
/* Now as RFC 3339 with nanoseconds, trailing zeros trimmed (Go's RFC3339Nano), in UTC. */
void format_time_now(char out[40]);

/* jsonlog.c: json-file writer with the Engine's line splitting and rotation. */
struct jsonlog;
struct jsonlog *jsonlog_open(const char *path, long long max_size, int max_file);
/* Feeds output of one stream (0 stdout, 1 stderr); complete lines become entries. */
void jsonlog_feed(struct jsonlog *l, int stream, const char *p, size_t n);
/* Writes any partial line of `stream` as its own entry (EOF). */
void jsonlog_flush(struct jsonlog *l, int stream);
void jsonlog_close(struct jsonlog *l);
/* Appends s as a JSON string body (no quotes) escaped like the Engine's json-file writer. */
int json_escape(struct buf *out, const char *s, size_t n);

/* spawn.c: running the OCI runtime. */
/* Runs `runtime --root R args...` with the given stdio fds (-1 = /dev/null); returns the
 * wait status, or -1. Output the runtime writes to errfd stays there for the caller. */
int run_runtime(const struct options *o, int in, int out, int err, const char *const args[]);
/* Console socket: listening socket whose path is put in `path`. */
int console_listen(const struct options *o, char *path, size_t pathlen);
/* Receives the pty master the runtime sent; -1 on failure. */
int console_receive(int lfd);

/* exitfile.c */
int oom_watch_open(pid_t pid);       /* fd of the cgroup's OOM counter file, or -1 */
long long oom_count(int fd);         /* current oom_kill counter, -1 if unknown */
/* Writes DIR/exit.json atomically; json receives the text written. */
int write_exit_file(int status, int oom_killed, struct buf *json);

#endif
