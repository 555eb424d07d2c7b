/* fsx operations: the generator that draws each op (kind, offset, length, flags) from the
 * PRNG and the model, and one executor per kind; mapped accesses go through touch.h's
 * SIGBUS guard. Checks go through fsx.c; failure reports through fsx_report.c. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fsx_int.h"
#include "touch.h"

/* Relative frequency of each kind; FSX_CHECK is never drawn. */
static const unsigned op_weight[FSX_CHECK] = {
	[FSX_READ] = 14,    [FSX_WRITE] = 14, [FSX_MAPREAD] = 14, [FSX_MAPWRITE] = 14,
	[FSX_TRUNCATE] = 8, [FSX_PUNCH] = 7,  [FSX_ZERO] = 7,	  [FSX_FALLOC] = 6,
	[FSX_FSYNC] = 3,    [FSX_REOPEN] = 3, [FSX_EOFCHECK] = 5, [FSX_DONTNEED] = 4,
};

static unsigned kind_weight(const struct fsx *f, int op)
{
	return f->st.skipped & (1u << op) ? 0 : op_weight[op];
}

static enum fsx_op gen_kind(struct fsx *f)
{
	unsigned total = 0, pick;
	int op;

	for (op = 0; op < FSX_CHECK; op++)
		total += kind_weight(f, op);
	pick = (unsigned)fsx_below(f, total);
	for (op = 0; pick >= kind_weight(f, op); op++)
		pick -= kind_weight(f, op);
	return (enum fsx_op)op;
}

static uint64_t clamp(int64_t v, uint64_t lo, uint64_t hi)
{
	if (v < (int64_t)lo)
		return lo;
	return (uint64_t)v > hi ? hi : (uint64_t)v;
}

/* Far ops are rare while the file is small. Once the file reaches the far range, a third
 * of the ops go there, so its data is exercised before a truncate drops it again. */
static const struct fsx_region *gen_region(struct fsx *f, bool is_data_op)
{
	if (!f->far.buf)
		return &f->near;
	if (f->size > f->far.base)
		return fsx_chance(f, 33) ? &f->far : &f->near;
	if (is_data_op && fsx_below(f, 400) == 0)
		return &f->far;
	return &f->near;
}

/* An offset in reg: near EOF, near a page boundary, inside the file, or anywhere. */
static uint64_t gen_off(struct fsx *f, const struct fsx_region *reg)
{
	int64_t pg = (int64_t)f->page, v;
	uint64_t lim;

	switch (fsx_below(f, 6)) {
	case 0:
		v = (int64_t)f->size - pg - 3 + (int64_t)fsx_below(f, 2 * (uint64_t)pg + 7);
		break;
	case 1:
		v = (int64_t)(reg->base + fsx_below(f, reg->len / f->page + 1) * f->page);
		v += 3 - (int64_t)fsx_below(f, 7);
		break;
	case 2:
		lim = f->size < reg->base + reg->len ? f->size : reg->base + reg->len;
		v = (int64_t)(reg->base + (lim > reg->base ? fsx_below(f, lim - reg->base) : 0));
		break;
	default:
		v = (int64_t)(reg->base + fsx_below(f, reg->len));
		break;
	}
	return clamp(v, reg->base, reg->base + reg->len - 1);
}

/* A length from off: tiny, about a page or a few, up to a page boundary, or anything;
 * never past end. */
static uint64_t gen_len(struct fsx *f, uint64_t off, uint64_t end)
{
	uint64_t pg = f->page, len;

	switch (fsx_below(f, 6)) {
	case 0:
		len = 1 + fsx_below(f, 16);
		break;
	case 1:
		len = (1 + fsx_below(f, 3)) * pg - 3 + fsx_below(f, 7);
		break;
	case 2:
		len = pg - off % pg + pg * fsx_below(f, 3);
		break;
	default:
		len = 1 + fsx_below(f, f->o->max_len);
		break;
	}
	if (len > f->o->max_len)
		len = f->o->max_len;
	return len < end - off ? len : end - off;
}

/* A new size: 0, near the current size, near a page boundary, or anywhere (rarely far). */
static uint64_t gen_size(struct fsx *f)
{
	int64_t pg = (int64_t)f->page;
	uint64_t max = f->near.len;

	if (f->far.buf && fsx_below(f, 200) == 0)
		return f->far.base + fsx_below(f, f->far.len + 1);
	if (f->size > f->far.base && f->far.buf)
		max = f->far.base + f->far.len;
	switch (fsx_below(f, 10)) {
	case 0:
		return 0;
	case 1:
	case 2:
		return clamp((int64_t)f->size - pg - 3 + (int64_t)fsx_below(f, 2 * f->page + 7), 0,
			     max);
	case 3:
	case 4:
		return clamp((int64_t)(fsx_below(f, f->near.len / f->page + 1) * f->page) + 3 -
				     (int64_t)fsx_below(f, 7),
			     0, f->near.len);
	default:
		return fsx_below(f, f->near.len + 1);
	}
}

/* Offset and length of a range op; mapreads stay inside the file. */
static void gen_range(struct fsx *f, struct fsx_rec *r)
{
	bool is_mapread = r->op == FSX_MAPREAD;
	const struct fsx_region *reg = gen_region(f, r->op != FSX_READ && !is_mapread);
	uint64_t end = reg->base + reg->len;

	if (is_mapread && f->size < end)
		end = f->size;
	r->off = gen_off(f, reg);
	if (is_mapread && r->off >= end)
		r->off = reg->base + fsx_below(f, end - reg->base);
	r->len = gen_len(f, r->off, end);
	if (reg == &f->far)
		r->flags |= FSX_F_FAR;
}

static void gen_flags(struct fsx *f, struct fsx_rec *r)
{
	unsigned pick = (unsigned)fsx_below(f, 100);

	switch (r->op) {
	case FSX_MAPREAD:
		r->flags |= pick < 25 ? FSX_F_PRIVATE : 0;
		break;
	case FSX_MAPWRITE:
		if (pick < 40)
			r->flags |= FSX_F_MS_SYNC | (pick < 12 ? FSX_F_MS_INVAL : 0);
		else if (pick < 60)
			r->flags |= FSX_F_MS_ASYNC;
		break;
	case FSX_ZERO:
	case FSX_FALLOC:
		r->flags |= pick < 50 ? FSX_F_KEEP_SIZE : 0;
		break;
	case FSX_PUNCH:
		r->flags |= FSX_F_KEEP_SIZE;
		break;
	case FSX_FSYNC:
		r->flags |= pick < 50 ? FSX_F_DATASYNC : 0;
		break;
	case FSX_TRUNCATE:
		r->flags |= pick < 30 ? FSX_F_EOFCHECK : 0;
		break;
	default:
		break;
	}
}

void fsx_gen(struct fsx *f, long n, struct fsx_rec *out)
{
	*out = (struct fsx_rec){ .n = n, .op = gen_kind(f), .size_before = f->size };
	gen_flags(f, out);
	switch (out->op) {
	case FSX_TRUNCATE:
		out->len = gen_size(f);
		out->flags |= out->len > f->near.len ? FSX_F_FAR : 0;
		break;
	case FSX_MAPREAD:
		if (f->size == 0)
			out->flags |= FSX_F_SKIPPED;
		else
			gen_range(f, out);
		break;
	case FSX_DONTNEED:
		if (fsx_chance(f, 50))
			gen_range(f, out); /* else len 0: the whole file */
		break;
	case FSX_FSYNC:
	case FSX_REOPEN:
	case FSX_EOFCHECK:
		break;
	default:
		gen_range(f, out);
		break;
	}
}

static void fill_pattern(struct fsx *f, const struct fsx_rec *r)
{
	for (uint64_t i = 0; i < r->len; i++)
		f->buf[i] = fsx_pattern(r->n, r->off + i);
}

int fsx_map_check(struct fsx *f, const struct fsx_rec *r, const char *what, uint64_t off,
		  size_t len, bool is_private)
{
	uint64_t base = off - off % f->page;
	size_t maplen = (size_t)(off - base) + len;
	uintptr_t fault;
	char *p;
	int rc;

	p = mmap(NULL, maplen, PROT_READ, is_private ? MAP_PRIVATE : MAP_SHARED, f->fd,
		 (off_t)base);
	if (p == MAP_FAILED)
		return fsx_fail_errno(f, r, "mmap", -errno);
	if (touch_copy(f->buf, p + (off - base), len, &fault) == TOUCH_SIGBUS)
		rc = fsx_fail(f, r,
			      "%s: SIGBUS reading file offset 0x%" PRIx64 " through a mapping, "
			      "inside the file (size 0x%" PRIx64 ")",
			      what, base + (fault - (uintptr_t)p), f->size);
	else
		rc = fsx_compare(f, r, what, off, f->buf, len);
	munmap(p, maplen);
	return rc;
}

static int exec_read(struct fsx *f, struct fsx_rec *r)
{
	uint64_t want = r->off >= f->size ? 0 : f->size - r->off;
	ssize_t got;

	want = want < r->len ? want : r->len;
	got = pread(f->fd, f->buf, r->len, (off_t)r->off);
	if (got < 0)
		return fsx_fail_errno(f, r, "pread", -errno);
	if ((uint64_t)got != want)
		return fsx_fail(f, r,
				"pread returned %zd bytes, the model has %" PRIu64
				" there (size 0x%" PRIx64 ")",
				got, want, f->size);
	return fsx_compare(f, r, "pread", r->off, f->buf, want);
}

static int exec_write(struct fsx *f, struct fsx_rec *r)
{
	ssize_t got;

	fill_pattern(f, r);
	got = pwrite(f->fd, f->buf, r->len, (off_t)r->off);
	if (got < 0)
		return fsx_fail_errno(f, r, "pwrite", -errno);
	if ((uint64_t)got != r->len)
		return fsx_fail(f, r, "pwrite wrote %zd of %" PRIu64 " bytes", got, r->len);
	fsx_model_write(f, r->off, f->buf, r->len);
	return fsx_check_size(f, r);
}

static int exec_mapread(struct fsx *f, struct fsx_rec *r)
{
	if (r->flags & FSX_F_SKIPPED)
		return 0;
	return fsx_map_check(f, r, "mapread", r->off, r->len, r->flags & FSX_F_PRIVATE);
}

static int map_sync(struct fsx *f, struct fsx_rec *r, void *p, size_t len)
{
	int flags = r->flags & FSX_F_MS_SYNC ? MS_SYNC : MS_ASYNC;

	if (!(r->flags & (FSX_F_MS_SYNC | FSX_F_MS_ASYNC)))
		return 0;
	flags |= r->flags & FSX_F_MS_INVAL ? MS_INVALIDATE : 0;
	f->st.msyncs++;
	if (msync(p, len, flags) < 0)
		return fsx_fail_errno(f, r, "msync", -errno);
	return 0;
}

/* Mapped writes must stay inside the file, so like fsx, grow the file first. */
static int mapwrite_extend(struct fsx *f, struct fsx_rec *r)
{
	if (r->off + r->len <= f->size)
		return 0;
	if (ftruncate(f->fd, (off_t)(r->off + r->len)) < 0)
		return fsx_fail_errno(f, r, "ftruncate (mapwrite extend)", -errno);
	fsx_model_resize(f, r->off + r->len);
	r->flags |= FSX_F_EXTEND;
	return 0;
}

static int exec_mapwrite(struct fsx *f, struct fsx_rec *r)
{
	uint64_t base = r->off - r->off % f->page;
	size_t maplen = (size_t)(r->off - base + r->len);
	uintptr_t fault;
	char *p;
	int rc = mapwrite_extend(f, r);

	if (rc < 0)
		return rc;
	fill_pattern(f, r);
	p = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, (off_t)base);
	if (p == MAP_FAILED)
		return fsx_fail_errno(f, r, "mmap", -errno);
	if (touch_copy(p + (r->off - base), f->buf, r->len, &fault) == TOUCH_SIGBUS)
		rc = fsx_fail(f, r,
			      "mapwrite: SIGBUS writing file offset 0x%" PRIx64
			      " through a mapping, inside the file (size 0x%" PRIx64 ")",
			      base + (fault - (uintptr_t)p), f->size);
	if (rc == 0)
		rc = map_sync(f, r, p, maplen);
	munmap(p, maplen);
	if (rc == 0) {
		fsx_model_write(f, r->off, f->buf, r->len);
		rc = fsx_check_size(f, r);
	}
	return rc;
}

/* The first page wholly past EOF must raise SIGBUS, at that page. */
static int past_eof_check(struct fsx *f, const struct fsx_rec *r, char *p, uint64_t off)
{
	uintptr_t fault;
	char c;

	if (touch_copy(&c, p, 1, &fault) != TOUCH_SIGBUS)
		return fsx_fail(f, r,
				"eofcheck: reading file offset 0x%" PRIx64 ", the first page past "
				"EOF (size 0x%" PRIx64
				"), through a mapping gave 0x%02x, not SIGBUS",
				off, f->size, (unsigned char)c);
	if (fault != (uintptr_t)p)
		return fsx_fail(f, r,
				"eofcheck: SIGBUS at %p, expected %p (file offset 0x%" PRIx64 ")",
				(void *)fault, (void *)p, off);
	f->st.sigbus++;
	return 0;
}

/* fsx's "mapped last page zero fill": through a mapping, the EOF page reads the model's
 * bytes and zeros after EOF (the model holds zeros there); the next page raises SIGBUS. */
static int eof_check(struct fsx *f, const struct fsx_rec *r)
{
	uint64_t base = f->size - f->size % f->page;
	size_t maplen = f->size > base ? 2 * f->page : f->page;
	uintptr_t fault;
	char *p;
	int rc = 0;

	p = mmap(NULL, maplen, PROT_READ, MAP_SHARED, f->fd, (off_t)base);
	if (p == MAP_FAILED)
		return fsx_fail_errno(f, r, "mmap (eofcheck)", -errno);
	if (f->size > base && touch_copy(f->buf, p, f->page, &fault) == TOUCH_SIGBUS)
		rc = fsx_fail(f, r,
			      "eofcheck: SIGBUS at file offset 0x%" PRIx64 " in the EOF page "
			      "(size 0x%" PRIx64 ")",
			      base + (fault - (uintptr_t)p), f->size);
	else if (f->size > base)
		rc = fsx_compare(f, r, "EOF page read through a mapping", base, f->buf, f->page);
	if (rc == 0)
		rc = past_eof_check(f, r, p + maplen - f->page, base + maplen - f->page);
	munmap(p, maplen);
	return rc;
}

static int exec_eofcheck(struct fsx *f, struct fsx_rec *r)
{
	return eof_check(f, r);
}

static int exec_truncate(struct fsx *f, struct fsx_rec *r)
{
	int rc;

	if (ftruncate(f->fd, (off_t)r->len) < 0)
		return fsx_fail_errno(f, r, "ftruncate", -errno);
	fsx_model_resize(f, r->len);
	rc = fsx_check_size(f, r);
	if (rc == 0 && (r->flags & FSX_F_EOFCHECK))
		rc = eof_check(f, r);
	return rc;
}

/* punch, zero and falloc: the model zeroes (punch, zero) and grows (without KEEP_SIZE) */
static int exec_fallocate(struct fsx *f, struct fsx_rec *r)
{
	bool is_keep = r->flags & FSX_F_KEEP_SIZE;
	int mode = is_keep ? FALLOC_FL_KEEP_SIZE : 0;
	char call[64];

	if (r->op == FSX_PUNCH)
		mode |= FALLOC_FL_PUNCH_HOLE;
	else if (r->op == FSX_ZERO)
		mode |= FALLOC_FL_ZERO_RANGE;
	if (fallocate(f->fd, mode, (off_t)r->off, (off_t)r->len) < 0) {
		snprintf(call, sizeof(call), "fallocate(mode 0x%x)", mode);
		return fsx_fail_errno(f, r, call, -errno);
	}
	if (r->op != FSX_FALLOC)
		fsx_model_zero(f, r->off, r->len);
	if (!is_keep && r->off + r->len > f->size)
		fsx_model_resize(f, r->off + r->len);
	return fsx_check_size(f, r);
}

static int exec_fsync(struct fsx *f, struct fsx_rec *r)
{
	bool is_data = r->flags & FSX_F_DATASYNC;

	if ((is_data ? fdatasync(f->fd) : fsync(f->fd)) < 0)
		return fsx_fail_errno(f, r, is_data ? "fdatasync" : "fsync", -errno);
	return 0;
}

static int exec_reopen(struct fsx *f, struct fsx_rec *r)
{
	int rc = close(f->fd) < 0 ? -errno : 0;

	f->fd = -1;
	if (rc < 0)
		return fsx_fail_errno(f, r, "close", rc);
	f->fd = open(f->o->path, O_RDWR);
	if (f->fd < 0)
		return fsx_fail_errno(f, r, "open", -errno);
	return fsx_check_size(f, r);
}

static int exec_dontneed(struct fsx *f, struct fsx_rec *r)
{
	int err = posix_fadvise(f->fd, (off_t)r->off, (off_t)r->len, POSIX_FADV_DONTNEED);

	if (err)
		return fsx_fail_errno(f, r, "posix_fadvise DONTNEED", -err);
	return 0;
}

int fsx_exec(struct fsx *f, struct fsx_rec *r)
{
	static int (*const exec[FSX_CHECK])(struct fsx *, struct fsx_rec *) = {
		[FSX_READ] = exec_read,		[FSX_WRITE] = exec_write,
		[FSX_MAPREAD] = exec_mapread,	[FSX_MAPWRITE] = exec_mapwrite,
		[FSX_TRUNCATE] = exec_truncate, [FSX_PUNCH] = exec_fallocate,
		[FSX_ZERO] = exec_fallocate,	[FSX_FALLOC] = exec_fallocate,
		[FSX_FSYNC] = exec_fsync,	[FSX_REOPEN] = exec_reopen,
		[FSX_EOFCHECK] = exec_eofcheck, [FSX_DONTNEED] = exec_dontneed,
	};

	f->st.count[r->op]++;
	if (r->flags & FSX_F_FAR)
		f->st.far_ops++;
	return exec[r->op](f, r);
}
