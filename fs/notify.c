/* The shipped implementation of notify.h: no options, no state, straight to libfuse. */
#include <stddef.h>

#include "notify.h"

int notify_new(struct fuse_args *args, struct notify **out)
{
	*out = NULL;
	return 0;
}

void notify_free(struct notify *n)
{
}

int notify_inval_inode(struct notify *n, struct fuse_session *se, uint64_t ino, off_t off,
		       off_t len)
{
	return fuse_lowlevel_notify_inval_inode(se, ino, off, len);
}
