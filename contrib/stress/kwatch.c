/* sigbus-stress's watch on the kernel log: the kernel's own reports (WARNING, BUG, Oops,
 * lockdep, KASAN...) that appear during the run, each kept with the events that ran in
 * the second before it (from the shared event log), and their place in the summary. The
 * matching is contrib/kmsg's; whether a report fails the run is --kernel-warnings. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmsg.h"
#include "stress.h"

#define KW_WINDOW_US 1000000 /* events this long before a report are listed with it */
#define KW_EVENTS    64	     /* at most this many events listed per report */

struct kw_found {
	int64_t run_us; /* the report's printk time, relative to the run's start */
	char *events[KW_EVENTS];
	unsigned nevents;
};

struct kw {
	struct kmsg *k; /* NULL when the log cannot be read */
	char error[160];
	struct kw_found *found; /* one per kmsg report, same index */
	size_t nfound;
};

void kw_start(struct run *r)
{
	const char *path = r->o->kernel_log ? r->o->kernel_log : KMSG_DEFAULT_PATH;
	int rc;

	r->kw = calloc(1, sizeof(*r->kw));
	if (!r->kw)
		return;
	rc = kmsg_open(r->o->kernel_log, true, &r->kw->k);
	if (rc == 0)
		return;
	snprintf(r->kw->error, sizeof(r->kw->error), "%s: %s%s", path, strerror(-rc),
		 rc == -EPERM || rc == -EACCES ? " (kernel.dmesg_restrict: run as root)" : "");
	fprintf(stderr,
		"sigbus-stress: cannot read the kernel log, %s; kernel warnings are not "
		"watched in this run\n",
		r->kw->error);
}

/* The controller's events that finished in the window before the report, or after it
 * (an event still running when the kernel printed). Clients log their writes in the same
 * ring with no daemon seq; a controller event has one unless it failed. */
static void take_events(struct run *r, struct kw_found *f)
{
	uint64_t n = atomic_load(&r->shm->evlog_n), first = n > EVLOG_MAX ? n - EVLOG_MAX : 0;

	for (uint64_t i = first; i < n && f->nevents < KW_EVENTS; i++) {
		const struct evrec *e = &r->shm->evlog[i % EVLOG_MAX];
		char line[EVTEXT_MAX + 96];

		if ((int64_t)e->t_us < f->run_us - KW_WINDOW_US ||
		    (e->dseq == 0 && !strstr(e->text, "FAILED")))
			continue;
		snprintf(line, sizeof(line), "%.3f s #%llu seq=%llu %s%s", (double)e->t_us / 1e6,
			 (unsigned long long)e->seq, (unsigned long long)e->dseq, e->text,
			 (int64_t)e->t_us > f->run_us ? " (finished after the report)" : "");
		f->events[f->nevents] = strdup(line);
		if (f->events[f->nevents])
			f->nevents++;
	}
}

void kw_poll(struct run *r)
{
	struct kw *w = r->kw;
	size_t n;

	if (!w || !w->k || kmsg_poll(w->k) < 0)
		return;
	n = kmsg_count(w->k);
	if (n > w->nfound) {
		struct kw_found *p = realloc(w->found, n * sizeof(*p));

		if (!p)
			return;
		w->found = p;
	}
	for (; w->nfound < n; w->nfound++) {
		struct kw_found *f = &w->found[w->nfound];

		memset(f, 0, sizeof(*f));
		f->run_us =
			(int64_t)kmsg_report(w->k, w->nfound)->ts_us - (int64_t)(r->t0_ns / 1000);
		take_events(r, f);
		if (r->o->kernel_warnings == KW_FAIL)
			atomic_store(&r->shm->stop, 1);
	}
}

size_t kw_count(const struct run *r)
{
	return r->kw ? r->kw->nfound : 0;
}

bool kw_fails(const struct run *r)
{
	return r->o->kernel_warnings == KW_FAIL && kw_count(r) > 0;
}

void kw_finish(struct run *r)
{
	kw_poll(r);
	if (r->kw && r->kw->k)
		kmsg_flush(r->kw->k);
}

void kw_summary_line(const struct run *r)
{
	const char *label = "kernel warnings";

	if (!r->kw || !r->kw->k)
		printf("  %-40s %12s (%s)\n", label, "not watched",
		       r->kw ? r->kw->error : "out of memory");
	else if (kw_count(r) == 0)
		printf("  %-40s %12u\n", label, 0u);
	else
		printf("  %-40s %12zu (listed below; the kernel log has them in full: dmesg)\n",
		       label, kw_count(r));
}

void kw_print(const struct run *r)
{
	size_t n = kw_count(r);

	for (size_t i = 0; i < n; i++) {
		const struct kmsg_report *k = kmsg_report(r->kw->k, i);
		const struct kw_found *f = &r->kw->found[i];

		printf("KERNEL WARNING %zu of %zu, %.3f s into the run (kernel time %llu.%06llu, "
		       "kernel log seq %llu; dmesg shows it):\n",
		       i + 1, n, (double)f->run_us / 1e6, (unsigned long long)(k->ts_us / 1000000),
		       (unsigned long long)(k->ts_us % 1000000), (unsigned long long)k->seq);
		for (unsigned j = 0; j < k->nlines; j++)
			printf("    %s\n", k->lines[j]);
		if (k->dropped)
			printf("    ... %u more lines in the kernel log\n", k->dropped);
		printf("  events in the second before it (ours; # is the file's event number, seq "
		       "the daemon's):\n");
		for (unsigned j = 0; j < f->nevents; j++)
			printf("    %s\n", f->events[j]);
		if (f->nevents == 0)
			printf("    none\n");
	}
}

static void json_strs(char *const *s, unsigned n)
{
	putchar('[');
	for (unsigned i = 0; i < n; i++) {
		if (i)
			putchar(',');
		report_json_str(s[i]);
	}
	putchar(']');
}

void kw_json(const struct run *r)
{
	size_t n = kw_count(r);

	printf(",\"kernel_warnings_mode\":\"%s\",\"kernel_log\":",
	       r->o->kernel_warnings == KW_FAIL ? "fail" : "report");
	if (r->kw && r->kw->k)
		report_json_str(r->o->kernel_log ? r->o->kernel_log : KMSG_DEFAULT_PATH);
	else
		printf("null");
	printf(",\"kernel_log_error\":");
	if (r->kw && r->kw->k)
		printf("null");
	else
		report_json_str(r->kw ? r->kw->error : "out of memory");
	printf(",\"kernel_warnings\":[");
	for (size_t i = 0; i < n; i++) {
		const struct kmsg_report *k = kmsg_report(r->kw->k, i);
		const struct kw_found *f = &r->kw->found[i];

		printf("%s{\"seq\":%llu,\"kernel_time\":%llu.%06llu,\"run_time\":%.6f,\"kind\":",
		       i ? "," : "", (unsigned long long)k->seq,
		       (unsigned long long)(k->ts_us / 1000000),
		       (unsigned long long)(k->ts_us % 1000000), (double)f->run_us / 1e6);
		report_json_str(k->kind);
		printf(",\"lines\":");
		json_strs(k->lines, k->nlines);
		printf(",\"events_before\":");
		json_strs(f->events, f->nevents);
		putchar('}');
	}
	putchar(']');
}

void kw_stop(struct run *r)
{
	if (!r->kw)
		return;
	for (size_t i = 0; i < r->kw->nfound; i++) {
		for (unsigned j = 0; j < r->kw->found[i].nevents; j++)
			free(r->kw->found[i].events[j]);
	}
	free(r->kw->found);
	kmsg_close(r->kw->k);
	free(r->kw);
	r->kw = NULL;
}
