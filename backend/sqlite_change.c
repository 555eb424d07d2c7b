/* The change log of the sqlite backend: every mutation appends what it changed to the
 * changes table, in the same transaction, so that other mounts of the database can find
 * out what to invalidate. Runs of writes to one file in one batch share a row. The feed
 * reads the rows other mounts wrote, on a connection of its own, when PRAGMA data_version
 * says the database changed (polled every SQ_FEED_MS); the heartbeat publishes how far it
 * read, and trimming (sqlite_mount.c's) keeps every row a live mount has not read. */
#include "sqlite.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void change_bind_name(sqlite3_stmt *st, int col, const char *name)
{
	if (name)
		sqlite3_bind_blob(st, col, name, (int)strlen(name), SQLITE_STATIC);
	else
		sqlite3_bind_null(st, col);
}

static int change_insert(struct sqlite_bk *s, struct sqlite_conn *c, const struct sqlite_change *ch)
{
	sqlite3_stmt *st;
	int rc = sqlite_stmt(c, SQ_CHANGE_ADD, &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, s->mount_id);
	sqlite3_bind_int64(st, 2, ch->kind);
	sqlite3_bind_int64(st, 3, (int64_t)ch->ino);
	sqlite3_bind_int64(st, 4, (int64_t)ch->off);
	sqlite3_bind_int64(st, 5, (int64_t)ch->len);
	sqlite3_bind_int64(st, 6, (int64_t)ch->size);
	sqlite3_bind_int64(st, 7, (int64_t)ch->parent);
	change_bind_name(st, 8, ch->name);
	sqlite3_bind_int64(st, 9, (int64_t)ch->new_parent);
	change_bind_name(st, 10, ch->new_name);
	rc = sqlite_step(c, st, "log a change");
	sqlite3_reset(st);
	return rc < 0 ? rc : 0;
}

/* Whether ch continues or overlaps the DATA row the batch wrote last. */
static bool change_extends(const struct sqlite_writer *w, const struct sqlite_change *ch)
{
	return w->last_change && ch->kind == SQ_CH_DATA && ch->ino == w->last_ino &&
	       ch->off <= w->last_end && ch->off + ch->len >= w->last_off;
}

int sqlite_change_add(struct sqlite_bk *s, struct sqlite_conn *c, const struct sqlite_change *ch)
{
	struct sqlite_writer *w = &s->w;
	int rc;

	if (change_extends(w, ch)) {
		w->last_off = ch->off < w->last_off ? ch->off : w->last_off;
		w->last_end = ch->off + ch->len > w->last_end ? ch->off + ch->len : w->last_end;
		return sqlite_exec(c, SQ_CHANGE_EXTEND,
				   SQ_ARGS(w->last_change, (int64_t)w->last_off,
					   (int64_t)(w->last_end - w->last_off),
					   (int64_t)ch->size));
	}
	rc = change_insert(s, c, ch);
	w->last_change = rc == 0 && ch->kind == SQ_CH_DATA ? sqlite3_last_insert_rowid(c->db) : 0;
	w->last_ino = ch->ino;
	w->last_off = ch->off;
	w->last_end = ch->off + ch->len;
	return rc;
}

void sqlite_change_batch_end(struct sqlite_writer *w)
{
	w->last_change = 0;
}

int sqlite_feed_seen(struct sqlite_bk *s, struct sqlite_conn *c, int64_t *out)
{
	if (atomic_load(&s->feed.is_reading)) {
		*out = atomic_load(&s->feed.seen);
		return 0;
	}
	return sqlite_query_int(c, SQ_CHANGE_LAST, NULL, 0, out);
}

int sqlite_feed_fd(struct bk *b, int *fd_out, int *poll_ms_out)
{
	*fd_out = -1;
	*poll_ms_out = SQ_FEED_MS;
	return 0;
}

void sqlite_feed_close(struct sqlite_bk *s)
{
	if (s->feed.is_open)
		sqlite_conn_close(&s->feed.conn);
	s->feed.is_open = false;
}

/* One row of changes, its names copied. */
struct feed_row {
	int64_t seq, mount;
	struct bk_change ch;
	char name[BK_NAME_MAX + 1], new_name[BK_NAME_MAX + 1];
};

static const char *feed_name(sqlite3_stmt *st, int col, char *buf)
{
	int len = sqlite3_column_bytes(st, col);

	if (sqlite3_column_type(st, col) == SQLITE_NULL || len > BK_NAME_MAX)
		return NULL;
	memcpy(buf, sqlite3_column_blob(st, col), (size_t)len);
	buf[len] = '\0';
	return buf;
}

static void feed_row_fill(sqlite3_stmt *st, struct feed_row *r)
{
	r->seq = sqlite3_column_int64(st, 0);
	r->mount = sqlite3_column_int64(st, 1);
	r->ch = (struct bk_change){
		.kind = (enum bk_change_kind)sqlite3_column_int64(st, 2),
		.ino = (uint64_t)sqlite3_column_int64(st, 3),
		.off = (uint64_t)sqlite3_column_int64(st, 4),
		.len = (uint64_t)sqlite3_column_int64(st, 5),
		.size = (uint64_t)sqlite3_column_int64(st, 6),
		.parent = (uint64_t)sqlite3_column_int64(st, 7),
		.new_parent = (uint64_t)sqlite3_column_int64(st, 9),
	};
	r->ch.name = feed_name(st, 8, r->name);
	r->ch.new_name = feed_name(st, 10, r->new_name);
}

/* Up to SQ_FEED_BATCH rows after seen into rows: how many, or -errno. */
static int feed_fetch(struct sqlite_feed *f, int64_t seen, struct feed_row *rows)
{
	sqlite3_stmt *st;
	int n = 0, rc = sqlite_stmt(&f->conn, SQ_CHANGE_SINCE, &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, seen);
	sqlite3_bind_int64(st, 2, SQ_FEED_BATCH);
	while ((rc = sqlite_step(&f->conn, st, "read the change log")) == SQLITE_ROW)
		feed_row_fill(st, &rows[n++]);
	sqlite3_reset(st);
	return rc < 0 ? rc : n;
}

/* Whether the database changed since the last call (and the first time). */
static int feed_changed(struct sqlite_feed *f)
{
	int64_t version;
	int rc = sqlite_query_int(&f->conn, SQ_DATA_VERSION, NULL, 0, &version);

	if (rc < 0 || version == f->data_version)
		return rc < 0 ? rc : 0;
	f->data_version = version;
	return 1;
}

static int feed_open(struct sqlite_bk *s)
{
	int rc = sqlite_attach(s);

	if (rc == 0 && !s->feed.is_open)
		rc = sqlite_conn_open(s, SQ_READER, &s->feed.conn);
	if (rc < 0)
		return rc;
	s->feed.is_open = true;
	atomic_store(&s->feed.is_reading, true);
	return 0;
}

/* Emits the rows of other mounts, in order, until emit stops; seen follows. */
static int feed_emit(struct sqlite_bk *s, const struct feed_row *rows, int n, bk_change_fn emit,
		     void *ctx)
{
	for (int i = 0; i < n; i++) {
		int rc = rows[i].mount == s->mount_id ? 0 : emit(ctx, &rows[i].ch);

		if (rc)
			return rc;
		atomic_store(&s->feed.seen, rows[i].seq);
	}
	return 0;
}

int sqlite_feed_read(struct bk *b, bk_change_fn emit, void *ctx)
{
	struct sqlite_bk *s = sqlite_of(b);
	struct feed_row *rows;
	int n, rc = feed_open(s);

	if (rc == 0)
		rc = feed_changed(&s->feed);
	if (rc <= 0)
		return rc;
	rows = malloc(SQ_FEED_BATCH * sizeof(*rows));
	if (!rows)
		return -ENOMEM;
	do {
		n = feed_fetch(&s->feed, atomic_load(&s->feed.seen), rows);
		rc = n < 0 ? n : feed_emit(s, rows, n, emit, ctx);
	} while (rc == 0 && n == SQ_FEED_BATCH);
	free(rows);
	return rc;
}
