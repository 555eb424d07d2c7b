/* The dir backend's node table: one node per host object the kernel may hold, indexed by
 * node ID and by host identity (dev, inode number), each pinning its object with an
 * O_PATH descriptor; and the slots that read or change one node's attributes. */
#include "common.h"
#include "dir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static size_t bucket_ino(uint64_t ino)
{
	return (size_t)(ino * UINT64_C(0x9e3779b97f4a7c15) >> 52) % DIR_BUCKETS;
}

static size_t bucket_host(dev_t dev, ino_t hino)
{
	return bucket_ino((uint64_t)hino ^ ((uint64_t)dev << 32));
}

void dir_stat_to_attr(uint64_t ino, const struct stat *st, struct bk_attr *out)
{
	*out = (struct bk_attr){
		.ino = ino,
		.mode = st->st_mode,
		.nlink = (uint32_t)st->st_nlink,
		.uid = st->st_uid,
		.gid = st->st_gid,
		.rdev = st->st_rdev,
		.size = (uint64_t)st->st_size,
		.blocks = (uint64_t)st->st_blocks,
		.atime = st->st_atim,
		.mtime = st->st_mtim,
		.ctime = st->st_ctim,
	};
}

static int node_stat(const struct dir_node *n, struct stat *st)
{
	return fstatat(n->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

/* Caller holds d->lock. */
static struct dir_node *find_ino(struct dir_bk *d, uint64_t ino)
{
	struct dir_node *n = d->by_ino[bucket_ino(ino)];

	while (n && n->ino != ino)
		n = n->by_ino;
	return n;
}

static struct dir_node *find_host(struct dir_bk *d, dev_t dev, ino_t hino)
{
	struct dir_node *n = d->by_host[bucket_host(dev, hino)];

	while (n && (n->dev != dev || n->hino != hino || n->is_forgotten))
		n = n->by_host;
	return n;
}

struct dir_node *dir_node_get(struct dir_bk *d, uint64_t ino)
{
	struct dir_node *n;

	pthread_mutex_lock(&d->lock);
	n = find_ino(d, ino);
	if (n)
		n->refs++;
	pthread_mutex_unlock(&d->lock);
	return n;
}

struct dir_node *dir_node_find_host(struct dir_bk *d, dev_t dev, ino_t hino)
{
	struct dir_node *n;

	pthread_mutex_lock(&d->lock);
	n = find_host(d, dev, hino);
	if (n)
		n->refs++;
	pthread_mutex_unlock(&d->lock);
	return n;
}

/* Caller holds d->lock: takes n out of both indexes. */
static void unlink_node(struct dir_bk *d, struct dir_node *n)
{
	struct dir_node **p = &d->by_ino[bucket_ino(n->ino)];

	while (*p != n)
		p = &(*p)->by_ino;
	*p = n->by_ino;
	p = &d->by_host[bucket_host(n->dev, n->hino)];
	while (*p != n)
		p = &(*p)->by_host;
	*p = n->by_host;
}

void dir_node_put(struct dir_bk *d, struct dir_node *n)
{
	bool is_last;

	pthread_mutex_lock(&d->lock);
	is_last = --n->refs == 0 && n->is_forgotten;
	if (is_last) {
		unlink_node(d, n);
		dir_feed_unwatch(d, n);
	}
	pthread_mutex_unlock(&d->lock);
	if (is_last) {
		close(n->fd);
		free(n);
	}
}

/* Caller holds d->lock. */
static struct dir_node *node_new(struct dir_bk *d, uint64_t ino, int fd, const struct stat *st)
{
	struct dir_node *n = calloc(1, sizeof(*n));
	size_t hb = bucket_host(st->st_dev, st->st_ino), ib = bucket_ino(ino);

	if (!n)
		return NULL;
	*n = (struct dir_node){ .ino = ino, .dev = st->st_dev, .hino = st->st_ino, .fd = fd,
				.wd = -1, .by_ino = d->by_ino[ib], .by_host = d->by_host[hb] };
	d->by_ino[ib] = n;
	d->by_host[hb] = n;
	if (S_ISDIR(st->st_mode))
		dir_feed_watch(d, n);
	return n;
}

int dir_node_attach(struct dir_bk *d, int fd, const struct stat *st, struct bk_attr *out)
{
	struct dir_node *n;
	uint64_t ino = 0;

	pthread_mutex_lock(&d->lock);
	n = find_host(d, st->st_dev, st->st_ino);
	if (n) {
		ino = n->ino;
	} else {
		n = node_new(d, d->next_ino, fd, st);
		ino = n ? d->next_ino++ : 0;
	}
	pthread_mutex_unlock(&d->lock);
	if (!ino) {
		close(fd);
		return -ENOMEM;
	}
	if (n->fd != fd)
		close(fd);
	dir_stat_to_attr(ino, st, out);
	return 0;
}

int dir_node_root(struct dir_bk *d, int fd)
{
	struct stat st;
	struct dir_node *n;

	if (fstat(fd, &st) < 0)
		return -errno;
	pthread_mutex_lock(&d->lock);
	n = node_new(d, BK_ROOT_INO, fd, &st);
	pthread_mutex_unlock(&d->lock);
	return n ? 0 : -ENOMEM;
}

void dir_nodes_free(struct dir_bk *d)
{
	for (size_t i = 0; i < DIR_BUCKETS; i++) {
		while (d->by_ino[i]) {
			struct dir_node *n = d->by_ino[i];

			d->by_ino[i] = n->by_ino;
			close(n->fd);
			free(n);
		}
	}
}

/* Records the host ctime as known, and ends a change when delta is -1. */
static void node_own(struct dir_bk *d, struct dir_node *n, int delta)
{
	struct stat st;
	bool has_stat = node_stat(n, &st) == 0;

	pthread_mutex_lock(&d->lock);
	if (has_stat)
		n->own_ctime = st.st_ctim;
	n->changing += delta;
	pthread_mutex_unlock(&d->lock);
}

void dir_node_mark_own(struct dir_bk *d, struct dir_node *n)
{
	node_own(d, n, 0);
}

void dir_node_change_begin(struct dir_bk *d, struct dir_node *n)
{
	pthread_mutex_lock(&d->lock);
	n->changing++;
	pthread_mutex_unlock(&d->lock);
}

void dir_node_change_end(struct dir_bk *d, struct dir_node *n)
{
	node_own(d, n, -1);
}

bool dir_node_is_own(struct dir_bk *d, struct dir_node *n)
{
	struct stat st;
	bool is_own;

	if (node_stat(n, &st) < 0)
		return false;
	pthread_mutex_lock(&d->lock);
	is_own = n->changing > 0 || (n->own_ctime.tv_sec == st.st_ctim.tv_sec &&
		 n->own_ctime.tv_nsec == st.st_ctim.tv_nsec);
	pthread_mutex_unlock(&d->lock);
	return is_own;
}

int dir_getattr(struct bk *b, uint64_t ino, struct bk_attr *out)
{
	struct dir_bk *d = dir_of(b);
	struct dir_node *n = dir_node_get(d, ino);
	struct stat st;
	int rc;

	if (!n)
		return -ENOENT;
	rc = node_stat(n, &st);
	if (rc == 0)
		dir_stat_to_attr(ino, &st, out);
	dir_node_put(d, n);
	return rc;
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
	if (rc == 0 && s->valid & BK_SET_SIZE)
		rc = set_size(n, s->size);
	if (rc == 0 && s->valid & (BK_SET_ATIME | BK_SET_ATIME_NOW | BK_SET_MTIME |
				   BK_SET_MTIME_NOW))
		rc = set_times(n, s);
	return rc;
}

int dir_setattr(struct bk *b, uint64_t ino, const struct bk_setattr *s, struct bk_attr *out)
{
	struct dir_bk *d = dir_of(b);
	struct dir_node *n = dir_node_get(d, ino);
	struct stat st;
	int rc;

	if (!n)
		return -ENOENT;
	rc = node_stat(n, &st);
	if (rc == 0)
		rc = bk_setattr_check(st.st_mode, s, DIR_FILE_MAX);
	if (rc == 0) {
		dir_node_change_begin(d, n);
		rc = set_fields(n, &st, s);
		dir_node_change_end(d, n);
	}
	if (rc == 0)
		rc = node_stat(n, &st);
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
	if (rc == 0)
		rc = dir_node_attach(d, fd, &st, out);
	else if (fd >= 0)
		close(fd);
	if (p)
		dir_node_put(d, p);
	return rc;
}

void dir_forget(struct bk *b, uint64_t ino)
{
	struct dir_bk *d = dir_of(b);
	struct dir_node *n;

	if (ino == BK_ROOT_INO)
		return;
	pthread_mutex_lock(&d->lock);
	n = find_ino(d, ino);
	if (n) {
		n->is_forgotten = true;
		n->refs++;
	}
	pthread_mutex_unlock(&d->lock);
	if (n)
		dir_node_put(d, n);
}
