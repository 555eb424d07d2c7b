/* sigbus-probe against a real mount: the built tool ($SIGBUS_PROBE) maps files that the
 * daemon truncates, punches and invalidates on command, and its human, --hold and --json
 * outputs must report the touch outcome, residency and PFNs the kernel gives. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "ctlreq.h"

#define PG	     4096
#define NPAGES	     8 /* page i of a test file is filled with 'A' + i */
#define OUT_MAX	     (256 * 1024)
#define ARGS_MAX     16
#define FILL(i)	     ((char)('A' + (i)))
#define NPAGES_ARG   "8"
#define TRUNC_PAGES  3 /* pages left by the truncation tests */
#define PUNCHED_PAGE 2

static struct mnt mnt;
static char out[OUT_MAX]; /* the output of the last run_probe() */

static void setup(void)
{
	fx_mount_or_fail(&mnt, "mem:64M", NULL);
}

static void teardown(void)
{
	fx_teardown(&mnt);
}

/* A control command on the mount that must succeed. */
#define CTL_OK(...)                                                \
	do {                                                       \
		struct ctl_result res_ = { 0 };                    \
		fx_ctl_ok(&mnt, &res_, __VA_ARGS__, (char *)NULL); \
		ctl_result_free(&res_);                            \
	} while (0)

/* Writes name (in the mount root) with NPAGES pages, page i filled with 'A' + i; returns
 * its path in a static buffer. */
static const char *make_file(const char *name)
{
	static char path[256];
	static char buf[NPAGES * PG];
	int rc;

	for (int i = 0; i < NPAGES; i++)
		memset(buf + i * PG, FILL(i), PG);
	fx_path(&mnt, name, path, sizeof(path));
	rc = fx_write_file(path, buf, sizeof(buf));
	ck_assert_msg(rc == 0, "write %s: %s", path, strerror(-rc));
	return path;
}

static const char *probe_bin(void)
{
	const char *bin = getenv("SIGBUS_PROBE");

	return bin ? bin : "sigbus-probe";
}

/* The child side of run_probe(): stdout to the pipe, exec. Never returns. */
static void exec_probe(int wfd, bool is_admin_dropped, char **argv)
{
	dup2(wfd, STDOUT_FILENO);
	close(wfd);
	/* Dropped from the bounding set, CAP_SYS_ADMIN is not regained by root's exec. */
	if (is_admin_dropped && prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0) < 0)
		_exit(126);
	execv(argv[0], argv);
	_exit(127);
}

/* Runs "$SIGBUS_PROBE ARG..." (NULL-terminated) with stdout in out; returns its exit
 * status. stderr goes to the test log. */
static int run_probe(bool is_admin_dropped, const char *arg, ...)
{
	char *argv[ARGS_MAX];
	size_t n = 0, used = 0;
	int pfd[2], status;
	ssize_t got;
	va_list ap;
	pid_t pid;

	argv[n++] = (char *)probe_bin();
	va_start(ap, arg);
	for (; arg && n < ARGS_MAX - 1; arg = va_arg(ap, const char *))
		argv[n++] = (char *)arg;
	va_end(ap);
	argv[n] = NULL;
	ck_assert(pipe(pfd) == 0);
	pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		exec_probe(pfd[1], is_admin_dropped, argv);
	}
	close(pfd[1]);
	while ((got = read(pfd[0], out + used, sizeof(out) - 1 - used)) > 0)
		used += (size_t)got;
	out[used] = '\0';
	close(pfd[0]);
	ck_assert(waitpid(pid, &status, 0) == pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Runs the probe with --json and the given option (or NULL) on path; the parsed output. */
static json_object *probe_json(const char *path, const char *opt)
{
	json_object *doc;
	int rc;

	if (opt)
		rc = run_probe(false, "--json", "--pages", NPAGES_ARG, opt, path, NULL);
	else
		rc = run_probe(false, "--json", "--pages", NPAGES_ARG, path, NULL);
	ck_assert_msg(rc == 0, "sigbus-probe --json %s: exit %d", path, rc);
	doc = json_tokener_parse(out);
	ck_assert_msg(doc != NULL, "sigbus-probe --json: not JSON: %.300s", out);
	return doc;
}

static json_object *member(json_object *o, const char *key)
{
	json_object *v = NULL;

	ck_assert_msg(json_object_object_get_ex(o, key, &v), "no \"%s\" in %s", key,
		      json_object_to_json_string(o));
	return v;
}

static json_object *page(json_object *doc, int i)
{
	json_object *pages = member(doc, "pages");

	ck_assert_int_eq(json_object_array_length(pages), NPAGES);
	return json_object_array_get_idx(pages, (size_t)i);
}

/* pages[i].touch, or "null" */
static const char *touch_of(json_object *doc, int i)
{
	json_object *t = member(page(doc, i), "touch");

	return t ? json_object_get_string(t) : "null";
}

/* pages[i].<when>.<key> as a boolean; when is "before" or "after" */
static bool state_of(json_object *doc, int i, const char *when, const char *key)
{
	json_object *st = member(page(doc, i), when);

	ck_assert_msg(st != NULL, "page %d: \"%s\" is null", i, when);
	return json_object_get_boolean(member(st, key));
}

static int64_t summary_of(json_object *doc, const char *key)
{
	return json_object_get_int64(member(member(doc, "summary"), key));
}

/* The first page map line of the human output: the characters after its file offset. */
static const char *map_line(void)
{
	const char *p = strstr(out, "\n0x");

	ck_assert_msg(p != NULL, "no map line in: %s", out);
	p = strchr(p, ' ');
	ck_assert_msg(p != NULL, "no map after the offset in: %s", out);
	return p + 1;
}

START_TEST(test_truncate_sigbus)
{
	const char *f = make_file("trunc");
	json_object *doc;

	CTL_OK("truncate", "trunc", "12K");
	doc = probe_json(f, NULL);
	for (int i = 0; i < NPAGES; i++)
		ck_assert_str_eq(touch_of(doc, i), i < TRUNC_PAGES ? "ok" : "sigbus");
	ck_assert_str_eq(json_object_get_string(member(page(doc, 1), "head")), "BBBBBBBB");
	ck_assert_int_eq(summary_of(doc, "ok"), TRUNC_PAGES);
	ck_assert_int_eq(summary_of(doc, "sigbus"), NPAGES - TRUNC_PAGES);
	json_object_put(doc);
}
END_TEST

/* One probe line "page N: ..." from a --hold probe; fails the test on EOF. */
static void hold_line(FILE *from, int n, const char *want)
{
	char line[256], prefix[32];

	ck_assert_msg(fgets(line, sizeof(line), from) != NULL, "--hold: EOF before page %d", n);
	snprintf(prefix, sizeof(prefix), "page %d: %s", n, want);
	ck_assert_msg(strncmp(line, prefix, strlen(prefix)) == 0, "--hold: got \"%s\", want \"%s\"",
		      line, prefix);
}

/* The demo's way: one mapping held across the event, one line per page per probe. */
START_TEST(test_hold_truncate)
{
	const char *f = make_file("hold");
	int in[2], outp[2], status;
	FILE *from;
	pid_t pid;

	ck_assert(pipe(in) == 0 && pipe(outp) == 0);
	pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0) {
		dup2(in[0], STDIN_FILENO);
		dup2(outp[1], STDOUT_FILENO);
		close(in[1]);
		close(outp[0]);
		execl(probe_bin(), probe_bin(), "--hold", f, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(outp[1]);
	from = fdopen(outp[0], "r");
	for (int i = 0; i < NPAGES; i++)
		hold_line(from, i, "data");
	CTL_OK("truncate", "hold", "12K");
	ck_assert(write(in[1], "\n", 1) == 1);
	for (int i = 0; i < NPAGES; i++)
		hold_line(from, i, i < TRUNC_PAGES ? "data" : "SIGBUS");
	close(in[1]);
	ck_assert(waitpid(pid, &status, 0) == pid);
	ck_assert_int_eq(status, 0);
	fclose(from);
}
END_TEST

START_TEST(test_punch_zero)
{
	const char *f = make_file("punch");
	json_object *doc;

	CTL_OK("punch", "punch", "8K", "4K");
	doc = probe_json(f, NULL);
	for (int i = 0; i < NPAGES; i++)
		ck_assert_str_eq(touch_of(doc, i), i == PUNCHED_PAGE ? "zero" : "ok");
	ck_assert_int_eq(summary_of(doc, "zero"), 1);
	ck_assert_int_eq(summary_of(doc, "ok"), NPAGES - 1);
	json_object_put(doc);
	ck_assert_int_eq(run_probe(false, "--offset", "8K", "--pages", "2", f, NULL), 0);
	ck_assert_msg(strncmp(map_line(), "zD\n", 3) == 0 || strncmp(map_line(), "ZD\n", 3) == 0,
		      "--offset 8K: %s", out);
}
END_TEST

START_TEST(test_inval_residency)
{
	const char *f = make_file("inval");
	json_object *doc = probe_json(f, NULL);

	for (int i = 0; i < NPAGES; i++)
		ck_assert_msg(state_of(doc, i, "after", "resident"), "page %d not resident", i);
	json_object_put(doc);
	ck_assert_int_eq(run_probe(false, "--no-touch", f, NULL), 0);
	ck_assert_msg(strncmp(map_line(), "RRRRRRRR\n", 9) == 0, "before inval: %s", out);
	CTL_OK("inval", "inval");
	ck_assert_int_eq(run_probe(false, "--no-touch", f, NULL), 0);
	ck_assert_msg(strncmp(map_line(), "........\n", 9) == 0, "after inval: %s", out);
	doc = probe_json(f, NULL);
	for (int i = 0; i < NPAGES; i++) {
		ck_assert_msg(!state_of(doc, i, "before", "resident"), "page %d resident", i);
		ck_assert_str_eq(touch_of(doc, i), "ok");
	}
	ck_assert_msg(strchr(json_object_get_string(member(page(doc, 0), "map")), 'd'), "%s",
		      json_object_to_json_string(page(doc, 0)));
	json_object_put(doc);
}
END_TEST

/* mincore() of path's pages through a mapping of our own: how many are resident. */
static int resident_pages(const char *path)
{
	unsigned char vec[NPAGES];
	int fd = open(path, O_RDONLY), n = 0;
	void *p;

	ck_assert(fd >= 0);
	p = mmap(NULL, NPAGES * PG, PROT_READ, MAP_SHARED, fd, 0);
	ck_assert(p != MAP_FAILED);
	ck_assert(mincore(p, NPAGES * PG, vec) == 0);
	for (int i = 0; i < NPAGES; i++)
		n += vec[i] & 1;
	munmap(p, NPAGES * PG);
	close(fd);
	return n;
}

START_TEST(test_no_touch_does_not_fault)
{
	const char *f = make_file("notouch");
	json_object *doc;

	CTL_OK("inval", "notouch");
	ck_assert_int_eq(resident_pages(f), 0);
	for (int round = 0; round < 2; round++) {
		doc = probe_json(f, "--no-touch");
		ck_assert(!json_object_get_boolean(member(doc, "touched")));
		for (int i = 0; i < NPAGES; i++) {
			ck_assert_str_eq(touch_of(doc, i), "null");
			ck_assert(member(page(doc, i), "after") == NULL);
			ck_assert(!state_of(doc, i, "before", "resident"));
			ck_assert(!state_of(doc, i, "before", "present"));
		}
		ck_assert_int_eq(summary_of(doc, "resident"), 0);
		json_object_put(doc);
	}
	ck_assert_int_eq(resident_pages(f), 0);
}
END_TEST

START_TEST(test_pfns_as_root)
{
	const char *f = make_file("pfn");
	json_object *doc;

	if (geteuid() != 0) {
		fprintf(stderr, "test_pfns_as_root: not root, nothing to check\n");
		return;
	}
	doc = probe_json(f, NULL);
	ck_assert(json_object_get_boolean(member(member(doc, "summary"), "pfns_visible")));
	for (int i = 0; i < NPAGES; i++) {
		json_object *after = member(page(doc, i), "after");
		json_object *flags = member(after, "flags");
		int64_t pfn = json_object_get_int64(member(after, "pfn"));

		ck_assert_msg(state_of(doc, i, "after", "present"), "page %d not present", i);
		ck_assert_msg(pfn > 0, "page %d: pfn %lld", i, (long long)pfn);
		ck_assert_msg(strstr(json_object_to_json_string(flags), "\"UPTODATE\""),
			      "page %d: flags %s", i, json_object_to_json_string(flags));
	}
	json_object_put(doc);
}
END_TEST

/* Without CAP_SYS_ADMIN the kernel shows PFN 0: the probe must say so, never print it. */
START_TEST(test_pfns_hidden)
{
	const char *f = make_file("hidden");
	json_object *doc, *sum;

	ck_assert_int_eq(run_probe(true, "--json", "--pages", NPAGES_ARG, f, NULL), 0);
	doc = json_tokener_parse(out);
	ck_assert_msg(doc != NULL, "not JSON: %.300s", out);
	sum = member(doc, "summary");
	ck_assert(!json_object_get_boolean(member(sum, "pfns_visible")));
	ck_assert_msg(strstr(json_object_get_string(member(sum, "pfns_note")), "CAP_SYS_ADMIN"),
		      "%s", json_object_to_json_string(sum));
	for (int i = 0; i < NPAGES; i++) {
		ck_assert(state_of(doc, i, "after", "present"));
		ck_assert(member(member(page(doc, i), "after"), "pfn") == NULL);
	}
	json_object_put(doc);
	ck_assert_int_eq(run_probe(true, f, NULL), 0);
	ck_assert_msg(strstr(out, "PFNs hidden: needs CAP_SYS_ADMIN"), "%s", out);
	ck_assert_msg(!strstr(out, "pfns of"), "%s", out);
}
END_TEST

static Suite *probe_suite(void)
{
	Suite *s = suite_create("probe");
	TCase *tc = fx_tcase(s, "probe", 30, setup, teardown, NULL);

	FX_ADD_TESTS(tc, test_truncate_sigbus, test_hold_truncate, test_punch_zero,
		     test_inval_residency, test_no_touch_does_not_fault, test_pfns_as_root,
		     test_pfns_hidden);
	return s;
}

int main(void)
{
	fx_require_fuse();
	return fx_run_suite(probe_suite());
}
