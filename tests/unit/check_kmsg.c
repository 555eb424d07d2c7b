/* Unit tests of the kernel-log watcher (contrib/kmsg): the records of a real WARNING as
 * /dev/kmsg gave them on 6.18.44 (tests/unit/data/kmsg-folio-dirty.txt, with dictionary
 * lines and unrelated records around it), and made-up records for the other report kinds,
 * for records that must not match, and for what ends a report. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmsg.h"

static struct kmsg *k;

static void setup(void)
{
	ck_assert_int_eq(kmsg_new(&k), 0);
}

static void teardown(void)
{
	kmsg_close(k);
	k = NULL;
}

static void feed(const char *rec)
{
	ck_assert_int_eq(kmsg_feed(k, rec, strlen(rec)), 0);
}

START_TEST(test_recorded_warning_from_file)
{
	struct kmsg *f;
	const struct kmsg_report *r;

	ck_assert_int_eq(kmsg_open(KMSG_DATA_DIR "/kmsg-folio-dirty.txt", false, &f), 0);
	ck_assert_int_eq(kmsg_poll(f), 49); /* 51 lines, 2 of them dictionary lines */
	kmsg_flush(f);
	ck_assert_uint_eq(kmsg_count(f), 1);
	r = kmsg_report(f, 0);
	ck_assert_str_eq(r->kind, "WARNING:");
	ck_assert_uint_eq(r->seq, 340);
	ck_assert_uint_eq(r->ts_us, 798704343);
	ck_assert(r->is_closed);
	/* the header through "---[ end trace": 36 records; "[ cut here ]" comes before it */
	ck_assert_uint_eq(r->nlines, 36);
	ck_assert_str_eq(r->lines[0], "WARNING: CPU: 1 PID: 3794 at mm/page-writeback.c:2724 "
				      "__folio_mark_dirty+0x1e0/0x260");
	ck_assert_str_eq(r->lines[16], " filemap_dirty_folio+0x40/0x70");
	ck_assert_str_eq(r->lines[35], "---[ end trace 0000000000000000 ]---");
	ck_assert_uint_eq(kmsg_lost(f), 0);
	kmsg_close(f);
}
END_TEST

START_TEST(test_from_end_skips_what_is_there)
{
	struct kmsg *f;

	ck_assert_int_eq(kmsg_open(KMSG_DATA_DIR "/kmsg-folio-dirty.txt", true, &f), 0);
	ck_assert_int_eq(kmsg_poll(f), 0);
	ck_assert_uint_eq(kmsg_count(f), 0);
	kmsg_close(f);
}
END_TEST

START_TEST(test_missing_source)
{
	struct kmsg *f = (struct kmsg *)&f;

	ck_assert_int_eq(kmsg_open("/nonexistent/kmsg", true, &f), -ENOENT);
	ck_assert_ptr_null(f);
}
END_TEST

START_TEST(test_dictionary_lines_ignored)
{
	const char rec[] = "4,10,1000,-;WARNING: CPU: 0 PID: 1 at x.c:1 f+0x1/0x2\n"
			   " SUBSYSTEM=virtio\n DEVICE=+virtio:virtio1\n";

	feed(rec);
	ck_assert_uint_eq(kmsg_count(k), 1);
	ck_assert_uint_eq(kmsg_report(k, 0)->nlines, 1);
	ck_assert_str_eq(kmsg_report(k, 0)->lines[0], "WARNING: CPU: 0 PID: 1 at x.c:1 f+0x1/0x2");
}
END_TEST

START_TEST(test_no_match)
{
	feed("4,1,100,-;DEBUG: not a BUG: report");
	feed("4,2,200,-;Speculative Return Stack Overflow: WARNING: See the documentation");
	feed("6,3,300,-;WARNING: at info level, not a report");
	feed("12,4,400,-;WARNING: CPU: 0 written by a user-space program");
	feed("4,5,500,-; filemap_dirty_folio+0x40/0x70");
	ck_assert_uint_eq(kmsg_count(k), 0);
	ck_assert_int_eq(kmsg_feed(k, "garbage", 7), -EINVAL);
	ck_assert_int_eq(kmsg_feed(k, "4,x,1;WARNING:", 14), -EINVAL);
}
END_TEST

START_TEST(test_kinds)
{
	ck_assert_str_eq(kmsg_match("WARNING: possible circular locking dependency detected"),
			 "possible circular locking");
	ck_assert_str_eq(kmsg_match("WARNING: inconsistent lock state"), "inconsistent lock state");
	ck_assert_str_eq(kmsg_match("WARNING: suspicious RCU usage"), "suspicious RCU usage");
	ck_assert_str_eq(kmsg_match("BUG: KASAN: slab-use-after-free in f+0x1/0x2"), "KASAN:");
	ck_assert_str_eq(kmsg_match("UBSAN: shift-out-of-bounds in x.c:1:2"), "UBSAN:");
	ck_assert_str_eq(kmsg_match("kernel BUG at mm/filemap.c:1500!"), "kernel BUG at");
	ck_assert_str_eq(kmsg_match("Oops: general protection fault, probably for non-canonical"),
			 "general protection fault");
	ck_assert_str_eq(kmsg_match("watchdog: BUG: soft lockup - CPU#1 stuck for 26s!"),
			 "soft lockup");
	ck_assert_str_eq(kmsg_match("INFO: task x:12 blocked for more than 122 seconds."),
			 "blocked for more than");
	ck_assert_str_eq(kmsg_match("BUG: unable to handle page fault for address: 0"), "BUG:");
	ck_assert_ptr_null(kmsg_match("sigbusfs mounted, no WARNINGS here"));
}
END_TEST

START_TEST(test_oops_continues_bug)
{
	feed("1,1,100,-;BUG: unable to handle page fault for address: 0000000000000008");
	feed("1,2,110,-;#PF: supervisor read access in kernel mode");
	feed("4,3,120,-;Oops: 0000 [#1] PREEMPT SMP");
	feed("4,4,130,-;Call Trace:");
	ck_assert_uint_eq(kmsg_count(k), 1);
	ck_assert_uint_eq(kmsg_report(k, 0)->nlines, 4);
	ck_assert_str_eq(kmsg_report(k, 0)->lines[2], "Oops: 0000 [#1] PREEMPT SMP");
}
END_TEST

START_TEST(test_what_ends_a_report)
{
	feed("4,1,100,-;WARNING: CPU: 0 PID: 1 at a.c:1 f+0x1/0x2");
	feed("4,2,110,-;---[ end trace 0000000000000000 ]---");
	feed("4,3,120,-;Call Trace: not part of it, the report has ended");
	feed("3,4,200,-;INFO: task t:1 blocked for more than 120 seconds.");
	feed("3,5,300,-;task:t state:D");
	feed("3,6,2000300,-;a line more than a second later");
	feed("4,7,3000000,-;WARNING: inconsistent lock state");
	feed("14,8,3000100,-;a user-space line ends it");
	feed("4,9,3000200,-;WARNING: suspicious RCU usage");
	feed("4,10,3000300,-;WARNING: CPU: 1 PID: 2 at b.c:2 g+0x1/0x2");
	ck_assert_uint_eq(kmsg_count(k), 5);
	ck_assert_uint_eq(kmsg_report(k, 0)->nlines, 2);
	ck_assert_uint_eq(kmsg_report(k, 1)->nlines, 2);
	ck_assert_uint_eq(kmsg_report(k, 2)->nlines, 1);
	ck_assert(kmsg_report(k, 3)->is_closed);
	ck_assert(!kmsg_report(k, 4)->is_closed);
	kmsg_flush(k);
	ck_assert(kmsg_report(k, 4)->is_closed);
}
END_TEST

START_TEST(test_long_report_and_lost_records)
{
	char rec[128];

	feed("4,10,100,-;WARNING: CPU: 0 PID: 1 at a.c:1 f+0x1/0x2");
	for (int i = 0; i < KMSG_REPORT_LINES + 5; i++) {
		snprintf(rec, sizeof(rec), "4,%d,%d,-; frame%d+0x1/0x2", 11 + i, 101 + i, i);
		feed(rec);
	}
	ck_assert_uint_eq(kmsg_report(k, 0)->nlines, KMSG_REPORT_LINES);
	ck_assert_uint_eq(kmsg_report(k, 0)->dropped, 6);
	feed("4,500,1000,-;a record after a gap in the sequence");
	ck_assert_uint_eq(kmsg_lost(k), 500 - (11 + KMSG_REPORT_LINES + 5));
}
END_TEST

static Suite *kmsg_suite(void)
{
	Suite *s = suite_create("kmsg");
	TCase *tc = tcase_create("matcher");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_recorded_warning_from_file);
	tcase_add_test(tc, test_from_end_skips_what_is_there);
	tcase_add_test(tc, test_missing_source);
	tcase_add_test(tc, test_dictionary_lines_ignored);
	tcase_add_test(tc, test_no_match);
	tcase_add_test(tc, test_kinds);
	tcase_add_test(tc, test_oops_continues_bug);
	tcase_add_test(tc, test_what_ends_a_report);
	tcase_add_test(tc, test_long_report_and_lost_records);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(kmsg_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
