/* Unit tests for backend/pagestore.c: pages are aligned, distinct and zero; a freed page
 * stays resident (idle) until it is reused or the reaper or a trim returns it to the
 * kernel (mincore shows which); empty slabs are unmapped but one; batches give pages
 * back; concurrent threads never see each other's pages. */
#include "pagestore.h"
#include "suite.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE	  PAGESTORE_PAGE_SIZE
#define SLAB	  PAGESTORE_SLAB_PAGES
#define NTHREADS  4
#define ITERS	  300
#define PER_ROUND 700	/* pages a thread holds at once: more than a slab */
#define REAP_WAIT 10000 /* ms to wait for the reaper: ten times what it should take */

static struct pagestore ps;

static void setup(void)
{
	ck_assert_int_eq(pagestore_init(&ps), 0);
}

static void teardown(void)
{
	pagestore_destroy(&ps);
}

static struct pagestore_stats stats(void)
{
	struct pagestore_stats st;

	pagestore_stats(&ps, &st);
	return st;
}

static void *alloc_page(void)
{
	void *p;

	ck_assert_int_eq(pagestore_alloc(&ps, &p), 0);
	ck_assert_ptr_nonnull(p);
	return p;
}

static bool is_zero(const unsigned char *p)
{
	for (size_t i = 0; i < PAGE; i++) {
		if (p[i])
			return false;
	}
	return true;
}

/* Whether the page at p is in memory: false also once it is unmapped. */
static bool is_resident(void *p)
{
	unsigned char vec;

	return mincore(p, PAGE, &vec) == 0 && (vec & 1);
}

static bool is_mapped(void *p)
{
	unsigned char vec;

	return mincore(p, PAGE, &vec) == 0 || errno != ENOMEM;
}

START_TEST(test_pages_aligned_distinct_zero)
{
	size_t n = 2 * SLAB + 5;
	unsigned char **p = calloc(n, sizeof(*p));

	for (size_t i = 0; i < n; i++) {
		p[i] = alloc_page();
		ck_assert_uint_eq((uintptr_t)p[i] % PAGE, 0);
		ck_assert(is_zero(p[i]));
		memset(p[i], (int)(i % 251) + 1, PAGE);
	}
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(p[i][i % PAGE], i % 251 + 1);
	ck_assert_uint_eq(stats().pages, n);
	ck_assert_uint_eq(stats().slabs, 3);
	for (size_t i = 0; i < n; i++)
		pagestore_free(&ps, p[i]);
	ck_assert_uint_eq(stats().pages, 0);
	ck_assert_uint_eq(stats().idle, n);
	pagestore_trim(&ps);
	ck_assert_uint_eq(stats().idle, 0);
	ck_assert_uint_eq(stats().slabs, 1);
	free(p);
}
END_TEST

/* Untouched pages cost nothing; a written page is resident, stays so while idle, and
 * reads zero when handed out again; once trimmed it is gone, and zero when reused. */
START_TEST(test_idle_then_trimmed)
{
	unsigned char *a = alloc_page(), *b = alloc_page(), *again;

	ck_assert(!is_resident(a));
	memset(a, 0xa5, PAGE);
	ck_assert(is_resident(a));
	pagestore_free(&ps, a);
	ck_assert(is_resident(a));
	again = alloc_page();
	ck_assert_ptr_eq(again, a);
	ck_assert(is_zero(again));
	memset(again, 0x5a, PAGE);
	pagestore_free(&ps, again);
	pagestore_trim(&ps);
	ck_assert(!is_resident(a));
	again = alloc_page();
	ck_assert_ptr_eq(again, a); /* the lowest free page of the slab in use */
	ck_assert(is_zero(again));
	pagestore_free(&ps, again);
	pagestore_free(&ps, b);
}
END_TEST

/* Prefaulting makes pages resident without a store, runs and lone pages alike; they still
 * read zero, and trimming gives them back as before. */
START_TEST(test_prefault)
{
	void *p[40];

	for (int i = 0; i < 40; i++) {
		p[i] = alloc_page();
		ck_assert(!is_resident(p[i]));
	}
	/* a run of 30, then a page out of order, then the rest */
	pagestore_prefault(p, 30);
	pagestore_prefault(&p[35], 1);
	for (int i = 0; i < 40; i++)
		ck_assert_msg(is_resident(p[i]) == (i < 30 || i == 35), "page %d", i);
	pagestore_prefault(p, 40);
	for (int i = 0; i < 40; i++) {
		ck_assert(is_resident(p[i]));
		ck_assert(is_zero(p[i]));
		pagestore_free(&ps, p[i]);
	}
	pagestore_trim(&ps);
	for (int i = 0; i < 40; i++)
		ck_assert(!is_resident(p[i]));
}
END_TEST

/* Freed pages are reused before any new one: writing, freeing and writing again the same
 * number of pages maps nothing new. */
START_TEST(test_idle_reused_first)
{
	size_t n = SLAB + 10;
	void **p = calloc(n, sizeof(*p));

	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < n; i++) {
			p[i] = alloc_page();
			ck_assert(is_zero(p[i]));
			memset(p[i], round + 1, PAGE);
		}
		ck_assert_uint_eq(stats().slabs, 2);
		for (size_t i = 0; i < n; i++)
			pagestore_free(&ps, p[i]);
	}
	pagestore_trim(&ps);
	free(p);
}
END_TEST

/* The reaper returns idle pages to the kernel on its own, and unmaps emptied slabs. */
START_TEST(test_reaper)
{
	size_t n = SLAB + 1;
	void **p = calloc(n, sizeof(*p));
	int waited = 0;

	for (size_t i = 0; i < n; i++) {
		p[i] = alloc_page();
		memset(p[i], 7, PAGE);
	}
	for (size_t i = 0; i < n; i++)
		pagestore_free(&ps, p[i]);
	/* idle counts the pages on the lists: the reaper takes them off, then releases them */
	while ((stats().idle > 0 || stats().slabs > 1) && waited < REAP_WAIT) {
		usleep(10000);
		waited += 10;
	}
	ck_assert_uint_eq(stats().idle, 0);
	ck_assert_uint_eq(stats().slabs, 1);
	for (size_t i = 0; i < n; i++)
		ck_assert(!is_resident(p[i]));
	free(p);
}
END_TEST

/* Of two slabs that empty, one is unmapped and one kept; the kept one serves the next
 * allocation without a new mapping. */
START_TEST(test_empty_slabs_unmapped)
{
	size_t n = SLAB + 1;
	void **p = calloc(n, sizeof(*p));

	for (size_t i = 0; i < n; i++)
		p[i] = alloc_page();
	ck_assert_uint_eq(stats().slabs, 2);
	for (size_t i = 0; i < n; i++)
		pagestore_free(&ps, p[i]);
	ck_assert_uint_eq(stats().slabs, 2);
	pagestore_trim(&ps);
	ck_assert_uint_eq(stats().slabs, 1);
	ck_assert(is_mapped(p[0]) != is_mapped(p[n - 1]));
	p[0] = alloc_page();
	ck_assert_uint_eq(stats().slabs, 1);
	pagestore_free(&ps, p[0]);
	free(p);
}
END_TEST

/* A batch gives back pages in any order, adjacent or not, across slabs. */
START_TEST(test_batch)
{
	size_t n = 3 * PAGESTORE_BATCH + 7 + SLAB;
	unsigned char **p = calloc(n, sizeof(*p));
	struct pagestore_batch b;

	for (size_t i = 0; i < n; i++) {
		p[i] = alloc_page();
		memset(p[i], 0x11, PAGE);
	}
	pagestore_batch_init(&b, &ps);
	for (size_t i = 0; i < n; i += 2)
		pagestore_batch_add(&b, p[i]);
	for (size_t i = n - n % 2 - 1; i < n; i -= 2)
		pagestore_batch_add(&b, p[i]);
	pagestore_batch_flush(&b);
	pagestore_batch_flush(&b);
	ck_assert_uint_eq(stats().pages, 0);
	pagestore_trim(&ps);
	ck_assert_uint_eq(stats().slabs, 1);
	for (size_t i = 0; i < n; i++)
		ck_assert(!is_resident(p[i]));
	free(p);
}
END_TEST

/* Each thread holds more than a slab's pages at a time, stamped with its id and round,
 * and checks them before giving them back: one page handed to two threads would show. */
static void *churn(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	unsigned *p[PER_ROUND];
	struct pagestore_batch b;

	pagestore_batch_init(&b, &ps);
	for (unsigned r = 0; r < ITERS; r++) {
		unsigned stamp = id << 16 | r, held = r * 37 % PER_ROUND + 1;

		for (unsigned i = 0; i < held; i++) {
			if (pagestore_alloc(&ps, (void **)&p[i]) < 0)
				return "out of memory";
			if (p[i][0] != 0)
				return "a page was not zero";
			p[i][0] = p[i][PAGE / sizeof(unsigned) - 1] = stamp;
		}
		for (unsigned i = 0; i < held; i++) {
			if (p[i][0] != stamp || p[i][PAGE / sizeof(unsigned) - 1] != stamp)
				return "another thread wrote one of my pages";
			if (i % 2)
				pagestore_free(&ps, p[i]);
			else
				pagestore_batch_add(&b, p[i]);
		}
		pagestore_batch_flush(&b);
	}
	return NULL;
}

static _Atomic bool is_churning;

/* Returns idle pages while the others churn, so that pages also go back and come out of
 * the slabs concurrently. */
static void *trim_loop(void *arg)
{
	(void)arg;
	while (is_churning)
		pagestore_trim(&ps);
	return NULL;
}

START_TEST(test_threads)
{
	pthread_t t[NTHREADS], trimmer;

	is_churning = true;
	ck_assert_int_eq(pthread_create(&trimmer, NULL, trim_loop, NULL), 0);
	for (uintptr_t i = 0; i < NTHREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, churn, (void *)i), 0);
	for (int i = 0; i < NTHREADS; i++) {
		void *err;

		ck_assert_int_eq(pthread_join(t[i], &err), 0);
		ck_assert_msg(err == NULL, "thread %d: %s", i, (const char *)err);
	}
	is_churning = false;
	ck_assert_int_eq(pthread_join(trimmer, NULL), 0);
	ck_assert_uint_eq(stats().pages, 0);
	pagestore_trim(&ps);
	ck_assert_uint_eq(stats().slabs, 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pagestore");

	fx_unit_tcase(s, "pagestore", 60, setup, teardown,
		      FX_TESTS(test_pages_aligned_distinct_zero, test_idle_then_trimmed,
			       test_idle_reused_first, test_reaper, test_empty_slabs_unmapped,
			       test_batch, test_threads, test_prefault));
	return fx_run_suite(s);
}
