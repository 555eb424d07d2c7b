/* The mem backend: the backend object and its byte limit, the inode table, attributes
 * and extended attributes, and the exported bk_mem_ops table. The namespace lives in
 * mem_dir.c, file data in mem_file.c; mem.h states the locking rules.
 *
 * Inode numbers come from m->next_ino, which only grows: a number is never reused, even
 * after the inode is freed. An inode stays in the table while it has links or until
 * fs/ forgets it, so an unlinked but open file keeps its data. */
#include "mem.h"
#include "common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define MEM_LIMIT_MIN	   (64 * 1024)	       /* smallest byte limit mem:SIZE accepts */
#define MEM_FILES_MAX	   (UINT64_C(1) << 32) /* inodes, as statfs reports them */
#define MEM_XATTR_NAME_MAX 255
#define MEM_DIRENT_BOGO	   20 /* bytes a directory entry adds to st_size, as on tmpfs */

struct mem_xattr {
	struct mem_xattr *next;
	void *value;
	size_t size; /* bytes of value */
	size_t name_len;
	char name[]; /* NUL-terminated */
};

void mem_now(struct timespec *out)
{
	clock_gettime(CLOCK_REALTIME, out);
}

int mem_charge(struct mem_bk *m, uint64_t bytes)
{
	uint64_t used = atomic_load(&m->used);

	do {
		/* metadata may have taken used past the limit */
		if (used > m->limit || bytes > m->limit - used)
			return -ENOSPC;
	} while (!atomic_compare_exchange_weak(&m->used, &used, used + bytes));
	return 0;
}

void mem_uncharge(struct mem_bk *m, uint64_t bytes)
{
	atomic_fetch_sub(&m->used, bytes);
}

/* The part of meta bytes of metadata that counts against the limit. */
static uint64_t mem_meta_spill(const struct mem_bk *m, uint64_t meta)
{
	return meta > m->meta_free ? meta - m->meta_free : 0;
}

/* Adds bytes to m->meta; returns how much more of it is past meta_free. Each caller sees
 * its own before and after, so concurrent spills add up to the total's. */
static uint64_t mem_meta_add(struct mem_bk *m, uint64_t bytes)
{
	uint64_t old = atomic_fetch_add(&m->meta, bytes);

	return mem_meta_spill(m, old + bytes) - mem_meta_spill(m, old);
}

int mem_meta_charge(struct mem_bk *m, uint64_t bytes)
{
	uint64_t spill = mem_meta_add(m, bytes);

	if (spill == 0 || mem_charge(m, spill) == 0)
		return 0;
	/* what mem_meta_uncharge() takes back */
	atomic_fetch_add(&m->used, spill);
	mem_meta_uncharge(m, bytes);
	return -ENOSPC;
}

void mem_meta_uncharge(struct mem_bk *m, uint64_t bytes)
{
	uint64_t old = atomic_fetch_sub(&m->meta, bytes);

	mem_uncharge(m, mem_meta_spill(m, old) - mem_meta_spill(m, old - bytes));
}

void mem_meta_resize(struct mem_bk *m, uint64_t before, uint64_t after)
{
	if (after > before)
		atomic_fetch_add(&m->used, mem_meta_add(m, after - before));
	else
		mem_meta_uncharge(m, before - after);
}

struct mem_inode *mem_inode_find(struct mem_bk *m, uint64_t ino)
{
	return pagemap_lookup(&m->itab, ino);
}

/* Adds in to the inode table, charging the nodes that takes. */
static int mem_itab_insert(struct mem_bk *m, struct mem_inode *in)
{
	uint64_t before = pagemap_bytes(&m->itab);
	int rc = pagemap_insert(&m->itab, in->ino, in);

	mem_meta_resize(m, before, pagemap_bytes(&m->itab));
	return rc;
}

int mem_inode_new(struct mem_bk *m, const struct bk_new *n, struct mem_inode **out)
{
	struct mem_inode *in;
	int rc;

	*out = NULL;
	if (m->ninodes >= MEM_FILES_MAX)
		return -ENOSPC;
	rc = mem_meta_charge(m, sizeof(*in));
	if (rc < 0)
		return rc;
	rc = -ENOMEM;
	in = calloc(1, sizeof(*in));
	if (!in)
		goto out_uncharge;
	rc = -pthread_rwlock_init(&in->lock, NULL);
	if (rc < 0)
		goto out_free;
	in->ino = m->next_ino;
	rc = mem_itab_insert(m, in);
	if (rc < 0)
		goto out_destroy;
	m->next_ino++;
	m->ninodes++;
	in->mode = n->mode;
	in->uid = n->uid;
	in->gid = n->gid;
	in->rdev = n->rdev;
	mem_now(&in->ctime);
	in->atime = in->mtime = in->ctime;
	if (S_ISREG(in->mode))
		pagemap_init(&in->pages);
	else if (S_ISDIR(in->mode))
		mem_dir_init(&in->dir);
	*out = in;
	return 0;

out_destroy:
	pthread_rwlock_destroy(&in->lock);
out_free:
	free(in);
out_uncharge:
	mem_meta_uncharge(m, sizeof(*in));
	return rc;
}

static void mem_xattr_free(struct mem_bk *m, struct mem_xattr *x)
{
	mem_uncharge(m, x->name_len + x->size);
	mem_meta_uncharge(m, sizeof(*x));
	free(x->value);
	free(x);
}

/* pagemap_free_fn for the inode table: frees an inode and returns its bytes to the limit. */
static void mem_inode_free(void *item, void *ctx)
{
	struct mem_inode *in = item;
	struct mem_bk *m = ctx;

	while (in->xattrs) {
		struct mem_xattr *x = in->xattrs;

		in->xattrs = x->next;
		mem_xattr_free(m, x);
	}
	if (S_ISREG(in->mode)) {
		mem_file_release(m, in);
	} else if (S_ISDIR(in->mode)) {
		mem_dir_destroy(m, &in->dir);
	} else if (S_ISLNK(in->mode)) {
		mem_uncharge(m, in->size);
		free(in->target);
	}
	pthread_rwlock_destroy(&in->lock);
	free(in);
	mem_meta_uncharge(m, sizeof(*in));
}

void mem_inode_delete(struct mem_bk *m, struct mem_inode *in)
{
	uint64_t before = pagemap_bytes(&m->itab);

	pagemap_remove(&m->itab, in->ino);
	mem_meta_resize(m, before, pagemap_bytes(&m->itab));
	m->ninodes--;
	mem_inode_free(in, m);
}

void mem_inode_fill(const struct mem_inode *in, struct bk_attr *out)
{
	memset(out, 0, sizeof(*out));
	out->ino = in->ino;
	out->mode = in->mode;
	out->nlink = in->nlink;
	out->uid = in->uid;
	out->gid = in->gid;
	out->rdev = in->rdev;
	out->size = in->size;
	if (S_ISDIR(in->mode))
		out->size = MEM_DIRENT_BOGO * (in->dir.count + 2);
	if (S_ISREG(in->mode))
		out->blocks = in->pages.count * (MEM_PAGE_SIZE / 512);
	out->atime = in->atime;
	out->mtime = in->mtime;
	out->ctime = in->ctime;
}

int mem_inode_lock(struct mem_bk *m, uint64_t ino, bool is_write, struct mem_inode **out)
{
	struct mem_inode *in;

	pthread_rwlock_rdlock(&m->ns_lock);
	in = mem_inode_find(m, ino);
	*out = in;
	if (!in)
		goto out_unlock;
	if (is_write)
		pthread_rwlock_wrlock(&in->lock);
	else
		pthread_rwlock_rdlock(&in->lock);
	return 0;

out_unlock:
	pthread_rwlock_unlock(&m->ns_lock);
	return -ENOENT;
}

void mem_inode_unlock(struct mem_bk *m, struct mem_inode *in)
{
	pthread_rwlock_unlock(&in->lock);
	pthread_rwlock_unlock(&m->ns_lock);
}

/* The byte limit: the size given, or half of physical memory, as tmpfs does. */
static int mem_limit(const struct bk_source *src, const struct bk_log *log, uint64_t *out)
{
	long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);
	uint64_t limit = (uint64_t)pages * (uint64_t)page_size / 2;

	if (!src->has_size && (pages <= 0 || page_size <= 0)) {
		bk_logf(log, BK_LOG_ERR,
			"mem: the size of physical memory: unknown (give one as mem:SIZE)");
		return -EINVAL;
	}
	if (src->has_size)
		limit = src->size;
	limit &= ~(MEM_PAGE_SIZE - 1);
	if (limit < MEM_LIMIT_MIN) {
		bk_logf(log, BK_LOG_ERR, "mem: size '%s': too small (at least 64K)", src->arg);
		return -EINVAL;
	}
	*out = limit;
	return 0;
}

/* Writers first: a stream of reads must not starve namespace changes. */
static int mem_ns_lock_init(pthread_rwlock_t *lock)
{
	pthread_rwlockattr_t attr;
	int rc;

	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	rc = -pthread_rwlock_init(lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	return rc;
}

static int mem_root_new(struct mem_bk *m)
{
	const struct bk_new root = { .mode = S_IFDIR | 0755 };
	struct mem_inode *in;
	int rc = mem_inode_new(m, &root, &in);

	if (rc == 0)
		in->nlink = 2;
	return rc;
}

static int mem_open(const struct bk_source *src, const struct bk_log *log, struct bk **out)
{
	struct mem_bk *m;
	uint64_t limit;
	int rc;

	*out = NULL;
	rc = mem_limit(src, log, &limit);
	if (rc < 0)
		return rc;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->base.ops = &bk_mem_ops;
	m->limit = limit;
	m->meta_free = limit / MEM_META_SHARE;
	m->next_ino = BK_ROOT_INO;
	atomic_init(&m->used, 0);
	atomic_init(&m->meta, 0);
	pagemap_init(&m->itab);
	rc = mem_ns_lock_init(&m->ns_lock);
	if (rc < 0)
		goto out_free;
	rc = pagestore_init(&m->store);
	if (rc < 0)
		goto out_destroy;
	rc = mem_root_new(m);
	if (rc < 0)
		goto out_store;
	*out = &m->base;
	return 0;

out_store:
	pagestore_destroy(&m->store);
out_destroy:
	pthread_rwlock_destroy(&m->ns_lock);
out_free:
	free(m);
	return rc;
}

static void mem_close(struct bk *b)
{
	struct mem_bk *m = mem_of(b);

	pagemap_destroy(&m->itab, mem_inode_free, m);
	pagestore_destroy(&m->store);
	pthread_rwlock_destroy(&m->ns_lock);
	free(m);
}

static int mem_statfs(struct bk *b, struct statvfs *out)
{
	struct mem_bk *m = mem_of(b);
	uint64_t used = atomic_load(&m->used);

	memset(out, 0, sizeof(*out));
	out->f_bsize = MEM_PAGE_SIZE;
	out->f_frsize = MEM_PAGE_SIZE;
	out->f_blocks = m->limit / MEM_PAGE_SIZE;
	out->f_bfree = used < m->limit ? (m->limit - used) / MEM_PAGE_SIZE : 0;
	out->f_bavail = out->f_bfree;
	out->f_files = MEM_FILES_MAX;
	pthread_rwlock_rdlock(&m->ns_lock);
	out->f_ffree = MEM_FILES_MAX - m->ninodes;
	pthread_rwlock_unlock(&m->ns_lock);
	out->f_favail = out->f_ffree;
	out->f_namemax = BK_NAME_MAX;
	return 0;
}

static int mem_getattr(struct bk *b, uint64_t ino, struct bk_attr *out)
{
	struct mem_inode *in;
	int rc = mem_inode_lock(mem_of(b), ino, false, &in);

	if (rc < 0)
		return rc;
	mem_inode_fill(in, out);
	mem_inode_unlock(mem_of(b), in);
	return 0;
}

static void mem_setattr_apply(struct mem_bk *m, struct mem_inode *in, const struct bk_setattr *s)
{
	bool is_resized = false;
	struct timespec now;

	mem_now(&now);
	if (s->valid & BK_SET_SIZE)
		is_resized = mem_file_truncate(m, in, s->size);
	bk_setattr_apply(s, &now, is_resized,
			 &(struct bk_inode_fields){ &in->mode, &in->uid, &in->gid, &in->atime,
						    &in->mtime, &in->ctime });
}

static int mem_setattr(struct bk *b, uint64_t ino, const struct bk_setattr *s, struct bk_attr *out)
{
	struct mem_bk *m = mem_of(b);
	struct mem_inode *in;
	int rc = mem_inode_lock(m, ino, true, &in);

	if (rc < 0)
		return rc;
	rc = bk_setattr_check(in->mode, s, MEM_FILE_MAX);
	if (rc < 0)
		goto out_unlock;
	mem_setattr_apply(m, in, s);
	mem_inode_fill(in, out);
out_unlock:
	mem_inode_unlock(m, in);
	return rc;
}

static void mem_forget(struct bk *b, uint64_t ino)
{
	struct mem_bk *m = mem_of(b);
	struct mem_inode *in;

	pthread_rwlock_wrlock(&m->ns_lock);
	in = mem_inode_find(m, ino);
	if (in && in->nlink == 0)
		mem_inode_delete(m, in);
	pthread_rwlock_unlock(&m->ns_lock);
}

static int mem_xattr_check_name(const char *name)
{
	size_t len = strnlen(name, MEM_XATTR_NAME_MAX + 1);

	return len == 0 || len > MEM_XATTR_NAME_MAX ? -ERANGE : 0;
}

/* The link that points at name's xattr, or the NULL link at the end of the list. */
static struct mem_xattr **mem_xattr_link(struct mem_inode *in, const char *name)
{
	struct mem_xattr **link = &in->xattrs;

	while (*link && strcmp((*link)->name, name) != 0)
		link = &(*link)->next;
	return link;
}

static int mem_xattr_replace(struct mem_bk *m, struct mem_xattr *x, const void *value, size_t size)
{
	void *copy = malloc(size ? size : 1);
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	if (size > x->size)
		rc = mem_charge(m, size - x->size);
	else
		mem_uncharge(m, x->size - size);
	if (rc < 0)
		goto out_free;
	if (size)
		memcpy(copy, value, size);
	free(x->value);
	x->value = copy;
	x->size = size;
	return 0;

out_free:
	free(copy);
	return rc;
}

static int mem_xattr_create(struct mem_bk *m, struct mem_xattr **link, const char *name,
			    const void *value, size_t size)
{
	size_t name_len = strlen(name);
	struct mem_xattr *x;
	int rc = mem_charge(m, name_len + size);

	if (rc < 0)
		return rc;
	rc = mem_meta_charge(m, sizeof(*x));
	if (rc < 0)
		goto out_uncharge;
	rc = -ENOMEM;
	x = malloc(sizeof(*x) + name_len + 1);
	if (!x)
		goto out_meta;
	x->value = malloc(size ? size : 1);
	if (!x->value)
		goto out_free;
	if (size)
		memcpy(x->value, value, size);
	x->size = size;
	x->name_len = name_len;
	memcpy(x->name, name, name_len + 1);
	x->next = NULL;
	*link = x;
	return 0;

out_free:
	free(x);
out_meta:
	mem_meta_uncharge(m, sizeof(*x));
out_uncharge:
	mem_uncharge(m, name_len + size);
	return rc;
}

static int mem_setxattr(struct bk *b, uint64_t ino, const char *name, const void *value,
			size_t size, int flags)
{
	struct mem_bk *m = mem_of(b);
	struct mem_xattr **link;
	struct mem_inode *in;
	int rc = mem_xattr_check_name(name);

	if (rc == 0 && size > BK_XATTR_SIZE_MAX)
		rc = -E2BIG;
	if (rc == 0 && (flags & ~(XATTR_CREATE | XATTR_REPLACE)))
		rc = -EINVAL;
	if (rc == 0)
		rc = mem_inode_lock(m, ino, true, &in);
	if (rc < 0)
		return rc;
	link = mem_xattr_link(in, name);
	if (*link && (flags & XATTR_CREATE))
		rc = -EEXIST;
	else if (!*link && (flags & XATTR_REPLACE))
		rc = -ENODATA;
	else if (*link)
		rc = mem_xattr_replace(m, *link, value, size);
	else
		rc = mem_xattr_create(m, link, name, value, size);
	if (rc == 0)
		mem_now(&in->ctime);
	mem_inode_unlock(m, in);
	return rc;
}

static ssize_t mem_getxattr(struct bk *b, uint64_t ino, const char *name, void *buf, size_t size)
{
	struct mem_xattr *x;
	struct mem_inode *in;
	ssize_t rc = mem_xattr_check_name(name);

	if (rc == 0)
		rc = mem_inode_lock(mem_of(b), ino, false, &in);
	if (rc < 0)
		return rc;
	x = *mem_xattr_link(in, name);
	if (!x)
		rc = -ENODATA;
	else if (size != 0 && size < x->size)
		rc = -ERANGE;
	else
		rc = (ssize_t)x->size;
	if (rc > 0 && size != 0)
		memcpy(buf, x->value, x->size);
	mem_inode_unlock(mem_of(b), in);
	return rc;
}

static ssize_t mem_listxattr(struct bk *b, uint64_t ino, char *buf, size_t size)
{
	struct mem_inode *in;
	size_t total = 0;
	ssize_t rc = mem_inode_lock(mem_of(b), ino, false, &in);

	if (rc < 0)
		return rc;
	for (struct mem_xattr *x = in->xattrs; x; x = x->next)
		total += x->name_len + 1;
	rc = size != 0 && size < total ? -ERANGE : (ssize_t)total;
	for (struct mem_xattr *x = in->xattrs; x && rc > 0 && size != 0; x = x->next) {
		memcpy(buf, x->name, x->name_len + 1);
		buf += x->name_len + 1;
	}
	mem_inode_unlock(mem_of(b), in);
	return rc;
}

static int mem_removexattr(struct bk *b, uint64_t ino, const char *name)
{
	struct mem_bk *m = mem_of(b);
	struct mem_xattr **link, *x;
	struct mem_inode *in;
	int rc = mem_xattr_check_name(name);

	if (rc == 0)
		rc = mem_inode_lock(m, ino, true, &in);
	if (rc < 0)
		return rc;
	link = mem_xattr_link(in, name);
	x = *link;
	rc = x ? 0 : -ENODATA;
	if (x) {
		*link = x->next;
		mem_xattr_free(m, x);
		mem_now(&in->ctime);
	}
	mem_inode_unlock(m, in);
	return rc;
}

const struct bk_ops bk_mem_ops = {
	.version = BK_OPS_VERSION,
	.name = "mem",
	.flags = BK_F_THREADSAFE | BK_F_LIMIT | BK_F_HARDLINKS | BK_F_XATTR | BK_F_SET_CTIME |
		 BK_F_RELINK,
	.source_form = BK_SOURCE_SIZE,
	.open = mem_open,
	.close = mem_close,
	.statfs = mem_statfs,
	.getattr = mem_getattr,
	.setattr = mem_setattr,
	.lookup = mem_lookup,
	.mknod = mem_mknod,
	.symlink = mem_symlink,
	.readlink = mem_readlink,
	.link = mem_link,
	.unlink = mem_unlink,
	.rmdir = mem_rmdir,
	.rename = mem_rename,
	.readdir = mem_readdir,
	.forget = mem_forget,
	.read = mem_read,
	.write = mem_write,
	.fallocate = mem_fallocate,
	.lseek = mem_lseek,
	.read_direct = mem_read_direct,
	.setxattr = mem_setxattr,
	.getxattr = mem_getxattr,
	.listxattr = mem_listxattr,
	.removexattr = mem_removexattr,
	.tmpfile = mem_tmpfile,
};
