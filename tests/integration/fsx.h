/* fsx: a seeded random file-operation exerciser in the manner of xfstests' fsx. It drives
 * one file with read/write, mapped read/write, truncate, fallocate modes, syncs and reopens,
 * checks every result against an in-memory model and prints an actionable report on the
 * first mismatch. It knows nothing of mounts: the caller chooses the file. */
#ifndef SIGBUSFS_TEST_FSX_H
#define SIGBUSFS_TEST_FSX_H

#include <stdint.h>
#include <stdio.h>

enum fsx_op {
	FSX_READ,     /* pread(2), sometimes across EOF */
	FSX_WRITE,    /* pwrite(2), may extend the file */
	FSX_MAPREAD,  /* mmap MAP_SHARED or MAP_PRIVATE, read inside EOF */
	FSX_MAPWRITE, /* ftruncate up if needed, mmap MAP_SHARED, write, msync or not */
	FSX_TRUNCATE, /* ftruncate(2), down or up */
	FSX_PUNCH,    /* fallocate PUNCH_HOLE|KEEP_SIZE */
	FSX_ZERO,     /* fallocate ZERO_RANGE, with or without KEEP_SIZE */
	FSX_FALLOC,   /* fallocate 0 or KEEP_SIZE */
	FSX_FSYNC,    /* fsync(2) or fdatasync(2) */
	FSX_REOPEN,   /* close(2) and open(2) again */
	FSX_EOFCHECK, /* mapped EOF page: the tail reads 0, the next page raises SIGBUS */
	FSX_DONTNEED, /* posix_fadvise DONTNEED: drop clean cached pages, so that later
		       * reads and faults fetch from the filesystem, not the page cache */
	FSX_CHECK,    /* full read-back of the file (a checkpoint, not drawn at random) */
	FSX_OP_COUNT
};

struct fsx_opts {
	const char *path;  /* the file to exercise; created, or truncated to 0 */
	const char *name;  /* label in every message, e.g. "strict" */
	uint64_t seed;	   /* the whole op sequence follows from it */
	long nops;	   /* operations to run (checkpoints not counted) */
	uint64_t max_size; /* bytes: sizes and offsets stay below this... */
	uint64_t far_off;  /* ...except rare ops at [far_off, far_off + 64 KiB); 0: never */
	uint32_t max_len;  /* bytes: the longest read, write or fallocate */
	long check_every;  /* ops between two full read-backs (also done at the end and
			    * whenever the file grows into the far range) */
	FILE *out;	   /* the seed line, the summary and any report */
};

struct fsx_stats {
	long count[FSX_OP_COUNT]; /* operations run, by kind */
	long msyncs;		  /* msync calls made by FSX_MAPWRITE */
	long sigbus;		  /* SIGBUS raised where expected (past the EOF page) */
	long far_ops;		  /* operations that touched the far range */
	long far_checks;	  /* read-backs of a file that reached the far range */
	unsigned skipped;	  /* 1u << op for kinds left out: fallocate modes the
				   * filesystem does not support (EOPNOTSUPP), as fsx does */
	double secs;		  /* wall time of the run */
};

/* Defaults: 1 MiB files, 64 KiB ops, far offset 256 MiB, a read-back every 500 ops,
 * 20000 ops, output to stderr, seed from the clock. path and name are borrowed. */
void fsx_opts_init(struct fsx_opts *o, const char *path, const char *name);

/* Applies FSX_SEED (decimal or 0x hex) and FSX_OPS from the environment. 0, or -EINVAL
 * (with a message on o->out) when one is malformed. */
int fsx_opts_env(struct fsx_opts *o);

/* Runs o->nops operations on o->path, then a final read-back. Returns 0; -EIO when data,
 * size or SIGBUS behaviour differed from the model; or -errno when a call failed that must
 * not. Every failure prints a report on o->out first: op number, offsets, a hexdump of
 * expected and seen bytes, the last operations, and how to replay. out may be NULL.
 * It owns the process's SIGBUS handler while it runs: one run per process at a time
 * (run concurrent exercisers in separate processes). The file is left in place. */
int fsx_run(const struct fsx_opts *o, struct fsx_stats *out);

/* "read", "mapwrite"...: the name of an operation kind */
const char *fsx_op_name(enum fsx_op op);

#endif
