/* The event ring. Events finish in any order when commands run on several control
 * connections at once; the ring keeps them in the order they finished, and readers
 * resume by sequence number. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evlog.h"

struct evlog {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct event *ring; /* guarded by lock */
	unsigned capacity;
	uint64_t added;	   /* events ever finished; ring[added % capacity] is next */
	uint64_t started;  /* last seq handed out */
	uint64_t finished; /* highest seq finished */
};

int evlog_new(unsigned capacity, struct evlog **out)
{
	struct evlog *l = calloc(1, sizeof(*l));

	*out = NULL;
	if (!l)
		return -ENOMEM;
	l->ring = calloc(capacity, sizeof(*l->ring));
	if (!l->ring) {
		free(l);
		return -ENOMEM;
	}
	l->capacity = capacity;
	pthread_mutex_init(&l->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->changed, &ca);
	pthread_condattr_destroy(&ca);
	*out = l;
	return 0;
}

void evlog_free(struct evlog *l)
{
	if (!l)
		return;
	pthread_cond_destroy(&l->changed);
	pthread_mutex_destroy(&l->lock);
	free(l->ring);
	free(l);
}

uint64_t evlog_begin(struct evlog *l, struct timespec *start_out)
{
	uint64_t seq;

	clock_gettime(CLOCK_MONOTONIC, start_out);
	pthread_mutex_lock(&l->lock);
	seq = ++l->started;
	pthread_mutex_unlock(&l->lock);
	return seq;
}

void evlog_end(struct evlog *l, uint64_t seq, const struct timespec *start, const char *text)
{
	struct event *e;

	pthread_mutex_lock(&l->lock);
	e = &l->ring[l->added++ % l->capacity];
	e->seq = seq;
	e->start = *start;
	clock_gettime(CLOCK_MONOTONIC, &e->end);
	snprintf(e->text, sizeof(e->text), "%s", text);
	if (seq > l->finished)
		l->finished = seq;
	pthread_cond_broadcast(&l->changed);
	pthread_mutex_unlock(&l->lock);
}

void evlog_seqs(struct evlog *l, uint64_t *started, uint64_t *finished)
{
	pthread_mutex_lock(&l->lock);
	*started = l->started;
	*finished = l->finished;
	pthread_mutex_unlock(&l->lock);
}

int evlog_read(struct evlog *l, uint64_t since, int (*fn)(void *ctx, const struct event *e),
	       void *ctx, uint64_t *last)
{
	uint64_t first, i;
	struct event e;
	int rc = 0;

	*last = since;
	pthread_mutex_lock(&l->lock);
	first = l->added > l->capacity ? l->added - l->capacity : 0;
	for (i = first; i < l->added && rc == 0; i++) {
		e = l->ring[i % l->capacity];
		if (e.seq <= since)
			continue;
		/* fn may write to a socket: never call it with the lock held */
		pthread_mutex_unlock(&l->lock);
		rc = fn(ctx, &e);
		if (e.seq > *last)
			*last = e.seq;
		pthread_mutex_lock(&l->lock);
		first = l->added > l->capacity ? l->added - l->capacity : 0;
		if (i + 1 < first)
			i = first - 1;
	}
	pthread_mutex_unlock(&l->lock);
	return rc;
}

void evlog_wait(struct evlog *l, uint64_t since, int timeout_ms)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&l->lock);
	while (l->finished <= since) {
		if (pthread_cond_timedwait(&l->changed, &l->lock, &until) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&l->lock);
}

void event_format(const struct event *e, char *buf, size_t size)
{
	snprintf(buf, size, "seq=%llu start=%lld.%09ld end=%lld.%09ld %s",
		 (unsigned long long)e->seq, (long long)e->start.tv_sec, e->start.tv_nsec,
		 (long long)e->end.tv_sec, e->end.tv_nsec, e->text);
}
