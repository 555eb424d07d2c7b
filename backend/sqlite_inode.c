/* Inode rows of the sqlite backend and the slots that read or change one inode:
 * statfs, getattr, setattr, forget and the extended attributes. Names are sqlite_dir.c's,
 * file data sqlite_file.c's and sqlite_chunk.c's. */
#include "sqlite.h"
#include "common.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>

#define SQ_FILES_MAX	  (UINT64_C(1) << 32) /* inodes, as statfs reports them */
#define SQ_XATTR_NAME_MAX 255
#define SQ_DIRENT_BOGO	  20 /* bytes a directory entry adds to st_size, as on tmpfs */

void sqlite_inode_row(sqlite3_stmt *st, int col, struct sqlite_inode *out)
{
	int64_t v[17];

	for (int i = 0; i < 17; i++)
		v[i] = sqlite3_column_int64(st, col + i);
	*out = (struct sqlite_inode){
		.ino = (uint64_t)v[0],
		.gen = (uint64_t)v[1],
		.mode = (mode_t)v[2],
		.nlink = (uint32_t)v[3],
		.uid = (uid_t)v[4],
		.gid = (gid_t)v[5],
		.rdev = (dev_t)v[6],
		.size = (uint64_t)v[7],
		.blocks = (uint64_t)v[8],
		.atime = { v[9], v[10] },
		.mtime = { v[11], v[12] },
		.ctime = { v[13], v[14] },
		.parent = (uint64_t)v[15],
		.dir_seq = (uint64_t)v[16],
	};
}

/* Binds the columns of in to ?1..?17, in the order of sqlite_inode_row(). */
static void inode_bind(sqlite3_stmt *st, const struct sqlite_inode *in)
{
	const int64_t v[17] = {
		(int64_t)in->ino,
		(int64_t)in->gen,
		in->mode,
		in->nlink,
		in->uid,
		in->gid,
		(int64_t)in->rdev,
		(int64_t)in->size,
		(int64_t)in->blocks,
		in->atime.tv_sec,
		in->atime.tv_nsec,
		in->mtime.tv_sec,
		in->mtime.tv_nsec,
		in->ctime.tv_sec,
		in->ctime.tv_nsec,
		(int64_t)in->parent,
		(int64_t)in->dir_seq,
	};

	for (int i = 0; i < 17; i++)
		sqlite3_bind_int64(st, i + 1, v[i]);
}

int sqlite_inode_get(struct sqlite_conn *c, uint64_t ino, struct sqlite_inode *out)
{
	sqlite3_stmt *st;
	int rc = sqlite_stmt(c, SQ_INODE_GET, &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	rc = sqlite_step(c, st, "read inode");
	if (rc == SQLITE_ROW)
		sqlite_inode_row(st, 0, out);
	sqlite3_reset(st);
	if (rc < 0)
		return rc;
	return rc == SQLITE_ROW ? 0 : -ENOENT;
}

int sqlite_inode_put(struct sqlite_conn *c, const struct sqlite_inode *in)
{
	sqlite3_stmt *st;
	int rc = sqlite_stmt(c, SQ_INODE_PUT, &st);

	if (rc < 0)
		return rc;
	inode_bind(st, in);
	rc = sqlite_step(c, st, "write inode");
	sqlite3_reset(st);
	return rc < 0 ? rc : 0;
}

int sqlite_inode_new(struct sqlite_conn *c, struct sqlite_inode *in, const char *target)
{
	sqlite3_stmt *st;
	int rc = sqlite_stmt(c, SQ_INODE_NEW, &st);

	if (rc < 0)
		return rc;
	inode_bind(st, in);
	if (target)
		sqlite3_bind_blob(st, 18, target, (int)strlen(target), SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 18);
	rc = sqlite_step(c, st, "create inode");
	sqlite3_reset(st);
	if (rc < 0)
		return rc;
	in->ino = (uint64_t)sqlite3_last_insert_rowid(c->db);
	return 0;
}

int sqlite_inode_delete(struct sqlite_conn *c, uint64_t ino)
{
	int rc = sqlite_chunk_drop(c, ino);

	if (rc == 0)
		rc = sqlite_exec(c, SQ_XATTR_DROP, SQ_ARGS((int64_t)ino));
	if (rc == 0)
		rc = sqlite_exec(c, SQ_INODE_DEL, SQ_ARGS((int64_t)ino));
	return rc;
}

void sqlite_inode_fill(const struct sqlite_inode *in, struct bk_attr *out)
{
	memset(out, 0, sizeof(*out));
	out->ino = in->ino;
	out->gen = in->gen;
	out->mode = in->mode;
	out->nlink = in->nlink;
	out->uid = in->uid;
	out->gid = in->gid;
	out->rdev = in->rdev;
	out->size = S_ISDIR(in->mode) ? SQ_DIRENT_BOGO * (in->size + 2) : in->size;
	out->blocks = in->blocks * (SQ_PAGE_SIZE / 512);
	out->atime = in->atime;
	out->mtime = in->mtime;
	out->ctime = in->ctime;
}

/* Blocks are those of the filesystem that holds the database: there is no limit of our
 * own. Inodes: a nominal 2^32, less the numbers handed out. */
int sqlite_statfs(struct bk *b, struct statvfs *out)
{
	struct sqlite_bk *s = sqlite_of(b);
	struct sqlite_conn *c;
	struct statvfs host;
	int64_t last = 0;
	int rc = statvfs(s->dir, &host) < 0 ? -errno : 0;

	if (rc == 0)
		rc = sqlite_read_begin(s, &c);
	if (rc < 0)
		return rc;
	rc = sqlite_query_int(c, SQ_INODE_LAST, NULL, 0, &last);
	sqlite_read_end(s, c);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	memset(out, 0, sizeof(*out));
	out->f_bsize = SQ_PAGE_SIZE;
	out->f_frsize = SQ_PAGE_SIZE;
	out->f_blocks = host.f_blocks * host.f_frsize / SQ_PAGE_SIZE;
	out->f_bfree = host.f_bfree * host.f_frsize / SQ_PAGE_SIZE;
	out->f_bavail = host.f_bavail * host.f_frsize / SQ_PAGE_SIZE;
	out->f_files = SQ_FILES_MAX;
	out->f_ffree = SQ_FILES_MAX - (uint64_t)last;
	out->f_favail = out->f_ffree;
	out->f_namemax = BK_NAME_MAX;
	return 0;
}

int sqlite_getattr(struct bk *b, uint64_t ino, struct bk_attr *out)
{
	struct sqlite_bk *s = sqlite_of(b);
	struct sqlite_inode in;
	struct sqlite_conn *c;
	int rc = sqlite_read_begin(s, &c);

	if (rc < 0)
		return rc;
	rc = sqlite_inode_get(c, ino, &in);
	sqlite_read_end(s, c);
	if (rc == 0)
		sqlite_inode_fill(&in, out);
	return rc;
}

/* Applies s to in; returns whether the size changed. */
static int setattr_apply(struct sqlite_bk *sb, struct sqlite_conn *c, struct sqlite_inode *in,
			 const struct bk_setattr *s)
{
	uint64_t old = in->size;
	struct timespec now;
	int rc = 0;

	sqlite_now(&now);
	if (s->valid & BK_SET_SIZE)
		rc = sqlite_file_truncate(sb, c, in, s->size);
	if (rc < 0)
		return rc;
	bk_setattr_apply(s, &now, in->size != old,
			 &(struct bk_inode_fields){ &in->mode, &in->uid, &in->gid, &in->atime,
						    &in->mtime, &in->ctime });
	return in->size != old;
}

static int setattr_log(struct sqlite_bk *s, struct sqlite_conn *c, const struct sqlite_inode *in,
		       bool is_resized)
{
	struct sqlite_change ch = { .kind = SQ_CH_ATTR, .ino = in->ino, .size = in->size };
	int rc = sqlite_change_add(s, c, &ch);

	ch.kind = SQ_CH_SIZE;
	return rc == 0 && is_resized ? sqlite_change_add(s, c, &ch) : rc;
}

int sqlite_setattr(struct bk *b, uint64_t ino, const struct bk_setattr *set, struct bk_attr *out)
{
	struct sqlite_bk *s = sqlite_of(b);
	struct sqlite_inode in;
	struct sqlite_conn *c;
	int resized, rc = sqlite_write_begin(s, &c);

	if (rc < 0)
		return rc;
	rc = sqlite_inode_get(c, ino, &in);
	if (rc == 0)
		rc = bk_setattr_check(in.mode, set, SQ_FILE_MAX);
	resized = rc == 0 ? setattr_apply(s, c, &in, set) : rc;
	rc = resized < 0 ? resized : sqlite_inode_put(c, &in);
	if (rc == 0)
		rc = setattr_log(s, c, &in, resized > 0);
	rc = sqlite_write_end(s, c, rc);
	if (rc == 0)
		sqlite_inode_fill(&in, out);
	return rc;
}

void sqlite_forget(struct bk *b, uint64_t ino)
{
	struct sqlite_bk *s = sqlite_of(b);
	struct sqlite_conn *c;
	int rc = sqlite_write_begin(s, &c);

	if (rc == 0)
		sqlite_write_end(s, c, sqlite_orphan_forget(s, c, ino));
}

static int xattr_check_name(const char *name)
{
	size_t len = strnlen(name, SQ_XATTR_NAME_MAX + 1);

	return len == 0 || len > SQ_XATTR_NAME_MAX ? -ERANGE : 0;
}

/* Statement id with ?1 = ino and ?2 = name bound. */
static int xattr_stmt(struct sqlite_conn *c, enum sq_stmt id, uint64_t ino, const char *name,
		      sqlite3_stmt **out)
{
	int rc = sqlite_stmt(c, id, out);

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(*out, 1, (int64_t)ino);
	sqlite3_bind_blob(*out, 2, name, (int)strlen(name), SQLITE_STATIC);
	return 0;
}

/* Runs id on (ino, name): SQLITE_ROW, SQLITE_DONE or -errno. */
static int xattr_run(struct sqlite_conn *c, enum sq_stmt id, uint64_t ino, const char *name)
{
	sqlite3_stmt *st;
	int rc = xattr_stmt(c, id, ino, name, &st);

	if (rc < 0)
		return rc;
	rc = sqlite_step(c, st, sqlite_sql[id]);
	sqlite3_reset(st);
	return rc;
}

/* Whether ino has the xattr name: 1, 0, or -errno. */
static int xattr_exists(struct sqlite_conn *c, uint64_t ino, const char *name)
{
	int rc = xattr_run(c, SQ_XATTR_GET, ino, name);

	return rc < 0 ? rc : rc == SQLITE_ROW;
}

static int xattr_put(struct sqlite_conn *c, uint64_t ino, const char *name, const void *value,
		     size_t size)
{
	sqlite3_stmt *st;
	int rc = xattr_stmt(c, SQ_XATTR_PUT, ino, name, &st);

	if (rc < 0)
		return rc;
	if (size)
		sqlite3_bind_blob(st, 3, value, (int)size, SQLITE_STATIC);
	else
		sqlite3_bind_zeroblob(st, 3, 0);
	rc = sqlite_step(c, st, "write xattr");
	sqlite3_reset(st);
	return rc < 0 ? rc : 0;
}

/* After an xattr changed: a new ctime, logged. */
static int xattr_touch(struct sqlite_bk *s, struct sqlite_conn *c, struct sqlite_inode *in)
{
	const struct sqlite_change ch = { .kind = SQ_CH_ATTR, .ino = in->ino, .size = in->size };
	int rc;

	sqlite_now(&in->ctime);
	rc = sqlite_inode_put(c, in);
	return rc == 0 ? sqlite_change_add(s, c, &ch) : rc;
}

static int xattr_set_locked(struct sqlite_bk *s, struct sqlite_conn *c, uint64_t ino,
			    const char *name, const void *value, size_t size, int flags)
{
	struct sqlite_inode in;
	int rc = sqlite_inode_get(c, ino, &in);
	int has = rc == 0 ? xattr_exists(c, ino, name) : rc;

	if (has < 0)
		return has;
	if (has && (flags & XATTR_CREATE))
		return -EEXIST;
	if (!has && (flags & XATTR_REPLACE))
		return -ENODATA;
	rc = xattr_put(c, ino, name, value, size);
	return rc == 0 ? xattr_touch(s, c, &in) : rc;
}

int sqlite_setxattr(struct bk *b, uint64_t ino, const char *name, const void *value, size_t size,
		    int flags)
{
	struct sqlite_bk *s = sqlite_of(b);
	struct sqlite_conn *c;
	int rc = xattr_check_name(name);

	if (rc == 0 && size > BK_XATTR_SIZE_MAX)
		rc = -E2BIG;
	if (rc == 0 && (flags & ~(XATTR_CREATE | XATTR_REPLACE)))
		rc = -EINVAL;
	if (rc == 0)
		rc = sqlite_write_begin(s, &c);
	if (rc < 0)
		return rc;
	rc = xattr_set_locked(s, c, ino, name, value, size, flags);
	return sqlite_write_end(s, c, rc);
}

/* Caller checked that ino exists. The value's size, copied to buf if size allows. */
static ssize_t xattr_get_locked(struct sqlite_conn *c, uint64_t ino, const char *name, void *buf,
				size_t size)
{
	sqlite3_stmt *st;
	ssize_t rc = xattr_stmt(c, SQ_XATTR_GET, ino, name, &st);
	size_t len;

	if (rc < 0)
		return rc;
	rc = sqlite_step(c, st, "read xattr");
	if (rc == SQLITE_ROW) {
		const void *value = sqlite3_column_blob(st, 0);

		len = (size_t)sqlite3_column_bytes(st, 0);
		rc = size != 0 && size < len ? -ERANGE : (ssize_t)len;
		if (rc > 0 && size != 0)
			memcpy(buf, value, len);
	} else if (rc == SQLITE_DONE) {
		rc = -ENODATA;
	}
	sqlite3_reset(st);
	return rc;
}

ssize_t sqlite_getxattr(struct bk *b, uint64_t ino, const char *name, void *buf, size_t size)
{
	struct sqlite_bk *s = sqlite_of(b);
	struct sqlite_inode in;
	struct sqlite_conn *c;
	ssize_t rc = xattr_check_name(name);

	if (rc == 0)
		rc = sqlite_read_begin(s, &c);
	if (rc < 0)
		return rc;
	rc = sqlite_inode_get(c, ino, &in);
	if (rc == 0)
		rc = xattr_get_locked(c, ino, name, buf, size);
	sqlite_read_end(s, c);
	return rc;
}

/* Caller checked that ino exists. Lists the names into buf (NULL: only counts). */
static ssize_t xattr_list_locked(struct sqlite_conn *c, uint64_t ino, char *buf, size_t size)
{
	sqlite3_stmt *st;
	ssize_t rc = sqlite_stmt(c, SQ_XATTR_LIST, &st);
	size_t total = 0;

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	while ((rc = sqlite_step(c, st, "list xattrs")) == SQLITE_ROW) {
		const char *name = sqlite3_column_blob(st, 0);
		size_t len = (size_t)sqlite3_column_bytes(st, 0);

		if (buf && total + len + 1 <= size) {
			memcpy(buf + total, name, len);
			buf[total + len] = '\0';
		}
		total += len + 1;
	}
	sqlite3_reset(st);
	return rc < 0 ? rc : (ssize_t)total;
}

ssize_t sqlite_listxattr(struct bk *b, uint64_t ino, char *buf, size_t size)
{
	struct sqlite_bk *s = sqlite_of(b);
	struct sqlite_inode in;
	struct sqlite_conn *c;
	ssize_t rc = sqlite_read_begin(s, &c);

	if (rc < 0)
		return rc;
	rc = sqlite_inode_get(c, ino, &in);
	if (rc == 0)
		rc = xattr_list_locked(c, ino, size ? buf : NULL, size);
	sqlite_read_end(s, c);
	return rc > 0 && size != 0 && (size_t)rc > size ? -ERANGE : rc;
}

static int xattr_remove_locked(struct sqlite_bk *s, struct sqlite_conn *c, uint64_t ino,
			       const char *name)
{
	struct sqlite_inode in;
	int rc = sqlite_inode_get(c, ino, &in);
	int has = rc == 0 ? xattr_exists(c, ino, name) : rc;

	if (has <= 0)
		return has < 0 ? has : -ENODATA;
	rc = xattr_run(c, SQ_XATTR_DEL, ino, name);
	return rc < 0 ? rc : xattr_touch(s, c, &in);
}

int sqlite_removexattr(struct bk *b, uint64_t ino, const char *name)
{
	struct sqlite_bk *s = sqlite_of(b);
	struct sqlite_conn *c;
	int rc = xattr_check_name(name);

	if (rc == 0)
		rc = sqlite_write_begin(s, &c);
	if (rc < 0)
		return rc;
	rc = xattr_remove_locked(s, c, ino, name);
	return sqlite_write_end(s, c, rc);
}
