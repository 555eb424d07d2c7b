/* Observing a fixture mount as its clients: what the test process checks itself (failing
 * the test through Check), what a forked client process checks (0 or FX_FAIL), a client
 * that runs in steps between the test's actions, and the suite scaffolding around them.
 * Mounting, SIGBUS-safe access and failure reports from children are in fixture.h. */
#ifndef SIGBUSFS_TEST_CLIENT_H
#define SIGBUSFS_TEST_CLIENT_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "fixture.h"
#include "suite.h"

/* ---- in the test process: failures fail the test (ck_assert) ---- */

/* fx_mount(m, source, opts), failing the test unless it succeeds. m becomes the mount that
 * fx_enter_workdir() makes directories in; it must stay valid while they are used. */
void fx_mount_or_fail(struct mnt *m, const char *source, const char *opts);

/* fx_umount(m) for an unchecked teardown, which cannot fail a test: a daemon that did not
 * exit cleanly is reported through fx_teardown_fail(). */
void fx_teardown(struct mnt *m);

/* Checked fixture: creates a fresh directory "t<pid>-<n>" in the root of the mount of the
 * last fx_mount_or_fail() for the running test, so that tests sharing a mount do not see
 * each other's names (n counts the calls, for CK_FORK=no). */
void fx_enter_workdir(void);

/* The running test's directory, as fx_enter_workdir() made it. */
const char *fx_workdir(void);

/* rel in the running test's directory: its path, and its path relative to the mount root
 * (what sigbusctl takes). Like fx_workdir(), each result is in one of 8 static buffers used
 * in turn, so up to 8 results can be in use at once; a path that does not fit in PATH_MAX
 * fails the test. */
const char *fx_work_path(const char *rel);
const char *fx_work_rel(const char *rel);

/* fx_child(fn, arg), failing the test unless fn returned 0; the message carries the
 * child's fx_failure(). */
void fx_run_child(int (*fn)(void *arg), void *arg);

/* Runs the program argv[0] (NULL-terminated argv) with stdout and stderr both captured
 * into out (NUL-terminated, cut at size). Returns its exit status (128+N if signal N
 * killed it), or -errno if it could not run. */
int fx_run_program(const char *const argv[], char *out, size_t size);

/* lstat(path), failing the test if it fails. */
struct stat fx_lstat(const char *path);

/* Writes content (a string, without its NUL) to path as fx_write_file() does. */
void fx_create_file(const char *path, const char *content);

/* What one read(2) of up to 4095 bytes from the start of path returns, NUL-terminated, in
 * a static buffer that the next call overwrites. */
const char *fx_slurp(const char *path);

/* Every byte of [off, off+len) of path is val, read twice through new descriptors: pread
 * through the page cache, and an O_DIRECT pread that sees what the daemon stores. */
void fx_expect_range(const char *path, off_t off, size_t len, char val);

/* ---- in a client process: each check returns 0, or FX_FAIL(...)'s 1 ---- */

/* Evaluates a check and returns its result from the calling function unless it is 0. */
#define FX_TRY(expr)                \
	do {                        \
		int rc_ = (expr);   \
		if (rc_)            \
			return rc_; \
	} while (0)

/* Bytes [off, off+len) of the mapping at base read want[off...], without SIGBUS. what
 * names the mapping in the failure message, which gives the byte's offset from base. */
int fx_expect_bytes(const char *what, volatile char *base, size_t off, const char *want,
		    size_t len);

/* Bytes [off, off+len) of the mapping at base all read val, without SIGBUS. */
int fx_expect_fill(const char *what, volatile char *base, size_t off, size_t len, char val);

/* Reading the byte at base + off (or writing 'w' to it, when is_write) raises SIGBUS. */
int fx_expect_sigbus(const char *what, volatile char *base, size_t off, bool is_write);

/* Stores bytes[0, len) at base + off, byte by byte, without SIGBUS. */
int fx_write_bytes(const char *what, volatile char *base, size_t off, const char *bytes,
		   size_t len);

/* One pread of len bytes at off from fd returns exactly len bytes, equal to want[off...].
 * what names fd in the failure message. The buffer is page-aligned, so fd may be O_DIRECT. */
int fx_expect_pread(const char *what, int fd, const char *want, size_t off, size_t len);

/* n is what a call returned: passes if it is -1 with errno err. Reads errno before
 * anything else, so call it right after the call under test. fmt names the call. */
int fx_expect_err(long n, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- a client process that runs in steps ---- */

/* The test acts between the client's steps, from its own process (sigbusctl, another
 * client), and the client observes each step's result. Protocol, over a socket pair: the
 * client says it is ready with fx_peer_wait_go() before each step and returns after its
 * last; the test lets it run one step with fx_peer_step(). */
struct fx_peer {
	pid_t pid; /* the client; 0 once it has exited with 0 and been reaped */
	int sock;  /* the test's end of the socket pair */
};

/* The client: sock is its end of the socket pair, arg fx_peer_start()'s. Returns 0 if
 * everything it saw was right, else FX_FAIL(...)'s 1. */
typedef int (*fx_peer_fn)(int sock, const void *arg);

/* Forks a client running fn(sock, arg) (clearing fx_failure() first) and returns once it
 * is ready for its first step or has exited with 0. Fails the test if it exited otherwise,
 * with its fx_failure(). */
void fx_peer_start(struct fx_peer *p, fx_peer_fn fn, const void *arg);

/* Lets the client run its next step and returns once it is ready for another or has
 * exited with 0. Fails the test if it has exited before, or exits otherwise now. */
void fx_peer_step(struct fx_peer *p);

/* Closes the test's end and fails the test unless the client has exited with 0. A client
 * still waiting for a step sees the test go away, which fails it. */
void fx_peer_finish(struct fx_peer *p);

/* In the client: tells the test it is ready for its next step and waits until the test
 * lets it run; FX_FAIL if the test went away instead. */
int fx_peer_wait_go(int sock);

#endif
