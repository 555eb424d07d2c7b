/* The controller: creates the stamped files, then fires events through the control socket
 * (random by seed and mix, or from a scenario) and publishes each event's page states in
 * the model before it starts (oracle.c explains the protocol). Choosing an event depends
 * only on the generator and on sizes the controller alone changes, so a seed repeats the
 * sequence of events. The output of a run is report.c's. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl_client.h"
#include "stress.h"

struct ctlr {
	struct run *r;
	struct ctl_client *c;
	struct rng g;
	char rel[128];
	char data[WRITE_PAGES * PG + 1];
	char err[256];
};

void evlog_add(struct run *r, unsigned file, uint64_t seq, uint64_t dseq, const char *fmt, ...)
{
	uint64_t n = atomic_fetch_add(&r->shm->evlog_n, 1);
	struct evrec *e = &r->shm->evlog[n % EVLOG_MAX];
	va_list ap;

	e->t_us = (now_ns() - r->t0_ns) / 1000;
	e->file = file;
	e->seq = seq;
	e->dseq = dseq;
	va_start(ap, fmt);
	vsnprintf(e->text, sizeof(e->text), fmt, ap);
	va_end(ap);
}

/* Sends argv as one request. 0 with the reply's seq (and id) or -errno with a message. */
static int ctl_send(struct ctlr *k, char **argv, uint64_t *dseq, uint64_t *id)
{
	struct ctl_result res;
	size_t argc = 0;
	int rc;

	while (argv[argc])
		argc++;
	rc = ctl_client_request_argv(k->c, (int)argc, argv, &res);
	if (rc == 0 && !res.is_ok)
		rc = res.error ? -res.error : -EIO;
	snprintf(k->err, sizeof(k->err), "%s %s: %s", argv[0], argc > 1 ? argv[1] : "",
		 rc == 0		 ? "ok"
		 : res.text && *res.text ? res.text
					 : strerror(-rc));
	if (rc || ctl_result_u64(&res, "seq", dseq) < 0)
		*dseq = 0;
	if (id && (rc || ctl_result_u64(&res, "id", id) < 0))
		*id = 0;
	ctl_result_free(&res);
	return rc;
}

/* Runs one command for files [f0, f0+nf) as their events seq[] (already pushed), logging
 * it once per file. */
static int run_cmd_files(struct ctlr *k, unsigned f0, unsigned nf, const uint64_t *seq, char **argv,
			 uint64_t *id, const char *what)
{
	struct fmodel *m = &k->r->shm->f[f0];
	uint64_t dseq = 0;
	int rc;

	for (unsigned i = 0; i < nf; i++)
		model_started(&m[i], seq[i]);
	rc = ctl_send(k, argv, &dseq, id);
	for (unsigned i = 0; i < nf; i++) {
		model_done(&m[i], seq[i]);
		m[i].dseq_last = dseq;
		evlog_add(k->r, f0 + i, seq[i], dseq, "f%u %s%s%s", f0 + i, what,
			  rc ? ": FAILED: " : "", rc ? k->err : "");
	}
	atomic_fetch_add(&k->r->shm->events, 1);
	if (rc < 0)
		atomic_fetch_add(&k->r->shm->event_errors, 1);
	return rc;
}

/* Runs one command for file f as event seq (already pushed), logging it. */
static int run_cmd(struct ctlr *k, unsigned f, uint64_t seq, char **argv, uint64_t *id,
		   const char *what)
{
	return run_cmd_files(k, f, 1, &seq, argv, id, what);
}

static struct pstate barrier(struct pstate st)
{
	st.flags = PS_BARRIER;
	return st;
}

/* Pages [p, p+n) keep their bytes and leave the kernel's cache. */
static void push_inval(struct fmodel *m, unsigned p, unsigned n, uint64_t seq)
{
	for (unsigned pg = p; pg < p + n; pg++) {
		struct pstate st = barrier(model_cur(m, pg));

		model_push(m, pg, seq, &st);
	}
}

/* The state of a page whose in-file part becomes eof bytes (a size change). */
static struct pstate resized(struct pstate cur, unsigned eof)
{
	struct pstate st = { .eof = (uint16_t)eof, .flags = PS_BARRIER };

	if (eof && cur.eof && cur.version) {
		st.version = cur.version;
		st.len = cur.len < eof ? cur.len : (uint16_t)eof;
	}
	return st;
}

static unsigned eof_of(uint64_t size, unsigned pg)
{
	uint64_t start = (uint64_t)pg * PG;

	return size <= start ? 0 : size - start >= PG ? PG : (unsigned)(size - start);
}

/* The pages from the one holding min(old, new size) on: the daemon drops them all. */
static void push_resize(struct run *r, struct fmodel *m, uint64_t size, uint64_t seq)
{
	uint64_t low = m->size < size ? m->size : size;

	for (unsigned pg = (unsigned)(low / PG); pg < r->npages; pg++) {
		struct pstate st = resized(model_cur(m, pg), eof_of(size, pg));

		model_push(m, pg, seq, &st);
	}
	m->size = size;
}

static int ev_write(struct ctlr *k, unsigned f, unsigned p, unsigned n, bool notify)
{
	struct fmodel *m = &k->r->shm->f[f];
	uint64_t seq = model_begin(m), end = (uint64_t)(p + n) * PG, off = (uint64_t)p * PG;
	char offs[24], what[96];
	char *argv[] = { "write", k->rel, offs, k->data, notify ? NULL : "--no-notify", NULL };
	uint32_t v0 = 0;

	if (notify && end > m->size)
		push_resize(k->r, m, end, seq);
	for (unsigned i = 0; i < n; i++) {
		uint32_t v = version_next(k->r);
		struct pstate st = { v, PG, PG, notify ? PS_BARRIER : 0 };

		v0 = v0 ? v0 : v;
		stamp_fill(k->data + (size_t)i * PG, f, p + i, v);
		model_push(m, p + i, seq, &st);
	}
	k->data[(size_t)n * PG] = 0;
	snprintf(offs, sizeof(offs), "%llu", (unsigned long long)off);
	snprintf(what, sizeof(what), "write%s pages %u-%u v%u-v%u", notify ? "" : " --no-notify", p,
		 p + n - 1, v0, v0 + n - 1);
	return run_cmd(k, f, seq, argv, NULL, what);
}

static int ev_inval(struct ctlr *k, unsigned f, unsigned p, unsigned n, bool has_range)
{
	struct fmodel *m = &k->r->shm->f[f];
	uint64_t seq = model_begin(m);
	char offs[24], lens[24], what[64];
	char *argv[] = { "inval", k->rel, has_range ? offs : NULL, lens, NULL };

	if (!has_range)
		p = 0, n = k->r->npages;
	push_inval(m, p, n, seq);
	snprintf(offs, sizeof(offs), "%llu", (unsigned long long)p * PG);
	snprintf(lens, sizeof(lens), "%llu", (unsigned long long)n * PG);
	snprintf(what, sizeof(what), "inval pages %u-%u", p, p + n - 1);
	return run_cmd(k, f, seq, argv, NULL, what);
}

static int ev_truncate(struct ctlr *k, unsigned f, uint64_t size)
{
	struct fmodel *m = &k->r->shm->f[f];
	uint64_t seq = model_begin(m), old = m->size;
	char sizes[24], what[64];
	char *argv[] = { "truncate", k->rel, sizes, NULL };

	push_resize(k->r, m, size, seq);
	snprintf(sizes, sizeof(sizes), "%llu", (unsigned long long)size);
	snprintf(what, sizeof(what), "truncate %llu -> %llu (%s)", (unsigned long long)old,
		 (unsigned long long)size, size < old ? "shrink" : "grow");
	return run_cmd(k, f, seq, argv, NULL, what);
}

static int ev_punch(struct ctlr *k, unsigned f, unsigned p, unsigned n)
{
	struct fmodel *m = &k->r->shm->f[f];
	uint64_t seq = model_begin(m), off = (uint64_t)p * PG, len = (uint64_t)n * PG;
	char offs[24], lens[24], what[64];
	char *argv[] = { "punch", k->rel, offs, lens, NULL };

	if (off + len > m->size)
		len = m->size - off;
	for (unsigned pg = p; pg < p + n; pg++) {
		struct pstate st = { 0, 0, model_cur(m, pg).eof, PS_BARRIER };

		model_push(m, pg, seq, &st);
	}
	snprintf(offs, sizeof(offs), "%llu", (unsigned long long)off);
	snprintf(lens, sizeof(lens), "%llu", (unsigned long long)len);
	snprintf(what, sizeof(what), "punch pages %u-%u", p, p + n - 1);
	return run_cmd(k, f, seq, argv, NULL, what);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* argv (a revoke or an unplug), hold, replug: two events on each of the files [f0, f0+nf),
 * whose pages come back in new inodes. The caller holds their locks. */
static int revoke_files(struct ctlr *k, unsigned f0, unsigned nf, char **argv, const char *what)
{
	uint64_t seq[MAX_FILES], seq2[MAX_FILES];
	char *argv2[] = { "replug", NULL };
	int rc;

	for (unsigned i = 0; i < nf; i++) {
		struct fmodel *m = &k->r->shm->f[f0 + i];

		seq[i] = model_begin(m);
		seq2[i] = seq[i] + 1;
		model_revoke(m, seq[i]);
		push_inval(m, 0, k->r->npages, seq[i]);
	}
	rc = run_cmd_files(k, f0, nf, seq, argv, NULL, what);
	sleep_ms(k->r->o->hold_ms);
	if (rc == 0)
		rc = run_cmd_files(k, f0, nf, seq2, argv2, NULL, "replug");
	return rc;
}

static int ev_revoke(struct ctlr *k, unsigned f)
{
	char *argv[] = { "revoke", k->rel, NULL };

	return revoke_files(k, f, 1, argv, "revoke");
}

/* The whole backend goes away: every file at once. */
static int ev_unplug(struct ctlr *k)
{
	char *argv[] = { "unplug", NULL };

	return revoke_files(k, 0, k->r->o->files, argv, "unplug (every file)");
}

static void push_rule(struct fmodel *m, unsigned p, unsigned n, uint64_t seq, bool is_on)
{
	for (unsigned pg = p; pg < p + n; pg++) {
		struct pstate st = barrier(model_cur(m, pg));

		st.flags |= is_on ? PS_FAIL : 0;
		model_push(m, pg, seq, &st);
	}
}

/* fail --op read on pages [p, p+n), hold, clear: two events. */
static int ev_fail(struct ctlr *k, unsigned f, unsigned p, unsigned n)
{
	struct fmodel *m = &k->r->shm->f[f];
	uint64_t seq = model_begin(m), id = 0;
	char offs[24], lens[24], ids[24], what[64];
	char *argv[] = { "fail", k->rel, offs, lens, "--op", "read", "--errno", "EIO", NULL };
	char *argv2[] = { "clear", ids, NULL };
	int rc;

	snprintf(offs, sizeof(offs), "%llu", (unsigned long long)p * PG);
	snprintf(lens, sizeof(lens), "%llu", (unsigned long long)n * PG);
	snprintf(what, sizeof(what), "fail --op read pages %u-%u", p, p + n - 1);
	push_rule(m, p, n, seq, true);
	rc = run_cmd(k, f, seq, argv, &id, what);
	sleep_ms(k->r->o->hold_ms);
	snprintf(ids, sizeof(ids), "%llu", (unsigned long long)id);
	push_rule(m, p, n, seq + 1, false);
	if (rc == 0)
		rc = run_cmd(k, f, seq + 1, argv2, NULL, "clear (the read rule)");
	return rc;
}

static unsigned pick_kind(struct ctlr *k)
{
	unsigned total = 0, x;

	for (int i = 0; i < EV_NR; i++)
		total += k->r->o->mix[i];
	x = (unsigned)rng_below(&k->g, total);
	for (int i = 0; i < EV_NR; i++) {
		if (x < k->r->o->mix[i])
			return (unsigned)i;
		x -= k->r->o->mix[i];
	}
	return EV_INVAL;
}

/* A random range of at most WRITE_PAGES pages inside the first limit pages (limit > 0). */
static void pick_range(struct ctlr *k, unsigned limit, unsigned *p, unsigned *n)
{
	*n = 1 + (unsigned)rng_below(&k->g, WRITE_PAGES);
	if (*n > limit)
		*n = limit;
	*p = (unsigned)rng_below(&k->g, limit - *n + 1);
}

static uint64_t pick_size(struct ctlr *k)
{
	unsigned pg = (unsigned)rng_below(&k->g, k->r->npages + 1);
	uint64_t tail = 0;

	if (pg < k->r->npages && rng_below(&k->g, 3) == 0)
		tail = MIN_TAIL + rng_below(&k->g, PG - MIN_TAIL);
	return (uint64_t)pg * PG + tail;
}

/* Draws and runs one event on file f; the caller holds its lock (every lock for unplug). */
static int ev_random(struct ctlr *k, unsigned kind, unsigned f)
{
	uint64_t size = k->r->shm->f[f].size;
	unsigned full = (unsigned)(size / PG), used = (unsigned)((size + PG - 1) / PG), p, n;

	switch (kind) {
	case EV_WRITE:
	case EV_NONOTIFY:
		pick_range(k, kind == EV_WRITE || !full ? k->r->npages : full, &p, &n);
		return ev_write(k, f, p, n, kind == EV_WRITE || !full);
	case EV_INVAL:
		pick_range(k, k->r->npages, &p, &n);
		return ev_inval(k, f, p, n, rng_below(&k->g, 2));
	case EV_TRUNCATE:
		return ev_truncate(k, f, pick_size(k));
	case EV_PUNCH:
		if (!used)
			return ev_truncate(k, f, pick_size(k));
		pick_range(k, used, &p, &n);
		return ev_punch(k, f, p, n);
	case EV_REVOKE:
		return ev_revoke(k, f);
	case EV_UNPLUG:
		return ev_unplug(k);
	default:
		pick_range(k, k->r->npages, &p, &n);
		return ev_fail(k, f, p, n);
	}
}

/* Runs scenario event e; the caller holds its file's lock (every lock for unplug). */
static int ev_scenario(struct ctlr *k, const struct sc_event *e)
{
	struct fmodel *m = &k->r->shm->f[e->file];
	unsigned p = (unsigned)e->a, n = (unsigned)e->b;

	if (e->kind != EV_TRUNCATE && e->kind != EV_REVOKE && e->kind != EV_UNPLUG &&
	    (p >= k->r->npages || !n || n > k->r->npages - p))
		return -ERANGE;
	switch (e->kind) {
	case EV_WRITE:
	case EV_NONOTIFY:
		if (e->kind == EV_NONOTIFY && (uint64_t)(p + n) * PG > m->size)
			return -ERANGE;
		return ev_write(k, e->file, p, n, e->kind == EV_WRITE);
	case EV_INVAL:
		return ev_inval(k, e->file, p, n, e->has_range);
	case EV_TRUNCATE:
		return e->a > (uint64_t)k->r->npages * PG ? -ERANGE : ev_truncate(k, e->file, e->a);
	case EV_PUNCH:
		return (uint64_t)p * PG >= m->size ? -ERANGE : ev_punch(k, e->file, p, n);
	case EV_REVOKE:
		return ev_revoke(k, e->file);
	case EV_UNPLUG:
		return ev_unplug(k);
	default:
		return ev_fail(k, e->file, p, n);
	}
}

static int fire(struct ctlr *k, const struct sc_event *e)
{
	unsigned kind = e ? e->kind : pick_kind(k);
	unsigned f = e ? e->file : (unsigned)rng_below(&k->g, k->r->o->files);
	/* an unplug changes every file: their locks, in order (no one else takes two) */
	unsigned f0 = kind == EV_UNPLUG ? 0 : f, nf = kind == EV_UNPLUG ? k->r->o->files : 1;
	int rc;

	file_rel(k->r, f, k->rel, sizeof(k->rel));
	for (unsigned i = f0; i < f0 + nf; i++)
		fmodel_lock(&k->r->shm->f[i]);
	rc = e ? ev_scenario(k, e) : ev_random(k, kind, f);
	for (unsigned i = f0; i < f0 + nf; i++)
		fmodel_unlock(&k->r->shm->f[i]);
	if (rc == -ERANGE)
		snprintf(k->err, sizeof(k->err),
			 "scenario event at %llu ms (%s f%u) is out of range",
			 (unsigned long long)e->t_ms, ev_kind_name(e->kind), e->file);
	return rc;
}

static int stamp_file(struct run *r, unsigned f)
{
	char path[PATH_MAX_STRESS], page[PG];
	int fd, rc = 0;

	file_abs(r, f, path, sizeof(path));
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	for (unsigned pg = 0; rc == 0 && pg < r->npages; pg++) {
		struct pstate st = { version_next(r), PG, PG, PS_BARRIER };

		stamp_fill(page, f, pg, st.version);
		if (pwrite(fd, page, PG, (off_t)pg * PG) != PG)
			rc = -EIO;
		model_push(&r->shm->f[f], pg, 0, &st);
	}
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	r->shm->f[f].size = (uint64_t)r->npages * PG;
	return rc;
}

int controller_setup(struct run *r)
{
	char path[PATH_MAX_STRESS];
	int rc = 0;

	snprintf(r->shm->dir, sizeof(r->shm->dir), "sigbus-stress.%d", (int)getpid());
	snprintf(path, sizeof(path), "%s/%s", r->o->mountpoint, r->shm->dir);
	if (mkdir(path, 0755) < 0) {
		r->shm->dir[0] = '\0';
		return -errno;
	}
	for (unsigned f = 0; rc == 0 && f < r->o->files; f++)
		rc = stamp_file(r, f);
	return rc;
}

/* Sleeps until t (ns since the start) or a stop request, printing progress meanwhile. */
static void wait_until(struct run *r, uint64_t t)
{
	while (!atomic_load(&r->shm->stop)) {
		uint64_t now = now_ns() - r->t0_ns;

		if (now >= t)
			return;
		report_progress(r, false);
		kw_poll(r);
		sleep_ms(
			(unsigned)((t - now) / 1000000 < 100 ? (t - now + 999999) / 1000000 : 100));
	}
}

static int run_timeline(struct ctlr *k)
{
	struct run *r = k->r;
	uint64_t end = (uint64_t)(r->o->duration * 1e9), t = 0;
	uint64_t step = r->o->rate > 0 ? (uint64_t)(1e9 / r->o->rate) : end;
	int rc = 0;

	for (size_t i = 0; rc == 0 && !atomic_load(&r->shm->stop); i++) {
		const struct sc_event *e =
			r->o->scenario ? (i < r->o->nsc ? &r->o->sc[i] : NULL) : NULL;

		if (r->o->scenario)
			t = e ? e->t_ms * 1000000 : end;
		else
			t = i ? t + step / 2 + rng_below(&k->g, step) : 0;
		if (t >= end || (r->o->scenario && !e))
			break;
		wait_until(r, t);
		if (!atomic_load(&r->shm->stop))
			rc = fire(k, e);
	}
	wait_until(r, end);
	return rc;
}

int controller_run(struct run *r, const char *sock)
{
	struct ctlr *k = calloc(1, sizeof(*k));
	int rc;

	if (!k)
		return -ENOMEM;
	k->r = r;
	k->g.s = r->o->seed ? r->o->seed : 1;
	rc = ctl_client_connect(sock, &k->c, k->err, sizeof(k->err));
	if (rc == 0) {
		rc = run_timeline(k);
		ctl_client_close(k->c);
	}
	if (rc < 0)
		fprintf(stderr, "sigbus-stress: controller: %s\n", k->err);
	free(k);
	return rc;
}
