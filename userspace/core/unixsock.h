/* unixsock.h - unix socket paths that one daemon owns: never take over a live one, and
 * on exit remove only the socket this process created. */
#ifndef EG_UNIXSOCK_H
#define EG_UNIXSOCK_H

#include <sys/types.h>

/* Before bind(): -1 with errno EADDRINUSE when a server answers on path (another
 * daemon); a stale socket left by a dead one is removed. 0 when path is free. */
int eg_unix_claim(const char *path);
/* After bind(): the socket file's inode (0 if it cannot be read). */
ino_t eg_unix_inode(const char *path);
/* Unlinks path only while it is still the socket with that inode. */
void eg_unix_release(const char *path, ino_t ino);

#endif
