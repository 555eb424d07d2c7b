/* The feed thread: poll(2) on the backend's descriptor (if any) and on a pipe that
 * feed_stop() writes, with the backend's interval as the timeout; then, after the window
 * if the descriptor woke it, one feed_read().
 * A read that fails is logged once per run of failures and retried at the next wake. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "events.h"
#include "feed.h"
#include "log.h"

struct feed {
	struct sfs *fs;
	pthread_t thread;
	int stop[2];   /* a pipe: readable once feed_stop() wants the thread gone */
	int fd;	       /* the backend's, or -1 */
	int poll_ms;   /* the backend's interval, or -1 */
	int window_ms; /* how long a descriptor's news wait to be read, or 0 */
};

static int apply_change(void *ctx, const struct bk_change *ch)
{
	struct sfs *fs = ctx;
	int rc = ev_feed(fs, ch);

	if (rc < 0)
		log_warn("feed: change of kind %d to inode %llu: %s", (int)ch->kind,
			 (unsigned long long)ch->ino, strerror(-rc));
	return 0;
}

static void *feed_main(void *arg)
{
	struct feed *f = arg;
	struct pollfd p[2] = { { .fd = f->stop[0], .events = POLLIN },
			       { .fd = f->fd, .events = POLLIN } };
	bool failing = false;

	pthread_setname_np(pthread_self(), "sigbusfs-feed");
	while (poll(p, f->fd >= 0 ? 2 : 1, f->poll_ms) >= 0 || errno == EINTR) {
		int rc;

		if (p[0].revents)
			break;
		/* the window: only feed_stop() ends it early */
		if (p[1].revents && f->window_ms > 0 && poll(p, 1, f->window_ms) > 0)
			break;
		rc = bk_feed_read(f->fs->bk, apply_change, f->fs);
		if (rc < 0 && !failing)
			log_err("feed: reading the backend's changes: %s", strerror(-rc));
		failing = rc < 0;
	}
	return NULL;
}

int feed_start(struct sfs *fs, int window_ms, struct feed **out)
{
	struct feed *f;
	int rc;

	*out = NULL;
	if (!(fs->bk->ops->flags & BK_F_FEED))
		return 0;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->fs = fs;
	rc = bk_feed_fd(fs->bk, &f->fd, &f->poll_ms);
	if (window_ms >= 0 && f->fd < 0)
		f->poll_ms = window_ms > 0 ? window_ms : 1; /* not a busy loop */
	else if (window_ms > 0)
		f->window_ms = window_ms;
	if (rc == 0 && pipe2(f->stop, O_CLOEXEC) < 0)
		rc = -errno;
	if (rc < 0)
		goto out_free;
	rc = -pthread_create(&f->thread, NULL, feed_main, f);
	if (rc < 0)
		goto out_pipe;
	*out = f;
	return 0;

out_pipe:
	close(f->stop[0]);
	close(f->stop[1]);
out_free:
	free(f);
	return rc;
}

void feed_stop(struct feed *f)
{
	if (!f)
		return;
	if (write(f->stop[1], "", 1) < 0)
		log_warn("feed: waking the thread to stop: %s", strerror(errno));
	pthread_join(f->thread, NULL);
	close(f->stop[0]);
	close(f->stop[1]);
	free(f);
}
