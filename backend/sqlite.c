/* The sqlite backend (sqlite:PATH): the backend object, opening (every check that can
 * refuse a database happens here, before anything is mounted, and changes nothing in a
 * refused file), the connection on first use, closing, the one log function and the one
 * map from SQLite result codes to errnos, and the exported bk_sqlite_ops table. The
 * schema is sqlite_schema.c's; sqlite.h lists the other files.
 *
 * Opening validates with a connection of its own and closes it: fuse_daemonize() forks
 * after the backend is opened, and SQLite connections (their POSIX locks) and threads do
 * not survive a fork. The writer, the readers and the flusher start on the first call. */
#include "sqlite.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SQ_MAGIC     "SQLite format 3" /* the first 16 bytes of a database, with the NUL */
#define SQ_MAGIC_LEN 16

void sqlite_log(const struct sqlite_bk *s, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	bk_logf(&s->log, BK_LOG_ERR, "%s", msg);
}

int sqlite_to_errno(int rc)
{
	switch (rc) {
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
		return -EEXIST;
	case SQLITE_IOERR_NOMEM:
		return -ENOMEM;
	}
	switch (rc & 0xff) {
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_INTERRUPT:
		return -EINTR;
	case SQLITE_TOOBIG:
		return -EFBIG;
	default: /* CORRUPT, NOTADB, IOERR, CANTOPEN, ...: the caller logged SQLite's message */
		return -EIO;
	}
}

void sqlite_now(struct timespec *out)
{
	clock_gettime(CLOCK_REALTIME, out);
}

int sqlite_attach(struct sqlite_bk *s)
{
	int rc = atomic_load(&s->attach_rc);

	if (rc != 1)
		return rc;
	pthread_mutex_lock(&s->attach_lock);
	rc = atomic_load(&s->attach_rc);
	if (rc == 1) {
		rc = sqlite_txn_start(s);
		if (rc < 0)
			sqlite_log(s, "sqlite: %s: cannot serve the database: %s", s->path,
				   strerror(-rc));
		atomic_store(&s->attach_rc, rc);
	}
	pthread_mutex_unlock(&s->attach_lock);
	return rc;
}

/* A missing database is created: its directory must exist and be writable. An existing
 * one needs it writable too, for the -wal and -shm files. */
static int open_check_dir(const struct sqlite_bk *s, bool is_new)
{
	struct stat st;
	int rc = stat(s->dir, &st) < 0 ? -errno : 0;

	if (rc == 0 && !S_ISDIR(st.st_mode))
		rc = -ENOTDIR;
	if (rc == 0 && faccessat(AT_FDCWD, s->dir, W_OK | X_OK, AT_EACCESS) < 0)
		rc = -errno;
	if (rc < 0 && is_new)
		sqlite_log(s, "sqlite: %s: cannot create the database in %s: %s", s->path, s->dir,
			   strerror(-rc));
	else if (rc < 0)
		sqlite_log(s,
			   "sqlite: %s: read-only directory %s (the -wal and -shm files go there): "
			   "%s",
			   s->path, s->dir, strerror(-rc));
	return rc;
}

/* An existing file must start as a SQLite database does (or be empty: SQLite's empty
 * database) and be writable. */
static int open_check_file(const struct sqlite_bk *s, const struct stat *st)
{
	char magic[SQ_MAGIC_LEN];
	ssize_t n = 0;
	int fd;

	if (!S_ISREG(st->st_mode)) {
		sqlite_log(s, "sqlite: %s: not a regular file", s->path);
		return -EINVAL;
	}
	fd = open(s->path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = pread(fd, magic, sizeof(magic), 0);
		close(fd);
	}
	if (fd < 0 || n < 0) {
		sqlite_log(s, "sqlite: %s: %s", s->path, strerror(errno));
		return -errno;
	}
	if (st->st_size > 0 && (n != SQ_MAGIC_LEN || memcmp(magic, SQ_MAGIC, SQ_MAGIC_LEN) != 0)) {
		sqlite_log(s, "sqlite: %s: not a SQLite database", s->path);
		return -EINVAL;
	}
	if (faccessat(AT_FDCWD, s->path, R_OK | W_OK, AT_EACCESS) < 0) {
		int err = errno;

		sqlite_log(s, "sqlite: %s: read-only file: %s", s->path, strerror(err));
		return -err;
	}
	return 0;
}

static int open_check(const struct sqlite_bk *s)
{
	struct stat st;

	if (stat(s->path, &st) == 0) {
		int rc = open_check_file(s, &st);

		return rc < 0 ? rc : open_check_dir(s, false);
	}
	if (errno != ENOENT) {
		int err = errno;

		sqlite_log(s, "sqlite: %s: %s", s->path, strerror(err));
		return -err;
	}
	return open_check_dir(s, true);
}

/* Creates the schema in a new database, or checks an existing one, on a connection
 * that is closed again (see the top of this file). */
static int open_validate(struct sqlite_bk *s)
{
	struct sqlite_conn c;
	int rc = sqlite_conn_open(s, SQ_VALIDATE, &c);

	if (rc < 0)
		return rc;
	rc = sqlite_schema_prepare(c.db, s);
	sqlite_conn_close(&c);
	return rc;
}

static int open_paths(struct sqlite_bk *s, const char *arg)
{
	char *copy = strdup(arg);

	s->path = strdup(arg);
	if (copy && s->path && asprintf(&s->wal_path, "%s-wal", arg) < 0)
		s->wal_path = NULL;
	s->dir = copy && s->wal_path ? strdup(dirname(copy)) : NULL;
	free(copy);
	return s->dir ? 0 : -ENOMEM;
}

static void sqlite_free(struct sqlite_bk *s)
{
	pthread_mutex_destroy(&s->attach_lock);
	sqlite_txn_destroy(s);
	free(s->dir);
	free(s->wal_path);
	free(s->path);
	free(s);
}

static int sqlite_open(const struct bk_source *src, const struct bk_log *log, struct bk **out)
{
	struct sqlite_bk *s;
	int rc;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->base.ops = &bk_sqlite_ops;
	if (log)
		s->log = *log;
	atomic_init(&s->attach_rc, 1);
	pthread_mutex_init(&s->attach_lock, NULL);
	sqlite_txn_init(s);
	rc = open_paths(s, src->arg);
	if (rc == 0)
		rc = open_check(s);
	if (rc == 0)
		rc = open_validate(s);
	if (rc < 0) {
		sqlite_free(s);
		return rc;
	}
	*out = &s->base;
	return 0;
}

static void sqlite_close(struct bk *b)
{
	struct sqlite_bk *s = sqlite_of(b);

	sqlite_feed_close(s);
	if (atomic_load(&s->attach_rc) == 0)
		sqlite_txn_stop(s);
	sqlite_free(s);
}

const struct bk_ops bk_sqlite_ops = {
	.version = BK_OPS_VERSION,
	.name = "sqlite",
	.flags = BK_F_THREADSAFE | BK_F_PERSISTENT | BK_F_FEED | BK_F_HARDLINKS | BK_F_XATTR |
		 BK_F_SET_CTIME | BK_F_RELINK,
	.source_form = BK_SOURCE_PATH,
	.open = sqlite_open,
	.close = sqlite_close,
	.statfs = sqlite_statfs,
	.getattr = sqlite_getattr,
	.setattr = sqlite_setattr,
	.lookup = sqlite_lookup,
	.mknod = sqlite_mknod,
	.symlink = sqlite_symlink,
	.readlink = sqlite_readlink,
	.link = sqlite_link,
	.unlink = sqlite_unlink,
	.rmdir = sqlite_rmdir,
	.rename = sqlite_rename,
	.readdir = sqlite_readdir,
	.forget = sqlite_forget,
	.read = sqlite_read,
	.write = sqlite_write,
	.fallocate = sqlite_fallocate,
	.lseek = sqlite_lseek,
	.fopen = sqlite_fopen,
	.fsync = sqlite_fsync,
	.setxattr = sqlite_setxattr,
	.getxattr = sqlite_getxattr,
	.listxattr = sqlite_listxattr,
	.removexattr = sqlite_removexattr,
	.tmpfile = sqlite_tmpfile,
	.feed_fd = sqlite_feed_fd,
	.feed_read = sqlite_feed_read,
};
