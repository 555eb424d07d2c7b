/* The mem backend's namespace: directory entries and the slots that change or list them
 * (lookup, mknod, symlink, link, unlink, rmdir, rename, readdir, readlink) and tmpfile,
 * which makes an inode without one. Inodes and
 * their attributes belong to mem.c.
 *
 * Readdir cookies: each entry gets a sequence number one above the directory's last on
 * insertion; readdir(cookie) lists the entries with seq > cookie in seq order and passes
 * each one's seq as its cookie. An entry present throughout a listing is therefore seen
 * exactly once, whatever is added or removed meanwhile. Replacing or exchanging a name
 * keeps its entry and seq; a rename to a new name gets a new seq. */
#include "mem.h"
#include "common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MEM_SYMLINK_MAX	  4095	/* bytes in a symlink target, as PATH_MAX - 1 */
#define MEM_LINK_MAX	  65000 /* names of one file, as on ext4 */
#define MEM_READDIR_BATCH 32	/* entries copied out per hold of ns_lock */

struct mem_dirent {
	struct mem_dirent *next; /* hash chain */
	struct mem_inode *inode;
	uint64_t seq;  /* readdir position */
	uint64_t hash; /* of name */
	size_t pos;    /* index in dir->order */
	size_t len;    /* of name, in bytes */
	char name[];   /* NUL-terminated */
};

struct mem_dslot {
	uint64_t seq;
	struct mem_dirent *de; /* NULL once the entry is removed */
};

/* A copy of one entry, taken under ns_lock and emitted after it is released. */
struct mem_rename {
	struct mem_bk *m;
	struct mem_inode *dir, *newdir;
	struct mem_dirent *de, *newde; /* newde NULL: newname is free */
	const char *newname;
	unsigned flags;
};

/* FNV-1a */
static uint64_t mem_hash(const char *name, size_t len)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)name[i]) * UINT64_C(0x100000001b3);
	return h;
}

void mem_dir_init(struct mem_dir *d)
{
	memset(d, 0, sizeof(*d));
}

/* The metadata bytes of an entry with a name of len bytes. */
static uint64_t mem_dirent_bytes(size_t len)
{
	return sizeof(struct mem_dirent) + len + 1;
}

/* The metadata bytes of d's hash and order tables. */
static uint64_t mem_dir_table_bytes(const struct mem_dir *d)
{
	return d->cap * sizeof(*d->order) + d->nbuckets * sizeof(*d->buckets);
}

void mem_dir_destroy(struct mem_bk *m, struct mem_dir *d)
{
	uint64_t bytes = mem_dir_table_bytes(d);

	for (size_t i = 0; i < d->norder; i++) {
		if (d->order[i].de)
			bytes += mem_dirent_bytes(d->order[i].de->len);
		free(d->order[i].de);
	}
	free(d->order);
	free(d->buckets);
	mem_dir_init(d);
	mem_meta_uncharge(m, bytes);
}

static struct mem_dirent *mem_dir_find(const struct mem_dir *d, const char *name)
{
	size_t len = strlen(name);
	uint64_t h = mem_hash(name, len);

	if (d->nbuckets == 0)
		return NULL;
	for (struct mem_dirent *de = d->buckets[h & (d->nbuckets - 1)]; de; de = de->next) {
		if (de->hash == h && de->len == len && memcmp(de->name, name, len) == 0)
			return de;
	}
	return NULL;
}

static void mem_dir_chain(struct mem_dir *d, struct mem_dirent *de)
{
	struct mem_dirent **head = &d->buckets[de->hash & (d->nbuckets - 1)];

	de->next = *head;
	*head = de;
}

/* Rebuilds the hash table with n buckets; on -ENOMEM the old one stays. */
static int mem_dir_rehash(struct mem_dir *d, size_t n)
{
	struct mem_dirent **buckets = calloc(n, sizeof(*buckets));

	if (!buckets)
		return -ENOMEM;
	free(d->buckets);
	d->buckets = buckets;
	d->nbuckets = n;
	for (size_t i = 0; i < d->norder; i++) {
		if (d->order[i].de)
			mem_dir_chain(d, d->order[i].de);
	}
	return 0;
}

/* Makes room for one more entry: 0 or -ENOMEM, with the directory unchanged either way. */
static int mem_dir_reserve(struct mem_dir *d)
{
	struct mem_dslot *order;
	size_t cap = d->cap ? d->cap * 2 : 8;

	if (d->norder == d->cap) {
		order = realloc(d->order, cap * sizeof(*order));
		if (!order)
			return -ENOMEM;
		d->order = order;
		d->cap = cap;
	}
	if (d->count >= d->nbuckets && mem_dir_rehash(d, d->nbuckets ? d->nbuckets * 2 : 8) < 0 &&
	    d->nbuckets == 0)
		return -ENOMEM;
	return 0;
}

/* Adds an entry name -> in to d: 0, -ENOSPC or -ENOMEM, with d unchanged. */
static int mem_dir_insert(struct mem_bk *m, struct mem_dir *d, const char *name,
			  struct mem_inode *in)
{
	size_t len = strlen(name);
	uint64_t tables = mem_dir_table_bytes(d);
	struct mem_dirent *de;
	int rc = mem_meta_charge(m, mem_dirent_bytes(len));

	if (rc < 0)
		return rc;
	de = malloc(sizeof(*de) + len + 1);
	if (!de)
		goto out_uncharge;
	rc = mem_dir_reserve(d);
	mem_meta_resize(m, tables, mem_dir_table_bytes(d));
	if (rc < 0)
		goto out_free;
	de->inode = in;
	de->seq = ++d->last_seq;
	de->hash = mem_hash(name, len);
	de->pos = d->norder++;
	de->len = len;
	memcpy(de->name, name, len + 1);
	d->order[de->pos] = (struct mem_dslot){ de->seq, de };
	mem_dir_chain(d, de);
	d->count++;
	return 0;

out_free:
	free(de);
out_uncharge:
	mem_meta_uncharge(m, mem_dirent_bytes(len));
	return -ENOMEM;
}

/* Squeezes out the holes that removed entries left in the order array. */
static void mem_dir_compact(struct mem_dir *d)
{
	size_t j = 0;

	for (size_t i = 0; i < d->norder; i++) {
		if (!d->order[i].de)
			continue;
		d->order[j] = d->order[i];
		d->order[j].de->pos = j;
		j++;
	}
	d->norder = j;
}

/* After a compaction: a table at least twice the size the entries need (twice their
 * number, 8 at least) shrinks to that size; if memory is short, it stays as it is. */
static void mem_dir_fit(struct mem_dir *d)
{
	size_t want = 8;
	struct mem_dslot *order;

	while (want < 2 * d->count)
		want *= 2;
	if (d->nbuckets >= 2 * want)
		mem_dir_rehash(d, want);
	if (d->cap < 2 * want)
		return;
	order = realloc(d->order, want * sizeof(*order));
	if (order) {
		d->order = order;
		d->cap = want;
	}
}

/* The tables of a directory whose last entry went: freed, as in a new directory. */
static void mem_dir_free_tables(struct mem_dir *d)
{
	free(d->order);
	free(d->buckets);
	d->order = NULL;
	d->buckets = NULL;
	d->norder = d->cap = d->nbuckets = 0;
}

static void mem_dir_remove(struct mem_bk *m, struct mem_dir *d, struct mem_dirent *de)
{
	struct mem_dirent **link = &d->buckets[de->hash & (d->nbuckets - 1)];
	uint64_t tables = mem_dir_table_bytes(d);

	while (*link != de)
		link = &(*link)->next;
	*link = de->next;
	d->order[de->pos].de = NULL;
	d->count--;
	mem_meta_uncharge(m, mem_dirent_bytes(de->len));
	free(de);
	if (d->count == 0) {
		mem_dir_free_tables(d);
	} else if (d->norder >= 16 && d->count * 2 < d->norder) {
		mem_dir_compact(d);
		mem_dir_fit(d);
	}
	mem_meta_resize(m, tables, mem_dir_table_bytes(d));
}

/* The first position in the order array with seq > cookie. */
static size_t mem_dir_seek(const struct mem_dir *d, uint64_t cookie)
{
	size_t lo = 0, hi = d->norder;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (d->order[mid].seq <= cookie)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Caller holds ns_lock. A directory that still has its name: 0, -ENOENT or -ENOTDIR. */
static int mem_dir_get(struct mem_bk *m, uint64_t ino, struct mem_inode **out)
{
	struct mem_inode *in = mem_inode_find(m, ino);

	*out = in;
	if (!in || in->nlink == 0)
		return -ENOENT;
	return S_ISDIR(in->mode) ? 0 : -ENOTDIR;
}

/* Caller holds ns_lock. The entry name in directory parent: 0 or -ENOENT, -ENOTDIR. */
static int mem_entry_find(struct mem_bk *m, uint64_t parent, const char *name,
			  struct mem_inode **dir_out, struct mem_dirent **out)
{
	int rc = mem_dir_get(m, parent, dir_out);

	*out = rc == 0 ? mem_dir_find(&(*dir_out)->dir, name) : NULL;
	if (rc == 0 && !*out)
		rc = -ENOENT;
	return rc;
}

/* Caller holds ns_lock for reading. */
static void mem_fill_locked(struct mem_inode *in, struct bk_attr *out)
{
	pthread_rwlock_rdlock(&in->lock);
	mem_inode_fill(in, out);
	pthread_rwlock_unlock(&in->lock);
}

static void mem_dir_touch(struct mem_inode *dir)
{
	mem_now(&dir->mtime);
	dir->ctime = dir->mtime;
}

int mem_lookup(struct bk *b, uint64_t parent, const char *name, struct bk_attr *out)
{
	struct mem_bk *m = mem_of(b);
	struct mem_inode *dir;
	struct mem_dirent *de;
	int rc = bk_name_check(name);

	if (rc < 0)
		return rc;
	pthread_rwlock_rdlock(&m->ns_lock);
	rc = mem_entry_find(m, parent, name, &dir, &de);
	if (rc == 0)
		mem_fill_locked(de->inode, out);
	pthread_rwlock_unlock(&m->ns_lock);
	return rc;
}

/* Caller holds ns_lock for writing. Creates an inode for n and names it. */
static int mem_create(struct mem_bk *m, uint64_t parent, const char *name, const struct bk_new *n,
		      struct mem_inode **out)
{
	struct mem_inode *dir, *in;
	int rc = mem_dir_get(m, parent, &dir);

	if (rc == 0 && mem_dir_find(&dir->dir, name))
		rc = -EEXIST;
	if (rc == 0)
		rc = mem_inode_new(m, n, &in);
	if (rc < 0)
		return rc;
	rc = mem_dir_insert(m, &dir->dir, name, in);
	if (rc < 0)
		goto out_delete;
	in->nlink = 1;
	if (S_ISDIR(in->mode)) {
		in->nlink = 2;
		in->dir.parent = dir;
		dir->nlink++;
	}
	mem_dir_touch(dir);
	*out = in;
	return 0;

out_delete:
	mem_inode_delete(m, in);
	return rc;
}

int mem_mknod(struct bk *b, uint64_t parent, const char *name, const struct bk_new *n,
	      struct bk_attr *out)
{
	struct mem_bk *m = mem_of(b);
	struct mem_inode *in;
	int rc = bk_name_check(name);

	if (rc == 0)
		rc = bk_mknod_type_check(n->mode);
	if (rc < 0)
		return rc;
	pthread_rwlock_wrlock(&m->ns_lock);
	rc = mem_create(m, parent, name, n, &in);
	if (rc == 0)
		mem_inode_fill(in, out);
	pthread_rwlock_unlock(&m->ns_lock);
	return rc;
}

static int mem_symlink_check(const char *name, const char *target)
{
	size_t len = strnlen(target, MEM_SYMLINK_MAX + 1);
	int rc = bk_name_check(name);

	if (rc == 0 && len == 0)
		rc = -ENOENT;
	if (rc == 0 && len > MEM_SYMLINK_MAX)
		rc = -ENAMETOOLONG;
	return rc;
}

int mem_symlink(struct bk *b, uint64_t parent, const char *name, const char *target,
		const struct bk_new *n, struct bk_attr *out)
{
	struct mem_bk *m = mem_of(b);
	struct bk_new ln = { .mode = S_IFLNK | 0777, .uid = n->uid, .gid = n->gid };
	size_t len = strlen(target);
	struct mem_inode *in;
	char *copy;
	int rc = mem_symlink_check(name, target);

	if (rc < 0)
		return rc;
	copy = malloc(len);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, target, len);
	rc = mem_charge(m, len);
	if (rc < 0)
		goto out_free;
	pthread_rwlock_wrlock(&m->ns_lock);
	rc = mem_create(m, parent, name, &ln, &in);
	if (rc == 0) {
		in->target = copy;
		in->size = len;
		mem_inode_fill(in, out);
	}
	pthread_rwlock_unlock(&m->ns_lock);
	if (rc < 0)
		goto out_uncharge;
	return 0;

out_uncharge:
	mem_uncharge(m, len);
out_free:
	free(copy);
	return rc;
}

ssize_t mem_readlink(struct bk *b, uint64_t ino, char *buf, size_t size)
{
	struct mem_inode *in;
	ssize_t rc = mem_inode_lock(mem_of(b), ino, false, &in);

	if (rc < 0)
		return rc;
	rc = -EINVAL;
	if (S_ISLNK(in->mode)) {
		memcpy(buf, in->target, size < in->size ? size : in->size);
		rc = (ssize_t)in->size;
	}
	mem_inode_unlock(mem_of(b), in);
	return rc;
}

/* Caller holds ns_lock for writing. */
static int mem_link_locked(struct mem_bk *m, uint64_t ino, uint64_t newparent, const char *newname,
			   struct mem_inode **out)
{
	struct mem_inode *in = mem_inode_find(m, ino), *dir;
	int rc = 0;

	if (!in)
		rc = -ENOENT;
	else if (S_ISDIR(in->mode))
		rc = -EPERM;
	else if (in->nlink >= MEM_LINK_MAX)
		rc = -EMLINK;
	if (rc == 0)
		rc = mem_dir_get(m, newparent, &dir);
	if (rc == 0 && mem_dir_find(&dir->dir, newname))
		rc = -EEXIST;
	if (rc == 0)
		rc = mem_dir_insert(m, &dir->dir, newname, in);
	if (rc < 0)
		return rc;
	in->nlink++;
	mem_now(&in->ctime);
	mem_dir_touch(dir);
	*out = in;
	return 0;
}

int mem_link(struct bk *b, uint64_t ino, uint64_t newparent, const char *newname,
	     struct bk_attr *out)
{
	struct mem_bk *m = mem_of(b);
	struct mem_inode *in;
	int rc = bk_name_check(newname);

	if (rc < 0)
		return rc;
	pthread_rwlock_wrlock(&m->ns_lock);
	rc = mem_link_locked(m, ino, newparent, newname, &in);
	if (rc == 0)
		mem_inode_fill(in, out);
	pthread_rwlock_unlock(&m->ns_lock);
	return rc;
}

int mem_tmpfile(struct bk *b, uint64_t parent, const struct bk_new *n, struct bk_attr *out)
{
	struct mem_bk *m = mem_of(b);
	struct mem_inode *dir, *in;
	int rc;

	if (!S_ISREG(n->mode))
		return -EINVAL;
	pthread_rwlock_wrlock(&m->ns_lock);
	rc = mem_dir_get(m, parent, &dir);
	if (rc == 0)
		rc = mem_inode_new(m, n, &in);
	if (rc == 0)
		mem_inode_fill(in, out);
	pthread_rwlock_unlock(&m->ns_lock);
	return rc;
}

/* Caller holds ns_lock for writing. in loses a name it had in dir; a directory has only
 * one, and takes its ".." link in dir along. */
static void mem_drop_link(struct mem_inode *dir, struct mem_inode *in)
{
	if (S_ISDIR(in->mode)) {
		in->nlink = 0;
		in->dir.parent = NULL;
		dir->nlink--;
	} else {
		in->nlink--;
	}
	mem_now(&in->ctime);
}

/* Caller holds ns_lock for writing. Removes de from dir and drops the link it held. */
static void mem_unname(struct mem_bk *m, struct mem_inode *dir, struct mem_dirent *de)
{
	struct mem_inode *in = de->inode;

	mem_dir_remove(m, &dir->dir, de);
	mem_drop_link(dir, in);
	mem_dir_touch(dir);
}

int mem_unlink(struct bk *b, uint64_t parent, const char *name)
{
	struct mem_bk *m = mem_of(b);
	struct mem_inode *dir;
	struct mem_dirent *de;
	int rc = bk_name_check(name);

	if (rc < 0)
		return rc;
	pthread_rwlock_wrlock(&m->ns_lock);
	rc = mem_entry_find(m, parent, name, &dir, &de);
	if (rc == 0 && S_ISDIR(de->inode->mode))
		rc = -EISDIR;
	if (rc == 0)
		mem_unname(m, dir, de);
	pthread_rwlock_unlock(&m->ns_lock);
	return rc;
}

int mem_rmdir(struct bk *b, uint64_t parent, const char *name)
{
	struct mem_bk *m = mem_of(b);
	struct mem_inode *dir;
	struct mem_dirent *de;
	int rc = bk_name_check(name);

	if (rc < 0)
		return rc;
	pthread_rwlock_wrlock(&m->ns_lock);
	rc = mem_entry_find(m, parent, name, &dir, &de);
	if (rc == 0 && !S_ISDIR(de->inode->mode))
		rc = -ENOTDIR;
	if (rc == 0 && de->inode->dir.count != 0)
		rc = -ENOTEMPTY;
	if (rc == 0)
		mem_unname(m, dir, de);
	pthread_rwlock_unlock(&m->ns_lock);
	return rc;
}

static bool mem_is_ancestor(const struct mem_inode *a, const struct mem_inode *dir)
{
	for (; dir; dir = dir->dir.parent) {
		if (dir == a)
			return true;
	}
	return false;
}

static int mem_rename_resolve(struct mem_bk *m, uint64_t parent, const char *name,
			      uint64_t newparent, struct mem_rename *r)
{
	int rc = mem_entry_find(m, parent, name, &r->dir, &r->de);

	if (rc == 0)
		rc = mem_dir_get(m, newparent, &r->newdir);
	if (rc == 0)
		r->newde = mem_dir_find(&r->newdir->dir, r->newname);
	if (rc == 0 && r->newde && (r->flags & BK_RENAME_NOREPLACE))
		rc = -EEXIST;
	if (rc == 0 && !r->newde && (r->flags & BK_RENAME_EXCHANGE))
		rc = -ENOENT;
	return rc;
}

static int mem_rename_check(const struct mem_rename *r)
{
	const struct mem_inode *src = r->de->inode;
	const struct mem_inode *dst = r->newde ? r->newde->inode : NULL;

	if (S_ISDIR(src->mode) && mem_is_ancestor(src, r->newdir))
		return -EINVAL;
	if (!dst)
		return 0;
	if (r->flags & BK_RENAME_EXCHANGE)
		return S_ISDIR(dst->mode) && mem_is_ancestor(dst, r->dir) ? -EINVAL : 0;
	if (S_ISDIR(src->mode) && !S_ISDIR(dst->mode))
		return -ENOTDIR;
	if (!S_ISDIR(src->mode) && S_ISDIR(dst->mode))
		return -EISDIR;
	return S_ISDIR(dst->mode) && dst->dir.count != 0 ? -ENOTEMPTY : 0;
}

/* A directory moving from one parent to another takes its ".." link along. */
static void mem_reparent(struct mem_inode *in, struct mem_inode *from, struct mem_inode *to)
{
	if (!S_ISDIR(in->mode) || from == to)
		return;
	from->nlink--;
	to->nlink++;
	in->dir.parent = to;
}

static void mem_rename_touch(struct mem_rename *r, struct mem_inode *src, struct mem_inode *dst)
{
	mem_dir_touch(r->dir);
	mem_dir_touch(r->newdir);
	src->ctime = r->dir->ctime;
	if (dst)
		dst->ctime = r->dir->ctime;
}

static void mem_rename_exchange(struct mem_rename *r)
{
	struct mem_inode *src = r->de->inode, *dst = r->newde->inode;

	r->de->inode = dst;
	r->newde->inode = src;
	mem_reparent(src, r->dir, r->newdir);
	mem_reparent(dst, r->newdir, r->dir);
	mem_rename_touch(r, src, dst);
}

static int mem_rename_move(struct mem_rename *r)
{
	struct mem_inode *src = r->de->inode, *dst = NULL;
	int rc;

	if (r->newde) {
		dst = r->newde->inode;
		mem_drop_link(r->newdir, dst);
		r->newde->inode = src;
	} else {
		rc = mem_dir_insert(r->m, &r->newdir->dir, r->newname, src);
		if (rc < 0)
			return rc;
	}
	mem_dir_remove(r->m, &r->dir->dir, r->de);
	mem_reparent(src, r->dir, r->newdir);
	mem_rename_touch(r, src, dst);
	return 0;
}

int mem_rename(struct bk *b, uint64_t parent, const char *name, uint64_t newparent,
	       const char *newname, unsigned flags)
{
	struct mem_bk *m = mem_of(b);
	struct mem_rename r = { .m = m, .newname = newname, .flags = flags };
	const unsigned both = BK_RENAME_NOREPLACE | BK_RENAME_EXCHANGE;
	int rc = bk_name_check(name);

	if (rc == 0)
		rc = bk_name_check(newname);
	if (rc == 0 && ((flags & ~both) || flags == both))
		rc = -EINVAL;
	if (rc < 0)
		return rc;
	pthread_rwlock_wrlock(&m->ns_lock);
	rc = mem_rename_resolve(m, parent, name, newparent, &r);
	if (rc == 0 && r.newde && r.newde->inode == r.de->inode)
		goto out_unlock;
	if (rc == 0)
		rc = mem_rename_check(&r);
	if (rc == 0 && (flags & BK_RENAME_EXCHANGE))
		mem_rename_exchange(&r);
	else if (rc == 0)
		rc = mem_rename_move(&r);
out_unlock:
	pthread_rwlock_unlock(&m->ns_lock);
	return rc;
}

/* Caller holds ns_lock for reading. Copies up to max entries after cookie into batch and
 * returns how many. */
static size_t mem_dir_copy(const struct mem_dir *d, uint64_t cookie, struct bk_dirent *batch,
			   size_t max)
{
	size_t n = 0;

	for (size_t i = mem_dir_seek(d, cookie); i < d->norder && n < max; i++) {
		const struct mem_dirent *de = d->order[i].de;

		if (!de)
			continue;
		batch[n].seq = de->seq;
		memcpy(batch[n].name, de->name, de->len + 1);
		mem_fill_locked(de->inode, &batch[n].attr);
		n++;
	}
	return n;
}

static int mem_readdir_batch(struct bk *b, uint64_t ino, uint64_t cookie, struct bk_dirent *batch,
			     size_t max, size_t *n_out)
{
	struct mem_bk *m = mem_of(b);
	struct mem_inode *dir;
	int rc;

	*n_out = 0;
	pthread_rwlock_rdlock(&m->ns_lock);
	rc = mem_dir_get(m, ino, &dir);
	if (rc == 0)
		*n_out = mem_dir_copy(&dir->dir, cookie, batch, max);
	pthread_rwlock_unlock(&m->ns_lock);
	return rc;
}

/* Emits outside ns_lock, so emit may call back into the backend. */
int mem_readdir(struct bk *b, uint64_t dir, uint64_t cookie, bk_emit_fn emit, void *ctx)
{
	return bk_readdir_batched(b, dir, cookie, MEM_READDIR_BATCH, mem_readdir_batch, emit, ctx);
}
