/* berth-unpack: unpacks one untrusted image layer (gzip, zstd or plain tar) into a
 * directory, hashing it on the way (see main.c for the command line and the answer). */
#ifndef BERTH_UNPACK_H
#define BERTH_UNPACK_H

#include <stddef.h>
#include "io.h"
#include <stdint.h>
#include <sys/types.h>
#include <openssl/evp.h>
#include <zlib.h>
#include <zstd.h>

/* Exit codes; the message is the one line on stderr. */
enum {
  EXIT_IO = 1,      /* a system call failed (disk full, permissions, ...) */
  EXIT_UNSAFE = 2,  /* the archive tried to leave its directory, or cannot be unpacked safely */
  EXIT_INVALID = 3, /* corrupt gzip or tar data, or the input ended early */
  EXIT_DOWNLOAD = 4, /* the download failed for good: "4 <HTTP status or 0> message" */
  EXIT_DIGEST = 5,   /* the blob is longer than its descriptor says */
};

/* Ends the job: "msg" on stderr and exit code (one-shot mode), or "<code> msg" as the
 * job's answer on its connection (server mode, see serve.c). */
void fail(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
struct download;
/* Where a job's answer goes: -1 in one-shot mode (stdout, stderr and the exit code). */
extern int reply_fd;
/* One job: unpacks in_fd into dest, ingest receiving the bytes; the answer as fail() gives it. */
void run_job(int in_fd, const char *dest, const char *ingest, int keep_input, const struct download *d);
/* serve.c: berth-unpack --serve NAME */
int serve(const char *name);

/* source.c: the bytes as given, hashed and maybe stored, decompressed when gzip or zstd. */
struct source {
  int in_fd, ingest_fd;
  /* where the input comes from: up to cap bytes into buf, 0 at the end (read_fd or a download) */
  size_t (*read_in)(void *ctx, unsigned char *buf, size_t cap);
  void *read_ctx;
  int keep_input;           /* ingest gets the bytes as given; else the decompressed tar */
  int codec;                /* CODEC_*, or -1 until the first bytes are seen */
  int in_eof, member_ended;
  EVP_MD_CTX *in_md, *out_md;
  uint64_t in_size, out_size;
  unsigned char *inbuf, *outbuf;
  size_t in_off, in_len;
  z_stream z;
  ZSTD_DStream *zs;
  ZSTD_inBuffer zin;
  int zstd_frame_done;
};
enum { CODEC_PLAIN = 0, CODEC_GZIP = 1, CODEC_ZSTD = 2 };
void source_init(struct source *s, int in_fd, int ingest_fd, int keep_input);
/* Next run of decompressed bytes (*p valid until the next call); 0 at the end. Fails the
 * process on bad data or I/O errors. */
size_t source_next(struct source *s, const void **p);
/* "sha256:<hex>" of the input and of the decompressed tar; out must hold 72 bytes. */
void source_digests(struct source *s, char in_digest[72], char out_digest[72]);

/* download.c: a registry blob fetched by the job itself (server mode). */
struct download {
  const char *url, *headers, *ca; /* headers: "Name: value" lines; ca: PEM or "" */
  long long size;                 /* -1: not known */
  int attempts;
  long delay_ms;
};
/* Makes s read the blob d, answering progress on reply_fd; ctl: the job's connection, whose
 * end means the client gave up. */
void source_download(struct source *s, const struct download *d, int ctl);

/* fsutil.c: directory walking that never leaves root and never follows a symlink. */
struct path {
  char **comp;
  size_t n;
};
/* Splits name into components ("." and empty dropped); fails on "..". Caller frees. */
void path_split(const char *name, struct path *out);
void path_free(struct path *p);
/* "a/b" of comp[0..n), malloc'd. */
char *path_join(const struct path *p, size_t n);
/* fd of root/comp[0..n) as a directory (O_RDONLY); missing dirs are created (0755) when
 * create, else -1 with errno ENOENT. A symlink or non-directory on the way fails the process
 * (create) or gives -1 with ELOOP/ENOTDIR. */
int walk_dirs(int rootfd, const struct path *p, size_t n, int create);
/* Removes dirfd/name whatever it is (a directory with all it holds). */
void remove_tree(int dirfd, const char *name);

/* extract.c */
/* Unpacks the tar that src yields into rootfd; returns the bytes of regular-file content. */
uint64_t extract(struct source *src, int rootfd);

#endif
