/* The backend registry and the checked bk_*() wrappers through which fs/ reaches every
 * slot: they serialise backends that are not thread-safe, answer for optional slots left
 * NULL, and assert that results follow the -errno rule. The backends themselves live in
 * their own files (mem.c, ...); SOURCE text is parsed by fs/, never here. */
#include "backend.h"
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BK_ERRNO_MAX   4095 /* results below -BK_ERRNO_MAX are not errnos */
#define BK_SOURCES_MAX 256
#define BK_LOG_MAX     512 /* bytes of one bk_logf() message */

static const struct bk_ops *const registry[] = {
	&bk_mem_ops,
	&bk_dir_ops,
#if HAVE_SQLITE
	&bk_sqlite_ops,
#endif
	NULL,
};

/* Built once from registry[], then only read. */
static char sources[BK_SOURCES_MAX];
static pthread_once_t sources_once = PTHREAD_ONCE_INIT;

/* "mem:, mem:SIZE" or "sqlite:PATH": the forms of one backend's SOURCE. */
static int source_forms(const struct bk_ops *ops, char *buf, size_t size)
{
	if (ops->source_form == BK_SOURCE_PATH)
		return snprintf(buf, size, "%s:PATH", ops->name);
	return snprintf(buf, size, "%s:, %s:SIZE", ops->name, ops->name);
}

static void bk_sources_build(void)
{
	size_t used = 0;

	for (const struct bk_ops *const *e = registry; *e && used + 2 < sizeof(sources); e++) {
		int n;

		if (used)
			used += (size_t)snprintf(sources + used, sizeof(sources) - used, ", ");
		n = source_forms(*e, sources + used, sizeof(sources) - used);
		used += n > 0 ? (size_t)n : 0;
	}
}

const char *bk_sources(void)
{
	pthread_once(&sources_once, bk_sources_build);
	return sources;
}

const struct bk_ops *bk_find(const char *scheme, size_t len)
{
	for (const struct bk_ops *const *e = registry; *e; e++) {
		if (strlen((*e)->name) == len && strncmp((*e)->name, scheme, len) == 0)
			return *e;
	}
	return NULL;
}

void bk_logf(const struct bk_log *log, enum bk_log_level level, const char *fmt, ...)
{
	char msg[BK_LOG_MAX];
	va_list ap;

	if (!log || !log->fn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log->fn(log->ctx, level, msg);
}

static int bk_lock_new(struct bk *b)
{
	pthread_mutex_t *lock;

	b->lock = NULL;
	if (b->ops->flags & BK_F_THREADSAFE)
		return 0;
	lock = malloc(sizeof(*lock));
	if (!lock)
		return -ENOMEM;
	pthread_mutex_init(lock, NULL);
	b->lock = lock;
	return 0;
}

int bk_open(const struct bk_ops *ops, const struct bk_source *src, const struct bk_log *log,
	    struct bk **out)
{
	struct bk *b;
	int rc;

	*out = NULL;
	if (ops->version != BK_OPS_VERSION) {
		bk_logf(log, BK_LOG_ERR, "%s: backend interface version %d, this sigbusfs needs %d",
			ops->name, ops->version, BK_OPS_VERSION);
		return -EPROTO;
	}
	rc = ops->open(src, log, &b);
	assert(rc <= 0 && rc >= -BK_ERRNO_MAX);
	if (rc < 0)
		return rc;
	b->ops = ops;
	rc = bk_lock_new(b);
	if (rc < 0)
		goto out_close;
	*out = b;
	return 0;

out_close:
	ops->close(b);
	return rc;
}

void bk_close(struct bk *b)
{
	pthread_mutex_t *lock = b->lock;

	b->ops->close(b);
	if (lock) {
		pthread_mutex_destroy(lock);
		free(lock);
	}
}

const char *bk_name(const struct bk *b)
{
	return b->ops->name;
}

static void bk_enter(struct bk *b)
{
	if (b->lock)
		pthread_mutex_lock(b->lock);
}

static void bk_leave(struct bk *b)
{
	if (b->lock)
		pthread_mutex_unlock(b->lock);
}

static void bk_check(long long rc)
{
	assert(rc >= -BK_ERRNO_MAX);
}

/* The body of every wrapper: rc = slot(args), or absent for a NULL slot, under the
 * backend's mutex when it has one, then checked. */
#define BK_CALL(rc, b, slot, absent, ...)                                       \
	do {                                                                    \
		bk_enter(b);                                                    \
		(rc) = (b)->ops->slot ? (b)->ops->slot(__VA_ARGS__) : (absent); \
		bk_leave(b);                                                    \
		bk_check(rc);                                                   \
	} while (0)

int bk_statfs(struct bk *b, struct statvfs *out)
{
	int rc;

	BK_CALL(rc, b, statfs, -ENOSYS, b, out);
	return rc;
}

int bk_getattr(struct bk *b, uint64_t ino, struct bk_attr *out)
{
	int rc;

	BK_CALL(rc, b, getattr, -ENOSYS, b, ino, out);
	return rc;
}

int bk_setattr(struct bk *b, uint64_t ino, const struct bk_setattr *s, struct bk_attr *out)
{
	int rc;

	BK_CALL(rc, b, setattr, -ENOSYS, b, ino, s, out);
	return rc;
}

int bk_lookup(struct bk *b, uint64_t parent, const char *name, struct bk_attr *out)
{
	int rc;

	BK_CALL(rc, b, lookup, -ENOSYS, b, parent, name, out);
	return rc;
}

int bk_mknod(struct bk *b, uint64_t parent, const char *name, const struct bk_new *n,
	     struct bk_attr *out)
{
	int rc;

	BK_CALL(rc, b, mknod, -ENOSYS, b, parent, name, n, out);
	return rc;
}

int bk_symlink(struct bk *b, uint64_t parent, const char *name, const char *target,
	       const struct bk_new *n, struct bk_attr *out)
{
	int rc;

	BK_CALL(rc, b, symlink, -ENOSYS, b, parent, name, target, n, out);
	return rc;
}

ssize_t bk_readlink(struct bk *b, uint64_t ino, char *buf, size_t size)
{
	ssize_t rc;

	BK_CALL(rc, b, readlink, -ENOSYS, b, ino, buf, size);
	return rc;
}

int bk_link(struct bk *b, uint64_t ino, uint64_t newparent, const char *newname,
	    struct bk_attr *out)
{
	int rc;

	BK_CALL(rc, b, link, -ENOSYS, b, ino, newparent, newname, out);
	return rc;
}

int bk_unlink(struct bk *b, uint64_t parent, const char *name)
{
	int rc;

	BK_CALL(rc, b, unlink, -ENOSYS, b, parent, name);
	return rc;
}

int bk_rmdir(struct bk *b, uint64_t parent, const char *name)
{
	int rc;

	BK_CALL(rc, b, rmdir, -ENOSYS, b, parent, name);
	return rc;
}

int bk_rename(struct bk *b, uint64_t parent, const char *name, uint64_t newparent,
	      const char *newname, unsigned flags)
{
	int rc;

	BK_CALL(rc, b, rename, -ENOSYS, b, parent, name, newparent, newname, flags);
	return rc;
}

int bk_readdir(struct bk *b, uint64_t dir, uint64_t cookie, bk_emit_fn emit, void *ctx)
{
	int rc;

	BK_CALL(rc, b, readdir, -ENOSYS, b, dir, cookie, emit, ctx);
	return rc;
}

void bk_forget(struct bk *b, uint64_t ino)
{
	bk_enter(b);
	if (b->ops->forget)
		b->ops->forget(b, ino);
	bk_leave(b);
}

int bk_fopen(struct bk *b, uint64_t ino, int flags, uint64_t *fh_out)
{
	int rc;

	*fh_out = 0;
	BK_CALL(rc, b, fopen, 0, b, ino, flags, fh_out);
	assert(rc < 0 || !b->ops->fopen || *fh_out != 0);
	return rc;
}

void bk_frelease(struct bk *b, uint64_t ino, uint64_t fh)
{
	bk_enter(b);
	if (b->ops->frelease && fh)
		b->ops->frelease(b, ino, fh);
	bk_leave(b);
}

ssize_t bk_read(struct bk *b, uint64_t ino, uint64_t fh, void *buf, size_t len, off_t off)
{
	ssize_t rc;

	BK_CALL(rc, b, read, -ENOSYS, b, ino, fh, buf, len, off);
	assert(rc < 0 || (size_t)rc <= len);
	return rc;
}

ssize_t bk_write(struct bk *b, uint64_t ino, uint64_t fh, const void *buf, size_t len, off_t off)
{
	ssize_t rc;

	BK_CALL(rc, b, write, -ENOSYS, b, ino, fh, buf, len, off);
	assert(rc < 0 || (size_t)rc == len);
	return rc;
}

int bk_fallocate(struct bk *b, uint64_t ino, uint64_t fh, int mode, off_t off, off_t len)
{
	int rc;

	BK_CALL(rc, b, fallocate, -ENOSYS, b, ino, fh, mode, off, len);
	return rc;
}

off_t bk_lseek(struct bk *b, uint64_t ino, off_t off, int whence)
{
	off_t rc;

	BK_CALL(rc, b, lseek, -ENOSYS, b, ino, off, whence);
	return rc;
}

int bk_fsync(struct bk *b, uint64_t ino, uint64_t fh, bool datasync)
{
	int rc;

	BK_CALL(rc, b, fsync, 0, b, ino, fh, datasync);
	return rc;
}

bool bk_has_read_direct(const struct bk *b)
{
	return b->ops->read_direct != NULL;
}

/* What bk_read_direct() and bk_read_fd() pass between the backend and the caller's
 * reply: the checks. */
struct bk_direct {
	union {
		bk_reply_fn iov;
		bk_reply_fd_fn fd;
	} reply;
	void *ctx;
	size_t len;	  /* asked for */
	size_t given;	  /* bytes the backend described */
	unsigned replies; /* calls of reply */
	int rc;		  /* what reply returned */
};

/* Before the reply: counts it and the bytes it carries. */
static void bk_direct_count(struct bk_direct *d, size_t given)
{
	d->given += given;
	d->replies++;
	assert(d->replies == 1 && d->given <= d->len);
}

static int bk_direct_replied(struct bk_direct *d, int rc)
{
	assert(rc <= 0 && rc >= -BK_ERRNO_MAX);
	d->rc = rc;
	return rc;
}

static void bk_direct_check(const struct bk_direct *d, ssize_t rc)
{
	assert(rc < 0 ? d->replies == 0 || rc == d->rc : d->replies == 1 && (size_t)rc == d->given);
}

static int bk_direct_reply(void *ctx, const struct iovec *iov, int n)
{
	struct bk_direct *d = ctx;
	size_t given = 0;

	for (int i = 0; i < n; i++)
		given += iov[i].iov_len;
	bk_direct_count(d, given);
	return bk_direct_replied(d, d->reply.iov(d->ctx, iov, n));
}

ssize_t bk_read_direct(struct bk *b, uint64_t ino, uint64_t fh, size_t len, off_t off,
		       bk_reply_fn reply, void *ctx)
{
	struct bk_direct d = { .reply.iov = reply, .ctx = ctx, .len = len };
	ssize_t rc;

	BK_CALL(rc, b, read_direct, -ENOSYS, b, ino, fh, len, off, bk_direct_reply, &d);
	bk_direct_check(&d, rc);
	return rc;
}

bool bk_has_read_fd(const struct bk *b)
{
	return b->ops->read_fd != NULL;
}

static int bk_fd_reply(void *ctx, int fd, off_t off, size_t len)
{
	struct bk_direct *d = ctx;

	assert(fd >= 0 && off >= 0);
	bk_direct_count(d, len);
	return bk_direct_replied(d, d->reply.fd(d->ctx, fd, off, len));
}

ssize_t bk_read_fd(struct bk *b, uint64_t ino, uint64_t fh, size_t len, off_t off,
		   bk_reply_fd_fn reply, void *ctx)
{
	struct bk_direct d = { .reply.fd = reply, .ctx = ctx, .len = len };
	ssize_t rc;

	BK_CALL(rc, b, read_fd, -ENOSYS, b, ino, fh, len, off, bk_fd_reply, &d);
	bk_direct_check(&d, rc);
	return rc;
}

int bk_setxattr(struct bk *b, uint64_t ino, const char *name, const void *value, size_t size,
		int flags)
{
	int rc;

	BK_CALL(rc, b, setxattr, -ENOSYS, b, ino, name, value, size, flags);
	return rc;
}

ssize_t bk_getxattr(struct bk *b, uint64_t ino, const char *name, void *buf, size_t size)
{
	ssize_t rc;

	BK_CALL(rc, b, getxattr, -ENOSYS, b, ino, name, buf, size);
	return rc;
}

ssize_t bk_listxattr(struct bk *b, uint64_t ino, char *buf, size_t size)
{
	ssize_t rc;

	BK_CALL(rc, b, listxattr, -ENOSYS, b, ino, buf, size);
	return rc;
}

int bk_removexattr(struct bk *b, uint64_t ino, const char *name)
{
	int rc;

	BK_CALL(rc, b, removexattr, -ENOSYS, b, ino, name);
	return rc;
}

int bk_tmpfile(struct bk *b, uint64_t parent, const struct bk_new *n, struct bk_attr *out)
{
	int rc;

	BK_CALL(rc, b, tmpfile, -ENOSYS, b, parent, n, out);
	return rc;
}

int bk_feed_fd(struct bk *b, int *fd_out, int *poll_ms_out)
{
	int rc;

	*fd_out = -1;
	*poll_ms_out = -1;
	BK_CALL(rc, b, feed_fd, -ENOSYS, b, fd_out, poll_ms_out);
	assert(rc < 0 || *fd_out >= 0 || *poll_ms_out >= 0);
	return rc;
}

/* Not under the wrappers' mutex: emit may call other wrappers (fs/ does). */
int bk_feed_read(struct bk *b, bk_change_fn emit, void *ctx)
{
	int rc = b->ops->feed_read ? b->ops->feed_read(b, emit, ctx) : -ENOSYS;

	bk_check(rc);
	return rc;
}
