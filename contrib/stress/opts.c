/* sigbus-stress's command line and scenario files: defaults, parsing, validation (every
 * problem is reported before failing), and the --help text next to the option table. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "units.h"
#include "stress.h"

static const char *const kind_names[EV_NR] = { "write", "nonotify", "inval", "truncate",
					       "punch", "revoke",   "fail",  "unplug" };

static const char usage[] =
	"usage: sigbus-stress [OPTIONS] MOUNTPOINT\n"
	"Forks client processes that map files on a sigbusfs mount and check every access\n"
	"against the semantics matrix while a controller fires events through the control\n"
	"socket. Exit status: 0 clean, 1 a violation (reported) or a kernel warning (see\n"
	"--kernel-warnings), 2 usage or setup error.\n"
	"  -S, --socket PATH   control socket (default: the mount root's user.sigbusfs.ctl)\n"
	"  --duration S        seconds to run (default 10)\n"
	"  --procs N           client processes (default 4)\n"
	"  --files M           files (default 4)\n"
	"  --size BYTES        bytes per file, a multiple of 4096; K, M suffixes (default 64K)\n"
	"  --rate N            events per second (default 50)\n"
	"  --mix K=W,...       event weights; kinds: write nonotify inval truncate punch\n"
	"                      revoke fail unplug (default write=3,nonotify=1,inval=1,\n"
	"                      truncate=2,punch=1,revoke=1,fail=1,unplug=1)\n"
	"  --seed N            seed of the event sequence (default: from the clock; printed)\n"
	"  --scenario FILE     run this timeline instead of random events, one per line:\n"
	"                        T_MS write FILE PAGE [NPAGES] [--no-notify]\n"
	"                        T_MS inval FILE [PAGE NPAGES]   T_MS truncate FILE SIZE\n"
	"                        T_MS punch FILE PAGE NPAGES      T_MS revoke FILE\n"
	"                        T_MS fail FILE PAGE NPAGES       T_MS unplug\n"
	"                        (FILE: 0 or f0)\n"
	"  --hold-ms N         how long revoke, unplug and fail last before replug and\n"
	"                      clear (30)\n"
	"  --json              print the summary as one JSON object\n"
	"  --keep              keep the run's directory MOUNTPOINT/sigbus-stress.PID and\n"
	"                      its files at the end (removed otherwise, failed or not)\n"
	"  --kernel-warnings fail|report\n"
	"                      the kernel log (/dev/kmsg) is watched during the run: its\n"
	"                      reports (WARNING, BUG, Oops, lockdep, KASAN, UBSAN, hung\n"
	"                      task, soft lockup) are listed after the summary with the\n"
	"                      events of the second before each; with fail (the default)\n"
	"                      one also stops the run and makes it exit 1, with report it\n"
	"                      does not change the exit status. Reading /dev/kmsg needs\n"
	"                      root where kernel.dmesg_restrict=1; without it the run goes\n"
	"                      on unwatched and says so\n"
	"  --kernel-log FILE   read kernel records from FILE (in /dev/kmsg's format, from\n"
	"                      its end at the start) instead of /dev/kmsg: for replays and\n"
	"                      tests\n"
	"  -q, --quiet         no progress line\n";

enum {
	O_DURATION = 256,
	O_PROCS,
	O_FILES,
	O_SIZE,
	O_RATE,
	O_MIX,
	O_SEED,
	O_SCENARIO,
	O_HOLD,
	O_JSON,
	O_KEEP,
	O_KWARN,
	O_KLOG
};

static const struct option long_opts[] = {
	{ "socket", required_argument, NULL, 'S' },
	{ "duration", required_argument, NULL, O_DURATION },
	{ "procs", required_argument, NULL, O_PROCS },
	{ "files", required_argument, NULL, O_FILES },
	{ "size", required_argument, NULL, O_SIZE },
	{ "rate", required_argument, NULL, O_RATE },
	{ "mix", required_argument, NULL, O_MIX },
	{ "seed", required_argument, NULL, O_SEED },
	{ "scenario", required_argument, NULL, O_SCENARIO },
	{ "hold-ms", required_argument, NULL, O_HOLD },
	{ "json", no_argument, NULL, O_JSON },
	{ "keep", no_argument, NULL, O_KEEP },
	{ "kernel-warnings", required_argument, NULL, O_KWARN },
	{ "kernel-log", required_argument, NULL, O_KLOG },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

const char *ev_kind_name(enum ev_kind k)
{
	return kind_names[k];
}

static int kind_find(const char *s, size_t n)
{
	for (int i = 0; i < EV_NR; i++) {
		if (strlen(kind_names[i]) == n && strncmp(kind_names[i], s, n) == 0)
			return i;
	}
	return -1;
}

static int parse_mix(const char *s, unsigned mix[EV_NR])
{
	unsigned total = 0;

	memset(mix, 0, sizeof(unsigned) * EV_NR);
	while (*s) {
		size_t n = strcspn(s, "=");
		int k = kind_find(s, n);
		char *end;
		unsigned long w;

		if (k < 0 || s[n] != '=')
			return -EINVAL;
		w = strtoul(s + n + 1, &end, 10);
		if (end == s + n + 1 || (*end && *end != ',') || w > 1000)
			return -EINVAL;
		mix[k] = (unsigned)w;
		total += (unsigned)w;
		s = *end ? end + 1 : end;
	}
	return total ? 0 : -EINVAL;
}

static int parse_num(const char *s, double lo, double hi, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	if (errno || end == s || *end || *out < lo || *out > hi)
		return -EINVAL;
	return 0;
}

static void defaults(struct opts *o)
{
	static const unsigned mix[EV_NR] = { 3, 1, 1, 2, 1, 1, 1, 1 };

	memset(o, 0, sizeof(*o));
	o->duration = 10;
	o->procs = 4;
	o->files = 4;
	o->size = 64 * 1024;
	o->rate = 50;
	o->hold_ms = 30;
	o->kernel_warnings = KW_FAIL;
	memcpy(o->mix, mix, sizeof(mix));
	o->seed = ((uint64_t)time(NULL) << 16) ^ (uint64_t)getpid();
}

/* Applies one option; -EINVAL with a message on stderr. */
static int one_opt(struct opts *o, int c, const char *arg)
{
	double d;
	uint64_t u = 0;
	int rc = 0;

	switch (c) {
	case 'S':
		o->socket = arg;
		break;
	case O_DURATION:
		rc = parse_num(arg, 0.1, 1e6, &o->duration);
		break;
	case O_PROCS:
	case O_FILES:
	case O_HOLD:
		rc = parse_num(arg, c == O_HOLD ? 0 : 1,
			       c == O_HOLD    ? 10000
			       : c == O_PROCS ? MAX_PROCS
					      : MAX_FILES,
			       &d);
		*(c == O_PROCS ? &o->procs : c == O_FILES ? &o->files : &o->hold_ms) = (unsigned)d;
		break;
	case O_SIZE:
		rc = units_parse_size(arg, &o->size);
		break;
	case O_RATE:
		rc = parse_num(arg, 0, 1e5, &o->rate);
		break;
	case O_MIX:
		rc = parse_mix(arg, o->mix);
		break;
	case O_SEED:
		rc = units_parse_u64(arg, &u);
		o->seed = u;
		break;
	case O_SCENARIO:
		o->scenario = arg;
		break;
	case O_JSON:
		o->json = true;
		break;
	case O_KEEP:
		o->keep = true;
		break;
	case O_KWARN:
		if (strcmp(arg, "fail") == 0)
			o->kernel_warnings = KW_FAIL;
		else if (strcmp(arg, "report") == 0)
			o->kernel_warnings = KW_REPORT;
		else
			rc = -EINVAL;
		break;
	case O_KLOG:
		o->kernel_log = arg;
		break;
	case 'q':
		o->quiet = true;
		break;
	default:
		return -EINVAL;
	}
	if (rc < 0)
		fprintf(stderr, "sigbus-stress: bad value for --%s: '%s'\n",
			c == 'S' ? "socket" : long_opts[c - O_DURATION + 1].name, arg);
	return rc < 0 ? -EINVAL : 0;
}

static int sc_file(const char *s, unsigned *out)
{
	char *end;
	unsigned long f = strtoul(s + (*s == 'f'), &end, 10);

	if (end == s + (*s == 'f') || *end || f >= MAX_FILES)
		return -EINVAL;
	*out = (unsigned)f;
	return 0;
}

/* Parses "T_MS COMMAND FILE ARGS" (or "T_MS unplug") into *e. */
static int sc_line(char *line, struct sc_event *e)
{
	char *w[6] = { 0 };
	int n = 0, k, rc;

	for (char *t = strtok(line, " \t\r\n"); t && n < 6; t = strtok(NULL, " \t\r\n"))
		w[n++] = t;
	if (n >= 4 && strcmp(w[n - 1], "--no-notify") == 0 && strcmp(w[1], "write") == 0) {
		w[1] = "nonotify";
		w[--n] = NULL;
	}
	k = n >= 2 ? kind_find(w[1], strlen(w[1])) : -1;
	if (k == EV_UNPLUG) { /* every file: no FILE, e->file stays 0 */
		e->kind = EV_UNPLUG;
		return n == 2 ? units_parse_u64(w[0], &e->t_ms) : -EINVAL;
	}
	if (k < 0 || n < 3 || units_parse_u64(w[0], &e->t_ms) < 0 || sc_file(w[2], &e->file) < 0)
		return -EINVAL;
	e->kind = (enum ev_kind)k;
	e->b = 1;
	rc = n > 3 ? units_parse_size(w[3], &e->a) : 0;
	if (rc == 0 && n > 4)
		rc = units_parse_u64(w[4], &e->b);
	e->has_range = n > 3;
	if ((k == EV_TRUNCATE && n != 4) || (k == EV_REVOKE && n != 3) ||
	    ((k == EV_PUNCH || k == EV_FAIL) && n != 5) || (k == EV_INVAL && n != 3 && n != 5) ||
	    ((k == EV_WRITE || k == EV_NONOTIFY) && n < 4) || n > 5)
		rc = -EINVAL;
	return rc;
}

static int sc_load(struct opts *o)
{
	FILE *f = fopen(o->scenario, "re");
	char line[512];
	int lineno = 0, rc = 0;

	if (!f) {
		fprintf(stderr, "sigbus-stress: %s: %s\n", o->scenario, strerror(errno));
		return -errno;
	}
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		struct sc_event e = { 0 }, *v;
		char *p = line + strspn(line, " \t");

		lineno++;
		if (*p == '#' || *p == '\n' || *p == 0)
			continue;
		rc = sc_line(p, &e);
		if (rc == 0 && o->nsc && e.t_ms < o->sc[o->nsc - 1].t_ms)
			rc = -EINVAL;
		v = rc == 0 ? realloc(o->sc, (o->nsc + 1) * sizeof(*v)) : NULL;
		if (rc == 0 && !v)
			rc = -ENOMEM;
		if (rc == 0) {
			o->sc = v;
			o->sc[o->nsc++] = e;
		}
	}
	if (rc < 0)
		fprintf(stderr, "sigbus-stress: %s:%d: bad or out-of-order event\n", o->scenario,
			lineno);
	fclose(f);
	return rc;
}

static int validate(struct opts *o)
{
	int rc = 0;

	if (o->size < PG || o->size % PG || o->size > MAX_FILE_SIZE) {
		fprintf(stderr, "sigbus-stress: --size must be a multiple of %u in [%u, %u]\n", PG,
			PG, MAX_FILE_SIZE);
		rc = -EINVAL;
	}
	for (size_t i = 0; i < o->nsc; i++) {
		if (o->sc[i].file >= o->files) {
			fprintf(stderr, "sigbus-stress: scenario names f%u, but --files is %u\n",
				o->sc[i].file, o->files);
			rc = -EINVAL;
			break;
		}
	}
	if (!o->mountpoint) {
		fprintf(stderr, "sigbus-stress: no MOUNTPOINT\n");
		rc = -EINVAL;
	}
	return rc;
}

int opts_parse(int argc, char **argv, struct opts *o)
{
	int c, rc = 0;

	defaults(o);
	while ((c = getopt_long(argc, argv, "S:qh", long_opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage, stdout);
			return 1;
		}
		if (one_opt(o, c, optarg) < 0)
			rc = -EINVAL;
	}
	if (optind + 1 == argc)
		o->mountpoint = argv[optind];
	else if (optind + 1 < argc)
		rc = -EINVAL;
	if (rc == 0 && o->scenario)
		rc = sc_load(o);
	if (rc == 0)
		rc = validate(o);
	if (rc < 0)
		fputs(usage, stderr);
	return rc;
}

void opts_free(struct opts *o)
{
	free(o->sc);
	o->sc = NULL;
}
