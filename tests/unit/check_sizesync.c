/* Unit tests of the size sync (fs/sizesync.c): while a thread forces an inode's size, the
 * others' answers for that inode are held (for a bounded time, or until the sync ends),
 * the syncing thread's own pass with the size it forces, other inodes pass at once, and a
 * single-threaded session (is_on false) never holds anything; a sync of several inodes
 * through several processes holds all those inodes and passes all those processes. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "sizesync.h"
#include "suite.h"

#define HOLD_MS 200 /* SIZESYNC_HOLD_MS */

static struct sizesync s;

/* A client thread answering a GETATTR of ino while the test thread syncs. */
struct client {
	uint64_t ino;
	atomic_int is_asking;
	atomic_int *ended; /* set by the test before sizesync_end(), or NULL */
	uint64_t size;	   /* what sizesync_wait() returned */
	double waited_ms;
	int saw_end;
};

static void *client_main(void *arg)
{
	struct client *c = arg;
	double t0 = fx_now_ms();

	atomic_store(&c->is_asking, 1);
	c->size = sizesync_wait(&s, c->ino, gettid());
	c->waited_ms = fx_now_ms() - t0;
	c->saw_end = c->ended && atomic_load(c->ended);
	return NULL;
}

/* The test thread starts forcing size into one inode, as the one syncing process. */
static void begin(uint64_t ino, uint64_t size)
{
	pid_t me = gettid();

	sizesync_begin(&s, &ino, 1, size, &me, 1);
}

static void run_client(struct client *c, pthread_t *tid)
{
	ck_assert_int_eq(pthread_create(tid, NULL, client_main, c), 0);
}

START_TEST(test_syncing_thread_passes)
{
	sizesync_init(&s, true);
	begin(5, 4096);
	ck_assert_uint_eq(sizesync_wait(&s, 5, gettid()), 4096);
	ck_assert_uint_eq(sizesync_wait(&s, 6, gettid()), SIZESYNC_BACKEND);
	sizesync_end(&s);
	ck_assert_uint_eq(sizesync_wait(&s, 5, gettid()), SIZESYNC_BACKEND);
	begin(5, SIZESYNC_BACKEND);
	ck_assert_uint_eq(sizesync_wait(&s, 5, gettid()), SIZESYNC_BACKEND);
	sizesync_end(&s);
	sizesync_destroy(&s);
}
END_TEST

/* Another thread's answer for the inode is held for the bound, then given the backend's
 * size; one for another inode passes. */
START_TEST(test_hold_is_bounded)
{
	struct client held = { .ino = 5 }, other = { .ino = 6 };
	pthread_t tid[2];

	sizesync_init(&s, true);
	begin(5, 4096);
	run_client(&held, &tid[0]);
	run_client(&other, &tid[1]);
	pthread_join(tid[0], NULL);
	pthread_join(tid[1], NULL);
	sizesync_end(&s);
	ck_assert_uint_eq(held.size, SIZESYNC_BACKEND);
	/* at least the bound (an unbounded hold would never have been joined) */
	ck_assert_msg(held.waited_ms >= HOLD_MS, "held %.1f ms", held.waited_ms);
	ck_assert_uint_eq(other.size, SIZESYNC_BACKEND);
	sizesync_destroy(&s);
}
END_TEST

/* The end of the sync releases a held answer: it returns with the end, or at the bound. */
START_TEST(test_end_releases)
{
	atomic_int ended = 0;
	struct client held = { .ino = 5, .ended = &ended };
	struct timespec pause = { 0, 10 * 1000 * 1000 };
	pthread_t tid;

	sizesync_init(&s, true);
	begin(5, 4096);
	run_client(&held, &tid);
	while (!atomic_load(&held.is_asking))
		nanosleep(&pause, NULL);
	atomic_store(&ended, 1);
	sizesync_end(&s);
	pthread_join(tid, NULL);
	ck_assert_uint_eq(held.size, SIZESYNC_BACKEND);
	ck_assert_msg(held.saw_end || held.waited_ms >= HOLD_MS,
		      "returned after %.1f ms, before the end of the sync", held.waited_ms);
	sizesync_destroy(&s);
}
END_TEST

/* A batch: every inode of the set is held from other threads, every syncing process
 * passes with the forced size for every inode of the set, and inodes outside it pass. */
START_TEST(test_batch_of_inodes_and_pids)
{
	const uint64_t inos[] = { 3, 9, 17 };
	struct client held = { .ino = 17 }, other = { .ino = 10 };
	const pid_t pids[2] = { gettid(), 4242 }; /* 4242: another syncing process */
	pthread_t tid[2];

	sizesync_init(&s, true);
	sizesync_begin(&s, inos, 3, 0, pids, 2);
	for (size_t i = 0; i < 3; i++)
		ck_assert_uint_eq(sizesync_wait(&s, inos[i], pids[0]), 0);
	ck_assert_uint_eq(sizesync_wait(&s, 9, 4242), 0);
	ck_assert_uint_eq(sizesync_wait(&s, 10, pids[0]), SIZESYNC_BACKEND);
	run_client(&held, &tid[0]);
	run_client(&other, &tid[1]);
	pthread_join(tid[0], NULL);
	pthread_join(tid[1], NULL);
	sizesync_end(&s);
	ck_assert_uint_eq(held.size, SIZESYNC_BACKEND);
	ck_assert_msg(held.waited_ms >= HOLD_MS, "held %.1f ms", held.waited_ms);
	ck_assert_msg(other.waited_ms < HOLD_MS, "inode outside the set held %.1f ms",
		      other.waited_ms);
	sizesync_destroy(&s);
}
END_TEST

/* What a listing handler was handed: the names emitted, up to room of them. */
struct listing {
	size_t room, n;
	uint64_t inos[8];
	const char *names[8];
};

static int take(void *ctx, uint64_t ino, const char *name)
{
	struct listing *l = ctx;

	if (l->n == l->room)
		return 1; /* the reply is full */
	l->inos[l->n] = ino;
	l->names[l->n++] = name;
	return 0;
}

/* The syncers' listings hold only the offered files of the directory listed for them, each once,
 * a file left out of a full reply going to the next; a plain listing holds nothing; other
 * processes, and a sync that offered nothing, list as usual. */
START_TEST(test_listing_offers_files_once)
{
	const uint64_t inos[] = { 11, 12, 13, 21, 14 }, parents[] = { 1, 1, 1, 2, 1 };
	char *const names[] = { "a", "b", "c", "z", "d" };
	const pid_t me = gettid(), listers[] = { me, me, me, me, 4242 }, pids[] = { me, 4242 };
	struct listing l = { .room = 2 };

	sizesync_init(&s, true);
	sizesync_begin(&s, inos, 5, 0, pids, 2);
	ck_assert(sizesync_list(&s, me, 1, true, take, &l) == false); /* nothing offered */
	sizesync_offer(&s, inos, parents, names, listers, 5);
	ck_assert(sizesync_list(&s, me + 1, 1, true, take, &l) == false);
	ck_assert(sizesync_list(&s, me, 1, false, take, &l));
	ck_assert_uint_eq(l.n, 0);
	ck_assert(sizesync_list(&s, me, 1, true, take, &l));
	ck_assert_uint_eq(l.n, 2);
	ck_assert_uint_eq(l.inos[0], 11);
	ck_assert_str_eq(l.names[1], "b");
	l = (struct listing){ .room = 8 };
	ck_assert(sizesync_list(&s, me, 1, true, take, &l));
	ck_assert_uint_eq(l.n, 1); /* "d" is another syncer's */
	ck_assert_uint_eq(l.inos[0], 13);
	l.n = 0;
	ck_assert(sizesync_list(&s, me, 1, true, take, &l));
	ck_assert_uint_eq(l.n, 0);
	ck_assert(sizesync_list(&s, me, 2, true, take, &l));
	ck_assert_uint_eq(l.n, 1);
	ck_assert_str_eq(l.names[0], "z");
	l.n = 0;
	ck_assert(sizesync_list(&s, 4242, 1, true, take, &l));
	ck_assert_uint_eq(l.n, 1);
	ck_assert_str_eq(l.names[0], "d");
	sizesync_end(&s);
	ck_assert(sizesync_list(&s, me, 2, true, take, &l) == false);
	sizesync_destroy(&s);
}
END_TEST

/* -s: the one worker must never wait, and no answer carries a forced size. */
START_TEST(test_single_thread_never_holds)
{
	struct client c = { .ino = 5 };
	pthread_t tid;

	sizesync_init(&s, false);
	begin(5, 4096);
	ck_assert_uint_eq(sizesync_wait(&s, 5, gettid()), SIZESYNC_BACKEND);
	run_client(&c, &tid);
	pthread_join(tid, NULL);
	sizesync_end(&s);
	ck_assert_uint_eq(c.size, SIZESYNC_BACKEND);
	ck_assert_msg(c.waited_ms < HOLD_MS, "held %.1f ms", c.waited_ms);
	sizesync_destroy(&s);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sizesync");

	fx_unit_tcase(s, "sizesync", 30, NULL, NULL,
		      FX_TESTS(test_syncing_thread_passes, test_hold_is_bounded, test_end_releases,
			       test_batch_of_inodes_and_pids, test_single_thread_never_holds,
			       test_listing_offers_files_once));
	return fx_run_suite(s);
}
