/* The semantics matrix (README, "The semantics matrix"), the rows of fault rules: fail
 * --op read (with --errno and --count), write, fsync and open, delay, and clear. One TCase
 * per row; the machinery of a row is tests/lib/matrix.c. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <time.h>

#include "matrix.h"

/* ---- row 7: fail --op read ---- */

/* Pages in the rule's range were dropped and fault with SIGBUS, the others read. */
static int read_fail_pages(struct mx_client *c)
{
	unsigned range = mx_range_mask(c->row);

	FX_TRY(mx_expect_cached(c, ~range & ((1u << MX_NPG) - 1)));
	for (size_t p = 0; p < MX_NPG; p++) {
		if (!(range >> p & 1)) {
			FX_TRY(fx_expect_bytes("shared page outside the rule", c->sh, p * MX_PG,
					       mx_orig, MX_PG));
			FX_TRY(fx_expect_bytes("private page outside the rule", c->pv, p * MX_PG,
					       mx_orig, MX_PG));
			continue;
		}
		FX_TRY(fx_expect_sigbus("shared page in the rule", c->sh, p * MX_PG, false));
		if ((int)p == c->row->cow)
			FX_TRY(mx_expect_cow_kept(c));
		else
			FX_TRY(fx_expect_sigbus("clean private page in the rule", c->pv, p * MX_PG,
						false));
	}
	return 0;
}

static int read_fail_seen(struct mx_client *c)
{
	FX_TRY(read_fail_pages(c));
	for (size_t p = 0; p < MX_NPG; p++) {
		if (mx_range_mask(c->row) >> p & 1)
			FX_TRY(mx_expect_pread_errno(c->fd, p * MX_PG, c->row->err));
		else
			FX_TRY(fx_expect_pread("old descriptor", c->fd, mx_orig, p * MX_PG, MX_PG));
	}
	return mx_expect_stat(c, MX_FSIZE, MX_MT_SAME);
}

START_TEST(test_fail_read)
{
	static const struct mx_row row =
		MX_ROW(1, 4096, 8192, EIO, read_fail_seen, mx_healthy_seen);
	struct fx_peer p;
	long long id;
	char idstr[32];

	fx_peer_start(&p, mx_client_main, &row);
	id = MX_RULE_ADD("fail", mx_rel, "4096", "8192", "--op", "read", "--errno", "EIO");
	fx_peer_step(&p);
	ck_assert_msg(mx_rule_listed(id), "rule %lld not listed", id);
	snprintf(idstr, sizeof(idstr), "%lld", id);
	MX_CTL_OK("clear", idstr);
	ck_assert_msg(!mx_rule_listed(id), "rule %lld still listed", id);
	fx_peer_step(&p);
	fx_peer_finish(&p);
}
END_TEST

START_TEST(test_fail_read_errno)
{
	static const struct mx_row row =
		MX_ROW(3, 0, MX_FSIZE, ENOSPC, read_fail_seen, mx_healthy_seen);

	MX_RULE_THEN_CLEAR(&row, "fail", mx_rel, "--op", "read", "--errno", "ENOSPC");
}
END_TEST

/* Through O_DIRECT each pread is one READ: the first fails, the next ones succeed. */
static int count_seen(struct mx_client *c)
{
	FX_TRY(mx_expect_pread_errno(c->dfd, MX_PG, EIO));
	FX_TRY(fx_expect_pread("O_DIRECT descriptor", c->dfd, mx_orig, MX_PG, MX_PG));
	FX_TRY(fx_expect_pread("O_DIRECT descriptor", c->dfd, mx_orig, MX_PG, MX_PG));
	return mx_expect_view(c, mx_orig, MX_FSIZE);
}

/* Kernel, not daemon: a failed page cache read is retried (readahead's READ, then
 * read_folio's: README, "The semantics matrix", note 1), so a page cache reader never sees a rule
 * that fires once. A pread needs --count 2 to fail, a fault --count 3 (6.18.44). */
static int count_absorbed(struct mx_client *c)
{
	return fx_expect_pread("old descriptor", c->fd, mx_orig, MX_PG, MX_PG);
}

START_TEST(test_fail_read_count)
{
	static const struct mx_row row = MX_ROW(0, 0, 0, 0, count_seen, count_absorbed);
	struct fx_peer p;
	long long id;

	fx_peer_start(&p, mx_client_main, &row);
	for (int i = 0; i < 2; i++) {
		id = MX_RULE_ADD("fail", mx_rel, "4096", "4096", "--op", "read", "--errno", "EIO",
				 "--count", "1");
		fx_peer_step(&p);
		ck_assert_msg(!mx_rule_listed(id), "rule %lld, --count 1, left after a read", id);
	}
	fx_peer_finish(&p);
}
END_TEST

/* ---- row 8: fail --op write, fsync, open ---- */

/* The error of a failed writeback is reported once (README, "The semantics matrix",
 * note 2). */
static int write_fail_seen(struct mx_client *c)
{
	FX_TRY(fx_write_bytes("dirtying the shared mapping", c->sh, MX_PG + 10, "dirty", 5));
	if (msync((void *)c->sh, MX_FSIZE, MS_SYNC) == 0 || errno != EIO)
		return FX_FAIL("msync of a page whose write fails: %s, expected EIO",
			       strerrorname_np(errno));
	if (msync((void *)c->sh, MX_FSIZE, MS_SYNC) < 0 || fsync(c->fd) < 0)
		return FX_FAIL("a second msync or fsync reported the error again: %s",
			       strerror(errno));
	/* kernel: without the writeback cache write(2) is synchronous, so pwrite reports
	 * the error itself and leaves none for fsync */
	if (pwrite(c->fd, "x", 1, 100) >= 0 || errno != EIO)
		return FX_FAIL("pwrite with a failing write rule: %s, expected EIO",
			       strerrorname_np(errno));
	if (fsync(c->fd) < 0)
		return FX_FAIL("fsync after the failed pwrite: %s", strerror(errno));
	return fx_expect_pread("old descriptor", c->fd, mx_orig, 0, MX_PG);
}

START_TEST(test_fail_write)
{
	static const struct mx_row row = MX_ROW(0, 0, 0, 0, write_fail_seen, NULL);

	MX_ROW_RUN(&row, "fail", mx_rel, "--op", "write", "--errno", "EIO");
	ck_assert_int_ge(mx_val("id"), 1);
}
END_TEST

static int fsync_fail_seen(struct mx_client *c)
{
	if (fsync(c->fd) == 0 || errno != ENOSPC)
		return FX_FAIL("fsync with a failing fsync rule: %s, expected ENOSPC",
			       strerrorname_np(errno));
	return mx_expect_view(c, mx_orig, MX_FSIZE);
}

static int fsync_ok(struct mx_client *c)
{
	if (fsync(c->fd) < 0)
		return FX_FAIL("fsync after clear: %s", strerror(errno));
	return 0;
}

START_TEST(test_fail_fsync)
{
	static const struct mx_row row = MX_ROW(0, 0, 0, 0, fsync_fail_seen, fsync_ok);

	MX_RULE_THEN_CLEAR(&row, "fail", mx_rel, "--op", "fsync", "--errno", "ENOSPC");
}
END_TEST

static int open_fail_seen(struct mx_client *c)
{
	int fd = open(mx_path, O_RDONLY);

	if (fd >= 0 || errno != EACCES)
		return FX_FAIL("open with a failing open rule: %d (%s), expected EACCES", fd,
			       fd < 0 ? strerrorname_np(errno) : "no error");
	return mx_expect_view(c, mx_orig, MX_FSIZE);
}

static int open_ok(struct mx_client *c)
{
	(void)c;
	return mx_new_mapping_reads(mx_orig);
}

START_TEST(test_fail_open)
{
	static const struct mx_row row = MX_ROW(0, 0, 0, 0, open_fail_seen, open_ok);

	MX_RULE_THEN_CLEAR(&row, "fail", mx_rel, "--op", "open", "--errno", "EACCES");
}
END_TEST

/* ---- row 9: delay ---- */

/* Only a lower bound: the delay is a floor, a loaded machine may add to it. */
static int delayed_seen(struct mx_client *c)
{
	long long t0 = fx_now_ms(), took;

	FX_TRY(fx_expect_pread("old descriptor", c->fd, mx_orig, MX_PG, MX_PG));
	took = fx_now_ms() - t0;
	if (took < 300)
		return FX_FAIL("an uncached pread with a 300 ms delay rule took %lld ms", took);
	return 0;
}

START_TEST(test_delay_read)
{
	static const struct mx_row row = MX_ROW(0, 0, 0, 0, delayed_seen, mx_healthy_seen);
	struct fx_peer p;
	long long id;

	fx_peer_start(&p, mx_client_main, &row);
	id = MX_RULE_ADD("delay", mx_rel, "--op", "read", "--ms", "300");
	MX_CTL_OK("inval", mx_rel);
	fx_peer_step(&p);
	ck_assert_msg(mx_rule_listed(id), "rule %lld not listed", id);
	MX_CTL_OK("clear");
	ck_assert_msg(!mx_rule_listed(id), "rule %lld still listed after clear", id);
	mx_inval_last_step(&p);
}
END_TEST

int main(void)
{
	const struct mx_tcase tcs[] = {
		{ "fail_read", { test_fail_read, test_fail_read_errno, test_fail_read_count } },
		{ "fail_write", { test_fail_write, test_fail_fsync, test_fail_open } },
		{ "delay", { test_delay_read } },
	};

	return mx_run("events_rules", tcs, sizeof(tcs) / sizeof(tcs[0]));
}
