/* The event log: every control command that changes something gets a sequence number
 * when it starts and an entry when it ends, kept in a bounded ring that clients can read
 * or follow. */
#ifndef SIGBUSFS_EVLOG_H
#define SIGBUSFS_EVLOG_H

#include <stdint.h>
#include <time.h>

#define EVLOG_TEXT_MAX 400

struct event {
	uint64_t seq;
	struct timespec start, end; /* CLOCK_MONOTONIC */
	char text[EVLOG_TEXT_MAX];  /* "cmd=truncate target=f size=8192 result=ok ..." */
};

struct evlog;

/* capacity: events kept (older ones are dropped). 0 or -ENOMEM. */
int evlog_new(unsigned capacity, struct evlog **out);
void evlog_free(struct evlog *l);

/* Starts an event: returns its sequence number (1, 2, ...). */
uint64_t evlog_begin(struct evlog *l, struct timespec *start_out);
/* Records the finished event seq and wakes followers. */
void evlog_end(struct evlog *l, uint64_t seq, const struct timespec *start, const char *text);
/* Last sequence number started, and last one finished. */
void evlog_seqs(struct evlog *l, uint64_t *started, uint64_t *finished);

/* Calls fn for each kept event with seq > since, in order; stops when fn returns nonzero
 * and returns that value. Returns the highest seq passed to fn in *last (since if none). */
int evlog_read(struct evlog *l, uint64_t since, int (*fn)(void *ctx, const struct event *e),
	       void *ctx, uint64_t *last);
/* Waits until an event with seq > since has finished, or timeout_ms passes. */
void evlog_wait(struct evlog *l, uint64_t since, int timeout_ms);

/* "seq=N start=S.NNNNNNNNN end=S.NNNNNNNNN " + text, for log replies */
void event_format(const struct event *e, char *buf, size_t size);

#endif
