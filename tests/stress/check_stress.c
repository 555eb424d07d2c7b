/* sigbus-stress against real mounts: a clean run that must find no violation, a timeline
 * of hot-unplugs whose every effect the oracle must have judged, a run on the
 * planted-fault daemon (sigbusfs-planted skips one page invalidation) that must report the
 * stale read, and kernel warnings fed through --kernel-log that must be reported (and,
 * with --kernel-warnings fail, fail the run). SIGBUS_STRESS_DURATION sets the clean run's
 * length (the soak suite runs it for 10 minutes). The project's own runs pass
 * --kernel-warnings report: a warning of the kernel's is not a failure of sigbusfs. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"

#define OUT_MAX 65536

static char out[OUT_MAX]; /* what the last sigbus-stress printed */

/* A timeline of notifying writes to all four pages of f0: with planted_skip_inval=3 the
 * third one leaves the pages cached with old bytes, which the clients keep reading. */
static const char planted_scenario[] = "# the planted fault: the third write is not invalidated\n"
				       "200 write f0 0 4\n"
				       "400 write f0 0 4\n"
				       "600 write f0 0 4\n"
				       "800 write f0 0 4\n"
				       "1000 write f0 0 4\n";

/* Two hot-unplugs of the whole backend, each held long enough for every client to meet
 * the dead files through mappings and descriptors. */
static const char unplug_scenario[] = "300 unplug\n"
				      "1000 unplug\n";

static const char *env_or_fail(const char *name)
{
	const char *v = getenv(name);

	ck_assert_msg(v && *v, "$%s is not set (run through meson test)", name);
	return v;
}

/* Runs sigbus-stress with args (NULL-terminated), stdout and stderr into out; its status. */
static int run_stress(char *const args[])
{
	char *argv[32] = { (char *)env_or_fail("SIGBUS_STRESS") };
	int pipefd[2], status;
	size_t used = 0, n = 1;
	ssize_t got;
	pid_t pid;

	for (; args[n - 1] && n < 31; n++)
		argv[n] = args[n - 1];
	ck_assert_int_eq(pipe(pipefd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(pipefd[1], STDOUT_FILENO);
		dup2(pipefd[1], STDERR_FILENO);
		close(pipefd[0]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(pipefd[1]);
	while ((got = read(pipefd[0], out + used, sizeof(out) - 1 - used)) > 0)
		used += (size_t)got;
	out[used] = 0;
	close(pipefd[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	fputs(out, stderr);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Writes text to a new temporary file, whose name goes into path (a mkstemp template). */
static void write_scenario(char *path, const char *text)
{
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* The number after "\"key\":" in the JSON summary in out; fails the test if absent. */
static unsigned long long json_count(const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(out, pat);
	ck_assert_msg(p, "no %s in the summary:\n%s", key, out);
	return strtoull(p + strlen(pat), NULL, 10);
}

/* How many run directories (sigbus-stress.PID) the mount's root holds. */
static int run_dirs(const struct mnt *m)
{
	DIR *d = opendir(m->dir);
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		n += !strncmp(e->d_name, "sigbus-stress.", 14);
	closedir(d);
	return n;
}

static void umount_clean(struct mnt *m)
{
	int rc = fx_umount(m);

	ck_assert_msg(rc == 0, "the daemon ended with %d, expected a clean exit", rc);
}

START_TEST(test_clean_run)
{
	const char *dur = getenv("SIGBUS_STRESS_DURATION");
	char *args[] = { "-q",
			 "-S",
			 NULL,
			 "--duration",
			 (char *)(dur ? dur : "30"),
			 "--seed",
			 "1",
			 "--procs",
			 "4",
			 "--files",
			 "4",
			 "--size",
			 "64K",
			 "--rate",
			 "50",
			 "--kernel-warnings",
			 "report",
			 "--keep",
			 NULL,
			 NULL };
	struct mnt m;
	int rc = fx_mount(&m, "mem:256M", NULL), kept;

	ck_assert_msg(rc == 0, "fx_mount: %s", strerror(-rc));
	args[2] = m.ctl;
	args[18] = m.dir;
	rc = run_stress(args);
	kept = run_dirs(&m);
	umount_clean(&m);
	ck_assert_msg(kept == 1 && strstr(out, "the files are kept in "), "--keep: %d dirs:\n%s",
		      kept, out);
	ck_assert_msg(rc == 0, "sigbus-stress exited %d on the normal daemon:\n%s", rc, out);
	ck_assert_ptr_nonnull(strstr(out, "PASS"));
}
END_TEST

/* Runs sigbus-stress on a new mount (source, opts) with "-q -S CTL --scenario FILE", FILE
 * holding text, then the NULL-terminated extra options. Its exit status. */
static int run_scenario(const char *text, const char *source, const char *opts, char *const extra[])
{
	char scen[] = "/tmp/sigbus-stress-scenario.XXXXXX";
	char *args[24] = { "-q", "-S", NULL, "--scenario", scen, "--kernel-warnings", "report" };
	size_t n = 7;
	struct mnt m;
	int rc;

	write_scenario(scen, text);
	rc = fx_mount(&m, source, opts);
	ck_assert_msg(rc == 0, "fx_mount(%s): %s", source, strerror(-rc));
	args[2] = m.ctl;
	for (; *extra && n < 22; extra++)
		args[n++] = *extra;
	args[n] = m.dir;
	rc = run_stress(args);
	unlink(scen);
	/* passed or failed, the run removes its directory */
	ck_assert_msg(run_dirs(&m) == 0, "the run left its directory behind:\n%s", out);
	umount_clean(&m);
	return rc;
}

START_TEST(test_unplug_timeline)
{
	char *extra[] = { "--duration", "2",	     "--files", "2",	  "--size",
			  "16K",	"--hold-ms", "200",	"--json", NULL };
	int rc = run_scenario(unplug_scenario, "mem:64M", NULL, extra);

	ck_assert_msg(rc == 0, "sigbus-stress exited %d across unplugs:\n%s", rc, out);
	/* two unplugs and their replugs, none refused */
	ck_assert_uint_eq(json_count("events"), 4);
	ck_assert_uint_eq(json_count("event_errors"), 0);
	/* the clients met the dead backend through mappings and through descriptors */
	ck_assert_uint_gt(json_count("expected_sigbus"), 0);
	ck_assert_uint_gt(json_count("expected_eio"), 0);
	ck_assert_uint_eq(json_count("violations"), 0);
}
END_TEST

START_TEST(test_planted_stale_read)
{
	char *extra[] = { "--duration", "2", "--files", "1", "--size", "16K", NULL };
	int rc;

	/* the fixture runs $SIGBUSFS: point it at the planted build for this mount only */
	setenv("SIGBUSFS", env_or_fail("SIGBUSFS_PLANTED"), 1);
	rc = run_scenario(planted_scenario, "mem:64M", "planted_skip_inval=3", extra);
	ck_assert_msg(rc == 1, "sigbus-stress exited %d on the planted daemon, expected 1:\n%s", rc,
		      out);
	/* every page of f0 is stale after the skipped invalidation: whichever a client
	 * reads first is reported */
	ck_assert_msg(strstr(out, "VIOLATION: stale read") && strstr(out, "/f0 (file 0), page "),
		      "no stale-read report for f0:\n%s", out);
}
END_TEST

/* Appends to path, after delay_ms, a WARNING as /dev/kmsg would give it, stamped with the
 * monotonic clock like printk; in a child process, so the test can run sigbus-stress. */
static pid_t plant_warning(const char *path, long delay_ms)
{
	struct timespec ts = { delay_ms / 1000, (delay_ms % 1000) * 1000000L };
	pid_t pid = fork();
	unsigned long long us;
	FILE *f;

	ck_assert_int_ge(pid, 0);
	if (pid > 0)
		return pid;
	nanosleep(&ts, NULL);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	us = (unsigned long long)ts.tv_sec * 1000000 + (unsigned long long)ts.tv_nsec / 1000;
	f = fopen(path, "a");
	if (!f)
		_exit(1);
	fprintf(f,
		"4,900,%llu,-;------------[ cut here ]------------\n"
		"4,901,%llu,-;WARNING: CPU: 1 PID: 42 at mm/page-writeback.c:2724 "
		"__folio_mark_dirty+0x1e0/0x260\n SUBSYSTEM=test\n"
		"4,902,%llu,-;Call Trace:\n"
		"4,903,%llu,-; filemap_dirty_folio+0x40/0x70\n"
		"4,904,%llu,-;---[ end trace 0000000000000000 ]---\n"
		"6,905,%llu,-;an unrelated line\n",
		us, us, us, us, us, us);
	_exit(fclose(f) == 0 ? 0 : 1);
}

/* Runs sigbus-stress for 3 s on mount m with a kernel log at path that gets a WARNING
 * after 1 s; mode is fail or report, json adds --json. Its exit status. */
static int run_with_warning(struct mnt *m, const char *path, char *mode, bool json)
{
	char *args[] = { "-q",
			 "-S",
			 m->ctl,
			 "--duration",
			 "3",
			 "--rate",
			 "50",
			 "--kernel-log",
			 (char *)path,
			 "--kernel-warnings",
			 mode,
			 json ? "--json" : m->dir,
			 json ? m->dir : NULL,
			 NULL };
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644), status;
	pid_t child;
	int rc;

	ck_assert_int_ge(fd, 0);
	close(fd);
	child = plant_warning(path, 1000);
	rc = run_stress(args);
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	ck_assert_int_eq(status, 0);
	return rc;
}

START_TEST(test_kernel_warning)
{
	char path[] = "/tmp/sigbus-stress-kmsg.XXXXXX";
	const char *w;
	struct mnt m;
	int rc = fx_mount(&m, "mem:64M", NULL), fd;

	ck_assert_msg(rc == 0, "fx_mount: %s", strerror(-rc));
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	rc = run_with_warning(&m, path, "report", true);
	ck_assert_msg(rc == 0, "sigbus-stress exited %d with --kernel-warnings report:\n%s", rc,
		      out);
	w = strstr(out, "\"kernel_warnings\":[{");
	ck_assert_msg(w, "no kernel_warnings in the summary:\n%s", out);
	ck_assert_ptr_nonnull(strstr(w, "\"lines\":[\"WARNING: CPU: 1 PID: 42 at "
					"mm/page-writeback.c:2724"));
	ck_assert_ptr_nonnull(strstr(w, "\" filemap_dirty_folio+0x40/0x70\",\"---[ end trace"));
	/* events at 50/s: the second before the warning holds some, with the daemon's seq */
	ck_assert_msg(strstr(w, "\"events_before\":[\"") && strstr(w, " seq="),
		      "no events before the warning:\n%s", w);
	ck_assert_ptr_nonnull(strstr(out, "\"kernel_log\":\"/tmp/sigbus-stress-kmsg."));

	rc = run_with_warning(&m, path, "fail", false);
	ck_assert_msg(rc == 1, "sigbus-stress exited %d with --kernel-warnings fail:\n%s", rc, out);
	ck_assert_ptr_nonnull(
		strstr(out, "  kernel warnings                                     1 "));
	ck_assert_ptr_nonnull(strstr(out, "result: FAIL (kernel warnings"));
	ck_assert_ptr_nonnull(strstr(out, "KERNEL WARNING 1 of 1, "));
	unlink(path);
	umount_clean(&m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("stress");
	TCase *clean = tcase_create("clean"), *unplug = tcase_create("unplug");
	TCase *planted = tcase_create("planted"), *kwarn = tcase_create("kernel_warnings");
	SRunner *sr;
	int failed;

	fx_require_fuse();
	tcase_set_timeout(clean, 900);
	tcase_set_timeout(unplug, 60);
	tcase_set_timeout(planted, 60);
	tcase_set_timeout(kwarn, 60);
	tcase_add_test(clean, test_clean_run);
	tcase_add_test(unplug, test_unplug_timeline);
	tcase_add_test(planted, test_planted_stale_read);
	tcase_add_test(kwarn, test_kernel_warning);
	suite_add_tcase(s, clean);
	suite_add_tcase(s, unplug);
	suite_add_tcase(s, planted);
	suite_add_tcase(s, kwarn);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
