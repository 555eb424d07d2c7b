/* The planted implementation of notify.h, for sigbusfs-planted only (never installed): it
 * proves that the stress oracle catches a coherence bug by skipping the Nth page
 * invalidation it is asked for (-o planted_skip_inval=N; 0 or absent: none). Attribute
 * invalidations (off < 0) are sent and not counted. */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "notify.h"

struct notify {
	unsigned long skip_nth; /* set once, before the session starts */
	atomic_ulong page_invals;
};

int notify_new(struct fuse_args *args, struct notify **out)
{
	static const struct fuse_opt table[] = {
		{ "planted_skip_inval=%lu", offsetof(struct notify, skip_nth), 0 },
		FUSE_OPT_END,
	};
	struct notify *n = calloc(1, sizeof(*n));

	*out = NULL;
	if (!n)
		return -ENOMEM;
	if (fuse_opt_parse(args, n, table, NULL) < 0) {
		fprintf(stderr, "sigbusfs-planted: bad -o planted_skip_inval=N\n");
		free(n);
		return -EINVAL;
	}
	atomic_init(&n->page_invals, 0);
	*out = n;
	return 0;
}

void notify_free(struct notify *n)
{
	free(n);
}

int notify_inval_inode(struct notify *n, struct fuse_session *se, uint64_t ino, off_t off,
		       off_t len)
{
	if (off >= 0 && n->skip_nth && atomic_fetch_add(&n->page_invals, 1) + 1 == n->skip_nth)
		return 0;
	return fuse_lowlevel_notify_inval_inode(se, ino, off, len);
}
