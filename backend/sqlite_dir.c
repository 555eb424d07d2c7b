/* The sqlite backend's namespace: directory entries and the slots that change or list
 * them (lookup, mknod, symlink, link, unlink, rmdir, rename, readdir, readlink), and
 * tmpfile, which makes an inode without one: this mount's orphan from the start. Each slot
 * reads the rows it needs into struct sqlite_inode, changes them in memory and writes
 * them back, inside one operation of the writer's batch.
 *
 * Readdir cookies, as in the mem backend: each entry gets a position one above its
 * directory's dir_seq on insertion, and readdir(cookie) lists the entries with seq >
 * cookie in seq order. Replacing or exchanging a name keeps its entry and seq; a rename
 * to a new name gets a new seq. */
#include "sqlite.h"
#include "common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SQ_SYMLINK_MAX	 4095  /* bytes in a symlink target, as PATH_MAX - 1 */
#define SQ_LINK_MAX	 65000 /* names of one file, as on ext4 */
#define SQ_READDIR_BATCH 64    /* entries read per turn on a connection */

/* A copy of one entry, taken on a connection and emitted after it is released. */
/* The inodes a rename touches. dir and newdir may be one object; dst is NULL when
 * newname is free. */
struct sq_rename {
	struct sqlite_inode dir_buf, newdir_buf, src, dst_buf;
	struct sqlite_inode *dir, *newdir, *dst;
	const char *name, *newname;
	unsigned flags;
};

/* A directory that still has its name: 0, -ENOENT or -ENOTDIR. */
static int dir_get(struct sqlite_conn *c, uint64_t ino, struct sqlite_inode *out)
{
	int rc = sqlite_inode_get(c, ino, out);

	if (rc == 0 && out->nlink == 0)
		rc = -ENOENT;
	if (rc == 0 && !S_ISDIR(out->mode))
		rc = -ENOTDIR;
	return rc;
}

/* Statement id with ?1 = parent and ?2 = name bound. */
static int dir_stmt(struct sqlite_conn *c, enum sq_stmt id, uint64_t parent, const char *name,
		    sqlite3_stmt **out)
{
	int rc = sqlite_stmt(c, id, out);

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(*out, 1, (int64_t)parent);
	sqlite3_bind_blob(*out, 2, name, (int)strlen(name), SQLITE_STATIC);
	return 0;
}

/* The inode name refers to in parent: 0 or -ENOENT. */
static int dirent_get(struct sqlite_conn *c, uint64_t parent, const char *name, uint64_t *out)
{
	sqlite3_stmt *st;
	int rc = dir_stmt(c, SQ_DIRENT_GET, parent, name, &st);

	if (rc < 0)
		return rc;
	rc = sqlite_step(c, st, "read dirent");
	*out = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (rc < 0)
		return rc;
	return rc == SQLITE_ROW ? 0 : -ENOENT;
}

/* Runs id (an entry's insert, delete or retarget) with ?3 = ino and ?4 = seq. */
static int dirent_run(struct sqlite_conn *c, enum sq_stmt id, uint64_t parent, const char *name,
		      uint64_t ino, uint64_t seq)
{
	sqlite3_stmt *st;
	int rc = dir_stmt(c, id, parent, name, &st);

	if (rc < 0)
		return rc;
	if (id != SQ_DIRENT_DEL)
		sqlite3_bind_int64(st, 3, (int64_t)ino);
	if (id == SQ_DIRENT_ADD)
		sqlite3_bind_int64(st, 4, (int64_t)seq);
	rc = sqlite_step(c, st, sqlite_sql[id]);
	sqlite3_reset(st);
	return rc < 0 ? rc : 0;
}

/* Names ino in dir (changed in memory; the caller writes it back). */
static int dirent_add(struct sqlite_conn *c, struct sqlite_inode *dir, const char *name,
		      uint64_t ino)
{
	int rc = dirent_run(c, SQ_DIRENT_ADD, dir->ino, name, ino, dir->dir_seq + 1);

	if (rc == 0) {
		dir->dir_seq++;
		dir->size++;
	}
	return rc;
}

static int dirent_del(struct sqlite_conn *c, struct sqlite_inode *dir, const char *name)
{
	int rc = dirent_run(c, SQ_DIRENT_DEL, dir->ino, name, 0, 0);

	if (rc == 0)
		dir->size--;
	return rc;
}

static void dir_touch(struct sqlite_inode *dir)
{
	sqlite_now(&dir->mtime);
	dir->ctime = dir->mtime;
}

static int dir_log(struct sqlite_bk *s, struct sqlite_conn *c, enum sq_change_kind kind,
		   uint64_t ino, uint64_t parent, const char *name)
{
	const struct sqlite_change ch = {
		.kind = kind, .ino = ino, .parent = parent, .name = name
	};

	return sqlite_change_add(s, c, &ch);
}

int sqlite_lookup(struct bk *b, uint64_t parent, const char *name, struct bk_attr *out)
{
	struct sqlite_bk *s = sqlite_of(b);
	struct sqlite_inode dir, in;
	struct sqlite_conn *c;
	sqlite3_stmt *st;
	int rc = bk_name_check(name);

	if (rc == 0)
		rc = sqlite_read_begin(s, &c);
	if (rc < 0)
		return rc;
	rc = dir_get(c, parent, &dir);
	if (rc == 0)
		rc = dir_stmt(c, SQ_LOOKUP, parent, name, &st);
	if (rc == 0) {
		rc = sqlite_step(c, st, "lookup");
		if (rc == SQLITE_ROW)
			sqlite_inode_row(st, 0, &in);
		sqlite3_reset(st);
		rc = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : rc;
	}
	sqlite_read_end(s, c);
	if (rc == 0)
		sqlite_inode_fill(&in, out);
	return rc;
}

/* Creates in (mode, owner, rdev and size set by the caller) under name in parent. */
static int dir_create(struct sqlite_bk *s, struct sqlite_conn *c, uint64_t parent, const char *name,
		      const char *target, struct sqlite_inode *in)
{
	struct sqlite_inode dir;
	uint64_t existing;
	int rc = dir_get(c, parent, &dir);

	if (rc == 0)
		rc = dirent_get(c, parent, name, &existing) == -ENOENT ? 0 : -EEXIST;
	if (rc < 0)
		return rc;
	sqlite_now(&in->ctime);
	in->atime = in->mtime = in->ctime;
	in->nlink = S_ISDIR(in->mode) ? 2 : 1;
	in->parent = S_ISDIR(in->mode) ? parent : 0;
	rc = sqlite_inode_new(c, in, target);
	if (rc == 0)
		rc = dirent_add(c, &dir, name, in->ino);
	if (rc < 0)
		return rc;
	dir.nlink += S_ISDIR(in->mode);
	dir_touch(&dir);
	rc = sqlite_inode_put(c, &dir);
	return rc == 0 ? dir_log(s, c, SQ_CH_NAME_ADD, in->ino, parent, name) : rc;
}

/* mknod and symlink: n (and target for a symlink) becomes name in parent. */
static int dir_make(struct sqlite_bk *s, uint64_t parent, const char *name,
		    const struct sqlite_inode *proto, const char *target, struct bk_attr *out)
{
	struct sqlite_inode in = *proto;
	struct sqlite_conn *c;
	int rc = sqlite_write_begin(s, &c);

	if (rc < 0)
		return rc;
	rc = dir_create(s, c, parent, name, target, &in);
	rc = sqlite_write_end(s, c, rc);
	if (rc == 0)
		sqlite_inode_fill(&in, out);
	return rc;
}

int sqlite_mknod(struct bk *b, uint64_t parent, const char *name, const struct bk_new *n,
		 struct bk_attr *out)
{
	const struct sqlite_inode in = {
		.mode = n->mode, .uid = n->uid, .gid = n->gid, .rdev = n->rdev
	};
	int rc = bk_name_check(name);

	if (rc == 0)
		rc = bk_mknod_type_check(n->mode);
	return rc < 0 ? rc : dir_make(sqlite_of(b), parent, name, &in, NULL, out);
}

int sqlite_symlink(struct bk *b, uint64_t parent, const char *name, const char *target,
		   const struct bk_new *n, struct bk_attr *out)
{
	size_t len = strnlen(target, SQ_SYMLINK_MAX + 1);
	const struct sqlite_inode in = {
		.mode = S_IFLNK | 0777, .uid = n->uid, .gid = n->gid, .size = len
	};
	int rc = bk_name_check(name);

	if (rc == 0 && len == 0)
		rc = -ENOENT;
	if (rc == 0 && len > SQ_SYMLINK_MAX)
		rc = -ENAMETOOLONG;
	return rc < 0 ? rc : dir_make(sqlite_of(b), parent, name, &in, target, out);
}

ssize_t sqlite_readlink(struct bk *b, uint64_t ino, char *buf, size_t size)
{
	struct sqlite_bk *s = sqlite_of(b);
	struct sqlite_inode in;
	struct sqlite_conn *c;
	sqlite3_stmt *st;
	ssize_t rc = sqlite_read_begin(s, &c);

	if (rc < 0)
		return rc;
	rc = sqlite_inode_get(c, ino, &in);
	if (rc == 0 && !S_ISLNK(in.mode))
		rc = -EINVAL;
	if (rc == 0)
		rc = sqlite_stmt(c, SQ_INODE_TARGET, &st);
	if (rc == 0) {
		sqlite3_bind_int64(st, 1, (int64_t)ino);
		rc = sqlite_step(c, st, "read symlink");
		if (rc == SQLITE_ROW) {
			const char *target = sqlite3_column_blob(st, 0);
			size_t len = (size_t)sqlite3_column_bytes(st, 0);

			memcpy(buf, target, size < len ? size : len);
			rc = (ssize_t)len;
		}
		sqlite3_reset(st);
	}
	sqlite_read_end(s, c);
	return rc == SQLITE_DONE ? -EIO : rc;
}

static int dir_link_locked(struct sqlite_bk *s, struct sqlite_conn *c, uint64_t ino,
			   uint64_t newparent, const char *newname, struct sqlite_inode *in)
{
	struct sqlite_inode dir;
	uint64_t existing;
	int rc = sqlite_inode_get(c, ino, in);

	if (rc == 0 && S_ISDIR(in->mode))
		rc = -EPERM;
	else if (rc == 0 && in->nlink >= SQ_LINK_MAX)
		rc = -EMLINK;
	if (rc == 0)
		rc = dir_get(c, newparent, &dir);
	if (rc == 0)
		rc = dirent_get(c, newparent, newname, &existing) == -ENOENT ? 0 : -EEXIST;
	if (rc == 0)
		rc = dirent_add(c, &dir, newname, ino);
	if (rc < 0)
		return rc;
	in->nlink++;
	sqlite_now(&in->ctime);
	dir_touch(&dir);
	rc = sqlite_inode_put(c, in);
	if (rc == 0)
		rc = sqlite_inode_put(c, &dir);
	return rc == 0 ? dir_log(s, c, SQ_CH_NAME_ADD, ino, newparent, newname) : rc;
}

int sqlite_link(struct bk *b, uint64_t ino, uint64_t newparent, const char *newname,
		struct bk_attr *out)
{
	struct sqlite_bk *s = sqlite_of(b);
	struct sqlite_inode in;
	struct sqlite_conn *c;
	int rc = bk_name_check(newname);

	if (rc == 0)
		rc = sqlite_write_begin(s, &c);
	if (rc < 0)
		return rc;
	rc = dir_link_locked(s, c, ino, newparent, newname, &in);
	rc = sqlite_write_end(s, c, rc);
	if (rc == 0)
		sqlite_inode_fill(&in, out);
	return rc;
}

static int dir_tmpfile_locked(struct sqlite_bk *s, struct sqlite_conn *c, uint64_t parent,
			      struct sqlite_inode *in)
{
	struct sqlite_inode dir;
	int rc = dir_get(c, parent, &dir);

	if (rc < 0)
		return rc;
	sqlite_now(&in->ctime);
	in->atime = in->mtime = in->ctime;
	rc = sqlite_inode_new(c, in, NULL);
	return rc == 0 ? sqlite_orphan_add(s, c, in->ino) : rc;
}

int sqlite_tmpfile(struct bk *b, uint64_t parent, const struct bk_new *n, struct bk_attr *out)
{
	struct sqlite_bk *s = sqlite_of(b);
	struct sqlite_inode in = { .mode = n->mode, .uid = n->uid, .gid = n->gid };
	struct sqlite_conn *c;
	int rc = S_ISREG(n->mode) ? sqlite_write_begin(s, &c) : -EINVAL;

	if (rc < 0)
		return rc;
	rc = dir_tmpfile_locked(s, c, parent, &in);
	rc = sqlite_write_end(s, c, rc);
	if (rc == 0)
		sqlite_inode_fill(&in, out);
	return rc;
}

/* in loses a name it had in dir (in memory); a directory has only one, and takes its
 * ".." link in dir along. An inode left without names becomes this mount's orphan. */
static int dir_drop_link(struct sqlite_bk *s, struct sqlite_conn *c, struct sqlite_inode *dir,
			 struct sqlite_inode *in)
{
	if (S_ISDIR(in->mode)) {
		in->nlink = 0;
		in->parent = 0;
		dir->nlink--;
	} else {
		in->nlink--;
	}
	sqlite_now(&in->ctime);
	return in->nlink == 0 ? sqlite_orphan_add(s, c, in->ino) : 0;
}

/* unlink and rmdir: removes name from parent, a directory for rmdir, else not one. */
static int dir_unname(struct sqlite_bk *s, struct sqlite_conn *c, uint64_t parent, const char *name,
		      bool is_rmdir)
{
	struct sqlite_inode dir, in;
	uint64_t ino;
	int rc = dir_get(c, parent, &dir);

	if (rc == 0)
		rc = dirent_get(c, parent, name, &ino);
	if (rc == 0)
		rc = sqlite_inode_get(c, ino, &in);
	if (rc == 0 && !is_rmdir && S_ISDIR(in.mode))
		rc = -EISDIR;
	if (rc == 0 && is_rmdir && !S_ISDIR(in.mode))
		rc = -ENOTDIR;
	if (rc == 0 && is_rmdir && in.size != 0)
		rc = -ENOTEMPTY;
	if (rc == 0)
		rc = dirent_del(c, &dir, name);
	if (rc == 0)
		rc = dir_drop_link(s, c, &dir, &in);
	if (rc < 0)
		return rc;
	dir_touch(&dir);
	rc = sqlite_inode_put(c, &in);
	if (rc == 0)
		rc = sqlite_inode_put(c, &dir);
	return rc == 0 ? dir_log(s, c, SQ_CH_NAME_DEL, ino, parent, name) : rc;
}

static int dir_remove(struct bk *b, uint64_t parent, const char *name, bool is_rmdir)
{
	struct sqlite_bk *s = sqlite_of(b);
	struct sqlite_conn *c;
	int rc = bk_name_check(name);

	if (rc == 0)
		rc = sqlite_write_begin(s, &c);
	if (rc < 0)
		return rc;
	rc = dir_unname(s, c, parent, name, is_rmdir);
	return sqlite_write_end(s, c, rc);
}

int sqlite_unlink(struct bk *b, uint64_t parent, const char *name)
{
	return dir_remove(b, parent, name, false);
}

int sqlite_rmdir(struct bk *b, uint64_t parent, const char *name)
{
	return dir_remove(b, parent, name, true);
}

/* Whether directory a is dir or one of its ancestors. */
static int dir_is_ancestor(struct sqlite_conn *c, uint64_t a, const struct sqlite_inode *dir)
{
	struct sqlite_inode in = *dir;
	int rc = 0;

	while (rc == 0 && in.ino != a && in.ino != BK_ROOT_INO && in.parent != 0)
		rc = sqlite_inode_get(c, in.parent, &in);
	return rc < 0 ? rc : in.ino == a;
}

/* The inode newname refers to in newparent, if any, into r->dst. */
static int rename_find_dst(struct sqlite_conn *c, uint64_t newparent, struct sq_rename *r)
{
	uint64_t dst;
	int rc = dirent_get(c, newparent, r->newname, &dst);

	r->dst = NULL;
	if (rc < 0)
		return rc == -ENOENT ? 0 : rc;
	r->dst = &r->dst_buf;
	return sqlite_inode_get(c, dst, r->dst);
}

static int rename_resolve(struct sqlite_conn *c, uint64_t parent, uint64_t newparent,
			  struct sq_rename *r)
{
	uint64_t src;
	int rc = dir_get(c, parent, &r->dir_buf);

	r->dir = &r->dir_buf;
	r->newdir = newparent == parent ? r->dir : &r->newdir_buf;
	if (rc == 0)
		rc = dirent_get(c, parent, r->name, &src);
	if (rc == 0)
		rc = sqlite_inode_get(c, src, &r->src);
	if (rc == 0 && r->newdir != r->dir)
		rc = dir_get(c, newparent, r->newdir);
	if (rc == 0)
		rc = rename_find_dst(c, newparent, r);
	if (rc == 0 && r->dst && (r->flags & BK_RENAME_NOREPLACE))
		rc = -EEXIST;
	if (rc == 0 && !r->dst && (r->flags & BK_RENAME_EXCHANGE))
		rc = -ENOENT;
	return rc;
}

static int rename_check(struct sqlite_conn *c, const struct sq_rename *r)
{
	const struct sqlite_inode *src = &r->src, *dst = r->dst;
	int rc = S_ISDIR(src->mode) ? dir_is_ancestor(c, src->ino, r->newdir) : 0;

	if (rc != 0)
		return rc < 0 ? rc : -EINVAL;
	if (!dst)
		return 0;
	if (r->flags & BK_RENAME_EXCHANGE) {
		rc = S_ISDIR(dst->mode) ? dir_is_ancestor(c, dst->ino, r->dir) : 0;
		return rc != 0 ? (rc < 0 ? rc : -EINVAL) : 0;
	}
	if (S_ISDIR(src->mode) && !S_ISDIR(dst->mode))
		return -ENOTDIR;
	if (!S_ISDIR(src->mode) && S_ISDIR(dst->mode))
		return -EISDIR;
	return S_ISDIR(dst->mode) && dst->size != 0 ? -ENOTEMPTY : 0;
}

/* A directory moving from one parent to another takes its ".." link along. */
static void rename_reparent(struct sqlite_inode *in, struct sqlite_inode *from,
			    struct sqlite_inode *to)
{
	if (!S_ISDIR(in->mode) || from == to)
		return;
	from->nlink--;
	to->nlink++;
	in->parent = to->ino;
}

static int rename_exchange(struct sqlite_conn *c, struct sq_rename *r)
{
	int rc = dirent_run(c, SQ_DIRENT_SET_INO, r->dir->ino, r->name, r->dst->ino, 0);

	if (rc == 0)
		rc = dirent_run(c, SQ_DIRENT_SET_INO, r->newdir->ino, r->newname, r->src.ino, 0);
	rename_reparent(&r->src, r->dir, r->newdir);
	rename_reparent(r->dst, r->newdir, r->dir);
	return rc;
}

static int rename_move(struct sqlite_bk *s, struct sqlite_conn *c, struct sq_rename *r)
{
	int rc;

	if (r->dst) {
		rc = dir_drop_link(s, c, r->newdir, r->dst);
		if (rc == 0)
			rc = dirent_run(c, SQ_DIRENT_SET_INO, r->newdir->ino, r->newname,
					r->src.ino, 0);
	} else {
		rc = dirent_add(c, r->newdir, r->newname, r->src.ino);
	}
	if (rc == 0)
		rc = dirent_del(c, r->dir, r->name);
	rename_reparent(&r->src, r->dir, r->newdir);
	return rc;
}

/* Logs the rename: an exchange moves both names. */
static int rename_log(struct sqlite_bk *s, struct sqlite_conn *c, const struct sq_rename *r)
{
	struct sqlite_change ch = { .kind = SQ_CH_RENAME,
				    .ino = r->src.ino,
				    .parent = r->dir->ino,
				    .name = r->name,
				    .new_parent = r->newdir->ino,
				    .new_name = r->newname };
	int rc = sqlite_change_add(s, c, &ch);

	if (rc < 0 || !(r->flags & BK_RENAME_EXCHANGE))
		return rc;
	ch = (struct sqlite_change){ .kind = SQ_CH_RENAME,
				     .ino = r->dst->ino,
				     .parent = r->newdir->ino,
				     .name = r->newname,
				     .new_parent = r->dir->ino,
				     .new_name = r->name };
	return sqlite_change_add(s, c, &ch);
}

/* Writes back every inode the rename changed, with new times, and logs it. */
static int rename_finish(struct sqlite_bk *s, struct sqlite_conn *c, struct sq_rename *r)
{
	int rc;

	dir_touch(r->dir);
	dir_touch(r->newdir);
	r->src.ctime = r->dir->ctime;
	if (r->dst)
		r->dst->ctime = r->dir->ctime;
	rc = sqlite_inode_put(c, r->dir);
	if (rc == 0 && r->newdir != r->dir)
		rc = sqlite_inode_put(c, r->newdir);
	if (rc == 0)
		rc = sqlite_inode_put(c, &r->src);
	if (rc == 0 && r->dst)
		rc = sqlite_inode_put(c, r->dst);
	return rc == 0 ? rename_log(s, c, r) : rc;
}

static int rename_locked(struct sqlite_bk *s, struct sqlite_conn *c, uint64_t parent,
			 uint64_t newparent, struct sq_rename *r)
{
	int rc = rename_resolve(c, parent, newparent, r);

	if (rc == 0 && r->dst && r->dst->ino == r->src.ino)
		return 0;
	if (rc == 0)
		rc = rename_check(c, r);
	if (rc == 0 && (r->flags & BK_RENAME_EXCHANGE))
		rc = rename_exchange(c, r);
	else if (rc == 0)
		rc = rename_move(s, c, r);
	return rc == 0 ? rename_finish(s, c, r) : rc;
}

int sqlite_rename(struct bk *b, uint64_t parent, const char *name, uint64_t newparent,
		  const char *newname, unsigned flags)
{
	struct sqlite_bk *s = sqlite_of(b);
	struct sq_rename r = { .name = name, .newname = newname, .flags = flags };
	const unsigned both = BK_RENAME_NOREPLACE | BK_RENAME_EXCHANGE;
	struct sqlite_conn *c;
	int rc = bk_name_check(name);

	if (rc == 0)
		rc = bk_name_check(newname);
	if (rc == 0 && ((flags & ~both) || flags == both))
		rc = -EINVAL;
	if (rc == 0)
		rc = sqlite_write_begin(s, &c);
	if (rc < 0)
		return rc;
	rc = rename_locked(s, c, parent, newparent, &r);
	return sqlite_write_end(s, c, rc);
}

/* Copies up to max entries of dir after cookie into batch; *n_out gets how many. */
static int readdir_batch(struct bk *b, uint64_t ino, uint64_t cookie, struct bk_dirent *batch,
			 size_t max, size_t *n_out)
{
	struct sqlite_bk *s = sqlite_of(b);
	struct sqlite_inode dir, in;
	struct sqlite_conn *c;
	sqlite3_stmt *st;
	int rc = sqlite_read_begin(s, &c);

	*n_out = 0;
	if (rc < 0)
		return rc;
	rc = dir_get(c, ino, &dir);
	if (rc == 0)
		rc = sqlite_stmt(c, SQ_DIRENT_LIST, &st);
	if (rc == 0) {
		sqlite3_bind_int64(st, 1, (int64_t)ino);
		sqlite3_bind_int64(st, 2, (int64_t)cookie);
		sqlite3_bind_int64(st, 3, (int64_t)max);
		while ((rc = sqlite_step(c, st, "list directory")) == SQLITE_ROW) {
			struct bk_dirent *e = &batch[(*n_out)++];
			const char *name = sqlite3_column_blob(st, 0);
			size_t len = (size_t)sqlite3_column_bytes(st, 0);

			len = len > BK_NAME_MAX ? BK_NAME_MAX : len;
			memcpy(e->name, name, len);
			e->name[len] = '\0';
			e->seq = (uint64_t)sqlite3_column_int64(st, 1);
			sqlite_inode_row(st, 2, &in);
			sqlite_inode_fill(&in, &e->attr);
		}
		sqlite3_reset(st);
	}
	sqlite_read_end(s, c);
	return rc < 0 ? rc : 0;
}

/* Emits with no connection held, so emit may call back into the backend. */
int sqlite_readdir(struct bk *b, uint64_t dir, uint64_t cookie, bk_emit_fn emit, void *ctx)
{
	return bk_readdir_batched(b, dir, cookie, SQ_READDIR_BATCH, readdir_batch, emit, ctx);
}
