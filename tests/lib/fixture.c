/* The integration fixture: runs the daemon named by $SIGBUSFS on a mkdtemp() mount point,
 * waits for the mount in /proc/self/mountinfo, tears it down in every case, and gives
 * forked client processes a way to report failures. It also reports the kernel's warnings
 * printed while a mount lived (contrib/kmsg does the reading and matching).
 * SIGBUSFS_TEST_SOURCE=sqlite serves every well-formed mem: source from a fresh database
 * beside the mount point instead; SIGBUSFS_TEST_SOURCE=dir from a fresh directory named
 * after the mount point, in fx_test_dir_root() ($SIGBUSFS_TEST_DIR_ROOT, default the tmpfs
 * /dev/shm). What the tests check lives in tests/integration/. */
#include "fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kmsg.h"
#include "units.h"

#define FX_MOUNT_WAIT_MS 10000
#define FX_EXIT_WAIT_MS	 5000
#define FX_TERM_WAIT_MS	 2000
#define FX_POLL_MS	 10
#define FX_FAIL_MSG_MAX	 1024
#define FX_FUSECTL	 "/sys/fs/fuse/connections"

struct fx_fail_record {
	int is_set;
	char msg[FX_FAIL_MSG_MAX];
};

/* Shared (MAP_SHARED | MAP_ANONYMOUS) so that a forked child's fx_fail() reaches its parent. */
static struct fx_fail_record *fail_record;

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

/* Whether /proc/self/mountinfo lists dir as a fuse.sigbusfs mount: 1, 0, or -errno. If
 * it does and conn is not NULL, *conn is its FUSE connection number, which fusectl
 * derives from the device number as the kernel encodes it (major << 20 | minor). */
static int find_mount(const char *dir, unsigned *conn)
{
	char line[4096];
	unsigned major, minor;
	int found = 0;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f)
		return -errno;
	while (!found && fgets(line, sizeof(line), f)) {
		char mnt[sizeof(line)], *sep;

		/* id parent maj:min root mountpoint ... - fstype source superopts */
		if (sscanf(line, "%*s %*s %u:%u %*s %4095s", &major, &minor, mnt) != 3 ||
		    strcmp(mnt, dir) != 0)
			continue;
		sep = strstr(line, " - ");
		found = sep && strncmp(sep + 3, "fuse.sigbusfs ", 14) == 0;
	}
	fclose(f);
	if (found && conn)
		*conn = major << 20 | minor;
	return found;
}

static int is_mounted(const char *dir)
{
	return find_mount(dir, NULL);
}

/* Takes on the daemon's credentials, if they are not ours. */
static void become(const struct mnt *m)
{
	if (m->uid == geteuid() && m->gid == getegid())
		return;
	if (setgroups(0, NULL) < 0 || setresgid(m->gid, m->gid, m->gid) < 0 ||
	    setresuid(m->uid, m->uid, m->uid) < 0) {
		fprintf(stderr, "fixture: become %d:%d: %s\n", (int)m->uid, (int)m->gid,
			strerror(errno));
		_exit(127);
	}
}

/* Whether source is "mem:" or "mem:SIZE" with a well-formed size. */
static bool is_mem_source(const char *source)
{
	uint64_t size;

	return strncmp(source, "mem:", 4) == 0 &&
	       (source[4] == '\0' || units_parse_size(source + 4, &size) == 0);
}

const char *fx_test_backend(void)
{
	const char *which = getenv("SIGBUSFS_TEST_SOURCE");

	if (which && (strcmp(which, "sqlite") == 0 || strcmp(which, "dir") == 0))
		return which;
	return "mem";
}

const char *fx_test_dir_root(void)
{
	const char *root = getenv("SIGBUSFS_TEST_DIR_ROOT");

	return root && *root ? root : "/dev/shm";
}

bool fx_test_has_limit(void)
{
	return strcmp(fx_test_backend(), "mem") == 0;
}

void fx_require_sqlite_run(void)
{
	const char *which = getenv("SIGBUSFS_TEST_SOURCE");

	if (!which || strcmp(which, "sqlite") == 0)
		return;
	fprintf(stderr, "SIGBUSFS_TEST_SOURCE=%s: left to the sqlite run; skipping\n", which);
	exit(77);
}

/* The database that replaces a mem: source under SIGBUSFS_TEST_SOURCE=sqlite, with
 * suffix ("", "-wal" or "-shm"). */
static char *db_path(const struct mnt *m, const char *suffix, char *buf, size_t size)
{
	snprintf(buf, size, "%s.db%s", m->dir, suffix);
	return buf;
}

/* Where mount points are made, and the host directory that replaces a mem: source under
 * SIGBUSFS_TEST_SOURCE=dir: fx_test_dir_root() and the mount point's name. */
#define MOUNT_PARENT "/tmp/"

static char *host_dir_path(const struct mnt *m, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s.d", fx_test_dir_root(), m->dir + strlen(MOUNT_PARENT));
	return buf;
}

static bool is_dir_run(const char *source)
{
	return strcmp(fx_test_backend(), "dir") == 0 && is_mem_source(source);
}

/* The SOURCE to mount: source itself, or the test database or directory (see the top of
 * the file). */
static const char *pick_source(const struct mnt *m, const char *source, char *buf, size_t size)
{
	if (is_dir_run(source)) {
		snprintf(buf, size, "dir:");
		host_dir_path(m, buf + strlen(buf), size - strlen(buf));
		return buf;
	}
	if (strcmp(fx_test_backend(), "sqlite") != 0 || !is_mem_source(source))
		return source;
	snprintf(buf, size, "sqlite:");
	db_path(m, "", buf + strlen(buf), size - strlen(buf));
	return buf;
}

/* Makes the host directory of a dir run, owned by the daemon's user. */
static int make_host_dir(const struct mnt *m, const char *source)
{
	char path[PATH_MAX];

	if (!is_dir_run(source))
		return 0;
	host_dir_path(m, path, sizeof(path));
	if (mkdir(path, 0755) < 0 || chown(path, m->uid, m->gid) < 0)
		return -errno;
	return 0;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if ((flag == FTW_DP ? rmdir(path) : unlink(path)) < 0)
		fprintf(stderr, "fixture: remove %s: %s\n", path, strerror(errno));
	return 0;
}

static void exec_daemon(const char *daemon, const struct mnt *m, const char *source,
			const char *opts, bool is_foreground)
{
	const char *argv[7] = { daemon };
	int fd = open("/dev/null", O_RDONLY), argc = 1;
	char o[512], src[PATH_MAX];

	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		close(fd);
	}
	become(m);
	/* If the test runner dies, the daemon unmounts (libfuse handles SIGTERM). Set after
	 * become(): a change of credentials clears it. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	snprintf(o, sizeof(o), "%s%s%s%s", m->ctl[0] ? "ctl=" : "", m->ctl,
		 m->ctl[0] && opts ? "," : "", opts ? opts : "");
	if (is_foreground)
		argv[argc++] = "-f";
	if (o[0]) {
		argv[argc++] = "-o";
		argv[argc++] = o;
	}
	argv[argc++] = pick_source(m, source, src, sizeof(src));
	argv[argc++] = m->dir;
	argv[argc] = NULL;
	execv(daemon, (char *const *)argv);
	fprintf(stderr, "fixture: exec %s: %s\n", daemon, strerror(errno));
	_exit(127);
}

int fx_abort(const struct mnt *m)
{
	char path[96];
	int fd, rc = 0;

	snprintf(path, sizeof(path), FX_FUSECTL "/%u/abort", m->conn);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && mount("fusectl", FX_FUSECTL, "fusectl", 0, NULL) == 0)
		fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, "1", 1) != 1)
		rc = -errno;
	close(fd);
	return rc;
}

/* Stops a daemon that did not exit by itself: SIGTERM, then SIGKILL, then, if a thread of
 * it waits on a request of its own mount, which SIGKILL cannot end, an abort of its
 * connection. Its status code. */
static int stop_daemon(const struct mnt *m)
{
	int rc;

	kill(m->pid, SIGTERM);
	rc = wait_pid_ms(m->pid, FX_TERM_WAIT_MS);
	if (rc != -ETIMEDOUT)
		return rc;
	fprintf(stderr, "fixture: daemon %d ignored SIGTERM; sending SIGKILL\n", (int)m->pid);
	kill(m->pid, SIGKILL);
	rc = wait_pid_ms(m->pid, FX_TERM_WAIT_MS);
	if (rc != -ETIMEDOUT)
		return rc;
	fprintf(stderr, "fixture: daemon %d outlived SIGKILL; aborting connection %u\n",
		(int)m->pid, m->conn);
	fx_abort(m);
	return wait_pid_ms(m->pid, FX_EXIT_WAIT_MS);
}

/* stat(m->dir) as the daemon's user, the one user a mount without allow_other answers:
 * it returns once the daemon has answered INIT. 0 or -errno. */
static int stat_as_owner(const struct mnt *m)
{
	struct stat st;
	pid_t pid;
	int rc;

	if (m->uid == geteuid())
		return stat(m->dir, &st) < 0 ? -errno : 0;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		become(m);
		_exit(stat(m->dir, &st) < 0 ? errno : 0);
	}
	rc = wait_pid_ms(pid, FX_MOUNT_WAIT_MS);
	if (rc == -ETIMEDOUT)
		kill(pid, SIGKILL);
	return rc > 0 ? -rc : rc;
}

/* Polls until m->dir is mounted: 0, -ETIMEDOUT, -ECHILD (the daemon exited), or -errno. */
static int wait_mounted(struct mnt *m)
{
	for (long waited = 0; waited < FX_MOUNT_WAIT_MS; waited += FX_POLL_MS) {
		int rc = find_mount(m->dir, &m->conn);

		if (rc < 0)
			return rc;
		if (rc > 0)
			return stat_as_owner(m);
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
	char db[PATH_MAX];

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		if (unlink(db_path(m, suffixes[i], db, sizeof(db))) < 0 && errno != ENOENT)
			fprintf(stderr, "fixture: unlink %s: %s\n", db, strerror(errno));
	}
	if (is_mounted(m->dir) > 0 && umount2(m->dir, MNT_DETACH) < 0)
		fprintf(stderr, "fixture: umount2 %s: %s\n", m->dir, strerror(errno));
	if (rmdir(m->dir) < 0)
		fprintf(stderr, "fixture: rmdir %s: %s\n", m->dir, strerror(errno));
	if (access(host_dir_path(m, db, sizeof(db)), F_OK) == 0)
		nftw(db, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	if (unlink(m->ctl) < 0 && errno != ENOENT)
		fprintf(stderr, "fixture: unlink %s: %s\n", m->ctl, strerror(errno));
}

/* Starts watching the kernel log for m; says once per process when it cannot. */
static void watch_kernel_log(struct mnt *m)
{
	static bool is_told;
	int rc = kmsg_open(NULL, true, &m->kmsg);

	if (rc < 0 && !is_told) {
		is_told = true;
		fprintf(stderr,
			"fixture: cannot read %s (%s): kernel warnings during these tests are "
			"not reported\n",
			KMSG_DEFAULT_PATH, strerror(-rc));
	}
}

/* Prints the kernel's reports since the mount to stderr, then stops watching. */
static void report_kernel_log(struct mnt *m)
{
	static const char rule[] =
		"=====================================================================";

	if (!m->kmsg)
		return;
	kmsg_poll(m->kmsg);
	kmsg_flush(m->kmsg);
	for (size_t i = 0; i < kmsg_count(m->kmsg); i++) {
		const struct kmsg_report *r = kmsg_report(m->kmsg, i);

		fprintf(stderr,
			"%s\nKERNEL WARNING while %s was mounted (kernel time %llu.%06llu, "
			"seq %llu; reported, not failed):\n",
			rule, m->dir, (unsigned long long)(r->ts_us / 1000000),
			(unsigned long long)(r->ts_us % 1000000), (unsigned long long)r->seq);
		for (unsigned j = 0; j < r->nlines; j++)
			fprintf(stderr, "    %s\n", r->lines[j]);
		fprintf(stderr, "%s\n", rule);
	}
	kmsg_close(m->kmsg);
	m->kmsg = NULL;
}

/* The process serving the control socket at path (SO_PEERCRED of a connection), once it
 * listens, within FX_MOUNT_WAIT_MS: its pid, or -errno. */
static pid_t socket_owner(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	for (long waited = 0; waited < FX_MOUNT_WAIT_MS; waited += FX_POLL_MS) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int rc = fd < 0 ? -errno : 0;

		if (rc == 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			rc = -errno;
		if (rc == 0 && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
			rc = -errno;
		if (fd >= 0)
			close(fd);
		if (rc == 0)
			return cred.pid;
		sleep_ms(FX_POLL_MS);
	}
	return -ETIMEDOUT;
}

/* In the background: the launcher forks the daemon proper and exits 0 once it is mounted;
 * the daemon, orphaned to this subreaper, is found through its control socket. */
static int start_in_background(struct mnt *m, const char *daemon, const char *source,
			       const char *opts)
{
	pid_t launcher = fork();
	int rc;

	if (launcher < 0)
		return -errno;
	if (launcher == 0)
		exec_daemon(daemon, m, source, opts, false);
	rc = wait_pid_ms(launcher, FX_MOUNT_WAIT_MS);
	if (rc != 0) {
		fprintf(stderr, "fixture: the launcher of %s ended with %d\n", m->dir, rc);
		if (rc == -ETIMEDOUT)
			kill(launcher, SIGKILL);
		return rc < 0 ? rc : -ECHILD;
	}
	m->pid = socket_owner(m->ctl);
	return m->pid < 0 ? m->pid : 0;
}

static int mount_as(struct mnt *m, const char *source, const char *opts, uid_t uid, gid_t gid,
		    bool has_ctl, bool is_foreground)
{
	const char *daemon = getenv("SIGBUSFS");
	int rc;

	memset(m, 0, sizeof(*m));
	if (!daemon || !*daemon) {
		fprintf(stderr, "fixture: $SIGBUSFS (the daemon's path) is not set\n");
		return -ENOENT;
	}
	m->uid = uid;
	m->gid = gid;
	snprintf(m->dir, sizeof(m->dir), MOUNT_PARENT "sigbusfs-XXXXXX");
	if (!mkdtemp(m->dir))
		return -errno;
	snprintf(m->ctl, sizeof(m->ctl), "%s.sock", m->dir);
	if (!has_ctl)
		m->ctl[0] = '\0';
	if (chown(m->dir, uid, gid) < 0) {
		rc = -errno;
		goto out_rmdir;
	}
	rc = make_host_dir(m, source);
	if (rc < 0)
		goto out_rmdir;
	fflush(stdout);
	fflush(stderr);
	if (is_foreground) {
		m->pid = fork();
		if (m->pid == 0)
			exec_daemon(daemon, m, source, opts, true);
		rc = m->pid < 0 ? -errno : 0;
	} else {
		rc = start_in_background(m, daemon, source, opts);
	}
	if (rc < 0)
		goto out_rmdir;
	rc = wait_mounted(m);
	if (rc == 0) {
		watch_kernel_log(m);
		return 0;
	}
	if (m->pid > 0)
		stop_daemon(m);
out_rmdir:
	remove_mount_point(m);
	m->pid = 0;
	return rc;
}

int fx_mount(struct mnt *m, const char *source, const char *opts)
{
	return mount_as(m, source, opts, geteuid(), getegid(), true, true);
}

int fx_mount_background(struct mnt *m, const char *source, const char *opts)
{
	return mount_as(m, source, opts, geteuid(), getegid(), true, false);
}

int fx_mount_as(struct mnt *m, const char *source, const char *opts, uid_t uid, gid_t gid)
{
	return mount_as(m, source, opts, uid, gid, false, true);
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
		stop_daemon(m);
	}
	remove_mount_point(m);
	m->pid = 0;
	report_kernel_log(m);
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
