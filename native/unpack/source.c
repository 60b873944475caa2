/* The layer's bytes as they come (stdin, a connection, a download): hashed (the blob digest),
 * stored in the ingest file when asked, decompressed when they start with the gzip or zstd
 * magic, and the tar hashed again (the diff ID). Like Go's gzip reader (the Engine's),
 * concatenated gzip members are read as one stream and anything else after the last member is
 * an error; zstd frames likewise. */
#include "unpack.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* Large reads: one trip per MiB instead of per pipe page. */
#define IN_BUF (1u << 20)
#define OUT_BUF (1u << 20)

static unsigned char *alloc(size_t n) {
  unsigned char *p = OPENSSL_malloc(n);
  if (!p) fail(EXIT_IO, "out of memory");
  return p;
}

/* The input as a plain file descriptor (stdin, a job's connection). */
static size_t read_fd(void *ctx, unsigned char *buf, size_t cap) {
  int fd = *(int *)ctx;
  ssize_t n;
  do n = read(fd, buf, cap);
  while (n < 0 && errno == EINTR);
  if (n < 0) fail(EXIT_IO, "reading the layer: %s", strerror(errno));
  return (size_t)n;
}

void source_init(struct source *s, int in_fd, int ingest_fd, int keep_input) {
  memset(s, 0, sizeof *s);
  s->in_fd = in_fd;
  s->read_in = read_fd;
  s->read_ctx = &s->in_fd;
  s->ingest_fd = ingest_fd;
  s->keep_input = keep_input;
  s->codec = -1;
  s->inbuf = alloc(IN_BUF);
  s->outbuf = alloc(OUT_BUF);
  s->in_md = EVP_MD_CTX_new();
  s->out_md = EVP_MD_CTX_new();
  if (!s->in_md || !s->out_md || !EVP_DigestInit_ex(s->in_md, EVP_sha256(), NULL) ||
      !EVP_DigestInit_ex(s->out_md, EVP_sha256(), NULL))
    fail(EXIT_IO, "sha256 is not available");
  /* a bigger pipe: fewer wake-ups per MiB (best effort, the limit may be lower) */
  (void)fcntl(in_fd, F_SETPIPE_SZ, IN_BUF);
}

/* Appends what stdin has to inbuf (from in_len on); 0 at EOF. */
static size_t fill(struct source *s) {
  if (s->in_eof) return 0;
  size_t n = s->read_in(s->read_ctx, s->inbuf + s->in_len, IN_BUF - s->in_len);
  if (n == 0) { s->in_eof = 1; return 0; }
  EVP_DigestUpdate(s->in_md, s->inbuf + s->in_len, (size_t)n);
  if (s->keep_input && write_all(s->ingest_fd, s->inbuf + s->in_len, (size_t)n) < 0)
    fail(EXIT_IO, "writing the layer blob: %s", strerror(errno));
  s->in_size += (uint64_t)n;
  s->in_len += n;
  return n;
}

/* Hashes (and stores) decompressed bytes. */
static void emit(struct source *s, const unsigned char *p, size_t n) {
  if (s->codec != CODEC_PLAIN) EVP_DigestUpdate(s->out_md, p, n); /* plain: the same bytes as the input */
  if (!s->keep_input && write_all(s->ingest_fd, p, n) < 0)
    fail(EXIT_IO, "writing the layer tar: %s", strerror(errno));
  s->out_size += n;
}

static void decide(struct source *s) {
  while (s->in_len < 4 && fill(s) > 0) {}
  const unsigned char *b = s->inbuf;
  if (s->in_len >= 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd) {
    s->codec = CODEC_ZSTD;
    s->zs = ZSTD_createDStream();
    if (!s->zs || ZSTD_isError(ZSTD_initDStream(s->zs))) fail(EXIT_IO, "zstd: cannot start");
    s->zin = (ZSTD_inBuffer){.src = s->inbuf, .size = s->in_len, .pos = 0};
    return;
  }
  s->codec = s->in_len >= 2 && b[0] == 0x1f && b[1] == 0x8b ? CODEC_GZIP : CODEC_PLAIN;
  if (s->codec == CODEC_PLAIN) return;
  if (inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK) fail(EXIT_IO, "zlib: cannot start");
  s->z.next_in = s->inbuf;
  s->z.avail_in = (uInt)s->in_len;
}

static size_t next_plain(struct source *s, const void **p) {
  if (s->in_off == s->in_len) {
    s->in_off = s->in_len = 0;
    if (fill(s) == 0) return 0;
  }
  size_t n = s->in_len - s->in_off;
  *p = s->inbuf + s->in_off;
  s->in_off = s->in_len;
  emit(s, *p, n);
  return n;
}

static size_t next_gzip(struct source *s, const void **p) {
  for (;;) {
    if (s->z.avail_in == 0 && !s->in_eof) {
      s->in_len = 0;
      if (fill(s) > 0) { s->z.next_in = s->inbuf; s->z.avail_in = (uInt)s->in_len; }
    }
    if (s->member_ended) {
      if (s->z.avail_in == 0) {
        if (s->in_eof) return 0;
        continue;
      }
      /* another member must follow; Go's reader refuses anything else */
      if (s->z.avail_in < 2 && !s->in_eof) {
        /* keep the byte we have and read on behind it */
        memmove(s->inbuf, s->z.next_in, s->z.avail_in);
        s->in_len = s->z.avail_in;
        fill(s);
        s->z.next_in = s->inbuf;
        s->z.avail_in = (uInt)s->in_len;
        continue;
      }
      if (s->z.avail_in < 2 || s->z.next_in[0] != 0x1f || s->z.next_in[1] != 0x8b)
        fail(EXIT_INVALID, "gzip: invalid header");
      if (inflateReset(&s->z) != Z_OK) fail(EXIT_IO, "zlib: cannot reset");
      s->member_ended = 0;
    }
    s->z.next_out = s->outbuf;
    s->z.avail_out = OUT_BUF;
    int rc = inflate(&s->z, Z_NO_FLUSH);
    size_t n = OUT_BUF - s->z.avail_out;
    if (rc == Z_STREAM_END) s->member_ended = 1;
    else if (rc == Z_BUF_ERROR && s->z.avail_in == 0 && s->in_eof) fail(EXIT_INVALID, "unexpected EOF");
    else if (rc != Z_OK && rc != Z_BUF_ERROR) fail(EXIT_INVALID, "gzip: %s", s->z.msg ? s->z.msg : "invalid data");
    if (n > 0) {
      *p = s->outbuf;
      emit(s, s->outbuf, n);
      return n;
    }
    if (!s->member_ended && s->z.avail_in == 0 && s->in_eof) fail(EXIT_INVALID, "unexpected EOF");
  }
}

static size_t next_zstd(struct source *s, const void **p) {
  for (;;) {
    if (s->zin.pos == s->zin.size && !s->in_eof) {
      s->in_len = 0;
      if (fill(s) > 0) s->zin = (ZSTD_inBuffer){.src = s->inbuf, .size = s->in_len, .pos = 0};
    }
    ZSTD_outBuffer out = {.dst = s->outbuf, .size = OUT_BUF, .pos = 0};
    size_t before = s->zin.pos;
    size_t rc = ZSTD_decompressStream(s->zs, &out, &s->zin);
    if (ZSTD_isError(rc)) fail(EXIT_INVALID, "zstd: %s", ZSTD_getErrorName(rc));
    /* 0: a frame decoded and flushed to its end (a call with nothing to do says nothing) */
    if (s->zin.pos > before || out.pos > 0) s->zstd_frame_done = rc == 0;
    if (out.pos > 0) {
      *p = s->outbuf;
      emit(s, s->outbuf, out.pos);
      return out.pos;
    }
    if (s->zin.pos == s->zin.size && s->in_eof) {
      if (!s->zstd_frame_done) fail(EXIT_INVALID, "unexpected EOF");
      return 0;
    }
  }
}

size_t source_next(struct source *s, const void **p) {
  if (s->codec < 0) decide(s);
  if (s->codec == CODEC_GZIP) return next_gzip(s, p);
  if (s->codec == CODEC_ZSTD) return next_zstd(s, p);
  return next_plain(s, p);
}

static void hex_digest(EVP_MD_CTX *md, char out[72]) {
  unsigned char d[32];
  unsigned int len = 0;
  EVP_DigestFinal_ex(md, d, &len);
  memcpy(out, "sha256:", 7);
  for (unsigned i = 0; i < 32; i++) {
    out[7 + 2 * i] = "0123456789abcdef"[d[i] >> 4];
    out[8 + 2 * i] = "0123456789abcdef"[d[i] & 15];
  }
  out[71] = 0;
}

void source_digests(struct source *s, char in_digest[72], char out_digest[72]) {
  hex_digest(s->in_md, in_digest);
  if (s->codec != CODEC_PLAIN) hex_digest(s->out_md, out_digest);
  else memcpy(out_digest, in_digest, 72);
}
