/* Observing a fixture mount as its clients: checks for the test process and for forked
 * client processes, the stepped client and the suite scaffolding (contracts in client.h).
 * Mounting and the failure record are fixture.c's; mapped memory is touched through
 * touch.h. */
#include "client.h"
#include "touch.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define FX_PAGE	     4096
#define FX_PATH_BUFS 8
#define FX_WHAT_MAX  256

/* Check's fixtures take no arguments, so what they share lives here: the mount of the last
 * fx_mount_or_fail() and the running test's directory in it (in the test process, one test
 * at a time). */
static const struct mnt *work_mnt;
static char work_rel[32]; /* the running test's directory, relative to the mount root */

/* ---- in the test process ---- */

void fx_mount_or_fail(struct mnt *m, const char *source, const char *opts)
{
	int rc = fx_mount(m, source, opts);

	ck_assert_msg(rc == 0, "fx_mount(%s, %s): %s", source, opts ? opts : "-", strerror(-rc));
	work_mnt = m;
}

void fx_teardown(struct mnt *m)
{
	int rc = fx_umount(m);

	if (rc != 0)
		fx_teardown_fail("teardown: the daemon ended with %d, expected a clean exit 0", rc);
}

/* fmt's result in one of FX_PATH_BUFS static buffers used in turn. */
static const char *path_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static const char *path_fmt(const char *fmt, ...)
{
	static char bufs[FX_PATH_BUFS][PATH_MAX];
	static unsigned next;
	char *b = bufs[next++ % FX_PATH_BUFS];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b, PATH_MAX, fmt, ap);
	va_end(ap);
	ck_assert_msg(n > 0 && n < PATH_MAX, "path too long: %s...", b);
	return b;
}

void fx_enter_workdir(void)
{
	static unsigned n; /* with CK_FORK=no, tests share one process */
	const char *dir;

	ck_assert_msg(work_mnt, "fx_enter_workdir: nothing mounted by fx_mount_or_fail()");
	snprintf(work_rel, sizeof(work_rel), "t%d-%u", (int)getpid(), n++);
	dir = fx_workdir();
	ck_assert_msg(mkdir(dir, 0755) == 0, "mkdir %s: %s", dir, strerror(errno));
}

static void assert_workdir(void)
{
	ck_assert_msg(work_mnt && work_rel[0], "no work directory: fx_enter_workdir() did not run");
}

const char *fx_workdir(void)
{
	assert_workdir();
	return path_fmt("%s/%s", work_mnt->dir, work_rel);
}

const char *fx_work_path(const char *rel)
{
	assert_workdir();
	return path_fmt("%s/%s/%s", work_mnt->dir, work_rel, rel);
}

const char *fx_work_rel(const char *rel)
{
	assert_workdir();
	return path_fmt("%s/%s", work_rel, rel);
}

void fx_run_child(int (*fn)(void *arg), void *arg)
{
	int rc = fx_child(fn, arg);

	ck_assert_msg(rc == 0, "client process ended with %d: %s", rc, fx_failure());
}

struct stat fx_lstat(const char *path)
{
	struct stat st;

	ck_assert_msg(lstat(path, &st) == 0, "lstat %s: %s", path, strerror(errno));
	return st;
}

void fx_create_file(const char *path, const char *content)
{
	int rc = fx_write_file(path, content, strlen(content));

	ck_assert_msg(rc == 0, "write %s: %s", path, strerror(-rc));
}

const char *fx_slurp(const char *path)
{
	static char buf[4096];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	ck_assert_msg(n >= 0, "read %s: %s", path, strerror(errno));
	buf[n] = '\0';
	close(fd);
	return buf;
}

void fx_expect_range(const char *path, off_t off, size_t len, char val)
{
	char *buf;
	int fd, direct;

	ck_assert_int_eq(posix_memalign((void **)&buf, 4096, len + 8192), 0);
	fd = open(path, O_RDONLY);
	direct = open(path, O_RDONLY | O_DIRECT);
	ck_assert_msg(fd >= 0 && direct >= 0, "open %s: %s", path, strerror(errno));
	for (int pass = 0; pass < 2; pass++) {
		off_t aligned = off & ~(off_t)4095;
		size_t skip = (size_t)(off - aligned);
		size_t want = pass ? (skip + len + 4095) & ~(size_t)4095 : len;
		ssize_t n = pass ? pread(direct, buf, want, aligned) : pread(fd, buf, len, off);
		const char *p = pass ? buf + skip : buf;

		ck_assert_msg(n >= (ssize_t)(pass ? skip + len : len),
			      "%s pread %s at %lld: %zd (%s)", pass ? "O_DIRECT" : "cached", path,
			      (long long)off, n, strerror(errno));
		for (size_t i = 0; i < len; i++)
			ck_assert_msg(
				p[i] == val, "%s read of %s: byte %lld is 0x%02x, expected 0x%02x",
				pass ? "O_DIRECT" : "cached", path, (long long)(off + (off_t)i),
				(unsigned char)p[i], (unsigned char)val);
	}
	close(direct);
	close(fd);
	free(buf);
}

/* ---- in a client process ---- */

/* Bytes [off, off+len) at base read want[off...], or val everywhere when want is NULL. */
static int expect_mapped(const char *what, volatile char *base, size_t off, const char *want,
			 size_t len, char val)
{
	char *got = malloc(len ? len : 1);
	uintptr_t fault;
	size_t at;
	int rc = 0;

	if (!got)
		return FX_FAIL("%s: out of memory", what);
	if (touch_copy(got, base + off, len, &fault) != 0) {
		at = (size_t)(fault - (uintptr_t)base);
		rc = FX_FAIL("%s: SIGBUS at byte %zu, expected 0x%02x", what, at,
			     (unsigned char)(want ? want[at] : val));
	}
	for (size_t i = off; rc == 0 && i < off + len; i++) {
		char exp = want ? want[i] : val;

		if (got[i - off] != exp)
			rc = FX_FAIL("%s: byte %zu is 0x%02x, expected 0x%02x", what, i,
				     (unsigned char)got[i - off], (unsigned char)exp);
	}
	free(got);
	return rc;
}

int fx_expect_bytes(const char *what, volatile char *base, size_t off, const char *want, size_t len)
{
	return expect_mapped(what, base, off, want, len, 0);
}

int fx_expect_fill(const char *what, volatile char *base, size_t off, size_t len, char val)
{
	return expect_mapped(what, base, off, NULL, len, val);
}

int fx_expect_sigbus(const char *what, volatile char *base, size_t off, bool is_write)
{
	char c = 'w';
	int rc = is_write ? touch_copy(base + off, &c, 1, NULL)
			  : touch_copy(&c, base + off, 1, NULL);

	if (rc != TOUCH_SIGBUS)
		return FX_FAIL("%s: %s byte %zu without SIGBUS (0x%02x)", what,
			       is_write ? "wrote" : "read", off, (unsigned char)c);
	return 0;
}

int fx_write_bytes(const char *what, volatile char *base, size_t off, const char *bytes, size_t len)
{
	uintptr_t fault;

	if (touch_copy(base + off, bytes, len, &fault) != 0)
		return FX_FAIL("%s: SIGBUS writing byte %zu", what,
			       (size_t)(fault - (uintptr_t)base));
	return 0;
}

int fx_expect_pread(const char *what, int fd, const char *want, size_t off, size_t len)
{
	char *buf = NULL;
	ssize_t n;
	int rc = 0;

	if (posix_memalign((void **)&buf, FX_PAGE, len ? len : 1))
		return FX_FAIL("posix_memalign of %zu bytes", len);
	n = pread(fd, buf, len, (off_t)off);
	if (n != (ssize_t)len) {
		rc = FX_FAIL("%s: pread of %zu bytes at %zu: %zd (%s)", what, len, off, n,
			     n < 0 ? strerror(errno) : "short");
		goto out_free;
	}
	for (size_t i = 0; i < len && rc == 0; i++) {
		if (buf[i] != want[off + i])
			rc = FX_FAIL("%s: pread: byte %zu is 0x%02x, expected 0x%02x", what,
				     off + i, (unsigned char)buf[i], (unsigned char)want[off + i]);
	}
out_free:
	free(buf);
	return rc;
}

int fx_expect_err(long n, int err, const char *fmt, ...)
{
	int e = errno;
	char what[FX_WHAT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (n == -1 && e == err)
		return 0;
	if (n == -1)
		return FX_FAIL("%s: %s, expected %s", what, strerrorname_np(e),
			       strerrorname_np(err));
	return FX_FAIL("%s returned %ld, expected %s", what, n, strerrorname_np(err));
}

/* ---- a client process that runs in steps ---- */

#define FX_PEER_READY 'r' /* client to test: ready for the next step */
#define FX_PEER_GO    'g' /* test to client: run it */

/* Reaps the client, which has exited or is about to; fails the test unless it exited 0. */
static void peer_reap(struct fx_peer *p)
{
	int status;

	ck_assert_int_eq(waitpid(p->pid, &status, 0), p->pid);
	p->pid = 0;
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "client process failed (status 0x%x): %s", status, fx_failure());
}

/* Waits until the client is ready for its next step, or has exited with 0 (reaped). */
static void peer_wait(struct fx_peer *p)
{
	char ch;

	if (recv(p->sock, &ch, 1, 0) != 1)
		peer_reap(p);
}

void fx_peer_start(struct fx_peer *p, fx_peer_fn fn, const void *arg)
{
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	fx_fail_clear();
	fflush(stdout);
	fflush(stderr);
	p->pid = fork();
	ck_assert_int_ge(p->pid, 0);
	if (p->pid == 0) {
		close(sv[0]);
		_exit(fn(sv[1], arg));
	}
	close(sv[1]);
	p->sock = sv[0];
	peer_wait(p);
}

void fx_peer_step(struct fx_peer *p)
{
	char ch = FX_PEER_GO;

	ck_assert_msg(p->pid > 0, "the client has no step left");
	/* MSG_NOSIGNAL: a client that failed early has closed its end; peer_wait() says how */
	if (send(p->sock, &ch, 1, MSG_NOSIGNAL) != 1)
		ck_assert_int_eq(errno, EPIPE);
	peer_wait(p);
}

void fx_peer_finish(struct fx_peer *p)
{
	close(p->sock);
	if (p->pid > 0)
		peer_reap(p);
}

int fx_peer_wait_go(int sock)
{
	char ch = FX_PEER_READY;

	if (send(sock, &ch, 1, MSG_NOSIGNAL) != 1 || recv(sock, &ch, 1, 0) != 1 || ch != FX_PEER_GO)
		return FX_FAIL("the test went away");
	return 0;
}

/* Reads fd to its end into out (NUL-terminated, cut at size), discarding the rest. */
static void read_to_end(int fd, char *out, size_t size)
{
	size_t used = 0;
	char sink[4096];
	ssize_t n;

	for (;;) {
		bool has_room = used + 1 < size;

		n = read(fd, has_room ? out + used : sink,
			 has_room ? size - 1 - used : sizeof(sink));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (has_room)
			used += (size_t)n;
	}
	if (size)
		out[used] = '\0';
}

int fx_run_program(const char *const argv[], char *out, size_t size)
{
	int pfd[2], status;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		dup2(pfd[1], STDOUT_FILENO);
		dup2(pfd[1], STDERR_FILENO);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pfd[1]);
	read_to_end(pfd[0], out, size);
	close(pfd[0]);
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
