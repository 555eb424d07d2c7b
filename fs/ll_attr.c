/* Handlers for attributes: getattr, setattr, statfs and extended attributes. Only the
 * user.* namespace is stored; the others belong to security modules and ACLs, which
 * sigbusfs does not implement. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ctl_xattr.h"
#include "gate.h"
#include "ll.h"

void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct sfs *fs = ll_fs(req);
	struct bk_attr a;
	int rc = gate(fs, ino, GATE_ATTR, ll_fh(fi), 0, 0);
	bool size_zero = rc == GATE_SIZE_ZERO;

	uint64_t size = sizesync_wait(&fs->sizesync, ino, fuse_req_ctx(req)->pid);

	if (rc >= 0)
		rc = bk_getattr(fs->bk, ino, &a);
	if (rc == 0 && size_zero && S_ISREG(a.mode)) {
		a.size = 0;
		a.blocks = 0;
	}
	if (rc == 0 && size != SIZESYNC_BACKEND)
		a.size = size;
	if (rc < 0)
		reply_err(req, rc);
	else
		/* a revocation's size 0 must not be trusted: the next read asks again */
		reply_attr(req, &a, size_zero ? 0.0 : fs->timeout);
}

static void setattr_from_stat(const struct stat *st, int to_set, struct bk_setattr *s)
{
	static const struct {
		int fuse;
		unsigned bk;
	} map[] = {
		{ FUSE_SET_ATTR_MODE, BK_SET_MODE },
		{ FUSE_SET_ATTR_UID, BK_SET_UID },
		{ FUSE_SET_ATTR_GID, BK_SET_GID },
		{ FUSE_SET_ATTR_SIZE, BK_SET_SIZE },
		{ FUSE_SET_ATTR_ATIME, BK_SET_ATIME },
		{ FUSE_SET_ATTR_MTIME, BK_SET_MTIME },
		{ FUSE_SET_ATTR_ATIME_NOW, BK_SET_ATIME_NOW },
		{ FUSE_SET_ATTR_MTIME_NOW, BK_SET_MTIME_NOW },
		{ FUSE_SET_ATTR_CTIME, BK_SET_CTIME },
	};

	memset(s, 0, sizeof(*s));
	for (unsigned i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (to_set & map[i].fuse)
			s->valid |= map[i].bk;
	/* _NOW overrides an explicit time the kernel may also have filled in */
	if (s->valid & BK_SET_ATIME_NOW)
		s->valid &= ~BK_SET_ATIME;
	if (s->valid & BK_SET_MTIME_NOW)
		s->valid &= ~BK_SET_MTIME;
	s->mode = st->st_mode & 07777;
	s->uid = st->st_uid;
	s->gid = st->st_gid;
	s->size = (uint64_t)st->st_size;
	s->atime = st->st_atim;
	s->mtime = st->st_mtim;
	s->ctime = st->st_ctim;
}

void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		struct fuse_file_info *fi)
{
	struct bk_setattr s;
	struct bk_attr a;
	int rc;

	rc = gate(ll_fs(req), ino, GATE_META, ll_fh(fi), 0, 0);
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	setattr_from_stat(attr, to_set, &s);
	/* ftruncate: the kernel leaves mtime to the server, see truncate_open() */
	if (fi && (s.valid & BK_SET_SIZE) && !(s.valid & BK_SET_MTIME))
		s.valid |= BK_SET_MTIME_NOW;
	if ((s.valid & BK_SET_SIZE) && ll_fs(req)->durable)
		rc = durable_before_change(ll_fs(req)->durable, ll_fs(req)->bk, ino, s.size,
					   UINT64_MAX);
	if (rc == 0)
		rc = bk_setattr(ll_fs(req)->bk, ino, &s, &a);
	if (rc < 0)
		reply_err(req, rc);
	else
		reply_attr(req, &a, ll_fs(req)->timeout);
}

void ll_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	int rc = bk_statfs(ll_fs(req)->bk, &sv);

	if (rc < 0)
		reply_err(req, rc);
	else
		fuse_reply_statfs(req, &sv);
}

static int check_xattr_name(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	int rc = gate(ll_fs(req), ino, GATE_META, GATE_NO_HANDLE, 0, 0);

	if (rc < 0)
		return rc;
	if (strncmp(name, "user.", 5) != 0)
		return -EOPNOTSUPP;
	if (strlen(name) > 255)
		return -ERANGE;
	return 0;
}

void ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
		 int flags)
{
	int rc = check_xattr_name(req, ino, name);

	if (rc == 0 && size > BK_XATTR_SIZE_MAX)
		rc = -E2BIG;
	if (rc == 0)
		rc = bk_setxattr(ll_fs(req)->bk, ino, name, value, size, flags);
	reply_err(req, rc);
}

/* size 0 asks how big the value is; otherwise the value must fit in size bytes */
static void reply_sized(fuse_req_t req, size_t size, const char *buf, ssize_t n)
{
	if (n < 0)
		reply_err(req, (int)n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

/* The root carries the control socket's path, so that sigbusctl -m MOUNTPOINT finds it; it
 * is answered before the gate: an unplugged backend must still be controllable. */
static bool reply_ctl_xattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	const char *path = ll_fs(req)->ctl_path;
	size_t len;

	if (ino != BK_ROOT_INO || !path || strcmp(name, CTL_XATTR) != 0)
		return false;
	len = strlen(path);
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		reply_err(req, -ERANGE);
	else
		fuse_reply_buf(req, path, len);
	return true;
}

/* Outside user.* nothing is ever stored, so a get finds nothing (the kernel asks for
 * security.capability before writes; ENODATA is the true answer). */
void ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char *buf = NULL;
	ssize_t n;

	if (reply_ctl_xattr(req, ino, name, size))
		return;
	n = check_xattr_name(req, ino, name);
	if (n == -EOPNOTSUPP)
		n = -ENODATA;
	if (n == 0 && size > 0 && !(buf = malloc(size)))
		n = -ENOMEM;
	if (n == 0)
		n = bk_getxattr(ll_fs(req)->bk, ino, name, buf, size);
	reply_sized(req, size, buf, n);
	free(buf);
}

void ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char *buf = NULL;
	ssize_t n = 0;

	n = gate(ll_fs(req), ino, GATE_META, GATE_NO_HANDLE, 0, 0);
	if (n == 0 && size > 0 && !(buf = malloc(size)))
		n = -ENOMEM;
	if (n == 0)
		n = bk_listxattr(ll_fs(req)->bk, ino, buf, size);
	reply_sized(req, size, buf, n);
	free(buf);
}

void ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	int rc = check_xattr_name(req, ino, name);

	if (rc == 0)
		rc = bk_removexattr(ll_fs(req)->bk, ino, name);
	reply_err(req, rc);
}
