/* The page store: mapping and unmapping slabs, each slab's free-page bitmap, the list of
 * slabs with a free page, the idle pages and the reaper thread that returns them to the
 * kernel. Contracts in pagestore.h.
 *
 * A page is in one of three states. In use: the caller's. Idle: freed but still resident,
 * on ps->young or ps->old, linked through its first bytes; its slab still counts it as
 * taken. Free: its bit is set in its slab's free_map, and it went through MADV_DONTNEED
 * before the bit was set (never after: a page whose bit is set may be handed out and
 * written at once), so it reads zero when handed out. Allocation prefers idle pages
 * (zeroed by hand), then free ones; that is why resident pages never exceed the peak of
 * pages in use. Under ps->lock: a slab is on ps->partial exactly when it has a free page,
 * and at most one slab with every page free stays mapped, apart from a fresh slab that an
 * allocator adds and takes a page from in one hold of the lock. Slabs are aligned to their
 * size, so a page finds its slab's header by masking its address. */
#include "pagestore.h"

#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define PS_MAP_WORDS ((PAGESTORE_SLAB_PAGES + 1 + 63) / 64)

/* The first page of each slab. */
struct ps_slab {
	struct ps_slab *prev, *next;	 /* on ps->partial; next also chains dead slabs */
	uint32_t nfree;			 /* pages free, 0..PAGESTORE_SLAB_PAGES */
	uint64_t free_map[PS_MAP_WORDS]; /* bit i: page i is free; bit 0 (this header) never */
};

_Static_assert(sizeof(struct ps_slab) <= PAGESTORE_PAGE_SIZE, "slab header fits its page");

/* The first bytes of an idle page. */
struct ps_idle {
	struct ps_idle *next;
};

static struct ps_slab *ps_slab_of(const void *page)
{
	return (struct ps_slab *)((uintptr_t)page & ~(uintptr_t)(PAGESTORE_SLAB_SIZE - 1));
}

/* PAGESTORE_SLAB_SIZE bytes of anonymous memory aligned to their size, or NULL. Mapping
 * twice the size and trimming it is the fallback: the kernel usually places a new mapping
 * right below the previous slab, which is aligned already and merges with it. Not
 * MAP_NORESERVE: at most the peak of pages in use is mapped, so the commit charge is what
 * the mount may need, and under strict overcommit a write then fails with ENOMEM instead
 * of the daemon being killed on a page fault. */
static void *ps_map_aligned(void)
{
	const size_t len = PAGESTORE_SLAB_SIZE;
	const int prot = PROT_READ | PROT_WRITE, flags = MAP_PRIVATE | MAP_ANONYMOUS;
	char *p = mmap(NULL, len, prot, flags, -1, 0);
	char *start;

	if (p == MAP_FAILED)
		return NULL;
	if (((uintptr_t)p & (len - 1)) == 0)
		return p;
	munmap(p, len);
	p = mmap(NULL, 2 * len, prot, flags, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* the highest aligned start, so that the next slab below can abut it */
	start = (char *)(((uintptr_t)p + len) & ~(uintptr_t)(len - 1));
	if (start > p)
		munmap(p, (size_t)(start - p));
	if (start + len < p + 2 * len)
		munmap(start + len, (size_t)(p + 2 * len - (start + len)));
	return start;
}

/* A new slab with every page free, or NULL. */
static struct ps_slab *ps_slab_map(void)
{
	struct ps_slab *s = ps_map_aligned();

	if (!s)
		return NULL;
	/* a huge page would make one written page cost 2 MiB, and MADV_DONTNEED of a 4 KiB
	 * page would have to split it; khugepaged would also fill free pages back in */
	madvise(s, PAGESTORE_SLAB_SIZE, MADV_NOHUGEPAGE);
	s->prev = s->next = NULL;
	s->nfree = PAGESTORE_SLAB_PAGES;
	memset(s->free_map, 0xff, sizeof(s->free_map));
	s->free_map[0] &= ~UINT64_C(1);
	return s;
}

static void ps_link(struct pagestore *ps, struct ps_slab *s)
{
	s->prev = NULL;
	s->next = ps->partial;
	if (ps->partial)
		ps->partial->prev = s;
	ps->partial = s;
}

static void ps_unlink(struct pagestore *ps, struct ps_slab *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		ps->partial = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
}

/* The reaper's timed waits use CLOCK_MONOTONIC: a clock change must not stall it. */
static int ps_cond_init(pthread_cond_t *cond)
{
	pthread_condattr_t attr;
	int rc;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	rc = -pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
	return rc;
}

int pagestore_init(struct pagestore *ps)
{
	int rc;

	memset(ps, 0, sizeof(*ps));
	rc = -pthread_mutex_init(&ps->lock, NULL);
	if (rc < 0)
		return rc;
	rc = ps_cond_init(&ps->wake);
	if (rc < 0)
		pthread_mutex_destroy(&ps->lock);
	return rc;
}

/* Caller holds ps->lock; s has a free page. Takes the lowest one: O(PS_MAP_WORDS). */
static void *ps_take(struct pagestore *ps, struct ps_slab *s)
{
	unsigned w = 0, bit;

	while (s->free_map[w] == 0)
		w++;
	bit = (unsigned)__builtin_ctzll(s->free_map[w]);
	s->free_map[w] &= s->free_map[w] - 1;
	if (s->nfree == PAGESTORE_SLAB_PAGES)
		ps->nempty--;
	if (--s->nfree == 0)
		ps_unlink(ps, s);
	return (char *)s + (size_t)(w * 64 + bit) * PAGESTORE_PAGE_SIZE;
}

/* Caller holds ps->lock. The newest idle page, taken off its list, or NULL. */
static void *ps_take_idle(struct pagestore *ps)
{
	struct ps_idle **list = ps->young ? &ps->young : &ps->old;
	struct ps_idle *p = *list;

	if (!p)
		return NULL;
	*list = p->next;
	if (list == &ps->young)
		ps->nyoung--;
	else
		ps->nold--;
	return p;
}

/* Caller holds ps->lock, which it drops while it maps a new slab for ps->partial; the
 * slab is not added if idle or free pages have come back meanwhile. */
static int ps_add_slab(struct pagestore *ps)
{
	struct ps_slab *fresh;

	pthread_mutex_unlock(&ps->lock);
	fresh = ps_slab_map();
	pthread_mutex_lock(&ps->lock);
	if (!fresh)
		return -ENOMEM;
	if (ps->young || ps->old || ps->partial) {
		/* pages came back meanwhile: they come first, and the slab would stay empty */
		pthread_mutex_unlock(&ps->lock);
		munmap(fresh, PAGESTORE_SLAB_SIZE);
		pthread_mutex_lock(&ps->lock);
		return 0;
	}
	ps_link(ps, fresh);
	ps->nslabs++;
	ps->nempty++;
	return 0;
}

int pagestore_alloc(struct pagestore *ps, void **out)
{
	bool is_idle = false;
	void *page = NULL;
	int rc = 0;

	pthread_mutex_lock(&ps->lock);
	while (!page && rc == 0) {
		page = ps_take_idle(ps);
		is_idle = page != NULL;
		if (!page && ps->partial)
			page = ps_take(ps, ps->partial);
		else if (!page)
			rc = ps_add_slab(ps);
	}
	if (page)
		ps->npages++;
	pthread_mutex_unlock(&ps->lock);
	if (is_idle)
		memset(page, 0, PAGESTORE_PAGE_SIZE);
	*out = page;
	return rc;
}

void pagestore_prefault(void *const *pages, size_t n)
{
	for (size_t a = 0, b; a < n; a = b) {
		for (b = a + 1;
		     b < n && (char *)pages[b] == (char *)pages[b - 1] + PAGESTORE_PAGE_SIZE; b++)
			;
		madvise(pages[a], (b - a) * PAGESTORE_PAGE_SIZE, MADV_POPULATE_WRITE);
	}
}

/* Caller holds ps->lock. Marks page free; returns its slab if that is now an empty slab
 * beyond the one kept, unlinked and for the caller to unmap, else NULL. */
static struct ps_slab *ps_put(struct pagestore *ps, void *page)
{
	struct ps_slab *s = ps_slab_of(page);
	size_t i = (size_t)((char *)page - (char *)s) / PAGESTORE_PAGE_SIZE;
	uint64_t bit = UINT64_C(1) << (i % 64);

	assert(i > 0 && !(s->free_map[i / 64] & bit));
	s->free_map[i / 64] |= bit;
	if (s->nfree++ == 0)
		ps_link(ps, s);
	if (s->nfree < PAGESTORE_SLAB_PAGES)
		return NULL;
	if (ps->nempty == 0) {
		ps->nempty++;
		return NULL;
	}
	ps_unlink(ps, s);
	ps->nslabs--;
	return s;
}

static int ps_addr_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;

	return (x > y) - (x < y);
}

/* Hands the pages' memory back to the kernel, a run of adjacent pages per call. */
static void ps_discard(void **page, unsigned n)
{
	qsort(page, n, sizeof(*page), ps_addr_cmp);
	for (unsigned i = 0; i < n;) {
		char *start = page[i];
		size_t len = PAGESTORE_PAGE_SIZE;

		for (i++; i < n && page[i] == start + len; i++)
			len += PAGESTORE_PAGE_SIZE;
		/* cannot fail on a private anonymous range; if it did, zero by hand */
		if (madvise(start, len, MADV_DONTNEED) != 0)
			memset(start, 0, len);
	}
}

/* Makes n pages that are neither in use nor idle free: returns their memory to the
 * kernel, then marks them free and unmaps the slabs that leaves empty (but one). */
static void ps_release(struct pagestore *ps, void **page, unsigned n)
{
	struct ps_slab *dead = NULL, *s;

	ps_discard(page, n);
	pthread_mutex_lock(&ps->lock);
	for (unsigned i = 0; i < n; i++) {
		s = ps_put(ps, page[i]);
		if (s) {
			s->next = dead;
			dead = s;
		}
	}
	pthread_mutex_unlock(&ps->lock);
	while (dead) {
		s = dead;
		dead = s->next;
		munmap(s, PAGESTORE_SLAB_SIZE);
	}
}

/* Releases a list of idle pages taken off the store, PAGESTORE_BATCH at a time. */
static void ps_release_list(struct pagestore *ps, struct ps_idle *list)
{
	void *page[PAGESTORE_BATCH];
	unsigned n;

	while (list) {
		/* read each link before the page's memory goes */
		for (n = 0; list && n < PAGESTORE_BATCH; list = list->next)
			page[n++] = list;
		ps_release(ps, page, n);
	}
}

/* Caller holds ps->lock. Releases the old idle pages and makes the young ones old; drops
 * the lock meanwhile. */
static void ps_age(struct pagestore *ps)
{
	struct ps_idle *list = ps->old;

	ps->old = ps->young;
	ps->nold = ps->nyoung;
	ps->young = NULL;
	ps->nyoung = 0;
	pthread_mutex_unlock(&ps->lock);
	ps_release_list(ps, list);
	pthread_mutex_lock(&ps->lock);
}

/* Caller holds ps->lock. Waits PAGESTORE_IDLE_MS, or less if the store is stopping. */
static void ps_wait_idle(struct pagestore *ps)
{
	struct timespec deadline;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += PAGESTORE_IDLE_MS / 1000;
	deadline.tv_nsec += (PAGESTORE_IDLE_MS % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	while (!ps->is_stopping &&
	       pthread_cond_timedwait(&ps->wake, &ps->lock, &deadline) != ETIMEDOUT)
		continue;
}

/* The reaper: sleeps while no page is idle, else ages the idle pages once per
 * PAGESTORE_IDLE_MS, so a page goes back one to two periods after it was freed. */
static void *ps_reap(void *arg)
{
	struct pagestore *ps = arg;

	pthread_mutex_lock(&ps->lock);
	while (!ps->is_stopping) {
		if (ps->nyoung + ps->nold == 0)
			pthread_cond_wait(&ps->wake, &ps->lock);
		else
			ps_wait_idle(ps);
		if (!ps->is_stopping)
			ps_age(ps);
	}
	pthread_mutex_unlock(&ps->lock);
	return NULL;
}

/* Caller holds ps->lock. Whether the reaper runs, starting it if need be. */
static bool ps_has_reaper(struct pagestore *ps)
{
	sigset_t all, old;

	if (ps->has_reaper || ps->is_stopping)
		return ps->has_reaper;
	/* signals are for the threads that serve requests, which they interrupt */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ps->has_reaper = pthread_create(&ps->reaper, NULL, ps_reap, ps) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ps->has_reaper;
}

void pagestore_batch_init(struct pagestore_batch *b, struct pagestore *ps)
{
	b->ps = ps;
	b->n = 0;
}

/* Caller holds ps->lock. Makes n freed pages idle, the newest last. */
static void ps_keep_idle(struct pagestore *ps, void *const *page, unsigned n)
{
	if (ps->nyoung + ps->nold == 0)
		pthread_cond_signal(&ps->wake);
	for (unsigned i = 0; i < n; i++) {
		struct ps_idle *p = page[i];

		p->next = ps->young;
		ps->young = p;
	}
	ps->nyoung += n;
}

void pagestore_batch_flush(struct pagestore_batch *b)
{
	struct pagestore *ps = b->ps;
	bool is_kept;

	if (b->n == 0)
		return;
	pthread_mutex_lock(&ps->lock);
	ps->npages -= b->n;
	is_kept = ps_has_reaper(ps);
	if (is_kept)
		ps_keep_idle(ps, b->page, b->n);
	pthread_mutex_unlock(&ps->lock);
	/* without a thread to return them later, pages go back at once */
	if (!is_kept)
		ps_release(ps, b->page, b->n);
	b->n = 0;
}

void pagestore_batch_add(struct pagestore_batch *b, void *page)
{
	if (b->n == PAGESTORE_BATCH)
		pagestore_batch_flush(b);
	b->page[b->n++] = page;
}

void pagestore_free(struct pagestore *ps, void *page)
{
	struct pagestore_batch b;

	pagestore_batch_init(&b, ps);
	pagestore_batch_add(&b, page);
	pagestore_batch_flush(&b);
}

void pagestore_trim(struct pagestore *ps)
{
	struct ps_idle *young, *old;

	pthread_mutex_lock(&ps->lock);
	young = ps->young;
	old = ps->old;
	ps->young = ps->old = NULL;
	ps->nyoung = ps->nold = 0;
	pthread_mutex_unlock(&ps->lock);
	ps_release_list(ps, young);
	ps_release_list(ps, old);
}

void pagestore_destroy(struct pagestore *ps)
{
	pthread_mutex_lock(&ps->lock);
	ps->is_stopping = true;
	pthread_cond_signal(&ps->wake);
	pthread_mutex_unlock(&ps->lock);
	if (ps->has_reaper)
		pthread_join(ps->reaper, NULL);
	pagestore_trim(ps);
	assert(ps->npages == 0);
	while (ps->partial) {
		struct ps_slab *s = ps->partial;

		ps_unlink(ps, s);
		munmap(s, PAGESTORE_SLAB_SIZE);
	}
	pthread_cond_destroy(&ps->wake);
	pthread_mutex_destroy(&ps->lock);
}

void pagestore_stats(struct pagestore *ps, struct pagestore_stats *out)
{
	pthread_mutex_lock(&ps->lock);
	out->pages = ps->npages;
	out->idle = ps->nyoung + ps->nold;
	out->slabs = ps->nslabs;
	pthread_mutex_unlock(&ps->lock);
}
