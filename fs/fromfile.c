/* write --from FILE: walking a local path without entering the daemon's own mount, and
 * reading the file it names. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fromfile.h"

#define FROMFILE_LINKS 40 /* symlinks followed at most, as the kernel's MAXSYMLINKS */

/* The device and type of fd (or of name in the directory fd), from the inode the kernel
 * holds: AT_STATX_DONT_SYNC sends no GETATTR even on a FUSE mount. */
static int dev_of(int fd, const char *name, int flags, dev_t *dev, mode_t *mode)
{
	struct statx stx;

	if (statx(fd, name, flags | AT_STATX_DONT_SYNC | AT_NO_AUTOMOUNT, STATX_TYPE, &stx) < 0)
		return -errno;
	*dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
	*mode = stx.stx_mode;
	return 0;
}

/* The path left to walk, and where the walk stands. */
struct walk {
	char left[2 * PATH_MAX];
	const char *p; /* into left */
	int dir;       /* O_PATH: the directory reached */
	int links;     /* symlinks followed */
	dev_t avoid;   /* the own mount's device */
};

/* The symlink fd stands in for its target: left becomes target/rest of the path. */
static int follow_link(struct walk *w, int fd)
{
	char target[PATH_MAX], tmp[sizeof(w->left)];
	ssize_t n = readlinkat(fd, "", target, sizeof(target) - 1);

	if (n < 0)
		return -errno;
	if (++w->links > FROMFILE_LINKS)
		return -ELOOP;
	target[n] = '\0';
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/%s", target, w->p) >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(w->left, tmp, sizeof(tmp));
	w->p = w->left;
	if (target[0] != '/')
		return 0;
	close(w->dir);
	w->dir = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	return w->dir < 0 ? -errno : 0;
}

/* Takes one component of w->p: 1 when one was taken, 0 at the end, or -errno. */
static int step(struct walk *w)
{
	char name[NAME_MAX + 1];
	size_t n;
	mode_t mode;
	dev_t dev;
	int fd, rc;

	w->p += strspn(w->p, "/");
	n = strcspn(w->p, "/");
	if (n == 0)
		return 0;
	if (n > NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(name, w->p, n);
	name[n] = '\0';
	w->p += n;
	fd = openat(w->dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = dev_of(fd, "", AT_EMPTY_PATH, &dev, &mode);
	if (rc == 0 && dev == w->avoid)
		rc = -EXDEV;
	if (rc == 0 && S_ISLNK(mode)) {
		rc = follow_link(w, fd);
		close(fd);
		return rc < 0 ? rc : 1;
	}
	if (rc < 0) {
		close(fd);
		return rc;
	}
	close(w->dir);
	w->dir = fd;
	return 1;
}

/* Opens path for reading, walked as fromfile_read() says: a descriptor, or -errno. */
static int open_outside(const char *path, dev_t avoid)
{
	struct walk *w;
	char self[64];
	int rc, fd = -1;

	if (strlen(path) >= PATH_MAX)
		return -ENAMETOOLONG;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	strcpy(w->left, path);
	w->p = w->left;
	w->avoid = avoid;
	w->dir = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	rc = w->dir < 0 ? -errno : 1;
	while (rc == 1)
		rc = step(w);
	/* the walk's end, reopened through its descriptor: no new lookup */
	snprintf(self, sizeof(self), "/proc/self/fd/%d", w->dir);
	if (rc == 0)
		fd = open(self, O_RDONLY | O_CLOEXEC);
	if (rc == 0 && fd < 0)
		rc = -errno;
	if (w->dir >= 0)
		close(w->dir);
	free(w);
	return rc < 0 ? rc : fd;
}

/* Reads want bytes (fewer at end of file) from fd into *out. */
static int read_up_to(int fd, size_t want, uint8_t **out, size_t *got)
{
	ssize_t n = 1;

	*got = 0;
	*out = malloc(want ? want : 1);
	if (!*out)
		return -ENOMEM;
	while (*got < want && n != 0) {
		n = read(fd, *out + *got, want - *got);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0)
			*got += (size_t)n;
	}
	return 0;
}

static int read_file(int fd, const char *path, uint64_t len, uint8_t **out, size_t *len_out,
		     char *err, size_t errsize)
{
	struct stat st;
	uint64_t want = len;
	int rc;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!len && !S_ISREG(st.st_mode)) {
		snprintf(err, errsize,
			 "--from %s: not a regular file, so it has no size to read: give --len N",
			 path);
		return -EINVAL;
	}
	if (!len)
		want = (uint64_t)st.st_size;
	if (want > FROMFILE_MAX) {
		snprintf(err, errsize, "--from %s: more than %u bytes", path, FROMFILE_MAX);
		return -EFBIG;
	}
	rc = read_up_to(fd, (size_t)want, out, len_out);
	if (rc == 0 && len && *len_out < len) {
		snprintf(err, errsize, "--from %s: ends after %zu of %llu bytes", path, *len_out,
			 (unsigned long long)len);
		rc = -ENODATA;
	}
	return rc;
}

int fromfile_read(const char *path, const char *mountpoint, uint64_t len, uint8_t **out,
		  size_t *len_out, char *err, size_t errsize)
{
	mode_t mode;
	dev_t avoid;
	int fd, rc = dev_of(AT_FDCWD, mountpoint, 0, &avoid, &mode);

	*out = NULL;
	err[0] = '\0';
	fd = rc < 0 ? rc : open_outside(path, avoid);
	rc = fd < 0 ? fd : read_file(fd, path, len, out, len_out, err, errsize);
	if (fd >= 0)
		close(fd);
	if (rc == -EXDEV)
		snprintf(err, errsize,
			 "--from %s: inside this daemon's own mount %s, which it may not read "
			 "through: copy the file out first",
			 path, mountpoint);
	else if (rc < 0 && !err[0])
		snprintf(err, errsize, "--from %s: %s", path, strerror(-rc));
	if (rc < 0) {
		free(*out);
		*out = NULL;
	}
	return rc;
}
