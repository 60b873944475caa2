/* Paths of untrusted entries, resolved one component at a time from the layer's root with
 * O_NOFOLLOW: ".." is refused outright and a symlink is never walked through, so nothing an
 * archive holds can make a write land outside the root. */
#include "unpack.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void path_split(const char *name, struct path *out) {
  out->comp = NULL;
  out->n = 0;
  size_t cap = 0;
  const char *s = name;
  while (*s) {
    const char *e = strchr(s, '/');
    size_t len = e ? (size_t)(e - s) : strlen(s);
    if (len == 2 && s[0] == '.' && s[1] == '.') fail(EXIT_UNSAFE, "path escapes the layer: \"%s\"", name);
    if (len > 0 && !(len == 1 && s[0] == '.')) {
      if (out->n == cap) {
        cap = cap ? cap * 2 : 8;
        out->comp = realloc(out->comp, cap * sizeof *out->comp);
        if (!out->comp) fail(EXIT_IO, "out of memory");
      }
      out->comp[out->n] = strndup(s, len);
      if (!out->comp[out->n]) fail(EXIT_IO, "out of memory");
      out->n++;
    }
    s += len;
    if (*s == '/') s++;
  }
}

void path_free(struct path *p) {
  for (size_t i = 0; i < p->n; i++) free(p->comp[i]);
  free(p->comp);
  p->comp = NULL;
  p->n = 0;
}

char *path_join(const struct path *p, size_t n) {
  size_t len = 1;
  for (size_t i = 0; i < n; i++) len += strlen(p->comp[i]) + 1;
  char *s = malloc(len), *o = s;
  if (!s) fail(EXIT_IO, "out of memory");
  *o = 0;
  for (size_t i = 0; i < n; i++) o += sprintf(o, "%s%s", i ? "/" : "", p->comp[i]);
  return s;
}

int walk_dirs(int rootfd, const struct path *p, size_t n, int create) {
  int cur = dup(rootfd);
  if (cur < 0) fail(EXIT_IO, "dup: %s", strerror(errno));
  for (size_t i = 0; i < n; i++) {
    int next = openat(cur, p->comp[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0 && errno == ENOENT && create) {
      if (mkdirat(cur, p->comp[i], 0755) < 0 && errno != EEXIST) fail(EXIT_IO, "mkdir %s: %s", p->comp[i], strerror(errno));
      next = openat(cur, p->comp[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (next < 0) {
      int err = errno;
      struct stat st;
      if (err == ELOOP || err == ENOTDIR) {
        /* tell the two apart: both mean "not a real directory" */
        if (fstatat(cur, p->comp[i], &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) err = ELOOP;
        else err = ENOTDIR;
      }
      close(cur);
      if (create) {
        const char *name = path_join(p, p->n); /* not freed: fail() ends the job */
        if (err == ELOOP) fail(EXIT_UNSAFE, "refusing to write through a symlink: %s", name);
        if (err == ENOTDIR) fail(EXIT_UNSAFE, "path component is not a directory: %s", name);
        fail(EXIT_IO, "open %s: %s", name, strerror(err));
      }
      errno = err;
      return -1;
    }
    close(cur);
    cur = next;
  }
  return cur;
}

/* Empties the directory fd (taken over and closed). */
static void empty_dir(int fd) {
  DIR *d = fdopendir(fd);
  if (!d) fail(EXIT_IO, "fdopendir: %s", strerror(errno));
  struct dirent *e;
  while ((errno = 0, e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    remove_tree(dirfd(d), e->d_name);
  }
  if (errno) fail(EXIT_IO, "readdir: %s", strerror(errno));
  closedir(d);
}

void remove_tree(int dirfd, const char *name) {
  if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT) return;
  if (errno != EISDIR && errno != EPERM) fail(EXIT_IO, "remove %s: %s", name, strerror(errno));
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) fail(EXIT_IO, "remove %s: %s", name, strerror(errno));
  empty_dir(fd);
  if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0) fail(EXIT_IO, "remove %s: %s", name, strerror(errno));
}
