/* No control command deadlocks the daemon: 8 client processes fault, read, write and sync
 * the same 4 files while the test sends every control command in a loop, each under a
 * deadline; afterwards the mount still answers and the daemon exits cleanly on unmount.
 * What each command does to clients is pinned in check_revoke.c and check_mmap.c. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "ctlreq.h"
#include "touch.h"

#define PG	       4096
#define NPAGES	       4
#define FILE_SIZE      (NPAGES * PG)
#define NFILES	       4
#define NCLIENTS       8
#define RUN_S	       20 /* how long the commands loop */
#define CTL_DEADLINE_S 10 /* a command that takes longer is a deadlock */
#define STOP_WAIT_MS   10000
#define ARGS_MAX       10

static struct mnt mnt;

static void setup(void)
{
	fx_mount_or_fail(&mnt, "mem:64M", NULL);
}

static void teardown(void)
{
	fx_teardown(&mnt);
}

/* The name of test file i in the test's directory. */
static const char *file_name(unsigned i)
{
	static char name[16];

	snprintf(name, sizeof(name), "f%u", i);
	return name;
}

/* ---- the clients ---- */

/* What one client saw; each client writes only its own slot. */
struct tally {
	unsigned long ops, sigbus, errors;
};

/* Shared between the test and its clients (MAP_SHARED | MAP_ANONYMOUS). */
struct board {
	int stop; /* set by the test; read with __atomic_load_n */
	struct tally t[NCLIENTS];
};

/* A call on path failed: EIO is what revoke, unplug and fail rules give; anything else
 * is a failure of the client. */
static int tolerate(const char *what, const char *path, struct tally *t)
{
	int e = errno;

	if (e == EIO) {
		t->errors++;
		return 0;
	}
	return FX_FAIL("client: %s %s: %s (only EIO is expected)", what, path, strerrorname_np(e));
}

static void touch_pages(volatile char *p, unsigned r, struct tally *t)
{
	char c = (char)('a' + r % 26);

	for (int i = 0; i < NPAGES; i++) {
		if (touch_copy(&c, p + i * PG + (r % PG), 1, NULL) == TOUCH_SIGBUS)
			t->sigbus++;
	}
	if (touch_copy(p + (r % FILE_SIZE), &c, 1, NULL) == TOUCH_SIGBUS)
		t->sigbus++;
}

static int mapped_op(int fd, const char *path, int flags, unsigned r, struct tally *t)
{
	volatile char *p = mmap(NULL, FILE_SIZE, PROT_READ | PROT_WRITE, flags, fd, 0);
	int rc = 0;

	if (p == MAP_FAILED)
		return FX_FAIL("client: mmap %s: %s", path, strerror(errno));
	touch_pages(p, r, t);
	if (flags == MAP_SHARED && msync((void *)p, FILE_SIZE, MS_SYNC) < 0)
		rc = tolerate("msync", path, t);
	munmap((void *)p, FILE_SIZE);
	return rc;
}

static int io_op(int fd, const char *path, bool is_write, unsigned r, struct tally *t)
{
	char buf[PG];
	off_t off = (off_t)(r % (FILE_SIZE - 100));

	memset(buf, 'p', sizeof(buf));
	if (!is_write && pread(fd, buf, sizeof(buf), off) < 0)
		return tolerate("pread", path, t);
	if (is_write && pwrite(fd, buf, 100, off) < 0)
		return tolerate("pwrite", path, t);
	if (is_write && r % 4 == 0 && fsync(fd) < 0)
		return tolerate("fsync", path, t);
	return 0;
}

/* One operation on one of the files, through a descriptor of its own: old descriptors of
 * a revoked file stay dead for good. */
static int client_op(unsigned r, struct tally *t)
{
	const char *path = fx_work_path(file_name(r % NFILES));
	int fd, rc = 0;

	fd = open(path, O_RDWR);
	if (fd < 0)
		return tolerate("open", path, t);
	switch ((r / NFILES) % 4) {
	case 0:
		rc = mapped_op(fd, path, MAP_SHARED, r, t);
		break;
	case 1:
		rc = mapped_op(fd, path, MAP_PRIVATE, r, t);
		break;
	default:
		rc = io_op(fd, path, (r / NFILES) % 4 == 3, r, t);
		break;
	}
	if (close(fd) < 0 && rc == 0)
		rc = tolerate("close", path, t);
	t->ops++;
	return rc;
}

static int client(struct board *b, int id)
{
	unsigned seed = (unsigned)id * 7919u + 1;

	/* a test that fails must not leave its clients looping on the mount */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	while (!__atomic_load_n(&b->stop, __ATOMIC_RELAXED))
		FX_TRY(client_op((unsigned)rand_r(&seed), &b->t[id]));
	return 0;
}

static void start_clients(struct board *b, pid_t *pids)
{
	fx_fail_clear();
	fflush(stdout);
	fflush(stderr);
	for (int i = 0; i < NCLIENTS; i++) {
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0)
			_exit(client(b, i));
	}
}

/* The exit status of child pid if it exits within ms milliseconds, else -ETIMEDOUT. */
static int reap_within(pid_t pid, int ms)
{
	struct pollfd p = { .events = POLLIN };
	int status;

	p.fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (p.fd < 0)
		return -errno;
	if (poll(&p, 1, ms) != 1) {
		close(p.fd);
		return -ETIMEDOUT;
	}
	close(p.fd);
	if (waitpid(pid, &status, 0) != pid)
		return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void stop_clients(struct board *b, const pid_t *pids)
{
	int rc[NCLIENTS];

	__atomic_store_n(&b->stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < NCLIENTS; i++) {
		rc[i] = reap_within(pids[i], STOP_WAIT_MS);
		if (rc[i] == -ETIMEDOUT)
			kill(pids[i], SIGKILL);
	}
	for (int i = 0; i < NCLIENTS; i++) {
		ck_assert_msg(rc[i] != -ETIMEDOUT, "client %d still running %d ms after stop", i,
			      STOP_WAIT_MS);
		ck_assert_msg(rc[i] == 0, "client %d ended with %d: %s", i, rc[i], fx_failure());
		ck_assert_msg(b->t[i].ops > 0, "client %d did nothing", i);
	}
}

/* ---- the commands ---- */

static char cmd_text[512]; /* the command running, for the watchdog */

/* Runs in the test process while it waits for the daemon's reply in fx_ctl_request(),
 * blocked in recv() with no lock that Check's failure path takes, so failing from the
 * handler is safe here. */
static void on_deadline(int sig)
{
	(void)sig;
	ck_abort_msg("%s did not return within %d s: the daemon deadlocked", cmd_text,
		     CTL_DEADLINE_S);
}

/* Runs one command (a NULL-terminated argv) under the watchdog; it must succeed. */
static void run_cmd(const char *const *argv)
{
	struct ctl_result res;
	size_t used = 0;
	int rc;

	cmd_text[0] = '\0';
	for (int i = 0; argv[i] && used < sizeof(cmd_text); i++)
		used += (size_t)snprintf(cmd_text + used, sizeof(cmd_text) - used, "%s%s",
					 i ? " " : "", argv[i]);
	alarm(CTL_DEADLINE_S);
	rc = fx_ctl_request(&mnt, &res, argv[0], argv[1], argv[2], argv[3], argv[4], argv[5],
			    argv[6], argv[7], argv[8], argv[9], (char *)NULL);
	alarm(0);
	ck_assert_msg(rc == 0 && res.is_ok, "%s: %s", cmd_text, rc ? strerror(-rc) : res.text);
	ctl_result_free(&res);
}

struct cmd {
	const char *argv[ARGS_MAX + 1];
	const char *hold; /* a file the test keeps open while the command runs, or NULL */
};

/* Runs one command, with c->hold open meanwhile: store needs an inode the kernel holds,
 * and the clients alone do not guarantee one, since a revoke drops the kernel's inode. */
static void run_held(const struct cmd *c)
{
	int fd = -1;

	if (c->hold) {
		fd = open(fx_work_path(c->hold), O_RDONLY);
		ck_assert_msg(fd >= 0, "open %s: %s", c->hold, strerror(errno));
	}
	run_cmd(c->argv);
	if (fd >= 0)
		close(fd);
}

/* One round of every command; each round leaves no rule, revocation or unplug behind. */
static void run_round(char rel[NFILES][PATH_MAX])
{
	const struct cmd cmds[] = {
		{ { "status" } },
		{ { "stats" } },
		{ { "stats", rel[1] } },
		{ { "log" } },
		{ { "inval", rel[0] } },
		{ { "inval", rel[1], "0", "4096" } },
		{ { "write", rel[1], "100", "chaos" } },
		{ { "write", rel[2], "200", "stale", "--no-notify" } },
		{ { "truncate", rel[2], "4096" } },
		{ { "truncate", rel[2], "16384" } },
		{ { "punch", rel[3], "4096", "4096" } },
		{ { "store", rel[0], "0", "STORED" }, file_name(0) },
		{ { "audit", rel[0] } },
		{ { "fail", rel[1], "--op", "read", "--errno", "EIO", "--count", "5" } },
		{ { "fail", rel[2], "0", "8192", "--op", "write", "--errno", "EIO" } },
		{ { "fail", rel[3], "--op", "fsync", "--errno", "EIO" } },
		{ { "fail", rel[0], "--op", "open", "--errno", "EIO", "--count", "3" } },
		{ { "rules" } },
		{ { "clear" } },
		{ { "delay", rel[1], "--op", "read", "--ms", "2" } },
		{ { "delay", rel[2], "0", "4096", "--op", "write", "--ms", "3" } },
		{ { "clear" } },
		{ { "revoke", rel[0] } },
		{ { "replug" } },
		{ { "unplug" } },
		{ { "replug" } },
	};

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		run_held(&cmds[i]);
}

/* Runs rounds for at least RUN_S seconds; returns how many. */
static int run_rounds(void)
{
	static char rel[NFILES][PATH_MAX];
	struct sigaction sa = { .sa_handler = on_deadline };
	struct timespec start, now;
	int rounds = 0;

	for (int i = 0; i < NFILES; i++)
		snprintf(rel[i], sizeof(rel[i]), "%s", fx_work_rel(file_name((unsigned)i)));
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGALRM, &sa, NULL), 0);
	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		run_round(rel);
		rounds++;
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec - start.tv_sec < RUN_S);
	return rounds;
}

/* ---- afterwards ---- */

/* In a client: stat and read every file, list the directory, stat the root. */
static int mount_answers(void *arg)
{
	const char *workdir = fx_workdir();
	char buf[FILE_SIZE];
	struct stat st;
	int entries = 0;
	DIR *d;

	(void)arg;
	for (unsigned i = 0; i < NFILES; i++) {
		const char *path = fx_work_path(file_name(i));
		int fd;

		if (stat(path, &st) < 0 || (fd = open(path, O_RDONLY)) < 0)
			return FX_FAIL("%s after the chaos: %s", path, strerror(errno));
		if (pread(fd, buf, sizeof(buf), 0) != st.st_size)
			return FX_FAIL("%s: pread after the chaos: %s", path, strerror(errno));
		close(fd);
	}
	d = opendir(workdir);
	if (!d)
		return FX_FAIL("opendir %s: %s", workdir, strerror(errno));
	while (readdir(d))
		entries++;
	closedir(d);
	if (entries != NFILES + 2)
		return FX_FAIL("%s lists %d entries, expected %d", workdir, entries, NFILES + 2);
	if (stat(mnt.dir, &st) < 0)
		return FX_FAIL("stat %s: %s", mnt.dir, strerror(errno));
	return 0;
}

static void make_files(void)
{
	static char buf[FILE_SIZE];
	int rc;

	for (int i = 0; i < FILE_SIZE; i++)
		buf[i] = (char)('A' + i / PG);
	for (unsigned i = 0; i < NFILES; i++) {
		const char *path = fx_work_path(file_name(i));

		rc = fx_write_file(path, buf, sizeof(buf));
		ck_assert_msg(rc == 0, "write %s: %s", path, strerror(-rc));
	}
}

START_TEST(test_no_command_deadlocks)
{
	struct board *b =
		mmap(NULL, sizeof(*b), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t pids[NCLIENTS];
	unsigned long sigbus = 0, errors = 0, ops = 0;
	int rounds, rc;

	ck_assert(b != MAP_FAILED);
	make_files();
	start_clients(b, pids);
	rounds = run_rounds();
	stop_clients(b, pids);
	for (int i = 0; i < NCLIENTS; i++) {
		ops += b->t[i].ops;
		sigbus += b->t[i].sigbus;
		errors += b->t[i].errors;
	}
	fprintf(stderr, "chaos: %d rounds; clients: %lu ops, %lu SIGBUS, %lu EIO\n", rounds, ops,
		sigbus, errors);
	/* the events reached the clients: otherwise nothing was exercised */
	ck_assert_msg(sigbus > 0 && errors > 0, "clients saw %lu SIGBUS and %lu EIO", sigbus,
		      errors);
	rc = fx_child(mount_answers, NULL);
	ck_assert_msg(rc == 0, "the mount no longer answers (%d): %s", rc, fx_failure());
}
END_TEST

static Suite *chaos_suite(void)
{
	Suite *s = suite_create("chaos");
	TCase *tc = fx_tcase(s, "no_deadlock", RUN_S + 40, setup, teardown, fx_enter_workdir);

	FX_ADD_TESTS(tc, test_no_command_deadlocks);
	return s;
}

int main(void)
{
	fx_require_fuse();
	return fx_run_suite(chaos_suite());
}
