/* The daemon's context: one per mount, reached from every FUSE handler through
 * fuse_req_userdata() and from the control thread through the server's context pointer. */
#ifndef SIGBUSFS_SFS_H
#define SIGBUSFS_SFS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "backend.h"
#include "evlog.h"
#include "inode.h"
#include "opts.h"
#include "rules.h"
#include "selfstat.h"
#include "sizesync.h"

enum plug_state {
	PLUG_ON,
	PLUG_GOING,   /* unplug in progress: every file is being revoked */
	PLUG_OFF,     /* unplugged: everything fails with EIO */
	PLUG_VANISHED /* unplugged with --vanish: names are gone (ENOENT) */
};

struct sfs_stats {
	atomic_uint_fast64_t reads, writes, read_bytes, write_bytes;
	atomic_uint_fast64_t invals, errors, lost_bytes;
};

struct sfs {
	struct bk *bk;
	struct itab *itab;
	struct rules *rules;
	struct evlog *evlog;
	struct fuse_session *se;
	const char *source; /* SOURCE as given */
	char *mountpoint;   /* absolute */
	char *ctl_path;	    /* the control socket */
	enum cache_mode cache_mode;
	double timeout;			   /* attribute and entry timeout, seconds */
	unsigned readahead_kb;		   /* -o readahead=, 0 for the kernel's */
	uint64_t page_size;		   /* bytes: the kernel's, from sysconf() at init */
	atomic_int plug;		   /* enum plug_state */
	atomic_uint_fast64_t unplugged_at; /* event seq of the last unplug, 0 if none */
	struct sfs_stats stats;
	pthread_mutex_t event_lock; /* serialises events that change files */
	struct sizesync sizesync;   /* kern_sync_size()'s GETATTR goes first */
	struct selfstat *self;	    /* the processes that stat the mount for us */
	bool aborted;		    /* the connection was cut: leave the mount as it is */
	struct notify *notify;	    /* notify.h's state, set by main() */
};

/* Opens the backend and everything the mount needs, from validated options. 0 or -errno
 * (a source the backend refused has been logged). sfs_destroy() undoes what was done. */
int sfs_init(struct sfs *fs, const struct opts *o);
void sfs_destroy(struct sfs *fs);

#endif
