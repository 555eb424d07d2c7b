/* See sizesync.h. The hold is bounded so that a stat() of the syncing process can never
 * wait for a worker thread that is itself held: libfuse caps its worker threads. */
#include <errno.h>
#include <time.h>

#include "sizesync.h"

#define SIZESYNC_HOLD_MS 200

void sizesync_init(struct sizesync *s, bool is_on)
{
	pthread_condattr_t ca;

	s->is_on = is_on;
	atomic_init(&s->ino, 0);
	s->pid = 0;
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

void sizesync_begin(struct sizesync *s, uint64_t ino, uint64_t size, pid_t pid)
{
	pthread_mutex_lock(&s->lock);
	s->pid = pid;
	s->size = size;
	atomic_store(&s->ino, ino);
	pthread_mutex_unlock(&s->lock);
}

void sizesync_end(struct sizesync *s)
{
	pthread_mutex_lock(&s->lock);
	atomic_store(&s->ino, 0);
	pthread_cond_broadcast(&s->done);
	pthread_mutex_unlock(&s->lock);
}

uint64_t sizesync_wait(struct sizesync *s, uint64_t ino, pid_t pid)
{
	uint64_t size = SIZESYNC_BACKEND;
	struct timespec until;
	int rc = 0;

	if (!s->is_on || atomic_load(&s->ino) != ino)
		return size; /* the fast path of every GETATTR */
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_nsec += SIZESYNC_HOLD_MS * 1000000L;
	until.tv_sec += until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&s->lock);
	while (rc != ETIMEDOUT && atomic_load(&s->ino) == ino && pid != s->pid)
		rc = pthread_cond_timedwait(&s->done, &s->lock, &until);
	if (atomic_load(&s->ino) == ino && pid == s->pid)
		size = s->size;
	pthread_mutex_unlock(&s->lock);
	return size;
}
