/* What every handler shares: the reply helpers, session setup (init) and the table of
 * handlers handed to libfuse. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "inode.h"
#include "kern.h"
#include "ll.h"
#include "log.h"

void reply_err(fuse_req_t req, int rc)
{
	fuse_reply_err(req, -rc);
}

void attr_to_stat(const struct bk_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_rdev = a->rdev;
	st->st_size = (off_t)a->size;
	st->st_blocks = (blkcnt_t)a->blocks;
	st->st_blksize = 4096;
	st->st_atim = a->atime;
	st->st_mtim = a->mtime;
	st->st_ctim = a->ctime;
}

void fill_entry(struct sfs *fs, const struct bk_attr *a, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = a->ino;
	e->generation = inode_gen(fs->itab, a->ino);
	e->attr_timeout = fs->timeout;
	e->entry_timeout = fs->timeout;
	attr_to_stat(a, &e->attr);
}

void reply_entry(fuse_req_t req, const struct bk_attr *a)
{
	struct sfs *fs = ll_fs(req);
	struct fuse_entry_param e;
	int rc;

	fill_entry(fs, a, &e);
	rc = inode_ref(fs->itab, a->ino);
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	if (fuse_reply_entry(req, &e) != 0 && inode_forget(fs->itab, a->ino, 1) == 0)
		bk_forget(fs->bk, a->ino);
}

void reply_attr(fuse_req_t req, const struct bk_attr *a, double timeout)
{
	struct stat st;

	attr_to_stat(a, &st);
	fuse_reply_attr(req, &st, timeout);
}

/* The kernel has already applied the umask and stripped S_ISGID where the caller may not
 * set it; what FUSE leaves to the server is the owner and setgid-directory inheritance. */
int new_inode(fuse_req_t req, fuse_ino_t parent, mode_t mode, dev_t rdev, struct bk_new *out)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct bk_attr dir;
	int rc;

	rc = bk_getattr(ll_fs(req)->bk, parent, &dir);
	if (rc < 0)
		return rc;
	out->mode = mode;
	out->rdev = rdev;
	out->uid = ctx->uid;
	out->gid = ctx->gid;
	if (dir.mode & S_ISGID) {
		out->gid = dir.gid;
		if (S_ISDIR(mode))
			out->mode |= S_ISGID;
	}
	return 0;
}

/* cache=strict: the kernel changes its view of a file only when told. No automatic
 * invalidation on mtime change, no whole-file drop on size change (only the pages past
 * the new end go), and no writeback cache, which would make the kernel ignore the
 * server's size. Killing setuid bits is left to the kernel, which then sends SETATTR. */
void ll_init(void *userdata, struct fuse_conn_info *conn)
{
	struct sfs *fs = userdata;

	/* the kernel caps the bdi's readahead, set by serve(), to what INIT answers */
	if (fs->readahead_kb)
		conn->max_readahead = fs->readahead_kb * 1024;
	conn->want &= ~(unsigned)FUSE_CAP_HANDLE_KILLPRIV;
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	if (fs->cache_mode != CACHE_STRICT)
		return;
	conn->want &= ~(unsigned)FUSE_CAP_AUTO_INVAL_DATA;
	if (conn->capable & FUSE_CAP_EXPLICIT_INVAL_DATA)
		conn->want |= FUSE_CAP_EXPLICIT_INVAL_DATA;
}

const struct fuse_lowlevel_ops sfs_ll_ops = {
	.init = ll_init,
	.lookup = ll_lookup,
	.forget = ll_forget,
	.forget_multi = ll_forget_multi,
	.getattr = ll_getattr,
	.setattr = ll_setattr,
	.readlink = ll_readlink,
	.mknod = ll_mknod,
	.mkdir = ll_mkdir,
	.unlink = ll_unlink,
	.rmdir = ll_rmdir,
	.symlink = ll_symlink,
	.rename = ll_rename,
	.link = ll_link,
	.open = ll_open,
	.read = ll_read,
	.write = ll_write,
	.release = ll_release,
	.fsync = ll_fsync,
	.opendir = ll_opendir,
	.readdir = ll_readdir,
	.releasedir = ll_releasedir,
	.fsyncdir = ll_fsyncdir,
	.statfs = ll_statfs,
	.setxattr = ll_setxattr,
	.getxattr = ll_getxattr,
	.listxattr = ll_listxattr,
	.removexattr = ll_removexattr,
	.create = ll_create,
	.fallocate = ll_fallocate,
	.readdirplus = ll_readdirplus,
	.lseek = ll_lseek,
	.retrieve_reply = ll_retrieve_reply,
};
