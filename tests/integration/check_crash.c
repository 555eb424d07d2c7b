/* Crash safety of the sqlite backend at the daemon's level: CRASH_POINTS times, mount one
 * database, let a client write and fsync files through the mount (new files written in
 * two steps, renamed into place, and pages of one shared file rewritten), note in shared
 * memory each step once its fsync returned, and kill -9 the daemon at a random moment.
 * Each next mount first checks that everything fsynced in every earlier round is there,
 * byte for byte, under its final name; at the end SQLite's PRAGMA integrity_check must
 * say ok. The seed is printed; CRASH_SEED=N replays the same moments. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "fixture.h"
#include "suite.h"

#define CRASH_POINTS 50
#define STEPS_MAX    4096 /* steps a client may note in one round */
#define FILE_LEN     (3 * 4096 + 100)
#define SHARED_PAGES 16
#define PG	     4096
#define KILL_MS_MAX  200 /* the longest a client works before the kill */

/* What the clients fsynced, in memory shared with them: for each round, how many steps
 * completed, and for each page of the shared file the round and step that last wrote it
 * durably. */
struct ledger {
	int steps[CRASH_POINTS];
	int page_round[SHARED_PAGES], page_step[SHARED_PAGES];
	int page_pending[SHARED_PAGES]; /* a write not yet fsynced: either value may be there */
	int pending_round[SHARED_PAGES], pending_step[SHARED_PAGES];
};

static struct ledger *led;
static char dir[64], db[96], src[128];

static char byte_of(int round, int step)
{
	return (char)('A' + (round * 7 + step) % 50);
}

static void name_of(char *buf, size_t size, const struct mnt *m, int round, int step,
		    const char *what)
{
	snprintf(buf, size, "%s/%s-%d-%d", m->dir, what, round, step);
}

/* ---- the client ---- */

static int write_all(int fd, char c, size_t len, off_t off)
{
	char buf[FILE_LEN];

	memset(buf, c, len);
	return pwrite(fd, buf, len, off) == (ssize_t)len ? 0 : -1;
}

/* One step: a new file in two writes, fsynced and renamed into place, the directory
 * fsynced; a page of the shared file rewritten and fsynced. -1 once the mount is gone. */
static int client_step(const struct mnt *m, int round, int step, int shared)
{
	char tmp[256], final[256];
	int p = (round + step) % SHARED_PAGES, fd, dfd;
	char c = byte_of(round, step);

	name_of(tmp, sizeof(tmp), m, round, step, "tmp");
	name_of(final, sizeof(final), m, round, step, "f");
	fd = open(tmp, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	if (fd < 0 || write_all(fd, c, PG, 0) < 0 || write_all(fd, c, FILE_LEN - PG, PG) < 0 ||
	    fsync(fd) < 0 || close(fd) < 0 || rename(tmp, final) < 0)
		return -1;
	dfd = open(m->dir, O_RDONLY | O_DIRECTORY);
	if (dfd < 0 || fsync(dfd) < 0 || close(dfd) < 0)
		return -1;
	led->pending_round[p] = round;
	led->pending_step[p] = step;
	led->page_pending[p] = 1;
	if (write_all(shared, c, PG, (off_t)p * PG) < 0 || fsync(shared) < 0)
		return -1;
	led->page_round[p] = round;
	led->page_step[p] = step;
	led->page_pending[p] = 0;
	led->steps[round] = step + 1;
	return 0;
}

static void client(const struct mnt *m, int round)
{
	char path[256];
	int shared;

	snprintf(path, sizeof(path), "%s/shared", m->dir);
	shared = open(path, O_RDWR);
	for (int step = 0; shared >= 0 && step < STEPS_MAX; step++) {
		if (client_step(m, round, step, shared) < 0)
			break;
	}
	_exit(0);
}

/* ---- the checks, in the test process ---- */

static int check_file(const char *path, char c)
{
	char buf[FILE_LEN + 1];
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : pread(fd, buf, sizeof(buf), 0);

	if (fd >= 0)
		close(fd);
	if (n != FILE_LEN)
		return FX_FAIL("%s: read %zd bytes (%s), want %d", path, n,
			       n < 0 ? strerror(errno) : "short", FILE_LEN);
	for (size_t i = 0; i < FILE_LEN; i++) {
		if (buf[i] != c)
			return FX_FAIL("%s: byte %zu is %#x, want %#x", path, i, buf[i], c);
	}
	return 0;
}

static int check_page(int fd, int p)
{
	char buf[PG], want = byte_of(led->page_round[p], led->page_step[p]);
	char alt = byte_of(led->pending_round[p], led->pending_step[p]);
	bool has_write = led->page_round[p] >= 0;

	if (pread(fd, buf, PG, (off_t)p * PG) != PG)
		return FX_FAIL("shared page %d: %s", p, strerror(errno));
	for (size_t i = 0; i < PG; i++) {
		bool ok = has_write ? buf[i] == want : buf[i] == 0;

		if (!ok && !(led->page_pending[p] && buf[i] == alt))
			return FX_FAIL("shared page %d byte %zu: %#x, fsynced %#x", p, i, buf[i],
				       has_write ? want : 0);
	}
	return 0;
}

/* Everything fsynced before round `upto` is there. */
static int check_fsynced(const struct mnt *m, int upto)
{
	char path[256];
	int fd, rc = 0;

	for (int r = 0; rc == 0 && r < upto; r++) {
		for (int k = 0; rc == 0 && k < led->steps[r]; k++) {
			name_of(path, sizeof(path), m, r, k, "f");
			rc = check_file(path, byte_of(r, k));
		}
	}
	snprintf(path, sizeof(path), "%s/shared", m->dir);
	fd = open(path, O_RDONLY);
	if (rc == 0 && fd < 0)
		rc = FX_FAIL("%s: %s", path, strerror(errno));
	for (int p = 0; rc == 0 && p < SHARED_PAGES; p++)
		rc = check_page(fd, p);
	if (fd >= 0)
		close(fd);
	return rc;
}

static void make_shared_file(const struct mnt *m)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/shared", m->dir);
	fd = open(path, O_CREAT | O_RDWR, 0644);
	ck_assert_msg(fd >= 0 && ftruncate(fd, SHARED_PAGES * PG) == 0 && fsync(fd) == 0, "%s: %s",
		      path, strerror(errno));
	close(fd);
	for (int p = 0; p < SHARED_PAGES; p++)
		led->page_round[p] = -1;
}

/* One kill point: mount, check the rounds before, run the client, kill the daemon. */
static void crash_round(int round, unsigned *seed)
{
	struct mnt m;
	pid_t pid;
	int rc, status;

	fx_fail_clear();
	ck_assert_int_eq(fx_mount(&m, src, NULL), 0);
	if (round == 0)
		make_shared_file(&m);
	if (check_fsynced(&m, round) != 0) {
		fx_umount(&m);
		ck_abort_msg("round %d: %s", round, fx_failure());
	}
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		client(&m, round);
	usleep(1000u * (unsigned)(rand_r(seed) % KILL_MS_MAX));
	kill(m.pid, SIGKILL);
	rc = fx_umount(&m);
	ck_assert_msg(rc == 128 + SIGKILL, "round %d: the daemon ended with %d", round, rc);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
}

static void integrity_check(void)
{
	sqlite3 *conn;
	sqlite3_stmt *st;
	const char *verdict;

	ck_assert_int_eq(sqlite3_open_v2(db, &conn, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(conn, "PRAGMA integrity_check", -1, &st, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	verdict = (const char *)sqlite3_column_text(st, 0);
	ck_assert_msg(verdict && strcmp(verdict, "ok") == 0, "integrity_check: %s", verdict);
	sqlite3_finalize(st);
	sqlite3_close(conn);
}

START_TEST(test_kill_points)
{
	const char *env = getenv("CRASH_SEED");
	unsigned seed = env ? (unsigned)strtoul(env, NULL, 10) : (unsigned)time(NULL);
	int total = 0, rc;
	struct mnt m;

	fprintf(stderr, "CRASH_SEED=%u\n", seed);
	for (int r = 0; r < CRASH_POINTS; r++)
		crash_round(r, &seed);
	fx_fail_clear();
	ck_assert_int_eq(fx_mount(&m, src, NULL), 0);
	rc = check_fsynced(&m, CRASH_POINTS);
	ck_assert_int_eq(fx_umount(&m), 0);
	ck_assert_msg(rc == 0, "after the last kill: %s", fx_failure());
	integrity_check();
	for (int r = 0; r < CRASH_POINTS; r++)
		total += led->steps[r];
	fprintf(stderr, "%d kill points, %d fsynced steps checked\n", CRASH_POINTS, total);
}
END_TEST

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/check_crash-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(db, sizeof(db), "%s/crash.db", dir);
	snprintf(src, sizeof(src), "sqlite:%s", db);
	led = mmap(NULL, sizeof(*led), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(led, MAP_FAILED);
	memset(led, 0, sizeof(*led));
}

static void teardown(void)
{
	const char *suffix[] = { "", "-wal", "-shm" };
	char path[128];

	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s%s", db, suffix[i]);
		unlink(path);
	}
	rmdir(dir);
	munmap(led, sizeof(*led));
}

static Suite *crash_suite(void)
{
	Suite *s = suite_create("crash");

	FX_ADD_TESTS(fx_tcase(s, "sqlite", 240, setup, teardown, NULL), test_kill_points);
	return s;
}

int main(void)
{
	fx_require_fuse();
	fx_require_sqlite_run();
	return fx_run_suite(crash_suite());
}
