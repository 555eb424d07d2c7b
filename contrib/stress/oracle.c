/* The model of every page's history and the oracle that judges an access against it.
 * Design note: every change of a file (controller event or client write) runs under the
 * file's lock with a per-file sequence number s; its page states are pushed with seq s
 * before `started` becomes s, and `done` becomes s when it has returned. An access reads
 * a = done before and b = started after itself, so it happened while the events <= a were
 * finished and none > b had begun. For each page the legal outcomes are then the states
 * from the last cache-dropping ("barrier") entry <= a up to the last entry <= b: states
 * after a non-notifying write may still show the older cached bytes until a barrier, and
 * an event in flight may show its old or its new state. A revocation <= a makes SIGBUS
 * (EIO) mandatory for mappings (descriptors) opened before it; one <= b makes it legal. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "stress.h"

struct snap {
	struct hent e[HIST_MAX];
	size_t n; /* entries copied, oldest first */
	bool is_wrapped;
	uint32_t revokes;
	uint64_t revoke_seq; /* of the first revocation after the window's epoch */
};

/* The judge's working set: legal states, older ones (stale if seen), the revoke overlay. */
struct cands {
	struct pstate ok[HIST_MAX], old[HIST_MAX];
	size_t nok, nold;
	bool is_inflight;  /* an event in (a, b]: a copy may mix two legal states */
	bool is_dead_must; /* a revocation finished before the access */
	bool is_dead_may;  /* one had started before it ended */
	bool has_own;	   /* the client's COWed copy is legal */
	bool is_own_only;  /* ... and nothing else is */
	struct pstate own; /* version of the COWed copy, full page */
};

uint64_t model_begin(struct fmodel *f)
{
	return atomic_load(&f->started) + 1;
}

void model_started(struct fmodel *f, uint64_t seq)
{
	atomic_store(&f->started, seq);
}

void model_done(struct fmodel *f, uint64_t seq)
{
	atomic_store(&f->done, seq);
}

void model_push(struct fmodel *f, unsigned pg, uint64_t seq, const struct pstate *st)
{
	struct phist *h = &f->hist[pg];

	atomic_fetch_add_explicit(&f->hseq, 1, memory_order_acq_rel);
	h->e[h->n % HIST_MAX] = (struct hent){ .seq = seq, .st = *st };
	h->n++;
	atomic_fetch_add_explicit(&f->hseq, 1, memory_order_acq_rel);
}

struct pstate model_cur(const struct fmodel *f, unsigned pg)
{
	const struct phist *h = &f->hist[pg];

	return h->e[(h->n - 1) % HIST_MAX].st;
}

void model_revoke(struct fmodel *f, uint64_t seq)
{
	uint32_t n = atomic_load(&f->revokes);

	atomic_fetch_add_explicit(&f->hseq, 1, memory_order_acq_rel);
	f->revoke_seq[n % REVOKE_MAX] = seq;
	atomic_store(&f->revokes, n + 1);
	atomic_fetch_add_explicit(&f->hseq, 1, memory_order_acq_rel);
}

/* Copies page pg's history consistently (seqcount retry loop). */
static void snapshot(struct fmodel *f, unsigned pg, uint32_t epoch, struct snap *out)
{
	const struct phist *h = &f->hist[pg];
	uint32_t s0;

	do {
		s0 = atomic_load_explicit(&f->hseq, memory_order_acquire);
		if (s0 & 1)
			continue;
		uint32_t n = h->n;
		out->n = n < HIST_MAX ? n : HIST_MAX;
		out->is_wrapped = n > HIST_MAX;
		for (size_t i = 0; i < out->n; i++)
			out->e[i] = h->e[(n - out->n + i) % HIST_MAX];
		out->revokes = atomic_load(&f->revokes);
		out->revoke_seq = out->revokes > epoch ? f->revoke_seq[epoch % REVOKE_MAX] : 0;
		atomic_thread_fence(memory_order_acquire);
	} while ((s0 & 1) || atomic_load_explicit(&f->hseq, memory_order_acquire) != s0);
}

/* Fills c from the snapshot; false when the history that decides was overwritten. */
static bool cands_build(const struct snap *s, const struct window *w, struct cands *c)
{
	size_t floor = s->n;

	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < s->n; i++) {
		if (s->e[i].seq <= w->a && (s->e[i].st.flags & PS_BARRIER))
			floor = i;
	}
	if (floor == s->n)
		return false;
	for (size_t i = 0; i < s->n; i++) {
		if (i < floor)
			c->old[c->nold++] = s->e[i].st;
		else if (s->e[i].seq <= w->b)
			c->ok[c->nok++] = s->e[i].st;
		if (s->e[i].seq > w->a && s->e[i].seq <= w->b)
			c->is_inflight = true;
	}
	c->is_dead_must = s->revoke_seq && s->revoke_seq <= w->a;
	c->is_dead_may = s->revoke_seq && s->revoke_seq <= w->b;
	if (c->is_dead_may && !c->is_dead_must)
		c->is_inflight = true;
	return true;
}

static bool st_faults(const struct pstate *st)
{
	return st->eof == 0 || (st->flags & PS_FAIL);
}

/* Whether seen data (n bytes) equals state st's image. */
static bool st_matches(unsigned f, unsigned pg, const struct pstate *st, const char *buf,
		       unsigned n)
{
	char img[PG];

	stamp_image(img, f, pg, st);
	return memcmp(img, buf, n) == 0;
}

/* Whether every byte of buf equals that byte of some legal image (a copy racing an event). */
static bool is_mix(unsigned f, unsigned pg, const struct cands *c, const char *buf, unsigned n)
{
	static char img[HIST_MAX + 1][PG];
	size_t k = 0;

	for (size_t i = 0; i < c->nok; i++)
		stamp_image(img[k++], f, pg, &c->ok[i]);
	if (c->has_own)
		stamp_image(img[k++], f, pg, &c->own);
	for (unsigned at = 0; at < n; at++) {
		size_t j = 0;

		while (j < k && img[j][at] != buf[at])
			j++;
		if (j == k)
			return false;
	}
	return true;
}

static void describe_state(char *buf, size_t size, const struct pstate *st, bool is_pread)
{
	size_t used = strlen(buf);
	const char *sep = used ? " | " : "";

	if (st->eof == 0)
		snprintf(buf + used, size - used, "%s%s", sep,
			 is_pread ? "EOF (0 bytes)" : "SIGBUS");
	else if ((st->flags & PS_FAIL) && !is_pread)
		snprintf(buf + used, size - used, "%sSIGBUS (read rule)", sep);
	else if (st->flags & PS_FAIL)
		snprintf(buf + used, size - used, "%sEIO (read rule)", sep);
	else if (st->version == 0)
		snprintf(buf + used, size - used, "%szeros", sep);
	else
		snprintf(buf + used, size - used, "%sv%u len=%u", sep, st->version, st->len);
	used = strlen(buf);
	if (is_pread && st->eof && st->eof < PG && !(st->flags & PS_FAIL))
		snprintf(buf + used, size - used, " (%u bytes)", st->eof);
}

static void describe_expected(const struct cands *c, bool is_pread, struct verdict *v)
{
	v->expected[0] = 0;
	if (c->is_dead_must) {
		snprintf(v->expected, sizeof(v->expected), "%s (revoked before the access)",
			 is_pread ? "EIO" : "SIGBUS");
		return;
	}
	if (c->has_own)
		describe_state(v->expected, sizeof(v->expected), &c->own, false);
	for (size_t i = 0; !c->is_own_only && i < c->nok; i++)
		describe_state(v->expected, sizeof(v->expected), &c->ok[i], is_pread);
	if (c->is_dead_may)
		strncat(v->expected, " | SIGBUS/EIO (revocation in flight)",
			sizeof(v->expected) - strlen(v->expected) - 1);
}

static void describe_seen(const struct seen *s, struct verdict *v)
{
	struct obs o;

	if (s->is_sigbus || s->err) {
		snprintf(v->seen, sizeof(v->seen), "%s",
			 s->is_sigbus ? "SIGBUS" : strerror(s->err));
		return;
	}
	stamp_decode(s->buf, s->n, &o);
	if (o.kind == OBS_ZERO)
		snprintf(v->seen, sizeof(v->seen), "zeros (%u bytes)", s->n);
	else if (o.kind == OBS_STAMP)
		snprintf(v->seen, sizeof(v->seen), "v%u len=%u (stamp of f%u page %u), %u bytes",
			 o.version, o.len, o.file, o.page, s->n);
	else
		snprintf(v->seen, sizeof(v->seen), "a torn page: %s", o.why);
}

/* For pread a fault is EIO on a page inside the file; for a mapping, SIGBUS. */
static bool st_fault_for(const struct pstate *st, bool is_pread)
{
	return is_pread ? st->eof && (st->flags & PS_FAIL) : st_faults(st);
}

static bool may_fault(const struct cands *c, bool is_pread)
{
	if (c->is_dead_may)
		return true;
	for (size_t i = 0; !c->is_own_only && i < c->nok; i++) {
		if (st_fault_for(&c->ok[i], is_pread))
			return true;
	}
	return false;
}

static bool must_fault(const struct cands *c, bool is_pread)
{
	if (c->is_dead_must)
		return true;
	if (c->has_own || c->nok == 0)
		return false;
	for (size_t i = 0; i < c->nok; i++) {
		if (!st_fault_for(&c->ok[i], is_pread))
			return false;
	}
	return true;
}

/* Whether the data seen is the image of one of the n states. */
static bool data_in(unsigned f, unsigned pg, const struct pstate *sts, size_t n,
		    const struct seen *s, bool is_pread)
{
	for (size_t i = 0; i < n; i++) {
		unsigned want = is_pread ? sts[i].eof : PG;

		if (st_fault_for(&sts[i], is_pread) || (!is_pread && sts[i].eof == 0))
			continue;
		if (want == s->n && st_matches(f, pg, &sts[i], s->buf, s->n))
			return true;
	}
	return false;
}

/* Whether a legal state holds n bytes of the file (pread). */
static bool size_in(const struct cands *c, unsigned n)
{
	for (size_t i = 0; i < c->nok; i++) {
		if (c->ok[i].eof == n)
			return true;
	}
	return false;
}

static enum verdict_kind judge(unsigned f, unsigned pg, const struct cands *c, const struct seen *s)
{
	bool is_pread = s->acc == ACC_PREAD;

	if (s->is_sigbus || s->err == EIO)
		return !may_fault(c, is_pread) ? V_SIGBUS_BAD : is_pread ? V_EIO_OK : V_SIGBUS_OK;
	if (s->err)
		return V_ERRNO;
	/* the daemon's revocation makes the kernel believe size 0 for an instant before
	 * it fails reads (fs/revoke.c): legal while the revocation runs, never after */
	if (is_pread && s->n == 0 && c->is_dead_may && !c->is_dead_must)
		return V_EOF_OK;
	if (must_fault(c, is_pread))
		return V_SIGBUS_MISSING;
	if (c->has_own && data_in(f, pg, &c->own, 1, s, false))
		return V_OK;
	if (!c->is_own_only && data_in(f, pg, c->ok, c->nok, s, is_pread))
		return V_OK;
	if (is_pread && !size_in(c, s->n))
		return V_SHORT;
	if (data_in(f, pg, c->old, c->nold, s, is_pread))
		return V_STALE;
	if (c->is_inflight && is_mix(f, pg, c, s->buf, s->n))
		return V_MIXED_OK;
	return V_TORN;
}

/* The client's COWed copy: legal, and alone, unless a truncation past it may have removed
 * it since it was made (that also removes private copies). */
static void cands_cow(const struct snap *sn, const struct window *w, const struct seen *s,
		      struct cands *c)
{
	bool is_gone = false, may_be_gone = false;

	for (size_t i = 0; i < sn->n; i++) {
		if (sn->e[i].st.eof != 0)
			continue;
		if (sn->e[i].seq > s->cow_b && sn->e[i].seq <= w->a)
			is_gone = true;
		if (sn->e[i].seq > s->cow_a && sn->e[i].seq <= w->b)
			may_be_gone = true;
	}
	if (is_gone)
		return;
	c->has_own = true;
	c->is_own_only = !may_be_gone;
	c->own = (struct pstate){ .version = s->cow_version, .len = PG, .eof = PG };
}

void oracle_judge(struct run *r, unsigned f, unsigned pg, const struct window *w,
		  const struct seen *s, struct verdict *out)
{
	static struct snap sn;
	struct cands c;

	memset(out, 0, sizeof(*out));
	snapshot(&r->shm->f[f], pg, w->epoch, &sn);
	if (!cands_build(&sn, w, &c)) {
		out->kind = V_UNDECIDED;
		return;
	}
	if (s->acc == ACC_PRIVATE && s->has_cow)
		cands_cow(&sn, w, s, &c);
	out->kind = judge(f, pg, &c, s);
	out->is_cow_gone =
		s->has_cow && (s->is_sigbus || !c.has_own || !data_in(f, pg, &c.own, 1, s, false));
	if (verdict_is_violation(out->kind)) {
		describe_expected(&c, s->acc == ACC_PREAD, out);
		describe_seen(s, out);
	}
}

bool verdict_is_violation(enum verdict_kind k)
{
	return k >= V_SIGBUS_BAD;
}

const char *verdict_name(enum verdict_kind k)
{
	static const char *const names[] = {
		[V_OK] = "ok",
		[V_SIGBUS_OK] = "expected SIGBUS",
		[V_EIO_OK] = "expected EIO",
		[V_MIXED_OK] = "copy racing an event",
		[V_EOF_OK] = "end of file during a revocation",
		[V_UNDECIDED] = "undecided (history overwritten)",
		[V_SIGBUS_BAD] = "unexpected SIGBUS/EIO",
		[V_SIGBUS_MISSING] = "missing SIGBUS/EIO",
		[V_STALE] = "stale read",
		[V_TORN] = "torn or misplaced page",
		[V_ERRNO] = "unexpected error",
		[V_SHORT] = "wrong read size (EOF or short read)",
	};

	return names[k];
}
