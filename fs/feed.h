/* The change feed's thread: for a backend with BK_F_FEED, one thread of its own (never a
 * FUSE worker: the notifications a change causes may wait for FUSE requests) waits as
 * the backend's feed_fd says, drains its changes and hands each to ev_feed(). */
#ifndef SIGBUSFS_FEED_H
#define SIGBUSFS_FEED_H

#include "sfs.h"

struct feed;

/* Starts the thread, or sets *out NULL for a backend without a feed. Call once the
 * session is mounted and the selfstat helpers run. 0 or -errno. */
int feed_start(struct sfs *fs, struct feed **out);
/* Stops the thread (after the change it is applying) and frees f; NULL does nothing. */
void feed_stop(struct feed *f);

#endif
