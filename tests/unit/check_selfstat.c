/* Unit tests of the selfstat helper process (fs/selfstat.c) on an ordinary directory:
 * its answers, its batches, what it keeps of the daemon (no descriptor, one thread), and
 * that it ends when stopped and when the process that started it dies. The kill tests on
 * a real mount are in tests/integration/check_kill.c. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "selfstat.h"

#define LOOKUP_PATHS 3000 /* more than one 64 KiB batch of paths */
#define EXIT_WAIT_MS 1000

static char dir[64];
static struct selfstat *ss;

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/selfstat-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(selfstat_start(dir, &ss), 0);
}

static void teardown(void)
{
	selfstat_stop(ss);
	rmdir(dir);
}

/* dir/name with len bytes, its path in out. */
static void make_file(const char *name, size_t len, char *out, size_t size)
{
	int fd;

	snprintf(out, size, "%s/%s", dir, name);
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)len), 0);
	close(fd);
}

/* Whether pid is reaped within EXIT_WAIT_MS (pid must be a child of this process). */
static bool exits_in_time(pid_t pid)
{
	struct timespec ms = { .tv_nsec = 1000000 };

	for (int i = 0; i < EXIT_WAIT_MS; i++) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return true;
		nanosleep(&ms, NULL);
	}
	return false;
}

START_TEST(test_force_gives_the_size_the_kernel_holds)
{
	char path[PATH_MAX];
	uint64_t held = 0;

	make_file("f", 12345, path, sizeof(path));
	ck_assert_int_eq(selfstat_force(ss, path, &held), 0);
	ck_assert_uint_eq(held, 12345);
	unlink(path);
	ck_assert_int_eq(selfstat_force(ss, path, &held), -ENOENT);
}
END_TEST

START_TEST(test_lookup_takes_many_paths_and_ignores_their_errors)
{
	static char *paths[LOOKUP_PATHS];
	char path[PATH_MAX];
	uint64_t held;

	make_file("g", 1, path, sizeof(path));
	for (int i = 0; i < LOOKUP_PATHS; i++) {
		ck_assert_int_gt(asprintf(&paths[i], "%s/missing-%040d", dir, i), 0);
	}
	ck_assert_int_eq(selfstat_lookup(ss, paths, LOOKUP_PATHS), 0);
	ck_assert_int_eq(selfstat_lookup(ss, paths, 0), 0);
	/* the helper still answers, in order */
	ck_assert_int_eq(selfstat_force(ss, path, &held), 0);
	ck_assert_uint_eq(held, 1);
	for (int i = 0; i < LOOKUP_PATHS; i++)
		free(paths[i]);
	unlink(path);
}
END_TEST

START_TEST(test_abort_fails_where_there_is_no_connection)
{
	int rc = selfstat_abort(ss);

	ck_assert_msg(rc == -ENOENT || rc == -EACCES || rc == -EPERM, "abort: %d", rc);
}
END_TEST

/* The helper must not hold the daemon's descriptors, /dev/fuse above all: this one stands
 * in for it, opened without O_CLOEXEC before the helper starts. */
START_TEST(test_helper_keeps_no_inherited_descriptor)
{
	char marker[PATH_MAX], link[PATH_MAX], fdpath[64], target[PATH_MAX];
	struct selfstat *other;
	struct dirent *e;
	DIR *fds;
	int fd;

	make_file("marker", 0, marker, sizeof(marker));
	fd = open(marker, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(selfstat_start(dir, &other), 0);
	snprintf(fdpath, sizeof(fdpath), "/proc/%d/fd", (int)selfstat_pid(other));
	fds = opendir(fdpath);
	ck_assert_ptr_nonnull(fds);
	while ((e = readdir(fds))) {
		ssize_t n;

		snprintf(link, sizeof(link), "%s/%s", fdpath, e->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n < 0)
			continue;
		target[n] = '\0';
		ck_assert_msg(strcmp(target, marker) != 0, "the helper holds %s as fd %s", marker,
			      e->d_name);
	}
	closedir(fds);
	selfstat_stop(other);
	close(fd);
	unlink(marker);
}
END_TEST

/* sizesync tells the helper's requests apart by their thread ID, which must be its pid. */
START_TEST(test_helper_is_one_thread_of_its_own)
{
	char path[64], comm[32] = "";
	pid_t pid = selfstat_pid(ss);
	struct dirent *e;
	int threads = 0;
	FILE *f;
	DIR *d;

	ck_assert_int_ne(pid, getpid());
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		threads += e->d_name[0] != '.';
	closedir(d);
	ck_assert_int_eq(threads, 1);
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(comm, sizeof(comm), f));
	fclose(f);
	ck_assert_str_eq(comm, "sigbusfs-stat\n");
}
END_TEST

START_TEST(test_stop_ends_the_helper)
{
	struct selfstat *other;
	pid_t pid;

	ck_assert_int_eq(selfstat_start(dir, &other), 0);
	pid = selfstat_pid(other);
	selfstat_stop(other);
	ck_assert_int_eq(kill(pid, 0), -1);
	ck_assert_int_eq(errno, ESRCH);
}
END_TEST

/* A process starts a helper and dies without stopping it (SIGKILL): the helper, orphaned
 * to this subreaper, must exit. */
START_TEST(test_helper_exits_when_its_daemon_dies)
{
	int fds[2];
	pid_t daemon, helper = 0;

	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	ck_assert_int_eq(pipe(fds), 0);
	daemon = fork();
	ck_assert_int_ge(daemon, 0);
	if (daemon == 0) {
		struct selfstat *other;

		if (selfstat_start(dir, &other) < 0)
			_exit(1);
		helper = selfstat_pid(other);
		if (write(fds[1], &helper, sizeof(helper)) != sizeof(helper))
			_exit(1);
		pause();
	}
	ck_assert_int_eq(read(fds[0], &helper, sizeof(helper)), sizeof(helper));
	kill(daemon, SIGKILL);
	ck_assert(exits_in_time(daemon));
	ck_assert_msg(exits_in_time(helper), "the helper outlived its daemon");
	close(fds[0]);
	close(fds[1]);
}
END_TEST

static Suite *selfstat_suite(void)
{
	Suite *s = suite_create("selfstat");
	TCase *tc = tcase_create("helper");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_force_gives_the_size_the_kernel_holds);
	tcase_add_test(tc, test_lookup_takes_many_paths_and_ignores_their_errors);
	tcase_add_test(tc, test_abort_fails_where_there_is_no_connection);
	tcase_add_test(tc, test_helper_keeps_no_inherited_descriptor);
	tcase_add_test(tc, test_helper_is_one_thread_of_its_own);
	tcase_add_test(tc, test_stop_ends_the_helper);
	tcase_add_test(tc, test_helper_exits_when_its_daemon_dies);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(selfstat_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
