/* open(O_TMPFILE): libfuse 3.14 has no handler slot for the kernel's FUSE_TMPFILE request
 * and answers it ENOSYS, after which the kernel fails every O_TMPFILE open with
 * EOPNOTSUPP. tmpfile.c serves that one request itself, below libfuse. */
#ifndef SIGBUSFS_TMPFILE_H
#define SIGBUSFS_TMPFILE_H

#include "sfs.h"

/* Installs device I/O hooks on fs->se (fuse_session_custom_io()) that answer FUSE_TMPFILE
 * as CREATE is answered, with a nameless file (create_file(), ll.h), and pass every other
 * request to libfuse unchanged. Call after fuse_session_mount(), before the loop: the
 * hooks take the place of libfuse's read(2) and writev(2) of /dev/fuse for good (they
 * are freed with the session). 0 or -errno. */
int tmpfile_install(struct sfs *fs);

#endif
