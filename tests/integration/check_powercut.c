/* The power cut on a mount made with -o powercut: what clients had not made durable
 * (fsync, fdatasync, msync(MS_SYNC), the sync command) is lost, content and size, dirty
 * mapped pages included; the mount (or the file) behaves as unplugged (revoked) until
 * replug; then new opens see the durable state. Names are durable at once: a file created
 * and written but never synced comes back empty. Also sync, the unsynced counters of stats,
 * torn writes (a prefix persists, the tail stays lost through fsync), and the refusal on
 * a mount that does not track durability. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"
#include "ctlreq.h"
#include "fixture.h"

#define PG 4096

static struct mnt mnt;

#define P(rel)		       fx_work_path(rel)
#define R(rel)		       fx_work_rel(rel)
#define CTL_OK(res, ...)       fx_ctl_ok(&mnt, (res), __VA_ARGS__, (char *)NULL)
#define CTL_ERR(res, err, ...) fx_ctl_err(&mnt, (res), (err), __VA_ARGS__, (char *)NULL)

static void setup_tracking(void)
{
	fx_mount_or_fail(&mnt, "mem:64M", "powercut");
}

static void setup_plain(void)
{
	fx_mount_or_fail(&mnt, "mem:64M", NULL);
}

static void teardown(void)
{
	fx_teardown(&mnt);
}

/* path holds npages pages of val, made durable with fsync. */
static void make_durable(const char *path, int npages, char val)
{
	char page[PG];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	memset(page, val, sizeof(page));
	for (int i = 0; i < npages; i++)
		ck_assert_int_eq(pwrite(fd, page, PG, (off_t)i * PG), PG);
	ck_assert_int_eq(fsync(fd), 0);
	close(fd);
}

/* Writes len bytes of val at off of path with one pwrite, then fsync if is_synced. */
static void write_one(const char *path, off_t off, size_t len, char val, bool is_synced)
{
	char *buf = malloc(len);
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

	ck_assert_msg(buf && fd >= 0, "open %s: %s", path, strerror(errno));
	memset(buf, val, len);
	ck_assert_int_eq(pwrite(fd, buf, len, off), (ssize_t)len);
	if (is_synced)
		ck_assert_int_eq(fsync(fd), 0);
	close(fd);
	free(buf);
}

/* Writes len bytes of val at off of path, not synced. */
static void write_unsynced(const char *path, off_t off, size_t len, char val)
{
	write_one(path, off, len, val, false);
}

static off_t size_of(const char *path)
{
	return fx_lstat(path).st_size;
}

/* ---- the whole mount ---- */

/* A client with a shared mapping of c, dirtied and never synced, and a descriptor of a:
 * after the power cut, the mapping raises SIGBUS and the descriptor fails with EIO. */
static int cut_observer(int sock, const void *arg)
{
	int fd = open(P("a"), O_RDONLY | O_CLOEXEC), cfd = open(P("c"), O_RDWR | O_CLOEXEC);
	volatile char *map;
	char buf[16];

	if (fd < 0 || cfd < 0)
		return FX_FAIL("open a, c: %s", strerror(errno));
	map = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, cfd, 0);
	if (map == MAP_FAILED)
		return FX_FAIL("mmap c: %s", strerror(errno));
	FX_TRY(fx_write_bytes("c shared", map, PG, "ZZZZ", 4));
	FX_TRY(fx_peer_wait_go(sock));
	FX_TRY(fx_expect_sigbus("c shared, after the power cut", map, 0, false));
	FX_TRY(fx_expect_sigbus("c shared, after the power cut", map, PG, false));
	return fx_expect_err(pread(fd, buf, sizeof(buf), 0), EIO, "pread of a after the cut");
}

START_TEST(test_mount_loses_unsynced)
{
	struct ctl_result res = { 0 };
	struct fx_peer o;

	make_durable(P("a"), 2, 'a');
	write_unsynced(P("a"), 0, 100, 'X');	 /* an overwrite */
	write_unsynced(P("a"), 2 * PG, PG, 'Y'); /* an append */
	write_unsynced(P("b"), 0, 10, 'b');	 /* a new file, never synced */
	make_durable(P("c"), 2, 'c');
	fx_peer_start(&o, cut_observer, NULL);
	CTL_OK(&res, "stats");
	ck_assert_int_ge(fx_ctl_num(&res, "unsynced_files"), 2);
	ck_assert_int_ge(fx_ctl_num(&res, "unsynced_bytes"), PG + PG);
	CTL_OK(&res, "powercut");
	ck_assert_int_ge(fx_ctl_num(&res, "files"), 2);
	fx_peer_step(&o);
	fx_peer_finish(&o);
	CTL_OK(&res, "stats");
	ck_assert_int_eq(fx_ctl_num(&res, "unsynced_files"), 0);
	CTL_OK(&res, "replug");
	ck_assert_int_eq(size_of(P("a")), 2 * PG);
	fx_expect_range(P("a"), 0, 2 * PG, 'a');
	ck_assert_int_eq(size_of(P("b")), 0); /* the name survives, its data does not */
	fx_expect_range(P("c"), 0, 2 * PG, 'c');
	ctl_result_free(&res);
}
END_TEST

/* msync(MS_SYNC) of a shared mapping makes its pages durable; a shrink not synced is
 * undone, bytes and size. */
static int map_and_msync(void *arg)
{
	int fd = open(P("d"), O_RDWR | O_CLOEXEC);
	volatile char *map =
		fd < 0 ? MAP_FAILED : mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	(void)arg;
	if (map == MAP_FAILED)
		return FX_FAIL("map d: %s", strerror(errno));
	FX_TRY(fx_write_bytes("d shared", map, 0, "MMMM", 4));
	if (msync((void *)map, PG, MS_SYNC) < 0)
		return FX_FAIL("msync: %s", strerror(errno));
	munmap((void *)map, PG);
	close(fd);
	return 0;
}

START_TEST(test_msync_and_shrink)
{
	struct ctl_result res = { 0 };
	char want[PG];

	make_durable(P("d"), 1, 'd');
	fx_run_child(map_and_msync, NULL);
	make_durable(P("e"), 3, 'e');
	ck_assert_int_eq(truncate(P("e"), PG), 0);
	CTL_OK(&res, "powercut");
	CTL_OK(&res, "replug");
	memset(want, 'd', sizeof(want));
	memcpy(want, "MMMM", 4);
	ck_assert_mem_eq(fx_slurp(P("d")), want, 4);
	fx_expect_range(P("d"), 4, PG - 4, 'd');
	ck_assert_int_eq(size_of(P("e")), 3 * PG);
	fx_expect_range(P("e"), 0, 3 * PG, 'e');
	ctl_result_free(&res);
}
END_TEST

/* ---- one file; sync ---- */

START_TEST(test_file_cut_leaves_others)
{
	struct ctl_result res = { 0 };
	char buf[8];
	int fd;

	make_durable(P("f"), 1, 'f');
	make_durable(P("g"), 1, 'g');
	write_unsynced(P("f"), 0, PG, 'F');
	write_unsynced(P("g"), 0, PG, 'G');
	fd = open(P("f"), O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	CTL_OK(&res, "stats", R("f"));
	ck_assert_int_eq(fx_ctl_num(&res, "unsynced_files"), 1);
	ck_assert_int_eq(fx_ctl_num(&res, "unsynced_bytes"), PG);
	CTL_OK(&res, "powercut", R("f"));
	ck_assert_int_eq(fx_ctl_num(&res, "files"), 1);
	ck_assert_int_eq(pread(fd, buf, sizeof(buf), 0), -1);
	ck_assert_int_eq(errno, EIO);
	close(fd);
	fx_expect_range(P("g"), 0, PG, 'G'); /* the rest of the mount kept its power */
	CTL_OK(&res, "replug");
	fx_expect_range(P("f"), 0, PG, 'f');
	ctl_result_free(&res);
}
END_TEST

START_TEST(test_sync_is_a_checkpoint)
{
	struct ctl_result res = { 0 };

	make_durable(P("h"), 1, 'h');
	write_unsynced(P("h"), 0, PG, 'H');
	write_unsynced(P("h"), PG, 10, 'H');
	CTL_OK(&res, "sync");
	ck_assert_int_ge(fx_ctl_num(&res, "files"), 1);
	ck_assert_int_ge(fx_ctl_num(&res, "bytes"), PG + 10);
	CTL_OK(&res, "stats", R("h"));
	ck_assert_int_eq(fx_ctl_num(&res, "unsynced_files"), 0);
	write_unsynced(P("h"), 0, 1, 'z');
	CTL_OK(&res, "powercut");
	CTL_OK(&res, "replug");
	ck_assert_int_eq(size_of(P("h")), PG + 10);
	fx_expect_range(P("h"), 0, PG + 10, 'H');
	ctl_result_free(&res);
}
END_TEST

/* An out-of-band write is the storage's own: it makes the file durable first. */
START_TEST(test_event_write_is_durable)
{
	struct ctl_result res = { 0 };

	make_durable(P("k"), 1, 'k');
	write_unsynced(P("k"), 0, 10, 'K');
	CTL_OK(&res, "write", R("k"), "100", "--pattern", "w", "--len", "10");
	CTL_OK(&res, "stats", R("k"));
	ck_assert_int_eq(fx_ctl_num(&res, "unsynced_files"), 0);
	CTL_OK(&res, "powercut");
	CTL_OK(&res, "replug");
	fx_expect_range(P("k"), 0, 10, 'K');
	fx_expect_range(P("k"), 100, 10, 'w');
	ctl_result_free(&res);
}
END_TEST

/* ---- torn writes ---- */

static void cut_and_replug(void)
{
	struct ctl_result res = { 0 };

	CTL_OK(&res, "powercut");
	CTL_OK(&res, "replug");
	ctl_result_free(&res);
}

/* --bytes: the first N bytes of the next write persist without a sync, the rest of it
 * does not; clients read the whole write until the power cut. */
START_TEST(test_torn_bytes)
{
	struct ctl_result res = { 0 };

	make_durable(P("t"), 2, 'a');
	CTL_OK(&res, "torn", R("t"), "--bytes", "100");
	write_unsynced(P("t"), 1000, 3000, 'X');
	fx_expect_range(P("t"), 1000, 3000, 'X');
	cut_and_replug();
	ck_assert_int_eq(size_of(P("t")), 2 * PG);
	fx_expect_range(P("t"), 0, 1000, 'a');
	fx_expect_range(P("t"), 1000, 100, 'X');
	fx_expect_range(P("t"), 1100, 2 * PG - 1100, 'a');
	ctl_result_free(&res);
}
END_TEST

/* It fires once, on the first write; the tail stays lost through fsync while the writes
 * after it become durable; rules lists it until it fires; the log names the write. */
START_TEST(test_torn_once_tail_survives_fsync)
{
	struct ctl_result res = { 0 };

	make_durable(P("t"), 2, 'a');
	CTL_OK(&res, "clear"); /* what earlier tests of this mount left */
	CTL_OK(&res, "torn", R("t"), "--bytes", "10");
	ck_assert_int_ge(fx_ctl_num(&res, "id"), 1);
	CTL_OK(&res, "rules");
	ck_assert_str_eq(res.text, "1 rule");
	write_one(P("t"), 0, 100, 'X', false);
	CTL_OK(&res, "rules");
	ck_assert_str_eq(res.text, "0 rules");
	write_one(P("t"), 200, 100, 'Y', true);
	CTL_OK(&res, "log");
	ck_assert_msg(fx_log_has(&res, "cmd=torn", "off=0 len=100 kept=10 lost=90"),
		      "the log does not record the torn write");
	cut_and_replug();
	fx_expect_range(P("t"), 0, 10, 'X');
	fx_expect_range(P("t"), 10, 190, 'a');
	fx_expect_range(P("t"), 200, 100, 'Y');
	fx_expect_range(P("t"), 300, 2 * PG - 300, 'a');
	ctl_result_free(&res);
}
END_TEST

/* --pages with a range: writes outside it pass; the first write that overlaps it keeps
 * the part in its first page (page-aligned in the file: a partial page here). */
START_TEST(test_torn_pages_range)
{
	struct ctl_result res = { 0 };

	make_durable(P("t"), 4, 'a');
	CTL_OK(&res, "torn", R("t"), "8K", "4K", "--pages", "1");
	write_one(P("t"), 0, 100, 'Y', true); /* outside the range: not torn */
	write_one(P("t"), PG + 2048, 2 * PG, 'X', true);
	fx_expect_range(P("t"), PG + 2048, 2 * PG, 'X');
	cut_and_replug();
	ck_assert_int_eq(size_of(P("t")), 4 * PG);
	fx_expect_range(P("t"), 0, 100, 'Y');
	fx_expect_range(P("t"), 100, PG + 2048 - 100, 'a');
	fx_expect_range(P("t"), PG + 2048, 2048, 'X');
	fx_expect_range(P("t"), 2 * PG, 2 * PG, 'a');
	ctl_result_free(&res);
}
END_TEST

/* An append torn after one page: without a sync the file ends after that page; with
 * fsync the size is durable and the lost tail reads as zeros, as it was before. */
START_TEST(test_torn_append)
{
	struct ctl_result res = { 0 };

	make_durable(P("u"), 1, 'u');
	make_durable(P("v"), 1, 'v');
	CTL_OK(&res, "torn", R("u"), "--pages", "1");
	CTL_OK(&res, "torn", R("v"), "--pages", "1");
	write_one(P("u"), PG, 2 * PG + 10, 'X', false);
	write_one(P("v"), PG, 2 * PG + 10, 'X', true);
	cut_and_replug();
	ck_assert_int_eq(size_of(P("u")), 2 * PG);
	fx_expect_range(P("u"), 0, PG, 'u');
	fx_expect_range(P("u"), PG, PG, 'X');
	ck_assert_int_eq(size_of(P("v")), 3 * PG + 10);
	fx_expect_range(P("v"), 0, PG, 'v');
	fx_expect_range(P("v"), PG, PG, 'X');
	fx_expect_range(P("v"), 2 * PG, PG + 10, 0);
	ctl_result_free(&res);
}
END_TEST

/* With a trigger, the power goes at the fsync that follows the torn write: the fsync fails
 * and only the write's first page survives. */
START_TEST(test_torn_then_cut_at_fsync)
{
	struct ctl_result res = { 0 };
	char buf[2 * PG];
	int fd;

	make_durable(P("t"), 2, 'a');
	CTL_OK(&res, "torn", R("t"), "--pages", "1");
	CTL_OK(&res, "on", "fsync", R("t"), "do", "powercut");
	fd = open(P("t"), O_WRONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	memset(buf, 'X', sizeof(buf));
	ck_assert_int_eq(pwrite(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	ck_assert_int_eq(fsync(fd), -1);
	ck_assert_int_eq(errno, EIO);
	close(fd);
	CTL_OK(&res, "replug");
	fx_expect_range(P("t"), 0, PG, 'X');
	fx_expect_range(P("t"), PG, PG, 'a');
	ctl_result_free(&res);
}
END_TEST

/* A trigger arms the rule: the third write is the torn one. */
START_TEST(test_torn_third_write)
{
	struct ctl_result res = { 0 };
	const char vals[] = "ABCD";
	char buf[100];
	int fd;

	make_durable(P("t"), 1, 'a');
	CTL_OK(&res, "on", "write", R("t"), "--after", "3", "do", "torn", R("t"), "--bytes", "5");
	fd = open(P("t"), O_WRONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	for (int i = 0; i < 4; i++) {
		memset(buf, vals[i], sizeof(buf));
		ck_assert_int_eq(pwrite(fd, buf, sizeof(buf), i * 100), (ssize_t)sizeof(buf));
	}
	ck_assert_int_eq(fsync(fd), 0);
	close(fd);
	CTL_OK(&res, "rules");
	ck_assert_str_eq(res.text, "0 rules");
	cut_and_replug();
	fx_expect_range(P("t"), 0, 100, 'A');
	fx_expect_range(P("t"), 100, 100, 'B');
	fx_expect_range(P("t"), 200, 5, 'C');
	fx_expect_range(P("t"), 205, 95, 'a');
	fx_expect_range(P("t"), 300, 100, 'D');
	fx_expect_range(P("t"), 400, PG - 400, 'a');
	ctl_result_free(&res);
}
END_TEST

/* The kernel's writeback of a dirty mapped page is a write: msync tears it. */
static int map_dirty_msync(void *arg)
{
	int fd = open(P("m"), O_RDWR | O_CLOEXEC);
	char *map = fd < 0 ? MAP_FAILED : mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	(void)arg;
	if (map == MAP_FAILED)
		return FX_FAIL("map m: %s", strerror(errno));
	memset(map, 'M', PG);
	if (msync(map, PG, MS_SYNC) < 0)
		return FX_FAIL("msync: %s", strerror(errno));
	munmap(map, PG);
	close(fd);
	return 0;
}

START_TEST(test_torn_mapped_writeback)
{
	struct ctl_result res = { 0 };

	make_durable(P("m"), 1, 'm');
	CTL_OK(&res, "torn", R("m"), "--bytes", "16");
	fx_run_child(map_dirty_msync, NULL);
	cut_and_replug();
	fx_expect_range(P("m"), 0, 16, 'M');
	fx_expect_range(P("m"), 16, PG - 16, 'm');
	ctl_result_free(&res);
}
END_TEST

/* The sync command and an out-of-band write make the whole torn write durable. */
START_TEST(test_torn_checkpoint)
{
	struct ctl_result res = { 0 };

	make_durable(P("t"), 1, 'a');
	make_durable(P("w"), 1, 'a');
	CTL_OK(&res, "torn", R("t"), "--bytes", "10");
	CTL_OK(&res, "torn", R("w"), "--bytes", "10");
	write_one(P("t"), 0, 100, 'X', true);
	write_one(P("w"), 0, 100, 'X', true);
	CTL_OK(&res, "sync", R("t"));
	CTL_OK(&res, "write", R("w"), "1000", "w");
	cut_and_replug();
	fx_expect_range(P("t"), 0, 100, 'X');
	fx_expect_range(P("w"), 0, 100, 'X');
	fx_expect_range(P("w"), 1000, 1, 'w');
	ctl_result_free(&res);
}
END_TEST

/* ---- without -o powercut ---- */

START_TEST(test_untracked_mount_refuses)
{
	struct ctl_result res = { 0 };

	make_durable(P("t"), 1, 't');
	CTL_ERR(&res, EOPNOTSUPP, "torn", R("t"), "--bytes", "1");
	ck_assert_ptr_nonnull(strstr(res.text, "-o powercut"));
	CTL_ERR(&res, EOPNOTSUPP, "on", "write", R("t"), "do", "torn", R("t"), "--bytes", "1");
	ck_assert_ptr_nonnull(strstr(res.text, "-o powercut"));
	CTL_OK(&res, "rules"); /* neither left a rule behind */
	ck_assert_str_eq(res.text, "0 rules");

	CTL_ERR(&res, EOPNOTSUPP, "powercut");
	ck_assert_ptr_nonnull(strstr(res.text, "-o powercut"));
	CTL_ERR(&res, EOPNOTSUPP, "sync");
	CTL_OK(&res, "stats");
	ck_assert_ptr_null(ctl_result_get(&res, "unsynced_files"));
	ctl_result_free(&res);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("powercut");
	TCase *tc;

	fx_require_fuse();
	tc = fx_tcase(s, "powercut", 120, setup_tracking, teardown, fx_enter_workdir);
	FX_ADD_TESTS(tc, test_mount_loses_unsynced, test_msync_and_shrink,
		     test_file_cut_leaves_others, test_sync_is_a_checkpoint,
		     test_event_write_is_durable);
	tc = fx_tcase(s, "torn", 120, setup_tracking, teardown, fx_enter_workdir);
	FX_ADD_TESTS(tc, test_torn_bytes, test_torn_once_tail_survives_fsync, test_torn_pages_range,
		     test_torn_append, test_torn_then_cut_at_fsync, test_torn_third_write,
		     test_torn_mapped_writeback, test_torn_checkpoint);
	tc = fx_tcase(s, "untracked", 60, setup_plain, teardown, fx_enter_workdir);
	FX_ADD_TESTS(tc, test_untracked_mount_refuses);
	return fx_run_suite(s);
}
