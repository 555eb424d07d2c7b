/* Two mounts of one SQLite database, observed from client processes that use both: a
 * write through mount A reaches B's mappings (only the pages written are dropped), a
 * truncate through A makes B's mappings past the new end raise SIGBUS, names created,
 * renamed and unlinked through A change in B although B caches names for good
 * (cache=strict), and a file unlinked through A while open in B keeps working in B until
 * closed, as on a local filesystem. B logs the changes as events (cmd=feed-...). Every
 * wait is bounded by WAIT_MS; the data test prints the delays it measured (SHARED_ROUNDS
 * writes). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"
#include "ctlreq.h"
#include "fixture.h"
#include "suite.h"
#include "touch.h"

#define PG	      4096
#define PAGES	      16
#define WAIT_MS	      3000 /* the longest a change may take to reach the other mount */
#define SHARED_ROUNDS 20

static struct mnt a, b;
static char dir[64] = "", db[96];

static void setup(void)
{
	char src[128];

	snprintf(dir, sizeof(dir), "/tmp/check_shared-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(db, sizeof(db), "%s/shared.db", dir);
	snprintf(src, sizeof(src), "sqlite:%s", db);
	fx_mount_or_fail(&a, src, NULL);
	fx_mount_or_fail(&b, src, NULL);
}

static void teardown(void)
{
	const char *suffix[] = { "", "-wal", "-shm" };
	char path[128];

	fx_teardown(&b);
	fx_teardown(&a);
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s%s", db, suffix[i]);
		unlink(path);
	}
	rmdir(dir);
}

static const char *in(const struct mnt *m, const char *rel)
{
	static char buf[2][256];
	static int which;

	which ^= 1;
	return fx_path(m, rel, buf[which], sizeof(buf[which]));
}

/* ---- in client processes ---- */

/* Waits until stat(path) succeeds (want_err 0) or fails with want_err. */
static int wait_stat(const char *path, int want_err)
{
	double end = fx_now_ms() + WAIT_MS;
	struct stat st;

	while (fx_now_ms() < end) {
		int err = stat(path, &st) == 0 ? 0 : errno;

		if (err == want_err)
			return 0;
		usleep(1000);
	}
	return FX_FAIL("%s: stat did not give %s within %d ms", path,
		       want_err ? strerror(want_err) : "success", WAIT_MS);
}

/* A new file rel through A, of PAGES pages of fill, committed; open and mapped through B. */
static int make_shared(const char *rel, char fill, int *fd_a, int *fd_b, char **map)
{
	char buf[PAGES * PG];

	memset(buf, fill, sizeof(buf));
	*fd_a = open(in(&a, rel), O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (*fd_a < 0 || pwrite(*fd_a, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf) ||
	    fsync(*fd_a) < 0)
		return FX_FAIL("%s through A: %s", rel, strerror(errno));
	FX_TRY(wait_stat(in(&b, rel), 0));
	*fd_b = open(in(&b, rel), O_RDWR);
	*map = *fd_b < 0 ? MAP_FAILED : mmap(NULL, sizeof(buf), PROT_READ, MAP_SHARED, *fd_b, 0);
	if (*map == MAP_FAILED)
		return FX_FAIL("%s through B: %s", rel, strerror(errno));
	return fx_expect_fill("B's map", *map, 0, sizeof(buf), fill);
}

static bool resident(char *map, size_t page)
{
	unsigned char v = 0;

	return mincore(map + page * PG, PG, &v) == 0 && (v & 1);
}

/* Writes page p through A and waits for B's mapping to show it: the delay in ms. */
static int write_and_wait(int fd_a, volatile char *map, size_t p, char c, double *ms)
{
	char buf[PG];
	double start, end;

	memset(buf, c, sizeof(buf));
	start = fx_now_ms();
	end = start + WAIT_MS;
	if (pwrite(fd_a, buf, PG, (off_t)(p * PG)) != PG)
		return FX_FAIL("pwrite through A: %s", strerror(errno));
	while (map[p * PG] != c || map[p * PG + PG - 1] != c) {
		if (fx_now_ms() > end)
			return FX_FAIL("page %zu: B's mapping still old after %d ms", p, WAIT_MS);
		usleep(200);
	}
	*ms = fx_now_ms() - start;
	return 0;
}

static int cmp_double(const void *x, const void *y)
{
	double d = *(const double *)x - *(const double *)y;

	return (d > 0) - (d < 0);
}

static int client_data(void *arg)
{
	double ms[SHARED_ROUNDS];
	int fd_a, fd_b;
	char *map;

	FX_TRY(make_shared("data", 'a', &fd_a, &fd_b, &map));
	for (int i = 0; i < SHARED_ROUNDS; i++) {
		size_t p = 1 + (size_t)i % (PAGES - 2);

		FX_TRY(write_and_wait(fd_a, map, p, (char)('b' + i), &ms[i]));
		FX_TRY(fx_expect_fill("B's map", map, p * PG, PG, (char)('b' + i)));
		/* only the page written was dropped */
		if (!resident(map, 0) || !resident(map, PAGES - 1))
			return FX_FAIL("round %d: B's untouched pages were dropped", i);
	}
	qsort(ms, SHARED_ROUNDS, sizeof(ms[0]), cmp_double);
	fprintf(stderr,
		"coherence delay A->B over %d writes: min %.1f ms, median %.1f ms, max %.1f ms\n",
		SHARED_ROUNDS, ms[0], ms[SHARED_ROUNDS / 2], ms[SHARED_ROUNDS - 1]);
	return fx_expect_fill("B's map", map, 0, PG, 'a');
}

/* Whether m's event log holds an event "cmd=cmd target=target ". */
static bool logged(const struct mnt *m, const char *cmd, const char *target)
{
	struct ctl_result res = { 0 };
	char want[160];
	bool found = false;

	snprintf(want, sizeof(want), "cmd=%s target=%s ", cmd, target);
	fx_ctl_ok(m, &res, "log", (char *)NULL);
	for (size_t i = 0; i < res.nkv; i++)
		found |= !strcmp(res.kv[i].key, "event") && strstr(res.kv[i].value, want);
	ctl_result_free(&res);
	return found;
}

START_TEST(test_write_reaches_mapping)
{
	fx_run_child(client_data, NULL);
	ck_assert_msg(logged(&b, "feed-write", "data"), "B logged no feed-write of data");
	ck_assert_msg(!logged(&a, "feed-write", "data"), "A logged its own write as a change");
}
END_TEST

static int client_truncate(void *arg)
{
	double end = fx_now_ms() + WAIT_MS;
	int fd_a, fd_b, rc;
	struct stat st;
	char *map, c;

	FX_TRY(make_shared("trunc", 'c', &fd_a, &fd_b, &map));
	if (ftruncate(fd_a, PG) < 0)
		return FX_FAIL("ftruncate through A: %s", strerror(errno));
	while ((rc = touch_copy(&c, map + 8 * PG, 1, NULL)) == 0 && fx_now_ms() < end)
		usleep(1000);
	if (rc != TOUCH_SIGBUS)
		return FX_FAIL("B's mapping past the new end: no SIGBUS within %d ms", WAIT_MS);
	FX_TRY(fx_expect_sigbus("B's map", map, PAGES * PG - 1, false));
	FX_TRY(fx_expect_fill("B's map", map, 0, PG, 'c'));
	if (fstat(fd_b, &st) < 0 || st.st_size != PG)
		return FX_FAIL("fstat through B: size %lld, want %d", (long long)st.st_size, PG);
	return 0;
}

START_TEST(test_truncate_sigbus)
{
	ck_assert_int_eq(touch_setup(), 0);
	fx_run_child(client_truncate, NULL);
	ck_assert_msg(logged(&b, "feed-truncate", "trunc"), "B logged no feed-truncate");
}
END_TEST

static int client_names(void *arg)
{
	int fd = open(in(&a, "n1"), O_CREAT | O_WRONLY, 0644);

	if (fd < 0)
		return FX_FAIL("create n1 through A: %s", strerror(errno));
	close(fd);
	FX_TRY(wait_stat(in(&b, "n1"), 0));
	FX_TRY(wait_stat(in(&b, "n2"), ENOENT)); /* B caches the negative entry */
	if (rename(in(&a, "n1"), in(&a, "n2")) < 0)
		return FX_FAIL("rename through A: %s", strerror(errno));
	FX_TRY(wait_stat(in(&b, "n1"), ENOENT));
	FX_TRY(wait_stat(in(&b, "n2"), 0));
	if (unlink(in(&a, "n2")) < 0)
		return FX_FAIL("unlink through A: %s", strerror(errno));
	return wait_stat(in(&b, "n2"), ENOENT);
}

START_TEST(test_names)
{
	fx_run_child(client_names, NULL);
}
END_TEST

/* Local-filesystem semantics: the open file keeps its bytes, takes writes and reports
 * nlink 0 in B until B closes it, whatever A does meanwhile. */
static int client_unlink_open(void *arg)
{
	char buf[PAGES * PG];
	int fd_a, fd_b;
	struct stat st;
	char *map;

	FX_TRY(make_shared("open", 'o', &fd_a, &fd_b, &map));
	close(fd_a);
	if (unlink(in(&a, "open")) < 0)
		return FX_FAIL("unlink through A: %s", strerror(errno));
	FX_TRY(wait_stat(in(&b, "open"), ENOENT));
	usleep(300 * 1000); /* A's kernel forgets the inode; A's batch commits */
	memset(buf, 'o', sizeof(buf));
	FX_TRY(fx_expect_pread("B's fd", fd_b, buf, 0, sizeof(buf)));
	FX_TRY(fx_expect_fill("B's map", map, 0, sizeof(buf), 'o'));
	if (pwrite(fd_b, "new", 3, PG) != 3 || fsync(fd_b) < 0)
		return FX_FAIL("write through B's fd: %s", strerror(errno));
	memcpy(buf + PG, "new", 3);
	FX_TRY(fx_expect_pread("B's fd", fd_b, buf, 0, sizeof(buf)));
	if (fstat(fd_b, &st) < 0 || st.st_nlink != 0)
		return FX_FAIL("fstat through B: nlink %lu, want 0", (unsigned long)st.st_nlink);
	munmap(map, sizeof(buf));
	close(fd_b);
	return 0;
}

START_TEST(test_unlink_while_open)
{
	fx_run_child(client_unlink_open, NULL);
}
END_TEST

static Suite *shared_suite(void)
{
	Suite *s = suite_create("shared");

	FX_ADD_TESTS(fx_tcase(s, "two_mounts", 120, setup, teardown, NULL),
		     test_write_reaches_mapping, test_truncate_sigbus, test_names,
		     test_unlink_while_open);
	return s;
}

int main(void)
{
	fx_require_fuse();
	fx_require_sqlite_run();
	return fx_run_suite(shared_suite());
}
