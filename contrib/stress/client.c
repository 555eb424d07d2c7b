/* A client process: maps every file MAP_SHARED and MAP_PRIVATE and mixes mapped reads,
 * pread, COW writes into its private mappings and, under the file's lock (so the oracle
 * knows their order), pwrite and mapped writes of its own stamps. Each access is judged
 * by oracle.c right away; the first violation is reported through report.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "stress.h"
#include "touch.h"

struct cow {
	uint32_t version; /* 0: the private page is not COWed */
	uint64_t a, b;	  /* the window of the write that COWed it */
};

struct cfile {
	bool is_open;
	int fd;
	char *sh, *pv;	/* MAP_SHARED and MAP_PRIVATE mappings of the whole maximum size */
	uint32_t epoch; /* revocations started before it was opened */
	struct cow *cow;
};

struct client {
	struct run *r;
	unsigned id;
	struct rng g;
	struct cstats *cs;
	struct cfile f[MAX_FILES];
	char buf[PG] __attribute__((aligned(PG)));
	char page[PG];
};

static size_t map_len(const struct client *c)
{
	return (size_t)c->r->npages * PG;
}

static void cfile_close(struct client *c, struct cfile *cf)
{
	if (!cf->is_open)
		return;
	munmap(cf->sh, map_len(c));
	munmap(cf->pv, map_len(c));
	close(cf->fd);
	memset(cf->cow, 0, sizeof(*cf->cow) * c->r->npages);
	cf->is_open = false;
}

/* Opens and maps file f under its lock, so no revocation runs meanwhile. 0 or -errno. */
static int cfile_open(struct client *c, unsigned f)
{
	struct cfile *cf = &c->f[f];
	struct fmodel *m = &c->r->shm->f[f];
	char path[PATH_MAX_STRESS];
	int rc = 0;

	file_abs(c->r, f, path, sizeof(path));
	fmodel_lock(m);
	cf->fd = open(path, O_RDWR | O_CLOEXEC);
	if (cf->fd < 0) {
		rc = -errno;
		goto out_unlock;
	}
	cf->sh = mmap(NULL, map_len(c), PROT_READ | PROT_WRITE, MAP_SHARED, cf->fd, 0);
	cf->pv = mmap(NULL, map_len(c), PROT_READ | PROT_WRITE, MAP_PRIVATE, cf->fd, 0);
	if (cf->sh == MAP_FAILED || cf->pv == MAP_FAILED) {
		rc = -errno;
		if (cf->sh != MAP_FAILED)
			munmap(cf->sh, map_len(c));
		close(cf->fd);
		goto out_unlock;
	}
	cf->epoch = atomic_load(&m->revokes);
	cf->is_open = true;
out_unlock:
	fmodel_unlock(m);
	return rc;
}

/* Whether file f was revoked since the client opened it and has been replugged since. */
static bool is_replugged(struct client *c, unsigned f)
{
	struct fmodel *m = &c->r->shm->f[f];
	struct cfile *cf = &c->f[f];

	if (atomic_load(&m->revokes) <= cf->epoch)
		return false;
	return atomic_load(&m->done) >= m->revoke_seq[cf->epoch % REVOKE_MAX] + 1;
}

static void account(struct client *c, uint64_t t0)
{
	atomic_fetch_add_explicit(&c->cs->busy_ns, now_ns() - t0, memory_order_relaxed);
}

/* Counts a verdict; reports it and returns true if it is a violation. */
static bool judged(struct client *c, unsigned f, unsigned pg, const struct window *w,
		   const struct seen *s, const struct verdict *v)
{
	static const enum ctr ctr_of[] = {
		[V_OK] = C_ACCESS,
		[V_SIGBUS_OK] = C_SIGBUS_OK,
		[V_EIO_OK] = C_EIO_OK,
		[V_MIXED_OK] = C_MIXED_OK,
		[V_EOF_OK] = C_EOF_OK,
		[V_UNDECIDED] = C_UNDECIDED,
		[V_SIGBUS_BAD] = C_SIGBUS_BAD,
		[V_SIGBUS_MISSING] = C_SIGBUS_MISSING,
		[V_STALE] = C_STALE,
		[V_TORN] = C_TORN,
		[V_ERRNO] = C_ERRNO,
		[V_SHORT] = C_SHORT,
	};

	atomic_fetch_add_explicit(&c->cs->c[C_ACCESS], 1, memory_order_relaxed);
	if (v->kind != V_OK)
		atomic_fetch_add_explicit(&c->cs->c[ctr_of[v->kind]], 1, memory_order_relaxed);
	if (!verdict_is_violation(v->kind))
		return false;
	report_violation(c->r, f, pg, c->id, s->acc, w, v);
	return true;
}

/* Reads page pg of file f one way and judges what it saw. True on a violation. */
static bool do_read(struct client *c, unsigned f, unsigned pg, enum acc_kind acc)
{
	struct cfile *cf = &c->f[f];
	struct fmodel *m = &c->r->shm->f[f];
	struct seen s = { .acc = acc, .n = PG, .buf = c->buf };
	struct window w = { .epoch = cf->epoch };
	struct cow *cw = &cf->cow[pg];
	struct verdict v;
	uint64_t t0 = now_ns();
	ssize_t n = 0;

	w.a = atomic_load(&m->done);
	if (acc == ACC_PREAD)
		n = pread(cf->fd, c->buf, PG, (off_t)pg * PG);
	else
		s.is_sigbus =
			touch_copy(c->buf, (acc == ACC_SHARED ? cf->sh : cf->pv) + (size_t)pg * PG,
				   PG, NULL) != 0;
	s.err = n < 0 ? errno : 0;
	w.b = atomic_load(&m->started);
	account(c, t0);
	if (acc == ACC_PREAD)
		s.n = n < 0 ? 0 : (unsigned)n;
	s.has_cow = acc == ACC_PRIVATE && cw->version;
	s.cow_version = cw->version;
	s.cow_a = cw->a;
	s.cow_b = cw->b;
	oracle_judge(c->r, f, pg, &w, &s, &v);
	if (v.is_cow_gone)
		cw->version = 0;
	return judged(c, f, pg, &w, &s, &v);
}

/* Writes a new stamp into the client's private copy of page pg (after judging a read of
 * it, so that a write into a page past EOF is not taken for a legal COW). */
static bool do_cow(struct client *c, unsigned f, unsigned pg)
{
	struct cfile *cf = &c->f[f];
	struct fmodel *m = &c->r->shm->f[f];
	uint32_t v = version_next(c->r);
	uint64_t a, t0;
	bool is_bus;

	if (do_read(c, f, pg, ACC_PRIVATE))
		return true;
	stamp_fill(c->page, f, pg, v);
	t0 = now_ns();
	a = atomic_load(&m->done);
	is_bus = touch_copy(cf->pv + (size_t)pg * PG, c->page, PG, NULL) != 0;
	cf->cow[pg] = (struct cow){ is_bus ? 0 : v, a, atomic_load(&m->started) };
	account(c, t0);
	return false;
}

/* Writes page pg through the descriptor or the shared mapping (then msync), as event seq.
 * Returns 0, 1 for SIGBUS, or a positive errno. */
static int write_page(struct client *c, struct cfile *cf, unsigned pg, bool is_mapped)
{
	char *dst = cf->sh + (size_t)pg * PG;

	if (!is_mapped)
		return pwrite(cf->fd, c->page, PG, (off_t)pg * PG) == PG ? 0 : errno ? errno : EIO;
	if (touch_copy(dst, c->page, PG, NULL) != 0)
		return 1;
	return msync(dst, PG, MS_SYNC) < 0 ? errno : 0;
}

/* A client write of a new stamp to page pg, run as an event of the file under its lock:
 * only on a page wholly inside the file, with no rule on it, through a live descriptor,
 * so that the oracle can tell what every reader may see. True on a violation. */
static bool do_write(struct client *c, unsigned f, unsigned pg, bool is_mapped)
{
	struct cfile *cf = &c->f[f];
	struct fmodel *m = &c->r->shm->f[f];
	struct seen s = { .acc = is_mapped ? ACC_SHARED : ACC_PREAD, .buf = c->page };
	struct pstate st;
	struct window w;
	struct verdict v;
	uint64_t t0, seq;
	int rc;

	fmodel_lock(m);
	st = model_cur(m, pg);
	if (cf->epoch != atomic_load(&m->revokes) || st.eof != PG || (st.flags & PS_FAIL)) {
		fmodel_unlock(m);
		return false;
	}
	seq = model_begin(m);
	st = (struct pstate){ version_next(c->r), PG, PG, PS_BARRIER | PS_CLIENT };
	stamp_fill(c->page, f, pg, st.version);
	model_push(m, pg, seq, &st);
	model_started(m, seq);
	t0 = now_ns();
	rc = write_page(c, cf, pg, is_mapped);
	account(c, t0);
	model_done(m, seq);
	fmodel_unlock(m);
	evlog_add(c->r, f, seq, 0, "f%u client %u %s page %u v%u%s", f, c->id,
		  is_mapped ? "mapped write+msync" : "pwrite", pg, st.version, rc ? " FAILED" : "");
	atomic_fetch_add_explicit(&c->cs->c[C_WRITES], 1, memory_order_relaxed);
	if (rc == 0)
		return false;
	w = (struct window){ .a = seq - 1, .b = seq, .epoch = cf->epoch };
	s.is_sigbus = rc == 1;
	s.err = rc == 1 ? 0 : rc;
	oracle_judge(c->r, f, pg, &w, &s, &v);
	return judged(c, f, pg, &w, &s, &v);
}

/* Makes sure file f is open; reopens it now and then after a revocation and replug (an
 * old mapping must stay dead after the replug, so it is used a while longer first). */
static int ensure_open(struct client *c, unsigned f)
{
	struct cfile *cf = &c->f[f];

	if (cf->is_open && is_replugged(c, f) && rng_below(&c->g, 4) == 0)
		cfile_close(c, cf);
	if (cf->is_open)
		return 0;
	return cfile_open(c, f);
}

static bool one_access(struct client *c)
{
	unsigned f = (unsigned)rng_below(&c->g, c->r->o->files);
	unsigned pg = (unsigned)rng_below(&c->g, c->r->npages), op;
	int rc = ensure_open(c, f);

	if (rc < 0) {
		struct verdict v = { .kind = V_ERRNO };
		struct window w = { 0 };

		snprintf(v.expected, sizeof(v.expected), "a new open of a live file to work");
		snprintf(v.seen, sizeof(v.seen), "open or mmap: %s", strerror(-rc));
		report_violation(c->r, f, pg, c->id, ACC_PREAD, &w, &v);
		return true;
	}
	op = (unsigned)rng_below(&c->g, 100);
	if (op < 30)
		return do_read(c, f, pg, ACC_SHARED);
	if (op < 50)
		return do_read(c, f, pg, ACC_PRIVATE);
	if (op < 75)
		return do_read(c, f, pg, ACC_PREAD);
	if (op < 88)
		return do_cow(c, f, pg);
	return do_write(c, f, pg, op >= 94);
}

int client_main(struct run *r, unsigned id)
{
	static struct client c;
	uint64_t t0 = now_ns();
	bool is_bad = false;

	c.r = r;
	c.id = id;
	c.cs = &r->shm->cs[id];
	c.g.s = (r->o->seed ^ (0x9e3779b97f4a7c15ULL * (id + 1))) | 1;
	for (unsigned f = 0; f < r->o->files; f++) {
		c.f[f].cow = calloc(r->npages, sizeof(struct cow));
		if (!c.f[f].cow)
			return 2;
	}
	while (!is_bad && !atomic_load_explicit(&r->shm->stop, memory_order_relaxed))
		is_bad = one_access(&c);
	for (unsigned f = 0; f < r->o->files; f++) {
		cfile_close(&c, &c.f[f]);
		free(c.f[f].cow);
	}
	atomic_store(&c.cs->wall_ns, now_ns() - t0);
	return is_bad ? 1 : 0;
}
