/* A killed daemon must fail its clients, never hang them. Each kill point mounts afresh,
 * lets a client map a file, read it through the mapping and keep an open descriptor of
 * it, runs one kind of event back to back through the control socket (truncate shrinking
 * and growing; revoke of a file or a directory, then replug; unplug, plain or --vanish,
 * then replug; inval while every READ is delayed, so that the notification waits for a
 * page whose READ the daemon holds), and sends SIGKILL to the daemon at a random moment.
 * Then stat of the mount and a read of the descriptor must return within a second, with
 * ENOTCONN or ECONNABORTED, and the daemon and its helper processes must exit. A hang is
 * ended through fusectl, so the run goes on, and fails the test. The seed is printed;
 * KILL_SEED=N picks the same sizes and moments again. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "ctl_client.h"
#include "touch.h"
#include "fixture.h"

#define KILLS		 40 /* kill points per kind of event */
#define BACKGROUND_KILLS 5  /* kill points per kind, the daemon in the background */
#define PG		 4096
#define FILE_PAGES	 16
#define DIR_FILES	 8     /* files in d/, held by the kernel: more for revoke and unplug */
#define ANSWER_MS	 1000  /* how long a client may wait for an answer after the kill */
#define READY_MS	 10000 /* how long the client and the driver may take to start */
#define MAX_DELAY_US	 20000 /* a kill lands up to this long after the events begin */
#define MAX_HANGS	 3     /* a kind of event that hung this often has shown enough */
#define POLL_MS		 2
#define MAX_HELPERS	 8
#define MSG_MAX		 512

enum event { EV_TRUNCATE, EV_REVOKE, EV_UNPLUG, EV_INVAL };

static unsigned base_seed;

/* What the client's pread(2) of its old descriptor returned after the kill. */
struct read_result {
	ssize_t n;
	int err;
};

struct kill_point {
	enum event ev;
	bool is_background; /* the daemon runs without -f, as fuse_daemonize() leaves it */
	unsigned seed;
	struct mnt m;
	pid_t client, driver, stat_child; /* 0: none, or reaped */
	pid_t helpers[MAX_HELPERS];	  /* the daemon's children; 0 once reaped */
	int nhelpers;
	int client_sock;   /* the test's end of the client's pair */
	bool is_hung;	   /* something did not answer in time */
	char why[MSG_MAX]; /* the first failure, "" if none */
};

static void kp_fail(struct kill_point *kp, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void kp_fail(struct kill_point *kp, const char *fmt, ...)
{
	va_list ap;

	if (kp->why[0])
		return;
	va_start(ap, fmt);
	vsnprintf(kp->why, sizeof(kp->why), fmt, ap);
	va_end(ap);
}

static void sleep_us(long us)
{
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = us % 1000000 * 1000 };

	nanosleep(&ts, NULL);
}

/* Reaps pid if it exits within ms: 1 (its status in *status, may be NULL), 0 if it did
 * not, -errno. With WNOWAIT in flags the child stays to be reaped later. */
static int exited_within(pid_t pid, long ms, int flags, int *status)
{
	siginfo_t si;

	for (long waited = 0;; waited += POLL_MS) {
		memset(&si, 0, sizeof(si));
		if (waitid(P_PID, pid, &si, WEXITED | WNOHANG | flags) < 0 && errno != EINTR)
			return -errno;
		if (si.si_pid == pid) {
			if (status)
				*status = si.si_code == CLD_EXITED ? si.si_status
								   : 128 + si.si_status;
			return 1;
		}
		if (waited >= ms)
			return 0;
		sleep_us(POLL_MS * 1000L);
	}
}

/* Waits up to ms for one byte on fd: 0, or -ETIMEDOUT, -EPIPE at end of file. */
static int wait_byte(int fd, long ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c;

	if (poll(&p, 1, (int)ms) <= 0)
		return -ETIMEDOUT;
	return read(fd, &c, 1) == 1 ? 0 : -EPIPE;
}

/* ---- the client and the driver, forked ---- */

/* Maps f and reads random pages of the mapping until the test asks for a read through the
 * descriptor; answers with its result, then waits for the test to go. */
static int client_main(const char *path, int sock, unsigned seed)
{
	int fd = open(path, O_RDWR);
	struct pollfd p = { .fd = sock, .events = POLLIN };
	struct read_result r;
	volatile char *map;
	char buf[PG], byte;

	if (fd < 0)
		return FX_FAIL("client: open %s: %s", path, strerror(errno));
	map = mmap(NULL, FILE_PAGES * PG, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return FX_FAIL("client: mmap: %s", strerror(errno));
	if (write(sock, "", 1) != 1)
		return FX_FAIL("client: cannot say it is ready");
	while (poll(&p, 1, 0) == 0) {
		/* SIGBUS once the file shrank or went: touch_copy() returns it */
		touch_copy(&byte, map + rand_r(&seed) % FILE_PAGES * PG, 1, NULL);
		sleep_us(100);
	}
	if (wait_byte(sock, 0) < 0)
		return 0; /* the test went away before the kill */
	r.n = pread(fd, buf, sizeof(buf), 0);
	r.err = r.n < 0 ? errno : 0;
	if (write(sock, &r, sizeof(r)) != sizeof(r))
		return FX_FAIL("client: cannot answer");
	wait_byte(sock, -1);
	return 0;
}

/* One command; its reply does not matter (revoking a file that is revoked fails), only
 * whether the daemon answered: 0, or -errno once it is gone. */
static int command(struct ctl_client *c, const char *line)
{
	struct ctl_result r;
	int rc = ctl_client_request(c, line, strlen(line), &r);

	ctl_result_free(&r);
	return rc;
}

/* One round of kp's kind of event. */
static int event_round(struct ctl_client *c, const struct kill_point *kp, unsigned *seed,
		       unsigned round)
{
	static const char *const revoke[] = { "revoke f", "revoke d" };
	static const char *const unplug[] = { "unplug", "unplug --vanish" };
	char line[64];
	int rc;

	switch (kp->ev) {
	case EV_TRUNCATE:
		snprintf(line, sizeof(line), "truncate f %u", rand_r(seed) % (FILE_PAGES + 1) * PG);
		return command(c, line);
	case EV_REVOKE:
		rc = command(c, revoke[round % 2]);
		break;
	case EV_UNPLUG:
		rc = command(c, unplug[round % 2]);
		break;
	default:
		return command(c, "inval f");
	}
	return rc < 0 ? rc : command(c, "replug");
}

/* Runs events back to back until the daemon is gone; writes a byte to ready_fd first. */
static int driver_main(const struct kill_point *kp, int ready_fd)
{
	unsigned seed = kp->seed ^ 0x5eed;
	struct ctl_client *c;
	char err[256];

	if (ctl_client_connect(kp->m.ctl, &c, err, sizeof(err)) < 0)
		return FX_FAIL("driver: %s", err);
	/* the client's next READ stays in the daemon while the inval waits for its page */
	if (kp->ev == EV_INVAL && command(c, "delay f --op read --ms 5000") < 0)
		return FX_FAIL("driver: delay: the daemon is gone");
	if (write(ready_fd, "", 1) != 1)
		return FX_FAIL("driver: cannot say it is ready");
	for (unsigned round = 0; event_round(c, kp, &seed, round) == 0; round++)
		;
	ctl_client_close(c);
	return 0;
}

/* ---- one kill point ---- */

/* f (FILE_PAGES pages) and d/g0.. (a page each), all looked up so the kernel holds them. */
static int populate(struct kill_point *kp)
{
	static char data[FILE_PAGES * PG];
	char path[256], name[32];
	struct stat st;
	int rc;

	memset(data, 'x', sizeof(data));
	rc = fx_write_file(fx_path(&kp->m, "f", path, sizeof(path)), data, sizeof(data));
	if (rc == 0 && mkdir(fx_path(&kp->m, "d", path, sizeof(path)), 0755) < 0)
		rc = -errno;
	for (int i = 0; rc == 0 && i < DIR_FILES; i++) {
		snprintf(name, sizeof(name), "d/g%d", i);
		rc = fx_write_file(fx_path(&kp->m, name, path, sizeof(path)), data, PG);
		if (rc == 0 && stat(path, &st) < 0)
			rc = -errno;
	}
	return rc;
}

static int start_client(struct kill_point *kp)
{
	char path[256];
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	fx_path(&kp->m, "f", path, sizeof(path));
	fflush(stderr);
	kp->client = fork();
	if (kp->client == 0) {
		close(sv[0]);
		_exit(client_main(path, sv[1], kp->seed));
	}
	close(sv[1]);
	kp->client_sock = sv[0];
	if (kp->client < 0)
		return -errno;
	return wait_byte(kp->client_sock, READY_MS);
}

static int start_driver(struct kill_point *kp)
{
	int fds[2], rc;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	fflush(stderr);
	kp->driver = fork();
	if (kp->driver == 0) {
		close(fds[0]);
		_exit(driver_main(kp, fds[1]));
	}
	close(fds[1]);
	rc = kp->driver < 0 ? -errno : wait_byte(fds[0], READY_MS);
	close(fds[0]);
	return rc;
}

/* The daemon's helper processes: its children. */
static void find_helpers(struct kill_point *kp)
{
	char path[64];
	int pid;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)kp->m.pid, (int)kp->m.pid);
	f = fopen(path, "re");
	if (!f)
		return;
	while (kp->nhelpers < MAX_HELPERS && fscanf(f, "%d", &pid) == 1)
		kp->helpers[kp->nhelpers++] = pid;
	fclose(f);
}

static bool is_dead_connection(int err)
{
	return err == ENOTCONN || err == ECONNABORTED;
}

/* In a child: stat(2) of the mount must return (the kernel may answer from its cache),
 * and a statx(2) that must ask the daemon fails with ENOTCONN or ECONNABORTED, in time. */
static void check_stat(struct kill_point *kp)
{
	struct statx stx;
	struct stat st;
	int status;

	fflush(stderr);
	kp->stat_child = fork();
	if (kp->stat_child == 0) {
		stat(kp->m.dir, &st);
		_exit(statx(AT_FDCWD, kp->m.dir, AT_STATX_FORCE_SYNC, STATX_BASIC_STATS, &stx) < 0
			      ? errno
			      : 0);
	}
	if (kp->stat_child < 0 || exited_within(kp->stat_child, ANSWER_MS, 0, &status) != 1) {
		kp->is_hung = true;
		kp_fail(kp, "stat of the mount did not return within %d ms", ANSWER_MS);
		return;
	}
	kp->stat_child = 0;
	if (!is_dead_connection(status))
		kp_fail(kp, "statx (forced) of the mount: %s, expected ENOTCONN or ECONNABORTED",
			status ? strerror(status) : "success");
}

/* The client's read of its old descriptor must return in time: cached data, end of file
 * (a size 0 the kernel learned), or the error of a dead connection or inode. */
static void check_read(struct kill_point *kp)
{
	struct pollfd p = { .fd = kp->client_sock, .events = POLLIN };
	struct read_result r;

	if (write(kp->client_sock, "r", 1) != 1 || poll(&p, 1, ANSWER_MS) != 1) {
		kp->is_hung = true;
		kp_fail(kp, "read of an open descriptor did not return within %d ms", ANSWER_MS);
	} else if (read(kp->client_sock, &r, sizeof(r)) != sizeof(r)) {
		kp_fail(kp, "the client died: %s", fx_failure());
	} else if (r.n < 0 && !is_dead_connection(r.err) && r.err != EIO)
		kp_fail(kp, "read of an open descriptor: %s", strerror(r.err));
}

/* The daemon and its helpers must be gone in time. */
static void check_exit(struct kill_point *kp)
{
	if (exited_within(kp->m.pid, ANSWER_MS, WNOWAIT, NULL) != 1) {
		kp->is_hung = true;
		kp_fail(kp, "the daemon still runs %d ms after SIGKILL", ANSWER_MS);
		return;
	}
	/* this process is a subreaper: the orphaned helpers are its children now */
	for (int i = 0; i < kp->nhelpers; i++) {
		if (exited_within(kp->helpers[i], ANSWER_MS, 0, NULL) == 1)
			kp->helpers[i] = 0;
		else
			kp_fail(kp, "helper %d still runs %d ms after the daemon died",
				(int)kp->helpers[i], ANSWER_MS);
	}
}

/* Kills pid, if any is left, and reaps it. */
static void end_child(pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGKILL);
	waitpid(*pid, NULL, 0);
	*pid = 0;
}

/* For a hang's report: where each thread of pid waits in the kernel. */
static void print_stacks(pid_t pid)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd),
		 "for t in /proc/%d/task/*; do echo \"$t $(cat $t/comm) $(cut -d' ' -f3 $t/stat)\";"
		 " cat $t/stack; done >&2",
		 (int)pid);
	if (system(cmd) != 0)
		fprintf(stderr, "check_kill: cannot show the stacks of %d\n", (int)pid);
}

/* Frees a hang through fusectl, then ends everything and unmounts. */
static void clean_up(struct kill_point *kp)
{
	int rc;

	if (kp->is_hung) {
		print_stacks(kp->m.pid);
		if (fx_abort(&kp->m) < 0)
			fprintf(stderr, "check_kill: cannot abort connection %u\n", kp->m.conn);
	}
	if (kp->client_sock >= 0)
		close(kp->client_sock);
	end_child(&kp->client);
	end_child(&kp->driver);
	end_child(&kp->stat_child);
	for (int i = 0; i < kp->nhelpers; i++)
		end_child(&kp->helpers[i]);
	rc = fx_umount(&kp->m);
	if (rc != 128 + SIGKILL)
		kp_fail(kp, "the daemon ended with %d, expected 128+SIGKILL", rc);
}

static void kill_once(struct kill_point *kp)
{
	int rc = kp->is_background ? fx_mount_background(&kp->m, "mem:64M", NULL)
				   : fx_mount(&kp->m, "mem:64M", NULL);

	kp->client_sock = -1;
	if (rc < 0) {
		kp_fail(kp, "mount: %s", strerror(-rc));
		return;
	}
	rc = populate(kp);
	if (rc == 0)
		rc = start_client(kp);
	if (rc == 0)
		rc = start_driver(kp);
	/* the daemon starts them before its control socket, which the driver reached */
	find_helpers(kp);
	if (rc < 0) {
		kp_fail(kp, "setup: %s %s", strerror(-rc), fx_failure());
		kill(kp->m.pid, SIGKILL);
		clean_up(kp);
		return;
	}
	sleep_us(rand_r(&kp->seed) % MAX_DELAY_US);
	kill(kp->m.pid, SIGKILL);
	check_stat(kp);
	if (!kp->is_hung)
		check_read(kp);
	if (!kp->is_hung)
		check_exit(kp);
	clean_up(kp);
}

/* kills kill points of ev, the daemon in the background if is_background. */
static void run_kills(enum event ev, int kills, bool is_background, const char *name)
{
	int failed = 0, hung = 0, i;
	char first[2 * MSG_MAX] = "";

	fx_fail_clear();
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	for (i = 0; i < kills && hung < MAX_HANGS; i++) {
		struct kill_point kp = { .ev = ev,
					 .is_background = is_background,
					 .seed = base_seed +
						 (unsigned)((ev * 2 + is_background) * KILLS + i) };

		kill_once(&kp);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			; /* helpers orphaned by a hang, which ended after the abort */
		hung += kp.is_hung;
		if (!kp.why[0])
			continue;
		fprintf(stderr, "check_kill: %s, kill point %d: %s\n", name, i, kp.why);
		if (failed++ == 0)
			snprintf(first, sizeof(first), "kill point %d: %s", i, kp.why);
	}
	ck_assert_msg(failed == 0, "%s: %d of %d kill points failed (%d hung; seed %u); %s", name,
		      failed, i, hung, base_seed, first);
}

START_TEST(test_kill_during_truncate)
{
	run_kills(EV_TRUNCATE, KILLS, false, "truncate");
}
END_TEST

START_TEST(test_kill_during_revoke)
{
	run_kills(EV_REVOKE, KILLS, false, "revoke and replug");
}
END_TEST

START_TEST(test_kill_during_unplug)
{
	run_kills(EV_UNPLUG, KILLS, false, "unplug and replug");
}
END_TEST

START_TEST(test_kill_during_inval_of_a_page_being_read)
{
	run_kills(EV_INVAL, KILLS, false, "inval of a page being read");
}
END_TEST

/* fuse_daemonize() forks, and the process that started the helpers must be the one that
 * serves: helpers started before it would take its parent's exit for a death. */
START_TEST(test_kill_of_a_background_daemon)
{
	run_kills(EV_TRUNCATE, BACKGROUND_KILLS, true, "truncate, daemon in the background");
	run_kills(EV_INVAL, BACKGROUND_KILLS, true, "inval, daemon in the background");
}
END_TEST

static Suite *kill_suite(void)
{
	Suite *s = suite_create("kill");

	FX_ADD_TESTS(fx_tcase(s, "kill", 120, NULL, NULL, NULL), test_kill_during_truncate,
		     test_kill_during_revoke, test_kill_during_unplug,
		     test_kill_during_inval_of_a_page_being_read, test_kill_of_a_background_daemon);
	return s;
}

int main(void)
{
	const char *seed = getenv("KILL_SEED");

	fx_require_fuse();
	base_seed = seed ? (unsigned)strtoul(seed, NULL, 0) : (unsigned)time(NULL) ^ getpid();
	fprintf(stderr, "check_kill: seed %u (KILL_SEED=%u runs it again)\n", base_seed, base_seed);
	return fx_run_suite(kill_suite());
}
