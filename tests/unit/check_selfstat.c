/* Unit tests of the selfstat helper processes (fs/selfstat.c) on an ordinary directory:
 * their answers, batches split among them, what they keep of the daemon (no descriptor,
 * one thread each), and that they end when stopped and when the process that started
 * them dies. The kill tests on
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

#define MANY_PATHS   3000 /* more than one 64 KiB request of paths per helper */
#define FORCE_PATHS  101
#define EXIT_WAIT_MS 1000

static char dir[64];
static struct selfstat *ss;

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/selfstat-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(selfstat_start(dir, SELFSTAT_MAX, &ss), 0);
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

/* A batch is split among the helpers; each answer must land at its own path's index. */
START_TEST(test_force_many_answers_each_path_in_order)
{
	static char *paths[FORCE_PATHS];
	uint64_t held[FORCE_PATHS];
	int errs[FORCE_PATHS];
	char path[PATH_MAX], name[32];

	for (int i = 0; i < FORCE_PATHS; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		make_file(name, (size_t)i * 7, path, sizeof(path));
		paths[i] = strdup(path);
		ck_assert_ptr_nonnull(paths[i]);
	}
	unlink(paths[FORCE_PATHS / 2]);
	ck_assert_int_eq(selfstat_force_many(ss, paths, FORCE_PATHS, errs, held), 0);
	for (int i = 0; i < FORCE_PATHS; i++) {
		if (i == FORCE_PATHS / 2) {
			ck_assert_int_eq(errs[i], -ENOENT);
			continue;
		}
		ck_assert_int_eq(errs[i], 0);
		ck_assert_uint_eq(held[i], (uint64_t)i * 7);
		unlink(paths[i]);
	}
	for (int i = 0; i < FORCE_PATHS; i++)
		free(paths[i]);
}
END_TEST

/* More paths than one request holds: each helper sends several, and every answer is
 * read, so the next request gets its own. */
START_TEST(test_force_many_takes_more_paths_than_a_request_holds)
{
	static char *paths[MANY_PATHS];
	static uint64_t held[MANY_PATHS];
	static int errs[MANY_PATHS];
	char path[PATH_MAX];
	uint64_t one;

	make_file("g", 1, path, sizeof(path));
	for (int i = 0; i < MANY_PATHS; i++)
		ck_assert_int_gt(asprintf(&paths[i], "%s/missing-%040d", dir, i), 0);
	ck_assert_int_eq(selfstat_force_many(ss, paths, MANY_PATHS, errs, held), 0);
	for (int i = 0; i < MANY_PATHS; i++)
		ck_assert_int_eq(errs[i], -ENOENT);
	ck_assert_int_eq(selfstat_force_many(ss, paths, 0, errs, held), 0);
	ck_assert_int_eq(selfstat_force(ss, path, &one), 0);
	ck_assert_uint_eq(one, 1);
	for (int i = 0; i < MANY_PATHS; i++)
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

START_TEST(test_helpers_are_as_many_as_asked_and_cpus_allow)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t want = cpus > 0 && cpus < SELFSTAT_MAX ? (size_t)cpus : SELFSTAT_MAX;
	struct selfstat *one;
	pid_t pids[SELFSTAT_MAX];

	ck_assert_uint_eq(selfstat_pids(ss, pids), want);
	ck_assert_int_eq(selfstat_start(dir, 1, &one), 0);
	ck_assert_uint_eq(selfstat_pids(one, pids), 1);
	selfstat_stop(one);
}
END_TEST

/* Whether the process pid holds a descriptor of path. */
static bool holds(pid_t pid, const char *path)
{
	char link[PATH_MAX], fdpath[64], target[PATH_MAX];
	bool found = false;
	struct dirent *e;
	DIR *fds;

	snprintf(fdpath, sizeof(fdpath), "/proc/%d/fd", (int)pid);
	fds = opendir(fdpath);
	ck_assert_ptr_nonnull(fds);
	while (!found && (e = readdir(fds))) {
		ssize_t n;

		snprintf(link, sizeof(link), "%s/%s", fdpath, e->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n < 0)
			continue;
		target[n] = '\0';
		found = strcmp(target, path) == 0;
	}
	closedir(fds);
	return found;
}

/* No helper may hold the daemon's descriptors, /dev/fuse above all: this one stands in
 * for it, opened without O_CLOEXEC before the helpers start. */
START_TEST(test_helpers_keep_no_inherited_descriptor)
{
	char marker[PATH_MAX];
	struct selfstat *other;
	pid_t pids[SELFSTAT_MAX];
	size_t n;
	int fd;

	make_file("marker", 0, marker, sizeof(marker));
	fd = open(marker, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(selfstat_start(dir, SELFSTAT_MAX, &other), 0);
	n = selfstat_pids(other, pids);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(!holds(pids[i], marker), "helper %d holds %s", (int)pids[i], marker);
	selfstat_stop(other);
	close(fd);
	unlink(marker);
}
END_TEST

/* sizesync tells the helpers' requests apart by their thread ID, which must be a pid. */
START_TEST(test_each_helper_is_one_thread_of_its_own)
{
	char path[64], comm[32];
	pid_t pids[SELFSTAT_MAX];
	size_t n = selfstat_pids(ss, pids);

	for (size_t i = 0; i < n; i++) {
		struct dirent *e;
		int threads = 0;
		FILE *f;
		DIR *d;

		ck_assert_int_ne(pids[i], getpid());
		snprintf(path, sizeof(path), "/proc/%d/task", (int)pids[i]);
		d = opendir(path);
		ck_assert_ptr_nonnull(d);
		while ((e = readdir(d)))
			threads += e->d_name[0] != '.';
		closedir(d);
		ck_assert_int_eq(threads, 1);
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)pids[i]);
		f = fopen(path, "r");
		ck_assert_ptr_nonnull(f);
		ck_assert_ptr_nonnull(fgets(comm, sizeof(comm), f));
		fclose(f);
		ck_assert_str_eq(comm, "sigbusfs-stat\n");
	}
}
END_TEST

START_TEST(test_stop_ends_the_helpers)
{
	struct selfstat *other;
	pid_t pids[SELFSTAT_MAX];
	size_t n;

	ck_assert_int_eq(selfstat_start(dir, SELFSTAT_MAX, &other), 0);
	n = selfstat_pids(other, pids);
	selfstat_stop(other);
	for (size_t i = 0; i < n; i++) {
		ck_assert_int_eq(kill(pids[i], 0), -1);
		ck_assert_int_eq(errno, ESRCH);
	}
}
END_TEST

/* A process starts helpers and dies without stopping them (SIGKILL): the helpers,
 * orphaned to this subreaper, must exit. */
START_TEST(test_helpers_exit_when_their_daemon_dies)
{
	pid_t daemon, pids[SELFSTAT_MAX];
	size_t n = 0;
	int fds[2];

	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	ck_assert_int_eq(pipe(fds), 0);
	daemon = fork();
	ck_assert_int_ge(daemon, 0);
	if (daemon == 0) {
		struct selfstat *other;

		if (selfstat_start(dir, SELFSTAT_MAX, &other) < 0)
			_exit(1);
		n = selfstat_pids(other, pids);
		if (write(fds[1], &n, sizeof(n)) != sizeof(n) ||
		    write(fds[1], pids, n * sizeof(*pids)) != (ssize_t)(n * sizeof(*pids)))
			_exit(1);
		pause();
	}
	ck_assert_int_eq(read(fds[0], &n, sizeof(n)), sizeof(n));
	ck_assert_int_eq(read(fds[0], pids, n * sizeof(*pids)), n * sizeof(*pids));
	kill(daemon, SIGKILL);
	ck_assert(exits_in_time(daemon));
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(exits_in_time(pids[i]), "helper %d outlived its daemon",
			      (int)pids[i]);
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
	tcase_add_test(tc, test_force_many_answers_each_path_in_order);
	tcase_add_test(tc, test_force_many_takes_more_paths_than_a_request_holds);
	tcase_add_test(tc, test_abort_fails_where_there_is_no_connection);
	tcase_add_test(tc, test_helpers_are_as_many_as_asked_and_cpus_allow);
	tcase_add_test(tc, test_helpers_keep_no_inherited_descriptor);
	tcase_add_test(tc, test_each_helper_is_one_thread_of_its_own);
	tcase_add_test(tc, test_stop_ends_the_helpers);
	tcase_add_test(tc, test_helpers_exit_when_their_daemon_dies);
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
