/* The semantics matrix (README, "The semantics matrix"), the rows of events on a file's
 * bytes: inval, write with and without notification, and store, with audit after the
 * last two. One TCase per row; the machinery of a row is tests/lib/matrix.c. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "matrix.h"

/* ---- row 1: inval ---- */

/* The range's pages were dropped; everything reads the same, the COWed page is kept. */
static int inval_seen(struct mx_client *c)
{
	FX_TRY(mx_expect_cached(c, ~mx_range_mask(c->row) & ((1u << MX_NPG) - 1)));
	FX_TRY(mx_expect_view(c, mx_orig, MX_FSIZE));
	FX_TRY(mx_expect_cached(c, (1u << MX_NPG) - 1));
	return mx_expect_stat(c, MX_FSIZE, MX_MT_SAME);
}

START_TEST(test_inval_whole_file)
{
	static const struct mx_row row = MX_ROW(1, 0, MX_FSIZE, 0, inval_seen, NULL);

	MX_ROW_RUN(&row, "inval", mx_rel);
	ck_assert_int_ge(mx_val("seq"), 1);
}
END_TEST

START_TEST(test_inval_range)
{
	static const struct mx_row row = MX_ROW(1, 4100, 5000, 0, inval_seen, NULL);

	MX_ROW_RUN(&row, "inval", mx_rel, "4100", "5000");
	ck_assert_int_eq(mx_val("off"), 4100);
	ck_assert_int_eq(mx_val("len"), 5000);
}
END_TEST

/* ---- row 2: write (notify) ---- */

#define NEW_BYTES "0123456789ab" /* written at 4090: the end of page 0, the start of page 1 */

static int write_seen(struct mx_client *c)
{
	FX_TRY(mx_expect_view(c, mx_image(4090, NEW_BYTES, 12), MX_FSIZE));
	return mx_expect_stat(c, MX_FSIZE, MX_MT_NEWER);
}

START_TEST(test_write_notify)
{
	static const struct mx_row row = MX_ROW(0, 0, 0, 0, write_seen, NULL);

	MX_ROW_RUN(&row, "write", mx_rel, "4090", NEW_BYTES);
	ck_assert_int_eq(mx_val("off"), 4090);
	ck_assert_int_eq(mx_val("bytes"), 12);
	ck_assert_int_eq(mx_val("size"), MX_FSIZE);
}
END_TEST

/* "XYZ" at 16400: the file grows into the page mapped past its old end, 16384..16399
 * is a hole. */
static int write_past_eof_seen(struct mx_client *c)
{
	FX_TRY(mx_expect_stat(c, 16403, MX_MT_NEWER));
	return mx_expect_view(c, mx_image(16400, "XYZ", 3), 16403);
}

START_TEST(test_write_past_eof)
{
	static const struct mx_row row = MX_ROW(2, 0, 0, 0, write_past_eof_seen, NULL);

	MX_ROW_RUN(&row, "write", mx_rel, "16400", "XYZ");
	ck_assert_int_eq(mx_val("bytes"), 3);
	ck_assert_int_eq(mx_val("size"), 16403);
}
END_TEST

/* ---- row 3: write --no-notify, then audit and inval ---- */

#define STALE_OFF 8292 /* in page 2 */

static int stale_seen(struct mx_client *c)
{
	FX_TRY(mx_expect_view(c, mx_orig, MX_FSIZE));
	return mx_expect_stat(c, MX_FSIZE, MX_MT_SAME);
}

static int fresh_seen(struct mx_client *c)
{
	return mx_expect_view(c, mx_image(STALE_OFF, "STALE", 5), MX_FSIZE);
}

START_TEST(test_write_no_notify)
{
	static const struct mx_row row = MX_ROW(0, 0, 0, 0, stale_seen, fresh_seen);
	struct fx_peer p;

	fx_peer_start(&p, mx_client_main, &row);
	MX_CTL_OK("write", mx_rel, "8292", "STALE", "--no-notify");
	fx_peer_step(&p);
	MX_CTL_OK("audit", mx_rel);
	ck_assert_msg(mx_val("stale_bytes") == MX_PG, "audit after write --no-notify: %s",
		      mx_res.text);
	ck_assert_msg(mx_record_has("stale", "off=8192 len=4096"), "page 2 not stale: %s",
		      ctl_result_get(&mx_res, "stale"));
	mx_inval_last_step(&p);
	MX_CTL_OK("audit", mx_rel);
	ck_assert_msg(mx_val("stale_bytes") == 0, "audit after inval: %s", mx_res.text);
	ck_assert_ptr_null(ctl_result_get(&mx_res, "stale"));
}
END_TEST

/* ---- row 10: store, then audit and inval ---- */

#define STORE_OFF 4196 /* in page 1 */

static int stored_seen(struct mx_client *c)
{
	FX_TRY(mx_expect_view(c, mx_image(STORE_OFF, "STORED", 6), MX_FSIZE));
	return mx_expect_stat(c, MX_FSIZE, MX_MT_SAME);
}

START_TEST(test_store)
{
	static const struct mx_row row = MX_ROW(0, 0, 0, 0, stored_seen, mx_healthy_seen);
	struct fx_peer p;

	fx_peer_start(&p, mx_client_main, &row);
	MX_CTL_OK("store", mx_rel, "4196", "STORED");
	ck_assert_int_eq(mx_val("off"), STORE_OFF);
	ck_assert_int_eq(mx_val("bytes"), 6);
	fx_peer_step(&p);
	MX_CTL_OK("audit", mx_rel);
	ck_assert_msg(mx_val("stale_bytes") == MX_PG, "audit after store: %s", mx_res.text);
	ck_assert_msg(mx_record_has("stale", "off=4096 len=4096"), "page 1 not stale: %s",
		      ctl_result_get(&mx_res, "stale"));
	mx_inval_last_step(&p);
}
END_TEST

int main(void)
{
	const struct mx_tcase tcs[] = {
		{ "inval", { test_inval_whole_file, test_inval_range } },
		{ "write", { test_write_notify, test_write_past_eof } },
		{ "write_no_notify", { test_write_no_notify } },
		{ "store", { test_store } },
	};

	return mx_run("events_data", tcs, sizeof(tcs) / sizeof(tcs[0]));
}
