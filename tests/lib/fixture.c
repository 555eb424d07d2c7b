/* The integration fixture: runs the daemon named by $SIGBUSFS on a mkdtemp() mount point,
 * waits for the mount in /proc/self/mountinfo, tears it down in every case, and gives
 * forked client processes a SIGBUS-safe way to touch mapped memory and to report failures.
 * SIGBUSFS_TEST_SOURCE=sqlite serves every well-formed mem: source from a fresh database
 * beside the mount point instead. What the tests check lives in tests/integration/. */
#include "fixture.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FX_MOUNT_WAIT_MS 10000
#define FX_EXIT_WAIT_MS	 5000
#define FX_TERM_WAIT_MS	 2000
#define FX_POLL_MS	 10
#define FX_FAIL_MSG_MAX	 1024

struct fx_fail_record {
	int is_set;
	char msg[FX_FAIL_MSG_MAX];
};

/* Shared (MAP_SHARED | MAP_ANONYMOUS) so that a forked child's fx_fail() reaches its parent. */
static struct fx_fail_record *fail_record;

static sigjmp_buf touch_env;
static volatile sig_atomic_t touch_armed;

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int status_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return -ECHILD;
}

/* Reaps pid within ms milliseconds: its status code, -ETIMEDOUT, or -errno. */
static int wait_pid_ms(pid_t pid, long ms)
{
	int status;

	for (long waited = 0;; waited += FX_POLL_MS) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status_code(status);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (waited >= ms)
			return -ETIMEDOUT;
		sleep_ms(FX_POLL_MS);
	}
}

void fx_require_fuse(void)
{
	const char *ci = getenv("CI");
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	int err = errno;

	if (fd >= 0) {
		close(fd);
		return;
	}
	if (ci && strcmp(ci, "true") == 0) {
		fprintf(stderr, "open /dev/fuse: %s; CI=true, so this is a failure, not a skip\n",
			strerror(err));
		exit(1);
	}
	fprintf(stderr, "open /dev/fuse: %s; skipping\n", strerror(err));
	exit(77);
}

/* Whether /proc/self/mountinfo lists dir as a fuse.sigbusfs mount: 1, 0, or -errno. */
static int is_mounted(const char *dir)
{
	char line[4096];
	int found = 0;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f)
		return -errno;
	while (!found && fgets(line, sizeof(line), f)) {
		char mnt[sizeof(line)], *sep;

		/* id parent maj:min root mountpoint ... - fstype source superopts */
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 || strcmp(mnt, dir) != 0)
			continue;
		sep = strstr(line, " - ");
		found = sep && strncmp(sep + 3, "fuse.sigbusfs ", 14) == 0;
	}
	fclose(f);
	return found;
}

/* Whether source is "mem:" or "mem:SIZE" with a well-formed size. */
static bool is_mem_source(const char *source)
{
	const char *p = source + 4;

	if (strncmp(source, "mem:", 4) != 0)
		return false;
	while (isdigit((unsigned char)*p))
		p++;
	if (p > source + 4 && *p && strchr("KMGTkmgt", *p))
		p++;
	return *p == '\0' && (p == source + 4 || isdigit((unsigned char)source[4]));
}

/* The database that replaces a mem: source under SIGBUSFS_TEST_SOURCE=sqlite, with
 * suffix ("", "-wal" or "-shm"). */
static char *db_path(const struct mnt *m, const char *suffix, char *buf, size_t size)
{
	snprintf(buf, size, "%s.db%s", m->dir, suffix);
	return buf;
}

/* The SOURCE to mount: source itself, or the test database (see the top of the file). */
static const char *pick_source(const struct mnt *m, const char *source, char *buf, size_t size)
{
	const char *which = getenv("SIGBUSFS_TEST_SOURCE");

	if (!which || strcmp(which, "sqlite") != 0 || !is_mem_source(source))
		return source;
	snprintf(buf, size, "sqlite:");
	db_path(m, "", buf + strlen(buf), size - strlen(buf));
	return buf;
}

static void exec_daemon(const char *daemon, const struct mnt *m, const char *source,
			const char *opts)
{
	char o[512], src[128];
	int fd = open("/dev/null", O_RDONLY);

	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		close(fd);
	}
	/* If the test runner dies, the daemon unmounts (libfuse handles SIGTERM). */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	snprintf(o, sizeof(o), "ctl=%s%s%s", m->ctl, opts ? "," : "", opts ? opts : "");
	source = pick_source(m, source, src, sizeof(src));
	execl(daemon, daemon, "-f", "-o", o, source, m->dir, (char *)NULL);
	fprintf(stderr, "fixture: exec %s: %s\n", daemon, strerror(errno));
	_exit(127);
}

/* Stops a daemon that did not exit by itself: SIGTERM, then SIGKILL. Its status code. */
static int stop_daemon(pid_t pid)
{
	int rc;

	kill(pid, SIGTERM);
	rc = wait_pid_ms(pid, FX_TERM_WAIT_MS);
	if (rc != -ETIMEDOUT)
		return rc;
	fprintf(stderr, "fixture: daemon %d ignored SIGTERM; sending SIGKILL\n", (int)pid);
	kill(pid, SIGKILL);
	return wait_pid_ms(pid, 60000);
}

/* Polls until m->dir is mounted: 0, -ETIMEDOUT, -ECHILD (the daemon exited), or -errno. */
static int wait_mounted(struct mnt *m)
{
	struct stat st;

	for (long waited = 0; waited < FX_MOUNT_WAIT_MS; waited += FX_POLL_MS) {
		int rc = is_mounted(m->dir);

		if (rc < 0)
			return rc;
		if (rc > 0)
			return stat(m->dir, &st) < 0 ? -errno : 0;
		rc = wait_pid_ms(m->pid, 0);
		if (rc != -ETIMEDOUT) {
			fprintf(stderr, "fixture: daemon exited with %d before mounting %s\n", rc,
				m->dir);
			m->pid = 0;
			return -ECHILD;
		}
		sleep_ms(FX_POLL_MS);
	}
	fprintf(stderr, "fixture: %s not mounted after %d ms\n", m->dir, FX_MOUNT_WAIT_MS);
	return -ETIMEDOUT;
}

static void remove_mount_point(struct mnt *m)
{
	static const char *const suffixes[] = { "", "-wal", "-shm" };
	char db[128];

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		if (unlink(db_path(m, suffixes[i], db, sizeof(db))) < 0 && errno != ENOENT)
			fprintf(stderr, "fixture: unlink %s: %s\n", db, strerror(errno));
	}
	if (is_mounted(m->dir) > 0 && umount2(m->dir, MNT_DETACH) < 0)
		fprintf(stderr, "fixture: umount2 %s: %s\n", m->dir, strerror(errno));
	if (rmdir(m->dir) < 0)
		fprintf(stderr, "fixture: rmdir %s: %s\n", m->dir, strerror(errno));
	if (unlink(m->ctl) < 0 && errno != ENOENT)
		fprintf(stderr, "fixture: unlink %s: %s\n", m->ctl, strerror(errno));
}

int fx_mount(struct mnt *m, const char *source, const char *opts)
{
	const char *daemon = getenv("SIGBUSFS");
	int rc;

	memset(m, 0, sizeof(*m));
	if (!daemon || !*daemon) {
		fprintf(stderr, "fixture: $SIGBUSFS (the daemon's path) is not set\n");
		return -ENOENT;
	}
	snprintf(m->dir, sizeof(m->dir), "/tmp/sigbusfs-XXXXXX");
	if (!mkdtemp(m->dir))
		return -errno;
	snprintf(m->ctl, sizeof(m->ctl), "%s.sock", m->dir);
	fflush(stdout);
	fflush(stderr);
	m->pid = fork();
	if (m->pid < 0) {
		rc = -errno;
		goto out_rmdir;
	}
	if (m->pid == 0)
		exec_daemon(daemon, m, source, opts);
	rc = wait_mounted(m);
	if (rc == 0)
		return 0;
	if (m->pid > 0)
		stop_daemon(m->pid);
out_rmdir:
	remove_mount_point(m);
	m->pid = 0;
	return rc;
}

int fx_umount(struct mnt *m)
{
	int rc;

	if (m->pid <= 0)
		return -ECHILD;
	if (umount2(m->dir, 0) < 0) {
		if (errno == EBUSY) {
			fprintf(stderr, "fixture: %s busy; detaching it lazily\n", m->dir);
			umount2(m->dir, MNT_DETACH);
		} else {
			fprintf(stderr, "fixture: umount2 %s: %s\n", m->dir, strerror(errno));
		}
	}
	rc = wait_pid_ms(m->pid, FX_EXIT_WAIT_MS);
	if (rc == -ETIMEDOUT) {
		fprintf(stderr, "fixture: daemon %d still running %d ms after the unmount\n",
			(int)m->pid, FX_EXIT_WAIT_MS);
		stop_daemon(m->pid);
	}
	remove_mount_point(m);
	m->pid = 0;
	return rc;
}

char *fx_path(const struct mnt *m, const char *rel, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", m->dir, rel);
	return buf;
}

int fx_child(int (*fn)(void *arg), void *arg)
{
	pid_t pid;
	int status;

	fx_fail_clear();
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int rc = fn(arg);

		_exit(rc < 0 || rc > 255 ? 255 : rc);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return status_code(status);
}

static void touch_on_sigbus(int sig)
{
	if (touch_armed) {
		touch_armed = 0;
		siglongjmp(touch_env, 1);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

int fx_touch(volatile char *addr, bool is_write, char val, char *out)
{
	struct sigaction sa, old;
	volatile char c = val;
	int rc = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = touch_on_sigbus;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &old);
	if (sigsetjmp(touch_env, 1) == 0) {
		touch_armed = 1;
		if (is_write)
			*addr = val;
		else
			c = *addr;
		touch_armed = 0;
		if (out)
			*out = c;
	} else {
		rc = FX_SIGBUS;
	}
	sigaction(SIGBUS, &old, NULL);
	return rc;
}

int fx_write_file(const char *path, const void *buf, size_t len)
{
	const char *p = buf;
	int rc = 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		return -errno;
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			goto out_close;
		}
		p += n;
		len -= (size_t)n;
	}
out_close:
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	return rc;
}

void fx_fail_clear(void)
{
	if (!fail_record) {
		void *p = mmap(NULL, sizeof(*fail_record), PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			return;
		fail_record = p;
	}
	fail_record->is_set = 0;
	fail_record->msg[0] = '\0';
}

int fx_fail(const char *file, int line, const char *fmt, ...)
{
	char msg[FX_FAIL_MSG_MAX];
	int n;
	va_list ap;

	n = snprintf(msg, sizeof(msg), "%s:%d: ", file, line);
	if (n < 0 || (size_t)n >= sizeof(msg))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s\n", msg);
	if (fail_record && !fail_record->is_set) {
		fail_record->is_set = 1;
		memcpy(fail_record->msg, msg, sizeof(msg));
	}
	return 1;
}

const char *fx_failure(void)
{
	return fail_record ? fail_record->msg : "";
}
