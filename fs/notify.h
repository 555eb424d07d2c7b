/* The page invalidation that kern_inval() sends, behind a seam with two implementations:
 * notify.c, linked into sigbusfs, asks libfuse; notify_planted.c, linked only into the
 * test-only sigbusfs-planted, plants a coherence bug (it skips the Nth page invalidation,
 * -o planted_skip_inval=N) that the stress oracle must catch (tests/stress). */
#ifndef SIGBUSFS_NOTIFY_H
#define SIGBUSFS_NOTIFY_H

#include <stdint.h>
#include <sys/types.h>

#include <fuse_lowlevel.h>

struct notify;

/* Takes the implementation's own options out of args, before fuse_session_new() sees
 * them (notify.c has none), and allocates its state: *out, NULL when it needs none. 0,
 * or -EINVAL after printing why on stderr, or -ENOMEM. Call from main(). */
int notify_new(struct fuse_args *args, struct notify **out);
void notify_free(struct notify *n);

/* fuse_lowlevel_notify_inval_inode(se, ino, off, len), as kern_inval() documents it; the
 * planted build may skip it and return 0. Thread-safe. */
int notify_inval_inode(struct notify *n, struct fuse_session *se, uint64_t ino, off_t off,
		       off_t len);

#endif
