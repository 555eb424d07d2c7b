/* Handlers for directory listings. Offsets are unsigned 64-bit values the kernel hands
 * back as they were given. A backend with BK_F_DOTS lists "." and ".." itself and its
 * cookies are the offsets (a host directory's own: ext4 gives 63-bit hashes and INT64_MAX
 * after the last entry, which no arithmetic here may overflow). For the others, 0 is the
 * start, 1 follows ".", 2 follows "..", and 2 + c follows the backend entry whose cookie
 * is c, so a listing resumes correctly across concurrent changes (the backend's cookies
 * are stable). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gate.h"
#include "inode.h"
#include "ll.h"

#define DIR_OFF_BACKEND 2

struct dirbuf {
	fuse_req_t req;
	uint64_t dir; /* the directory listed */
	char *buf;
	size_t size, used;
	uint64_t shift; /* offset = cookie + shift */
	bool plus;
	bool is_sizing; /* a size sync's listing: attributes the kernel must not trust */
	int err;
};

static size_t add_entry(struct dirbuf *d, const char *name, const struct bk_attr *a, uint64_t off,
			bool is_dot)
{
	struct fuse_entry_param e;
	size_t left = d->size - d->used;

	fill_entry(ll_fs(d->req), a, &e);
	if (d->is_sizing)
		e.attr_timeout = 0; /* as the revocation's GETATTR */
	if (!d->plus)
		return fuse_add_direntry(d->req, d->buf + d->used, left, name, &e.attr, (off_t)off);
	/* "." and ".." carry no node ID: the kernel neither links nor counts them */
	if (is_dot)
		e.ino = 0;
	return fuse_add_direntry_plus(d->req, d->buf + d->used, left, name, &e, (off_t)off);
}

static int emit(void *ctx, const char *name, const struct bk_attr *a, uint64_t cookie)
{
	struct dirbuf *d = ctx;
	struct sfs *fs = ll_fs(d->req);
	bool is_dot = strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
	/* counted while the entry is made; only readdirplus leaves the kernel a reference */
	bool is_counted = !is_dot && (d->plus || fs->bk->ops->flags & BK_F_LIST_HOLDS);
	bool is_full;
	size_t n;

	if (is_counted) {
		/* the name is kept only with the reference the kernel keeps */
		d->err = inode_ref_named(fs->itab, a->ino, d->dir, d->plus ? name : NULL);
		if (d->err < 0)
			return 1;
	}
	n = add_entry(d, name, a, cookie + d->shift, is_dot);
	is_full = n > d->size - d->used;
	if (is_counted && (is_full || !d->plus))
		forget_inode(fs, a->ino, 1);
	if (is_full)
		return 1;
	d->used += n;
	return 0;
}

/* An entry of a size sync's listing (sizesync.h): the file at size 0. Its offset is
 * never handed back: the helper lists once. */
static int emit_synced(void *ctx, uint64_t ino, const char *name)
{
	struct dirbuf *d = ctx;
	struct bk_attr a;

	if (bk_getattr(ll_fs(d->req)->bk, ino, &a) < 0 || !S_ISREG(a.mode))
		return 0; /* gone meanwhile: its stat will tell */
	a.size = 0;
	a.blocks = 0;
	d->is_sizing = true;
	return emit(d, name, &a, d->used);
}

static int emit_dots(struct dirbuf *d, fuse_ino_t ino, uint64_t off)
{
	struct bk_attr a = { .ino = ino, .mode = S_IFDIR };
	const char *names[] = { ".", ".." };

	for (uint64_t i = off; i < DIR_OFF_BACKEND; i++) {
		size_t n = add_entry(d, names[i], &a, i + 1, true);

		if (n > d->size - d->used)
			return 1;
		d->used += n;
	}
	return 0;
}

static void list(fuse_req_t req, fuse_ino_t ino, size_t size, uint64_t off, bool plus)
{
	bool has_dots = ll_fs(req)->bk->ops->flags & BK_F_DOTS;
	struct dirbuf d = {
		.req = req,
		.dir = ino,
		.size = size,
		.shift = has_dots ? 0 : DIR_OFF_BACKEND,
		.plus = plus,
	};
	int rc = gate(ll_fs(req), ino, GATE_DIR, GATE_NO_HANDLE, 0, 0);

	if (rc != 0) {
		if (rc < 0)
			reply_err(req, rc);
		else
			fuse_reply_buf(req, NULL, 0);
		return;
	}
	d.buf = malloc(size);
	if (!d.buf) {
		reply_err(req, -ENOMEM);
		return;
	}
	if (sizesync_list(&ll_fs(req)->sizesync, fuse_req_ctx(req)->pid, ino, plus, emit_synced,
			  &d))
		goto out_reply;
	if (!has_dots && off < DIR_OFF_BACKEND && emit_dots(&d, ino, off) != 0)
		goto out_reply;
	off = off < d.shift ? 0 : off - d.shift;
	rc = bk_readdir(ll_fs(req)->bk, ino, off, emit, &d);
	if (rc == 0)
		rc = d.err;
out_reply:
	/* entries already added were counted; an error after them still returns them */
	if (rc < 0 && d.used == 0)
		reply_err(req, rc);
	else
		fuse_reply_buf(req, d.buf, d.used);
	free(d.buf);
}

void ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct bk_attr a;
	int rc = gate(ll_fs(req), ino, GATE_DIR, GATE_NO_HANDLE, 0, 0);

	if (rc >= 0)
		rc = bk_getattr(ll_fs(req)->bk, ino, &a);
	if (rc == 0 && !S_ISDIR(a.mode))
		rc = -ENOTDIR;
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	fi->cache_readdir = 0;
	fuse_reply_open(req, fi);
}

void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	list(req, ino, size, (uint64_t)off, false);
}

void ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	list(req, ino, size, (uint64_t)off, true);
}

void ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

void ll_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	reply_err(req, bk_fsync(ll_fs(req)->bk, ino, 0, datasync));
}
