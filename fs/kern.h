/* Telling the kernel: the notifications and forced attribute refreshes the event engine
 * uses. Call only from a thread that serves no FUSE request (the control thread), never
 * holding a lock a FUSE handler takes: the kernel may wait for requests on this mount to
 * be answered before a notification returns. */
#ifndef SIGBUSFS_KERN_H
#define SIGBUSFS_KERN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sfs.h"

#define KERN_SIZE_BACKEND SIZESYNC_BACKEND /* kern_sync_size(): the backend's size */

/* Drops cached pages of ino covering [off, off+len) (len 0: to the end; off -1: only the
 * attributes), unmapping them from every process. An inode the kernel does not hold has
 * nothing cached: 0. */
int kern_inval(struct sfs *fs, uint64_t ino, off_t off, off_t len);
/* Makes the kernel learn ino's size: invalidates its attributes and has the selfstat
 * helper stat rel through the mount, until the kernel holds want (or the backend's size);
 * the helper's GETATTR is answered with that size. A shrink this way truncates the page cache,
 * private copies included. 0 or -errno. */
int kern_sync_size(struct sfs *fs, const char *rel, uint64_t ino, uint64_t want);
/* A shrink of ino to size: makes the kernel learn size (truncating its page cache,
 * private copies included) while the backend still holds the old bytes, then calls
 * apply(arg) to change the backend, before any other client is told a size. Returns
 * whether the kernel was told (0 or -errno); apply reports its own outcome, and if it
 * fails the kernel is told the backend's size again. */
int kern_shrink(struct sfs *fs, const char *rel, uint64_t ino, uint64_t size,
		int (*apply)(void *arg), void *arg);
/* Files whose cached pages and size a revocation drops together (kern_zero_sync()). */
#define KERN_ZERO_MAX SIZESYNC_MAX
struct kern_zero {
	size_t n;
	uint64_t inos[KERN_ZERO_MAX];
	uint64_t parents[KERN_ZERO_MAX];
	char *paths[KERN_ZERO_MAX]; /* in the mount (NULL if too long); owned */
	char *names[KERN_ZERO_MAX]; /* the last component of paths[i], or NULL */
	uint64_t listed, stated;    /* files sized by a listing, by a stat: totals */
};
/* Adds the file ino, named rel in directory parent, to z, which has room (n <
 * KERN_ZERO_MAX). 0 or -ENOMEM. */
int kern_zero_add(struct sfs *fs, struct kern_zero *z, const char *rel, uint64_t parent,
		  uint64_t ino);
/* For each file of z: drops its cached pages, then makes the kernel learn size 0 as
 * kern_sync_size(..., 0) does (private copies included): the selfstat helpers list the
 * files' directories, the daemon answering with only those files at size 0
 * (sizesync_offer()), one round trip per directory; the files whose size did not hold
 * then are stat()ed, all in one request. A file whose stat fails (no path, a directory
 * the daemon may not search) keeps only its COWed private pages. 0, -EAGAIN if a size
 * never held, or -errno if the helper could not be reached. */
int kern_zero_sync(struct sfs *fs, struct kern_zero *z);
/* Empties z. */
void kern_zero_reset(struct kern_zero *z);
/* Drops the kernel's cached name parent/name, so the next use looks it up again. */
int kern_inval_entry(struct sfs *fs, uint64_t parent, const char *name);
/* Makes every name the kernel caches on this mount be looked up again at its next use,
 * in one notification (FUSE_NOTIFY_INC_EPOCH, Linux 6.16). 0, or -errno from a kernel
 * without it (-EINVAL) or a session going away. */
int kern_inc_epoch(struct sfs *fs);
/* Puts len bytes at off into ino's page cache; the backend is not touched. */
int kern_store(struct sfs *fs, uint64_t ino, off_t off, const void *buf, size_t len);
/* Copies what the page cache holds of ino from off, up to len bytes, into buf: stops at
 * the first page not cached. Returns the bytes copied, or -errno. */
ssize_t kern_retrieve(struct sfs *fs, uint64_t ino, off_t off, void *buf, size_t len);
/* Cuts the FUSE connection through fusectl, as a crashed daemon would (selfstat_abort()). */
int kern_abort(struct sfs *fs);

/* The FUSE handler for retrieve replies (ll.c puts it in the handler table). */
void ll_retrieve_reply(fuse_req_t req, void *cookie, fuse_ino_t ino, off_t offset,
		       struct fuse_bufvec *bufv);

#endif
