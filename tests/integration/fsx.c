/* fsx engine: options, the seeded PRNG, the in-memory model of the file, the size and data
 * checks, checkpoints (full read-backs) and the run loop. Operations live in fsx_ops.c,
 * reports in fsx_report.c.
 * Design note: the op sequence depends only on the seed and the model, never on what the
 * filesystem answers, so FSX_SEED and FSX_OPS replay a run on any filesystem. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsx_int.h"
#include "touch.h"

static const char *const op_names[FSX_OP_COUNT] = {
	[FSX_READ] = "read",	     [FSX_WRITE] = "write",	  [FSX_MAPREAD] = "mapread",
	[FSX_MAPWRITE] = "mapwrite", [FSX_TRUNCATE] = "truncate", [FSX_PUNCH] = "punch",
	[FSX_ZERO] = "zero",	     [FSX_FALLOC] = "falloc",	  [FSX_FSYNC] = "fsync",
	[FSX_REOPEN] = "reopen",     [FSX_EOFCHECK] = "eofcheck", [FSX_DONTNEED] = "dontneed",
	[FSX_CHECK] = "check",
};

const char *fsx_op_name(enum fsx_op op)
{
	return (unsigned)op < FSX_OP_COUNT ? op_names[op] : "?";
}

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t fsx_rand(struct fsx *f)
{
	return splitmix64(&f->rng);
}

uint64_t fsx_below(struct fsx *f, uint64_t n)
{
	return fsx_rand(f) % n;
}

bool fsx_chance(struct fsx *f, unsigned percent)
{
	return fsx_below(f, 100) < percent;
}

void fsx_opts_init(struct fsx_opts *o, const char *path, const char *name)
{
	struct timespec ts;
	uint64_t s;

	clock_gettime(CLOCK_REALTIME, &ts);
	s = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec + ((uint64_t)getpid() << 32);
	*o = (struct fsx_opts){
		.path = path,
		.name = name,
		.seed = splitmix64(&s) & 0xffffffffu, /* short enough to retype */
		.nops = 20000,
		.max_size = 1024 * 1024,
		.far_off = 256ull * 1024 * 1024,
		.max_len = 64 * 1024,
		.check_every = 500,
		.out = stderr,
	};
}

static int parse_env_u64(FILE *out, const char *var, uint64_t *val)
{
	const char *s = getenv(var);
	char *end;

	if (!s || !*s)
		return 0;
	errno = 0;
	*val = strtoull(s, &end, 0);
	if (errno || *end || *s == '-') {
		fprintf(out, "fsx: %s=%s: not a number (decimal or 0x hex)\n", var, s);
		return -EINVAL;
	}
	return 0;
}

int fsx_opts_env(struct fsx_opts *o)
{
	uint64_t nops = (uint64_t)o->nops;
	int rc;

	rc = parse_env_u64(o->out, "FSX_SEED", &o->seed);
	if (rc == 0)
		rc = parse_env_u64(o->out, "FSX_OPS", &nops);
	if (rc == 0 && (nops == 0 || nops > 100000000)) {
		fprintf(o->out, "fsx: FSX_OPS=%" PRIu64 ": want 1..100000000\n", nops);
		rc = -EINVAL;
	}
	if (rc == 0)
		o->nops = (long)nops;
	return rc;
}

unsigned char fsx_pattern(long n, uint64_t pos)
{
	unsigned char tag = (unsigned char)(n % 255 + 1);

	if (pos & 1)
		tag += (unsigned char)(((uint32_t)(pos >> 1) * 0x9e3779b1u) >> 24);
	return tag;
}

/* The part of [off, off + len) inside r, as [*lo, *hi); false when they do not meet. */
static bool region_clip(const struct fsx_region *r, uint64_t off, uint64_t len, uint64_t *lo,
			uint64_t *hi)
{
	*lo = off > r->base ? off : r->base;
	*hi = off + len < r->base + r->len ? off + len : r->base + r->len;
	return r->buf && *lo < *hi;
}

void fsx_model_expect(const struct fsx *f, uint64_t off, size_t len, unsigned char *dst)
{
	const struct fsx_region *regs[2] = { &f->near, &f->far };
	uint64_t lo, hi;

	memset(dst, 0, len);
	for (int i = 0; i < 2; i++) {
		if (region_clip(regs[i], off, len, &lo, &hi))
			memcpy(dst + (lo - off), regs[i]->buf + (lo - regs[i]->base), hi - lo);
	}
}

void fsx_model_write(struct fsx *f, uint64_t off, const unsigned char *src, size_t len)
{
	struct fsx_region *regs[2] = { &f->near, &f->far };
	uint64_t lo, hi, done = 0;

	for (int i = 0; i < 2; i++) {
		if (!region_clip(regs[i], off, len, &lo, &hi))
			continue;
		memcpy(regs[i]->buf + (lo - regs[i]->base), src + (lo - off), hi - lo);
		done += hi - lo;
	}
	assert(done == len); /* the generator keeps data writes inside one region */
	if (off + len > f->size)
		f->size = off + len;
}

void fsx_model_zero(struct fsx *f, uint64_t off, uint64_t len)
{
	struct fsx_region *regs[2] = { &f->near, &f->far };
	uint64_t lo, hi;

	for (int i = 0; i < 2; i++) {
		if (region_clip(regs[i], off, len, &lo, &hi))
			memset(regs[i]->buf + (lo - regs[i]->base), 0, hi - lo);
	}
}

void fsx_model_resize(struct fsx *f, uint64_t size)
{
	if (size < f->size)
		fsx_model_zero(f, size, f->size - size);
	f->size = size;
}

int fsx_check_size(struct fsx *f, const struct fsx_rec *r)
{
	struct stat st;

	if (fstat(f->fd, &st) < 0)
		return fsx_fail_errno(f, r, "fstat", -errno);
	if ((uint64_t)st.st_size != f->size)
		return fsx_fail(f, r,
				"size: fstat says %" PRIu64 " (0x%" PRIx64 "), the model %" PRIu64
				" (0x%" PRIx64 ")",
				(uint64_t)st.st_size, (uint64_t)st.st_size, f->size, f->size);
	return 0;
}

int fsx_compare(struct fsx *f, const struct fsx_rec *r, const char *what, uint64_t off,
		const unsigned char *seen, size_t len)
{
	fsx_model_expect(f, off, len, f->exp);
	if (memcmp(f->exp, seen, len) == 0)
		return 0;
	return fsx_fail_data(f, r, what, off, f->exp, seen, len);
}

static int readback_chunk(struct fsx *f, const struct fsx_rec *r, uint64_t off, size_t len)
{
	ssize_t got = pread(f->fd, f->buf, len, (off_t)off);

	if (got < 0)
		return fsx_fail_errno(f, r, "pread (read-back)", -errno);
	if ((size_t)got != len)
		return fsx_fail(f, r,
				"read-back: pread(0x%" PRIx64 ", %zu) returned %zd inside the file "
				"(size 0x%" PRIx64 ")",
				off, len, got, f->size);
	return fsx_compare(f, r, "read-back", off, f->buf, len);
}

/* Every other read-back starts cold: written back and dropped from the page cache, so
 * that it checks what the filesystem stored, first through a mapping, then pread. */
static int drop_cache(struct fsx *f, const struct fsx_rec *r)
{
	int err;

	if (fdatasync(f->fd) < 0)
		return fsx_fail_errno(f, r, "fdatasync (read-back)", -errno);
	err = posix_fadvise(f->fd, 0, 0, POSIX_FADV_DONTNEED);
	if (err)
		return fsx_fail_errno(f, r, "posix_fadvise DONTNEED (read-back)", -err);
	return 0;
}

int fsx_checkpoint(struct fsx *f, const struct fsx_rec *r)
{
	uint64_t end = f->size < f->near.len ? f->size : f->near.len;
	bool is_cold = f->checkpoints++ % 2 == 1;
	uint64_t off, n;
	int rc = fsx_check_size(f, r);

	if (rc == 0 && is_cold)
		rc = drop_cache(f, r);
	for (off = 0; rc == 0 && is_cold && off < end; off += n) {
		n = end - off < FSX_CHUNK ? end - off : FSX_CHUNK;
		rc = fsx_map_check(f, r, "mapped read-back", off, n, false);
	}
	for (off = 0; rc == 0 && off < f->size; off += n) {
		n = f->size - off < FSX_CHUNK ? f->size - off : FSX_CHUNK;
		rc = readback_chunk(f, r, off, n);
	}
	f->st.count[FSX_CHECK]++;
	f->st.far_checks += f->size > f->near.len;
	return rc;
}

static int fsx_init(struct fsx *f, const struct fsx_opts *o)
{
	memset(f, 0, sizeof(*f));
	f->o = o;
	f->fd = -1;
	f->rng = o->seed;
	f->page = (size_t)sysconf(_SC_PAGESIZE);
	if (o->max_len == 0 || o->max_len > FSX_CHUNK || o->max_size < 4 * f->page ||
	    (o->far_off && o->far_off < o->max_size) || o->nops < 1 || o->check_every < 1)
		return -EINVAL;
	f->near = (struct fsx_region){ .base = 0, .len = o->max_size };
	f->far = (struct fsx_region){ .base = o->far_off, .len = o->far_off ? FSX_FAR_SPAN : 0 };
	f->near.buf = calloc(1, f->near.len);
	f->far.buf = o->far_off ? calloc(1, f->far.len) : NULL;
	f->buf = malloc(FSX_CHUNK);
	f->exp = malloc(FSX_CHUNK);
	if (!f->near.buf || (o->far_off && !f->far.buf) || !f->buf || !f->exp)
		return -ENOMEM;
	f->fd = open(o->path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (f->fd < 0)
		return -errno;
	return 0;
}

/* Safe on a partly initialised f. */
static void fsx_fini(struct fsx *f)
{
	if (f->fd >= 0)
		close(f->fd);
	free(f->near.buf);
	free(f->far.buf);
	free(f->buf);
	free(f->exp);
}

/* Like fsx, leave out the fallocate modes the filesystem lacks, and say so. The probes
 * keep the size of the empty file and so leave the model unchanged. */
static void probe_fallocate(struct fsx *f)
{
	static const struct {
		enum fsx_op op;
		int mode;
	} probes[] = {
		{ FSX_FALLOC, FALLOC_FL_KEEP_SIZE },
		{ FSX_PUNCH, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE },
		{ FSX_ZERO, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE },
	};

	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		if (fallocate(f->fd, probes[i].mode, 0, 1) == 0 || errno != EOPNOTSUPP)
			continue;
		f->st.skipped |= 1u << probes[i].op;
		fprintf(f->o->out,
			"fsx[%s]: fallocate mode 0x%x is not supported here: no %s ops\n",
			f->o->name, probes[i].mode, fsx_op_name(probes[i].op));
	}
}

/* Periodically, at the end, and whenever the file has just grown into the far range, so
 * that the sparse gap gets read back before a truncate drops it again. */
static bool is_checkpoint_due(const struct fsx *f, const struct fsx_rec *r)
{
	bool went_far = r->size_before <= f->near.len && r->size_after > f->near.len;

	return r->n % f->o->check_every == 0 || r->n == f->o->nops || went_far;
}

static int fsx_loop(struct fsx *f)
{
	const struct fsx_opts *o = f->o;
	struct fsx_rec *r;
	int rc = 0;
	long n;

	for (n = 1; rc == 0 && n <= o->nops; n++) {
		r = fsx_log_next(f);
		fsx_gen(f, n, r);
		rc = fsx_exec(f, r);
		r->size_after = f->size;
		if (rc == 0 && is_checkpoint_due(f, r)) {
			r = fsx_log_next(f);
			*r = (struct fsx_rec){ .n = n, .op = FSX_CHECK, .size_before = f->size };
			rc = fsx_checkpoint(f, r);
			r->size_after = f->size;
		}
	}
	return rc;
}

static double now_secs(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int fsx_run(const struct fsx_opts *o, struct fsx_stats *out)
{
	double start = now_secs();
	struct fsx f;
	int rc;

	fprintf(o->out,
		"fsx[%s]: %s: seed 0x%" PRIx64 ", %ld ops (replay: FSX_SEED=0x%" PRIx64
		" FSX_OPS=%ld)\n",
		o->name, o->path, o->seed, o->nops, o->seed, o->nops);
	rc = fsx_init(&f, o);
	if (rc < 0) {
		fprintf(o->out, "fsx[%s]: cannot start on %s: %s\n", o->name, o->path,
			strerror(-rc));
		goto out_fini;
	}
	probe_fallocate(&f);
	rc = touch_setup();
	if (rc < 0) {
		fprintf(o->out, "fsx[%s]: sigaction SIGBUS: %s\n", o->name, strerror(-rc));
		goto out_fini;
	}
	rc = fsx_loop(&f);
	f.st.secs = now_secs() - start;
	fsx_print_summary(&f, rc);
	if (out)
		*out = f.st;
out_fini:
	fsx_fini(&f);
	return rc;
}
