/* The dir backend's namespace slots: each is the host's *at() call on the parent's
 * descriptor, then the new object is given the caller's owner and mode (bk_new), and the
 * directories changed are marked as changed by us for the feed. */
#include "common.h"
#include "dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define DIR_DENTS_BUF 8192

/* The parent ino, held and with a change begun, after checking name: 0 or -errno (*out
 * NULL). parent_put() ends both. */
static int parent_get(struct dir_bk *d, uint64_t parent, const char *name, struct dir_node **out)
{
	int rc = bk_name_check(name);

	*out = NULL;
	if (rc < 0)
		return rc;
	*out = dir_node_get(d, parent);
	if (!*out)
		return -ENOENT;
	dir_node_change_begin(d, *out);
	return 0;
}

static void parent_put(struct dir_bk *d, struct dir_node *p)
{
	if (!p)
		return;
	dir_node_change_end(d, p);
	dir_node_put(d, p);
}

/* The end of every slot that made name, of file type type, in p: owner and mode as n
 * says (a symlink's mode is fixed), then the node. */
static int made(struct dir_bk *d, struct dir_node *p, const char *name, mode_t type,
		const struct bk_new *n, struct bk_attr *out)
{
	int rc = 0;

	if (fchownat(p->fd, name, n->uid, n->gid, AT_SYMLINK_NOFOLLOW) < 0 &&
	    (errno != EPERM || geteuid() == 0))
		rc = -errno;
	if (rc == 0 && !S_ISLNK(type) && fchmodat(p->fd, name, n->mode & 07777, 0) < 0)
		rc = -errno;
	if (rc == 0)
		rc = dir_lookup(&d->base, p->ino, name, out);
	if (rc < 0)
		S_ISDIR(type) ? unlinkat(p->fd, name, AT_REMOVEDIR) : unlinkat(p->fd, name, 0);
	return rc;
}

int dir_mknod(struct bk *b, uint64_t parent, const char *name, const struct bk_new *n,
	      struct bk_attr *out)
{
	struct dir_bk *d = dir_of(b);
	struct dir_node *p;
	int rc = parent_get(d, parent, name, &p);

	if (rc == 0)
		rc = bk_mknod_type_check(n->mode);
	if (rc == 0 && S_ISDIR(n->mode))
		rc = mkdirat(p->fd, name, n->mode & 07777) < 0 ? -errno : 0;
	else if (rc == 0)
		rc = mknodat(p->fd, name, n->mode, n->rdev) < 0 ? -errno : 0;
	if (rc == 0)
		rc = made(d, p, name, n->mode & S_IFMT, n, out);
	parent_put(d, p);
	return rc;
}

int dir_symlink(struct bk *b, uint64_t parent, const char *name, const char *target,
		const struct bk_new *n, struct bk_attr *out)
{
	struct dir_bk *d = dir_of(b);
	struct dir_node *p;
	int rc = parent_get(d, parent, name, &p);

	if (rc == 0)
		rc = symlinkat(target, p->fd, name) < 0 ? -errno : 0;
	if (rc == 0)
		rc = made(d, p, name, S_IFLNK, n, out);
	parent_put(d, p);
	return rc;
}

ssize_t dir_readlink(struct bk *b, uint64_t ino, char *buf, size_t size)
{
	struct dir_bk *d = dir_of(b);
	struct dir_node *n = dir_node_get(d, ino);
	char target[BK_NAME_MAX * 16 + 1];
	ssize_t len;

	if (!n)
		return -ENOENT;
	len = readlinkat(n->fd, "", target, sizeof(target));
	len = len < 0 ? (errno == ENOENT ? -EINVAL : -errno) : len;
	dir_node_put(d, n);
	if (len > 0)
		memcpy(buf, target, (size_t)len < size ? (size_t)len : size);
	return len;
}

int dir_link(struct bk *b, uint64_t ino, uint64_t newparent, const char *newname,
	     struct bk_attr *out)
{
	struct dir_bk *d = dir_of(b);
	struct dir_node *n = dir_node_get(d, ino), *p;
	int rc = parent_get(d, newparent, newname, &p);

	if (rc == 0 && !n)
		rc = -ENOENT;
	if (rc == 0) {
		dir_node_change_begin(d, n);
		if (linkat(n->fd, "", p->fd, newname, AT_EMPTY_PATH) < 0)
			rc = errno == EISDIR ? -EPERM : -errno;
		dir_node_change_end(d, n);
	}
	if (rc == 0)
		rc = dir_lookup(b, newparent, newname, out);
	parent_put(d, p);
	if (n)
		dir_node_put(d, n);
	return rc;
}

/* Marks the object name in p, about to lose a name, as changed by us. */
static void mark_child(struct dir_bk *d, struct dir_node *p, const char *name)
{
	struct dir_node *c;
	struct stat st;

	if (fstatat(p->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return;
	c = dir_node_find_host(d, st.st_dev, st.st_ino);
	if (c) {
		dir_node_mark_own(d, c);
		dir_node_put(d, c);
	}
}

static int remove_name(struct bk *b, uint64_t parent, const char *name, int flags)
{
	struct dir_bk *d = dir_of(b);
	struct dir_node *p;
	int rc = parent_get(d, parent, name, &p);

	if (rc == 0)
		rc = unlinkat(p->fd, name, flags) < 0 ? -errno : 0;
	if (rc == 0 && !(flags & AT_REMOVEDIR))
		mark_child(d, p, name);
	parent_put(d, p);
	return rc;
}

int dir_unlink(struct bk *b, uint64_t parent, const char *name)
{
	return remove_name(b, parent, name, 0);
}

int dir_rmdir(struct bk *b, uint64_t parent, const char *name)
{
	return remove_name(b, parent, name, AT_REMOVEDIR);
}

int dir_rename(struct bk *b, uint64_t parent, const char *name, uint64_t newparent,
	       const char *newname, unsigned flags)
{
	struct dir_bk *d = dir_of(b);
	struct dir_node *p, *np = NULL;
	int rc = parent_get(d, parent, name, &p);

	if (rc == 0)
		rc = parent_get(d, newparent, newname, &np);
	if (rc == 0 && renameat2(p->fd, name, np->fd, newname, flags) < 0)
		rc = -errno;
	if (rc == 0)
		mark_child(d, np, newname);
	parent_put(d, np);
	parent_put(d, p);
	return rc;
}

struct linux_dirent64 {
	ino64_t d_ino;
	off64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* The attributes of entry name of p: "." and ".." are p's (BK_F_DOTS), others are looked
 * up into nodes. */
static int entry_attr(struct dir_bk *d, struct dir_node *p, const char *name, struct bk_attr *a)
{
	if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0)
		return dir_lookup(&d->base, p->ino, name, a);
	*a = (struct bk_attr){ .ino = p->ino, .mode = S_IFDIR };
	return 0;
}

/* Emits the entries of one getdents64 batch of dir p: 1 once emit stops, 0 at its end.
 * Each is looked up only when its turn comes (BK_F_LIST_HOLDS: fs/ balances what it gets),
 * with the host's d_off as its cookie. */
static int emit_batch(struct dir_bk *d, struct dir_node *p, const char *buf, long got,
		      bk_emit_fn emit, void *ctx)
{
	struct bk_attr a;

	for (long pos = 0; pos < got;) {
		const struct linux_dirent64 *e = (const struct linux_dirent64 *)(buf + pos);

		pos += e->d_reclen;
		if (entry_attr(d, p, e->d_name, &a) < 0)
			continue; /* gone since */
		if (emit(ctx, e->d_name, &a, (uint64_t)e->d_off) != 0)
			return 1;
	}
	return 0;
}

int dir_readdir(struct bk *b, uint64_t dir, uint64_t cookie, bk_emit_fn emit, void *ctx)
{
	static _Thread_local char buf[DIR_DENTS_BUF];
	struct dir_bk *d = dir_of(b);
	struct dir_node *p = dir_node_get(d, dir);
	int dfd = -1, rc = p ? 0 : -ENOENT;
	long got = 1;

	if (rc == 0) {
		dfd = openat(p->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		rc = dfd < 0 ? -errno : 0;
	}
	if (rc == 0 && cookie && lseek(dfd, (off_t)cookie, SEEK_SET) < 0)
		rc = -errno;
	while (rc == 0 && got > 0) {
		got = syscall(SYS_getdents64, dfd, buf, sizeof(buf));
		rc = got < 0 ? -errno : 0;
		if (rc == 0 && emit_batch(d, p, buf, got, emit, ctx) != 0)
			break;
	}
	if (dfd >= 0)
		close(dfd);
	if (p)
		dir_node_put(d, p);
	return rc;
}

int dir_tmpfile(struct bk *b, uint64_t parent, const struct bk_new *n, struct bk_attr *out)
{
	struct dir_bk *d = dir_of(b);
	struct dir_node *p = dir_node_get(d, parent);
	int fd = -1, rc = p ? 0 : -ENOENT;
	struct stat st;

	if (rc == 0) {
		fd = openat(p->fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, n->mode & 07777);
		rc = fd < 0 ? -errno : 0;
	}
	if (rc == 0 && fchown(fd, n->uid, n->gid) < 0 && (errno != EPERM || geteuid() == 0))
		rc = -errno;
	if (rc == 0 && fchmod(fd, n->mode & 07777) < 0)
		rc = -errno;
	if (rc == 0 && fstat(fd, &st) < 0)
		rc = -errno;
	rc = dir_node_attach(d, rc, fd, &st, out);
	if (p)
		dir_node_put(d, p);
	return rc;
}
