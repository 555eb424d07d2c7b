/* The dir backend (dir:PATH): serves the host directory PATH. This file owns the backend
 * object, opening (PATH must be a directory; every refusal is one message), closing,
 * statfs and the exported bk_dir_ops table; dir.h lists the other files. */
#include "dir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

const char *dir_fd_path(int fd, char *buf)
{
	snprintf(buf, DIR_FD_PATH_MAX, "/proc/self/fd/%d", fd);
	return buf;
}

static int dir_open_root(struct dir_bk *d)
{
	int fd = open(d->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0) {
		rc = -errno;
		bk_logf(&d->log, BK_LOG_ERR, "dir: %s: %s", d->path,
			rc == -ENOTDIR ? "not a directory" : strerror(-rc));
		return rc == -ENOTDIR ? -EINVAL : rc;
	}
	rc = dir_node_root(d, fd);
	if (rc < 0) {
		bk_logf(&d->log, BK_LOG_ERR, "dir: %s: %s", d->path, strerror(-rc));
		close(fd);
	}
	return rc;
}

static void dir_free(struct dir_bk *d)
{
	dir_nodes_free(d); /* unwatches: before the feed closes */
	dir_feed_close(d);
	pthread_mutex_destroy(&d->lock);
	free(d->path);
	free(d);
}

static int dir_open(const struct bk_source *src, const struct bk_log *log, struct bk **out)
{
	struct dir_bk *d = calloc(1, sizeof(*d));
	int rc;

	*out = NULL;
	if (!d)
		return -ENOMEM;
	d->base.ops = &bk_dir_ops;
	if (log)
		d->log = *log;
	d->inotify_fd = -1;
	d->mount_fd = -1;
	d->next_ino = BK_ROOT_INO + 1;
	pthread_mutex_init(&d->lock, NULL);
	d->path = strdup(src->arg);
	rc = d->path ? dir_feed_open(d) : -ENOMEM;
	if (rc == 0)
		rc = dir_open_root(d);
	if (rc < 0) {
		dir_free(d);
		return rc;
	}
	*out = &d->base;
	return 0;
}

static void dir_close(struct bk *b)
{
	dir_free(dir_of(b));
}

static int dir_statfs(struct bk *b, struct statvfs *out)
{
	struct dir_bk *d = dir_of(b);
	struct dir_node *n = dir_node_get(d, BK_ROOT_INO);
	int rc;

	if (!n)
		return -EIO;
	rc = fstatvfs(n->fd, out) < 0 ? -errno : 0;
	dir_node_put(d, n);
	return rc;
}

const struct bk_ops bk_dir_ops = {
	.version = BK_OPS_VERSION,
	.name = "dir",
	.flags = BK_F_THREADSAFE | BK_F_PERSISTENT | BK_F_FEED | BK_F_HARDLINKS | BK_F_XATTR |
		 BK_F_FOREIGN_ROOT | BK_F_DOTS | BK_F_LIST_HOLDS,
	.source_form = BK_SOURCE_PATH,
	.open = dir_open,
	.close = dir_close,
	.statfs = dir_statfs,
	.getattr = dir_getattr,
	.setattr = dir_setattr,
	.lookup = dir_lookup,
	.mknod = dir_mknod,
	.symlink = dir_symlink,
	.readlink = dir_readlink,
	.link = dir_link,
	.unlink = dir_unlink,
	.rmdir = dir_rmdir,
	.rename = dir_rename,
	.readdir = dir_readdir,
	.forget = dir_forget,
	.fopen = dir_fopen,
	.frelease = dir_frelease,
	.read = dir_read,
	.write = dir_write,
	.fallocate = dir_fallocate,
	.lseek = dir_lseek,
	.fsync = dir_fsync,
	.setxattr = dir_setxattr,
	.getxattr = dir_getxattr,
	.listxattr = dir_listxattr,
	.removexattr = dir_removexattr,
	.tmpfile = dir_tmpfile,
	.feed_fd = dir_feed_fd,
	.feed_read = dir_feed_read,
	.read_fd = dir_read_fd,
};
