/* sigbus-stress's output: the live progress line, the summary (a table or --json), and
 * the violation report with the events around it, from our event log and the daemon's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl_client.h"
#include "stress.h"

#define AROUND 12 /* events of the file listed before a violation */

static const char *const acc_names[] = {
	[ACC_SHARED] = "mapped access through MAP_SHARED",
	[ACC_PRIVATE] = "mapped access through MAP_PRIVATE",
	[ACC_PREAD] = "pread/pwrite on a descriptor",
};

static uint64_t total(const struct run *r, enum ctr k)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < r->o->procs; i++)
		n += atomic_load(&r->shm->cs[i].c[k]);
	return n;
}

static uint64_t violations(const struct run *r)
{
	return total(r, C_SIGBUS_BAD) + total(r, C_SIGBUS_MISSING) + total(r, C_STALE) +
	       total(r, C_TORN) + total(r, C_ERRNO) + total(r, C_SHORT);
}

void report_progress(struct run *r, bool is_final)
{
	static uint64_t last;
	uint64_t now = now_ns(), acc;
	double t = (double)(now - r->t0_ns) / 1e9;

	if (r->o->quiet || r->o->json || !isatty(STDOUT_FILENO))
		return;
	if (!is_final && now - last < 250000000)
		return;
	last = now;
	acc = total(r, C_ACCESS);
	printf("\r[%6.1fs] %llu accesses (%.0f/s), %llu events, %llu SIGBUS expected, "
	       "%llu violations ",
	       t, (unsigned long long)acc, t > 0 ? (double)acc / t : 0.0,
	       (unsigned long long)atomic_load(&r->shm->events),
	       (unsigned long long)total(r, C_SIGBUS_OK), (unsigned long long)violations(r));
	if (is_final)
		putchar('\n');
	fflush(stdout);
}

void report_violation(struct run *r, unsigned file, unsigned pg, unsigned client, enum acc_kind acc,
		      const struct window *w, const struct verdict *v)
{
	int expected = 0;
	char rel[128];

	if (!atomic_compare_exchange_strong(&r->shm->violated, &expected, 1))
		return;
	file_rel(r, file, rel, sizeof(rel));
	snprintf(r->shm->report, sizeof(r->shm->report),
		 "VIOLATION: %s\n"
		 "  file:     %s (file %u), page %u (bytes %llu-%llu)\n"
		 "  access:   %s, by client %u, %.3f s into the run\n"
		 "  expected: %s\n"
		 "  seen:     %s\n"
		 "  window:   file events up to #%llu had finished before the access; none after "
		 "#%llu had begun when it ended\n",
		 verdict_name(v->kind), rel, file, pg, (unsigned long long)pg * PG,
		 (unsigned long long)pg * PG + PG - 1, acc_names[acc], client,
		 (double)(now_ns() - r->t0_ns) / 1e9, v->expected, v->seen,
		 (unsigned long long)w->a, (unsigned long long)w->b);
	r->shm->vfile = file;
	r->shm->vseq = w->b;
	atomic_store(&r->shm->stop, 1);
}

/* Our log's events on the violation's file, the last AROUND of them; the range of the
 * daemon's sequence numbers they carry in *lo, *hi. */
static void print_our_events(struct run *r, FILE *out, uint64_t *lo, uint64_t *hi)
{
	uint64_t n = atomic_load(&r->shm->evlog_n), first = n > EVLOG_MAX ? n - EVLOG_MAX : 0;
	unsigned shown = 0;

	*lo = UINT64_MAX;
	*hi = 0;
	fprintf(out,
		"  events on file %u (ours; # is the file's event number, seq the daemon's):\n",
		r->shm->vfile);
	for (uint64_t i = n; i-- > first && shown < AROUND;) {
		const struct evrec *e = &r->shm->evlog[i % EVLOG_MAX];

		if (e->file != r->shm->vfile)
			continue;
		shown++;
		fprintf(out, "    %9.3f s  #%-5llu seq=%-6llu %s%s\n", (double)e->t_us / 1e6,
			(unsigned long long)e->seq, (unsigned long long)e->dseq, e->text,
			e->seq > r->shm->vseq ? "  (after the access)" : "");
		if (e->dseq && e->dseq < *lo)
			*lo = e->dseq;
		if (e->dseq > *hi)
			*hi = e->dseq;
	}
}

/* The daemon's own log lines for seq lo..hi. */
static void print_daemon_events(const char *sock, FILE *out, uint64_t lo, uint64_t hi)
{
	struct ctl_client *c;
	struct ctl_result res = { 0 };
	char line[64], err[256];
	int len;

	if (lo > hi || ctl_client_connect(sock, &c, err, sizeof(err)) < 0)
		return;
	len = snprintf(line, sizeof(line), "log --since %llu", (unsigned long long)lo - 1);
	if (ctl_client_request(c, line, (size_t)len, &res) == 0 && res.is_ok) {
		fprintf(out, "  the daemon's log:\n");
		for (size_t i = 0; i < res.nkv; i++) {
			if (strcmp(res.kv[i].key, "event") == 0 &&
			    strtoull(res.kv[i].value + 4, NULL, 10) <= hi)
				fprintf(out, "    %s\n", res.kv[i].value);
		}
	}
	ctl_result_free(&res);
	ctl_client_close(c);
}

void report_print_violation(struct run *r, const char *sock)
{
	uint64_t lo, hi;
	FILE *out = r->o->json ? stderr : stdout;

	if (!atomic_load(&r->shm->violated))
		return;
	fprintf(out, "%s", r->shm->report);
	print_our_events(r, out, &lo, &hi);
	print_daemon_events(sock, out, lo, hi);
}

struct row {
	const char *key, *label;
	enum ctr c;
};

static const struct row rows[] = {
	{ "client_writes", "client writes (pwrite, mapped)", C_WRITES },
	{ "expected_sigbus", "expected SIGBUS", C_SIGBUS_OK },
	{ "expected_eio", "expected EIO", C_EIO_OK },
	{ "racing_copies", "copies racing an event (legal mix)", C_MIXED_OK },
	{ "eof_revoking", "end of file while a revocation ran", C_EOF_OK },
	{ "undecided", "undecided (history overwritten)", C_UNDECIDED },
	{ "unexpected_sigbus", "unexpected SIGBUS/EIO", C_SIGBUS_BAD },
	{ "missing_sigbus", "missing SIGBUS/EIO", C_SIGBUS_MISSING },
	{ "stale_reads", "stale reads", C_STALE },
	{ "torn_pages", "torn or misplaced pages", C_TORN },
	{ "unexpected_errors", "unexpected errors", C_ERRNO },
	{ "wrong_sizes", "wrong read sizes (EOF, short reads)", C_SHORT },
};

static double busy_share(const struct run *r)
{
	uint64_t busy = 0, wall = 0;

	for (unsigned i = 0; i < r->o->procs; i++) {
		busy += atomic_load(&r->shm->cs[i].busy_ns);
		wall += atomic_load(&r->shm->cs[i].wall_ns);
	}
	return wall ? 100.0 * (double)busy / (double)wall : 0.0;
}

void report_json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", (unsigned char)*s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void summary_json(struct run *r, int rc, double secs)
{
	uint64_t acc = total(r, C_ACCESS);

	printf("{\"result\":\"%s\",\"seed\":%llu,\"seconds\":%.3f,\"procs\":%u,\"files\":%u,"
	       "\"size\":%llu,\"events\":%llu,\"event_errors\":%llu,\"accesses\":%llu,"
	       "\"accesses_per_s\":%.1f,\"mount_time_pct\":%.1f",
	       rc == 0 ? "pass" : "fail", (unsigned long long)r->o->seed, secs, r->o->procs,
	       r->o->files, (unsigned long long)r->o->size,
	       (unsigned long long)atomic_load(&r->shm->events),
	       (unsigned long long)atomic_load(&r->shm->event_errors), (unsigned long long)acc,
	       secs > 0 ? (double)acc / secs : 0.0, busy_share(r));
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		printf(",\"%s\":%llu", rows[i].key, (unsigned long long)total(r, rows[i].c));
	printf(",\"violations\":%llu,\"report\":", (unsigned long long)violations(r));
	if (atomic_load(&r->shm->violated))
		report_json_str(r->shm->report);
	else
		printf("null");
	kw_json(r);
	printf("}\n");
}

void report_summary(struct run *r, int rc)
{
	double secs = (double)(now_ns() - r->t0_ns) / 1e9;
	uint64_t acc = total(r, C_ACCESS);

	report_progress(r, true);
	if (r->o->json) {
		summary_json(r, rc, secs);
		return;
	}
	printf("sigbus-stress: %.1f s, %u procs, %u files of %llu bytes, seed %llu\n", secs,
	       r->o->procs, r->o->files, (unsigned long long)r->o->size,
	       (unsigned long long)r->o->seed);
	printf("  %-40s %12llu (%llu failed)\n", "events",
	       (unsigned long long)atomic_load(&r->shm->events),
	       (unsigned long long)atomic_load(&r->shm->event_errors));
	printf("  %-40s %12llu (%.0f/s)\n", "accesses", (unsigned long long)acc,
	       secs > 0 ? (double)acc / secs : 0.0);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		printf("  %-40s %12llu\n", rows[i].label, (unsigned long long)total(r, rows[i].c));
	printf("  %-40s %11.1f%%\n", "client time in mount syscalls/faults", busy_share(r));
	kw_summary_line(r);
	if (rc == 0)
		printf("result: PASS (no violations%s)\n",
		       kw_count(r) ? "; kernel warnings reported, --kernel-warnings report" : "");
	else if (!atomic_load(&r->shm->violated) && kw_fails(r))
		printf("result: FAIL (kernel warnings; --kernel-warnings report would not fail)\n");
	else
		printf("result: FAIL\n");
	kw_print(r);
}
