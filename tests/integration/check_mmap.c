/* Mapped files on a real sigbusfs mount, observed from forked client processes: shared
 * writes reaching the daemon through msync, SIGBUS and zeroed tails after another process
 * shrinks a mapped file, zeros (never old bytes) after regrowth, and MAP_PRIVATE copies
 * against write(2) from elsewhere. Server-side events (sigbusctl) are tested elsewhere. */
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
#include "fixture.h"

#define PG 4096

static struct mnt mnt; /* one per TCase */

#define P(rel) fx_work_path(rel) /* rel in the running test's own directory */

static void setup(void)
{
	fx_mount_or_fail(&mnt, "mem:", NULL);
}

static void teardown(void)
{
	fx_teardown(&mnt);
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

/* The bytes at p spell s. */
static int expect_mapped_str(const char *what, volatile char *p, const char *s)
{
	return fx_expect_bytes(what, p, 0, s, strlen(s));
}

static int write_mapped(volatile char *p, const char *s)
{
	return fx_write_bytes(s, p, 0, s, strlen(s));
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
	fx_run_child(resize_file, &size);
}

/* ---- (a) MAP_SHARED writes reach the daemon ---- */

/* f is 6000 bytes of 'a': the mapping's second page ends 2192 bytes past EOF. */
static int shared_writer(int sock, const void *arg)
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
	FX_TRY(write_mapped(sh + 10, "MAPPED-0"));
	FX_TRY(write_mapped(sh + PG + 10, "MAPPED-1"));
	FX_TRY(write_mapped(sh + 5990, "TAIL"));
	FX_TRY(write_mapped(sh + 7000, "PAST-EOF"));
	FX_TRY(fx_peer_wait_go(sock));
	if (msync((void *)sh, 2 * PG, MS_SYNC) < 0)
		return FX_FAIL("msync: %s", strerror(errno));
	FX_TRY(fx_peer_wait_go(sock));
	munmap((void *)sh, 2 * PG);
	return 0;
}

static int sees_mapped_writes(void *arg)
{
	bool is_direct = *(bool *)arg;

	FX_TRY(expect_file(P("f"), is_direct, 10, "MAPPED-0", 8));
	FX_TRY(expect_file(P("f"), is_direct, PG + 10, "MAPPED-1", 8));
	FX_TRY(expect_file(P("f"), is_direct, 5990, "TAIL", 4));
	FX_TRY(expect_file(P("f"), is_direct, 18, "aaaa", 4));
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
	FX_TRY(expect_mapped_str("page 0 at 10", p + 10, "MAPPED-0"));
	FX_TRY(expect_mapped_str("page 1 at 10", p + PG + 10, "MAPPED-1"));
	FX_TRY(expect_mapped_str("page 1 at 5990", p + 5990, "TAIL"));
	munmap((void *)p, 2 * PG);
	close(fd);
	return 0;
}

START_TEST(test_shared_write_msync)
{
	struct fx_peer w;
	struct stat st;
	bool direct = true, cached = false;

	make_file(P("f"), "aa", 6000);
	fx_peer_start(&w, shared_writer, NULL);
	/* dirty, not yet synced: another process shares the page cache */
	fx_run_child(sees_mapped_writes, &cached);
	fx_peer_step(&w);
	fx_run_child(sees_mapped_writes, &direct);
	fx_peer_step(&w);
	fx_peer_finish(&w);
	fx_run_child(sees_mapped_writes, &cached);
	fx_run_child(maps_and_sees_writes, NULL);
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
		FX_TRY(fx_expect_fill("shared, before", m->sh, i * PG, PG, (char)('A' + i)));
		FX_TRY(fx_expect_fill("private, before", m->pv, i * PG, PG, (char)('A' + i)));
	}
	FX_TRY(write_mapped(m->pv, "z"));
	FX_TRY(write_mapped(m->pv + 2 * PG, "z"));
	FX_TRY(fx_expect_fill("private COW page 2", m->pv, 2 * PG + 1, 1, 'C'));
	FX_TRY(fx_expect_fill("shared page 2 after the private COW", m->sh, 2 * PG, 1, 'C'));
	return 0;
}

/* After the shrink to 6144 bytes: */
static int check_shrunk(struct maps *m)
{
	char buf[PG];
	struct stat st;

	FX_TRY(fx_expect_fill("shared page 0", m->sh, 0, PG, 'A'));
	FX_TRY(fx_expect_fill("shared page 1 below EOF", m->sh, PG, 2048, 'B'));
	FX_TRY(fx_expect_fill("shared page 1 past EOF", m->sh, 6144, 2048, 0));
	FX_TRY(fx_expect_sigbus("shared page 2", m->sh, 2 * PG, false));
	FX_TRY(fx_expect_sigbus("shared page 3", m->sh, 4 * PG - 1, false));
	FX_TRY(fx_expect_sigbus("shared page 3, write", m->sh, 3 * PG, true));
	FX_TRY(fx_expect_fill("private COWed page 0 keeps its copy", m->pv, 0, 1, 'z'));
	FX_TRY(fx_expect_fill("private COWed page 0 keeps its copy", m->pv, 1, PG - 1, 'A'));
	FX_TRY(fx_expect_fill("private page 1 below EOF", m->pv, PG, 2048, 'B'));
	FX_TRY(fx_expect_fill("private page 1 past EOF", m->pv, 6144, 2048, 0));
	FX_TRY(fx_expect_sigbus("private COWed page 2 past EOF", m->pv, 2 * PG, false));
	FX_TRY(fx_expect_sigbus("private page 3", m->pv, 3 * PG + 5, false));
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
	FX_TRY(fx_expect_fill("shared page 1 tail after regrowth", m->sh, 6144, 2048, 0));
	FX_TRY(fx_expect_fill("shared page 2 after regrowth", m->sh, 2 * PG, PG, 0));
	FX_TRY(fx_expect_fill("shared page 3 after regrowth", m->sh, 3 * PG, PG, 0));
	FX_TRY(fx_expect_fill("private page 2 after regrowth", m->pv, 2 * PG, PG, 0));
	FX_TRY(fx_expect_fill("private page 3 after regrowth", m->pv, 3 * PG, PG, 0));
	FX_TRY(fx_expect_fill("private COWed page 0 after regrowth", m->pv, 0, 1, 'z'));
	FX_TRY(fx_expect_fill("shared page 1 head after regrowth", m->sh, PG, 2048, 'B'));
	return 0;
}

static int shrink_observer(int sock, const void *arg)
{
	struct maps m;

	FX_TRY(map_four_pages(&m));
	FX_TRY(fx_peer_wait_go(sock));
	FX_TRY(check_shrunk(&m));
	FX_TRY(fx_peer_wait_go(sock));
	FX_TRY(check_regrown(&m));
	return 0;
}

static int regrown_file_reads_zeros(void *arg)
{
	static char zeros[2 * PG + 2048];
	bool is_direct = *(bool *)arg;

	FX_TRY(expect_file(P("f"), is_direct, PG + 4, "BBBB", 4));
	FX_TRY(expect_file(P("f"), is_direct, 6144, zeros, sizeof(zeros)));
	return 0;
}

START_TEST(test_shrink_mapped_file)
{
	struct fx_peer o;
	bool direct = true, cached = false;

	make_file(P("f"), "ABCD", 4 * PG);
	fx_peer_start(&o, shrink_observer, NULL);
	resize_from_another_process(6144);
	fx_peer_step(&o);
	resize_from_another_process(4 * PG);
	fx_peer_step(&o);
	fx_peer_finish(&o);
	fx_run_child(regrown_file_reads_zeros, &cached);
	fx_run_child(regrown_file_reads_zeros, &direct);
}
END_TEST

/* ---- (c) a COWed private page against write(2) from another process ---- */

static int cow_observer(int sock, const void *arg)
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
	FX_TRY(fx_expect_fill("shared page 1, before", m.sh, PG, PG, 'B'));
	FX_TRY(fx_expect_fill("private page 1, before", m.pv, PG, PG, 'B'));
	FX_TRY(write_mapped(m.pv, "z"));
	FX_TRY(fx_peer_wait_go(sock));

	FX_TRY(fx_expect_fill("COWed private page 0 keeps its byte", m.pv, 0, 1, 'z'));
	FX_TRY(fx_expect_fill("COWed private page 0 keeps its copy", m.pv, 100, 3, 'A'));
	FX_TRY(fx_expect_fill("shared page 0 sees write(2)", m.sh, 0, 3, 'N'));
	FX_TRY(fx_expect_fill("shared page 0 sees write(2)", m.sh, 100, 3, 'N'));
	FX_TRY(fx_expect_fill("shared page 1 sees write(2)", m.sh, PG + 100, 3, 'N'));
	FX_TRY(fx_expect_fill("clean private page 1 sees write(2)", m.pv, PG + 100, 3, 'N'));
	FX_TRY(fx_expect_fill("clean private page 1 elsewhere", m.pv, PG + 103, 1, 'B'));
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
	struct fx_peer o;

	make_file(P("f"), "AB", 2 * PG);
	fx_peer_start(&o, cow_observer, NULL);
	fx_run_child(write_new_bytes, NULL);
	fx_peer_step(&o);
	fx_peer_finish(&o);
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
	FX_TRY(fx_expect_fill("page 0", p, 0, PG, 'A'));
	FX_TRY(fx_expect_fill("page 1 below EOF", p, PG, 5000 - PG, 'B'));
	FX_TRY(fx_expect_fill("page 1 past EOF", p, 5000, 2 * PG - 5000, 0));
	FX_TRY(fx_expect_sigbus("page 2, wholly past EOF", p, 2 * PG, false));
	return 0;
}

START_TEST(test_eof_baseline)
{
	make_file(P("f"), "AB", 5000);
	fx_run_child(eof_baseline, NULL);
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
	FX_TRY(fx_expect_fill("page 1 after unlink", p, PG, PG, 'B'));
	FX_TRY(write_mapped(p + PG + 8, "gone"));
	if (msync((void *)p, 2 * PG, MS_SYNC) < 0)
		return FX_FAIL("msync of an unlinked file: %s", strerror(errno));
	if (pread(fd, buf, 4, PG + 8) != 4 || memcmp(buf, "gone", 4) != 0)
		return FX_FAIL("pread after msync misses the mapped write");
	return 0;
}

START_TEST(test_unlinked_mapped_file)
{
	make_file(P("f"), "AB", 2 * PG);
	fx_run_child(unlinked_mapping, NULL);
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
		TCase *tc = fx_tcase(s, cases[i].name, 30, setup, teardown, fx_enter_workdir);

		tcase_add_test(tc, cases[i].test);
	}
	return s;
}

int main(void)
{
	fx_require_fuse();
	return fx_run_suite(mmap_suite());
}
