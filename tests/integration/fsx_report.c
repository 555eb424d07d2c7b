/* fsx reports: the operation log, and what a person needs when a check fails: the failing
 * op, file offsets, a hexdump of expected and seen bytes around the first difference, which
 * op the seen bytes came from, the last operations and the line that replays the run. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "fsx_int.h"

struct fsx_rec *fsx_log_next(struct fsx *f)
{
	struct fsx_rec *r = &f->log[f->logged++ % FSX_LOG_LEN];

	memset(r, 0, sizeof(*r));
	return r;
}

static void flags_str(unsigned flags, char *buf, size_t size)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {
		{ FSX_F_KEEP_SIZE, "keep_size" }, { FSX_F_PRIVATE, "private" },
		{ FSX_F_MS_SYNC, "ms_sync" },	  { FSX_F_MS_ASYNC, "ms_async" },
		{ FSX_F_MS_INVAL, "ms_inval" },	  { FSX_F_DATASYNC, "datasync" },
		{ FSX_F_EXTEND, "extend" },	  { FSX_F_FAR, "far" },
		{ FSX_F_SKIPPED, "skipped" },	  { FSX_F_EOFCHECK, "eofcheck" },
	};
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && used < size; i++) {
		if (flags & names[i].bit)
			used += (size_t)snprintf(buf + used, size - used, " %s", names[i].name);
	}
}

/* Whether r changed or read the byte at pos: its range, or the span a size change crossed. */
static bool rec_touches(const struct fsx_rec *r, uint64_t pos)
{
	uint64_t lo = r->size_before < r->size_after ? r->size_before : r->size_after;
	uint64_t hi = r->size_before ^ r->size_after ^ lo;

	if (pos >= lo && pos < hi)
		return true;
	switch (r->op) {
	case FSX_TRUNCATE:
	case FSX_FSYNC:
	case FSX_REOPEN:
	case FSX_EOFCHECK:
	case FSX_CHECK:
		return false;
	default:
		return pos >= r->off && pos < r->off + r->len;
	}
}

static void print_rec(FILE *out, const struct fsx_rec *r, bool is_failed, const uint64_t *mark)
{
	char range[64] = "", flags[96];

	if (r->op == FSX_TRUNCATE)
		snprintf(range, sizeof(range), "to 0x%" PRIx64, r->len);
	else if (r->len)
		snprintf(range, sizeof(range), "[0x%" PRIx64 ", 0x%" PRIx64 ") +0x%" PRIx64, r->off,
			 r->off + r->len, r->len);
	else if (r->op == FSX_DONTNEED)
		snprintf(range, sizeof(range), "whole file");
	flags_str(r->flags, flags, sizeof(flags));
	fprintf(out, "  %c #%-7ld %-9s %-38s size 0x%" PRIx64,
		mark && rec_touches(r, *mark) ? '*' : ' ', r->n, fsx_op_name(r->op), range,
		r->size_before);
	if (is_failed)
		fprintf(out, " -> (failed here)%s\n", flags);
	else
		fprintf(out, " -> 0x%" PRIx64 "%s\n", r->size_after, flags);
}

/* Oldest first; the newest entry is the failing op. mark (may be NULL): star the ops that
 * touched that file offset. */
static void print_log(const struct fsx *f, const uint64_t *mark)
{
	long count = f->logged < FSX_LOG_LEN ? f->logged : FSX_LOG_LEN;
	FILE *out = f->o->out;

	fprintf(out, "  last %ld operations, oldest first", count);
	if (mark)
		fprintf(out, " (* = touched file offset 0x%" PRIx64 ")", *mark);
	fprintf(out, ":\n");
	for (long i = f->logged - count; i < f->logged; i++)
		print_rec(out, &f->log[i % FSX_LOG_LEN], i == f->logged - 1, mark);
}

static void print_header(const struct fsx *f, const struct fsx_rec *r)
{
	fprintf(f->o->out, "\nfsx[%s]: FAILED at op #%ld (%s) on %s, seed 0x%" PRIx64 "\n",
		f->o->name, r->n, fsx_op_name(r->op), f->o->path, f->o->seed);
}

static void print_replay(const struct fsx *f, const struct fsx_rec *r)
{
	fprintf(f->o->out,
		"  replay: FSX_SEED=0x%" PRIx64 " FSX_OPS=%ld (the op sequence depends on the seed "
		"only; FSX_DIR=<dir> runs it on any directory)\n\n",
		f->o->seed, r->n);
}

int fsx_fail(struct fsx *f, const struct fsx_rec *r, const char *fmt, ...)
{
	va_list ap;

	print_header(f, r);
	fprintf(f->o->out, "  ");
	va_start(ap, fmt);
	vfprintf(f->o->out, fmt, ap);
	va_end(ap);
	fprintf(f->o->out, "\n");
	print_log(f, NULL);
	print_replay(f, r);
	return -EIO;
}

int fsx_fail_errno(struct fsx *f, const struct fsx_rec *r, const char *call, int err)
{
	fsx_fail(f, r, "%s: %s (errno %d), model size 0x%" PRIx64, call, strerror(-err), -err,
		 f->size);
	return err;
}

static void print_bytes(FILE *out, const char *label, const unsigned char *b, uint64_t line,
			uint64_t lo, uint64_t hi)
{
	fprintf(out, "  0x%010" PRIx64 " %s", line, label);
	for (uint64_t p = line; p < line + 16; p++) {
		if (p >= lo && p < hi)
			fprintf(out, " %02x", b[p - lo]);
		else
			fprintf(out, "   ");
	}
	fprintf(out, "\n");
}

static void print_marks(FILE *out, const unsigned char *exp, const unsigned char *seen,
			uint64_t line, uint64_t lo, uint64_t hi)
{
	fprintf(out, "  %21s", "");
	for (uint64_t p = line; p < line + 16 && p < hi; p++)
		fprintf(out, "%s", p >= lo && exp[p - lo] != seen[p - lo] ? " ^^" : "   ");
	fprintf(out, "\n");
}

/* Lines of 16 bytes around file offset bad; exp and seen hold [lo, hi). */
static void print_hexdump(FILE *out, const unsigned char *exp, const unsigned char *seen,
			  uint64_t lo, uint64_t hi, uint64_t bad)
{
	uint64_t first = (bad & ~15ull) >= lo + 32 ? (bad & ~15ull) - 32 : lo & ~15ull;
	uint64_t end = (bad & ~15ull) + 48 < hi ? (bad & ~15ull) + 48 : hi;

	fprintf(out, "  file offset  (^^ = differs)\n");
	for (uint64_t line = first; line < end; line += 16) {
		bool has_diff = false;

		print_bytes(out, "expected", exp, line, lo, hi);
		print_bytes(out, "seen    ", seen, line, lo, hi);
		for (uint64_t p = line; p < line + 16 && p < hi; p++)
			has_diff |= p >= lo && exp[p - lo] != seen[p - lo];
		if (has_diff)
			print_marks(out, exp, seen, line, lo, hi);
	}
}

/* What the seen bytes suggest. Data bytes at even offsets are n % 255 + 1 for the op n
 * that wrote them (fsx_pattern), so a nonzero one names the writer modulo 255. */
static void print_hint(const struct fsx *f, long now, uint64_t pos, unsigned char exp,
		       unsigned char seen)
{
	FILE *out = f->o->out;
	long m, last;

	if (seen == 0)
		fprintf(out, "  hint: zeros where the model has data: a lost write, or a truncate, "
			     "punch or zero range that reached too far\n");
	else if (exp == 0)
		fprintf(out, "  hint: data where the model has zeros: stale bytes that survived a "
			     "truncate, punch or zero range, or a write that landed elsewhere\n");
	if (seen == 0 || pos % 2)
		return;
	m = seen - 1;
	last = now - ((now - m) % 255 + 255) % 255;
	fprintf(out,
		"  hint: the seen byte 0x%02x at even offset 0x%" PRIx64 " is what ops numbered "
		"%ld (mod 255) write; the latest such op up to now is #%ld\n",
		seen, pos, m, last);
}

int fsx_fail_data(struct fsx *f, const struct fsx_rec *r, const char *what, uint64_t off,
		  const unsigned char *exp, const unsigned char *seen, size_t len)
{
	size_t first = 0, last = 0, nbad = 0, even;
	uint64_t bad;

	for (size_t i = 0; i < len; i++) {
		if (exp[i] == seen[i])
			continue;
		first = nbad++ ? first : i;
		last = i;
	}
	bad = off + first;
	print_header(f, r);
	fprintf(f->o->out,
		"  %s: %zu byte(s) differ between file offsets 0x%" PRIx64 " and 0x%" PRIx64
		"; first at 0x%" PRIx64 " (page %" PRIu64 " + 0x%" PRIx64 "); model size 0x%" PRIx64
		"\n",
		what, nbad, bad, off + last, bad, bad / f->page, bad % f->page, f->size);
	print_hexdump(f->o->out, exp, seen, off, off + len, bad);
	even = bad % 2 && first < last && exp[first + 1] != seen[first + 1] ? first + 1 : first;
	print_hint(f, r->n, off + even, exp[even], seen[even]);
	print_log(f, &bad);
	print_replay(f, r);
	return -EIO;
}

void fsx_print_summary(const struct fsx *f, int rc)
{
	FILE *out = f->o->out;
	long ops = 0;

	for (int op = 0; op < FSX_CHECK; op++)
		ops += f->st.count[op];
	fprintf(out, "fsx[%s]: %s: %ld ops in %.1f s (seed 0x%" PRIx64 "):", f->o->name,
		rc == 0 ? "passed" : "FAILED", ops, f->st.secs, f->o->seed);
	for (int op = 0; op < FSX_OP_COUNT; op++)
		fprintf(out, " %s %ld", fsx_op_name(op), f->st.count[op]);
	fprintf(out, ", msync %ld, SIGBUS past EOF %ld, far %ld, far read-backs %ld\n",
		f->st.msyncs, f->st.sigbus, f->st.far_ops, f->st.far_checks);
}
