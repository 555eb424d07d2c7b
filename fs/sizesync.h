/* Making the daemon's own GETATTR the one that tells the kernel a new size. The kernel
 * applies only the newest attribute reply, and truncates its page cache (private copies
 * included) in the thread whose reply it applied. If a client's GETATTR won that race,
 * the daemon's stat() would return while the client's thread was still truncating, and a
 * COWed page past the new end of file could be read after the command returned. So while
 * a size is being forced for an inode, other GETATTRs and LOOKUPs of that inode wait (a
 * bounded time) before they are answered, and the requests of the processes that force it
 * (the selfstat helpers, selfstat.h) may be answered with a size the backend does not have
 * yet (kern_shrink()). Not with a single-threaded session (-s): the one worker would hold
 * the request the daemon's own waits behind. */
#ifndef SIGBUSFS_SIZESYNC_H
#define SIGBUSFS_SIZESYNC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SIZESYNC_MAX	  1024 /* inodes synced at once */
#define SIZESYNC_PIDS_MAX 8    /* processes that stat for a sync */

struct sizesync {
	bool is_on;
	atomic_size_t n;	       /* inodes being synced, 0 if none */
	uint64_t inos[SIZESYNC_MAX];   /* guarded by lock: those n, sorted */
	pid_t pids[SIZESYNC_PIDS_MAX]; /* guarded by lock: whose requests pass */
	size_t npids;		       /* guarded by lock */
	uint64_t size;		       /* what they report, or SIZESYNC_BACKEND */
	struct sizesync_name {
		uint64_t ino, parent;
		const char *name; /* the caller's, until sizesync_end() */
		pid_t lister;	  /* the syncer whose listing holds it */
		bool is_listed;
	} names[SIZESYNC_MAX]; /* guarded by lock: what the syncers' listings hold */
	size_t nnames;	       /* guarded by lock: 0 if the syncers only stat */
	pthread_mutex_t lock;
	pthread_cond_t done;
};

/* is_on false: sizesync_wait() never waits (a single-threaded session). */
void sizesync_init(struct sizesync *s, bool is_on);
void sizesync_destroy(struct sizesync *s);
#define SIZESYNC_BACKEND UINT64_MAX

/* Starts (ends) forcing the size of the n inodes inos (n <= SIZESYNC_MAX; more are not
 * held) into the kernel: size, or the backend's (SIZESYNC_BACKEND), through requests of
 * the npids single-threaded processes pids (npids <= SIZESYNC_PIDS_MAX; the pid of such a
 * process is its thread's ID, which the kernel puts in requests). One sync at a time:
 * events are serialised by the caller. */
void sizesync_begin(struct sizesync *s, const uint64_t *inos, size_t n, uint64_t size,
		    const pid_t *pids, size_t npids);
void sizesync_end(struct sizesync *s);
/* Hands the syncers' directory listings the names of n files of the sync begun (n <=
 * SIZESYNC_MAX): inos[i] is parents[i]/names[i] (NULL: not listed), for the listing of
 * the syncer listers[i]; the names stay the caller's until sizesync_end(). A readdirplus
 * reply carries each entry's attributes, and the kernel applies them to the inode it
 * holds as a GETATTR reply's, truncating the page cache (private copies included): one
 * listing tells it the size of all the files of a directory in one round trip. */
void sizesync_offer(struct sizesync *s, const uint64_t *inos, const uint64_t *parents,
		    char *const *names, const pid_t *listers, size_t n);
/* In a listing handler of directory dir, for the process pid: false, unless pid is a syncer
 * of a sync that offered names; then the listing holds only the sync's files of dir for
 * pid not listed yet: emit(ctx, ino, name) for each (when plus; a plain listing is empty)
 * until emit returns nonzero (the reply is full: that file stays unlisted), and true. */
bool sizesync_list(struct sizesync *s, pid_t pid, uint64_t dir, bool plus,
		   int (*emit)(void *ctx, uint64_t ino, const char *name), void *ctx);
/* In a FUSE handler, before answering with ino's attributes to the thread pid: waits
 * while other processes sync ino's size, at most SIZESYNC_HOLD_MS. Returns the size the
 * answer must carry: the sync's, to one of its processes, or SIZESYNC_BACKEND. */
uint64_t sizesync_wait(struct sizesync *s, uint64_t ino, pid_t pid);

#endif
