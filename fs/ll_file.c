/* Handlers for open regular files: open and create (whose core tmpfile.c shares), data
 * I/O, sync, fallocate and lseek.
 * The cache mode decides what an open tells the kernel about its cached pages. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "gate.h"
#include "inode.h"
#include "ll.h"
#include "trigger.h"

/* Larger reads (the kernel sends none with the INIT this daemon answers) take the copy:
 * a direct read's pieces, one per page at worst, must stay under writev's IOV_MAX. */
#define LL_READ_DIRECT_MAX (1u << 20)

/* Makes fi's handle: the gate's (gate_open()) and the backend's, listed in fs. 0 or
 * -errno. */
static int handle_open(struct sfs *fs, uint64_t ino, struct fuse_file_info *fi)
{
	struct ll_handle *h = malloc(sizeof(*h));
	int rc = h ? gate_open(fs, ino, (fi->flags & O_ACCMODE) != O_RDONLY, &h->gate_fh) : -ENOMEM;

	if (rc == 0) {
		rc = bk_fopen(fs->bk, ino, fi->flags, &h->bk_fh);
		if (rc < 0)
			gate_release(fs, h->gate_fh);
	}
	if (rc < 0) {
		free(h);
		return rc;
	}
	h->ino = ino;
	h->prev = NULL;
	pthread_mutex_lock(&fs->handles_lock);
	h->next = fs->handles;
	if (h->next)
		h->next->prev = h;
	fs->handles = h;
	pthread_mutex_unlock(&fs->handles_lock);
	fi->fh = (uintptr_t)h;
	fi->keep_cache = fs->cache_mode == CACHE_STRICT;
	fi->direct_io = fs->cache_mode == CACHE_NONE;
	return 0;
}

/* Ends h, unlisted, in the gate and the backend too. */
static void handle_free(struct sfs *fs, struct ll_handle *h)
{
	bk_frelease(fs->bk, h->ino, h->bk_fh);
	gate_release(fs, h->gate_fh);
	free(h);
}

/* Ends fi's handle. */
static void handle_close(struct sfs *fs, struct fuse_file_info *fi)
{
	struct ll_handle *h = (struct ll_handle *)(uintptr_t)fi->fh;

	pthread_mutex_lock(&fs->handles_lock);
	if (h->prev)
		h->prev->next = h->next;
	else
		fs->handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&fs->handles_lock);
	handle_free(fs, h);
	fi->fh = 0;
}

void ll_destroy(void *userdata)
{
	struct sfs *fs = userdata;

	/* no request is served any more: nothing else touches the list */
	while (fs->handles) {
		struct ll_handle *h = fs->handles;

		fs->handles = h->next;
		handle_free(fs, h);
	}
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
		handle_close(fs, fi);
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
	rc = inode_ref_named(fs->itab, a.ino, parent, name);
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
	handle_close(fs, fi);
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

/* A READ being answered: by the backend's reply callback, or here on error. */
struct ll_read_reply {
	fuse_req_t req;
	uint64_t ino, fh;
	bool is_replied;
};

/* Counts a read of bytes about to be replied. Counts first: once the reply is sent, the
 * kernel may release the file and another thread free its handle. */
static void read_count(struct ll_read_reply *r, uint64_t bytes)
{
	struct sfs *fs = ll_fs(r->req);

	atomic_fetch_add(&fs->stats.reads, 1);
	atomic_fetch_add(&fs->stats.read_bytes, bytes);
	gate_count(fs, r->ino, r->fh, IC_READS, 1);
	r->is_replied = true;
}

/* bk_reply_fn: counts the read, then one writev of the pieces to the kernel, the only
 * copy on the way. */
static int read_reply(void *ctx, const struct iovec *iov, int n)
{
	struct ll_read_reply *r = ctx;
	uint64_t bytes = 0;

	for (int i = 0; i < n; i++)
		bytes += iov[i].iov_len;
	read_count(r, bytes);
	return n > 0 ? fuse_reply_iov(r->req, iov, n) : fuse_reply_buf(r->req, NULL, 0);
}

/* bk_reply_fd_fn: counts the read, then the bytes go from the backend's descriptor to the
 * kernel by splice(2) (FUSE_CAP_SPLICE_WRITE), or, where libfuse cannot splice, through
 * its buffer. */
static int read_reply_fd(void *ctx, int fd, off_t off, size_t len)
{
	struct ll_read_reply *r = ctx;
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(len);

	bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	bv.buf[0].fd = fd;
	bv.buf[0].pos = off;
	read_count(r, len);
	return len > 0 ? fuse_reply_data(r->req, &bv, 0) : fuse_reply_buf(r->req, NULL, 0);
}

/* For a backend without read_direct: reads into a buffer, then replies as it would. */
static ssize_t read_copy(struct bk *b, uint64_t ino, uint64_t fh, size_t size, off_t off,
			 struct ll_read_reply *r)
{
	char *buf = malloc(size ? size : 1);
	ssize_t n = buf ? bk_read(b, ino, fh, buf, size, off) : -ENOMEM;

	if (n >= 0) {
		struct iovec iov = { .iov_base = buf, .iov_len = (size_t)n };
		int rc = read_reply(r, &iov, 1);

		n = rc < 0 ? rc : n;
	}
	free(buf);
	return n;
}

void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct sfs *fs = ll_fs(req);
	struct ll_read_reply r = { .req = req, .ino = ino, .fh = ll_fh(fi) };
	ssize_t n = gate(fs, ino, GATE_READ, ll_fh(fi), (uint64_t)off, size);

	if (n == 0 && bk_has_read_fd(fs->bk))
		n = bk_read_fd(fs->bk, ino, ll_bk_fh(fi), size, off, read_reply_fd, &r);
	else if (n == 0 && bk_has_read_direct(fs->bk) && size <= LL_READ_DIRECT_MAX)
		n = bk_read_direct(fs->bk, ino, ll_bk_fh(fi), size, off, read_reply, &r);
	else if (n == 0)
		n = read_copy(fs->bk, ino, ll_bk_fh(fi), size, off, &r);
	if (!r.is_replied)
		reply_err(req, (int)n);
}

/* With -o powercut, before a write: its undo copy, or a torn write (torn->id set) the
 * event log records. */
static int write_durable(struct sfs *fs, uint64_t ino, const char *buf, size_t size, off_t off,
			 const struct rule *torn)
{
	uint64_t keep;
	int rc;

	if (torn->id == 0)
		return durable_before_change(fs->durable, fs->bk, ino, (uint64_t)off, size);
	keep = rule_torn_keep(torn, (uint64_t)off, size, fs->page_size);
	rc = durable_torn_write(fs->durable, fs->bk, ino, (uint64_t)off, buf, size, keep);
	if (rc == 0)
		trigger_torn(fs, torn,
			     &(const struct trigger_cause){ ino, RULE_WRITE, (uint64_t)off, size });
	return rc;
}

void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
	      struct fuse_file_info *fi)
{
	struct sfs *fs = ll_fs(req);
	struct rule torn;
	ssize_t n = gate_write(fs, ino, ll_fh(fi), (uint64_t)off, size, &torn);

	if (n == 0 && fs->durable)
		n = write_durable(fs, ino, buf, size, off, &torn);
	if (n == 0)
		n = bk_write(fs->bk, ino, ll_bk_fh(fi), buf, size, off);
	if (n >= 0) {
		atomic_fetch_add(&fs->stats.writes, 1);
		atomic_fetch_add(&fs->stats.write_bytes, (uint64_t)n);
		gate_count(fs, ino, ll_fh(fi), IC_WRITES, 1);
	}
	if (n < 0)
		reply_err(req, (int)n);
	else
		fuse_reply_write(req, (size_t)n);
}

void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	handle_close(ll_fs(req), fi);
	fuse_reply_err(req, 0);
}

void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct sfs *fs = ll_fs(req);
	int rc = gate(fs, ino, GATE_FSYNC, ll_fh(fi), 0, 0);

	if (rc == 0)
		rc = bk_fsync(fs->bk, ino, ll_bk_fh(fi), datasync);
	if (rc == 0 && fs->durable)
		rc = durable_fsync(fs->durable, fs->bk, ino);
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
