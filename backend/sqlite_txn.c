/* Who talks to the database when: the writer connection and its batches, the flusher
 * thread that commits them on time, the pool of reader connections, and fsync.
 *
 * Coherence: every change goes through the one writer connection, inside the open
 * batch. While a batch is open (w->is_open), readers would not see it, so every read
 * uses the writer; once it has committed, reads go to the pool again. A read that
 * started before a write returned may see the old state, as with any concurrent read.
 *
 * Errors: an operation refused by its checks has changed nothing. One that fails in
 * SQLite after it changed rows (disk full, I/O error), a batch whose commit fails and a
 * batch SQLite rolls back by itself are lost as a whole: the batch's operations had been
 * acknowledged, like writes in a page cache, so the next fsync reports the error
 * (w->lost), once, and the log says what happened. There are no savepoints per
 * operation: with 64 KiB pages each would copy every page it touches to a statement
 * journal (measured: most of the cost of a write). */
#include "sqlite.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void txn_clock(struct timespec *out)
{
	clock_gettime(CLOCK_MONOTONIC, out);
}

static int64_t txn_ms_since(const struct timespec *t)
{
	struct timespec now;

	txn_clock(&now);
	return (int64_t)(now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

static struct timespec txn_after_ms(const struct timespec *t, int64_t ms)
{
	struct timespec r = { t->tv_sec + ms / 1000, t->tv_nsec + (ms % 1000) * 1000000 };

	if (r.tv_nsec >= 1000000000) {
		r.tv_sec++;
		r.tv_nsec -= 1000000000;
	}
	return r;
}

/* Caller holds the writer. The batch is gone, committed or not. */
static void batch_closed(struct sqlite_writer *w)
{
	atomic_store(&w->is_open, false);
	w->bytes = 0;
	sqlite_change_batch_end(w);
}

/* Caller holds the writer. The batch is lost: rc says why. */
static void batch_lost(struct sqlite_bk *s, int rc)
{
	struct sqlite_writer *w = &s->w;

	if (!sqlite3_get_autocommit(w->conn.db))
		sqlite_exec(&w->conn, SQ_ROLLBACK, NULL, 0);
	w->lost = rc;
	batch_closed(w);
	sqlite_log(s, "sqlite: %s: the changes of the last %lld ms are lost: %s", s->path,
		   (long long)txn_ms_since(&w->opened), strerror(-rc));
}

/* Caller holds the writer. */
static int batch_open(struct sqlite_bk *s)
{
	struct sqlite_writer *w = &s->w;
	int rc = sqlite_exec(&w->conn, SQ_BEGIN_IMMEDIATE, NULL, 0);

	if (rc < 0)
		return rc;
	txn_clock(&w->opened);
	w->bytes = 0;
	atomic_store(&w->is_open, true);
	pthread_cond_signal(&w->wake);
	return 0;
}

/* Caller holds the writer and an open batch. */
static int batch_commit(struct sqlite_bk *s)
{
	int rc = sqlite_exec(&s->w.conn, SQ_COMMIT, NULL, 0);

	if (rc < 0)
		batch_lost(s, rc);
	else
		batch_closed(&s->w);
	return rc;
}

/* Caller holds the writer, after a failed statement: SQLite rolls back the whole
 * transaction on some errors (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM). */
static bool batch_vanished(struct sqlite_bk *s, int rc)
{
	if (!atomic_load(&s->w.is_open) || !sqlite3_get_autocommit(s->w.conn.db))
		return false;
	batch_lost(s, rc);
	return true;
}

int sqlite_write_begin(struct sqlite_bk *s, struct sqlite_conn **out)
{
	struct sqlite_writer *w = &s->w;
	int rc = sqlite_attach(s);

	*out = NULL;
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&w->lock);
	rc = atomic_load(&w->is_open) ? 0 : batch_open(s);
	if (rc < 0) {
		pthread_mutex_unlock(&w->lock);
		return rc;
	}
	w->conn.has_failed = false;
	w->conn.op_changes = sqlite3_total_changes64(w->conn.db);
	*out = &w->conn;
	return 0;
}

int sqlite_write_end(struct sqlite_bk *s, struct sqlite_conn *c, int rc)
{
	struct sqlite_writer *w = &s->w;
	bool has_changed = c->has_failed || sqlite3_total_changes64(c->db) != c->op_changes;

	sqlite_chunk_release(c);
	if (rc < 0 && has_changed && atomic_load(&w->is_open))
		batch_lost(s, rc);
	else if (rc >= 0 && w->bytes >= SQ_BATCH_BYTES)
		rc = batch_commit(s);
	pthread_mutex_unlock(&w->lock);
	return rc;
}

int sqlite_write_end_now(struct sqlite_bk *s, struct sqlite_conn *c, int rc)
{
	if (rc >= 0 && sqlite3_total_changes64(c->db) != c->op_changes &&
	    atomic_load(&s->w.is_open)) {
		sqlite_chunk_release(c);
		rc = batch_commit(s);
	}
	return sqlite_write_end(s, c, rc);
}

void sqlite_write_account(struct sqlite_bk *s, uint64_t bytes)
{
	s->w.bytes += bytes;
}

static struct sqlite_conn *pool_get(struct sqlite_pool *p)
{
	unsigned i;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		for (i = 0; i < p->nconns && p->is_busy[i]; i++)
			;
		if (i < p->nconns)
			break;
		pthread_cond_wait(&p->freed, &p->lock);
	}
	p->is_busy[i] = true;
	pthread_mutex_unlock(&p->lock);
	return &p->conns[i];
}

static void pool_put(struct sqlite_pool *p, struct sqlite_conn *c)
{
	pthread_mutex_lock(&p->lock);
	p->is_busy[c - p->conns] = false;
	pthread_cond_signal(&p->freed);
	pthread_mutex_unlock(&p->lock);
}

int sqlite_read_begin(struct sqlite_bk *s, struct sqlite_conn **out)
{
	struct sqlite_conn *c;
	int rc = sqlite_attach(s);

	*out = NULL;
	if (rc < 0)
		return rc;
	if (atomic_load(&s->w.is_open)) {
		pthread_mutex_lock(&s->w.lock);
		*out = &s->w.conn;
		return 0;
	}
	c = pool_get(&s->pool);
	rc = sqlite_exec(c, SQ_BEGIN, NULL, 0);
	if (rc < 0) {
		pool_put(&s->pool, c);
		return rc;
	}
	*out = c;
	return 0;
}

void sqlite_read_end(struct sqlite_bk *s, struct sqlite_conn *c)
{
	sqlite_chunk_release(c);
	if (c == &s->w.conn) {
		pthread_mutex_unlock(&s->w.lock);
		return;
	}
	sqlite_exec(c, SQ_COMMIT, NULL, 0);
	pool_put(&s->pool, c);
}

/* Makes what the writer committed durable: the WAL holds every commit not yet
 * checkpointed, and a checkpoint syncs the database file before the WAL is reused. The
 * WAL is not locked by SQLite (locks live on the database and -shm files), so a
 * descriptor of our own can be opened and closed freely. */
static int txn_sync_wal(struct sqlite_bk *s)
{
	int rc = 0;
	int fd = open(s->wal_path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fdatasync(fd) < 0)
		rc = -errno;
	close(fd);
	if (rc < 0)
		sqlite_log(s, "sqlite: %s: fdatasync: %s", s->wal_path, strerror(-rc));
	return rc;
}

int sqlite_sync(struct sqlite_bk *s)
{
	struct sqlite_writer *w = &s->w;
	int lost, rc = sqlite_attach(s);

	if (rc < 0)
		return rc;
	pthread_mutex_lock(&w->lock);
	if (atomic_load(&w->is_open))
		batch_commit(s);
	lost = w->lost;
	w->lost = 0;
	pthread_mutex_unlock(&w->lock);
	rc = txn_sync_wal(s);
	return lost < 0 ? lost : rc;
}

void sqlite_writer_pause(struct sqlite_bk *s)
{
	pthread_mutex_lock(&s->w.lock);
	if (atomic_load(&s->w.is_open))
		batch_commit(s);
}

void sqlite_writer_resume(struct sqlite_bk *s)
{
	pthread_mutex_unlock(&s->w.lock);
}

/* Caller holds the writer. Refreshes our row in mounts, inside the batch if one is
 * open, else in a transaction of its own. */
static void flusher_beat(struct sqlite_bk *s)
{
	struct sqlite_writer *w = &s->w;
	bool was_open = atomic_load(&w->is_open);
	int rc = was_open ? 0 : batch_open(s);

	txn_clock(&w->beat);
	if (rc == 0)
		rc = sqlite_mount_beat(s, &w->conn);
	if (rc < 0 && batch_vanished(s, rc))
		return;
	if (!was_open && atomic_load(&w->is_open))
		batch_commit(s);
}

/* The deadline the flusher sleeps until: the batch's, or the next heartbeat. */
static struct timespec flusher_deadline(struct sqlite_writer *w)
{
	struct timespec beat = txn_after_ms(&w->beat, SQ_BEAT_MS);
	struct timespec batch = txn_after_ms(&w->opened, SQ_BATCH_MS);

	if (!atomic_load(&w->is_open))
		return beat;
	return batch.tv_sec < beat.tv_sec ||
			       (batch.tv_sec == beat.tv_sec && batch.tv_nsec < beat.tv_nsec)
		       ? batch
		       : beat;
}

static void *txn_flusher(void *arg)
{
	struct sqlite_bk *s = arg;
	struct sqlite_writer *w = &s->w;

	pthread_setname_np(pthread_self(), "sqlite-flusher");
	pthread_mutex_lock(&w->lock);
	while (!w->is_stopping) {
		struct timespec deadline = flusher_deadline(w);

		if (pthread_cond_timedwait(&w->wake, &w->lock, &deadline) != ETIMEDOUT)
			continue;
		if (txn_ms_since(&w->beat) >= SQ_BEAT_MS)
			flusher_beat(s);
		if (atomic_load(&w->is_open) && txn_ms_since(&w->opened) >= SQ_BATCH_MS)
			batch_commit(s);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

void sqlite_txn_init(struct sqlite_bk *s)
{
	pthread_mutexattr_t mattr;
	pthread_condattr_t attr;

	pthread_mutexattr_init(&mattr);
	pthread_mutexattr_settype(&mattr, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_mutex_init(&s->w.lock, &mattr);
	pthread_mutexattr_destroy(&mattr);
	pthread_cond_init(&s->w.wake, &attr);
	pthread_condattr_destroy(&attr);
	pthread_mutex_init(&s->pool.lock, NULL);
	pthread_cond_init(&s->pool.freed, NULL);
	pthread_mutex_init(&s->ckpt.lock, NULL);
	pthread_cond_init(&s->ckpt.wake, NULL);
}

void sqlite_txn_destroy(struct sqlite_bk *s)
{
	pthread_cond_destroy(&s->ckpt.wake);
	pthread_mutex_destroy(&s->ckpt.lock);
	pthread_cond_destroy(&s->pool.freed);
	pthread_mutex_destroy(&s->pool.lock);
	pthread_cond_destroy(&s->w.wake);
	pthread_mutex_destroy(&s->w.lock);
}

/* Registers this mount in a transaction of its own. */
static int txn_register(struct sqlite_bk *s)
{
	struct sqlite_writer *w = &s->w;
	int rc;

	pthread_mutex_lock(&w->lock);
	rc = batch_open(s);
	if (rc == 0)
		rc = sqlite_mount_register(s, &w->conn);
	if (rc == 0)
		rc = batch_commit(s);
	else if (atomic_load(&w->is_open))
		batch_lost(s, rc);
	w->lost = 0;
	txn_clock(&w->beat);
	pthread_mutex_unlock(&w->lock);
	return rc;
}

/* The WAL was just created: make its directory entry durable, or an fsynced WAL could
 * vanish with a power loss. */
static int txn_sync_dir(struct sqlite_bk *s)
{
	int rc = 0;
	int fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) < 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		sqlite_log(s, "sqlite: %s: fsync: %s", s->dir, strerror(-rc));
	return rc;
}

int sqlite_txn_start(struct sqlite_bk *s)
{
	int rc = sqlite_conn_open(s, SQ_WRITER, &s->w.conn);

	if (rc == 0)
		rc = sqlite_ckpt_start(s, s->w.conn.db);
	if (rc == 0)
		rc = txn_register(s);
	for (unsigned i = 0; rc == 0 && i < SQ_READERS; i++) {
		rc = sqlite_conn_open(s, SQ_READER, &s->pool.conns[i]);
		s->pool.nconns += rc == 0;
	}
	if (rc == 0)
		rc = txn_sync_dir(s);
	if (rc == 0)
		rc = -pthread_create(&s->w.flusher, NULL, txn_flusher, s);
	s->w.has_flusher = rc == 0;
	if (rc < 0)
		sqlite_txn_stop(s);
	return rc;
}

/* Commits what is pending, then removes this mount in a transaction of its own. */
static void txn_unregister(struct sqlite_bk *s)
{
	struct sqlite_writer *w = &s->w;
	int rc;

	pthread_mutex_lock(&w->lock);
	if (atomic_load(&w->is_open))
		batch_commit(s);
	rc = batch_open(s);
	if (rc == 0)
		rc = sqlite_mount_unregister(s, &w->conn);
	if (rc == 0)
		batch_commit(s);
	else if (atomic_load(&w->is_open))
		batch_lost(s, rc);
	pthread_mutex_unlock(&w->lock);
}

void sqlite_txn_stop(struct sqlite_bk *s)
{
	struct sqlite_writer *w = &s->w;

	pthread_mutex_lock(&w->lock);
	w->is_stopping = true;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	if (w->has_flusher)
		pthread_join(w->flusher, NULL);
	w->has_flusher = false;
	if (w->conn.db && s->mount_id > 0)
		txn_unregister(s);
	sqlite_ckpt_stop(s);
	for (unsigned i = 0; i < s->pool.nconns; i++)
		sqlite_conn_close(&s->pool.conns[i]);
	s->pool.nconns = 0;
	if (w->conn.db)
		sqlite_conn_close(&w->conn);
}
