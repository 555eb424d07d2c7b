/* The table of handlers handed to libfuse, each behind a wrapper that counts its requests
 * by operation for stats; reply_err() counts the error replies of the request that the
 * calling thread serves. Counters are atomics: no lock on the I/O path. */
#include <stdatomic.h>

#include "kern.h"
#include "ll.h"

/* The operation the calling thread is serving, SFS_OP_NR outside a handler: a handler
 * replies on its own thread, before it returns. */
static __thread enum sfs_op serving = SFS_OP_NR;

static void begin(fuse_req_t req, enum sfs_op op)
{
	atomic_fetch_add_explicit(&ll_fs(req)->stats.requests[op], 1, memory_order_relaxed);
	serving = op;
}

static void end(void)
{
	serving = SFS_OP_NR;
}

void ll_count_error(fuse_req_t req)
{
	if (serving < SFS_OP_NR)
		atomic_fetch_add_explicit(&ll_fs(req)->stats.op_errors[serving], 1,
					  memory_order_relaxed);
}

/* counted_NAME(PARAMS) counts op SFS_OP_x, then calls ll_NAME(ARGS). */
#define COUNTED(name, op, params, ...)    \
	static void counted_##name params \
	{                                 \
		begin(req, op);           \
		ll_##name(__VA_ARGS__);   \
		end();                    \
	}

COUNTED(lookup, SFS_OP_LOOKUP, (fuse_req_t req, fuse_ino_t p, const char *n), req, p, n)
COUNTED(forget, SFS_OP_FORGET, (fuse_req_t req, fuse_ino_t i, uint64_t n), req, i, n)
COUNTED(forget_multi, SFS_OP_FORGET, (fuse_req_t req, size_t n, struct fuse_forget_data *f), req, n,
	f)
COUNTED(getattr, SFS_OP_GETATTR, (fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi), req, i,
	fi)
COUNTED(setattr, SFS_OP_SETATTR,
	(fuse_req_t req, fuse_ino_t i, struct stat *a, int s, struct fuse_file_info *fi), req, i, a,
	s, fi)
COUNTED(readlink, SFS_OP_READLINK, (fuse_req_t req, fuse_ino_t i), req, i)
COUNTED(mknod, SFS_OP_MKNOD, (fuse_req_t req, fuse_ino_t p, const char *n, mode_t m, dev_t d), req,
	p, n, m, d)
COUNTED(mkdir, SFS_OP_MKDIR, (fuse_req_t req, fuse_ino_t p, const char *n, mode_t m), req, p, n, m)
COUNTED(unlink, SFS_OP_UNLINK, (fuse_req_t req, fuse_ino_t p, const char *n), req, p, n)
COUNTED(rmdir, SFS_OP_RMDIR, (fuse_req_t req, fuse_ino_t p, const char *n), req, p, n)
COUNTED(symlink, SFS_OP_SYMLINK, (fuse_req_t req, const char *l, fuse_ino_t p, const char *n), req,
	l, p, n)
COUNTED(rename, SFS_OP_RENAME,
	(fuse_req_t req, fuse_ino_t p, const char *n, fuse_ino_t np, const char *nn,
	 unsigned int f),
	req, p, n, np, nn, f)
COUNTED(link, SFS_OP_LINK, (fuse_req_t req, fuse_ino_t i, fuse_ino_t np, const char *nn), req, i,
	np, nn)
COUNTED(open, SFS_OP_OPEN, (fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi), req, i, fi)
COUNTED(read, SFS_OP_READ,
	(fuse_req_t req, fuse_ino_t i, size_t s, off_t o, struct fuse_file_info *fi), req, i, s, o,
	fi)
COUNTED(write, SFS_OP_WRITE,
	(fuse_req_t req, fuse_ino_t i, const char *b, size_t s, off_t o, struct fuse_file_info *fi),
	req, i, b, s, o, fi)
COUNTED(release, SFS_OP_RELEASE, (fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi), req, i,
	fi)
COUNTED(fsync, SFS_OP_FSYNC, (fuse_req_t req, fuse_ino_t i, int d, struct fuse_file_info *fi), req,
	i, d, fi)
COUNTED(opendir, SFS_OP_OPENDIR, (fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi), req, i,
	fi)
COUNTED(readdir, SFS_OP_READDIR,
	(fuse_req_t req, fuse_ino_t i, size_t s, off_t o, struct fuse_file_info *fi), req, i, s, o,
	fi)
COUNTED(releasedir, SFS_OP_RELEASEDIR, (fuse_req_t req, fuse_ino_t i, struct fuse_file_info *fi),
	req, i, fi)
COUNTED(fsyncdir, SFS_OP_FSYNCDIR, (fuse_req_t req, fuse_ino_t i, int d, struct fuse_file_info *fi),
	req, i, d, fi)
COUNTED(statfs, SFS_OP_STATFS, (fuse_req_t req, fuse_ino_t i), req, i)
COUNTED(setxattr, SFS_OP_SETXATTR,
	(fuse_req_t req, fuse_ino_t i, const char *n, const char *v, size_t s, int f), req, i, n, v,
	s, f)
COUNTED(getxattr, SFS_OP_GETXATTR, (fuse_req_t req, fuse_ino_t i, const char *n, size_t s), req, i,
	n, s)
COUNTED(listxattr, SFS_OP_LISTXATTR, (fuse_req_t req, fuse_ino_t i, size_t s), req, i, s)
COUNTED(removexattr, SFS_OP_REMOVEXATTR, (fuse_req_t req, fuse_ino_t i, const char *n), req, i, n)
COUNTED(create, SFS_OP_CREATE,
	(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m, struct fuse_file_info *fi), req, p,
	n, m, fi)
COUNTED(fallocate, SFS_OP_FALLOCATE,
	(fuse_req_t req, fuse_ino_t i, int m, off_t o, off_t l, struct fuse_file_info *fi), req, i,
	m, o, l, fi)
COUNTED(readdirplus, SFS_OP_READDIRPLUS,
	(fuse_req_t req, fuse_ino_t i, size_t s, off_t o, struct fuse_file_info *fi), req, i, s, o,
	fi)
COUNTED(lseek, SFS_OP_LSEEK,
	(fuse_req_t req, fuse_ino_t i, off_t o, int w, struct fuse_file_info *fi), req, i, o, w, fi)

const struct fuse_lowlevel_ops sfs_ll_ops = {
	.init = ll_init,
	.destroy = ll_destroy,
	.lookup = counted_lookup,
	.forget = counted_forget,
	.forget_multi = counted_forget_multi,
	.getattr = counted_getattr,
	.setattr = counted_setattr,
	.readlink = counted_readlink,
	.mknod = counted_mknod,
	.mkdir = counted_mkdir,
	.unlink = counted_unlink,
	.rmdir = counted_rmdir,
	.symlink = counted_symlink,
	.rename = counted_rename,
	.link = counted_link,
	.open = counted_open,
	.read = counted_read,
	.write = counted_write,
	.release = counted_release,
	.fsync = counted_fsync,
	.opendir = counted_opendir,
	.readdir = counted_readdir,
	.releasedir = counted_releasedir,
	.fsyncdir = counted_fsyncdir,
	.statfs = counted_statfs,
	.setxattr = counted_setxattr,
	.getxattr = counted_getxattr,
	.listxattr = counted_listxattr,
	.removexattr = counted_removexattr,
	.create = counted_create,
	.fallocate = counted_fallocate,
	.readdirplus = counted_readdirplus,
	.lseek = counted_lseek,
	.retrieve_reply = ll_retrieve_reply, /* a reply to our notification */
};
