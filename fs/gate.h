/* The gate every FUSE handler passes before touching the backend: it applies the mount's
 * plug state, the inode's revocation state, the liveness of the file handle and the fault
 * rules, and says what the request may do. */
#ifndef SIGBUSFS_GATE_H
#define SIGBUSFS_GATE_H

#include "ll.h"

enum gate_op {
	GATE_LOOKUP, /* a name resolved to this inode */
	GATE_ATTR,   /* getattr */
	GATE_DIR,    /* listing or looking up in this directory */
	GATE_META,   /* any change to this inode's metadata or names, readlink, xattrs */
	GATE_OPEN,
	GATE_READ,
	GATE_WRITE,
	GATE_FSYNC,
};

#define GATE_SIZE_ZERO 1 /* getattr: answer with size 0 (a revocation is truncating) */
#define GATE_EMPTY     2 /* readdir: answer with no entries (vanished backend) */

/* 0 to proceed, GATE_SIZE_ZERO or GATE_EMPTY, or -errno to answer. May sleep for delay
 * rules. fi may be NULL; off and len only matter for READ and WRITE. Counts errors. */
int gate(struct sfs *fs, uint64_t ino, enum gate_op op, const struct fuse_file_info *fi,
	 uint64_t off, uint64_t len);

/* The value a new file handle carries: the event sequence number it was opened at. */
uint64_t gate_handle(struct sfs *fs);

#endif
