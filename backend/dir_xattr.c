/* The dir backend's extended attributes: the host's, through the node's /proc/self/fd
 * path (an O_PATH descriptor has no f*xattr()). That path of a symlink's descriptor leads
 * to the symlink itself, not its target, so the following calls are the right ones. */
#include "dir.h"

#include <errno.h>
#include <sys/xattr.h>

enum dir_xattr_op { DIR_XA_SET, DIR_XA_GET, DIR_XA_LIST, DIR_XA_REMOVE };

struct dir_xattr {
	enum dir_xattr_op op;
	const char *name;
	void *buf; /* the value to set, or the buffer to fill */
	size_t size;
	int flags;
};

static ssize_t xattr_call(const char *path, const struct dir_xattr *x)
{
	switch (x->op) {
	case DIR_XA_SET:
		return setxattr(path, x->name, x->buf, x->size, x->flags);
	case DIR_XA_GET:
		return getxattr(path, x->name, x->buf, x->size);
	case DIR_XA_LIST:
		return listxattr(path, x->buf, x->size);
	case DIR_XA_REMOVE:
		return removexattr(path, x->name);
	}
	errno = EINVAL;
	return -1;
}

/* Runs x on the host object of ino: its result, or -errno. */
static ssize_t xattr_run(struct bk *b, uint64_t ino, const struct dir_xattr *x)
{
	struct dir_bk *d = dir_of(b);
	struct dir_node *n = dir_node_get(d, ino);
	char path[DIR_FD_PATH_MAX];
	bool is_change = x->op == DIR_XA_SET || x->op == DIR_XA_REMOVE;
	ssize_t rc;

	if (!n)
		return -ENOENT;
	if (is_change)
		dir_node_change_begin(d, n);
	rc = xattr_call(dir_fd_path(n->fd, path), x);
	rc = rc < 0 ? -errno : rc;
	if (is_change)
		dir_node_change_end(d, n);
	dir_node_put(d, n);
	return rc;
}

int dir_setxattr(struct bk *b, uint64_t ino, const char *name, const void *value, size_t size,
		 int flags)
{
	const struct dir_xattr x = {
		.op = DIR_XA_SET, .name = name, .buf = (void *)value, .size = size, .flags = flags
	};

	return (int)xattr_run(b, ino, &x);
}

ssize_t dir_getxattr(struct bk *b, uint64_t ino, const char *name, void *buf, size_t size)
{
	const struct dir_xattr x = { .op = DIR_XA_GET, .name = name, .buf = buf, .size = size };

	return xattr_run(b, ino, &x);
}

ssize_t dir_listxattr(struct bk *b, uint64_t ino, char *buf, size_t size)
{
	const struct dir_xattr x = { .op = DIR_XA_LIST, .buf = buf, .size = size };

	return xattr_run(b, ino, &x);
}

int dir_removexattr(struct bk *b, uint64_t ino, const char *name)
{
	const struct dir_xattr x = { .op = DIR_XA_REMOVE, .name = name };

	return (int)xattr_run(b, ino, &x);
}
