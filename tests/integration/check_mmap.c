/* Mapped files on a real sigbusfs mount, observed from forked client processes: shared
 * writes reaching the daemon through msync, SIGBUS and zeroed tails after another process
 * shrinks a mapped file, zeros (never old bytes) after regrowth, and MAP_PRIVATE copies
 * against write(2) from elsewhere. Server-side events (sigbusctl) are tested elsewhere. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

#define PG 4096

static struct mnt mnt;
static int teardown_failures;
static char workdir[PATH_MAX]; /* this test's own directory in the mount */

static const char *P(const char *rel)
{
	static char bufs[4][PATH_MAX];
	static unsigned next;
	char *b = bufs[next++ % 4];
	int n = snprintf(b, PATH_MAX, "%s/%s", workdir, rel);

	ck_assert(n > 0 && n < PATH_MAX);
	return b;
}

static void enter_workdir(void)
{
	static unsigned n; /* with CK_FORK=no, tests share one process */
	char rel[32];

	snprintf(rel, sizeof(rel), "t%d-%u", (int)getpid(), n++);
	fx_path(&mnt, rel, workdir, sizeof(workdir));
	ck_assert_msg(mkdir(workdir, 0755) == 0, "mkdir %s: %s", workdir, strerror(errno));
}

static void setup(void)
{
	int rc = fx_mount(&mnt, "mem:", NULL);

	ck_assert_msg(rc == 0, "fx_mount: %s", strerror(-rc));
}

static void teardown(void)
{
	int rc = fx_umount(&mnt);

	if (rc != 0) {
		fprintf(stderr, "teardown: the daemon ended with %d, expected a clean exit 0\n",
			rc);
		teardown_failures++;
	}
}

/* Writes a file whose page i is filled with fill[i]; size may end inside the last page. */
static void make_file(const char *path, const char *fill, size_t size)
{
	char *buf = malloc(size);
	int rc;

	for (size_t i = 0; i < size; i++)
		buf[i] = fill[i / PG];
	rc = fx_write_file(path, buf, size);
	ck_assert_msg(rc == 0, "write %s: %s", path, strerror(-rc));
	free(buf);
}

/* ---- checks run inside client processes: each returns 0 or FX_FAIL(...) ---- */

#define TRY(expr)                   \
	do {                        \
		int rc_ = (expr);   \
		if (rc_)            \
			return rc_; \
	} while (0)

/* Every byte of [p, p+len) reads as val, without SIGBUS. */
static int expect_mapped(const char *what, volatile char *p, size_t len, char val)
{
	for (size_t i = 0; i < len; i++) {
		char c;

		if (fx_touch(p + i, false, 0, &c) == FX_SIGBUS)
			return FX_FAIL("%s: SIGBUS at +%zu, expected 0x%02x", what, i,
				       (unsigned char)val);
		if (c != val)
			return FX_FAIL("%s: byte +%zu is 0x%02x, expected 0x%02x", what, i,
				       (unsigned char)c, (unsigned char)val);
	}
	return 0;
}

/* Reading (or writing) the byte at p raises SIGBUS. */
static int expect_sigbus(const char *what, volatile char *p, bool is_write)
{
	char c = 0;

	if (fx_touch(p, is_write, 'w', &c) != FX_SIGBUS)
		return FX_FAIL("%s: %s without SIGBUS (byte 0x%02x)", what,
			       is_write ? "wrote" : "read", (unsigned char)c);
	return 0;
}

/* The bytes at p spell s. */
static int expect_mapped_str(const char *what, volatile char *p, const char *s)
{
	for (size_t i = 0; s[i]; i++)
		TRY(expect_mapped(what, p + i, 1, s[i]));
	return 0;
}

static int write_mapped(volatile char *p, const char *s)
{
	for (size_t i = 0; s[i]; i++) {
		if (fx_touch(p + i, true, s[i], NULL) == FX_SIGBUS)
			return FX_FAIL("SIGBUS writing \"%s\" at +%zu", s, i);
	}
	return 0;
}

/* pread through a new descriptor (O_DIRECT: as the daemon has it) equals want at off. */
static int expect_file(const char *path, bool is_direct, off_t off, const char *want, size_t len)
{
	const char *how = is_direct ? "O_DIRECT" : "cached";
	off_t base = off & ~(off_t)(PG - 1);
	size_t skip = (size_t)(off - base), span = (skip + len + PG - 1) & ~(size_t)(PG - 1);
	int fd = open(path, O_RDONLY | (is_direct ? O_DIRECT : 0));
	char *buf = NULL;
	ssize_t n;
	int rc = 0;

	if (fd < 0)
		return FX_FAIL("open %s (%s): %s", path, how, strerror(errno));
	if (posix_memalign((void **)&buf, PG, span)) {
		rc = FX_FAIL("posix_memalign");
		goto out_close;
	}
	n = pread(fd, buf, span, base);
	if (n < (ssize_t)(skip + len)) {
		rc = FX_FAIL("%s pread at %lld: %zd (%s)", how, (long long)base, n,
			     strerror(errno));
		goto out_free;
	}
	for (size_t i = 0; i < len && rc == 0; i++) {
		if (buf[skip + i] != want[i])
			rc = FX_FAIL("%s read: byte %lld is 0x%02x, expected 0x%02x", how,
				     (long long)off + (long long)i, (unsigned char)buf[skip + i],
				     (unsigned char)want[i]);
	}
out_free:
	free(buf);
out_close:
	close(fd);
	return rc;
}

/* A client process that runs in steps: it does one step, reports, and waits for the test
 * to act from another process before the next. */
struct peer {
	pid_t pid;
	int to_peer;   /* the test writes 'g' here: go on */
	int from_peer; /* the peer writes 'r' here: step done */
};

static int peer_wait_go(int rd, int wr)
{
	char c = 'r';

	if (write(wr, &c, 1) != 1 || read(rd, &c, 1) != 1)
		return FX_FAIL("the test went away");
	return 0;
}

typedef int (*peer_fn)(int rd, int wr);

static void peer_start(struct peer *p, peer_fn fn)
{
	int down[2], up[2];

	ck_assert_int_eq(pipe(down), 0);
	ck_assert_int_eq(pipe(up), 0);
	fx_fail_clear();
	fflush(stderr);
	p->pid = fork();
	ck_assert_int_ge(p->pid, 0);
	if (p->pid == 0) {
		close(down[1]);
		close(up[0]);
		_exit(fn(down[0], up[1]));
	}
	close(down[0]);
	close(up[1]);
	p->to_peer = down[1];
	p->from_peer = up[0];
}

/* Waits until the peer finished its current step; fails the test if it exited instead. */
static void peer_step_done(struct peer *p)
{
	char c;
	int status;

	if (read(p->from_peer, &c, 1) == 1)
		return;
	waitpid(p->pid, &status, 0);
	ck_abort_msg("client process ended early (status 0x%x): %s", status, fx_failure());
}

static void peer_go(struct peer *p)
{
	char c = 'g';

	ck_assert_int_eq(write(p->to_peer, &c, 1), 1);
}

static void peer_finish(struct peer *p)
{
	int status;

	close(p->to_peer);
	close(p->from_peer);
	ck_assert_int_eq(waitpid(p->pid, &status, 0), p->pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "client process failed (status 0x%x): %s", status, fx_failure());
}

static void run_child(int (*fn)(void *), void *arg)
{
	int rc = fx_child(fn, arg);

	ck_assert_msg(rc == 0, "client process ended with %d: %s", rc, fx_failure());
}

static int resize_file(void *arg)
{
	int fd = open(P("f"), O_WRONLY);

	if (fd < 0 || ftruncate(fd, *(off_t *)arg) < 0)
		return FX_FAIL("ftruncate %s to %lld: %s", P("f"), (long long)*(off_t *)arg,
			       strerror(errno));
	close(fd);
	return 0;
}

static void resize_from_another_process(off_t size)
{
	run_child(resize_file, &size);
}

/* ---- (a) MAP_SHARED writes reach the daemon ---- */

/* f is 6000 bytes of 'a': the mapping's second page ends 2192 bytes past EOF. */
static int shared_writer(int rd, int wr)
{
	volatile char *sh;
	int fd = open(P("f"), O_RDWR);

	if (fd < 0)
		return FX_FAIL("open: %s", strerror(errno));
	sh = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (sh == MAP_FAILED)
		return FX_FAIL("mmap: %s", strerror(errno));
	/* writeback must work through the mapping alone, with no descriptor left open */
	close(fd);
	TRY(write_mapped(sh + 10, "MAPPED-0"));
	TRY(write_mapped(sh + PG + 10, "MAPPED-1"));
	TRY(write_mapped(sh + 5990, "TAIL"));
	TRY(write_mapped(sh + 7000, "PAST-EOF"));
	TRY(peer_wait_go(rd, wr));
	if (msync((void *)sh, 2 * PG, MS_SYNC) < 0)
		return FX_FAIL("msync: %s", strerror(errno));
	TRY(peer_wait_go(rd, wr));
	munmap((void *)sh, 2 * PG);
	return 0;
}

static int sees_mapped_writes(void *arg)
{
	bool is_direct = *(bool *)arg;

	TRY(expect_file(P("f"), is_direct, 10, "MAPPED-0", 8));
	TRY(expect_file(P("f"), is_direct, PG + 10, "MAPPED-1", 8));
	TRY(expect_file(P("f"), is_direct, 5990, "TAIL", 4));
	TRY(expect_file(P("f"), is_direct, 18, "aaaa", 4));
	return 0;
}

static int maps_and_sees_writes(void *arg)
{
	volatile char *p;
	int fd = open(P("f"), O_RDONLY);

	(void)arg;
	if (fd < 0)
		return FX_FAIL("open: %s", strerror(errno));
	p = mmap(NULL, 2 * PG, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return FX_FAIL("mmap: %s", strerror(errno));
	TRY(expect_mapped_str("page 0 at 10", p + 10, "MAPPED-0"));
	TRY(expect_mapped_str("page 1 at 10", p + PG + 10, "MAPPED-1"));
	TRY(expect_mapped_str("page 1 at 5990", p + 5990, "TAIL"));
	munmap((void *)p, 2 * PG);
	close(fd);
	return 0;
}

START_TEST(test_shared_write_msync)
{
	struct peer w;
	struct stat st;
	bool direct = true, cached = false;

	make_file(P("f"), "aa", 6000);
	peer_start(&w, shared_writer);
	peer_step_done(&w);
	/* dirty, not yet synced: another process shares the page cache */
	run_child(sees_mapped_writes, &cached);
	peer_go(&w);
	peer_step_done(&w);
	run_child(sees_mapped_writes, &direct);
	peer_go(&w);
	peer_finish(&w);
	run_child(sees_mapped_writes, &cached);
	run_child(maps_and_sees_writes, NULL);
	/* the bytes written past EOF in the last page are not part of the file */
	ck_assert_int_eq(stat(P("f"), &st), 0);
	ck_assert_int_eq(st.st_size, 6000);
}
END_TEST

/* ---- (b) another process shrinks a mapped file, then regrows it ---- */

struct maps {
	volatile char *sh; /* MAP_SHARED, 4 pages */
	volatile char *pv; /* MAP_PRIVATE, 4 pages; pages 0 and 2 COWed to 'z' */
	int fd;
};

static int map_four_pages(struct maps *m)
{
	m->fd = open(P("f"), O_RDWR);
	if (m->fd < 0)
		return FX_FAIL("open: %s", strerror(errno));
	m->sh = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
	m->pv = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, m->fd, 0);
	if (m->sh == MAP_FAILED || m->pv == MAP_FAILED)
		return FX_FAIL("mmap: %s", strerror(errno));
	for (int i = 0; i < 4; i++) {
		TRY(expect_mapped("shared, before", m->sh + i * PG, PG, (char)('A' + i)));
		TRY(expect_mapped("private, before", m->pv + i * PG, PG, (char)('A' + i)));
	}
	TRY(write_mapped(m->pv, "z"));
	TRY(write_mapped(m->pv + 2 * PG, "z"));
	TRY(expect_mapped("private COW page 2", m->pv + 2 * PG + 1, 1, 'C'));
	TRY(expect_mapped("shared page 2 after the private COW", m->sh + 2 * PG, 1, 'C'));
	return 0;
}

/* After the shrink to 6144 bytes: */
static int check_shrunk(struct maps *m)
{
	char buf[PG];
	struct stat st;

	TRY(expect_mapped("shared page 0", m->sh, PG, 'A'));
	TRY(expect_mapped("shared page 1 below EOF", m->sh + PG, 2048, 'B'));
	TRY(expect_mapped("shared page 1 past EOF", m->sh + 6144, 2048, 0));
	TRY(expect_sigbus("shared page 2", m->sh + 2 * PG, false));
	TRY(expect_sigbus("shared page 3", m->sh + 4 * PG - 1, false));
	TRY(expect_sigbus("shared page 3, write", m->sh + 3 * PG, true));
	TRY(expect_mapped("private COWed page 0 keeps its copy", m->pv, 1, 'z'));
	TRY(expect_mapped("private COWed page 0 keeps its copy", m->pv + 1, PG - 1, 'A'));
	TRY(expect_mapped("private page 1 below EOF", m->pv + PG, 2048, 'B'));
	TRY(expect_mapped("private page 1 past EOF", m->pv + 6144, 2048, 0));
	TRY(expect_sigbus("private COWed page 2 past EOF", m->pv + 2 * PG, false));
	TRY(expect_sigbus("private page 3", m->pv + 3 * PG + 5, false));
	if (fstat(m->fd, &st) < 0 || st.st_size != 6144)
		return FX_FAIL("fstat after the shrink: size %lld, expected 6144",
			       (long long)st.st_size);
	if (pread(m->fd, buf, PG, PG) != 2048)
		return FX_FAIL("pread of page 1 after the shrink is not 2048 bytes");
	return 0;
}

/* After regrowing to 4 pages: the regrown range reads zeros, never the old bytes. */
static int check_regrown(struct maps *m)
{
	TRY(expect_mapped("shared page 1 tail after regrowth", m->sh + 6144, 2048, 0));
	TRY(expect_mapped("shared page 2 after regrowth", m->sh + 2 * PG, PG, 0));
	TRY(expect_mapped("shared page 3 after regrowth", m->sh + 3 * PG, PG, 0));
	TRY(expect_mapped("private page 2 after regrowth", m->pv + 2 * PG, PG, 0));
	TRY(expect_mapped("private page 3 after regrowth", m->pv + 3 * PG, PG, 0));
	TRY(expect_mapped("private COWed page 0 after regrowth", m->pv, 1, 'z'));
	TRY(expect_mapped("shared page 1 head after regrowth", m->sh + PG, 2048, 'B'));
	return 0;
}

static int shrink_observer(int rd, int wr)
{
	struct maps m;

	TRY(map_four_pages(&m));
	TRY(peer_wait_go(rd, wr));
	TRY(check_shrunk(&m));
	TRY(peer_wait_go(rd, wr));
	TRY(check_regrown(&m));
	return 0;
}

static int regrown_file_reads_zeros(void *arg)
{
	static char zeros[2 * PG + 2048];
	bool is_direct = *(bool *)arg;

	TRY(expect_file(P("f"), is_direct, PG + 4, "BBBB", 4));
	TRY(expect_file(P("f"), is_direct, 6144, zeros, sizeof(zeros)));
	return 0;
}

START_TEST(test_shrink_mapped_file)
{
	struct peer o;
	bool direct = true, cached = false;

	make_file(P("f"), "ABCD", 4 * PG);
	peer_start(&o, shrink_observer);
	peer_step_done(&o);
	resize_from_another_process(6144);
	peer_go(&o);
	peer_step_done(&o);
	resize_from_another_process(4 * PG);
	peer_go(&o);
	peer_finish(&o);
	run_child(regrown_file_reads_zeros, &cached);
	run_child(regrown_file_reads_zeros, &direct);
}
END_TEST

/* ---- (c) a COWed private page against write(2) from another process ---- */

static int cow_observer(int rd, int wr)
{
	struct maps m;
	char buf[4];

	m.fd = open(P("f"), O_RDONLY);
	if (m.fd < 0)
		return FX_FAIL("open: %s", strerror(errno));
	m.sh = mmap(NULL, 2 * PG, PROT_READ, MAP_SHARED, m.fd, 0);
	m.pv = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, m.fd, 0);
	if (m.sh == MAP_FAILED || m.pv == MAP_FAILED)
		return FX_FAIL("mmap: %s", strerror(errno));
	TRY(expect_mapped("shared page 1, before", m.sh + PG, PG, 'B'));
	TRY(expect_mapped("private page 1, before", m.pv + PG, PG, 'B'));
	TRY(write_mapped(m.pv, "z"));
	TRY(peer_wait_go(rd, wr));

	TRY(expect_mapped("COWed private page 0 keeps its byte", m.pv, 1, 'z'));
	TRY(expect_mapped("COWed private page 0 keeps its copy", m.pv + 100, 3, 'A'));
	TRY(expect_mapped("shared page 0 sees write(2)", m.sh, 3, 'N'));
	TRY(expect_mapped("shared page 0 sees write(2)", m.sh + 100, 3, 'N'));
	TRY(expect_mapped("shared page 1 sees write(2)", m.sh + PG + 100, 3, 'N'));
	TRY(expect_mapped("clean private page 1 sees write(2)", m.pv + PG + 100, 3, 'N'));
	TRY(expect_mapped("clean private page 1 elsewhere", m.pv + PG + 103, 1, 'B'));
	if (pread(m.fd, buf, 3, 100) != 3 || memcmp(buf, "NNN", 3) != 0)
		return FX_FAIL("pread of the observer's descriptor misses the write(2)");
	return 0;
}

static int write_new_bytes(void *arg)
{
	int fd = open(P("f"), O_WRONLY);

	(void)arg;
	if (fd < 0)
		return FX_FAIL("open: %s", strerror(errno));
	if (pwrite(fd, "NNN", 3, 0) != 3 || pwrite(fd, "NNN", 3, 100) != 3 ||
	    pwrite(fd, "NNN", 3, PG + 100) != 3)
		return FX_FAIL("pwrite: %s", strerror(errno));
	close(fd);
	return 0;
}

START_TEST(test_private_cow_vs_write)
{
	struct peer o;

	make_file(P("f"), "AB", 2 * PG);
	peer_start(&o, cow_observer);
	peer_step_done(&o);
	run_child(write_new_bytes, NULL);
	peer_go(&o);
	peer_finish(&o);
}
END_TEST

/* ---- the end of file without any change ---- */

static int eof_baseline(void *arg)
{
	volatile char *p;
	int fd = open(P("f"), O_RDONLY);

	(void)arg;
	if (fd < 0)
		return FX_FAIL("open: %s", strerror(errno));
	p = mmap(NULL, 3 * PG, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return FX_FAIL("mmap: %s", strerror(errno));
	TRY(expect_mapped("page 0", p, PG, 'A'));
	TRY(expect_mapped("page 1 below EOF", p + PG, 5000 - PG, 'B'));
	TRY(expect_mapped("page 1 past EOF", p + 5000, 2 * PG - 5000, 0));
	TRY(expect_sigbus("page 2, wholly past EOF", p + 2 * PG, false));
	return 0;
}

START_TEST(test_eof_baseline)
{
	make_file(P("f"), "AB", 5000);
	run_child(eof_baseline, NULL);
}
END_TEST

/* ---- a mapped file that is unlinked keeps working ---- */

static int unlinked_mapping(void *arg)
{
	volatile char *p;
	char buf[8];
	int fd = open(P("f"), O_RDWR);

	(void)arg;
	if (fd < 0)
		return FX_FAIL("open: %s", strerror(errno));
	p = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return FX_FAIL("mmap: %s", strerror(errno));
	if (unlink(P("f")) < 0)
		return FX_FAIL("unlink: %s", strerror(errno));
	TRY(expect_mapped("page 1 after unlink", p + PG, PG, 'B'));
	TRY(write_mapped(p + PG + 8, "gone"));
	if (msync((void *)p, 2 * PG, MS_SYNC) < 0)
		return FX_FAIL("msync of an unlinked file: %s", strerror(errno));
	if (pread(fd, buf, 4, PG + 8) != 4 || memcmp(buf, "gone", 4) != 0)
		return FX_FAIL("pread after msync misses the mapped write");
	return 0;
}

START_TEST(test_unlinked_mapped_file)
{
	make_file(P("f"), "AB", 2 * PG);
	run_child(unlinked_mapping, NULL);
	ck_assert_int_eq(access(P("f"), F_OK), -1);
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

static Suite *mmap_suite(void)
{
	Suite *s = suite_create("mmap");
	struct {
		const char *name;
		const TTest *test;
	} cases[] = {
		{ "shared_write_msync", test_shared_write_msync },
		{ "shrink_mapped_file", test_shrink_mapped_file },
		{ "private_cow_vs_write", test_private_cow_vs_write },
		{ "eof_baseline", test_eof_baseline },
		{ "unlinked_mapped_file", test_unlinked_mapped_file },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TCase *tc = tcase_create(cases[i].name);

		tcase_add_unchecked_fixture(tc, setup, teardown);
		tcase_add_checked_fixture(tc, enter_workdir, NULL);
		tcase_set_timeout(tc, 30);
		tcase_add_test(tc, cases[i].test);
		suite_add_tcase(s, tc);
	}
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	fx_require_fuse();
	sr = srunner_create(mmap_suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 && teardown_failures == 0 ? 0 : 1;
}
