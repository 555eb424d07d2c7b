/* write --from FILE: the bytes of a local file, read by the daemon on the control thread,
 * which must never walk into its own mount (selfstat.h's design note says why a daemon
 * thread blocked in its own mount can hang every client). */
#ifndef SIGBUSFS_FROMFILE_H
#define SIGBUSFS_FROMFILE_H

#include <stddef.h>
#include <stdint.h>

#define FROMFILE_MAX (256u << 20) /* bytes a write --from may carry */

/* Reads the local file at path (absolute) into *out (malloc'ed, the caller frees it) and
 * its length into *len_out: len bytes exactly when len > 0, else the whole file, which must
 * then be a regular file (a pipe or a device has no end to read to). path is walked one
 * component at a time, following symlinks by hand, and refused as soon as a step lands on
 * the file system mounted at mountpoint (even on the way to somewhere else, "MNT/../x") (its
 * device, as statx AT_STATX_DONT_SYNC tells it without asking the FUSE server), so no lookup or
 * read ever reaches that mount. 0, or -errno with a one-line message naming path in err: -EXDEV
 * inside the mount, -EINVAL for a file that is not regular without len, -EFBIG past FROMFILE_MAX,
 * -ENODATA for a file that ends before len bytes, -ELOOP, or what open, read or readlink said. */
int fromfile_read(const char *path, const char *mountpoint, uint64_t len, uint8_t **out,
		  size_t *len_out, char *err, size_t errsize);

#endif
