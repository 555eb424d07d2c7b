/* sigbus-probe: maps a file and shows the state of every page (residency, page-table
 * entry, PFN, kernel page flags) and what touching it gives (data, zeros or SIGBUS).
 * This file holds the options and the three ways to run: once, --hold and --watch;
 * sampling is in sample.c and output in render.c. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "probe.h"
#include "units.h"

#define WATCH_MS_DEFAULT 200
#define HOLD_LINE_MAX	 256

struct probe_opts {
	bool is_touch;	 /* fault every page in; false with --no-touch */
	bool is_private; /* --private: MAP_PRIVATE */
	bool is_hold;	 /* --hold: probe again for every line on stdin */
	bool is_json;	 /* --json */
	bool is_list;	 /* --list: a line per page with PFN and flags */
	long watch_ms;	 /* --watch: milliseconds between probes; 0 without --watch */
	size_t pages;	 /* --pages: 0 means to the end of the file */
	off_t offset;	 /* --offset: bytes */
	const char *path;
};

static const char usage_text[] =
	"Usage: sigbus-probe [OPTIONS] FILE\n"
	"\n"
	"Maps FILE and shows the state of every page: resident in the page cache (mincore),\n"
	"mapped by this process and its PFN (/proc/self/pagemap), the kernel's page flags\n"
	"(/proc/kpageflags) and what reading the page gives: data, all zeros, or SIGBUS.\n"
	"\n"
	"Order of one probe: residency and page-table entries of all pages are read first,\n"
	"then every page is read (the touch), then the state is read again. So 'resident' in\n"
	"the map is what the last event left, before this probe faulted anything in, and the\n"
	"PFN and flags are those of the page the touch mapped. With --no-touch the state is\n"
	"read once and no page is faulted in by the probe.\n"
	"\n"
	"Options:\n"
	"  --no-touch      only observe: no page is read, so none is faulted in\n"
	"  --private       map with MAP_PRIVATE (default MAP_SHARED)\n"
	"  --pages N       map N pages (default: to the end of FILE at start)\n"
	"  --offset OFF    start OFF bytes into FILE, a multiple of the page size (K, M, G, T)\n"
	"  --json          print JSON: a \"pages\" array of per-page objects and a \"summary\";\n"
	"                  one object per line with --hold and --watch\n"
	"  --list          also print one line per page with its PFN and flags\n"
	"  --watch [MS]    probe every MS milliseconds (default 200) until interrupted;\n"
	"                  on a terminal redraw in place, otherwise print each change\n"
	"  --hold          keep the mapping and probe again for every line read on stdin,\n"
	"                  printing one \"page N: ...\" line per page (no map)\n"
	"  -h, --help      this help\n"
	"\n"
	"PFNs need CAP_SYS_ADMIN (without it the kernel reads them as 0, and the probe says\n"
	"\"PFNs hidden\"); page flags need PFNs and a readable /proc/kpageflags (root).\n"
	"Exit status: 0 probed, 1 FILE could not be mapped or probed, 2 usage.\n";

/* A byte count with an optional K, M, G or T suffix (binary, units.h); -1 if malformed or
 * past INT64_MAX / 2. */
static long long parse_size(const char *s)
{
	uint64_t v;

	if (units_parse_size(s, &v) < 0 || v > (uint64_t)INT64_MAX >> 1)
		return -1;
	return (long long)v;
}

/* --watch takes an optional MS as the next word too (--watch 500 FILE), not only --watch=500. */
static int parse_watch(int argc, char **argv, struct probe_opts *o)
{
	const char *ms = optarg;

	if (!ms && optind < argc - 1 && argv[optind][0] >= '0' && argv[optind][0] <= '9')
		ms = argv[optind++];
	o->watch_ms = ms ? (long)parse_size(ms) : WATCH_MS_DEFAULT;
	if (o->watch_ms > 0)
		return 0;
	fprintf(stderr, "sigbus-probe: --watch: '%s' is not a positive number of ms\n", ms);
	return -1;
}

static int parse_opt(int c, int argc, char **argv, struct probe_opts *o)
{
	long long v;

	switch (c) {
	case 'n':
		o->is_touch = false;
		return 0;
	case 'p':
		o->is_private = true;
		return 0;
	case 'H':
		o->is_hold = true;
		return 0;
	case 'j':
		o->is_json = true;
		return 0;
	case 'l':
		o->is_list = true;
		return 0;
	case 'w':
		return parse_watch(argc, argv, o);
	case 'P':
	case 'o':
		v = parse_size(optarg);
		if (v < 0 || (c == 'P' && v == 0)) {
			fprintf(stderr, "sigbus-probe: --%s: '%s' is not a valid %s\n",
				c == 'P' ? "pages" : "offset", optarg,
				c == 'P' ? "page count" : "offset");
			return -1;
		}
		if (c == 'P')
			o->pages = (size_t)v;
		else
			o->offset = (off_t)v;
		return 0;
	default:
		return -1;
	}
}

/* 0 to run, 1 after --help, -1 on a usage error (reported). */
static int parse(int argc, char **argv, struct probe_opts *o)
{
	static const struct option longs[] = {
		{ "no-touch", no_argument, NULL, 'n' },
		{ "private", no_argument, NULL, 'p' },
		{ "hold", no_argument, NULL, 'H' },
		{ "json", no_argument, NULL, 'j' },
		{ "list", no_argument, NULL, 'l' },
		{ "watch", optional_argument, NULL, 'w' },
		{ "pages", required_argument, NULL, 'P' },
		{ "offset", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, rc = 0;

	*o = (struct probe_opts){ .is_touch = true };
	while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
		if (c == 'h')
			return 1;
		if (parse_opt(c, argc, argv, o) < 0)
			rc = -1;
	}
	if (optind != argc - 1) {
		fprintf(stderr, "sigbus-probe: expected one FILE\n");
		rc = -1;
	}
	if (o->is_hold && o->watch_ms) {
		fprintf(stderr, "sigbus-probe: --hold and --watch exclude each other\n");
		rc = -1;
	}
	o->path = argv[argc - 1];
	return rc;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Prints one sample the way the options ask for: JSON, lines (--hold) or the map. */
static int print_sample(const struct probe_opts *o, const struct probe_map *map,
			const struct probe_sample *s)
{
	int rc = 0;

	if (o->is_json)
		rc = probe_render_json(stdout, map, s, !o->is_hold && !o->watch_ms);
	else if (o->is_hold)
		probe_render_lines(stdout, map, s, o->is_list);
	else
		probe_render_map(stdout, map, s);
	if (!o->is_json && !o->is_hold && o->is_list)
		probe_render_lines(stdout, map, s, true);
	fflush(stdout);
	return rc;
}

static int take(const struct probe_opts *o, struct probe_map *map, struct probe_sample *s,
		double t0)
{
	int rc = probe_sample(map, o->is_touch, s);

	s->elapsed = now_s() - t0;
	if (rc < 0)
		fprintf(stderr, "sigbus-probe: probe %s: %s\n", map->path, strerror(-rc));
	return rc;
}

/* Whether the map differs from the last one printed (kept in *last, caller frees). */
static bool has_changed(const struct probe_map *map, const struct probe_sample *s, char **last)
{
	char *now = malloc(map->pages + 1);
	bool changed;

	if (!now)
		return true;
	for (size_t i = 0; i < map->pages; i++)
		now[i] = probe_page_char(&s->page[i], s->is_touched);
	now[map->pages] = '\0';
	changed = !*last || strcmp(*last, now) != 0;
	free(*last);
	*last = now;
	return changed;
}

/* Probes until killed. A terminal gets every probe redrawn in place; a pipe gets a probe
 * only when the map changed, so that a log holds the events and not the waiting. */
static int run_watch(const struct probe_opts *o, struct probe_map *map, struct probe_sample *s,
		     double t0)
{
	struct timespec gap = { o->watch_ms / 1000, o->watch_ms % 1000 * 1000000L };
	bool is_tty = isatty(STDOUT_FILENO);
	unsigned long changes = 0, last_seq = 0;
	double last_at = 0;
	char *last = NULL;
	int rc;

	while ((rc = take(o, map, s, t0)) == 0) {
		bool changed = has_changed(map, s, &last);

		if (changed && s->seq > 1) {
			changes++;
			last_seq = s->seq;
			last_at = s->elapsed;
		}
		if (is_tty && !o->is_json)
			printf("\033[H\033[J--watch every %ld ms; %lu changes, the last at probe "
			       "%lu "
			       "(%.3fs); Ctrl-C stops\n",
			       o->watch_ms, changes, last_seq, last_at);
		if ((is_tty || changed) && print_sample(o, map, s) < 0)
			break;
		nanosleep(&gap, NULL);
	}
	free(last);
	return rc;
}

static int run(const struct probe_opts *o, struct probe_map *map)
{
	struct probe_sample s = { 0 };
	char line[HOLD_LINE_MAX];
	double t0 = now_s();
	int rc;

	if (o->watch_ms) {
		rc = run_watch(o, map, &s, t0);
		goto out_free;
	}
	rc = take(o, map, &s, t0);
	if (rc == 0)
		rc = print_sample(o, map, &s);
	while (rc == 0 && o->is_hold && fgets(line, sizeof(line), stdin)) {
		rc = take(o, map, &s, t0);
		if (rc == 0)
			rc = print_sample(o, map, &s);
	}
out_free:
	probe_sample_free(&s);
	return rc;
}

int main(int argc, char **argv)
{
	struct probe_opts o;
	struct probe_map map;
	int rc = parse(argc, argv, &o);

	if (rc != 0) {
		fputs(usage_text, rc > 0 ? stdout : stderr);
		return rc > 0 ? 0 : 2;
	}
	rc = probe_map_open(o.path, o.offset, o.pages, o.is_private, &map);
	if (rc < 0) {
		fprintf(stderr, "sigbus-probe: map %s: %s\n", o.path,
			rc == -ENODATA ? "nothing to map (empty file or offset past its end)"
				       : strerror(-rc));
		return 1;
	}
	rc = run(&o, &map);
	probe_map_close(&map);
	return rc < 0 ? 1 : 0;
}
