/* json-file log writer, entry for entry what the Engine's json-file driver writes:
 *   {"log":"hello\n","stream":"stdout","time":"2026-11-22T11:00:00.123456789Z"}
 * Output is cut into lines; a line longer than 16 KiB is written as 16 KiB partial entries
 * (no trailing \n), and a partial line is written as its own entry at EOF. */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINE_MAX_BYTES (16 * 1024) /* the Engine's copier buffer size */

struct jsonlog {
  char *path;
  int fd;
  long long size, max_size;
  int max_file;
  struct buf partial[2]; /* stdout, stderr */
};

static const char HEX[] = "0123456789abcdef";

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid (Go's utf8.DecodeRune rules). */
static size_t utf8_seq(const unsigned char *s, size_t n, unsigned *cp) {
  unsigned char c = s[0];
  if (c >= 0xC2 && c <= 0xDF) {
    if (n < 2 || (s[1] & 0xC0) != 0x80) return 0;
    *cp = ((unsigned)(c & 0x1F) << 6) | (s[1] & 0x3F);
    return 2;
  }
  if (c >= 0xE0 && c <= 0xEF) {
    unsigned char lo = 0x80, hi = 0xBF;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
    if (n < 3 || s[1] < lo || s[1] > hi || (s[2] & 0xC0) != 0x80) return 0;
    *cp = ((unsigned)(c & 0x0F) << 12) | ((unsigned)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    unsigned char lo = 0x80, hi = 0xBF;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
    if (n < 4 || s[1] < lo || s[1] > hi || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return 0;
    *cp = 0; /* not needed beyond validity */
    return 4;
  }
  return 0;
}

int json_escape(struct buf *out, const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0, start = 0;
  while (i < n) {
    unsigned char b = s[i];
    if (b < 0x80) {
      if (b >= 0x20 && b != '\\' && b != '"' && b != '<' && b != '>' && b != '&') { i++; continue; }
      if (buf_append(out, s + start, i - start)) return -1;
      char esc[6];
      size_t el = 2;
      esc[0] = '\\';
      if (b == '\\' || b == '"') esc[1] = (char)b;
      else if (b == '\n') esc[1] = 'n';
      else if (b == '\r') esc[1] = 'r';
      else { /* other control bytes (tab too) and < > &, as the Engine writes them */
        memcpy(esc, "\\u00", 4);
        esc[4] = HEX[b >> 4];
        esc[5] = HEX[b & 0xF];
        el = 6;
      }
      if (buf_append(out, esc, el)) return -1;
      start = ++i;
      continue;
    }
    unsigned cp = 0;
    size_t len = utf8_seq(s + i, n - i, &cp);
    if (len == 0 || (len == 3 && (cp == 0x2028 || cp == 0x2029))) {
      if (buf_append(out, s + start, i - start)) return -1;
      if (len == 0) {
        if (buf_append(out, "\\ufffd", 6)) return -1;
        i += 1;
      } else {
        if (buf_append(out, cp == 0x2028 ? "\\u2028" : "\\u2029", 6)) return -1;
        i += 3;
      }
      start = i;
      continue;
    }
    i += len;
  }
  return buf_append(out, s + start, n - start);
}

static int open_log(struct jsonlog *l) {
  l->fd = open(l->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (l->fd < 0) {
    diag("open %s: %s", l->path, strerror(errno));
    return -1;
  }
  struct stat st;
  l->size = fstat(l->fd, &st) == 0 ? st.st_size : 0;
  return 0;
}

struct jsonlog *jsonlog_open(const char *path, long long max_size, int max_file) {
  struct jsonlog *l = calloc(1, sizeof *l);
  if (!l) return NULL;
  l->path = strdup(path);
  l->max_size = max_size;
  l->max_file = max_file < 1 ? 1 : max_file;
  if (!l->path || open_log(l)) {
    free(l->path);
    free(l);
    return NULL;
  }
  return l;
}

/* The Engine rotates before a write once the file has reached max-size: FILE -> FILE.1 ->
 * ... -> FILE.(N-1), the oldest dropped; with max-file 1 the file is truncated instead. */
static void rotate(struct jsonlog *l) {
  if (l->max_file < 2) {
    if (ftruncate(l->fd, 0) == 0) l->size = 0;
    return;
  }
  size_t pl = strlen(l->path) + 16;
  char *from = malloc(pl), *to = malloc(pl);
  if (!from || !to) goto out;
  snprintf(to, pl, "%s.%d", l->path, l->max_file - 1);
  unlink(to);
  for (int i = l->max_file - 1; i >= 1; i--) {
    if (i == 1) snprintf(from, pl, "%s", l->path);
    else snprintf(from, pl, "%s.%d", l->path, i - 1);
    snprintf(to, pl, "%s.%d", l->path, i);
    if (rename(from, to) && errno != ENOENT) diag("rotate %s: %s", from, strerror(errno));
  }
  close(l->fd);
  if (open_log(l)) l->fd = -1;
out:
  free(from);
  free(to);
}

static void write_entry(struct jsonlog *l, int stream, const char *p, size_t n) {
  if (l->fd < 0) return;
  if (l->max_size > 0 && l->size >= l->max_size) {
    rotate(l);
    if (l->fd < 0) return;
  }
  struct buf e = {0};
  char ts[40];
  format_time_now(ts);
  int ok = !buf_append(&e, "{\"log\":\"", 8) && !json_escape(&e, p, n) &&
           !buf_append(&e, stream ? "\",\"stream\":\"stderr\",\"time\":\"" : "\",\"stream\":\"stdout\",\"time\":\"", 28) &&
           !buf_append(&e, ts, strlen(ts)) && !buf_append(&e, "\"}\n", 3);
  if (ok) {
    if (write_all(l->fd, e.data + e.off, buf_pending(&e)) == 0) l->size += (long long)buf_pending(&e);
    else diag("write %s: %s", l->path, strerror(errno));
  }
  buf_free(&e);
}

void jsonlog_feed(struct jsonlog *l, int stream, const char *p, size_t n) {
  struct buf *pb = &l->partial[stream];
  while (n > 0) {
    size_t have = buf_pending(pb);
    size_t room = LINE_MAX_BYTES - have;
    size_t look = n < room ? n : room;
    const char *nl = memchr(p, '\n', look);
    if (nl) {
      size_t take = (size_t)(nl - p) + 1;
      if (have == 0) write_entry(l, stream, p, take);
      else {
        buf_append(pb, p, take);
        write_entry(l, stream, pb->data + pb->off, buf_pending(pb));
        buf_free(pb);
      }
      p += take;
      n -= take;
    } else if (n >= room) {
      /* The line fills the 16 KiB buffer: written as a partial entry. */
      if (have == 0) write_entry(l, stream, p, room);
      else {
        buf_append(pb, p, room);
        write_entry(l, stream, pb->data + pb->off, buf_pending(pb));
        buf_free(pb);
      }
      p += room;
      n -= room;
    } else {
      buf_append(pb, p, n);
      n = 0;
    }
  }
}

void jsonlog_flush(struct jsonlog *l, int stream) {
  struct buf *pb = &l->partial[stream];
  if (buf_pending(pb)) write_entry(l, stream, pb->data + pb->off, buf_pending(pb));
  buf_free(pb);
}

void jsonlog_close(struct jsonlog *l) {
  if (!l) return;
  jsonlog_flush(l, 0);
  jsonlog_flush(l, 1);
  if (l->fd >= 0) {
    fsync(l->fd);
    close(l->fd);
  }
  free(l->path);
  free(l);
}
