/* The semantics matrix (README, "The semantics matrix"), the rows of events on a file's
 * size and holes: truncate shrinking (and racing clients' GETATTRs and READs), truncate
 * growing again, and punch. One TCase per row; the machinery of a row is
 * tests/lib/matrix.c. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "matrix.h"

/* ---- row 4: truncate, shrinking 16384 -> 6144 ---- */

#define SHRUNK 6144

/* The old descriptor may extend the file again: the extension reads zeros. */
static int extend_again(struct mx_client *c)
{
	char *want, ch;

	if (pread(c->fd, &ch, 1, 2 * MX_PG) != 0)
		return FX_FAIL("pread at 8192 after the shrink is not end of file");
	if (pwrite(c->fd, "X", 1, 10000) != 1)
		return FX_FAIL("pwrite at 10000 after the shrink: %s", strerror(errno));
	want = mx_image(SHRUNK, NULL, MX_MAPMAX - SHRUNK);
	want[10000] = 'X';
	FX_TRY(mx_expect_stat(c, 10001, MX_MT_ANY));
	FX_TRY(mx_expect_pread("old descriptor", c->fd, want, 10001));
	return fx_expect_bytes("shared mapping after the extension", c->sh, 0, want, 3 * MX_PG);
}

static int shrunk_seen(struct mx_client *c)
{
	FX_TRY(mx_expect_view(c, mx_image(SHRUNK, NULL, MX_MAPMAX - SHRUNK), SHRUNK));
	for (size_t p = 2; p < MX_NPG; p++) {
		const char *pv = p == 2 ? "COWed private page past EOF" : "private page past EOF";

		FX_TRY(fx_expect_sigbus("shared page past EOF", c->sh, p * MX_PG, false));
		FX_TRY(fx_expect_sigbus(pv, c->pv, p * MX_PG + 1, false));
	}
	FX_TRY(mx_expect_stat(c, SHRUNK, MX_MT_ANY));
	return extend_again(c);
}

START_TEST(test_truncate_shrink)
{
	static const struct mx_row row = MX_ROW(2, 0, 0, 0, shrunk_seen, NULL);

	MX_ROW_RUN(&row, "truncate", mx_rel, "6144");
	ck_assert_int_eq(mx_val("old_size"), MX_FSIZE);
	ck_assert_int_eq(mx_val("size"), SHRUNK);
}
END_TEST

/* The size the kernel holds for path, without asking the daemon. */
static long long kernel_size(const char *path)
{
	struct statx stx;

	ck_assert_msg(statx(AT_FDCWD, path, AT_STATX_DONT_SYNC, STATX_SIZE, &stx) == 0,
		      "statx %s: %s", path, strerror(errno));
	return (long long)stx.stx_size;
}

#define RACE_ROUNDS 400
#define STATTERS    3

#define SLOW_MAPS 20000

/* A client that stats the file as fast as it can, so that its GETATTRs race the daemon's.
 * It maps the file SLOW_MAPS times first, so that the kernel's page cache truncation,
 * which visits every mapping, takes long enough to be seen unfinished. */
static void stat_storm(const char *path)
{
	struct stat st;
	int fd = open(path, O_RDONLY);

	prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failing test must not leave it spinning */
	for (int i = 0; fd >= 0 && i < SLOW_MAPS; i++)
		mmap(NULL, MX_PG, PROT_READ, MAP_SHARED, fd, 0);
	for (;;)
		stat(path, &st);
}

/* A client that reads the whole file, uncached, as fast as it can: a READ cut short by
 * the new end of file also tells the kernel that size, without truncating its cache. */
static void read_storm(const char *path)
{
	static char buf[MX_FSIZE];
	int fd = open(path, O_RDONLY);

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;) {
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		if (pread(fd, buf, sizeof(buf), 0) < 0)
			usleep(100);
	}
}

/* "truncate mx_rel size" on a connection c kept open across calls: the race test sends
 * hundreds, and a connection for each would add to its time under sanitizers. */
static void ctl_truncate(struct ctl_client *c, const char *size)
{
	struct ctl_result res;
	char line[128];
	int rc;

	snprintf(line, sizeof(line), "truncate %s %s", mx_rel, size);
	rc = ctl_client_request(c, line, strlen(line), &res);
	ck_assert_msg(rc == 0 && res.is_ok, "%s: %s", line, rc ? strerror(-rc) : res.text);
	ctl_result_free(&res);
}

/* Clients racing a shrink can teach the kernel the new size first, and the 10-minute soak
 * found both ways to leave a COWed private page past the new end of file readable after
 * truncate returned: a client's GETATTR carrying the new size makes the kernel truncate in
 * that client's thread, which may still be running when the daemon's stat(2) returns; and
 * a client's short READ sets the size without truncating at all, so the daemon's GETATTR
 * then changes nothing. Each round must see the new size in the kernel and SIGBUS on
 * that page. */
START_TEST(test_truncate_shrink_racing_stat)
{
	pid_t kids[STATTERS];
	struct ctl_client *c;
	volatile char *map;
	int fd = open(mx_path, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	char err[256];

	ck_assert_msg(ctl_client_connect(mx_mnt.ctl, &c, err, sizeof(err)) == 0, "%s", err);
	map = mmap(NULL, MX_FSIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	ck_assert_ptr_ne((void *)map, MAP_FAILED);
	for (int i = 0; i < STATTERS; i++) {
		kids[i] = fork();
		ck_assert_int_ge(kids[i], 0);
		if (kids[i] == 0 && i == 0)
			read_storm(mx_path);
		if (kids[i] == 0)
			stat_storm(mx_path);
	}
	for (int r = 0; r < RACE_ROUNDS; r++) {
		map[MX_PG] = 'x'; /* a COWed private copy, which only truncation can drop */
		ctl_truncate(c, "4096");
		ck_assert_msg(kernel_size(mx_path) == MX_PG,
			      "round %d: truncate to 4096 returned, the kernel holds size %lld", r,
			      kernel_size(mx_path));
		ck_assert_msg(fx_expect_sigbus("COWed page past EOF", map, MX_PG, false) == 0,
			      "round %d: truncate to 4096 returned, the COWed page past it is "
			      "still mapped",
			      r);
		ctl_truncate(c, "16384");
	}
	ctl_client_close(c);
	for (int i = 0; i < STATTERS; i++) {
		kill(kids[i], SIGKILL);
		waitpid(kids[i], NULL, 0);
	}
	munmap((void *)map, MX_FSIZE);
	close(fd);
}
END_TEST

/* ---- row 5: truncate, growing again after the shrink ---- */

static int regrown_seen(struct mx_client *c)
{
	const char *want = mx_image(SHRUNK, NULL, MX_MAPMAX - SHRUNK);

	FX_TRY(mx_expect_stat(c, MX_FSIZE, MX_MT_ANY));
	FX_TRY(mx_new_mapping_reads(want));
	FX_TRY(mx_expect_pread("old descriptor", c->fd, want, MX_FSIZE));
	FX_TRY(fx_expect_bytes("old shared mapping", c->sh, 0, want, MX_FSIZE));
	/* the shrink discarded the COWed page 3 too (truncate_pagecache takes private copies:
	 * README, "The semantics matrix", note 4), so the old private mapping refaults it from
	 * the file: zeros */
	return fx_expect_bytes("old private mapping", c->pv, 0, want, MX_FSIZE);
}

START_TEST(test_truncate_regrow)
{
	static const struct mx_row row = MX_ROW(3, 0, 0, 0, regrown_seen, NULL);
	struct fx_peer p;

	fx_peer_start(&p, mx_client_main, &row);
	MX_CTL_OK("truncate", mx_rel, "6144");
	MX_CTL_OK("truncate", mx_rel, "16384");
	ck_assert_int_eq(mx_val("old_size"), SHRUNK);
	ck_assert_int_eq(mx_val("size"), MX_FSIZE);
	fx_peer_step(&p);
	fx_peer_finish(&p);
}
END_TEST

/* ---- row 6: punch ---- */

static int punched_seen(struct mx_client *c)
{
	FX_TRY(mx_expect_view(c, mx_image(c->row->off, NULL, c->row->len), MX_FSIZE));
	return mx_expect_stat(c, MX_FSIZE, MX_MT_ANY);
}

START_TEST(test_punch_pages)
{
	static const struct mx_row row = MX_ROW(1, 4096, 8192, 0, punched_seen, NULL);

	MX_ROW_RUN(&row, "punch", mx_rel, "4096", "8192");
	ck_assert_int_eq(mx_val("off"), 4096);
	ck_assert_int_eq(mx_val("len"), 8192);
}
END_TEST

START_TEST(test_punch_unaligned)
{
	static const struct mx_row row = MX_ROW(0, 5000, 3000, 0, punched_seen, NULL);

	MX_ROW_RUN(&row, "punch", mx_rel, "5000", "3000");
}
END_TEST

int main(void)
{
	const struct mx_tcase tcs[] = {
		{ "truncate_shrink", { test_truncate_shrink, test_truncate_shrink_racing_stat } },
		{ "truncate_regrow", { test_truncate_regrow } },
		{ "punch", { test_punch_pages, test_punch_unaligned } },
	};

	return mx_run("events_size", tcs, sizeof(tcs) / sizeof(tcs[0]));
}
