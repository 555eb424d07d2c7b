/* What every handler shares: the reply helpers and session setup (init). The table of
 * handlers handed to libfuse is ll_count.c's. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "inode.h"
#include "kern.h"
#include "ll.h"
#include "log.h"

void reply_err(fuse_req_t req, int rc)
{
	if (rc < 0)
		ll_count_error(req);
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
	/* the backend's generation of the number above the daemon's own revivals */
	e->generation = (a->gen << 32) + (inode_gen(fs->itab, a->ino) & UINT32_MAX);
	e->attr_timeout = fs->timeout;
	e->entry_timeout = fs->timeout;
	attr_to_stat(a, &e->attr);
}

void reply_entry(fuse_req_t req, uint64_t parent, const char *name, const struct bk_attr *a)
{
	struct sfs *fs = ll_fs(req);
	struct fuse_entry_param e;
	int rc;

	fill_entry(fs, a, &e);
	rc = inode_ref_named(fs->itab, a->ino, parent, name);
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	if (fuse_reply_entry(req, &e) != 0)
		forget_inode(fs, a->ino, 1);
}

void forget_inode(struct sfs *fs, uint64_t ino, uint64_t n)
{
	if (inode_forget(fs->itab, ino, n) == 0)
		bk_forget(fs->bk, ino);
}

void reply_attr(fuse_req_t req, const struct bk_attr *a, double timeout)
{
	struct stat st;

	attr_to_stat(a, &st);
	fuse_reply_attr(req, &st, timeout);
}

/* The kernel has already applied the umask and stripped S_ISGID where the caller may not
 * set it; what FUSE leaves to the server is the owner and setgid-directory inheritance. */
int new_inode_as(struct sfs *fs, const struct fuse_ctx *ctx, fuse_ino_t parent, mode_t mode,
		 dev_t rdev, struct bk_new *out)
{
	struct bk_attr dir;
	int rc;

	rc = bk_getattr(fs->bk, parent, &dir);
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

int new_inode(fuse_req_t req, fuse_ino_t parent, mode_t mode, dev_t rdev, struct bk_new *out)
{
	return new_inode_as(ll_fs(req), fuse_req_ctx(req), parent, mode, rdev, out);
}

/* Splicing where the backend can; cache=strict: the kernel changes its view of a file only when
 * told. No automatic invalidation on mtime change, no whole-file drop on size change (only the
 * pages past the new end go), and no writeback cache, which would make the kernel ignore the
 * server's size. Killing setuid bits is left to the kernel, which then sends SETATTR. */
void ll_init(void *userdata, struct fuse_conn_info *conn)
{
	struct sfs *fs = userdata;

	/* the kernel caps the bdi's readahead, set by serve(), to what INIT answers */
	if (fs->readahead_kb)
		conn->max_readahead = fs->readahead_kb * 1024;
	conn->want &= ~(unsigned)FUSE_CAP_HANDLE_KILLPRIV;
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	/* a backend that reads from descriptors has its READ replies spliced from them */
	if (bk_has_read_fd(fs->bk)) {
		conn->max_read = OPTS_SPLICE_READ_MAX; /* as the mount option says (opts.c) */
		if (conn->capable & FUSE_CAP_SPLICE_WRITE)
			conn->want |= FUSE_CAP_SPLICE_WRITE;
	}
	if (fs->cache_mode != CACHE_STRICT)
		return;
	conn->want &= ~(unsigned)FUSE_CAP_AUTO_INVAL_DATA;
	if (conn->capable & FUSE_CAP_EXPLICIT_INVAL_DATA)
		conn->want |= FUSE_CAP_EXPLICIT_INVAL_DATA;
}
