/* Handlers for open regular files: open and create (whose core tmpfile.c shares), data
 * I/O, sync, fallocate and lseek.
 * The cache mode decides what an open tells the kernel about its cached pages. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gate.h"
#include "inode.h"
#include "ll.h"

/* Makes fi's handle: the gate's epoch and the backend's handle. 0 or -errno. */
static int handle_open(struct sfs *fs, uint64_t ino, struct fuse_file_info *fi)
{
	struct ll_handle *h = malloc(sizeof(*h));
	int rc = h ? bk_fopen(fs->bk, ino, fi->flags, &h->bk_fh) : -ENOMEM;

	if (rc < 0) {
		free(h);
		return rc;
	}
	h->epoch = gate_handle(fs);
	fi->fh = (uintptr_t)h;
	fi->keep_cache = fs->cache_mode == CACHE_STRICT;
	fi->direct_io = fs->cache_mode == CACHE_NONE;
	return 0;
}

/* Ends fi's handle, in the backend too. */
static void handle_close(struct sfs *fs, uint64_t ino, struct fuse_file_info *fi)
{
	struct ll_handle *h = (struct ll_handle *)(uintptr_t)fi->fh;

	bk_frelease(fs->bk, ino, h->bk_fh);
	free(h);
	fi->fh = 0;
}

/* open(O_TRUNC) and ftruncate() leave the new mtime to the server (the kernel sends it
 * only for truncate(2) and utimes), and POSIX wants it updated even at the same size. */
static int truncate_open(struct sfs *fs, uint64_t ino)
{
	struct bk_setattr s = { .valid = BK_SET_SIZE | BK_SET_MTIME_NOW, .size = 0 };
	struct bk_attr a;
	int rc = fs->durable ? durable_before_change(fs->durable, fs->bk, ino, 0, UINT64_MAX) : 0;

	return rc < 0 ? rc : bk_setattr(fs->bk, ino, &s, &a);
}

void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct sfs *fs = ll_fs(req);
	int rc = gate(fs, ino, GATE_OPEN, GATE_NO_HANDLE, 0, 0);

	if (rc == 0 && (fi->flags & O_TRUNC))
		rc = truncate_open(fs, ino);
	if (rc == 0)
		rc = handle_open(fs, ino, fi);
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	if (fuse_reply_open(req, fi) != 0)
		handle_close(fs, ino, fi);
}

/* A new regular file in parent named name, or nameless if name is NULL. */
static int make_file(struct sfs *fs, const struct fuse_ctx *ctx, fuse_ino_t parent,
		     const char *name, mode_t mode, struct bk_attr *out)
{
	struct bk_new n;
	int rc = new_inode_as(fs, ctx, parent, S_IFREG | (mode & 07777), 0, &n);

	if (rc < 0)
		return rc;
	return name ? bk_mknod(fs->bk, parent, name, &n, out) : bk_tmpfile(fs->bk, parent, &n, out);
}

int create_file(struct sfs *fs, const struct fuse_ctx *ctx, fuse_ino_t parent, const char *name,
		mode_t mode, struct fuse_file_info *fi, struct fuse_entry_param *e)
{
	struct bk_attr a;
	int rc = gate(fs, parent, GATE_META, GATE_NO_HANDLE, 0, 0);

	if (rc == 0)
		rc = make_file(fs, ctx, parent, name, mode, &a);
	if (rc < 0)
		return rc;
	rc = inode_ref(fs->itab, a.ino);
	if (rc < 0)
		goto out_forget;
	fill_entry(fs, &a, e);
	rc = handle_open(fs, a.ino, fi);
	if (rc == 0)
		return 0;
	forget_inode(fs, a.ino, 1);
	return rc;

out_forget:
	/* no FORGET will ever come for a nameless file the kernel never got */
	if (!name)
		bk_forget(fs->bk, a.ino);
	return rc;
}

void create_undo(struct sfs *fs, uint64_t ino, struct fuse_file_info *fi)
{
	handle_close(fs, ino, fi);
	forget_inode(fs, ino, 1);
}

void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi)
{
	struct sfs *fs = ll_fs(req);
	struct fuse_entry_param e;
	int rc = create_file(fs, fuse_req_ctx(req), parent, name, mode, fi, &e);

	if (rc < 0)
		reply_err(req, rc);
	else if (fuse_reply_create(req, &e, fi) != 0)
		create_undo(fs, e.ino, fi);
}

void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct sfs *fs = ll_fs(req);
	char *buf = NULL;
	ssize_t n = gate(fs, ino, GATE_READ, ll_fh(fi), (uint64_t)off, size);

	if (n == 0 && !(buf = malloc(size ? size : 1)))
		n = -ENOMEM;
	if (n == 0)
		n = bk_read(fs->bk, ino, ll_bk_fh(fi), buf, size, off);
	if (n >= 0) {
		atomic_fetch_add(&fs->stats.reads, 1);
		atomic_fetch_add(&fs->stats.read_bytes, (uint64_t)n);
		inode_count(fs->itab, ino, IC_READS, 1);
	}
	if (n < 0)
		reply_err(req, (int)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
	      struct fuse_file_info *fi)
{
	struct sfs *fs = ll_fs(req);
	ssize_t n = gate(fs, ino, GATE_WRITE, ll_fh(fi), (uint64_t)off, size);

	if (n == 0 && fs->durable)
		n = durable_before_change(fs->durable, fs->bk, ino, (uint64_t)off, size);
	if (n == 0)
		n = bk_write(fs->bk, ino, ll_bk_fh(fi), buf, size, off);
	if (n >= 0) {
		atomic_fetch_add(&fs->stats.writes, 1);
		atomic_fetch_add(&fs->stats.write_bytes, (uint64_t)n);
		inode_count(fs->itab, ino, IC_WRITES, 1);
	}
	if (n < 0)
		reply_err(req, (int)n);
	else
		fuse_reply_write(req, (size_t)n);
}

void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	handle_close(ll_fs(req), ino, fi);
	fuse_reply_err(req, 0);
}

void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct sfs *fs = ll_fs(req);
	int rc = gate(fs, ino, GATE_FSYNC, ll_fh(fi), 0, 0);

	if (rc == 0)
		rc = bk_fsync(fs->bk, ino, ll_bk_fh(fi), datasync);
	if (rc == 0 && fs->durable)
		durable_sync(fs->durable, ino);
	reply_err(req, rc);
}

void ll_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
		  struct fuse_file_info *fi)
{
	struct sfs *fs = ll_fs(req);
	int rc = gate(fs, ino, GATE_WRITE, ll_fh(fi), (uint64_t)off, (uint64_t)len);

	if (rc == 0 && fs->durable)
		rc = durable_before_change(fs->durable, fs->bk, ino, (uint64_t)off, (uint64_t)len);
	reply_err(req, rc < 0 ? rc : bk_fallocate(fs->bk, ino, ll_bk_fh(fi), mode, off, len));
}

void ll_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
	off_t pos = gate(ll_fs(req), ino, GATE_META, ll_fh(fi), 0, 0);

	if (pos == 0)
		pos = bk_lseek(ll_fs(req)->bk, ino, off, whence);
	if (pos < 0)
		reply_err(req, (int)pos);
	else
		fuse_reply_lseek(req, pos);
}
