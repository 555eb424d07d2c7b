/* The lifecycle of the per-mount context. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

#include "log.h"
#include "notify.h"
#include "sfs.h"
#include "trigger.h"

#define STRICT_TIMEOUT 86400.0 /* seconds: the kernel's view changes only on events */

const char *const sfs_op_names[SFS_OP_NR] = {
	[SFS_OP_LOOKUP] = "lookup",
	[SFS_OP_FORGET] = "forget",
	[SFS_OP_GETATTR] = "getattr",
	[SFS_OP_SETATTR] = "setattr",
	[SFS_OP_READLINK] = "readlink",
	[SFS_OP_MKNOD] = "mknod",
	[SFS_OP_MKDIR] = "mkdir",
	[SFS_OP_UNLINK] = "unlink",
	[SFS_OP_RMDIR] = "rmdir",
	[SFS_OP_SYMLINK] = "symlink",
	[SFS_OP_RENAME] = "rename",
	[SFS_OP_LINK] = "link",
	[SFS_OP_OPEN] = "open",
	[SFS_OP_READ] = "read",
	[SFS_OP_WRITE] = "write",
	[SFS_OP_RELEASE] = "release",
	[SFS_OP_FSYNC] = "fsync",
	[SFS_OP_OPENDIR] = "opendir",
	[SFS_OP_READDIR] = "readdir",
	[SFS_OP_RELEASEDIR] = "releasedir",
	[SFS_OP_FSYNCDIR] = "fsyncdir",
	[SFS_OP_STATFS] = "statfs",
	[SFS_OP_SETXATTR] = "setxattr",
	[SFS_OP_GETXATTR] = "getxattr",
	[SFS_OP_LISTXATTR] = "listxattr",
	[SFS_OP_REMOVEXATTR] = "removexattr",
	[SFS_OP_CREATE] = "create",
	[SFS_OP_FALLOCATE] = "fallocate",
	[SFS_OP_READDIRPLUS] = "readdirplus",
	[SFS_OP_LSEEK] = "lseek",
};

const char *const sfs_notify_names[SFS_N_NR] = {
	[SFS_N_INVAL_INODE] = "inval_inode",
	[SFS_N_INVAL_ENTRY] = "inval_entry",
	[SFS_N_STORE] = "store",
	[SFS_N_RETRIEVE] = "retrieve",
	[SFS_N_INC_EPOCH] = "inc_epoch",
};
#define EVLOG_CAPACITY 4096

static const double cache_timeouts[] = {
	[CACHE_STRICT] = STRICT_TIMEOUT,
	[CACHE_AUTO] = 1.0,
	[CACHE_NONE] = 0.0,
};

/* The backend's messages go to the daemon's log. */
static void log_backend(void *ctx, enum bk_log_level level, const char *msg)
{
	static const enum log_level levels[] = {
		[BK_LOG_ERR] = LOG_LVL_ERR,
		[BK_LOG_WARN] = LOG_LVL_WARN,
		[BK_LOG_INFO] = LOG_LVL_INFO,
		[BK_LOG_DEBUG] = LOG_LVL_DEBUG,
	};

	log_msg(levels[level], "%s", msg);
}

/* The backend made the root directory; its owner and mode are the mount's (opts.h), or
 * with BK_F_FOREIGN_ROOT only those the options give. Set through the ordinary setattr
 * slot, so that backends need not know mount options. */
static int root_attr(struct bk *b, const struct opts *o)
{
	const bool all = !(b->ops->flags & BK_F_FOREIGN_ROOT);
	const struct bk_setattr s = {
		.valid = (all || o->mode ? BK_SET_MODE : 0) | (all || o->uid ? BK_SET_UID : 0) |
			 (all || o->gid ? BK_SET_GID : 0),
		.mode = o->root_mode,
		.uid = o->root_uid,
		.gid = o->root_gid,
	};
	struct bk_attr a;

	return bk_setattr(b, BK_ROOT_INO, &s, &a);
}

int sfs_init(struct sfs *fs, const struct opts *o)
{
	const struct bk_log bk_log = { .fn = log_backend };
	int rc;

	memset(fs, 0, sizeof(*fs));
	pthread_mutex_init(&fs->event_lock, NULL);
	pthread_mutex_init(&fs->handles_lock, NULL);
	sizesync_init(&fs->sizesync, !o->cmd.singlethread);
	fs->source = o->source;
	fs->cache_mode = o->cache_mode;
	fs->timeout = cache_timeouts[o->cache_mode];
	fs->readahead_kb = o->readahead_kb;
	fs->page_size = (uint64_t)sysconf(_SC_PAGESIZE);
	fs->mountpoint = realpath(o->cmd.mountpoint, NULL);
	if (!fs->mountpoint)
		return -errno;
	rc = bk_open(o->src.ops, &o->src.bk, &bk_log, &fs->bk);
	if (rc == 0)
		rc = root_attr(fs->bk, o);
	if (rc == 0)
		rc = itab_new(&fs->itab);
	if (rc == 0)
		rc = rules_new(&fs->rules);
	if (rc == 0)
		rc = evlog_new(EVLOG_CAPACITY, &fs->evlog);
	if (rc == 0 && o->powercut)
		rc = durable_new(fs->page_size, &fs->durable);
	return rc;
}

void sfs_destroy(struct sfs *fs)
{
	trigger_stop(fs);
	if (fs->se)
		fuse_session_destroy(fs->se);
	durable_free(fs->durable);
	evlog_free(fs->evlog);
	rules_free(fs->rules);
	itab_free(fs->itab);
	if (fs->bk)
		bk_close(fs->bk);
	free(fs->mountpoint);
	free(fs->ctl_path);
	notify_free(fs->notify);
	pthread_mutex_destroy(&fs->event_lock);
	pthread_mutex_destroy(&fs->handles_lock);
	sizesync_destroy(&fs->sizesync);
}
