/* Private to the dir backend (dir:PATH, a host directory): the objects its files share.
 * dir.c owns the backend object, opening and closing and the ops table; dir_node.c the
 * node table (identity, node IDs); dir_inode.c lookup and the attribute slots; dir_ns.c the
 * namespace slots; dir_file.c file data and per-open handles; dir_xattr.c extended attributes;
 * dir_feed.c the inotify change feed. */
#ifndef SIGBUSFS_DIR_H
#define SIGBUSFS_DIR_H

#include "backend.h"

#include <pthread.h>
#include <fcntl.h>
#include <sys/stat.h>

#define DIR_BUCKETS  4096 /* hash buckets of each index of the node table */
#define DIR_FILE_MAX INT64_MAX

/* One host object seen (dir_node.c). Node IDs come from a counter and are never reused,
 * so gen is always 0. */
struct dir_node {
	uint64_t ino; /* our node ID */
	dev_t dev;    /* the host's identity of the object */
	ino_t hino;
	struct file_handle *handle; /* the host's, or NULL where it has none */
	/* O_PATH|O_NOFOLLOW (the O_TMPFILE descriptor of a tmpfile), or -1 while idle */
	int fd;
	bool is_idle; /* the kernel forgot it: the descriptor closes once no call holds it */
	bool is_gone; /* the object is gone: freed once no call holds it */
	int wd;	      /* directories: the inotify watch, or -1 */
	int refs;     /* holders (dir_node_get() callers), guarded by the table lock */
	int changing; /* changes of ours under way (the feed skips its events); lock */
	/* data: read and lseek take it shared, write and fallocate exclusive, so that no
	 * read sees half of one of our writes */
	pthread_rwlock_t io_lock;
	/* the host's ctime, mtime and size after our last change; guarded by lock */
	struct timespec own_ctime, own_mtime;
	off_t own_size;
	struct dir_node *by_ino, *by_host; /* hash chains */
};

struct dir_bk {
	struct bk base;
	char *path;	 /* as given */
	int mount_fd;	 /* PATH, opened for open_by_handle_at(), or -1 */
	bool can_reopen; /* idle nodes close their descriptors (dir_node.c) */
	dev_t root_dev;
	struct bk_log log; /* fs/'s, from open */
	pthread_mutex_t lock;
	uint64_t next_ino; /* the next node ID */
	struct dir_node *by_ino[DIR_BUCKETS], *by_host[DIR_BUCKETS];
	int inotify_fd;
	uint64_t *wd_ino; /* wd -> the directory's node ID (0: none); wd_cap entries */
	size_t wd_cap;
};

static inline struct dir_bk *dir_of(struct bk *b)
{
	return (struct dir_bk *)b;
}

/* "/proc/self/fd/N" for fd, the path that reopens an O_PATH descriptor. */
#define DIR_FD_PATH_MAX 32
const char *dir_fd_path(int fd, char *buf);

/* dir_node.c */
/* The node ino, held (release with dir_node_put()), or NULL: -ENOENT. */
struct dir_node *dir_node_get(struct dir_bk *d, uint64_t ino);
void dir_node_put(struct dir_bk *d, struct dir_node *n);
/* Finds or makes the node of the host object fd (taken over: closed if the node has one),
 * which the kernel is about to hold; fills out from st. 0 or -errno. The end of a slot
 * that opened fd: with rc < 0, only closes fd (if >= 0) and returns rc. */
int dir_node_attach(struct dir_bk *d, int rc, int fd, const struct stat *st, struct bk_attr *out);
/* The node of the live host object (dev, hino), held, or NULL. */
struct dir_node *dir_node_find_host(struct dir_bk *d, dev_t dev, ino_t hino);
/* Records n's current host state (ctime, mtime, size) as known: the feed skips events
 * that show it. A host change within the same clock tick that leaves the size alone
 * shows the same state: it goes unseen (README). */
void dir_node_mark_own(struct dir_bk *d, struct dir_node *n);
/* Records the state st, seen earlier, as known. */
void dir_node_mark_known(struct dir_bk *d, struct dir_node *n, const struct stat *st);
/* Brackets a change of ours to n: until the end, and after it while n's host state is
 * the one the end saw, the feed takes n's events for ours. */
void dir_node_change_begin(struct dir_bk *d, struct dir_node *n);
void dir_node_change_end(struct dir_bk *d, struct dir_node *n);
/* What n's host state, read into *st, shows that is not known: nothing (also while a
 * change of ours is under way), a new size or mtime (data), or only a new ctime
 * (attributes). Read under the lock, so that no change of ours ends in between. */
enum dir_news { DIR_NEWS_NONE, DIR_NEWS_ATTR, DIR_NEWS_DATA };
enum dir_news dir_node_news(struct dir_bk *d, struct dir_node *n, struct stat *st);
void dir_stat_to_attr(uint64_t ino, const struct stat *st, struct bk_attr *out);
/* Makes the root node (ino BK_ROOT_INO) from the descriptor of PATH. */
int dir_node_root(struct dir_bk *d, int fd);
void dir_nodes_free(struct dir_bk *d);
/* The node IDs of the nodes that have a descriptor (the kernel holds them, or a call
 * does), into *out (malloc'd; *n of them). 0 or -ENOMEM. */
int dir_nodes_open(struct dir_bk *d, uint64_t **out, size_t *n);
int dir_node_stat(const struct dir_node *n, struct stat *st);
void dir_forget(struct bk *b, uint64_t ino);

/* dir_inode.c */
int dir_getattr(struct bk *b, uint64_t ino, struct bk_attr *out);
int dir_setattr(struct bk *b, uint64_t ino, const struct bk_setattr *s, struct bk_attr *out);
int dir_lookup(struct bk *b, uint64_t parent, const char *name, struct bk_attr *out);

/* dir_ns.c */
int dir_mknod(struct bk *b, uint64_t parent, const char *name, const struct bk_new *n,
	      struct bk_attr *out);
int dir_symlink(struct bk *b, uint64_t parent, const char *name, const char *target,
		const struct bk_new *n, struct bk_attr *out);
ssize_t dir_readlink(struct bk *b, uint64_t ino, char *buf, size_t size);
int dir_link(struct bk *b, uint64_t ino, uint64_t newparent, const char *newname,
	     struct bk_attr *out);
int dir_unlink(struct bk *b, uint64_t parent, const char *name);
int dir_rmdir(struct bk *b, uint64_t parent, const char *name);
int dir_rename(struct bk *b, uint64_t parent, const char *name, uint64_t newparent,
	       const char *newname, unsigned flags);
int dir_readdir(struct bk *b, uint64_t dir, uint64_t cookie, bk_emit_fn emit, void *ctx);
int dir_tmpfile(struct bk *b, uint64_t parent, const struct bk_new *n, struct bk_attr *out);

/* dir_file.c */
int dir_fopen(struct bk *b, uint64_t ino, int flags, uint64_t *fh_out);
void dir_frelease(struct bk *b, uint64_t ino, uint64_t fh);
ssize_t dir_read(struct bk *b, uint64_t ino, uint64_t fh, void *buf, size_t len, off_t off);
ssize_t dir_read_fd(struct bk *b, uint64_t ino, uint64_t fh, size_t len, off_t off,
		    bk_reply_fd_fn reply, void *ctx);
ssize_t dir_write(struct bk *b, uint64_t ino, uint64_t fh, const void *buf, size_t len, off_t off);
int dir_fallocate(struct bk *b, uint64_t ino, uint64_t fh, int mode, off_t off, off_t len);
off_t dir_lseek(struct bk *b, uint64_t ino, off_t off, int whence);
int dir_fsync(struct bk *b, uint64_t ino, uint64_t fh, bool datasync);
/* A read-write descriptor of regular file n (for setattr's truncate): >= 0 or -errno. */
int dir_file_reopen(struct dir_node *n, int flags);

/* dir_xattr.c */
int dir_setxattr(struct bk *b, uint64_t ino, const char *name, const void *value, size_t size,
		 int flags);
ssize_t dir_getxattr(struct bk *b, uint64_t ino, const char *name, void *buf, size_t size);
ssize_t dir_listxattr(struct bk *b, uint64_t ino, char *buf, size_t size);
int dir_removexattr(struct bk *b, uint64_t ino, const char *name);

/* dir_feed.c */
int dir_feed_open(struct dir_bk *d);
void dir_feed_close(struct dir_bk *d);
/* Watches directory n (caller holds d->lock): best effort, a failure is logged. */
void dir_feed_watch(struct dir_bk *d, struct dir_node *n);
/* Stops watching n (caller holds d->lock). */
void dir_feed_unwatch(struct dir_bk *d, struct dir_node *n);
int dir_feed_fd(struct bk *b, int *fd_out, int *poll_ms_out);
int dir_feed_read(struct bk *b, bk_change_fn emit, void *ctx);

#endif
