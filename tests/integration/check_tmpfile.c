/* open(O_TMPFILE) on a real mount, observed from forked client processes: a nameless file
 * that reads, writes and maps like any other and is freed on its last close; linkat()
 * giving it a name (then revoke reaches it by that name; before, revoking its directory
 * passes it by); and unplug and replug killing it like every open file, except its COWed
 * private pages, which no path can reach. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "client.h"
#include "ctlreq.h"
#include "fixture.h"

#define PG	  4096
#define NPAGES	  4 /* page i of a test file is filled with FILL(i) */
#define FILE_SIZE (NPAGES * PG)
#define COW_PAGE  1 /* the page written through the MAP_PRIVATE mapping */
#define FILL(i)	  ((char)('A' + (i)))
#define BIG	  (1024 * 1024) /* bytes of the file whose space must come back */
#define SETTLE_MS 2000		/* how long the FORGET of a closed file may take */
#define TMP_MODE  0640

static struct mnt mnt;
static char pattern[FILE_SIZE];

#define P(rel) fx_work_path(rel) /* rel in the running test's directory, for clients */
#define R(rel) fx_work_rel(rel)	 /* the same, relative to the mount root, for commands */

#define CTL_OK(res, ...) fx_ctl_ok(&mnt, (res), __VA_ARGS__, (char *)NULL)

static void setup(void)
{
	for (int i = 0; i < FILE_SIZE; i++)
		pattern[i] = FILL(i / PG);
	umask(022);
	fx_mount_or_fail(&mnt, "mem:64M", NULL);
}

static void teardown(void)
{
	fx_teardown(&mnt);
}

/* ---- checks run inside client processes: each returns 0 or FX_FAIL(...) ---- */

/* A new nameless file in directory dir holding the pattern: its descriptor, or -1 after
 * FX_FAIL. */
static int tmp_open_in(const char *dir, int flags)
{
	int fd = open(dir, O_TMPFILE | O_RDWR | flags, TMP_MODE);

	if (fd < 0)
		return -FX_FAIL("open(O_TMPFILE): %s", strerror(errno));
	if (pwrite(fd, pattern, FILE_SIZE, 0) != FILE_SIZE) {
		close(fd);
		return -FX_FAIL("pwrite to the tmpfile: %s", strerror(errno));
	}
	return fd;
}

/* tmp_open_in() the test's directory. */
static int tmp_open(int flags)
{
	return tmp_open_in(fx_workdir(), flags);
}

/* A regular file of mode TMP_MODE and FILE_SIZE bytes with nlink links. */
static int expect_stat(int fd, nlink_t nlink)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return FX_FAIL("fstat: %s", strerror(errno));
	if (st.st_mode != (S_IFREG | TMP_MODE) || st.st_nlink != nlink || st.st_size != FILE_SIZE)
		return FX_FAIL("fstat: mode %o nlink %ju size %jd, expected %o, %ju, %d",
			       st.st_mode, (uintmax_t)st.st_nlink, (intmax_t)st.st_size,
			       S_IFREG | TMP_MODE, (uintmax_t)nlink, FILE_SIZE);
	return 0;
}

/* The test's directory lists no name. */
static int expect_empty_dir(void)
{
	DIR *d = opendir(fx_workdir());
	struct dirent *e;
	int rc = 0;

	if (!d)
		return FX_FAIL("opendir: %s", strerror(errno));
	while (rc == 0 && (e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			rc = FX_FAIL("the directory lists %s", e->d_name);
	closedir(d);
	return rc;
}

static int map_shared(int fd, volatile char **out)
{
	*out = mmap(NULL, FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	return *out == MAP_FAILED ? FX_FAIL("mmap: %s", strerror(errno)) : 0;
}

/* Nameless, yet a file like any other: stat, pread, a shared mapping written and synced,
 * and a shrink that makes the mapping past the end raise SIGBUS. */
static int tmpfile_io(void *arg)
{
	int fd = tmp_open(0);
	volatile char *p;
	char buf[8];

	(void)arg;
	if (fd < 0)
		return 1;
	FX_TRY(expect_stat(fd, 0));
	FX_TRY(expect_empty_dir());
	FX_TRY(fx_expect_pread("tmpfile", fd, pattern, 0, FILE_SIZE));
	FX_TRY(map_shared(fd, &p));
	for (int i = 0; i < NPAGES; i++)
		FX_TRY(fx_expect_fill("shared mapping", p, (size_t)i * PG, PG, FILL(i)));
	FX_TRY(fx_write_bytes("shared mapping", p, 2 * PG + 5, "mapped", 6));
	if (msync((void *)p, FILE_SIZE, MS_SYNC) < 0)
		return FX_FAIL("msync: %s", strerror(errno));
	if (pread(fd, buf, 6, 2 * PG + 5) != 6 || memcmp(buf, "mapped", 6) != 0)
		return FX_FAIL("pread misses the mapped write");
	if (ftruncate(fd, PG) < 0)
		return FX_FAIL("ftruncate: %s", strerror(errno));
	FX_TRY(fx_expect_fill("shared mapping after the shrink", p, 0, PG, FILL(0)));
	return fx_expect_sigbus("shared mapping past the new end", p, 2 * PG, false);
}

static uint64_t free_bytes(void)
{
	struct statvfs sv;

	ck_assert_int_eq(statvfs(mnt.dir, &sv), 0);
	return (uint64_t)sv.f_bfree * sv.f_frsize;
}

/* A tmpfile of BIG bytes, closed at once. */
static int tmpfile_big(void *arg)
{
	char *buf = calloc(1, BIG);
	int fd = open(fx_workdir(), O_TMPFILE | O_WRONLY, TMP_MODE);
	ssize_t n = fd < 0 ? -1 : pwrite(fd, buf, BIG, 0);

	(void)arg;
	free(buf);
	if (n != BIG)
		return FX_FAIL("write a tmpfile: %s", strerror(errno));
	return close(fd) < 0 ? FX_FAIL("close: %s", strerror(errno)) : 0;
}

START_TEST(test_tmpfile_io)
{
	uint64_t before = free_bytes(), after = 0;

	fx_run_child(tmpfile_io, NULL);
	fx_run_child(tmpfile_big, NULL);
	/* the daemon frees a nameless file when the kernel forgets it, after the last close;
	 * exact only where the backend accounts a limit of its own (mem) */
	for (int i = 0; i < SETTLE_MS / 10 && (after = free_bytes()) < before; i++)
		usleep(10 * 1000);
	if (fx_test_has_limit())
		ck_assert_uint_eq(after, before);
}
END_TEST

/* ---- linkat() ---- */

/* linkat(AT_EMPTY_PATH) names the file; one opened with O_EXCL may never be named. */
static int tmpfile_link(void *arg)
{
	int fd = tmp_open(0), excl = tmp_open(O_EXCL), named;

	(void)arg;
	if (fd < 0 || excl < 0)
		return 1;
	FX_TRY(fx_expect_err(linkat(excl, "", AT_FDCWD, P("never"), AT_EMPTY_PATH), ENOENT,
			     "linkat of an O_EXCL tmpfile"));
	if (linkat(fd, "", AT_FDCWD, P("named"), AT_EMPTY_PATH) < 0)
		return FX_FAIL("linkat: %s", strerror(errno));
	FX_TRY(expect_stat(fd, 1));
	named = open(P("named"), O_RDONLY | O_DIRECT);
	if (named < 0)
		return FX_FAIL("open the linked name: %s", strerror(errno));
	FX_TRY(fx_expect_pread("the linked name (O_DIRECT)", named, pattern, 0, FILE_SIZE));
	close(named);
	close(excl);
	return close(fd) < 0 ? FX_FAIL("close: %s", strerror(errno)) : 0;
}

START_TEST(test_tmpfile_link)
{
	fx_run_child(tmpfile_link, NULL);
	ck_assert_int_eq(fx_lstat(P("named")).st_nlink, 1);
	ck_assert_int_eq(access(P("never"), F_OK), -1);
	fx_expect_range(P("named"), PG, PG, FILL(1));
}
END_TEST

/* ---- revoke and unplug ---- */

/* What a client holds on a tmpfile from before an event. */
struct view {
	int fd;
	volatile char *sh; /* MAP_SHARED, every page read */
	volatile char *pv; /* MAP_PRIVATE, every page read, page COW_PAGE written ('z') */
};

static int view_open(struct view *v, const char *dir)
{
	v->fd = tmp_open_in(dir, 0);
	if (v->fd < 0)
		return 1;
	FX_TRY(map_shared(v->fd, &v->sh));
	v->pv = mmap(NULL, FILE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, v->fd, 0);
	if (v->pv == MAP_FAILED)
		return FX_FAIL("mmap private: %s", strerror(errno));
	for (int i = 0; i < NPAGES; i++) {
		FX_TRY(fx_expect_fill("shared", v->sh, (size_t)i * PG, PG, FILL(i)));
		FX_TRY(fx_expect_fill("private", v->pv, (size_t)i * PG, PG, FILL(i)));
	}
	return fx_write_bytes("private", v->pv, COW_PAGE * PG, "z", 1);
}

/* Every page of the shared mapping and the clean private pages raise SIGBUS; the COWed
 * page raises it too if is_cow_dead; pread and pwrite on the descriptor fail with EIO. */
static int view_dead(const struct view *v, bool is_cow_dead)
{
	char buf[16] = "written";

	for (int i = 0; i < NPAGES; i++) {
		FX_TRY(fx_expect_sigbus("shared", v->sh, (size_t)i * PG + 7, false));
		if (i != COW_PAGE)
			FX_TRY(fx_expect_sigbus("clean private", v->pv, (size_t)i * PG + 7, false));
	}
	if (is_cow_dead)
		FX_TRY(fx_expect_sigbus("COWed private", v->pv, COW_PAGE * PG, false));
	else
		FX_TRY(fx_expect_fill("COWed private", v->pv, COW_PAGE * PG, 1, 'z'));
	FX_TRY(fx_expect_err(pread(v->fd, buf, sizeof(buf), PG), EIO, "pread"));
	return fx_expect_err(pwrite(v->fd, buf, sizeof(buf), PG), EIO, "pwrite");
}

/* A tmpfile named after its views were taken; the test revokes it by that name. */
static int revoke_observer(int sock, const void *arg)
{
	struct view v;
	struct stat st;

	(void)arg;
	FX_TRY(view_open(&v, fx_workdir()));
	if (linkat(v.fd, "", AT_FDCWD, P("named"), AT_EMPTY_PATH) < 0)
		return FX_FAIL("linkat: %s", strerror(errno));
	FX_TRY(fx_peer_wait_go(sock));
	FX_TRY(view_dead(&v, true));
	return fx_expect_err(fstat(v.fd, &st), EIO, "fstat");
}

START_TEST(test_tmpfile_revoke_by_name)
{
	struct ctl_result res = { 0 };
	struct fx_peer o;

	fx_peer_start(&o, revoke_observer, NULL);
	CTL_OK(&res, "revoke", R("named"));
	ck_assert_int_eq(fx_ctl_num(&res, "files"), 1);
	fx_peer_step(&o);
	fx_peer_finish(&o);
	ctl_result_free(&res);
}
END_TEST

/* Nothing reaches a nameless file through its directory: after a revoke of the directory
 * it was made in, its views all work. */
static int revoke_dir_observer(int sock, const void *arg)
{
	struct view v;

	(void)arg;
	FX_TRY(view_open(&v, P("d")));
	FX_TRY(fx_peer_wait_go(sock));
	for (int i = 0; i < NPAGES; i++)
		FX_TRY(fx_expect_fill("shared", v.sh, (size_t)i * PG, PG, FILL(i)));
	FX_TRY(fx_expect_fill("COWed private", v.pv, COW_PAGE * PG, 1, 'z'));
	FX_TRY(fx_expect_pread("the tmpfile", v.fd, pattern, 0, FILE_SIZE));
	return expect_stat(v.fd, 0);
}

START_TEST(test_tmpfile_revoke_dir)
{
	struct ctl_result res = { 0 };
	struct fx_peer o;

	ck_assert_int_eq(mkdir(P("d"), 0755), 0);
	fx_peer_start(&o, revoke_dir_observer, NULL);
	CTL_OK(&res, "revoke", R("d"));
	ck_assert_int_eq(fx_ctl_num(&res, "files"), 0);
	fx_peer_step(&o);
	fx_peer_finish(&o);
	ctl_result_free(&res);
}
END_TEST

/* Unplug kills a nameless file's views but its COWed private page (README, "Known
 * limitations"); after replug they stay dead, fstat too (with no name to look up again,
 * the kernel's inode stays the old generation's, which the daemon fails), and new
 * tmpfiles work. */
static int unplug_observer(int sock, const void *arg)
{
	struct stat st;
	struct view v;
	int fd;

	(void)arg;
	FX_TRY(view_open(&v, fx_workdir()));
	FX_TRY(fx_peer_wait_go(sock));
	FX_TRY(view_dead(&v, false));
	FX_TRY(fx_expect_err(fstat(v.fd, &st), EIO, "fstat"));
	FX_TRY(fx_expect_err(open(fx_workdir(), O_TMPFILE | O_RDWR, TMP_MODE), EIO,
			     "open(O_TMPFILE) while unplugged"));
	FX_TRY(fx_peer_wait_go(sock));
	FX_TRY(view_dead(&v, false));
	FX_TRY(fx_expect_err(fstat(v.fd, &st), EIO, "fstat after replug"));
	fd = tmp_open(0);
	if (fd < 0)
		return 1;
	FX_TRY(fx_expect_pread("a new tmpfile", fd, pattern, 0, FILE_SIZE));
	return expect_stat(fd, 0);
}

START_TEST(test_tmpfile_unplug)
{
	struct ctl_result res = { 0 };
	struct fx_peer o;

	fx_peer_start(&o, unplug_observer, NULL);
	CTL_OK(&res, "unplug");
	fx_peer_step(&o);
	CTL_OK(&res, "replug");
	fx_peer_step(&o);
	fx_peer_finish(&o);
	ctl_result_free(&res);
}
END_TEST

static Suite *tmpfile_suite(void)
{
	Suite *s = suite_create("tmpfile");
	TCase *tc = fx_tcase(s, "tmpfile", 60, setup, teardown, fx_enter_workdir);

	FX_ADD_TESTS(tc, test_tmpfile_io, test_tmpfile_link, test_tmpfile_revoke_by_name,
		     test_tmpfile_revoke_dir);
	/* unplug is for the whole mount: its own, after the others */
	tc = fx_tcase(s, "unplug", 60, setup, teardown, fx_enter_workdir);
	FX_ADD_TESTS(tc, test_tmpfile_unplug);
	return s;
}

int main(void)
{
	fx_require_fuse();
	return fx_run_suite(tmpfile_suite());
}
