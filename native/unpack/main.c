/* berth-unpack DEST INGEST [--keep-input]    one layer, on stdin
 * berth-unpack --serve NAME                    layers sent by the daemon (serve.c)
 *
 * A job reads one image layer (gzip or plain tar; sent to it, or downloaded by it from a
 * registry, download.c) and, in one pass, hashes it, writes it to
 * INGEST (created, must not exist: the bytes as given with --keep-input, as a registry blob is
 * kept, else the decompressed tar), and unpacks it into the existing directory DEST. Its
 * answer on success is one line of JSON:
 *   {"diffId":"sha256:...","size":N,"inputDigest":"sha256:...","inputSize":N}
 * (size: bytes of regular-file content), on stdout or after "0 " on the job's connection. A
 * failure is one line of text with EXIT_UNSAFE, EXIT_INVALID or EXIT_IO (unpack.h) as the exit
 * code or before the text; the caller removes what was written. The daemon sends every layer
 * it pulls, loads, imports or builds to its server (src/store/native-unpack.ts). */
#include "unpack.h"

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

int reply_fd = -1;

void fail(int code, const char *fmt, ...) {
  char msg[1024];
  int n = reply_fd >= 0 ? snprintf(msg, sizeof msg, "%d ", code) : 0;
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(msg + n, sizeof msg - (size_t)n - 1, fmt, ap);
  va_end(ap);
  if (m < 0) m = 0;
  n += m;
  if ((size_t)n > sizeof msg - 2) n = (int)sizeof msg - 2;
  msg[n++] = '\n';
  (void)write_all(reply_fd >= 0 ? reply_fd : 2, msg, (size_t)n);
  if (reply_fd >= 0) {
    /* A job that stops early still reads what the client sends until the client, having seen
     * the answer, stops: a socket closed with unread bytes resets the connection, and the
     * client could lose the answer. */
    shutdown(reply_fd, SHUT_WR);
    char b[65536];
    struct pollfd p = {.fd = reply_fd, .events = POLLIN};
    while (poll(&p, 1, 30000) > 0 && read(reply_fd, b, sizeof b) > 0) {}
  }
  _exit(code);
}


void run_job(int in_fd, const char *dest, const char *ingest_path, int keep_input, const struct download *d) {
  int rootfd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) fail(EXIT_IO, "open %s: %s", dest, strerror(errno));
  int ingest = open(ingest_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (ingest < 0) fail(EXIT_IO, "create %s: %s", ingest_path, strerror(errno));
  struct source src;
  source_init(&src, in_fd, ingest, keep_input);
  if (d) source_download(&src, d, in_fd);
  uint64_t size = extract(&src, rootfd);
  if (close(ingest) < 0) fail(EXIT_IO, "close %s: %s", ingest_path, strerror(errno));
  char in_digest[72], out_digest[72];
  source_digests(&src, in_digest, out_digest);
  char answer[320];
  int n = snprintf(answer, sizeof answer, "%s{\"diffId\":\"%s\",\"size\":%llu,\"inputDigest\":\"%s\",\"inputSize\":%llu}\n",
                   reply_fd >= 0 ? "0 " : "", out_digest, (unsigned long long)size, in_digest, (unsigned long long)src.in_size);
  if (write_all(reply_fd >= 0 ? reply_fd : 1, answer, (size_t)n) < 0) _exit(EXIT_IO);
}

int main(int argc, char **argv) {
  /* pax names are UTF-8: taken as they are, not converted to an ASCII locale */
  setlocale(LC_ALL, "C.UTF-8");
  umask(0);
  if (argc == 3 && !strcmp(argv[1], "--serve")) return serve(argv[2]);
  if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "--keep-input"))) {
    fprintf(stderr, "usage: berth-unpack DEST INGEST [--keep-input] < layer\n       berth-unpack --serve NAME\n");
    return EXIT_IO;
  }
  run_job(0, argv[1], argv[2], argc == 4, NULL);
  return 0;
}
