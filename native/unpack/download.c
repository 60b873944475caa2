/* A registry blob downloaded by the job itself with libcurl, as the unpacker's input: the bytes
 * never pass through the daemon. As the Engine does (and as the daemon's own downloader,
 * src/services/registry/blob-download.ts, does when the native unpacker is missing): a cut
 * connection or a server error is retried after attempt n waits n times the delay, reported
 * each second as "retry <seconds>", and the download goes on from the byte it had with a Range
 * request (a registry that ignores it sends everything again and the bytes we have are skipped);
 * a refusal (401, 404...) fails at once. Bytes received are reported as "bytes <n>" at most ten
 * times a second. Redirects are followed; curl sends the Authorization header to the first
 * host only. */
#include "unpack.h"

#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* No bytes for this long: the connection is given up (and retried). */
#define IDLE_SECONDS 120L

struct dl {
  const struct download *d;
  int ctl;
  CURLM *multi;
  CURL *easy;
  struct curl_slist *headers;
  long long got;     /* bytes of the blob we have */
  long long skip;    /* bytes of this response to drop (a 200 answer to a Range request) */
  int attempt;       /* tries made so far */
  int active, done;
  long status;       /* this response's status, 0 until known */
  char failure[256]; /* why the last try ended early */
  /* where the write callback puts bytes: the reader's buffer first, then pending */
  unsigned char *target;
  size_t cap, filled;
  unsigned char *pending;
  size_t pending_len, pending_off, pending_cap;
  struct timespec last_report;
};

static void reply(const char *line) {
  if (write_all(reply_fd, line, strlen(line)) < 0) _exit(EXIT_IO); /* the client is gone */
}

static double since(const struct timespec *t) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static void report_bytes(struct dl *x, int force) {
  if (!force && since(&x->last_report) < 0.1) return;
  clock_gettime(CLOCK_MONOTONIC, &x->last_report);
  char line[64];
  snprintf(line, sizeof line, "bytes %lld\n", x->got);
  reply(line);
}

/* The client closed its side: it gave up on the layer. */
static void check_ctl(struct dl *x, int timeout_ms) {
  struct pollfd p = {.fd = x->ctl, .events = POLLIN};
  if (poll(&p, 1, timeout_ms) > 0) {
    char b[64];
    ssize_t n = read(x->ctl, b, sizeof b);
    if (n <= 0) _exit(EXIT_IO);
  }
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  struct dl *x = ud;
  size_t len = size * n;
  if (!x->status) {
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
    /* a registry that ignores the Range sends the whole blob again */
    x->skip = x->status == 200 ? x->got : 0;
  }
  if (!(x->status == 200 || (x->status == 206 && x->got > 0))) return len; /* an error page: dropped */
  if (x->skip) {
    size_t s = (long long)len <= x->skip ? len : (size_t)x->skip;
    x->skip -= (long long)s;
    p += s;
    len -= s;
  }
  if (x->d->size >= 0 && x->got + (long long)len > x->d->size) fail(EXIT_DIGEST, "blob longer than its %lld bytes", x->d->size);
  x->got += (long long)len;
  size_t direct = len < x->cap - x->filled ? len : x->cap - x->filled;
  memcpy(x->target + x->filled, p, direct);
  x->filled += direct;
  if (direct < len) {
    size_t rest = len - direct;
    if (x->pending_len + rest > x->pending_cap) {
      x->pending_cap = (x->pending_len + rest) * 2;
      x->pending = realloc(x->pending, x->pending_cap);
      if (!x->pending) fail(EXIT_IO, "out of memory");
    }
    memcpy(x->pending + x->pending_len, p + direct, rest);
    x->pending_len += rest;
  }
  return size * n;
}

static void start(struct dl *x) {
  x->attempt++;
  x->status = 0;
  x->skip = 0;
  strcpy(x->failure, "connection closed early");
  if (x->headers) curl_slist_free_all(x->headers);
  x->headers = NULL;
  for (const char *h = x->d->headers; *h;) {
    const char *e = strchr(h, '\n');
    size_t len = e ? (size_t)(e - h) : strlen(h);
    if (len) {
      char *line = strndup(h, len);
      if (!line) fail(EXIT_IO, "out of memory");
      x->headers = curl_slist_append(x->headers, line);
      free(line);
    }
    h += len + (e ? 1 : 0);
  }
  char range[64];
  if (x->got) {
    snprintf(range, sizeof range, "Range: bytes=%lld-", x->got);
    x->headers = curl_slist_append(x->headers, range);
  }
  curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
  curl_multi_add_handle(x->multi, x->easy);
  x->active = 1;
}

/* Waits out the delay before try attempt+1, reporting the seconds left each second. */
static void wait_retry(struct dl *x) {
  long total = x->attempt * x->d->delay_ms;
  for (long s = (total + 500) / 1000; s > 0; s--) {
    char line[64];
    snprintf(line, sizeof line, "retry %ld\n", s);
    reply(line);
    check_ctl(x, 1000);
  }
  if (x->d->delay_ms < 1000) check_ctl(x, (int)total);
}

/* A try has ended: done, retried, or failed for good. */
static void finished(struct dl *x, CURLcode rc) {
  curl_multi_remove_handle(x->multi, x->easy);
  x->active = 0;
  if (rc != CURLE_OK) snprintf(x->failure, sizeof x->failure, "%s", curl_easy_strerror(rc));
  else if (!x->status) curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
  int ok_status = x->status == 200 || (x->status == 206 && x->got > 0);
  if (rc == CURLE_OK && !ok_status) {
    /* a refusal stays a refusal; a server error may pass */
    if (x->status < 500 && x->status != 429) fail(EXIT_DOWNLOAD, "%ld registry answered %ld", x->status, x->status);
    snprintf(x->failure, sizeof x->failure, "registry answered %ld", x->status);
  } else if (rc == CURLE_OK && (x->d->size < 0 || x->got == x->d->size)) {
    x->done = 1;
    report_bytes(x, 1);
    return;
  }
  if (x->attempt >= x->d->attempts) {
    if (x->d->size >= 0) fail(EXIT_DOWNLOAD, "0 unexpected EOF after %lld of %lld bytes (%s)", x->got, x->d->size, x->failure);
    fail(EXIT_DOWNLOAD, "0 unexpected EOF (%s)", x->failure);
  }
  wait_retry(x);
  start(x);
}

static size_t read_download(void *ctx, unsigned char *buf, size_t cap) {
  struct dl *x = ctx;
  if (x->pending_off < x->pending_len) {
    size_t n = x->pending_len - x->pending_off < cap ? x->pending_len - x->pending_off : cap;
    memcpy(buf, x->pending + x->pending_off, n);
    x->pending_off += n;
    if (x->pending_off == x->pending_len) x->pending_off = x->pending_len = 0;
    return n;
  }
  x->target = buf;
  x->cap = cap;
  x->filled = 0;
  while (!x->filled && !x->done) {
    int running = 0;
    CURLMcode mc = curl_multi_perform(x->multi, &running);
    if (mc != CURLM_OK) fail(EXIT_IO, "curl: %s", curl_multi_strerror(mc));
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(x->multi, &left)) != NULL)
      if (m->msg == CURLMSG_DONE) finished(x, m->data.result);
    if (x->filled || x->done) break;
    if (x->active) {
      struct curl_waitfd w = {.fd = x->ctl, .events = CURL_WAIT_POLLIN};
      int n = 0;
      curl_multi_poll(x->multi, &w, 1, 1000, &n);
      if (w.revents) check_ctl(x, 0);
    }
  }
  if (x->filled) report_bytes(x, 0);
  return x->filled;
}

void source_download(struct source *s, const struct download *d, int ctl) {
  static struct dl x;
  memset(&x, 0, sizeof x);
  x.d = d;
  x.ctl = ctl;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) fail(EXIT_IO, "curl cannot start");
  x.multi = curl_multi_init();
  x.easy = curl_easy_init();
  if (!x.multi || !x.easy) fail(EXIT_IO, "curl cannot start");
  curl_easy_setopt(x.easy, CURLOPT_URL, d->url);
  curl_easy_setopt(x.easy, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(x.easy, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(x.easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(x.easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(x.easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(x.easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(x.easy, CURLOPT_PROXY, ""); /* as the daemon's own requests: no proxy */
  curl_easy_setopt(x.easy, CURLOPT_CONNECTTIMEOUT, IDLE_SECONDS);
  curl_easy_setopt(x.easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(x.easy, CURLOPT_LOW_SPEED_TIME, IDLE_SECONDS);
  curl_easy_setopt(x.easy, CURLOPT_BUFFERSIZE, 512L * 1024);
  curl_easy_setopt(x.easy, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(x.easy, CURLOPT_WRITEDATA, &x);
  if (*d->ca) {
    /* the registry's own CA (certs.d), in place of the system's, as the daemon's client does */
    struct curl_blob ca = {.data = (void *)d->ca, .len = strlen(d->ca), .flags = CURL_BLOB_COPY};
    curl_easy_setopt(x.easy, CURLOPT_CAINFO_BLOB, &ca);
  }
  clock_gettime(CLOCK_MONOTONIC, &x.last_report);
  start(&x);
  s->read_in = read_download;
  s->read_ctx = &x;
}
