/* The dir backend's file data: per-open handles (a host descriptor each, reopened from the
 * node's O_PATH descriptor, so that it outlives the file's last name), and read, write,
 * fallocate, lseek and fsync through them; an access without a handle (fh 0, the daemon's
 * own events) opens a descriptor for the call. */
#include "common.h"
#include "dir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int dir_file_reopen(struct dir_node *n, int flags)
{
	char path[DIR_FD_PATH_MAX];
	int fd = open(dir_fd_path(n->fd, path), flags | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

int dir_fopen(struct bk *b, uint64_t ino, int flags, uint64_t *fh_out)
{
	struct dir_bk *d = dir_of(b);
	struct dir_node *n = dir_node_get(d, ino);
	int fd, *fh;

	if (!n)
		return -ENOENT;
	/* reads too: the kernel's writeback cache reads what it fills in */
	fd = dir_file_reopen(n, (flags & O_ACCMODE) == O_RDONLY ? O_RDONLY : O_RDWR);
	dir_node_put(d, n);
	if (fd < 0)
		return fd;
	fh = malloc(sizeof(*fh));
	if (!fh) {
		close(fd);
		return -ENOMEM;
	}
	*fh = fd;
	*fh_out = (uint64_t)(uintptr_t)fh;
	return 0;
}

void dir_frelease(struct bk *b, uint64_t ino, uint64_t fh)
{
	int *fd = (int *)(uintptr_t)fh;

	(void)b;
	(void)ino;
	close(*fd);
	free(fd);
}

/* A descriptor for one access to ino: the handle's, or one opened now (*opened set, the
 * caller closes it); and the node, held, in *out, its io_lock taken. flags other than
 * O_RDONLY take it exclusive and begin a change. file_done() ends what this began. */
static int file_fd(struct dir_bk *d, uint64_t ino, uint64_t fh, int flags, struct dir_node **out,
		   bool *opened)
{
	struct stat st;
	int fd;

	*out = dir_node_get(d, ino);
	*opened = false;
	if (!*out)
		return -ENOENT;
	/* not reopened (a FIFO's open would wait for its other end): the contract's errnos;
	 * a directory opens for reading (fsync) */
	if (!fh && dir_node_stat(*out, &st) == 0 && !S_ISREG(st.st_mode) &&
	    !(S_ISDIR(st.st_mode) && flags == O_RDONLY))
		return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	*opened = !fh;
	fd = fh ? *(int *)(uintptr_t)fh : dir_file_reopen(*out, flags);
	if (fd >= 0 && flags != O_RDONLY) {
		pthread_rwlock_wrlock(&(*out)->io_lock);
		dir_node_change_begin(d, *out);
	} else if (fd >= 0) {
		pthread_rwlock_rdlock(&(*out)->io_lock);
	}
	return fd;
}

static void file_done(struct dir_bk *d, struct dir_node *n, int fd, bool opened, bool is_change)
{
	if (is_change && fd >= 0)
		dir_node_change_end(d, n);
	if (fd >= 0)
		pthread_rwlock_unlock(&n->io_lock);
	if (opened && fd >= 0)
		close(fd);
	if (n)
		dir_node_put(d, n);
}

ssize_t dir_read(struct bk *b, uint64_t ino, uint64_t fh, void *buf, size_t len, off_t off)
{
	struct dir_bk *d = dir_of(b);
	struct dir_node *n;
	bool opened;
	int fd = file_fd(d, ino, fh, O_RDONLY, &n, &opened);
	ssize_t done = 0;

	while (fd >= 0 && (size_t)done < len) {
		ssize_t got = pread(fd, (char *)buf + done, len - (size_t)done, off + done);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			done = got < 0 ? -errno : done;
			break;
		}
		done += got;
	}
	file_done(d, n, fd, opened, false);
	return fd < 0 ? fd : done;
}

ssize_t dir_read_fd(struct bk *b, uint64_t ino, uint64_t fh, size_t len, off_t off,
		    bk_reply_fd_fn reply, void *ctx)
{
	struct dir_bk *d = dir_of(b);
	struct dir_node *n;
	bool opened;
	int fd = off < 0 ? -EINVAL : file_fd(d, ino, fh, O_RDONLY, &n, &opened);
	ssize_t rc = fd;
	struct stat st;

	if (off < 0)
		return fd;
	if (fd >= 0)
		rc = fstat(fd, &st) < 0 ? -errno : 0;
	if (rc == 0) {
		/* the io lock keeps our writes out until the bytes are spliced */
		uint64_t size = (uint64_t)st.st_size, end = (uint64_t)off + len;
		size_t n = (uint64_t)off >= size
				   ? 0
				   : (size_t)((end < size ? end : size) - (uint64_t)off);
		int replied = reply(ctx, fd, off, n);

		rc = replied < 0 ? replied : (ssize_t)n;
	}
	file_done(d, n, fd, opened, false);
	return rc;
}

ssize_t dir_write(struct bk *b, uint64_t ino, uint64_t fh, const void *buf, size_t len, off_t off)
{
	struct dir_bk *d = dir_of(b);
	struct dir_node *n;
	bool opened;
	int rc = bk_write_check(off, len, DIR_FILE_MAX);
	int fd = rc < 0 ? rc : file_fd(d, ino, fh, O_WRONLY, &n, &opened);
	ssize_t done = 0;

	if (rc < 0)
		return rc;
	while (fd >= 0 && (size_t)done < len) {
		ssize_t put = pwrite(fd, (const char *)buf + done, len - (size_t)done, off + done);

		if (put < 0 && errno == EINTR)
			continue;
		if (put < 0) {
			done = -errno;
			break;
		}
		done += put;
	}
	file_done(d, n, fd, opened, true);
	return fd < 0 ? fd : done;
}

/* fallocate(2); a zero range where the host has none (tmpfs): a hole punched, then the
 * range allocated again (zeros) and the size grown as a zero range would. */
static int file_fallocate(int fd, int mode, off_t off, off_t len)
{
	int keep = mode & BK_FALLOC_KEEP_SIZE;

	if (fallocate(fd, mode, off, len) == 0)
		return 0;
	if (errno != EOPNOTSUPP || !(mode & BK_FALLOC_ZERO_RANGE))
		return -errno;
	if (fallocate(fd, BK_FALLOC_PUNCH_HOLE | BK_FALLOC_KEEP_SIZE, off, len) < 0 ||
	    fallocate(fd, keep, off, len) < 0)
		return -errno;
	return 0;
}

int dir_fallocate(struct bk *b, uint64_t ino, uint64_t fh, int mode, off_t off, off_t len)
{
	struct dir_bk *d = dir_of(b);
	struct dir_node *n;
	bool opened;
	int rc = bk_falloc_check(mode, off, len, DIR_FILE_MAX);
	int fd = rc < 0 ? rc : file_fd(d, ino, fh, O_WRONLY, &n, &opened);

	if (rc < 0)
		return rc;
	if (fd >= 0)
		rc = file_fallocate(fd, mode, off, len);
	file_done(d, n, fd, opened, true);
	return fd == -EINVAL ? -ENODEV : fd < 0 ? fd : rc;
}

off_t dir_lseek(struct bk *b, uint64_t ino, off_t off, int whence)
{
	struct dir_bk *d = dir_of(b);
	struct dir_node *n;
	bool opened;
	int fd;
	off_t rc;

	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	fd = file_fd(d, ino, 0, O_RDONLY, &n, &opened);
	rc = fd;
	if (fd >= 0) {
		rc = lseek(fd, off, whence);
		rc = rc < 0 ? -errno : rc;
	}
	file_done(d, n, fd, opened, false);
	return rc;
}

int dir_fsync(struct bk *b, uint64_t ino, uint64_t fh, bool datasync)
{
	struct dir_bk *d = dir_of(b);
	struct dir_node *n;
	bool opened;
	int fd = file_fd(d, ino, fh, O_RDONLY, &n, &opened);
	int rc = fd;

	if (fd >= 0)
		rc = (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? -errno : 0;
	file_done(d, n, fd, opened, false);
	return rc;
}
