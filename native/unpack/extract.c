/* Writes the tar's entries under the layer root. libarchive parses the archive (ustar, GNU
 * and pax headers, long names, xattrs, sparse files); every write goes through a parent
 * directory reached by walk_dirs, and entries are created with *at() calls relative to it,
 * never through a symlink. Docker/OCI whiteouts become overlayfs whiteouts (char device 0:0,
 * the opaque xattr). Directory owner, mode and times are set last, deepest first (creating
 * children would change their times), found again the same safe way: an entry replaced by a
 * symlink in the meantime is skipped, not followed. */
#include "unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

struct dir_fix {
  char *rel;
  mode_t mode;
  uid_t uid;
  gid_t gid;
  int has_mtime;
  struct timespec mtime;
};

struct ctx {
  struct archive *a;
  int rootfd;
  /* the last parent directory walked to, kept for the next entry (usually a sibling) */
  char *cached_rel;
  int cached_fd;
  int cache_stale;
  struct dir_fix *dirs;
  size_t ndirs, capdirs;
  uint64_t size;
};

struct reader {
  struct source *src;
  const void *first; /* read before libarchive started (to see whether there is anything) */
  size_t first_len;
};

static la_ssize_t read_cb(struct archive *a, void *data, const void **buf) {
  (void)a;
  struct reader *r = data;
  if (r->first) {
    *buf = r->first;
    r->first = NULL;
    return (la_ssize_t)r->first_len;
  }
  return (la_ssize_t)source_next(r->src, buf);
}

static void archive_fail(struct ctx *c) {
  const char *msg = archive_error_string(c->a);
  /* a tar cut short: in the words of Go's archive/tar, as the Engine answers */
  if (msg && strstr(msg, "runcated")) fail(EXIT_INVALID, "unexpected EOF");
  fail(EXIT_INVALID, "invalid tar: %s", msg ? msg : "unreadable archive");
}

/* The directory holding the entry p (all but its last component), created as needed. */
static int parent_of(struct ctx *c, const struct path *p) {
  char *rel = path_join(p, p->n - 1);
  if (!c->cache_stale && c->cached_rel && !strcmp(rel, c->cached_rel)) { free(rel); return c->cached_fd; }
  if (c->cached_fd >= 0) close(c->cached_fd);
  free(c->cached_rel);
  c->cached_fd = walk_dirs(c->rootfd, p, p->n - 1, 1);
  c->cached_rel = rel;
  c->cache_stale = 0;
  return c->cached_fd;
}

/* Clears the way for a new entry at parent/name. Returns 1 when keep_dir and a directory is
 * there already (it stays, as tar merges directories). */
static int remove_existing(struct ctx *c, int parent, const char *name, int keep_dir) {
  struct stat st;
  if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno == ENOENT) return 0;
    fail(EXIT_IO, "stat %s: %s", name, strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) {
    if (keep_dir) return 1;
    c->cache_stale = 1; /* the cached parent may have been inside it */
  }
  remove_tree(parent, name);
  return 0;
}

/* xattrs of the entry, on fd when there is one, else on parent/name itself (not followed). */
static void set_xattrs(struct archive_entry *e, int fd, int parent, const char *name) {
  if (archive_entry_xattr_reset(e) == 0) return;
  const char *key;
  const void *value;
  size_t size;
  while (archive_entry_xattr_next(e, &key, &value, &size) == ARCHIVE_OK) {
    int rc;
    if (fd >= 0) rc = fsetxattr(fd, key, value, size, 0);
    else {
      char path[4200];
      snprintf(path, sizeof path, "/proc/self/fd/%d/%s", parent, name);
      rc = lsetxattr(path, key, value, size, 0);
    }
    if (rc < 0) fail(EXIT_IO, "setxattr %s on %s: %s", key, name, strerror(errno));
  }
}

static void times_of(struct archive_entry *e, struct timespec ts[2]) {
  ts[0].tv_sec = ts[1].tv_sec = archive_entry_mtime(e);
  ts[0].tv_nsec = ts[1].tv_nsec = archive_entry_mtime_nsec(e);
}

static void write_file(struct ctx *c, struct archive_entry *e, int parent, const char *name, uid_t uid, gid_t gid, mode_t mode) {
  remove_existing(c, parent, name, 0);
  int fd = openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) fail(EXIT_IO, "create %s: %s", archive_entry_pathname(e), strerror(errno));
  la_int64_t pos = 0;
  for (;;) {
    const void *buf;
    size_t len;
    la_int64_t off;
    int r = archive_read_data_block(c->a, &buf, &len, &off);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) archive_fail(c);
    if (off != pos && lseek(fd, off, SEEK_SET) < 0) fail(EXIT_IO, "seek %s: %s", name, strerror(errno));
    if (write_all(fd, buf, len) < 0) fail(EXIT_IO, "write %s: %s", archive_entry_pathname(e), strerror(errno));
    pos = off + (la_int64_t)len;
    c->size += len;
  }
  /* a sparse file's hole at the end */
  if (pos < archive_entry_size(e) && ftruncate(fd, archive_entry_size(e)) < 0) fail(EXIT_IO, "truncate %s: %s", name, strerror(errno));
  if (fchown(fd, uid, gid) < 0 || fchmod(fd, mode) < 0) fail(EXIT_IO, "chown/chmod %s: %s", name, strerror(errno));
  set_xattrs(e, fd, parent, name);
  if (archive_entry_mtime_is_set(e)) {
    struct timespec ts[2];
    times_of(e, ts);
    if (futimens(fd, ts) < 0) fail(EXIT_IO, "utimes %s: %s", name, strerror(errno));
  }
  if (close(fd) < 0) fail(EXIT_IO, "close %s: %s", name, strerror(errno));
}

/* Owner, mode (not for symlinks) and times of a new non-file entry parent/name. */
static void set_meta(struct archive_entry *e, int parent, const char *name, uid_t uid, gid_t gid, mode_t mode, int is_link) {
  if (fchownat(parent, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) fail(EXIT_IO, "chown %s: %s", name, strerror(errno));
  /* name was just created here as a device or fifo, not a symlink, so this does not follow one */
  if (!is_link && fchmodat(parent, name, mode, 0) < 0) fail(EXIT_IO, "chmod %s: %s", name, strerror(errno));
  set_xattrs(e, -1, parent, name);
  if (archive_entry_mtime_is_set(e)) {
    struct timespec ts[2];
    times_of(e, ts);
    if (utimensat(parent, name, ts, AT_SYMLINK_NOFOLLOW) < 0) fail(EXIT_IO, "utimes %s: %s", name, strerror(errno));
  }
}

static void hard_link(struct ctx *c, const char *target, const struct path *p, int parent, const char *name) {
  struct path t;
  path_split(target, &t);
  if (t.n == 0) fail(EXIT_UNSAFE, "invalid hard link target: \"%s\"", target);
  int tdir = walk_dirs(c->rootfd, &t, t.n - 1, 0);
  struct stat st;
  if (tdir < 0 || fstatat(tdir, t.comp[t.n - 1], &st, AT_SYMLINK_NOFOLLOW) < 0)
    fail(EXIT_UNSAFE, "hard link target not in the layer: \"%s\"", target);
  if (S_ISDIR(st.st_mode)) fail(EXIT_UNSAFE, "hard link to a directory: \"%s\"", target);
  /* a link to itself would remove its own target first */
  char *rel = path_join(p, p->n), *trel = path_join(&t, t.n);
  int same = !strcmp(rel, trel);
  free(rel);
  free(trel);
  if (!same) {
    remove_existing(c, parent, name, 0);
    /* no AT_SYMLINK_FOLLOW: a symlink target is linked as the symlink itself */
    if (linkat(tdir, t.comp[t.n - 1], parent, name, 0) < 0) fail(EXIT_IO, "link %s: %s", name, strerror(errno));
  }
  close(tdir);
  path_free(&t);
}

/* .wh..wh..opq marks its directory opaque; .wh.<name> hides <name> of the layers below. */
static void whiteout(struct ctx *c, int parent, const char *name, const char *base, uid_t uid, gid_t gid) {
  if (!strcmp(base, ".wh..wh..opq")) {
    if (fsetxattr(parent, "trusted.overlay.opaque", "y", 1, 0) < 0) fail(EXIT_IO, "setxattr trusted.overlay.opaque: %s", strerror(errno));
    return;
  }
  const char *hidden = base + 4;
  if (!strncmp(base, ".wh..wh.", 8)) return; /* other aufs metadata: nothing to do on overlayfs */
  if (!*hidden || !strcmp(hidden, ".") || !strcmp(hidden, "..")) fail(EXIT_UNSAFE, "invalid whiteout: \"%s\"", name);
  remove_existing(c, parent, hidden, 0);
  if (mknodat(parent, hidden, S_IFCHR, makedev(0, 0)) < 0) fail(EXIT_IO, "whiteout %s: %s", hidden, strerror(errno));
  if (fchownat(parent, hidden, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) fail(EXIT_IO, "chown %s: %s", hidden, strerror(errno));
}

static void add_dir_fix(struct ctx *c, const struct path *p, struct archive_entry *e, uid_t uid, gid_t gid, mode_t mode) {
  if (c->ndirs == c->capdirs) {
    c->capdirs = c->capdirs ? c->capdirs * 2 : 64;
    c->dirs = realloc(c->dirs, c->capdirs * sizeof *c->dirs);
    if (!c->dirs) fail(EXIT_IO, "out of memory");
  }
  struct dir_fix *d = &c->dirs[c->ndirs++];
  d->rel = path_join(p, p->n);
  d->mode = mode;
  d->uid = uid;
  d->gid = gid;
  d->has_mtime = archive_entry_mtime_is_set(e);
  d->mtime.tv_sec = archive_entry_mtime(e);
  d->mtime.tv_nsec = archive_entry_mtime_nsec(e);
}

static void make_dir(struct ctx *c, struct archive_entry *e, const struct path *p, int parent, const char *name, uid_t uid, gid_t gid, mode_t mode) {
  if (!remove_existing(c, parent, name, 1) && mkdirat(parent, name, 0700) < 0) fail(EXIT_IO, "mkdir %s: %s", name, strerror(errno));
  if (archive_entry_xattr_count(e) > 0) {
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) fail(EXIT_IO, "open %s: %s", name, strerror(errno));
    set_xattrs(e, fd, parent, name);
    close(fd);
  }
  add_dir_fix(c, p, e, uid, gid, mode);
}

static void entry(struct ctx *c, struct archive_entry *e) {
  const char *name = archive_entry_pathname(e);
  if (!name) fail(EXIT_INVALID, "invalid tar: an entry without a name");
  struct path p;
  path_split(name, &p);
  if (p.n == 0) { path_free(&p); return; } /* "./" itself */
  int parent = parent_of(c, &p);
  const char *base = p.comp[p.n - 1];
  uid_t uid = (uid_t)archive_entry_uid(e);
  gid_t gid = (gid_t)archive_entry_gid(e);
  mode_t mode = archive_entry_perm(e) & 07777;
  const char *link = archive_entry_hardlink(e);
  if (!strncmp(base, ".wh.", 4)) whiteout(c, parent, name, base, uid, gid);
  else if (link) hard_link(c, link, &p, parent, base);
  else switch (archive_entry_filetype(e)) {
    case AE_IFDIR: make_dir(c, e, &p, parent, base, uid, gid, mode); break;
    case AE_IFREG: write_file(c, e, parent, base, uid, gid, mode); break;
    case AE_IFLNK: {
      const char *target = archive_entry_symlink(e);
      remove_existing(c, parent, base, 0);
      if (symlinkat(target ? target : "", parent, base) < 0) fail(EXIT_IO, "symlink %s: %s", name, strerror(errno));
      set_meta(e, parent, base, uid, gid, mode, 1);
      break;
    }
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO: {
      mode_t type = archive_entry_filetype(e);
      remove_existing(c, parent, base, 0);
      dev_t dev = type == AE_IFIFO ? 0 : makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
      if (mknodat(parent, base, type | 0600, dev) < 0) fail(EXIT_IO, "mknod %s: %s", name, strerror(errno));
      set_meta(e, parent, base, uid, gid, mode, 0);
      break;
    }
    default: break; /* sockets and anything else: not unpacked, as the Engine does */
  }
  path_free(&p);
}

static void fix_dirs(struct ctx *c) {
  for (size_t i = c->ndirs; i-- > 0;) {
    struct dir_fix *d = &c->dirs[i];
    struct path p;
    path_split(d->rel, &p);
    int fd = walk_dirs(c->rootfd, &p, p.n, 0);
    path_free(&p);
    /* fd < 0: replaced by a later entry (a file, a symlink): nothing to fix */
    if (fd >= 0) {
      if (fchown(fd, d->uid, d->gid) < 0 || fchmod(fd, d->mode) < 0) fail(EXIT_IO, "chown/chmod %s: %s", d->rel, strerror(errno));
      if (d->has_mtime && futimens(fd, (struct timespec[2]){d->mtime, d->mtime}) < 0) fail(EXIT_IO, "utimes %s: %s", d->rel, strerror(errno));
      close(fd);
    }
    free(d->rel);
  }
  free(c->dirs);
}

uint64_t extract(struct source *src, int rootfd) {
  struct reader r = {.src = src};
  r.first_len = source_next(src, &r.first);
  if (r.first_len == 0) return 0; /* no bytes at all: an empty layer, as the Engine reads it */
  struct ctx c = {.rootfd = rootfd, .cached_fd = -1};
  c.a = archive_read_new();
  if (!c.a) fail(EXIT_IO, "out of memory");
  archive_read_support_format_tar(c.a);
  if (archive_read_open(c.a, &r, NULL, read_cb, NULL) != ARCHIVE_OK) archive_fail(&c);
  struct archive_entry *e;
  for (;;) {
    int r = archive_read_next_header(c.a, &e);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) archive_fail(&c);
    entry(&c, e);
  }
  fix_dirs(&c);
  if (c.cached_fd >= 0) close(c.cached_fd);
  free(c.cached_rel);
  archive_read_free(c.a);
  /* the tar's end may be followed by padding: all of it is part of the diff ID */
  const void *p;
  while (source_next(src, &p) > 0) {}
  return c.size;
}
