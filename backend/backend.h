/* The storage interface: a versioned table of operations in the style of SQLite's VFS,
 * the registry of implementations keyed by SOURCE scheme, and the checked bk_*() wrappers
 * that fs/ calls. Backends know nothing of FUSE. */
#ifndef SIGBUSFS_BACKEND_H
#define SIGBUSFS_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#define BK_OPS_VERSION	  2
#define BK_ROOT_INO	  1   /* the root directory's inode number in every backend */
#define BK_NAME_MAX	  255 /* longest name component, in bytes */
#define BK_XATTR_SIZE_MAX 65536
/* Capabilities (bk_ops.flags). fs/ and the contract suite decide by these, never by name.
 * BK_F_FEED: the backend has a change feed (feed_fd, feed_read) reporting changes not made
 * through this instance; it requires BK_F_THREADSAFE. */
#define BK_F_THREADSAFE 0x01u /* every slot may be called concurrently */
#define BK_F_LIMIT	0x02u /* enforces a byte limit: statfs counts charged bytes, -ENOSPC */
#define BK_F_PERSISTENT 0x04u /* data survives close: opening the same source finds it */
#define BK_F_FEED	0x08u
#define BK_F_HARDLINKS	0x10u /* link() works */
#define BK_F_XATTR	0x20u /* the xattr slots work */
/* The root directory is someone else's (a host directory): the mount options set only
 * the owner and mode given, never the defaults. */
#define BK_F_FOREIGN_ROOT 0x40u
#define BK_F_SET_CTIME	  0x80u /* setattr keeps BK_SET_CTIME's ctime (else: the clock's) */
/* link() gives any nameless regular file its first name back (else: only a tmpfile) */
#define BK_F_RELINK 0x100u
/* readdir lists "." and ".." too, and its cookies are the directory offsets fs/ hands the
 * kernel unchanged: any value from 1 to INT64_MAX (a host directory's own; ext4 gives
 * 63-bit hashes and INT64_MAX after the last entry). Without it, cookies are small
 * enough for fs/ to put its own "." and ".." before them. */
#define BK_F_DOTS 0x200u
/* readdir holds each inode it lists as lookup does, until forget: fs/ forgets at once
 * those of a plain listing, of which the kernel keeps no reference (readdirplus: it does) */
#define BK_F_LIST_HOLDS 0x400u

struct bk {
	const struct bk_ops *ops;
	void *lock; /* owned by backend.c: a mutex when !BK_F_THREADSAFE */
};

/* What a backend knows of an inode. One instance never hands out one inode number for two
 * objects alive at the same time; gen tells apart objects that bore one number at
 * different times (a persistent number reused, a host inode number recycled), so that
 * (ino, gen) is never reused and fs/ can use it as the FUSE node ID and generation. gen
 * may be 0 for a backend that never reuses numbers. Sizes are in bytes. */
struct bk_attr {
	uint64_t ino;
	uint64_t gen;
	mode_t mode;
	uint32_t nlink;
	uid_t uid;
	gid_t gid;
	dev_t rdev;
	uint64_t size;
	uint64_t blocks; /* 512-byte units actually allocated (holes cost nothing) */
	struct timespec atime, mtime, ctime;
};

/* What a new inode gets: fs/ has already applied umask, ownership and setgid rules. */
struct bk_new {
	mode_t mode; /* includes the file type: S_IFREG, S_IFDIR, S_IFIFO, ... */
	dev_t rdev;
	uid_t uid;
	gid_t gid;
};

#define BK_SET_MODE	 0x01u
#define BK_SET_UID	 0x02u
#define BK_SET_GID	 0x04u
#define BK_SET_SIZE	 0x08u
#define BK_SET_ATIME	 0x10u /* to .atime */
#define BK_SET_MTIME	 0x20u /* to .mtime */
#define BK_SET_ATIME_NOW 0x40u
#define BK_SET_MTIME_NOW 0x80u
#define BK_SET_CTIME	 0x100u /* to .ctime; otherwise any change sets ctime to now */

struct bk_setattr {
	unsigned valid; /* BK_SET_* */
	mode_t mode;	/* permission bits only (07777) */
	uid_t uid;
	gid_t gid;
	uint64_t size;
	struct timespec atime, mtime, ctime;
};

/* fallocate modes, as in <linux/falloc.h> */
#define BK_FALLOC_KEEP_SIZE  0x01
#define BK_FALLOC_PUNCH_HOLE 0x02
#define BK_FALLOC_ZERO_RANGE 0x10

/* rename flags, as in <linux/fs.h> */
#define BK_RENAME_NOREPLACE 0x1u
#define BK_RENAME_EXCHANGE  0x2u

/* SOURCE is "scheme:arg". fs/ splits it, finds the backend by its scheme and parses arg
 * as the backend's source_form says, so that no backend parses text: */
enum bk_source_form {
	BK_SOURCE_SIZE, /* nothing, or a byte count with a K, M, G or T suffix: mem:, mem:512M */
	BK_SOURCE_PATH, /* a path, required: sqlite:/var/tmp/f.db */
};

/* What open() receives. Borrowed: valid only during the call. */
struct bk_source {
	const char *arg; /* the text after "scheme:" as given, "" when none; BK_SOURCE_PATH:
			  * the path, never "" */
	bool has_size;	 /* BK_SOURCE_SIZE: a byte count was given */
	uint64_t size;	 /* bytes, when has_size */
};

/* Where a backend reports what an errno cannot say: one line, shaped "scheme: what: why"
 * ("mem: size '1K': too small (at least 64K)"), without a newline. fs/ hands the daemon's
 * log sink. */
enum bk_log_level { BK_LOG_ERR, BK_LOG_WARN, BK_LOG_INFO, BK_LOG_DEBUG };
struct bk_log {
	void (*fn)(void *ctx, enum bk_log_level level, const char *msg); /* may be NULL */
	void *ctx;
};

/* One directory entry. cookie is the position just after this entry: passing it back to
 * readdir resumes there, even if entries were added or removed in between. Returns 0 to
 * continue, 1 to stop (the caller's buffer is full: the entry was not consumed). */
typedef int (*bk_emit_fn)(void *ctx, const char *name, const struct bk_attr *a, uint64_t cookie);

/* One change the backend's storage went through without this instance: made by another
 * instance of the same storage (another mount of one database) or by someone else. */
enum bk_change_kind {
	BK_CH_DATA = 1, /* bytes [off, off + len) of ino changed; size is its size after */
	BK_CH_SIZE,	/* ino's size became size */
	BK_CH_ATTR,	/* ino's mode, owner, times or xattrs changed */
	BK_CH_NAME_ADD, /* name in parent now names ino */
	BK_CH_NAME_DEL, /* name in parent, which named ino, is gone */
	BK_CH_RENAME,	/* name in parent (ino) moved to new_name in new_parent */
	BK_CH_GONE,	/* ino was freed for good */
	BK_CH_NAMES,	/* any name may have changed (changes were lost): none is known */
};
struct bk_change {
	enum bk_change_kind kind;
	uint64_t ino;
	uint64_t off, len; /* DATA */
	uint64_t size;	   /* DATA, SIZE */
	uint64_t parent, new_parent;
	const char *name, *new_name; /* NUL-terminated; NULL where the kind has none */
};
/* Called by feed_read for each change, in the order they happened; borrowed. 0 to go on,
 * nonzero to stop (feed_read returns that value; the change is not consumed). */
typedef int (*bk_change_fn)(void *ctx, const struct bk_change *ch);
/* Takes the bytes of a direct read, described as n pieces in file order (pointers into the
 * backend's own memory, or to a shared page of zeros for holes), and hands them on before
 * it returns: the backend keeps them unchanged only until then. Returns 0 or -errno. */
typedef int (*bk_reply_fn)(void *ctx, const struct iovec *iov, int n);
/* Takes the bytes of a read from a descriptor: len bytes of fd at off, all inside the
 * file, handed on (spliced) before it returns. Returns 0 or -errno. */
typedef int (*bk_reply_fd_fn)(void *ctx, int fd, off_t off, size_t len);

/* Every slot returns >= 0 on success and -errno on failure, takes borrowed inputs (copy
 * what you keep) and fills caller-owned outputs. Slots marked "may be NULL" are optional:
 * the wrapper answers -ENOSYS (or success, where said). Errnos listed are the ones callers
 * must expect besides -EIO and -ENOMEM. */
struct bk_ops {
	int version;			 /* BK_OPS_VERSION the backend was compiled against */
	const char *name;		 /* scheme of SOURCE: "mem" for mem: and mem:SIZE */
	unsigned flags;			 /* BK_F_* */
	enum bk_source_form source_form; /* what SOURCE holds after "scheme:" */

	/* Opens an instance from src (checked and parsed by fs/ as source_form says) and
	 * allocates *out, a struct that embeds struct bk first; bk_open() fills in the base.
	 * src and log are borrowed for the call: copy what you keep (log's fn and ctx may be
	 * kept and called from any thread until close). 0, or -errno with *out NULL:
	 * -EINVAL for a source the backend refuses (out of its range, a file it cannot use),
	 * with one message through log saying why; -ENOMEM; any errno of the storage. */
	int (*open)(const struct bk_source *src, const struct bk_log *log, struct bk **out);
	void (*close)(struct bk *b); /* frees all that open() made */

	int (*statfs)(struct bk *b, struct statvfs *out);
	int (*getattr)(struct bk *b, uint64_t ino, struct bk_attr *out); /* -ENOENT */
	/* BK_SET_SIZE on a non-regular file: -EISDIR or -EINVAL; growth past the byte limit
	 * is allowed (holes are free). */
	int (*setattr)(struct bk *b, uint64_t ino, const struct bk_setattr *s, struct bk_attr *out);

	/* Namespace. Names are single components, never "." or "..", at most BK_NAME_MAX
	 * bytes (longer: -ENAMETOOLONG). A parent that is not a directory: -ENOTDIR. */
	int (*lookup)(struct bk *b, uint64_t parent, const char *name, struct bk_attr *out);
	/* any file type, directories included; -EEXIST, -ENOSPC */
	int (*mknod)(struct bk *b, uint64_t parent, const char *name, const struct bk_new *n,
		     struct bk_attr *out);
	int (*symlink)(struct bk *b, uint64_t parent, const char *name, const char *target,
		       const struct bk_new *n, struct bk_attr *out);
	/* readlink copies at most size bytes, without a NUL; returns the target's length */
	ssize_t (*readlink)(struct bk *b, uint64_t ino, char *buf, size_t size);
	/* -EEXIST, -EPERM for a directory, -EMLINK. A regular file with no names left (a
	 * tmpfile, or with BK_F_RELINK a file unlinked while open) gets its first name back:
	 * fs/ leaves to the kernel which of those may be linked (O_TMPFILE without O_EXCL). */
	int (*link)(struct bk *b, uint64_t ino, uint64_t newparent, const char *newname,
		    struct bk_attr *out);
	int (*unlink)(struct bk *b, uint64_t parent, const char *name); /* -EISDIR */
	int (*rmdir)(struct bk *b, uint64_t parent, const char *name);	/* -ENOTEMPTY, -ENOTDIR */
	/* flags: BK_RENAME_*. -EEXIST (NOREPLACE), -ENOTEMPTY, -EISDIR, -ENOTDIR, -EINVAL
	 * (a directory into its own subtree). Replacing a name drops the old inode's link. */
	int (*rename)(struct bk *b, uint64_t parent, const char *name, uint64_t newparent,
		      const char *newname, unsigned flags);
	/* Streams entries after position cookie (0: from the start), without "." and ".."
	 * (with them under BK_F_DOTS: attributes of the directory itself), until emit
	 * returns nonzero or the directory ends. Returns 0 or -errno. */
	int (*readdir)(struct bk *b, uint64_t dir, uint64_t cookie, bk_emit_fn emit, void *ctx);
	/* fs/ holds no more references to ino: an inode with no links left may be freed. */
	void (*forget)(struct bk *b, uint64_t ino);

	/* Per-open state. fopen makes a handle for one open of the regular file ino (flags as
	 * open(2)'s) and stores it in *fh_out (never 0); frelease ends it. The data slots
	 * below get that handle, or 0 for an access from no open file (the daemon's own
	 * events). Until frelease the object stays readable and writable through the handle,
	 * even if its last name goes (here or through another instance of the same storage).
	 * May be NULL: fh is then 0. */
	int (*fopen)(struct bk *b, uint64_t ino, int flags, uint64_t *fh_out);
	void (*frelease)(struct bk *b, uint64_t ino, uint64_t fh);

	/* Data. read returns bytes read, short at end of file, 0 past it; holes read as zeros.
	 * write returns bytes written (all of len, or an error: -ENOSPC, -EFBIG) and updates
	 * size, mtime and ctime. fh: fopen's handle, or 0. */
	ssize_t (*read)(struct bk *b, uint64_t ino, uint64_t fh, void *buf, size_t len, off_t off);
	ssize_t (*write)(struct bk *b, uint64_t ino, uint64_t fh, const void *buf, size_t len,
			 off_t off);
	/* mode: 0, BK_FALLOC_KEEP_SIZE, PUNCH_HOLE|KEEP_SIZE, ZERO_RANGE[|KEEP_SIZE];
	 * anything else -EOPNOTSUPP. -ENOSPC when allocation exceeds the limit. */
	int (*fallocate)(struct bk *b, uint64_t ino, uint64_t fh, int mode, off_t off, off_t len);
	/* whence SEEK_DATA or SEEK_HOLE; returns the offset, -ENXIO at or past EOF */
	off_t (*lseek)(struct bk *b, uint64_t ino, off_t off, int whence);
	/* may be NULL: success */
	int (*fsync)(struct bk *b, uint64_t ino, uint64_t fh, bool datasync);
	/* A read without a copy; may be NULL. Same range rules and errnos as read; fh is the
	 * backend's handle of the open file, 0 for none. Holding what keeps the bytes from
	 * changing (a racing write, truncate or punch waits), the backend calls reply exactly
	 * once with the bytes of [off, off + the length read), no pieces at or past end of
	 * file, then lets go. Returns the length read if reply returned 0, what reply
	 * returned if it failed, or -errno without calling reply. */
	ssize_t (*read_direct)(struct bk *b, uint64_t ino, uint64_t fh, size_t len, off_t off,
			       bk_reply_fn reply, void *ctx);

	/* Extended attributes. Names are full ("user.x"); the backend stores any namespace
	 * fs/ passes. get/list: size 0 asks for the needed size; too small a buffer -ERANGE.
	 * -ENODATA for a missing name; set flags XATTR_CREATE (-EEXIST) / XATTR_REPLACE
	 * (-ENODATA); -ENOSPC */
	int (*setxattr)(struct bk *b, uint64_t ino, const char *name, const void *value,
			size_t size, int flags);
	ssize_t (*getxattr)(struct bk *b, uint64_t ino, const char *name, void *buf, size_t size);
	ssize_t (*listxattr)(struct bk *b, uint64_t ino, char *buf, size_t size);
	int (*removexattr)(struct bk *b, uint64_t ino, const char *name);

	/* A regular file with no name (nlink 0) in directory parent, as open(O_TMPFILE) makes:
	 * it lives until forget, as a file unlinked while open does, unless link gives it a
	 * name. n->mode includes S_IFREG. -ENOENT, -ENOTDIR, -ENOSPC. May be NULL: -ENOSYS. */
	int (*tmpfile)(struct bk *b, uint64_t parent, const struct bk_new *n, struct bk_attr *out);
	/* Change feed (BK_F_FEED; both NULL otherwise). feed_fd says how to wait for changes:
	 * a descriptor that becomes readable when some may be pending (*fd_out, -1 if none)
	 * and/or an interval to poll at (*poll_ms_out, milliseconds, -1 if none); at least
	 * one of them. feed_read drains what is pending, calling emit for each change since
	 * the last call (the first call: since open). Called from one thread at a time. */
	int (*feed_fd)(struct bk *b, int *fd_out, int *poll_ms_out);
	int (*feed_read)(struct bk *b, bk_change_fn emit, void *ctx);
	/* A read answered from a descriptor of the backend's storage, without a copy in
	 * user space; may be NULL. read_direct's contract, but reply gets the descriptor
	 * and the range [off, off + the length read) of the file, never past its end. */
	ssize_t (*read_fd)(struct bk *b, uint64_t ino, uint64_t fh, size_t len, off_t off,
			   bk_reply_fd_fn reply, void *ctx);
};

/* Registry. The backend whose scheme (bk_ops.name) is the len bytes at scheme, or NULL. */
const struct bk_ops *bk_find(const char *scheme, size_t len);
/* The accepted SOURCE forms, for usage messages: "mem:, mem:SIZE". A static string. */
const char *bk_sources(void);
/* Opens an instance of the backend ops through its open slot (same contract) and sets up
 * the wrappers' lock. 0 or -errno; -EPROTO, logged ("NAME: backend interface version V,
 * this sigbusfs needs W"), when ops was built for another BK_OPS_VERSION. */
int bk_open(const struct bk_ops *ops, const struct bk_source *src, const struct bk_log *log,
	    struct bk **out);
void bk_close(struct bk *b);
const char *bk_name(const struct bk *b);

/* For backends: formats a message and hands it to log->fn (nothing if fn is NULL). */
void bk_logf(const struct bk_log *log, enum bk_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Checked wrappers: one per slot, same contract as the slot. They serialise calls on a
 * backend without BK_F_THREADSAFE and assert results are >= 0 or a valid -errno. */
int bk_statfs(struct bk *b, struct statvfs *out);
int bk_getattr(struct bk *b, uint64_t ino, struct bk_attr *out);
int bk_setattr(struct bk *b, uint64_t ino, const struct bk_setattr *s, struct bk_attr *out);
int bk_lookup(struct bk *b, uint64_t parent, const char *name, struct bk_attr *out);
int bk_mknod(struct bk *b, uint64_t parent, const char *name, const struct bk_new *n,
	     struct bk_attr *out);
int bk_symlink(struct bk *b, uint64_t parent, const char *name, const char *target,
	       const struct bk_new *n, struct bk_attr *out);
ssize_t bk_readlink(struct bk *b, uint64_t ino, char *buf, size_t size);
int bk_link(struct bk *b, uint64_t ino, uint64_t newparent, const char *newname,
	    struct bk_attr *out);
int bk_unlink(struct bk *b, uint64_t parent, const char *name);
int bk_rmdir(struct bk *b, uint64_t parent, const char *name);
int bk_rename(struct bk *b, uint64_t parent, const char *name, uint64_t newparent,
	      const char *newname, unsigned flags);
int bk_readdir(struct bk *b, uint64_t dir, uint64_t cookie, bk_emit_fn emit, void *ctx);
void bk_forget(struct bk *b, uint64_t ino);
int bk_fopen(struct bk *b, uint64_t ino, int flags, uint64_t *fh_out);
void bk_frelease(struct bk *b, uint64_t ino, uint64_t fh);
ssize_t bk_read(struct bk *b, uint64_t ino, uint64_t fh, void *buf, size_t len, off_t off);
ssize_t bk_write(struct bk *b, uint64_t ino, uint64_t fh, const void *buf, size_t len, off_t off);
int bk_fallocate(struct bk *b, uint64_t ino, uint64_t fh, int mode, off_t off, off_t len);
off_t bk_lseek(struct bk *b, uint64_t ino, off_t off, int whence);
int bk_fsync(struct bk *b, uint64_t ino, uint64_t fh, bool datasync);
/* Whether the backend reads without a copy (its read_direct slot is set). */
bool bk_has_read_direct(const struct bk *b);
ssize_t bk_read_direct(struct bk *b, uint64_t ino, uint64_t fh, size_t len, off_t off,
		       bk_reply_fn reply, void *ctx);
/* Whether the backend reads from descriptors (its read_fd slot is set). */
bool bk_has_read_fd(const struct bk *b);
ssize_t bk_read_fd(struct bk *b, uint64_t ino, uint64_t fh, size_t len, off_t off,
		   bk_reply_fd_fn reply, void *ctx);
int bk_setxattr(struct bk *b, uint64_t ino, const char *name, const void *value, size_t size,
		int flags);
ssize_t bk_getxattr(struct bk *b, uint64_t ino, const char *name, void *buf, size_t size);
ssize_t bk_listxattr(struct bk *b, uint64_t ino, char *buf, size_t size);
int bk_removexattr(struct bk *b, uint64_t ino, const char *name);
int bk_tmpfile(struct bk *b, uint64_t parent, const struct bk_new *n, struct bk_attr *out);
/* -ENOSYS without BK_F_FEED */
int bk_feed_fd(struct bk *b, int *fd_out, int *poll_ms_out);
int bk_feed_read(struct bk *b, bk_change_fn emit, void *ctx);

extern const struct bk_ops bk_mem_ops;
extern const struct bk_ops bk_sqlite_ops;
extern const struct bk_ops bk_dir_ops;

#endif
