/* fsx internals shared by fsx.c (run loop, PRNG, model, checkpoints), fsx_ops.c (the
 * generator and one executor per operation) and fsx_report.c (failure reports). Nothing
 * outside the exerciser includes this header. */
#ifndef SIGBUSFS_TEST_FSX_INT_H
#define SIGBUSFS_TEST_FSX_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fsx.h"

#define FSX_LOG_LEN  20		   /* operations kept, and printed, in a report */
#define FSX_FAR_SPAN (64 * 1024)   /* bytes of the far range past o->far_off */
#define FSX_CHUNK    (1024 * 1024) /* bytes per read-back step; also the scratch size */

/* fsx_rec.flags: how an operation ran, as shown in the log */
#define FSX_F_KEEP_SIZE 0x001 /* fallocate with FALLOC_FL_KEEP_SIZE */
#define FSX_F_PRIVATE	0x002 /* mapread through MAP_PRIVATE */
#define FSX_F_MS_SYNC	0x004 /* mapwrite then msync(MS_SYNC) */
#define FSX_F_MS_ASYNC	0x008 /* mapwrite then msync(MS_ASYNC) */
#define FSX_F_MS_INVAL	0x010 /* ...with MS_INVALIDATE */
#define FSX_F_DATASYNC	0x020 /* fdatasync instead of fsync */
#define FSX_F_EXTEND	0x040 /* mapwrite had to ftruncate the file up first */
#define FSX_F_FAR	0x080 /* touched [far_off, far_off + FSX_FAR_SPAN) */
#define FSX_F_SKIPPED	0x100 /* nothing to do (a mapread of an empty file) */
#define FSX_F_EOFCHECK	0x200 /* truncate followed by the EOF page check */

/* One operation: drawn by fsx_gen(), completed by its executor. For FSX_TRUNCATE, len is
 * the new size and off is 0. */
struct fsx_rec {
	long n;		      /* op number from 1; a checkpoint has its op's */
	enum fsx_op op;	      /* FSX_CHECK for a checkpoint */
	unsigned flags;	      /* FSX_F_* */
	uint64_t off, len;    /* bytes */
	uint64_t size_before; /* model size when the op started */
	uint64_t size_after;  /* model size when it ended (valid once it completed) */
};

/* A dense window of the model; bytes outside every region are always zero. */
struct fsx_region {
	uint64_t base, len; /* bytes */
	unsigned char *buf; /* len bytes; bytes at or past the model size are zero */
};

struct fsx {
	const struct fsx_opts *o;
	struct fsx_stats st;
	int fd;				 /* -1 while closed */
	uint64_t rng;			 /* splitmix64 state */
	uint64_t size;			 /* model file size, bytes */
	size_t page;			 /* bytes */
	struct fsx_region near, far;	 /* [0, max_size) and the far range */
	unsigned char *buf;		 /* FSX_CHUNK bytes: op data, bytes read back */
	unsigned char *exp;		 /* FSX_CHUNK bytes: expected bytes */
	struct fsx_rec log[FSX_LOG_LEN]; /* ring of recent ops, newest at (logged-1) % LEN */
	long logged;			 /* ops ever logged */
	long checkpoints;		 /* read-backs done, to alternate their flavour */
};

/* fsx.c: PRNG */
uint64_t fsx_rand(struct fsx *f);
uint64_t fsx_below(struct fsx *f, uint64_t n); /* uniform in [0, n); n > 0 */
bool fsx_chance(struct fsx *f, unsigned percent);

/* fsx.c: the model. The data byte an op writes at a file position: even positions hold
 * n % 255 + 1 (never 0, so a report can name the op), odd ones mix in the position. */
unsigned char fsx_pattern(long n, uint64_t pos);
void fsx_model_expect(const struct fsx *f, uint64_t off, size_t len, unsigned char *dst);
void fsx_model_write(struct fsx *f, uint64_t off, const unsigned char *src, size_t len);
void fsx_model_zero(struct fsx *f, uint64_t off, uint64_t len);
void fsx_model_resize(struct fsx *f, uint64_t size);

/* fsx.c: checks. Each returns 0, or a failure already reported (-EIO or -errno). */
int fsx_check_size(struct fsx *f, const struct fsx_rec *r);
int fsx_compare(struct fsx *f, const struct fsx_rec *r, const char *what, uint64_t off,
		const unsigned char *seen, size_t len);
int fsx_checkpoint(struct fsx *f, const struct fsx_rec *r);

/* fsx_ops.c */
void fsx_gen(struct fsx *f, long n, struct fsx_rec *out);
int fsx_exec(struct fsx *f, struct fsx_rec *r);
/* Maps [off, off + len) (off need not be aligned; len <= FSX_CHUNK, inside the file), reads
 * it with a SIGBUS guard and compares it with the model. */
int fsx_map_check(struct fsx *f, const struct fsx_rec *r, const char *what, uint64_t off,
		  size_t len, bool is_private);

/* fsx_report.c: print a report on f->o->out, then return -EIO (fsx_fail, fsx_fail_data)
 * or err (fsx_fail_errno). r is the failing op. */
int fsx_fail(struct fsx *f, const struct fsx_rec *r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int fsx_fail_errno(struct fsx *f, const struct fsx_rec *r, const char *call, int err);
int fsx_fail_data(struct fsx *f, const struct fsx_rec *r, const char *what, uint64_t off,
		  const unsigned char *exp, const unsigned char *seen, size_t len);
/* The next log slot, zeroed: the caller fills it in and keeps updating it in place. */
struct fsx_rec *fsx_log_next(struct fsx *f);
/* One line with the counts per operation; rc is the run's result. */
void fsx_print_summary(const struct fsx *f, int rc);

#endif
