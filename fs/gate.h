/* The gate every FUSE handler passes before touching the backend: it applies the mount's
 * plug state, the inode's revocation state, the liveness of the file handle and the fault
 * rules, and says what the request may do. */
#ifndef SIGBUSFS_GATE_H
#define SIGBUSFS_GATE_H

#include <stdint.h>

#include "sfs.h"

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

#define GATE_NO_HANDLE 0 /* a request that carries no file handle */

/* 0 to proceed, GATE_SIZE_ZERO or GATE_EMPTY, or -errno to answer. May sleep for delay
 * rules. fh is the handle value the request carries (as gate_open() made it, for ino), or
 * GATE_NO_HANDLE; off and len only matter for READ and WRITE. Counts errors, and the
 * bytes of refused writes as lost. With a handle it takes no lock unless a rule is set. */
int gate(struct sfs *fs, uint64_t ino, enum gate_op op, uint64_t fh, uint64_t off, uint64_t len);
/* gate() of a client's write, which may also meet a torn rule: copied to *torn (torn->id
 * 0 if none; used up, it is gone from the rules). */
int gate_write(struct sfs *fs, uint64_t ino, uint64_t fh, uint64_t off, uint64_t len,
	       struct rule *torn);

/* A handle for a new open file of ino, in *fh_out (never GATE_NO_HANDLE): it remembers the
 * event sequence number it was opened at and holds ino's entry in the inode table, as a
 * writer if is_writer (the file was opened for writing). 0 or -ENOMEM. gate_release()
 * frees it. */
int gate_open(struct sfs *fs, uint64_t ino, bool is_writer, uint64_t *fh_out);
void gate_release(struct sfs *fs, uint64_t fh);
/* Adds n to counter c of ino, through fh's entry when fh is a handle (no lock). */
void gate_count(struct sfs *fs, uint64_t ino, uint64_t fh, enum inode_counter c, uint64_t n);

#endif
