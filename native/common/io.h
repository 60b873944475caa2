/* I/O helpers shared by the native binaries. */
#ifndef BERTH_IO_H
#define BERTH_IO_H

#include <stddef.h>

/* Writes all of buf, retrying short writes and EINTR; 0, or -1 with errno. */
int write_all(int fd, const void *buf, size_t len);

#endif
