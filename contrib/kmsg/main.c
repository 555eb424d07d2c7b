/* sigbus-kmsg: prints the kernel's reports (WARNING, BUG, Oops, lockdep, KASAN, UBSAN,
 * hung task, soft lockup) that the kernel log holds from a given time on, as text or as
 * JSON lines; contrib/check runs it at its end. The matching is kmsg.c's. */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kmsg.h"

static const char usage[] =
	"usage: sigbus-kmsg [--since SECONDS] [--json] [--path FILE]\n"
	"Prints the kernel's reports (WARNING, BUG, Oops, lockdep, KASAN, UBSAN, hung task,\n"
	"soft lockup) still in the kernel log, with the lines that follow each one.\n"
	"  --since SECONDS  only reports printed at or after this time since boot (printk's\n"
	"                   clock; the first field of /proc/uptime is close to it)\n"
	"  --json           one JSON object per report: seq, ts_us, wall (seconds since the\n"
	"                   epoch, estimated), kind, lines, dropped\n"
	"  --path FILE      read FILE (records in /dev/kmsg's format) instead of /dev/kmsg\n"
	"Exit status: 0 (whether or not reports were found), 1 the log cannot be read,\n"
	"2 usage error.\n";

struct args {
	double since;
	bool json;
	const char *path;
};

static int parse(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
		{ "since", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "path", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int c;

	memset(a, 0, sizeof(*a));
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 's') {
			a->since = strtod(optarg, &end);
			if (end == optarg || *end || a->since < 0)
				return -EINVAL;
		} else if (c == 'j') {
			a->json = true;
		} else if (c == 'p') {
			a->path = optarg;
		} else {
			return c == 'h' ? 1 : -EINVAL;
		}
	}
	return optind == argc ? 0 : -EINVAL;
}

static double clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One JSON object per line, built with json-c. */
static void print_json(const struct kmsg_report *r, double wall)
{
	struct json_object *o = json_object_new_object(), *lines = json_object_new_array();

	json_object_object_add(o, "seq", json_object_new_uint64(r->seq));
	json_object_object_add(o, "ts_us", json_object_new_uint64(r->ts_us));
	json_object_object_add(o, "wall", json_object_new_double(wall));
	json_object_object_add(o, "kind", json_object_new_string(r->kind));
	json_object_object_add(o, "dropped", json_object_new_int64(r->dropped));
	for (unsigned i = 0; i < r->nlines; i++)
		json_object_array_add(lines, json_object_new_string(r->lines[i]));
	json_object_object_add(o, "lines", lines);
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

static void print_text(const struct kmsg_report *r, double wall)
{
	char when[64];
	time_t t = (time_t)wall;
	struct tm tm;

	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
	printf("[%llu.%06llu] (%s, seq %llu) %s report:\n",
	       (unsigned long long)(r->ts_us / 1000000), (unsigned long long)(r->ts_us % 1000000),
	       when, (unsigned long long)r->seq, r->kind);
	for (unsigned i = 0; i < r->nlines; i++)
		printf("    %s\n", r->lines[i]);
	if (r->dropped)
		printf("    ... %u more lines: see dmesg\n", r->dropped);
}

int main(int argc, char **argv)
{
	struct args a;
	struct kmsg *k;
	double offset; /* wall clock minus printk's clock */
	int rc = parse(argc, argv, &a);

	if (rc != 0) {
		fputs(usage, rc > 0 ? stdout : stderr);
		return rc > 0 ? 0 : 2;
	}
	rc = kmsg_open(a.path, false, &k);
	if (rc == 0)
		rc = kmsg_poll(k);
	if (rc < 0) {
		fprintf(stderr, "sigbus-kmsg: cannot read %s: %s\n",
			a.path ? a.path : KMSG_DEFAULT_PATH, strerror(-rc));
		kmsg_close(k);
		return 1;
	}
	kmsg_flush(k);
	offset = clock_s(CLOCK_REALTIME) - clock_s(CLOCK_MONOTONIC);
	for (size_t i = 0; i < kmsg_count(k); i++) {
		const struct kmsg_report *r = kmsg_report(k, i);
		double wall = (double)r->ts_us / 1e6 + offset;

		if ((double)r->ts_us / 1e6 < a.since)
			continue;
		if (a.json)
			print_json(r, wall);
		else
			print_text(r, wall);
	}
	kmsg_close(k);
	return 0;
}
