/* Handlers for names: lookup and forget (lookup counting lives in inode.c), creation of
 * every kind of inode but open files (ll_file.c), links, removal and rename. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>

#include "gate.h"
#include "inode.h"
#include "ll.h"

void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct sfs *fs = ll_fs(req);
	struct bk_attr a;
	uint64_t size;
	int rc = gate(fs, parent, GATE_DIR, GATE_NO_HANDLE, 0, 0);

	/* a directory listed as empty holds no names */
	if (rc == GATE_EMPTY)
		rc = -ENOENT;
	if (rc == 0)
		rc = bk_lookup(fs->bk, parent, name, &a);
	if (rc == 0)
		rc = gate(fs, a.ino, GATE_LOOKUP, GATE_NO_HANDLE, 0, 0);
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	size = sizesync_wait(&fs->sizesync, a.ino, fuse_req_ctx(req)->pid);
	if (size != SIZESYNC_BACKEND)
		a.size = size;
	reply_entry(req, parent, name, &a);
}

void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	forget_inode(ll_fs(req), ino, nlookup);
	fuse_reply_none(req);
}

void ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		forget_inode(ll_fs(req), forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void make_node(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct bk_new n;
	struct bk_attr a;
	int rc = gate(ll_fs(req), parent, GATE_META, GATE_NO_HANDLE, 0, 0);

	if (rc == 0)
		rc = new_inode(req, parent, mode, rdev, &n);
	if (rc == 0)
		rc = bk_mknod(ll_fs(req)->bk, parent, name, &n, &a);
	if (rc < 0)
		reply_err(req, rc);
	else
		reply_entry(req, parent, name, &a);
}

void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	make_node(req, parent, name, mode, rdev);
}

void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	make_node(req, parent, name, S_IFDIR | (mode & 07777), 0);
}

void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct bk_new n;
	struct bk_attr a;
	int rc = gate(ll_fs(req), parent, GATE_META, GATE_NO_HANDLE, 0, 0);

	if (rc == 0)
		rc = new_inode(req, parent, S_IFLNK | 0777, 0, &n);
	if (rc == 0)
		rc = bk_symlink(ll_fs(req)->bk, parent, name, link, &n, &a);
	if (rc < 0)
		reply_err(req, rc);
	else
		reply_entry(req, parent, name, &a);
}

void ll_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX + 1];
	ssize_t n = gate(ll_fs(req), ino, GATE_META, GATE_NO_HANDLE, 0, 0);

	if (n == 0)
		n = bk_readlink(ll_fs(req)->bk, ino, buf, sizeof(buf) - 1);
	if (n < 0) {
		reply_err(req, (int)n);
		return;
	}
	if ((size_t)n >= sizeof(buf)) {
		reply_err(req, -ENAMETOOLONG);
		return;
	}
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
}

void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct sfs *fs = ll_fs(req);
	struct bk_attr a;
	int rc = gate(fs, ino, GATE_META, GATE_NO_HANDLE, 0, 0);

	if (rc == 0)
		rc = gate(fs, newparent, GATE_META, GATE_NO_HANDLE, 0, 0);
	if (rc == 0)
		rc = bk_link(fs->bk, ino, newparent, newname, &a);
	if (rc < 0)
		reply_err(req, rc);
	else
		reply_entry(req, newparent, newname, &a);
}

void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	int rc = gate(ll_fs(req), parent, GATE_META, GATE_NO_HANDLE, 0, 0);

	reply_err(req, rc < 0 ? rc : bk_unlink(ll_fs(req)->bk, parent, name));
}

void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	int rc = gate(ll_fs(req), parent, GATE_META, GATE_NO_HANDLE, 0, 0);

	reply_err(req, rc < 0 ? rc : bk_rmdir(ll_fs(req)->bk, parent, name));
}

void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
	       const char *newname, unsigned int flags)
{
	struct sfs *fs = ll_fs(req);
	int rc = gate(fs, parent, GATE_META, GATE_NO_HANDLE, 0, 0);

	if (rc == 0)
		rc = gate(fs, newparent, GATE_META, GATE_NO_HANDLE, 0, 0);
	/* RENAME_WHITEOUT is for overlay filesystems; sigbusfs has no whiteouts */
	if (rc == 0 && (flags & ~(unsigned)(BK_RENAME_NOREPLACE | BK_RENAME_EXCHANGE)))
		rc = -EINVAL;
	if (rc == 0)
		rc = bk_rename(fs->bk, parent, name, newparent, newname, flags);
	reply_err(req, rc);
}
