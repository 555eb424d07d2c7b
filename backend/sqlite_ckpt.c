/* The checkpointer of the sqlite backend: a thread with a connection of its own that
 * copies the WAL back into the database (PRAGMA wal_checkpoint(PASSIVE)) once the writer's
 * commits have put SQ_CKPT_BYTES into it. SQLite would otherwise checkpoint inside a
 * commit, with the writer's mutex held, and every operation would wait for the copy and
 * its two fsyncs. A passive checkpoint never blocks the writer or the readers.
 *
 * But SQLite starts the WAL over (and cuts it back to journal_size_limit) only in a write
 * transaction that began once every frame had been copied, and under sustained writes
 * the next batch always begins before the copy ends: the WAL then grows with everything
 * written (885 MiB for 768 MiB of writes, 8 GiB for 13,000 small files). So once the
 * bulk is copied, a second pass runs with the writer paused: it copies what the first
 * one missed, and the next batch starts the WAL over. Writers wait for that pass only. */
#include "sqlite.h"
#include <stdio.h>

#define SQ_CKPT_BYTES (64u << 20) /* WAL bytes that start a checkpoint */

/* sqlite3_wal_hook() on the writer, called after each commit with the frames in the
 * WAL; it replaces SQLite's automatic checkpoint. */
static int ckpt_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct sqlite_ckpt *k = arg;

	if ((uint64_t)frames * k->page_size < k->threshold)
		return SQLITE_OK;
	pthread_mutex_lock(&k->lock);
	k->is_due = true;
	pthread_cond_signal(&k->wake);
	pthread_mutex_unlock(&k->lock);
	return SQLITE_OK;
}

/* One passive checkpoint: 0, or -errno if it failed (busy is not a failure). */
static int ckpt_pass(struct sqlite_ckpt *k)
{
	int rc = sqlite3_wal_checkpoint_v2(k->conn.db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);

	return rc == SQLITE_OK || rc == SQLITE_BUSY ? 0 : sqlite_err(&k->conn, rc, "checkpoint");
}

static void *ckpt_thread(void *arg)
{
	struct sqlite_bk *s = arg;
	struct sqlite_ckpt *k = &s->ckpt;
	pthread_setname_np(pthread_self(), "sqlite-ckpt");
	pthread_mutex_lock(&k->lock);
	while (!k->is_stopping) {
		if (!k->is_due) {
			pthread_cond_wait(&k->wake, &k->lock);
			continue;
		}
		k->is_due = false;
		pthread_mutex_unlock(&k->lock);
		if (ckpt_pass(k) == 0) {
			sqlite_writer_pause(s);
			ckpt_pass(k);
			sqlite_writer_resume(s);
		}
		pthread_mutex_lock(&k->lock);
	}
	pthread_mutex_unlock(&k->lock);
	return NULL;
}

int sqlite_ckpt_start(struct sqlite_bk *s, sqlite3 *writer)
{
	struct sqlite_ckpt *k = &s->ckpt;
	int64_t page_size = 0;
	int rc = sqlite_conn_open(s, SQ_CHECKPOINTER, &k->conn);

	if (rc == 0)
		rc = sqlite_query_int(&k->conn, SQ_PAGE_SIZE_GET, NULL, 0, &page_size);
	if (rc < 0)
		return rc;
	k->page_size = (uint64_t)page_size;
	k->threshold = SQ_CKPT_BYTES;
	rc = -pthread_create(&k->thread, NULL, ckpt_thread, s);
	k->has_thread = rc == 0;
	if (rc == 0)
		sqlite3_wal_hook(writer, ckpt_hook, k);
	return rc;
}

void sqlite_ckpt_stop(struct sqlite_bk *s)
{
	struct sqlite_ckpt *k = &s->ckpt;

	pthread_mutex_lock(&k->lock);
	k->is_stopping = true;
	pthread_cond_signal(&k->wake);
	pthread_mutex_unlock(&k->lock);
	if (k->has_thread)
		pthread_join(k->thread, NULL);
	k->has_thread = false;
	if (k->conn.db)
		sqlite_conn_close(&k->conn);
}
