/* The dir backend's node table: one node per host object seen, indexed by node ID and by
 * host identity (dev, inode number, file handle). A node the kernel holds pins its object
 * with an O_PATH descriptor; once the kernel forgets it, the descriptor is closed and the
 * node kept with its file handle, reopened (open_by_handle_at) when fs/ names it again,
 * so a node ID stays the object's for as long as the object lives. The handle carries the
 * host's generation: a recycled inode number does not match it, and gets a new node ID. */
#include "dir.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
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

int dir_node_stat(const struct dir_node *n, struct stat *st)
{
	return fstatat(n->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

/* The file handle of fd, or NULL (no memory, or the host filesystem has none). */
static struct file_handle *handle_of(int fd)
{
	struct file_handle *h = malloc(sizeof(*h) + MAX_HANDLE_SZ);
	int mount_id;

	if (!h)
		return NULL;
	h->handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(fd, "", h, &mount_id, AT_EMPTY_PATH) < 0) {
		free(h);
		return NULL;
	}
	return h;
}

static bool handle_eq(const struct file_handle *a, const struct file_handle *b)
{
	return a->handle_type == b->handle_type && a->handle_bytes == b->handle_bytes &&
	       memcmp(a->f_handle, b->f_handle, a->handle_bytes) == 0;
}

/* Caller holds d->lock. */
static struct dir_node *find_ino(struct dir_bk *d, uint64_t ino)
{
	struct dir_node *n = d->by_ino[bucket_ino(ino)];

	while (n && n->ino != ino)
		n = n->by_ino;
	return n;
}

/* Caller holds d->lock: takes n out of both indexes and frees it. */
static void node_free(struct dir_bk *d, struct dir_node *n)
{
	struct dir_node **p = &d->by_ino[bucket_ino(n->ino)];

	while (*p != n)
		p = &(*p)->by_ino;
	*p = n->by_ino;
	p = &d->by_host[bucket_host(n->dev, n->hino)];
	while (*p != n)
		p = &(*p)->by_host;
	*p = n->by_host;
	dir_feed_unwatch(d, n);
	if (n->fd >= 0)
		close(n->fd);
	pthread_rwlock_destroy(&n->io_lock);
	free(n->handle);
	free(n);
}

/* Caller holds d->lock: the node of (dev, hino) whose handle is h (any, if h is NULL; then
 * only a node with a descriptor). An idle node of that number with another handle names
 * an object gone, whose number the host recycled: it is freed. */
static struct dir_node *find_host(struct dir_bk *d, dev_t dev, ino_t hino,
				  const struct file_handle *h)
{
	struct dir_node *n = d->by_host[bucket_host(dev, hino)], *next;

	for (; n; n = next) {
		next = n->by_host;
		if (n->dev != dev || n->hino != hino || n->is_gone)
			continue;
		if (!h)
			return n->fd >= 0 ? n : NULL;
		if (!n->handle || handle_eq(n->handle, h))
			return n;
		if (n->refs == 0 && n->fd < 0)
			node_free(d, n);
	}
	return NULL;
}

/* Caller holds d->lock: gives an idle node its descriptor back; false if its object is
 * gone (the node is then freed unless held). */
static bool node_reopen(struct dir_bk *d, struct dir_node *n)
{
	if (n->fd >= 0)
		return true;
	n->fd = open_by_handle_at(d->mount_fd, n->handle, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (n->fd >= 0)
		return true;
	n->is_gone = true;
	if (n->refs == 0)
		node_free(d, n);
	return false;
}

struct dir_node *dir_node_get(struct dir_bk *d, uint64_t ino)
{
	struct dir_node *n;

	pthread_mutex_lock(&d->lock);
	n = find_ino(d, ino);
	if (n && (n->is_gone || !node_reopen(d, n)))
		n = NULL;
	if (n)
		n->refs++;
	pthread_mutex_unlock(&d->lock);
	return n;
}

struct dir_node *dir_node_find_host(struct dir_bk *d, dev_t dev, ino_t hino)
{
	struct dir_node *n;

	pthread_mutex_lock(&d->lock);
	n = find_host(d, dev, hino, NULL);
	if (n)
		n->refs++;
	pthread_mutex_unlock(&d->lock);
	return n;
}

void dir_node_put(struct dir_bk *d, struct dir_node *n)
{
	pthread_mutex_lock(&d->lock);
	if (--n->refs == 0 && n->is_gone) {
		node_free(d, n);
	} else if (n->refs == 0 && n->is_idle && n->fd >= 0) {
		close(n->fd);
		n->fd = -1;
	}
	pthread_mutex_unlock(&d->lock);
}

/* Caller holds d->lock. */
static void set_known(struct dir_node *n, const struct stat *st)
{
	n->own_ctime = st->st_ctim;
	n->own_mtime = st->st_mtim;
	n->own_size = st->st_size;
}

/* Caller holds d->lock. Takes over fd and h. */
static struct dir_node *node_new(struct dir_bk *d, uint64_t ino, int fd, const struct stat *st,
				 struct file_handle *h)
{
	struct dir_node *n = calloc(1, sizeof(*n));
	size_t hb = bucket_host(st->st_dev, st->st_ino), ib = bucket_ino(ino);

	if (!n)
		return NULL;
	*n = (struct dir_node){ .ino = ino,
				.dev = st->st_dev,
				.hino = st->st_ino,
				.fd = fd,
				.wd = -1,
				.handle = h,
				.by_ino = d->by_ino[ib],
				.by_host = d->by_host[hb] };
	pthread_rwlock_init(&n->io_lock, NULL);
	set_known(n, st); /* what the kernel learns from the caller */
	d->by_ino[ib] = n;
	d->by_host[hb] = n;
	if (S_ISDIR(st->st_mode))
		dir_feed_watch(d, n);
	return n;
}

int dir_node_attach(struct dir_bk *d, int rc, int fd, const struct stat *st, struct bk_attr *out)
{
	struct file_handle *h;
	struct dir_node *n;
	uint64_t ino = 0;

	if (rc < 0) {
		if (fd >= 0)
			close(fd);
		return rc;
	}
	h = handle_of(fd);

	pthread_mutex_lock(&d->lock);
	n = find_host(d, st->st_dev, st->st_ino, h);
	if (n) {
		ino = n->ino;
		n->is_idle = false;
		if (n->fd < 0) { /* the kernel held nothing of it: its state is news to none */
			n->fd = fd;
			fd = -1;
			set_known(n, st);
		}
		free(h);
	} else {
		n = node_new(d, d->next_ino, fd, st, h);
		ino = n ? d->next_ino++ : 0;
		fd = n ? -1 : fd;
		if (!n)
			free(h);
	}
	pthread_mutex_unlock(&d->lock);
	if (fd >= 0)
		close(fd);
	if (!ino)
		return -ENOMEM;
	dir_stat_to_attr(ino, st, out);
	return 0;
}

/* Whether idle nodes can be reopened: open_by_handle_at() needs CAP_DAC_READ_SEARCH and a
 * host filesystem with handles. Without, nodes keep their descriptors. */
static bool can_reopen(struct dir_bk *d, int fd)
{
	struct file_handle *h = handle_of(fd);
	int tfd = -1;

	d->mount_fd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (h && d->mount_fd >= 0)
		tfd = open_by_handle_at(d->mount_fd, h, O_PATH | O_CLOEXEC);
	free(h);
	if (tfd < 0)
		return false;
	close(tfd);
	return true;
}

int dir_node_root(struct dir_bk *d, int fd)
{
	struct stat st;
	struct dir_node *n;

	if (fstat(fd, &st) < 0)
		return -errno;
	d->root_dev = st.st_dev;
	d->can_reopen = can_reopen(d, fd);
	pthread_mutex_lock(&d->lock);
	n = node_new(d, BK_ROOT_INO, fd, &st, NULL);
	pthread_mutex_unlock(&d->lock);
	return n ? 0 : -ENOMEM;
}

void dir_nodes_free(struct dir_bk *d)
{
	for (size_t i = 0; i < DIR_BUCKETS; i++) {
		while (d->by_ino[i])
			node_free(d, d->by_ino[i]);
	}
	if (d->mount_fd >= 0)
		close(d->mount_fd);
}

int dir_nodes_open(struct dir_bk *d, uint64_t **out, size_t *n)
{
	size_t cap = 0;
	uint64_t *inos = NULL;
	int rc = 0;

	*n = 0;
	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < DIR_BUCKETS && rc == 0; i++) {
		for (struct dir_node *p = d->by_ino[i]; p && rc == 0; p = p->by_ino) {
			if (p->fd < 0 || p->is_gone)
				continue;
			if (*n == cap) {
				uint64_t *grown =
					realloc(inos, (cap ? 2 * cap : 64) * sizeof(*inos));

				cap = cap ? 2 * cap : 64;
				rc = grown ? 0 : -ENOMEM;
				inos = grown ? grown : inos;
			}
			if (rc == 0)
				inos[(*n)++] = p->ino;
		}
	}
	pthread_mutex_unlock(&d->lock);
	if (rc < 0) {
		free(inos);
		inos = NULL;
		*n = 0;
	}
	*out = inos;
	return rc;
}

void dir_forget(struct bk *b, uint64_t ino)
{
	struct dir_bk *d = dir_of(b);
	struct dir_node *n;
	struct stat st;

	if (ino == BK_ROOT_INO)
		return;
	pthread_mutex_lock(&d->lock);
	n = find_ino(d, ino);
	if (n && n->fd >= 0 && dir_node_stat(n, &st) == 0) {
		/* no name left: nothing can name it again; else closed once let go, if it
		 * can be reopened (a handle, on PATH's own filesystem) */
		n->is_gone = st.st_nlink == 0;
		n->is_idle = d->can_reopen && n->handle && n->dev == d->root_dev;
		n->refs++;
	} else {
		n = NULL;
	}
	pthread_mutex_unlock(&d->lock);
	if (n)
		dir_node_put(d, n);
}

static bool ts_eq(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/* Records the host state as known, and ends a change when delta is -1. Stats under the
 * lock: two changes ending at once record the later state. */
static void node_own(struct dir_bk *d, struct dir_node *n, int delta)
{
	struct stat st;

	pthread_mutex_lock(&d->lock);
	if (dir_node_stat(n, &st) == 0)
		set_known(n, &st);
	n->changing += delta;
	pthread_mutex_unlock(&d->lock);
}

void dir_node_mark_own(struct dir_bk *d, struct dir_node *n)
{
	node_own(d, n, 0);
}

void dir_node_mark_known(struct dir_bk *d, struct dir_node *n, const struct stat *st)
{
	pthread_mutex_lock(&d->lock);
	set_known(n, st);
	pthread_mutex_unlock(&d->lock);
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

enum dir_news dir_node_news(struct dir_bk *d, struct dir_node *n, struct stat *st)
{
	enum dir_news news = DIR_NEWS_NONE;

	pthread_mutex_lock(&d->lock);
	if (dir_node_stat(n, st) < 0 || n->changing > 0)
		news = DIR_NEWS_NONE;
	else if (n->own_size != st->st_size || !ts_eq(&n->own_mtime, &st->st_mtim))
		news = DIR_NEWS_DATA;
	else if (!ts_eq(&n->own_ctime, &st->st_ctim))
		news = DIR_NEWS_ATTR;
	pthread_mutex_unlock(&d->lock);
	return news;
}
