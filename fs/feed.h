/* The change feed's thread: for a backend with BK_F_FEED, one thread of its own (never a
 * FUSE worker: the notifications a change causes may wait for FUSE requests) waits as
 * the backend's feed_fd says, drains its changes and hands each to ev_feed(). window_ms
 * (-o feed_ms) bounds how long a change waits: a backend that is polled is polled that
 * often; one with a descriptor is read window_ms after the descriptor became readable,
 * so that a burst of changes reaches the kernel as few (inotify merges repeated events
 * of one file). -1 keeps the backend's interval and reads at once. */
#ifndef SIGBUSFS_FEED_H
#define SIGBUSFS_FEED_H

#include "sfs.h"

struct feed;

/* Starts the thread, or sets *out NULL for a backend without a feed. Call once the
 * session is mounted and the selfstat helpers run. 0 or -errno. */
int feed_start(struct sfs *fs, int window_ms, struct feed **out);
/* Stops the thread (after the change it is applying) and frees f; NULL does nothing. */
void feed_stop(struct feed *f);

#endif
