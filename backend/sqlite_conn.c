/* Connections of the sqlite backend: opening one with the settings of its role, its cache
 * of prepared statements, and the helpers that run them and turn SQLite errors into
 * -errno with one log line. Who uses which connection when is sqlite_txn.c's business. */
#include "sqlite.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define SQ_WRITER_CACHE_KIB (64 * 1024) /* page cache of the writer, per connection */
#define SQ_READER_CACHE_KIB (16 * 1024)

/* What every connection of a role runs once it is open. synchronous=NORMAL: in WAL mode
 * a commit writes the WAL without syncing it; fsync syncs it (sqlite_sync()) and a
 * checkpoint syncs both files. */
static const char *const role_pragmas[] = {
	[SQ_VALIDATE] = "PRAGMA trusted_schema = OFF;",
	[SQ_WRITER] = "PRAGMA trusted_schema = OFF; PRAGMA journal_mode = WAL;"
		      " PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY;"
		      " PRAGMA journal_size_limit = 67108864;",
	[SQ_READER] = "PRAGMA trusted_schema = OFF; PRAGMA query_only = ON;",
	[SQ_CHECKPOINTER] = "PRAGMA trusted_schema = OFF; PRAGMA synchronous = NORMAL;",
};

static int conn_settings(struct sqlite_conn *c, enum sq_role role)
{
	char sql[256];
	int rc;

	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, role == SQ_VALIDATE ? SQ_OPEN_BUSY_MS : SQ_BUSY_MS);
	if (role == SQ_VALIDATE)
		sqlite3_db_config(c->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	rc = sqlite3_exec(c->db, role_pragmas[role], NULL, NULL, NULL);
	if (rc != SQLITE_OK || role == SQ_VALIDATE)
		return rc;
	snprintf(sql, sizeof(sql), "PRAGMA cache_size = -%d;",
		 role == SQ_WRITER ? SQ_WRITER_CACHE_KIB : SQ_READER_CACHE_KIB);
	return sqlite3_exec(c->db, sql, NULL, NULL, NULL);
}

int sqlite_conn_open(struct sqlite_bk *s, enum sq_role role, struct sqlite_conn *out)
{
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
	int rc;

	memset(out, 0, sizeof(*out));
	out->s = s;
	if (role == SQ_VALIDATE)
		flags |= SQLITE_OPEN_CREATE;
	rc = sqlite3_open_v2(s->path, &out->db, flags, NULL);
	if (rc == SQLITE_OK)
		rc = conn_settings(out, role);
	if (rc == SQLITE_OK)
		return 0;
	rc = out->db ? sqlite_err(out, rc, "open") : -ENOMEM;
	sqlite_conn_close(out);
	return rc;
}

void sqlite_conn_close(struct sqlite_conn *c)
{
	sqlite_chunk_release(c);
	for (int i = 0; i < SQ_NSTMT; i++)
		sqlite3_finalize(c->stmts[i]);
	memset(c->stmts, 0, sizeof(c->stmts));
	sqlite3_close_v2(c->db);
	c->db = NULL;
}

int sqlite_err(struct sqlite_conn *c, int rc, const char *what)
{
	int err = sqlite_to_errno(rc);

	c->has_failed = true;
	if (err != -EEXIST)
		sqlite_log(c->s, "sqlite: %s: %s: %s", c->s->path, what, sqlite3_errmsg(c->db));
	return err;
}

int sqlite_stmt(struct sqlite_conn *c, enum sq_stmt id, sqlite3_stmt **out)
{
	int rc;

	*out = c->stmts[id];
	if (*out)
		return 0;
	rc = sqlite3_prepare_v3(c->db, sqlite_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->stmts[id],
				NULL);
	if (rc != SQLITE_OK)
		return sqlite_err(c, rc, "prepare");
	*out = c->stmts[id];
	return 0;
}

int sqlite_step(struct sqlite_conn *c, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		return rc;
	return sqlite_err(c, rc, what);
}

static void conn_bind_ints(sqlite3_stmt *st, const int64_t *args, int nargs)
{
	for (int i = 0; i < nargs; i++)
		sqlite3_bind_int64(st, i + 1, args[i]);
}

int sqlite_exec(struct sqlite_conn *c, enum sq_stmt id, const int64_t *args, int nargs)
{
	sqlite3_stmt *st;
	int rc = sqlite_stmt(c, id, &st);

	if (rc < 0)
		return rc;
	conn_bind_ints(st, args, nargs);
	rc = sqlite_step(c, st, sqlite_sql[id]);
	sqlite3_reset(st);
	return rc < 0 ? rc : 0;
}

int sqlite_query_int(struct sqlite_conn *c, enum sq_stmt id, const int64_t *args, int nargs,
		     int64_t *out)
{
	sqlite3_stmt *st;
	int rc = sqlite_stmt(c, id, &st);

	*out = 0;
	if (rc < 0)
		return rc;
	conn_bind_ints(st, args, nargs);
	rc = sqlite_step(c, st, sqlite_sql[id]);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc < 0)
		return rc;
	return rc == SQLITE_ROW ? 0 : -ENOENT;
}
