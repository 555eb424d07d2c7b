/* Private to the mem backend: the objects its files share. mem.c owns the backend object,
 * the inode table, attributes, xattrs and the byte limit; mem_dir.c the namespace;
 * mem_file.c file data. Nothing outside backend/mem*.c includes this header. */
#ifndef SIGBUSFS_MEM_H
#define SIGBUSFS_MEM_H

#include "backend.h"
#include "pagemap.h"
#include "pagestore.h"

#include <pthread.h>
#include <stdatomic.h>

#define MEM_PAGE_SHIFT 12
#define MEM_PAGE_SIZE  (UINT64_C(1) << MEM_PAGE_SHIFT)
#define MEM_FILE_MAX   INT64_MAX /* largest file size and end offset, in bytes */
#define MEM_META_SHARE 64	 /* limit / MEM_META_SHARE bytes of metadata are free */

/* Memory. The limit bounds what the daemon holds for the mount. It counts data pages,
 * xattrs and symlink targets in m->used, byte for byte as statfs shows them, and the
 * metadata that names and indexes them in m->meta: inodes, xattr records, directory
 * entries and their hash and order tables, the nodes of the page indexes. Metadata up
 * to m->meta_free bytes (limit / MEM_META_SHARE) is free; beyond that it is charged to
 * m->used too, so that many empty files or a sparse file with far-apart pages fill the
 * mount instead of the machine. New inodes, names and xattrs are checked against the
 * limit (-ENOSPC); the tables and index nodes they and new data pages cause are charged
 * as they grow, which may take m->used past the limit by one operation's worth, after
 * which everything fails with -ENOSPC until something is freed.
 *
 * Locking. m->ns_lock guards the inode table and the namespace: directory entries, nlink,
 * parent pointers and the inode count. Namespace operations write-lock it and may then
 * touch any inode without taking its lock, since every other path holds ns_lock too. Data
 * operations read-lock it, find their inode, then take inode->lock (read to look, write to
 * change). Order: ns_lock before inode->lock; never two inode locks at once. */
struct mem_bk {
	struct bk base;
	pthread_rwlock_t ns_lock;
	struct pagemap itab;	/* ino -> struct mem_inode; guarded by ns_lock */
	uint64_t next_ino;	/* the next inode number; guarded by ns_lock */
	uint64_t ninodes;	/* inodes in itab; guarded by ns_lock */
	uint64_t limit;		/* bytes, a multiple of MEM_PAGE_SIZE; constant */
	uint64_t meta_free;	/* bytes of metadata not charged to used; constant */
	_Atomic uint64_t used;	/* bytes charged: data, xattrs, symlinks, metadata past meta_free */
	_Atomic uint64_t meta;	/* bytes of metadata */
	struct pagestore store; /* the data pages of every regular file */
};

struct mem_dirent;
struct mem_dslot;

/* A directory: a hash table of names for lookup plus an array in sequence-number order
 * for readdir, where removed entries leave holes until the array is compacted. All
 * guarded by ns_lock. */
struct mem_dir {
	struct mem_dirent **buckets; /* hash chains; NULL until the first entry */
	size_t nbuckets;	     /* a power of two, or 0 */
	struct mem_dslot *order;     /* entries by increasing seq, holes included */
	size_t norder, cap;	     /* slots used / allocated in order */
	size_t count;		     /* live entries */
	uint64_t last_seq;	     /* the seq given to the newest entry */
	struct mem_inode *parent;    /* NULL for the root and for removed directories */
};

struct mem_xattr;

struct mem_inode {
	uint64_t ino; /* constant */
	pthread_rwlock_t lock;
	uint32_t nlink; /* guarded by ns_lock */
	/* the rest is guarded by lock, or by ns_lock held for writing */
	mode_t mode;
	uid_t uid;
	gid_t gid;
	dev_t rdev;
	uint64_t size; /* bytes: file size, or symlink target length */
	struct timespec atime, mtime, ctime;
	struct mem_xattr *xattrs; /* in insertion order */
	union {
		struct pagemap pages; /* S_IFREG: page index -> MEM_PAGE_SIZE bytes */
		struct mem_dir dir;   /* S_IFDIR */
		char *target;	      /* S_IFLNK: not NUL-terminated, size bytes */
	};
};

static inline struct mem_bk *mem_of(struct bk *b)
{
	return (struct mem_bk *)b;
}

/* mem.c */
void mem_now(struct timespec *out);
/* Reserves bytes against the limit: 0 or -ENOSPC (nothing reserved). */
int mem_charge(struct mem_bk *m, uint64_t bytes);
void mem_uncharge(struct mem_bk *m, uint64_t bytes);
/* Adds bytes of metadata: 0, or -ENOSPC (nothing added) if what goes past meta_free
 * does not fit. */
int mem_meta_charge(struct mem_bk *m, uint64_t bytes);
void mem_meta_uncharge(struct mem_bk *m, uint64_t bytes);
/* A structure grew or shrank from before to after bytes: charges or uncharges the
 * difference, even past the limit. */
void mem_meta_resize(struct mem_bk *m, uint64_t before, uint64_t after);
/* Caller holds ns_lock. NULL if ino does not exist. */
struct mem_inode *mem_inode_find(struct mem_bk *m, uint64_t ino);
/* Caller holds ns_lock for writing. Adds an inode with nlink 0, the attributes of n and
 * the current time to the table: 0, -ENOSPC (too many inodes) or -ENOMEM. */
int mem_inode_new(struct mem_bk *m, const struct bk_new *n, struct mem_inode **out);
/* Caller holds ns_lock for writing. Takes in out of the table and frees it. */
void mem_inode_delete(struct mem_bk *m, struct mem_inode *in);
/* Caller holds in->lock or ns_lock for writing. */
void mem_inode_fill(const struct mem_inode *in, struct bk_attr *out);
/* Read-locks ns_lock, finds ino and locks it (for writing if is_write): 0 or -ENOENT
 * (nothing locked). mem_inode_unlock() releases both. */
int mem_inode_lock(struct mem_bk *m, uint64_t ino, bool is_write, struct mem_inode **out);
void mem_inode_unlock(struct mem_bk *m, struct mem_inode *in);

/* mem_dir.c */
void mem_dir_init(struct mem_dir *d);
/* Frees the entries (not the inodes they name) and the tables, and uncharges them. */
void mem_dir_destroy(struct mem_bk *m, struct mem_dir *d);
int mem_lookup(struct bk *b, uint64_t parent, const char *name, struct bk_attr *out);
int mem_mknod(struct bk *b, uint64_t parent, const char *name, const struct bk_new *n,
	      struct bk_attr *out);
int mem_symlink(struct bk *b, uint64_t parent, const char *name, const char *target,
		const struct bk_new *n, struct bk_attr *out);
ssize_t mem_readlink(struct bk *b, uint64_t ino, char *buf, size_t size);
int mem_link(struct bk *b, uint64_t ino, uint64_t newparent, const char *newname,
	     struct bk_attr *out);
int mem_tmpfile(struct bk *b, uint64_t parent, const struct bk_new *n, struct bk_attr *out);
int mem_unlink(struct bk *b, uint64_t parent, const char *name);
int mem_rmdir(struct bk *b, uint64_t parent, const char *name);
int mem_rename(struct bk *b, uint64_t parent, const char *name, uint64_t newparent,
	       const char *newname, unsigned flags);
int mem_readdir(struct bk *b, uint64_t dir, uint64_t cookie, bk_emit_fn emit, void *ctx);

/* mem_file.c */
/* Gives the data pages of a regular file back to the store and their bytes to the limit. */
void mem_file_release(struct mem_bk *m, struct mem_inode *in);
/* Caller holds in->lock for writing. Sets the size of a regular file: pages past the new
 * end are freed and the tail of the last page zeroed. Returns true if the size changed. */
bool mem_file_truncate(struct mem_bk *m, struct mem_inode *in, uint64_t size);
ssize_t mem_read(struct bk *b, uint64_t ino, uint64_t fh, void *buf, size_t len, off_t off);
ssize_t mem_write(struct bk *b, uint64_t ino, uint64_t fh, const void *buf, size_t len, off_t off);
int mem_fallocate(struct bk *b, uint64_t ino, uint64_t fh, int mode, off_t off, off_t len);
ssize_t mem_read_direct(struct bk *b, uint64_t ino, uint64_t fh, size_t len, off_t off,
			bk_reply_fn reply, void *ctx);
off_t mem_lseek(struct bk *b, uint64_t ino, off_t off, int whence);

#endif
