/* The change log of the sqlite backend: every mutation appends what it changed to the
 * changes table, in the same transaction, so that other mounts of the database can find
 * out what to invalidate. Runs of writes to one file in one batch share a row. Trimming
 * is sqlite_mount.c's, with the heartbeat. */
#include "sqlite.h"

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
