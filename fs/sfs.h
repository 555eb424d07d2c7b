/* The daemon's context: one per mount, reached from every FUSE handler through
 * fuse_req_userdata() and from the control thread through the server's context pointer. */
#ifndef SIGBUSFS_SFS_H
#define SIGBUSFS_SFS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "backend.h"
#include "durable.h"
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

/* The FUSE operations the daemon serves, as stats counts them (ll_count.c). */
enum sfs_op {
	SFS_OP_LOOKUP,
	SFS_OP_FORGET,
	SFS_OP_GETATTR,
	SFS_OP_SETATTR,
	SFS_OP_READLINK,
	SFS_OP_MKNOD,
	SFS_OP_MKDIR,
	SFS_OP_UNLINK,
	SFS_OP_RMDIR,
	SFS_OP_SYMLINK,
	SFS_OP_RENAME,
	SFS_OP_LINK,
	SFS_OP_OPEN,
	SFS_OP_READ,
	SFS_OP_WRITE,
	SFS_OP_RELEASE,
	SFS_OP_FSYNC,
	SFS_OP_OPENDIR,
	SFS_OP_READDIR,
	SFS_OP_RELEASEDIR,
	SFS_OP_FSYNCDIR,
	SFS_OP_STATFS,
	SFS_OP_SETXATTR,
	SFS_OP_GETXATTR,
	SFS_OP_LISTXATTR,
	SFS_OP_REMOVEXATTR,
	SFS_OP_CREATE,
	SFS_OP_FALLOCATE,
	SFS_OP_READDIRPLUS,
	SFS_OP_LSEEK,
	SFS_OP_NR
};
/* "lookup"... by enum sfs_op; forget counts FORGET and BATCH_FORGET requests. */
extern const char *const sfs_op_names[SFS_OP_NR];

/* The notifications the daemon sends the kernel (kern.c). */
enum sfs_notify {
	SFS_N_INVAL_INODE,
	SFS_N_INVAL_ENTRY,
	SFS_N_STORE,
	SFS_N_RETRIEVE,
	SFS_N_INC_EPOCH,
	SFS_N_NR
};
/* "inval_inode"... by enum sfs_notify */
extern const char *const sfs_notify_names[SFS_N_NR];

/* Counters, atomic, taken without a lock. */
struct sfs_stats {
	atomic_uint_fast64_t reads, writes, read_bytes, write_bytes;
	atomic_uint_fast64_t invals, errors, lost_bytes;
	atomic_uint_fast64_t requests[SFS_OP_NR];     /* requests served, by operation */
	atomic_uint_fast64_t op_errors[SFS_OP_NR];    /* of those, answered with an error */
	atomic_uint_fast64_t notifications[SFS_N_NR]; /* sent, whatever the kernel answered */
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
	struct durable *durable;    /* -o powercut: what is durable (durable.h); else NULL */
	struct trigger *trigger;    /* trigger.h's thread, started by the first trigger */
	/* the open files' handles (ll_file.c): those still open when the session ends are
	 * released then */
	pthread_mutex_t handles_lock;
	struct ll_handle *handles;
};

/* Opens the backend and everything the mount needs, from validated options. 0 or -errno
 * (a source the backend refused has been logged). sfs_destroy() undoes what was done. */
int sfs_init(struct sfs *fs, const struct opts *o);
void sfs_destroy(struct sfs *fs);

#endif
