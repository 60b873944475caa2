/* Small helpers: diagnostics, full writes, byte buffers, timestamps. */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Diagnostics go to fd 2, which the monitor points at DIR/monitor.log. No stdio streams are
 * used anywhere, so no stdio buffers are ever allocated. */
void diag(const char *fmt, ...) {
  char line[512];
  char ts[40];
  format_time_now(ts);
  int n = snprintf(line, sizeof line, "%s berth-monitor[%d]: ", ts, (int)getpid());
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  va_end(ap);
  if (m < 0) m = 0;
  size_t len = (size_t)n + (size_t)m;
  if (len > sizeof line - 2) len = sizeof line - 2;
  line[len++] = '\n';
  (void)write_all(2, line, len);
}


void set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int buf_append(struct buf *b, const void *p, size_t n) {
  if (b->off > 0 && b->off == b->len) b->off = b->len = 0;
  if (b->len + n > b->cap) {
    /* Compact before growing. */
    if (b->off > 0) {
      memmove(b->data, b->data + b->off, b->len - b->off);
      b->len -= b->off;
      b->off = 0;
    }
    if (b->len + n > b->cap) {
      size_t cap = b->cap ? b->cap : 256;
      while (cap < b->len + n) cap *= 2;
      char *d = realloc(b->data, cap);
      if (!d) return -1;
      b->data = d;
      b->cap = cap;
    }
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

void buf_consume(struct buf *b, size_t n) {
  b->off += n;
  if (b->off >= b->len) buf_free(b);
}

void buf_free(struct buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = b->off = 0;
}

void format_time_now(char out[40]) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
  if (ts.tv_nsec != 0) {
    char frac[16];
    snprintf(frac, sizeof frac, ".%09ld", ts.tv_nsec);
    size_t fl = strlen(frac);
    while (fl > 1 && frac[fl - 1] == '0') frac[--fl] = 0;  /* Go trims trailing zeros */
    memcpy(out + n, frac, fl);
    n += fl;
  }
  out[n++] = 'Z';
  out[n] = 0;
}
