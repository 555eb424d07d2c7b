/* A store of 4 KiB pages whose resident memory follows the pages in use: pages are carved
 * from 2 MiB anonymous mappings (slabs); a freed page stays resident for one to two
 * seconds, for a new allocation to take it without a page fault, and then goes back to
 * the kernel (madvise MADV_DONTNEED); a slab with no page in use is unmapped, except one
 * kept to absorb churn at a slab boundary. The mem backend keeps its file data here.
 *
 * Resident pages never exceed the most pages ever in use at once: an allocation takes a
 * freed resident page before it touches a new one. Every page handed out reads zero.
 * Thread-safe: one mutex per store, held only while pages are taken or given back, never
 * across mmap, munmap or madvise; reading or writing a page needs no lock. The first free
 * starts a thread (all signals blocked) that returns idle pages to the kernel: a process
 * may fork after pagestore_init(), as fuse_daemonize() does, but not once pages have been
 * freed. */
#ifndef SIGBUSFS_PAGESTORE_H
#define SIGBUSFS_PAGESTORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define PAGESTORE_PAGE_SIZE 4096u
#define PAGESTORE_SLAB_SIZE (2u << 20)
/* Pages a slab hands out: its first page holds the slab's own header. */
#define PAGESTORE_SLAB_PAGES (PAGESTORE_SLAB_SIZE / PAGESTORE_PAGE_SIZE - 1)
#define PAGESTORE_BATCH	     64	  /* pages a pagestore_batch holds before it flushes */
#define PAGESTORE_IDLE_MS    1000 /* a freed page stays resident this long, up to twice */

struct ps_slab;
struct ps_idle;

struct pagestore {
	pthread_mutex_t lock;
	pthread_cond_t wake;	 /* the reaper sleeps on it; guarded by lock */
	struct ps_slab *partial; /* slabs with a free page; guarded by lock */
	/* Freed pages still resident, newest first: freed since the reaper's last pass, and
	 * before it. Its next pass returns "old" to the kernel. Guarded by lock. */
	struct ps_idle *young, *old;
	uint64_t nyoung, nold;
	uint64_t nslabs; /* slabs mapped; guarded by lock */
	uint64_t nempty; /* of them, slabs with no page in use or idle; guarded by lock */
	uint64_t npages; /* pages in use; guarded by lock */
	pthread_t reaper;
	bool has_reaper, is_stopping; /* guarded by lock */
};

/* Pages being given back together, for one hold of the lock. */
struct pagestore_batch {
	struct pagestore *ps;
	unsigned n;
	void *page[PAGESTORE_BATCH];
};

struct pagestore_stats {
	uint64_t pages; /* in use */
	uint64_t idle;	/* freed, not yet returned to the kernel: resident if they were written */
	uint64_t slabs; /* mapped, each PAGESTORE_SLAB_SIZE bytes of address space */
};

/* 0 or -errno. Maps nothing and starts no thread yet. */
int pagestore_init(struct pagestore *ps);
/* Every page must have been freed. Stops the reaper, unmaps every slab. */
void pagestore_destroy(struct pagestore *ps);

/* A zero-filled, page-aligned page of PAGESTORE_PAGE_SIZE bytes in *out: 0, or -ENOMEM
 * with *out NULL. The page is the caller's until pagestore_free(). */
int pagestore_alloc(struct pagestore *ps, void **out);
/* Makes the n pages (from pagestore_alloc()) resident and writable in one system call
 * per run of adjacent ones: a page handed out fresh is not, and its first store would
 * fault, one page at a time (about 10 us each where the kernel runs as a guest that
 * shadows its page tables). Best effort: a page left out faults in as before. */
void pagestore_prefault(void *const *pages, size_t n);
/* Gives back a page from pagestore_alloc(); its content is lost. */
void pagestore_free(struct pagestore *ps, void *page);

void pagestore_batch_init(struct pagestore_batch *b, struct pagestore *ps);
/* Gives back a page as pagestore_free() does, at the latest when the batch is flushed. */
void pagestore_batch_add(struct pagestore_batch *b, void *page);
/* Gives back the pages added since the last flush; the batch is then empty and reusable. */
void pagestore_batch_flush(struct pagestore_batch *b);

/* Returns every idle page to the kernel now, and unmaps the slabs that leaves empty
 * (but one). */
void pagestore_trim(struct pagestore *ps);

/* A snapshot of the counters. */
void pagestore_stats(struct pagestore *ps, struct pagestore_stats *out);

#endif
