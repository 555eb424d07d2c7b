/* The sqlite backend's schema: the tables, their creation and the checks an existing
 * database must pass, and the text of every statement the backend prepares, kept here so
 * that the statements are read next to the tables they depend on.
 *
 * Design notes (schema version 1, PRAGMA application_id 0x53424653 "SBFS"):
 * - inodes: INTEGER PRIMARY KEY AUTOINCREMENT, so a number is never handed out twice, even
 *   after the row with the highest one is deleted (a plain rowid would reuse it), and
 *   inode numbers can serve as FUSE node IDs across remounts. gen is kept for interface
 *   version 2 and is 0: numbers are never reused. Times are two columns (seconds,
 *   nanoseconds) so that every timespec the kernel can send is representable. size is the
 *   byte size of a file, the target length of a symlink, and the number of entries of a
 *   directory (st_size is derived from it, as on tmpfs). blocks counts the 4 KiB pages of a
 *   file that are present. parent (directories only) makes the rename-into-subtree check
 *   a walk up the tree without an index on dirents.ino; dir_seq is the last readdir
 *   position handed out in a directory, so positions only grow.
 * - dirents: WITHOUT ROWID, keyed (parent, name), so a lookup is one B-tree search and a
 *   duplicate name is a UNIQUE violation (-EEXIST). name is a BLOB: names are bytes, not
 *   text. seq orders entries for readdir, through the index dirents_order, which also
 *   holds ino so that listing does not visit the table.
 * - xattrs: WITHOUT ROWID, keyed (ino, name).
 * - chunks: file data in fixed 64 KiB chunks, a WITHOUT ROWID map keyed (ino, idx) of
 *   small rows: a missing row is a hole, pages has one bit per 4 KiB page that is present
 *   (written or allocated), blob names the row of blobs that holds the bytes (0: none, an
 *   allocated chunk of zeros). Pages make blocks, SEEK_DATA/SEEK_HOLE and punching work as
 *   in the mem backend, and fallocate store nothing but bits.
 * - blobs: the bytes of chunks, from the chunk's start; a blob shorter than the chunk
 *   reads as zeros past its end, so a small file costs its length. A rowid table, read
 *   and written with incremental blob I/O (sqlite3_blob_read/write): a partial write
 *   changes only the database pages it touches, a read copies straight into the caller's
 *   buffer, and new chunks append at the end of the table's B-tree. With the bytes in
 *   the WITHOUT ROWID map instead, every insert rebalanced its neighbours (about 9
 *   chunk-sized copies per insert); 4 KiB appends went from 9 to 56 MiB/s with this
 *   layout (and without savepoints per operation).
 * - page_size 65536: a 64 KiB chunk is one overflow page plus 8 KiB in a leaf. With
 *   4 KiB pages every 4 KiB was a WAL frame, a pread and a pwrite: sequential 1 MiB
 *   writes ran at 50-65 MiB/s. 16 and 32 KiB pages wrote slower (166-325 against
 *   321-406 MiB/s in the same runs) and read no faster; 256 KiB chunks wrote about as
 *   fast and read a quarter slower.
 * - changes: every mutation appends rows in the same transaction (what changed, by which
 *   mount); AUTOINCREMENT so seq only grows even when the log is trimmed to empty. It is
 *   trimmed up to the lowest position every live mount has seen (mounts.seen).
 * - mounts: one row per live mount (pid, host, start, heartbeat, seen), so that a mount
 *   can tell a dead one from a live one and reclaim what it left.
 * - orphans: (ino, mount) for an inode with no names left that a mount may still have
 *   open; it is freed when no mount holds it, and a dead mount's rows are reclaimed by the
 *   next mount to start.
 */
#include "sqlite.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define SQ_INODE_COLS                                                                       \
	"ino, gen, mode, nlink, uid, gid, rdev, size, blocks, atime_s, atime_ns, mtime_s, " \
	"mtime_ns, ctime_s, ctime_ns, parent, dir_seq"
#define SQ_INODE_COLS_I                                                                      \
	"i.ino, i.gen, i.mode, i.nlink, i.uid, i.gid, i.rdev, i.size, i.blocks, i.atime_s, " \
	"i.atime_ns, i.mtime_s, i.mtime_ns, i.ctime_s, i.ctime_ns, i.parent, i.dir_seq"

static const char schema_sql[] =
	"CREATE TABLE inodes ("
	" ino INTEGER PRIMARY KEY AUTOINCREMENT, gen INTEGER NOT NULL,"
	" mode INTEGER NOT NULL, nlink INTEGER NOT NULL, uid INTEGER NOT NULL,"
	" gid INTEGER NOT NULL, rdev INTEGER NOT NULL, size INTEGER NOT NULL,"
	" blocks INTEGER NOT NULL, atime_s INTEGER NOT NULL, atime_ns INTEGER NOT NULL,"
	" mtime_s INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_s INTEGER NOT NULL,"
	" ctime_ns INTEGER NOT NULL, parent INTEGER NOT NULL, dir_seq INTEGER NOT NULL,"
	" target BLOB);"
	"CREATE TABLE dirents (parent INTEGER NOT NULL, name BLOB NOT NULL,"
	" ino INTEGER NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (parent, name))"
	" WITHOUT ROWID;"
	"CREATE INDEX dirents_order ON dirents (parent, seq, ino);"
	"CREATE TABLE xattrs (ino INTEGER NOT NULL, name BLOB NOT NULL, value BLOB NOT NULL,"
	" PRIMARY KEY (ino, name)) WITHOUT ROWID;"
	"CREATE TABLE chunks (ino INTEGER NOT NULL, idx INTEGER NOT NULL,"
	" pages INTEGER NOT NULL, blob INTEGER NOT NULL, PRIMARY KEY (ino, idx)) WITHOUT ROWID;"
	"CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB NOT NULL);"
	"CREATE TABLE changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, mount INTEGER NOT NULL,"
	" kind INTEGER NOT NULL, ino INTEGER NOT NULL, off INTEGER, len INTEGER,"
	" size INTEGER, parent INTEGER, name BLOB, new_parent INTEGER, new_name BLOB);"
	"CREATE TABLE mounts (id INTEGER PRIMARY KEY AUTOINCREMENT, pid INTEGER NOT NULL,"
	" host TEXT NOT NULL, started INTEGER NOT NULL, heartbeat INTEGER NOT NULL,"
	" seen INTEGER NOT NULL);"
	"CREATE TABLE orphans (ino INTEGER NOT NULL, mount INTEGER NOT NULL,"
	" PRIMARY KEY (ino, mount)) WITHOUT ROWID;"
	"CREATE INDEX orphans_by_mount ON orphans (mount);";

static const char *const schema_tables[] = { "inodes", "dirents", "xattrs", "chunks",
					     "blobs",  "changes", "mounts", "orphans" };

const char *const sqlite_sql[SQ_NSTMT] = {
	[SQ_BEGIN] = "BEGIN",
	[SQ_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
	[SQ_COMMIT] = "COMMIT",
	[SQ_ROLLBACK] = "ROLLBACK",
	[SQ_PAGE_SIZE_GET] = "PRAGMA page_size",
	[SQ_INODE_GET] = "SELECT " SQ_INODE_COLS " FROM inodes WHERE ino = ?1",
	[SQ_INODE_NEW] = "INSERT INTO inodes (gen, mode, nlink, uid, gid, rdev, size, blocks,"
			 " atime_s, atime_ns, mtime_s, mtime_ns, ctime_s, ctime_ns, parent,"
			 " dir_seq, target) VALUES (?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
			 " ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
	[SQ_INODE_PUT] = "UPDATE inodes SET gen = ?2, mode = ?3, nlink = ?4, uid = ?5, gid = ?6,"
			 " rdev = ?7, size = ?8, blocks = ?9, atime_s = ?10, atime_ns = ?11,"
			 " mtime_s = ?12, mtime_ns = ?13, ctime_s = ?14, ctime_ns = ?15,"
			 " parent = ?16, dir_seq = ?17 WHERE ino = ?1",
	[SQ_INODE_DEL] = "DELETE FROM inodes WHERE ino = ?1",
	[SQ_INODE_TARGET] = "SELECT target FROM inodes WHERE ino = ?1",
	[SQ_INODE_LAST] = "SELECT seq FROM sqlite_sequence WHERE name = 'inodes'",
	[SQ_DIRENT_GET] = "SELECT ino, seq FROM dirents WHERE parent = ?1 AND name = ?2",
	[SQ_DIRENT_ADD] = "INSERT INTO dirents (parent, name, ino, seq) VALUES (?1, ?2, ?3, ?4)",
	[SQ_DIRENT_DEL] = "DELETE FROM dirents WHERE parent = ?1 AND name = ?2",
	[SQ_DIRENT_SET_INO] = "UPDATE dirents SET ino = ?3 WHERE parent = ?1 AND name = ?2",
	[SQ_DIRENT_LIST] = "SELECT d.name, d.seq, " SQ_INODE_COLS_I " FROM dirents d"
			   " JOIN inodes i ON i.ino = d.ino WHERE d.parent = ?1 AND d.seq > ?2"
			   " ORDER BY d.seq LIMIT ?3",
	[SQ_LOOKUP] = "SELECT " SQ_INODE_COLS_I " FROM dirents d JOIN inodes i ON i.ino = d.ino"
		      " WHERE d.parent = ?1 AND d.name = ?2",
	[SQ_XATTR_GET] = "SELECT value FROM xattrs WHERE ino = ?1 AND name = ?2",
	[SQ_XATTR_PUT] = "INSERT OR REPLACE INTO xattrs (ino, name, value) VALUES (?1, ?2, ?3)",
	[SQ_XATTR_DEL] = "DELETE FROM xattrs WHERE ino = ?1 AND name = ?2",
	[SQ_XATTR_LIST] = "SELECT name FROM xattrs WHERE ino = ?1",
	[SQ_XATTR_DROP] = "DELETE FROM xattrs WHERE ino = ?1",
	[SQ_CHUNK_READ] = "SELECT idx, blob FROM chunks WHERE ino = ?1 AND idx BETWEEN ?2 AND ?3",
	[SQ_CHUNK_GET] = "SELECT pages, blob FROM chunks WHERE ino = ?1 AND idx = ?2",
	[SQ_CHUNK_ADD] = "INSERT INTO chunks (ino, idx, pages, blob) VALUES (?1, ?2, ?3, ?4)",
	[SQ_CHUNK_SET] = "UPDATE chunks SET pages = ?3, blob = ?4 WHERE ino = ?1 AND idx = ?2",
	[SQ_CHUNK_PAGES] = "SELECT idx, pages FROM chunks WHERE ino = ?1"
			   " AND idx BETWEEN ?2 AND ?3",
	[SQ_CHUNK_DEL_RANGE] = "DELETE FROM chunks WHERE ino = ?1 AND idx BETWEEN ?2 AND ?3",
	[SQ_CHUNK_DROP] = "DELETE FROM chunks WHERE ino = ?1",
	[SQ_BLOB_ADD] = "INSERT INTO blobs (data) VALUES (?2)",
	[SQ_BLOB_SET] = "UPDATE blobs SET data = ?2 WHERE id = ?1",
	[SQ_BLOB_DEL] = "DELETE FROM blobs WHERE id = ?1",
	[SQ_BLOB_DEL_RANGE] = "DELETE FROM blobs WHERE id IN (SELECT blob FROM chunks"
			      " WHERE ino = ?1 AND idx BETWEEN ?2 AND ?3)",
	[SQ_BLOB_DROP] = "DELETE FROM blobs WHERE id IN (SELECT blob FROM chunks WHERE ino = ?1)",
	[SQ_CHANGE_ADD] = "INSERT INTO changes (mount, kind, ino, off, len, size, parent, name,"
			  " new_parent, new_name) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	[SQ_CHANGE_EXTEND] = "UPDATE changes SET off = ?2, len = ?3, size = ?4 WHERE seq = ?1",
	[SQ_CHANGE_LAST] = "SELECT coalesce((SELECT seq FROM sqlite_sequence"
			   " WHERE name = 'changes'), 0)",
	[SQ_CHANGE_TRIM] = "DELETE FROM changes WHERE seq <= (SELECT min(seen) FROM mounts)",
	[SQ_CHANGE_SINCE] = "SELECT seq, mount, kind, ino, off, len, size, parent, name,"
			    " new_parent, new_name FROM changes WHERE seq > ?1 ORDER BY seq"
			    " LIMIT ?2",
	[SQ_DATA_VERSION] = "PRAGMA data_version",
	[SQ_MOUNT_ADD] = "INSERT INTO mounts (pid, host, started, heartbeat, seen)"
			 " VALUES (?1, ?2, ?3, ?3, ?4)",
	[SQ_MOUNT_BEAT] = "UPDATE mounts SET heartbeat = ?2, seen = ?3 WHERE id = ?1",
	[SQ_MOUNT_OTHERS] = "SELECT id, pid, host, heartbeat FROM mounts WHERE id <> ?1",
	[SQ_MOUNT_DEL] = "DELETE FROM mounts WHERE id = ?1",
	[SQ_ORPHAN_ADD] = "INSERT OR IGNORE INTO orphans (ino, mount) VALUES (?1, ?2)",
	[SQ_ORPHAN_DEL] = "DELETE FROM orphans WHERE ino = ?1 AND mount = ?2",
	[SQ_ORPHAN_HELD] = "SELECT count(*) FROM orphans WHERE ino = ?1",
	[SQ_ORPHAN_OF_MOUNT] = "SELECT ino FROM orphans WHERE mount = ?1 LIMIT 1",
};

/* Runs sql (no rows expected): the SQLite result code. */
static int schema_exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* One integer from sql into *out: the SQLite result code. */
static int schema_int(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

	*out = 0;
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* The first table of schema_tables that db lacks, or NULL. */
static int schema_missing(sqlite3 *db, const char **out)
{
	char sql[128];
	int64_t n;
	int rc = SQLITE_OK;

	*out = NULL;
	for (size_t i = 0;
	     rc == SQLITE_OK && !*out && i < sizeof(schema_tables) / sizeof(*schema_tables); i++) {
		snprintf(sql, sizeof(sql),
			 "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = '%s'",
			 schema_tables[i]);
		rc = schema_int(db, sql, &n);
		if (rc == SQLITE_OK && n == 0)
			*out = schema_tables[i];
	}
	return rc;
}

/* PRAGMA quick_check on one table: its pages and records are checked, its indexes are
 * not compared with it (integrity_check does that, at a similar cost here). The SQLite
 * result code; for a damaged table SQLITE_CORRUPT and the first problem in why. */
static int schema_quick_check_table(sqlite3 *db, const char *table, char *why, size_t size)
{
	char sql[64];
	sqlite3_stmt *st;
	const char *res;
	int rc;

	snprintf(sql, sizeof(sql), "PRAGMA quick_check(%s)", table);
	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	res = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
	if (res && strcmp(res, "ok") != 0) {
		snprintf(why, size, "%s", res);
		for (char *nl = strchr(why, '\n'); nl; nl = strchr(nl, '\n'))
			*nl = ' '; /* one message, one line */
		rc = SQLITE_CORRUPT;
	} else if (rc == SQLITE_ROW) {
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

/* Checks every table but blobs: file data is most of a database, and reading all of it
 * at every mount would cost a full read of the file (measured: 3.9 s for 1.2 GB, cold;
 * the other tables of the same database: 0.07 s). A damaged data page is reported when
 * a read meets it (SQLITE_CORRUPT: -EIO and a message). */
static int schema_quick_check(sqlite3 *db, char *why, size_t size)
{
	int rc = SQLITE_OK;

	for (size_t i = 0; rc == SQLITE_OK && i < sizeof(schema_tables) / sizeof(*schema_tables);
	     i++) {
		if (strcmp(schema_tables[i], "blobs") != 0)
			rc = schema_quick_check_table(db, schema_tables[i], why, size);
	}
	return rc;
}

/* application_id, user_version and tables say what the database is: 0, or -EINVAL with
 * the message logged; *rc_out gets a SQLite error met on the way. */
static int schema_identify(sqlite3 *db, const struct sqlite_bk *s, int *rc_out)
{
	int64_t app_id, version;
	const char *missing;
	int rc = schema_int(db, "PRAGMA application_id", &app_id);

	if (rc == SQLITE_OK)
		rc = schema_int(db, "PRAGMA user_version", &version);
	if (rc == SQLITE_OK)
		rc = schema_missing(db, &missing);
	*rc_out = rc;
	if (rc != SQLITE_OK)
		return 0;
	if ((uint32_t)app_id != SQ_APP_ID) {
		sqlite_log(s,
			   "sqlite: %s: not a sigbusfs database: application_id is 0x%08x, "
			   "expected 0x%08x",
			   s->path, (unsigned)app_id, (unsigned)SQ_APP_ID);
		return -EINVAL;
	}
	if (version > SQ_SCHEMA_VERSION) {
		sqlite_log(s,
			   "sqlite: %s: schema version %lld is newer than this sigbusfs "
			   "supports (%d)",
			   s->path, (long long)version, SQ_SCHEMA_VERSION);
		return -EINVAL;
	}
	if (missing) {
		sqlite_log(s, "sqlite: %s: not a sigbusfs database: table %s is missing", s->path,
			   missing);
		return -EINVAL;
	}
	return 0;
}

/* Takes the write lock and lets it go at once, writing nothing: a writer that is not a
 * sigbusfs mount holding it longer than the busy timeout makes this fail. */
static int schema_lock_probe(sqlite3 *db)
{
	int rc = schema_exec(db, "BEGIN IMMEDIATE");

	if (rc == SQLITE_OK)
		rc = schema_exec(db, "ROLLBACK");
	return rc;
}

/* The one message for a SQLite error met while opening: -errno. why, if not empty,
 * says what is damaged. */
static int schema_report(sqlite3 *db, const struct sqlite_bk *s, int rc, const char *why)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		sqlite_log(s, "sqlite: %s: locked by another process: still busy after %d ms",
			   s->path, SQ_OPEN_BUSY_MS);
		return -EBUSY;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		sqlite_log(s, "sqlite: %s: corrupt database: %s", s->path,
			   *why ? why : sqlite3_errmsg(db));
		return -EIO;
	default:
		sqlite_log(s, "sqlite: %s: cannot use the database: %s", s->path,
			   sqlite3_errmsg(db));
		return sqlite_to_errno(rc);
	}
}

/* Whether db has no schema, application_id or user_version yet: a new file, an empty
 * one, or an empty SQLite database. The SQLite result code. */
static int schema_is_empty(sqlite3 *db, bool *out)
{
	int64_t n = 0, app_id = 0, version = 0;
	int rc = schema_int(db, "SELECT count(*) FROM sqlite_schema", &n);

	if (rc == SQLITE_OK)
		rc = schema_int(db, "PRAGMA application_id", &app_id);
	if (rc == SQLITE_OK)
		rc = schema_int(db, "PRAGMA user_version", &version);
	*out = n == 0 && app_id == 0 && version == 0;
	return rc;
}

/* Creates the schema and the root directory in an empty database, in WAL mode. */
static int schema_create(sqlite3 *db)
{
	char root[512];
	struct timespec now;
	int rc;

	sqlite_now(&now);
	snprintf(root, sizeof(root),
		 "INSERT INTO inodes VALUES (%d, 0, %u, 2, 0, 0, 0, 0, 0, %lld, %ld, %lld, %ld,"
		 " %lld, %ld, 0, 0, NULL);"
		 "PRAGMA application_id = %d; PRAGMA user_version = %d;",
		 BK_ROOT_INO, (unsigned)(S_IFDIR | 0755), (long long)now.tv_sec, now.tv_nsec,
		 (long long)now.tv_sec, now.tv_nsec, (long long)now.tv_sec, now.tv_nsec, SQ_APP_ID,
		 SQ_SCHEMA_VERSION);
	rc = schema_exec(db, "PRAGMA page_size = 65536; PRAGMA journal_mode = WAL;");
	if (rc == SQLITE_OK)
		rc = schema_exec(db, "BEGIN IMMEDIATE");
	if (rc == SQLITE_OK)
		rc = schema_exec(db, schema_sql);
	if (rc == SQLITE_OK)
		rc = schema_exec(db, root);
	if (rc == SQLITE_OK)
		rc = schema_exec(db, "COMMIT");
	if (rc != SQLITE_OK && !sqlite3_get_autocommit(db))
		schema_exec(db, "ROLLBACK");
	return rc;
}

int sqlite_schema_prepare(sqlite3 *db, const struct sqlite_bk *s)
{
	char why[256] = "";
	bool is_empty;
	int err = 0;
	int rc = schema_is_empty(db, &is_empty);

	if (rc == SQLITE_OK && is_empty) {
		rc = schema_create(db);
		return rc == SQLITE_OK ? 0 : schema_report(db, s, rc, why);
	}
	if (rc == SQLITE_OK)
		err = schema_identify(db, s, &rc);
	if (err < 0)
		return err;
	if (rc == SQLITE_OK)
		rc = schema_quick_check(db, why, sizeof(why));
	if (rc == SQLITE_OK)
		rc = schema_lock_probe(db);
	return rc == SQLITE_OK ? 0 : schema_report(db, s, rc, why);
}
