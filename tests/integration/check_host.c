/* dir: over a directory in fx_test_dir_root() (the tmpfs /dev/shm by default), changed
 * from outside the mount by the test process itself (the host side), observed through the
 * mount by client processes: a host write reaches a client's mapping (the whole file is
 * dropped: inotify has no byte ranges), a host truncate makes mappings past the new end
 * raise SIGBUS, host creates, renames and deletes change the names the mount shows,
 * writes through the mount are not logged as changes from outside, changes the inotify
 * queue overflowed on still reach the mount (the daemon stopped while the host floods a
 * directory), -o feed_ms gathers a burst, and listings and walks keep no descriptors.
 * The data test prints the delays it measured (HOST_ROUNDS writes): the coherence delay
 * of the README. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "client.h"
#include "ctlreq.h"
#include "fixture.h"
#include "suite.h"
#include "touch.h"

#define PG	       4096
#define PAGES	       16
#define WAIT_MS	       3000 /* the longest a host change may take to reach the mount */
#define HOST_ROUNDS    20
#define WINDOW_MS_TEXT "1000"
#define BURST	       50 /* host writes, BURST_GAP_US apart: a quarter of a second */
#define BURST_GAP_US   5000

#define MANY	 3000 /* entries of the listing test */
#define SIBLINGS 200  /* files beside the one test_feed_path_by_names writes */

static struct mnt mnt;
static char host[PATH_MAX];

static void mount_host(const char *opts)
{
	char src[PATH_MAX + 8];

	snprintf(host, sizeof(host), "%s/check_host-XXXXXX", fx_test_dir_root());
	ck_assert_ptr_nonnull(mkdtemp(host));
	snprintf(src, sizeof(src), "dir:%s", host);
	fx_mount_or_fail(&mnt, src, opts);
}

static void setup(void)
{
	mount_host(NULL);
}

/* Host changes are gathered for WINDOW_MS before the kernel hears of them. */
static void setup_window(void)
{
	mount_host("feed_ms=" WINDOW_MS_TEXT);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	flag == FTW_DP ? rmdir(path) : unlink(path);
	return 0;
}

static void teardown(void)
{
	fx_teardown(&mnt);
	nftw(host, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* rel on the host side (0) or through the mount (1). */
static const char *at(int side, const char *rel)
{
	static char buf[4][PATH_MAX + 64];
	static int which;

	which = (which + 1) % 4;
	if (side == 0)
		snprintf(buf[which], sizeof(buf[which]), "%s/%s", host, rel);
	else
		fx_path(&mnt, rel, buf[which], sizeof(buf[which]));
	return buf[which];
}

/* ---- in client processes ---- */

/* Waits until stat(path) through the mount gives want_err (0: success). */
static int await_stat(const char *path, int want_err)
{
	double end = fx_now_ms() + WAIT_MS;
	struct stat st;

	for (;;) {
		int err = stat(path, &st) == 0 ? 0 : errno;

		if (err == want_err)
			return 0;
		if (fx_now_ms() > end)
			return FX_FAIL("%s: no %s within %d ms", path,
				       want_err ? strerror(want_err) : "success", WAIT_MS);
		usleep(1000);
	}
}

/* rel made on the host, PAGES pages of fill; *fd_host open on it; mapped through the
 * mount at *map. */
static int host_file(const char *rel, char fill, int *fd_host, char **map)
{
	char buf[PAGES * PG];
	int fd;

	memset(buf, fill, sizeof(buf));
	*fd_host = open(at(0, rel), O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (*fd_host < 0 || pwrite(*fd_host, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf))
		return FX_FAIL("%s on the host: %s", rel, strerror(errno));
	fd = open(at(1, rel), O_RDONLY);
	*map = fd < 0 ? MAP_FAILED : mmap(NULL, sizeof(buf), PROT_READ, MAP_SHARED, fd, 0);
	if (fd >= 0)
		close(fd);
	if (*map == MAP_FAILED)
		return FX_FAIL("%s through the mount: %s", rel, strerror(errno));
	return fx_expect_fill("the mapping", *map, 0, sizeof(buf), fill);
}

/* Page p of the host file filled with c. */
static int host_write(int fd_host, size_t p, char c)
{
	char page[PG];

	memset(page, c, sizeof(page));
	if (pwrite(fd_host, page, PG, (off_t)(p * PG)) != PG)
		return FX_FAIL("pwrite on the host: %s", strerror(errno));
	return 0;
}

/* Waits until the mapping shows page p filled with c; *ms: the time since start. */
static int await_page(volatile char *map, size_t p, char c, double start, double *ms)
{
	while (map[p * PG] != c || map[p * PG + PG - 1] != c) {
		if (fx_now_ms() - start > WAIT_MS)
			return FX_FAIL("page %zu: the mapping still old after %d ms", p, WAIT_MS);
		usleep(200);
	}
	*ms = fx_now_ms() - start;
	return 0;
}

/* One host write of page p, then the time until the mapping shows it, in ms. */
static int host_write_seen(int fd_host, volatile char *map, size_t p, char c, double *ms)
{
	double start = fx_now_ms();

	FX_TRY(host_write(fd_host, p, c));
	return await_page(map, p, c, start, ms);
}

static int by_value(const void *x, const void *y)
{
	double d = *(const double *)x - *(const double *)y;

	return (d > 0) - (d < 0);
}

static int client_host_write(void *arg)
{
	double ms[HOST_ROUNDS];
	int fd_host;
	char *map;

	FX_TRY(host_file("data", 'a', &fd_host, &map));
	for (int i = 0; i < HOST_ROUNDS; i++) {
		size_t p = (size_t)i % PAGES;

		FX_TRY(host_write_seen(fd_host, map, p, (char)('b' + i), &ms[i]));
		FX_TRY(fx_expect_fill("the mapping", map, p * PG, PG, (char)('b' + i)));
	}
	qsort(ms, HOST_ROUNDS, sizeof(ms[0]), by_value);
	fprintf(stderr,
		"coherence delay host->mapping over %d writes: min %.1f ms, median %.1f ms, "
		"max %.1f ms\n",
		HOST_ROUNDS, ms[0], ms[HOST_ROUNDS / 2], ms[HOST_ROUNDS - 1]);
	close(fd_host);
	return 0;
}

/* Number of "cmd=cmd target=target " events in the mount's log. */
static int log_count(const char *cmd, const char *target)
{
	struct ctl_result res = { 0 };
	char want[160];
	int n = 0;

	snprintf(want, sizeof(want), "cmd=%s target=%s ", cmd, target);
	fx_ctl_ok(&mnt, &res, "log", (char *)NULL);
	for (size_t i = 0; i < res.nkv; i++)
		n += !strcmp(res.kv[i].key, "event") && strstr(res.kv[i].value, want);
	ctl_result_free(&res);
	return n;
}

/* Whether the mount's event log holds "cmd=cmd target=target ". */
static bool in_log(const char *cmd, const char *target)
{
	return log_count(cmd, target) > 0;
}

START_TEST(test_host_write_reaches_mapping)
{
	fx_run_child(client_host_write, NULL);
	ck_assert_msg(in_log("feed-write", "data"), "no feed-write of data logged");
}
END_TEST

static int client_host_truncate(void *arg)
{
	double end = fx_now_ms() + WAIT_MS;
	int fd_host, rc;
	char *map, c;

	FX_TRY(host_file("trunc", 'c', &fd_host, &map));
	if (ftruncate(fd_host, PG) < 0)
		return FX_FAIL("ftruncate on the host: %s", strerror(errno));
	while ((rc = touch_copy(&c, map + 8 * PG, 1, NULL)) == 0 && fx_now_ms() < end)
		usleep(1000);
	if (rc != TOUCH_SIGBUS)
		return FX_FAIL("the mapping past the new end: no SIGBUS within %d ms", WAIT_MS);
	FX_TRY(fx_expect_sigbus("the mapping", map, PAGES * PG - 1, false));
	close(fd_host);
	return fx_expect_fill("the mapping", map, 0, PG, 'c');
}

START_TEST(test_host_truncate_sigbus)
{
	ck_assert_int_eq(touch_setup(), 0);
	fx_run_child(client_host_truncate, NULL);
	ck_assert_msg(in_log("feed-truncate", "trunc"), "no feed-truncate logged");
}
END_TEST

static int client_host_names(void *arg)
{
	int fd = open(at(0, "n1"), O_CREAT | O_WRONLY, 0644);

	if (fd < 0)
		return FX_FAIL("create n1 on the host: %s", strerror(errno));
	close(fd);
	FX_TRY(await_stat(at(1, "n1"), 0));
	FX_TRY(await_stat(at(1, "n2"), ENOENT)); /* the kernel caches the negative entry */
	if (rename(at(0, "n1"), at(0, "n2")) < 0)
		return FX_FAIL("rename on the host: %s", strerror(errno));
	FX_TRY(await_stat(at(1, "n1"), ENOENT));
	FX_TRY(await_stat(at(1, "n2"), 0));
	if (unlink(at(0, "n2")) < 0)
		return FX_FAIL("unlink on the host: %s", strerror(errno));
	return await_stat(at(1, "n2"), ENOENT);
}

START_TEST(test_host_names)
{
	fx_run_child(client_host_names, NULL);
}
END_TEST

/* inotify's queue limit: more events than this, unread, overflow it. */
static long queue_limit(void)
{
	FILE *f = fopen("/proc/sys/fs/inotify/max_queued_events", "re");
	long n = 0;

	if (f) {
		if (fscanf(f, "%ld", &n) != 1)
			n = 0;
		fclose(f);
	}
	return n > 0 ? n : 16384;
}

/* Files made and removed in the host's flood/, more events than inotify queues. */
static int host_flood(void)
{
	long count = queue_limit() / 2 + 1000;
	char path[PATH_MAX + 32];

	for (long i = 0; i < 2 * count; i++) {
		snprintf(path, sizeof(path), "%s/flood/f%ld", host, i % count);
		if (i < count ? mknod(path, S_IFREG | 0644, 0) < 0 : unlink(path) < 0)
			return FX_FAIL("%s on the host: %s", path, strerror(errno));
	}
	return 0;
}

/* While the daemon is stopped, the host overflows inotify's queue, then writes a mapped
 * file and makes a name the kernel holds as negative: both events are lost with the
 * queue, and the daemon must still bring both to the mount once it runs again. */
static int client_overflow(void *arg)
{
	double ms;
	int fd_host, fd;
	char *map;

	FX_TRY(host_file("ovf", 'a', &fd_host, &map));
	FX_TRY(await_stat(at(1, "late"), ENOENT));
	if (mkdir(at(1, "flood"), 0755) < 0)
		return FX_FAIL("mkdir flood through the mount: %s", strerror(errno));
	if (kill(mnt.pid, SIGSTOP) < 0)
		return FX_FAIL("SIGSTOP to the daemon: %s", strerror(errno));
	FX_TRY(host_flood());
	FX_TRY(host_write(fd_host, 3, 'z'));
	fd = open(at(0, "late"), O_CREAT | O_WRONLY, 0644);
	if (fd >= 0)
		close(fd);
	if (kill(mnt.pid, SIGCONT) < 0 || fd < 0)
		return FX_FAIL("late on the host, or SIGCONT: %s", strerror(errno));
	FX_TRY(await_page(map, 3, 'z', fx_now_ms(), &ms));
	close(fd_host);
	return await_stat(at(1, "late"), 0);
}

START_TEST(test_host_overflow_rescanned)
{
	fx_run_child(client_overflow, NULL);
	ck_assert_msg(in_log("feed-names", "/"), "no feed-names logged after the overflow");
}
END_TEST

/* Writes, truncates and names made through the mount are the mount's own: the host side
 * sees them, and none comes back as a change from outside. */
static int client_own(void *arg)
{
	char buf[PG];
	int fd = open(at(1, "own"), O_RDWR | O_CREAT, 0644);

	memset(buf, 'w', sizeof(buf));
	for (int i = 0; fd >= 0 && i < PAGES; i++) {
		if (pwrite(fd, buf, PG, (off_t)i * PG) != PG)
			return FX_FAIL("pwrite through the mount: %s", strerror(errno));
	}
	if (fd < 0 || ftruncate(fd, PG) < 0 || fsync(fd) < 0)
		return FX_FAIL("own through the mount: %s", strerror(errno));
	close(fd);
	usleep(200 * 1000); /* what the feed would report has come by now */
	fd = open(at(0, "own"), O_RDONLY);
	if (fd < 0)
		return FX_FAIL("own on the host: %s", strerror(errno));
	FX_TRY(fx_expect_pread("own on the host", fd, buf, 0, PG));
	close(fd);
	return 0;
}

START_TEST(test_own_changes_not_fed_back)
{
	fx_run_child(client_own, NULL);
	ck_assert_msg(!in_log("feed-write", "own"), "a write through the mount came back");
	ck_assert_msg(!in_log("feed-truncate", "own"), "a truncate through the mount came back");
	ck_assert_msg(!in_log("feed-create", "own"), "a create through the mount came back");
}
END_TEST

/* A file two directories down, beside SIBLINGS others: a host write reaches its mapping
 * through the path of the names the kernel looked up (no walk of the tree), and after
 * a rename through the mount, which leaves that name wrong, through a walk. */
static int client_deep(void *arg)
{
	double ms;
	int fd_host;
	char *map;

	if (mkdir(at(1, "deep"), 0755) < 0 || mkdir(at(1, "deep/d"), 0755) < 0)
		return FX_FAIL("mkdir through the mount: %s", strerror(errno));
	for (int i = 0; i < SIBLINGS; i++) {
		char rel[32];
		int fd;

		snprintf(rel, sizeof(rel), "deep/d/s%d", i);
		fd = open(at(1, rel), O_CREAT | O_WRONLY, 0644);
		if (fd < 0)
			return FX_FAIL("%s through the mount: %s", rel, strerror(errno));
		close(fd);
	}
	FX_TRY(host_file("deep/d/f", 'a', &fd_host, &map));
	FX_TRY(host_write_seen(fd_host, map, 1, 'b', &ms));
	if (rename(at(1, "deep/d/f"), at(1, "deep/d/g")) < 0)
		return FX_FAIL("rename through the mount: %s", strerror(errno));
	FX_TRY(host_write_seen(fd_host, map, 2, 'c', &ms));
	close(fd_host);
	return 0;
}

START_TEST(test_feed_path_by_names)
{
	struct ctl_result res = { 0 };

	fx_run_child(client_deep, NULL);
	fx_ctl_ok(&mnt, &res, "log", (char *)NULL);
	ck_assert_msg(fx_log_has(&res, "cmd=feed-write target=deep/d/f ", "path=names"),
		      "the write before the rename: its path not from the names");
	ck_assert_msg(fx_log_has(&res, "cmd=feed-write target=deep/d/g ", "path=walk"),
		      "the write after the rename: its path not found by a walk");
	ctl_result_free(&res);
}
END_TEST

/* BURST host writes, each of a page of its own, all of them seen by the mapping. */
static int client_burst(void *arg)
{
	double ms;
	int fd_host;
	char *map;

	FX_TRY(host_file("data", 'a', &fd_host, &map));
	for (int i = 0; i < BURST; i++) {
		FX_TRY(host_write(fd_host, (size_t)i % PAGES, (char)('b' + i % PAGES)));
		usleep(BURST_GAP_US);
	}
	for (int p = 0; p < PAGES; p++) {
		char want = (char)('b' + (BURST - PAGES + p) % PAGES);

		FX_TRY(await_page(map, (size_t)((BURST - PAGES + p) % PAGES), want, fx_now_ms(),
				  &ms));
	}
	close(fd_host);
	return 0;
}

/* -o feed_ms=1000: the burst, well under a second, reaches the kernel as one change or
 * two (three if the machine stretches it past a second); read at once, each write of it
 * would be one. */
START_TEST(test_feed_window_gathers)
{
	int n;

	fx_run_child(client_burst, NULL);
	n = log_count("feed-write", "data");
	fprintf(stderr, "%d host writes %d us apart: %d feed-write events\n", BURST, BURST_GAP_US,
		n);
	ck_assert_int_le(n, 3);
}
END_TEST

/* The daemon's open descriptors. */
static int daemon_fds(void)
{
	char path[64];
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)mnt.pid);
	d = opendir(path);
	ck_assert_ptr_nonnull(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static int client_list(void *arg)
{
	char buf[32768];
	int fd = open(at(1, "many"), O_RDONLY | O_DIRECTORY), n = 0;
	long got;

	if (fd < 0)
		return FX_FAIL("open many: %s", strerror(errno));
	while ((got = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
		for (long pos = 0; pos < got; n++)
			pos += ((struct dirent64 *)(buf + pos))->d_reclen;
	}
	close(fd);
	if (got < 0 || n != MANY + 2)
		return FX_FAIL("getdents64: %d entries, %s", n, got < 0 ? strerror(errno) : "");
	return 0;
}

/* MANY files made on the host in directory dir. */
static void make_many(const char *dir)
{
	char rel[32];

	ck_assert_int_eq(mkdir(at(0, dir), 0755), 0);
	for (int i = 0; i < MANY; i++) {
		snprintf(rel, sizeof(rel), "%s/f%04d", dir, i);
		close(open(at(0, rel), O_CREAT | O_WRONLY, 0644));
	}
}

/* A listing of names the kernel keeps no reference to (readdir without "plus": all but
 * the first batch, when nothing is looked up) leaves the daemon no descriptor per name. */
START_TEST(test_listing_keeps_no_descriptors)
{
	int before;

	make_many("many");
	before = daemon_fds();
	fx_run_child(client_list, NULL);
	ck_assert_msg(daemon_fds() - before < MANY / 2,
		      "%d descriptors more after listing %d names", daemon_fds() - before, MANY);
}
END_TEST

/* The daemon's own walks of the tree (unplug and replug walk all of it) leave it no
 * descriptor per name either. */
START_TEST(test_walk_keeps_no_descriptors)
{
	struct ctl_result res = { 0 };
	int before;

	make_many("walked");
	before = daemon_fds();
	fx_ctl_ok(&mnt, &res, "unplug", (char *)NULL);
	ctl_result_free(&res);
	fx_ctl_ok(&mnt, &res, "replug", (char *)NULL);
	ctl_result_free(&res);
	ck_assert_msg(daemon_fds() - before < MANY / 2, "%d descriptors more after unplug, replug",
		      daemon_fds() - before);
}
END_TEST

static Suite *host_suite(void)
{
	Suite *s = suite_create("host");

	FX_ADD_TESTS(fx_tcase(s, "outside", 120, setup, teardown, NULL),
		     test_host_write_reaches_mapping, test_host_truncate_sigbus, test_host_names,
		     test_own_changes_not_fed_back, test_host_overflow_rescanned,
		     test_listing_keeps_no_descriptors, test_walk_keeps_no_descriptors,
		     test_feed_path_by_names);
	FX_ADD_TESTS(fx_tcase(s, "window", 60, setup_window, teardown, NULL),
		     test_feed_window_gathers);
	return s;
}

int main(void)
{
	fx_require_fuse();
	return fx_run_suite(host_suite());
}
