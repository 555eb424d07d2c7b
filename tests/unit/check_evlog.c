/* Unit tests of the event log (fs/evlog.c): sequence numbers, the ring that keeps the
 * newest events, reading after a sequence number, waiting for an event or a timeout, and
 * the line format of log replies. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "evlog.h"
#include "suite.h"

static struct evlog *l;

static void setup(void)
{
	ck_assert_int_eq(evlog_new(4, &l), 0);
}

static void teardown(void)
{
	evlog_free(l);
	l = NULL;
}

/* Starts and finishes one event with text "e<seq>"; returns its seq. */
static uint64_t event(void)
{
	struct timespec start;
	char text[32];
	uint64_t seq = evlog_begin(l, &start);

	snprintf(text, sizeof(text), "e%llu", (unsigned long long)seq);
	evlog_end(l, seq, &start, text);
	return seq;
}

/* The texts of the events read after since, as "e7 e8 ", into got. */
struct reading {
	char got[256];
	int stop_after; /* stop after this many events; 0: never */
	int n;
};

static int take(void *ctx, const struct event *e)
{
	struct reading *r = ctx;
	size_t used = strlen(r->got);

	snprintf(r->got + used, sizeof(r->got) - used, "%s ", e->text);
	return ++r->n == r->stop_after ? 7 : 0;
}

START_TEST(test_seqs)
{
	struct timespec start[3];
	uint64_t started, finished;

	for (int i = 0; i < 3; i++)
		ck_assert_uint_eq(evlog_begin(l, &start[i]), (uint64_t)i + 1);
	evlog_seqs(l, &started, &finished);
	ck_assert_uint_eq(started, 3);
	ck_assert_uint_eq(finished, 0);
	evlog_end(l, 2, &start[1], "b");
	evlog_end(l, 1, &start[0], "a"); /* events finish in any order */
	evlog_seqs(l, &started, &finished);
	ck_assert_uint_eq(finished, 2);
	evlog_end(l, 3, &start[2], "c");
	evlog_seqs(l, &started, &finished);
	ck_assert_uint_eq(finished, 3);
}
END_TEST

START_TEST(test_ring_wraps)
{
	struct reading r = { "" };
	uint64_t last;

	for (int i = 0; i < 10; i++)
		event();
	ck_assert_int_eq(evlog_read(l, 0, take, &r, &last), 0);
	ck_assert_str_eq(r.got, "e7 e8 e9 e10 ");
	ck_assert_uint_eq(last, 10);
}
END_TEST

START_TEST(test_since)
{
	struct reading r = { "" };
	uint64_t last;

	for (int i = 0; i < 10; i++)
		event();
	ck_assert_int_eq(evlog_read(l, 8, take, &r, &last), 0);
	ck_assert_str_eq(r.got, "e9 e10 ");
	ck_assert_uint_eq(last, 10);
	r = (struct reading){ "" };
	ck_assert_int_eq(evlog_read(l, 10, take, &r, &last), 0);
	ck_assert_str_eq(r.got, "");
	ck_assert_uint_eq(last, 10);
}
END_TEST

START_TEST(test_read_stops)
{
	struct reading r = { "", 2 };
	uint64_t last;

	for (int i = 0; i < 3; i++)
		event();
	ck_assert_int_eq(evlog_read(l, 0, take, &r, &last), 7);
	ck_assert_str_eq(r.got, "e1 e2 ");
	ck_assert_uint_eq(last, 2);
}
END_TEST

START_TEST(test_wait_timeout)
{
	double t0 = fx_now_ms();

	evlog_wait(l, 0, 150);
	ck_assert_msg(fx_now_ms() - t0 >= 150, "waited %.1f ms", fx_now_ms() - t0);
	/* an event already finished after since: no wait (at most the 20 s asked for) */
	event();
	t0 = fx_now_ms();
	evlog_wait(l, 0, 20000);
	ck_assert_msg(fx_now_ms() - t0 < 20000, "waited %.1f ms", fx_now_ms() - t0);
}
END_TEST

struct waiter {
	atomic_int is_waiting;
	atomic_int did_finish; /* set by the test before it finishes the event */
	int saw_finished;
	double waited_ms;
};

static void *wait_main(void *arg)
{
	struct waiter *w = arg;
	double t0 = fx_now_ms();

	atomic_store(&w->is_waiting, 1);
	evlog_wait(l, 0, 20000);
	w->waited_ms = fx_now_ms() - t0;
	w->saw_finished = atomic_load(&w->did_finish);
	return NULL;
}

/* A follower waiting for the next event wakes when it finishes, not at its timeout. */
START_TEST(test_wait_wakes)
{
	struct waiter w = { 0 };
	struct timespec pause = { 0, 20 * 1000 * 1000 };
	pthread_t tid;

	ck_assert_int_eq(pthread_create(&tid, NULL, wait_main, &w), 0);
	while (!atomic_load(&w.is_waiting))
		nanosleep(&pause, NULL);
	nanosleep(&pause, NULL);
	atomic_store(&w.did_finish, 1);
	event();
	pthread_join(tid, NULL);
	ck_assert(w.saw_finished);
	ck_assert_msg(w.waited_ms < 20000, "waited %.1f ms: not woken", w.waited_ms);
}
END_TEST

START_TEST(test_format)
{
	struct event e = { .seq = 5, .start = { 1, 2 }, .end = { 3, 400000000 } };
	char buf[128];

	snprintf(e.text, sizeof(e.text), "cmd=inval target=f result=ok");
	event_format(&e, buf, sizeof(buf));
	ck_assert_str_eq(buf,
			 "seq=5 start=1.000000002 end=3.400000000 cmd=inval target=f result=ok");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("evlog");

	fx_unit_tcase(s, "evlog", 60, setup, teardown,
		      FX_TESTS(test_seqs, test_ring_wraps, test_since, test_read_stops,
			       test_wait_timeout, test_wait_wakes, test_format));
	return fx_run_suite(s);
}
