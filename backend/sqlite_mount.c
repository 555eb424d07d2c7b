/* Mounts and orphans of the sqlite backend: each mount has a row in mounts with a
 * heartbeat; an inode a mount holds open (sqlite_fopen()), or whose last name goes while
 * the mount may hold it, gets a row in orphans until that mount forgets it, and an inode
 * without names is freed once no mount holds it. A mount that starts reclaims the
 * rows of dead ones (same host and no such process, or no heartbeat for SQ_DEAD_MS), so
 * a daemon killed with -9 leaves nothing that blocks or leaks. */
#include "sqlite.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SQ_HOST_MAX 256

static int64_t mount_now_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static void mount_host(char *buf, size_t size)
{
	if (gethostname(buf, size) < 0)
		buf[0] = '\0';
	buf[size - 1] = '\0';
}

/* ino is held by mount no more: frees it if no mount holds it and it has no name. */
static int orphan_release(struct sqlite_bk *s, struct sqlite_conn *c, uint64_t ino, int64_t mount)
{
	const struct sqlite_change gone = { .kind = SQ_CH_GONE, .ino = ino };
	struct sqlite_inode in;
	int64_t held;
	int rc = sqlite_exec(c, SQ_ORPHAN_DEL, SQ_ARGS((int64_t)ino, mount));

	if (rc == 0)
		rc = sqlite_query_int(c, SQ_ORPHAN_HELD, SQ_ARGS((int64_t)ino), &held);
	if (rc < 0 || held > 0)
		return rc;
	rc = sqlite_inode_get(c, ino, &in);
	if (rc < 0 || in.nlink > 0)
		return rc == -ENOENT ? 0 : rc;
	rc = sqlite_inode_delete(c, ino);
	if (rc == 0)
		rc = sqlite_change_add(s, c, &gone);
	return rc;
}

/* Releases every inode mount holds and removes its row. */
static int mount_remove(struct sqlite_bk *s, struct sqlite_conn *c, int64_t mount)
{
	int64_t ino;
	int rc;

	while ((rc = sqlite_query_int(c, SQ_ORPHAN_OF_MOUNT, SQ_ARGS(mount), &ino)) == 0) {
		rc = orphan_release(s, c, (uint64_t)ino, mount);
		if (rc < 0)
			return rc;
	}
	if (rc != -ENOENT)
		return rc;
	return sqlite_exec(c, SQ_MOUNT_DEL, SQ_ARGS(mount));
}

static bool mount_is_dead(sqlite3_stmt *st, const char *host, int64_t now)
{
	pid_t pid = (pid_t)sqlite3_column_int64(st, 1);
	const char *its_host = (const char *)sqlite3_column_text(st, 2);
	int64_t beat = sqlite3_column_int64(st, 3);

	if (now - beat > SQ_DEAD_MS)
		return true;
	return its_host && strcmp(its_host, host) == 0 && kill(pid, 0) < 0 && errno == ESRCH;
}

/* The id of one dead mount other than ours, or 0. */
static int mount_find_dead(struct sqlite_bk *s, struct sqlite_conn *c, int64_t *out)
{
	char host[SQ_HOST_MAX];
	int64_t now = mount_now_ms();
	sqlite3_stmt *st;
	int rc = sqlite_stmt(c, SQ_MOUNT_OTHERS, &st);

	*out = 0;
	if (rc < 0)
		return rc;
	mount_host(host, sizeof(host));
	sqlite3_bind_int64(st, 1, s->mount_id);
	while ((rc = sqlite_step(c, st, "list mounts")) == SQLITE_ROW) {
		if (mount_is_dead(st, host, now)) {
			*out = sqlite3_column_int64(st, 0);
			break;
		}
	}
	sqlite3_reset(st);
	return rc < 0 ? rc : 0;
}

static int mount_reclaim(struct sqlite_bk *s, struct sqlite_conn *c)
{
	int64_t dead;
	int rc;

	while ((rc = mount_find_dead(s, c, &dead)) == 0 && dead) {
		bk_logf(&s->log, BK_LOG_INFO,
			"sqlite: %s: reclaiming what mount %lld left (its daemon is gone)", s->path,
			(long long)dead);
		rc = mount_remove(s, c, dead);
		if (rc < 0)
			break;
	}
	return rc;
}

int sqlite_mount_register(struct sqlite_bk *s, struct sqlite_conn *c)
{
	char host[SQ_HOST_MAX];
	sqlite3_stmt *st;
	int64_t seen;
	int rc = sqlite_query_int(c, SQ_CHANGE_LAST, NULL, 0, &seen);

	if (rc == 0)
		rc = sqlite_stmt(c, SQ_MOUNT_ADD, &st);
	if (rc < 0)
		return rc;
	mount_host(host, sizeof(host));
	sqlite3_bind_int64(st, 1, getpid());
	sqlite3_bind_text(st, 2, host, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, mount_now_ms());
	sqlite3_bind_int64(st, 4, seen);
	rc = sqlite_step(c, st, "register the mount");
	sqlite3_reset(st);
	if (rc < 0)
		return rc;
	s->mount_id = sqlite3_last_insert_rowid(c->db);
	atomic_store(&s->feed.seen, seen);
	return mount_reclaim(s, c);
}

int sqlite_mount_unregister(struct sqlite_bk *s, struct sqlite_conn *c)
{
	return mount_remove(s, c, s->mount_id);
}

int sqlite_mount_beat(struct sqlite_bk *s, struct sqlite_conn *c)
{
	int64_t seen;
	int rc = sqlite_feed_seen(s, c, &seen);

	if (rc == 0)
		rc = sqlite_exec(c, SQ_MOUNT_BEAT, SQ_ARGS(s->mount_id, mount_now_ms(), seen));
	if (rc == 0)
		rc = sqlite_exec(c, SQ_CHANGE_TRIM, NULL, 0);
	return rc;
}

int sqlite_orphan_add(struct sqlite_bk *s, struct sqlite_conn *c, uint64_t ino)
{
	return sqlite_exec(c, SQ_ORPHAN_ADD, SQ_ARGS((int64_t)ino, s->mount_id));
}

int sqlite_orphan_forget(struct sqlite_bk *s, struct sqlite_conn *c, uint64_t ino)
{
	return orphan_release(s, c, ino, s->mount_id);
}
