/* The daemon's context: one per mount, reached from every FUSE handler through
 * fuse_req_userdata() and from the control thread through the server's context pointer. */
#ifndef SIGBUSFS_SFS_H
#define SIGBUSFS_SFS_H

#include <stdint.h>

#include "backend.h"
#include "inode.h"
#include "opts.h"

struct sfs {
	struct bk *bk;
	struct itab *itab;
	struct fuse_session *se;
	enum cache_mode cache_mode;
	double timeout;	     /* attribute and entry timeout, seconds */
	uint64_t generation; /* of every entry reply; set before the session starts */
};

#endif
