/* The dir backend's change feed: inotify watches on every directory node, read into
 * changes. inotify has no byte ranges, so a file's data change is its whole file: a SIZE
 * change then a DATA change of [0, size). A name created or moved in is NAME_ADD, one
 * deleted or moved out NAME_DEL. What an event reports is decided by the object's host
 * state (size, mtime, ctime) against the last one known (dir_node_news()): what this
 * instance did itself, or reported already, is skipped. When inotify's queue overflows,
 * the events it dropped are unknown: every name is reported changed (NAMES) and every
 * node with a descriptor is checked against its known state, as one event would. */
#include "dir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#define DIR_WATCH_MASK                                                                    \
	(IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | \
	 IN_MOVED_TO | IN_ONLYDIR | IN_EXCL_UNLINK)
#define DIR_EVENTS_BUF 65536

int dir_feed_open(struct dir_bk *d)
{
	d->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (d->inotify_fd < 0) {
		bk_logf(&d->log, BK_LOG_ERR, "dir: %s: inotify: %s", d->path, strerror(errno));
		return -errno;
	}
	return 0;
}

void dir_feed_close(struct dir_bk *d)
{
	if (d->inotify_fd >= 0)
		close(d->inotify_fd);
	free(d->wd_ino);
}

/* Caller holds d->lock: room for wd in wd_ino. */
static int wd_room(struct dir_bk *d, int wd)
{
	size_t cap = d->wd_cap ? d->wd_cap : 256;
	uint64_t *grown;

	while ((size_t)wd >= cap)
		cap *= 2;
	if (cap == d->wd_cap)
		return 0;
	grown = realloc(d->wd_ino, cap * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	memset(grown + d->wd_cap, 0, (cap - d->wd_cap) * sizeof(*grown));
	d->wd_ino = grown;
	d->wd_cap = cap;
	return 0;
}

void dir_feed_watch(struct dir_bk *d, struct dir_node *n)
{
	char path[DIR_FD_PATH_MAX];
	int wd = inotify_add_watch(d->inotify_fd, dir_fd_path(n->fd, path), DIR_WATCH_MASK);

	if (wd < 0 || wd_room(d, wd) < 0) {
		bk_logf(&d->log, BK_LOG_WARN,
			"dir: %s: cannot watch a directory (node %llu): %s; host changes in it "
			"go unseen",
			d->path, (unsigned long long)n->ino, strerror(wd < 0 ? errno : ENOMEM));
		return;
	}
	n->wd = wd;
	d->wd_ino[wd] = n->ino;
}

void dir_feed_unwatch(struct dir_bk *d, struct dir_node *n)
{
	if (n->wd < 0)
		return;
	inotify_rm_watch(d->inotify_fd, n->wd);
	d->wd_ino[n->wd] = 0;
	n->wd = -1;
}

int dir_feed_fd(struct bk *b, int *fd_out, int *poll_ms_out)
{
	*fd_out = dir_of(b)->inotify_fd;
	*poll_ms_out = -1;
	return 0;
}

/* The node the event on name in p concerns (held), if the instance has one. */
static struct dir_node *child_of(struct dir_bk *d, struct dir_node *p, const char *name,
				 struct stat *st)
{
	if (fstatat(p->fd, name, st, AT_SYMLINK_NOFOLLOW) < 0)
		return NULL;
	return dir_node_find_host(d, st->st_dev, st->st_ino);
}

/* What changed in node c since its known state: data (SIZE, then DATA) or attributes. */
static int feed_node(struct dir_bk *d, struct dir_node *c, bk_change_fn emit, void *ctx)
{
	struct stat st;
	struct bk_change ch = { .kind = BK_CH_ATTR };
	enum dir_news news = dir_node_news(d, c, &st);
	int rc = 0;

	if (news == DIR_NEWS_NONE)
		return 0;
	ch.ino = c->ino;
	/* by the state, not the event: an earlier event of the file may report it */
	if (news == DIR_NEWS_DATA && S_ISREG(st.st_mode)) {
		ch = (struct bk_change){ .kind = BK_CH_SIZE,
					 .ino = c->ino,
					 .size = (uint64_t)st.st_size };
		rc = emit(ctx, &ch);
		ch.kind = BK_CH_DATA;
		ch.len = ch.size;
	}
	if (rc == 0 && !(ch.kind == BK_CH_DATA && ch.len == 0))
		rc = emit(ctx, &ch);
	/* what we reported is now what the kernel knows: the state seen before is not news
	 * (a fresh one could show a change made while we reported) */
	dir_node_mark_known(d, c, &st);
	return rc;
}

/* A change to the object name in directory p. */
static int feed_child(struct dir_bk *d, struct dir_node *p, const struct inotify_event *ev,
		      bk_change_fn emit, void *ctx)
{
	struct stat st;
	struct dir_node *c = child_of(d, p, ev->name, &st);
	int rc = c ? feed_node(d, c, emit, ctx) : 0;

	if (c)
		dir_node_put(d, c);
	return rc;
}

/* After an overflow: every name, then every open node, as if each had an event. */
static int feed_rescan(struct dir_bk *d, bk_change_fn emit, void *ctx)
{
	struct bk_change ch = { .kind = BK_CH_NAMES };
	uint64_t *inos;
	size_t n;
	int rc = emit(ctx, &ch);

	if (rc != 0 || (rc = dir_nodes_open(d, &inos, &n)) < 0)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct dir_node *c = dir_node_get(d, inos[i]);

		if (c) {
			rc = feed_node(d, c, emit, ctx);
			dir_node_put(d, c);
		}
	}
	free(inos);
	return rc;
}

static int feed_event(struct dir_bk *d, const struct inotify_event *ev, bk_change_fn emit,
		      void *ctx)
{
	struct bk_change ch = { .name = ev->name };
	struct dir_node *p;
	struct stat st;
	int rc = 0;

	pthread_mutex_lock(&d->lock);
	ch.parent = ev->wd >= 0 && (size_t)ev->wd < d->wd_cap ? d->wd_ino[ev->wd] : 0;
	pthread_mutex_unlock(&d->lock);
	p = ch.parent && ev->len ? dir_node_get(d, ch.parent) : NULL;
	if (!p)
		return 0;
	if (ev->mask & (IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM)) {
		ch.kind = ev->mask & (IN_CREATE | IN_MOVED_TO) ? BK_CH_NAME_ADD : BK_CH_NAME_DEL;
		ch.new_parent = ch.parent;
		/* not marked once reported: each of several names is news */
		if (dir_node_news(d, p, &st) != DIR_NEWS_NONE)
			rc = emit(ctx, &ch);
	} else {
		rc = feed_child(d, p, ev, emit, ctx);
	}
	dir_node_put(d, p);
	return rc;
}

int dir_feed_read(struct bk *b, bk_change_fn emit, void *ctx)
{
	struct dir_bk *d = dir_of(b);
	static _Thread_local char buf[DIR_EVENTS_BUF]
		__attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t got;

	while ((got = read(d->inotify_fd, buf, sizeof(buf))) > 0) {
		for (ssize_t pos = 0; pos < got;) {
			const struct inotify_event *ev = (const struct inotify_event *)(buf + pos);
			int rc;

			pos += (ssize_t)(sizeof(*ev) + ev->len);
			if (ev->mask & IN_Q_OVERFLOW)
				bk_logf(&d->log, BK_LOG_WARN,
					"dir: %s: inotify queue overflow: rescanning what the "
					"kernel holds",
					d->path);
			rc = ev->mask & IN_Q_OVERFLOW ? feed_rescan(d, emit, ctx)
						      : feed_event(d, ev, emit, ctx);
			if (rc != 0)
				return rc;
		}
	}
	return got < 0 && errno != EAGAIN && errno != EINTR ? -errno : 0;
}
