/* The dir backend's slots that look a name up or read or change one node's attributes. */
#include "common.h"
#include "dir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The node ino, held, and its host state: 0, or -errno with nothing held. */
static int node_get_stat(struct dir_bk *d, uint64_t ino, struct dir_node **out, struct stat *st)
{
	int rc;

	*out = dir_node_get(d, ino);
	if (!*out)
		return -ENOENT;
	rc = dir_node_stat(*out, st);
	if (rc < 0) {
		dir_node_put(d, *out);
		*out = NULL;
	}
	return rc;
}

int dir_getattr(struct bk *b, uint64_t ino, struct bk_attr *out)
{
	struct dir_bk *d = dir_of(b);
	struct dir_node *n;
	struct stat st;
	int rc = node_get_stat(d, ino, &n, &st);

	if (rc < 0)
		return rc;
	dir_stat_to_attr(ino, &st, out);
	dir_node_put(d, n);
	return 0;
}

static int set_size(struct dir_node *n, uint64_t size)
{
	int fd = dir_file_reopen(n, O_WRONLY);
	int rc;

	if (fd < 0)
		return fd;
	rc = ftruncate(fd, (off_t)size) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

static int set_times(struct dir_node *n, const struct bk_setattr *s)
{
	struct timespec t[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };

	if (s->valid & (BK_SET_ATIME | BK_SET_ATIME_NOW))
		t[0] = s->valid & BK_SET_ATIME_NOW ? (struct timespec){ .tv_nsec = UTIME_NOW }
						   : s->atime;
	if (s->valid & (BK_SET_MTIME | BK_SET_MTIME_NOW))
		t[1] = s->valid & BK_SET_MTIME_NOW ? (struct timespec){ .tv_nsec = UTIME_NOW }
						   : s->mtime;
	return utimensat(n->fd, "", t, AT_EMPTY_PATH) < 0 ? -errno : 0;
}

/* Applies s to the host object; the host sets ctime itself (BK_SET_CTIME is not kept). */
static int set_fields(struct dir_node *n, const struct stat *st, const struct bk_setattr *s)
{
	char path[DIR_FD_PATH_MAX];
	int rc = 0;

	if (s->valid & (BK_SET_UID | BK_SET_GID) &&
	    fchownat(n->fd, "", s->valid & BK_SET_UID ? s->uid : (uid_t)-1,
		     s->valid & BK_SET_GID ? s->gid : (gid_t)-1, AT_EMPTY_PATH) < 0)
		rc = -errno;
	/* after chown, which clears setuid and setgid */
	if (rc == 0 && s->valid & BK_SET_MODE && !S_ISLNK(st->st_mode) &&
	    chmod(dir_fd_path(n->fd, path), s->mode & 07777) < 0)
		rc = -errno;
	/* ftruncate() would touch the times even when the size stays */
	if (rc == 0 && s->valid & BK_SET_SIZE && s->size != (uint64_t)st->st_size)
		rc = set_size(n, s->size);
	if (rc == 0 &&
	    s->valid & (BK_SET_ATIME | BK_SET_ATIME_NOW | BK_SET_MTIME | BK_SET_MTIME_NOW))
		rc = set_times(n, s);
	return rc;
}

int dir_setattr(struct bk *b, uint64_t ino, const struct bk_setattr *s, struct bk_attr *out)
{
	struct dir_bk *d = dir_of(b);
	struct dir_node *n;
	struct stat st;
	int rc = node_get_stat(d, ino, &n, &st);

	if (rc < 0)
		return rc;
	rc = bk_setattr_check(st.st_mode, s, DIR_FILE_MAX);
	if (rc == 0) {
		dir_node_change_begin(d, n);
		rc = set_fields(n, &st, s);
		dir_node_change_end(d, n);
	}
	if (rc == 0)
		rc = dir_node_stat(n, &st);
	if (rc == 0)
		dir_stat_to_attr(ino, &st, out);
	dir_node_put(d, n);
	return rc;
}

int dir_lookup(struct bk *b, uint64_t parent, const char *name, struct bk_attr *out)
{
	struct dir_bk *d = dir_of(b);
	struct dir_node *p = dir_node_get(d, parent);
	struct stat st;
	int rc = p ? bk_name_check(name) : -ENOENT;
	int fd = -1;

	if (rc == 0) {
		fd = openat(p->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		rc = fd < 0 ? -errno : 0;
	}
	if (rc == 0 && fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		rc = -errno;
	rc = dir_node_attach(d, rc, fd, &st, out);
	if (p)
		dir_node_put(d, p);
	return rc;
}
