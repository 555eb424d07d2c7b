/* See sizesync.h. The hold is bounded so that a stat() of the syncing process can never
 * wait for a worker thread that is itself held: libfuse caps its worker threads. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sizesync.h"

#define SIZESYNC_HOLD_MS 200

void sizesync_init(struct sizesync *s, bool is_on)
{
	pthread_condattr_t ca;

	s->is_on = is_on;
	atomic_init(&s->n, 0);
	s->npids = 0;
	s->nnames = 0;
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->done, &ca);
	pthread_condattr_destroy(&ca);
}

void sizesync_destroy(struct sizesync *s)
{
	pthread_cond_destroy(&s->done);
	pthread_mutex_destroy(&s->lock);
}

static int ino_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

void sizesync_begin(struct sizesync *s, const uint64_t *inos, size_t n, uint64_t size,
		    const pid_t *pids, size_t npids)
{
	if (n > SIZESYNC_MAX)
		n = SIZESYNC_MAX;
	if (npids > SIZESYNC_PIDS_MAX)
		npids = SIZESYNC_PIDS_MAX;
	pthread_mutex_lock(&s->lock);
	memcpy(s->pids, pids, npids * sizeof(*pids));
	s->npids = npids;
	s->size = size;
	memcpy(s->inos, inos, n * sizeof(*inos));
	qsort(s->inos, n, sizeof(*inos), ino_cmp);
	atomic_store(&s->n, n);
	pthread_mutex_unlock(&s->lock);
}

void sizesync_end(struct sizesync *s)
{
	pthread_mutex_lock(&s->lock);
	atomic_store(&s->n, 0);
	s->nnames = 0;
	pthread_cond_broadcast(&s->done);
	pthread_mutex_unlock(&s->lock);
}

/* Whether ino's size is being synced; under s->lock. */
static bool is_syncing(struct sizesync *s, uint64_t ino)
{
	return bsearch(&ino, s->inos, atomic_load(&s->n), sizeof(ino), ino_cmp) != NULL;
}

/* Whether pid is one of the sync's processes; under s->lock. */
static bool is_syncer(struct sizesync *s, pid_t pid)
{
	for (size_t i = 0; i < s->npids; i++)
		if (s->pids[i] == pid)
			return true;
	return false;
}

uint64_t sizesync_wait(struct sizesync *s, uint64_t ino, pid_t pid)
{
	uint64_t size = SIZESYNC_BACKEND;
	struct timespec until;
	int rc = 0;

	if (!s->is_on || atomic_load(&s->n) == 0)
		return size; /* the fast path of every GETATTR */
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_nsec += SIZESYNC_HOLD_MS * 1000000L;
	until.tv_sec += until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&s->lock);
	while (rc != ETIMEDOUT && is_syncing(s, ino) && !is_syncer(s, pid))
		rc = pthread_cond_timedwait(&s->done, &s->lock, &until);
	if (is_syncing(s, ino) && is_syncer(s, pid))
		size = s->size;
	pthread_mutex_unlock(&s->lock);
	return size;
}

void sizesync_offer(struct sizesync *s, const uint64_t *inos, const uint64_t *parents,
		    char *const *names, const pid_t *listers, size_t n)
{
	pthread_mutex_lock(&s->lock);
	s->nnames = 0;
	for (size_t i = 0; i < n && i < SIZESYNC_MAX; i++)
		s->names[s->nnames++] = (struct sizesync_name){
			.ino = inos[i], .parent = parents[i], .name = names[i], .lister = listers[i]
		};
	pthread_mutex_unlock(&s->lock);
}

bool sizesync_list(struct sizesync *s, pid_t pid, uint64_t dir, bool plus,
		   int (*emit)(void *ctx, uint64_t ino, const char *name), void *ctx)
{
	bool is_ours;

	if (atomic_load(&s->n) == 0)
		return false; /* the fast path of every listing */
	pthread_mutex_lock(&s->lock);
	is_ours = s->nnames > 0 && is_syncer(s, pid);
	for (size_t i = 0; is_ours && plus && i < s->nnames; i++) {
		struct sizesync_name *f = &s->names[i];

		if (f->is_listed || f->parent != dir || !f->name || f->lister != pid)
			continue;
		if (emit(ctx, f->ino, f->name) != 0)
			break;
		f->is_listed = true;
	}
	pthread_mutex_unlock(&s->lock);
	return is_ours;
}
