/* Private to the sqlite backend: the objects its files share. sqlite.c owns the backend
 * object, opening and closing, errors and the ops table; sqlite_schema.c the schema and the
 * text of every statement; sqlite_conn.c connections and their statements; sqlite_txn.c the
 * writer, its batches and the reader pool; sqlite_ckpt.c the checkpointer thread;
 * sqlite_mount.c mounts and orphans;
 * sqlite_change.c the change log; sqlite_chunk.c file data; sqlite_inode.c, sqlite_dir.c
 * and sqlite_file.c the slots. Macros use SQ_ (SQLITE_ is SQLite's). */
#ifndef SIGBUSFS_SQLITE_H
#define SIGBUSFS_SQLITE_H

#include "backend.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>

#define SQ_APP_ID	   0x53424653 /* PRAGMA application_id: "SBFS" */
#define SQ_SCHEMA_VERSION  1	      /* PRAGMA user_version this code reads and writes */
#define SQ_PAGE_SHIFT	   12	      /* the allocation unit: holes, blocks, SEEK_DATA */
#define SQ_PAGE_SIZE	   (UINT64_C(1) << SQ_PAGE_SHIFT)
#define SQ_CHUNK_SHIFT	   16 /* bytes per chunk row; part of the schema */
#define SQ_CHUNK_SIZE	   (UINT64_C(1) << SQ_CHUNK_SHIFT)
#define SQ_PAGES_PER_CHUNK (1u << (SQ_CHUNK_SHIFT - SQ_PAGE_SHIFT)) /* bits in chunks.pages */
#define SQ_FILE_MAX	   INT64_MAX /* largest file size and end offset, in bytes */
#define SQ_READERS	   4	     /* reader connections in the pool */
#define SQ_OPEN_BUSY_MS	   2000	     /* how long opening waits for another writer's lock */
#define SQ_BUSY_MS	   5000	     /* how long an operation waits for it; then -EBUSY */
#define SQ_BATCH_MS	   50	     /* a batch commits at most this long after it began */
#define SQ_BATCH_BYTES	   (UINT64_C(32) << 20) /* ... or once it holds this much data */
#define SQ_BEAT_MS	   10000		/* heartbeat (and change log trim) period */
#define SQ_DEAD_MS	   30000 /* a mount silent this long is dead, whatever its pid */
#define SQ_FEED_MS	   20	 /* the change feed polls PRAGMA data_version this often */
#define SQ_FEED_BATCH	   64	 /* change rows read at once */

/* Every statement the backend runs; the text is in sqlite_schema.c. */
enum sq_stmt {
	SQ_BEGIN,
	SQ_BEGIN_IMMEDIATE,
	SQ_COMMIT,
	SQ_ROLLBACK,
	SQ_PAGE_SIZE_GET,
	SQ_INODE_GET,
	SQ_INODE_NEW,
	SQ_INODE_PUT,
	SQ_INODE_DEL,
	SQ_INODE_TARGET,
	SQ_INODE_LAST,
	SQ_DIRENT_GET,
	SQ_DIRENT_ADD,
	SQ_DIRENT_DEL,
	SQ_DIRENT_SET_INO,
	SQ_DIRENT_LIST,
	SQ_LOOKUP,
	SQ_XATTR_GET,
	SQ_XATTR_PUT,
	SQ_XATTR_DEL,
	SQ_XATTR_LIST,
	SQ_XATTR_DROP,
	SQ_CHUNK_READ,
	SQ_CHUNK_GET,
	SQ_CHUNK_ADD,
	SQ_CHUNK_SET,
	SQ_CHUNK_PAGES,
	SQ_CHUNK_DEL_RANGE,
	SQ_CHUNK_DROP,
	SQ_BLOB_ADD,
	SQ_BLOB_SET,
	SQ_BLOB_DEL,
	SQ_BLOB_DEL_RANGE,
	SQ_BLOB_DROP,
	SQ_CHANGE_ADD,
	SQ_CHANGE_EXTEND,
	SQ_CHANGE_LAST,
	SQ_CHANGE_TRIM,
	SQ_CHANGE_SINCE,
	SQ_DATA_VERSION,
	SQ_MOUNT_ADD,
	SQ_MOUNT_BEAT,
	SQ_MOUNT_OTHERS,
	SQ_MOUNT_DEL,
	SQ_ORPHAN_ADD,
	SQ_ORPHAN_DEL,
	SQ_ORPHAN_HELD,
	SQ_ORPHAN_OF_MOUNT,
	SQ_NSTMT
};

/* One connection and its prepared statements. Used by one thread at a time: the writer
 * under its mutex, a reader while checked out of the pool. */
struct sqlite_conn {
	sqlite3 *db;
	sqlite3_stmt *stmts[SQ_NSTMT]; /* prepared at first use, kept until close */
	struct sqlite_bk *s;
	bool has_failed;    /* a statement failed since sqlite_write_begin() */
	int64_t op_changes; /* sqlite3_total_changes64() at sqlite_write_begin() */
	sqlite3_blob *blob; /* the incremental I/O handle on blobs.data, or NULL */
	bool is_blob_rw;    /* ... opened for writing */
};

/* A row of inodes. Times are CLOCK_REALTIME. */
struct sqlite_inode {
	uint64_t ino;
	uint64_t gen;
	mode_t mode;
	uint32_t nlink;
	uid_t uid;
	gid_t gid;
	dev_t rdev;
	uint64_t size;	 /* file bytes; symlink target bytes; directory entries */
	uint64_t blocks; /* SQ_PAGE_SIZE pages present (regular files) */
	struct timespec atime, mtime, ctime;
	uint64_t parent;  /* directories: the directory that names it; else 0 */
	uint64_t dir_seq; /* directories: the last readdir position handed out */
};

/* The writer: one connection for every change, in batches. A batch is one transaction
 * that operations join; it commits at most SQ_BATCH_MS after it began (the flusher thread
 * sees to it), on fsync, when it grows past SQ_BATCH_BYTES, and at close. */
struct sqlite_writer {
	pthread_mutex_t lock; /* guards the connection and everything below */
	pthread_cond_t wake;  /* the flusher waits on it for a batch or a stop */
	struct sqlite_conn conn;
	atomic_bool is_open;	/* a batch is open: readers must use conn */
	struct timespec opened; /* CLOCK_MONOTONIC, when the batch began */
	struct timespec beat;	/* CLOCK_MONOTONIC, the last heartbeat */
	uint64_t bytes;		/* data bytes written in this batch */
	int64_t data_version;	/* PRAGMA data_version after our last commit */
	int lost;		/* -errno of a batch whose commit failed; fsync reports it */
	bool is_stopping;	/* close: the flusher exits */
	bool has_flusher;	/* the flusher thread runs */
	pthread_t flusher;	/* commits batches on time; heartbeats */
	int64_t last_change;	/* the DATA change row the next one may extend, or 0 */
	uint64_t last_ino;	/* ... its inode and range [last_off, last_end) */
	uint64_t last_off, last_end;
};

/* The checkpointer (sqlite_ckpt.c). */
struct sqlite_ckpt {
	pthread_mutex_t lock; /* guards is_due and is_stopping */
	pthread_cond_t wake;
	bool is_due;	  /* the WAL has grown past threshold */
	bool is_stopping; /* close: the thread exits */
	bool has_thread;
	pthread_t thread;
	struct sqlite_conn conn; /* used by the thread only */
	uint64_t page_size;	 /* bytes; constant */
	uint64_t threshold;	 /* WAL bytes that make a checkpoint due; constant */
};

/* The change feed's reader (sqlite_change.c): used by the thread that calls feed_read. */
struct sqlite_feed {
	struct sqlite_conn conn;
	bool is_open;		/* conn is open */
	int64_t data_version;	/* PRAGMA data_version at the last read */
	_Atomic int64_t seen;	/* the last change row read (the heartbeat publishes it) */
	atomic_bool is_reading; /* feed_read was called: rows wait for us to be read */
};

/* The reader pool: connections that see the last committed state. */
struct sqlite_pool {
	pthread_mutex_t lock;
	pthread_cond_t freed;
	struct sqlite_conn conns[SQ_READERS];
	bool is_busy[SQ_READERS]; /* guarded by lock */
	unsigned nconns;	  /* opened */
};

struct sqlite_bk {
	struct bk base;
	char *path;	   /* the database file, as given */
	char *wal_path;	   /* path + "-wal" */
	char *dir;	   /* the directory that holds them */
	struct bk_log log; /* fs/'s, from open */
	pthread_mutex_t attach_lock;
	_Atomic int attach_rc; /* 1 before the first call, then 0 or a sticky -errno */
	int64_t mount_id;      /* our row in mounts; constant once attached */
	struct sqlite_writer w;
	struct sqlite_pool pool;
	struct sqlite_ckpt ckpt;
	struct sqlite_feed feed;
};

static inline struct sqlite_bk *sqlite_of(struct bk *b)
{
	return (struct sqlite_bk *)b;
}

/* sqlite.c */
/* The one exit for error messages ("sqlite: PATH: what: why"): the log fs/ handed to
 * open (struct bk_log), at BK_LOG_ERR. */
void sqlite_log(const struct sqlite_bk *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Maps a SQLite result code (extended codes included) to -errno; never 0. */
int sqlite_to_errno(int rc);
/* Connects on the first call after open (so no connection or thread crosses the fork of
 * fuse_daemonize): 0, or the -errno every later call gets too. */
int sqlite_attach(struct sqlite_bk *s);
void sqlite_now(struct timespec *out);

/* sqlite_schema.c */
extern const char *const sqlite_sql[SQ_NSTMT];
/* On the validating connection: creates the schema in an empty database; otherwise checks
 * that the database is a sigbusfs one this code can use, undamaged and not held by a
 * foreign writer, writing nothing. 0, or -errno with one message naming s->path and what
 * is wrong. */
int sqlite_schema_prepare(sqlite3 *db, const struct sqlite_bk *s);

/* sqlite_conn.c */
enum sq_role { SQ_VALIDATE, SQ_WRITER, SQ_READER, SQ_CHECKPOINTER };
/* Opens path with the settings of role. 0 or -errno (logged). */
int sqlite_conn_open(struct sqlite_bk *s, enum sq_role role, struct sqlite_conn *out);
void sqlite_conn_close(struct sqlite_conn *c);
/* The prepared statement id, reset (callers bind every parameter): 0 or -errno (logged). */
int sqlite_stmt(struct sqlite_conn *c, enum sq_stmt id, sqlite3_stmt **out);
/* Binds args as integers (in order), steps once and resets: SQLITE_DONE or SQLITE_ROW
 * become 0, errors -errno (logged unless it is -EEXIST). */
int sqlite_exec(struct sqlite_conn *c, enum sq_stmt id, const int64_t *args, int nargs);
#define SQ_ARGS(...)                      \
	(const int64_t[]){ __VA_ARGS__ }, \
		(int)(sizeof((int64_t[]){ __VA_ARGS__ }) / sizeof(int64_t))
/* Steps st: SQLITE_ROW or SQLITE_DONE, else -errno (logged, with what). */
int sqlite_step(struct sqlite_conn *c, sqlite3_stmt *st, const char *what);
/* Maps rc and logs "sqlite: PATH: what: SQLite's message" unless it is -EEXIST. */
int sqlite_err(struct sqlite_conn *c, int rc, const char *what);
/* Runs one SELECT returning one integer: 0 and *out, or -ENOENT (no row), -errno. */
int sqlite_query_int(struct sqlite_conn *c, enum sq_stmt id, const int64_t *args, int nargs,
		     int64_t *out);

/* sqlite_txn.c */
void sqlite_txn_init(struct sqlite_bk *s);
void sqlite_txn_destroy(struct sqlite_bk *s);
/* Opens the writer and the readers, registers the mount, starts the flusher. */
int sqlite_txn_start(struct sqlite_bk *s);
/* Commits what is pending, stops the flusher, closes every connection. */
void sqlite_txn_stop(struct sqlite_bk *s);
/* A connection that sees everything this mount has done: a pooled reader inside a read
 * transaction, or the writer while a batch is open. Release with sqlite_read_end(). */
int sqlite_read_begin(struct sqlite_bk *s, struct sqlite_conn **out);
void sqlite_read_end(struct sqlite_bk *s, struct sqlite_conn *c);
/* The writer, inside the batch, for one operation. An operation checks everything that
 * can refuse it before it changes a row, so one that fails has either changed nothing or
 * failed in SQLite (I/O, disk full), and then sqlite_write_end() drops the whole batch.
 * Returns rc, or the error of a commit it made. */
int sqlite_write_begin(struct sqlite_bk *s, struct sqlite_conn **out);
int sqlite_write_end(struct sqlite_bk *s, struct sqlite_conn *c, int rc);
/* sqlite_write_end(), committing the batch first if the operation changed a row: for
 * what other mounts must see at once (not durable: no sync). */
int sqlite_write_end_now(struct sqlite_bk *s, struct sqlite_conn *c, int rc);
/* Adds bytes to the batch's size, for its early commit. Caller holds the writer. */
void sqlite_write_account(struct sqlite_bk *s, uint64_t bytes);
/* Commits the batch and makes every commit durable: 0 or -errno, including the error of
 * an earlier batch whose commit failed (reported once). */
int sqlite_sync(struct sqlite_bk *s);
/* Holds the writer with no batch open (the open one committed) until
 * sqlite_writer_resume(): nothing is written to the database meanwhile. */
void sqlite_writer_pause(struct sqlite_bk *s);
void sqlite_writer_resume(struct sqlite_bk *s);

/* sqlite_ckpt.c */
/* Opens the checkpointer's connection, starts its thread and hooks it to the writer. */
int sqlite_ckpt_start(struct sqlite_bk *s, sqlite3 *writer);
void sqlite_ckpt_stop(struct sqlite_bk *s);

/* sqlite_mount.c */
/* Caller holds the writer: adds our row to mounts, reclaims what dead mounts left. */
int sqlite_mount_register(struct sqlite_bk *s, struct sqlite_conn *c);
/* Caller holds the writer: frees our orphans, removes our row. */
int sqlite_mount_unregister(struct sqlite_bk *s, struct sqlite_conn *c);
/* Caller holds the writer: refreshes our heartbeat and trims the change log. */
int sqlite_mount_beat(struct sqlite_bk *s, struct sqlite_conn *c);
/* Caller holds the writer: ino lost its last name while this mount may hold it. */
int sqlite_orphan_add(struct sqlite_bk *s, struct sqlite_conn *c, uint64_t ino);
/* Caller holds the writer: this mount holds ino no more; frees it if nothing does. */
int sqlite_orphan_forget(struct sqlite_bk *s, struct sqlite_conn *c, uint64_t ino);

/* sqlite_change.c */
/* The kind column: the feed's kinds (backend.h, enum bk_change_kind), part of the schema. */
enum sq_change_kind {
	SQ_CH_DATA = BK_CH_DATA,
	SQ_CH_SIZE = BK_CH_SIZE,
	SQ_CH_ATTR = BK_CH_ATTR,
	SQ_CH_NAME_ADD = BK_CH_NAME_ADD,
	SQ_CH_NAME_DEL = BK_CH_NAME_DEL,
	SQ_CH_RENAME = BK_CH_RENAME,
	SQ_CH_GONE = BK_CH_GONE,
};
struct sqlite_change {
	enum sq_change_kind kind;
	uint64_t ino, off, len, size;
	uint64_t parent, new_parent;
	const char *name, *new_name;
};
/* Caller holds the writer: appends ch to the log inside the batch. Consecutive DATA
 * changes of one file in one batch extend one row. */
int sqlite_change_add(struct sqlite_bk *s, struct sqlite_conn *c, const struct sqlite_change *ch);
/* The batch ended: the next DATA change starts a new row. */
void sqlite_change_batch_end(struct sqlite_writer *w);
/* The feed slots: changes other mounts made, found by polling PRAGMA data_version. */
int sqlite_feed_fd(struct bk *b, int *fd_out, int *poll_ms_out);
int sqlite_feed_read(struct bk *b, bk_change_fn emit, void *ctx);
/* Closes the feed's connection, if open. */
void sqlite_feed_close(struct sqlite_bk *s);
/* Caller holds the writer: the change row this mount has read up to, which the
 * heartbeat publishes as seen (the last row of all while no one reads the feed). */
int sqlite_feed_seen(struct sqlite_bk *s, struct sqlite_conn *c, int64_t *out);

/* sqlite_inode.c */
int sqlite_inode_get(struct sqlite_conn *c, uint64_t ino, struct sqlite_inode *out);
/* Reads the inode columns of st starting at column col. */
void sqlite_inode_row(sqlite3_stmt *st, int col, struct sqlite_inode *out);
int sqlite_inode_put(struct sqlite_conn *c, const struct sqlite_inode *in);
/* Inserts in (ino ignored) with target for a symlink (or NULL); sets in->ino. */
int sqlite_inode_new(struct sqlite_conn *c, struct sqlite_inode *in, const char *target);
/* Deletes ino with its data and xattrs. */
int sqlite_inode_delete(struct sqlite_conn *c, uint64_t ino);
void sqlite_inode_fill(const struct sqlite_inode *in, struct bk_attr *out);
int sqlite_statfs(struct bk *b, struct statvfs *out);
int sqlite_getattr(struct bk *b, uint64_t ino, struct bk_attr *out);
int sqlite_setattr(struct bk *b, uint64_t ino, const struct bk_setattr *s, struct bk_attr *out);
void sqlite_forget(struct bk *b, uint64_t ino);
int sqlite_setxattr(struct bk *b, uint64_t ino, const char *name, const void *value, size_t size,
		    int flags);
ssize_t sqlite_getxattr(struct bk *b, uint64_t ino, const char *name, void *buf, size_t size);
ssize_t sqlite_listxattr(struct bk *b, uint64_t ino, char *buf, size_t size);
int sqlite_removexattr(struct bk *b, uint64_t ino, const char *name);

/* sqlite_dir.c */
int sqlite_lookup(struct bk *b, uint64_t parent, const char *name, struct bk_attr *out);
int sqlite_mknod(struct bk *b, uint64_t parent, const char *name, const struct bk_new *n,
		 struct bk_attr *out);
int sqlite_symlink(struct bk *b, uint64_t parent, const char *name, const char *target,
		   const struct bk_new *n, struct bk_attr *out);
ssize_t sqlite_readlink(struct bk *b, uint64_t ino, char *buf, size_t size);
int sqlite_link(struct bk *b, uint64_t ino, uint64_t newparent, const char *newname,
		struct bk_attr *out);
int sqlite_tmpfile(struct bk *b, uint64_t parent, const struct bk_new *n, struct bk_attr *out);
int sqlite_unlink(struct bk *b, uint64_t parent, const char *name);
int sqlite_rmdir(struct bk *b, uint64_t parent, const char *name);
int sqlite_rename(struct bk *b, uint64_t parent, const char *name, uint64_t newparent,
		  const char *newname, unsigned flags);
int sqlite_readdir(struct bk *b, uint64_t dir, uint64_t cookie, bk_emit_fn emit, void *ctx);

/* sqlite_chunk.c: file data as chunk rows; offsets and lengths in bytes. The caller
 * holds the writer for everything but sqlite_chunk_read() and sqlite_chunk_seek(). */
/* Copies [off, off + len) into buf; holes and missing tails read as zeros. */
int sqlite_chunk_read(struct sqlite_conn *c, uint64_t ino, char *buf, uint64_t len, uint64_t off);
/* Stores buf at off; returns the number of pages it added (>= 0) or -errno. */
int64_t sqlite_chunk_write(struct sqlite_conn *c, uint64_t ino, const char *buf, uint64_t len,
			   uint64_t off);
/* Marks the missing pages of [off, end) present (as zeros); returns pages added. */
int64_t sqlite_chunk_alloc(struct sqlite_conn *c, uint64_t ino, uint64_t off, uint64_t end);
/* Zeroes [off, end): whole pages are freed, partial ones zeroed; returns pages freed. */
int64_t sqlite_chunk_zero(struct sqlite_conn *c, uint64_t ino, uint64_t off, uint64_t end);
/* The missing pages of [off, end), for a space check before sqlite_chunk_alloc(). */
int64_t sqlite_chunk_missing(struct sqlite_conn *c, uint64_t ino, uint64_t off, uint64_t end);
/* SEEK_DATA / SEEK_HOLE from off, inside size (already checked off < size). */
off_t sqlite_chunk_seek(struct sqlite_conn *c, uint64_t ino, uint64_t off, uint64_t size,
			int whence);
/* Deletes every chunk of ino. */
int sqlite_chunk_drop(struct sqlite_conn *c, uint64_t ino);
/* Closes c's blob handle: an operation ends with none open (it would hold its snapshot,
 * and a commit fails while one is open for writing). */
void sqlite_chunk_release(struct sqlite_conn *c);

/* sqlite_file.c */
/* Caller holds the writer. Sets the size of regular file in (updated in place, not
 * stored): frees and zeroes past it. */
int sqlite_file_truncate(struct sqlite_bk *s, struct sqlite_conn *c, struct sqlite_inode *in,
			 uint64_t size);
ssize_t sqlite_read(struct bk *b, uint64_t ino, uint64_t fh, void *buf, size_t len, off_t off);
ssize_t sqlite_write(struct bk *b, uint64_t ino, uint64_t fh, const void *buf, size_t len,
		     off_t off);
int sqlite_fallocate(struct bk *b, uint64_t ino, uint64_t fh, int mode, off_t off, off_t len);
off_t sqlite_lseek(struct bk *b, uint64_t ino, off_t off, int whence);
int sqlite_fsync(struct bk *b, uint64_t ino, uint64_t fh, bool datasync);
/* Holds ino for this mount (a row in orphans) until the kernel forgets it, so that an
 * unlink through another mount leaves it readable here; fh is ino. */
int sqlite_fopen(struct bk *b, uint64_t ino, int flags, uint64_t *fh_out);

#endif
