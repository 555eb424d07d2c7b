/* The integration fixture: starts the sigbusfs daemon on a temporary mount point, waits
 * until the mount answers, and always unmounts and reaps it; plus helpers for client
 * processes: forking one and reporting its failures. Touching mapped memory with SIGBUS
 * as a result is touch.h's (fs/common). */
#ifndef SIGBUSFS_TEST_FIXTURE_H
#define SIGBUSFS_TEST_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct kmsg;

struct mnt {
	char dir[64];  /* the mount point, from mkdtemp */
	char ctl[128]; /* the control socket passed with -o ctl=, or "" (fx_mount_as()) */
	pid_t pid;     /* the daemon, run in the foreground (-f) unless said otherwise */
	unsigned conn; /* its FUSE connection: /sys/fs/fuse/connections/<conn> */
	uid_t uid;     /* the daemon's user and group */
	gid_t gid;
	struct kmsg *kmsg; /* the kernel log from the mount on; NULL if it cannot be read */
};

/* Exits the process with 77 (skip) when /dev/fuse is unusable, unless CI=true, where that
 * is a failure (exit 1). Call first in main(). */
void fx_require_fuse(void);

/* The backend that serves well-formed mem: sources in this run: "sqlite" or "dir" under
 * SIGBUSFS_TEST_SOURCE=sqlite or dir, else "mem". */
const char *fx_test_backend(void);
/* Whether that backend enforces mem:SIZE's byte limit (BK_F_LIMIT: only mem does): the
 * tests of the limit and of mem's own memory use run only then. */
bool fx_test_has_limit(void);
/* Where host directories of dir: mounts are made: $SIGBUSFS_TEST_DIR_ROOT, by default the
 * tmpfs /dev/shm (an ext4 mount, say, to run the suites over that). */
const char *fx_test_dir_root(void);
/* Exits the process with 77 (skip) when SIGBUSFS_TEST_SOURCE names a backend other than
 * sqlite: tests that mount sqlite: sources of their own run in a plain `meson test` and in
 * contrib/check's sqlite run, once. */
void fx_require_sqlite_run(void);

/* Starts "$SIGBUSFS -f [-o opts] source dir" (opts may be NULL, e.g. "cache=auto") and
 * waits up to 10 s until dir is a fuse.sigbusfs mount. 0 or -errno; on failure nothing is
 * left mounted or running. From then on the kernel log is watched (contrib/kmsg); where
 * it cannot be read, that is said once per process on stderr. */
int fx_mount(struct mnt *m, const char *source, const char *opts);

/* fx_mount() without -f: the daemon forks itself into the background (fuse_daemonize())
 * and the process started exits. The caller must be a child subreaper
 * (PR_SET_CHILD_SUBREAPER), so that it inherits the daemon and fx_umount() can reap it;
 * m->pid is the daemon proper, found as the owner of its control socket. */
int fx_mount_background(struct mnt *m, const char *source, const char *opts);

/* fx_mount(), with the daemon run as uid:gid (no supplementary groups) on a mount point
 * they own, so that it mounts through fusermount3 as that user would, and with its
 * default control socket: m->ctl is "" and fx_ctl_request() finds the socket through
 * the mount. Without allow_other only that user may enter the mount: the fixture waits for it as
 * that user. */
int fx_mount_as(struct mnt *m, const char *source, const char *opts, uid_t uid, gid_t gid);

/* Unmounts (lazily if busy), terminates and reaps the daemon, removes the directory.
 * Returns the daemon's exit status (0 when it exited cleanly, 128+9 if it was killed with
 * SIGKILL before), or -errno. A daemon that does not exit even after SIGKILL (a thread
 * stuck on a request of its own mount) has its connection aborted through fusectl.
 * Kernel reports (WARNING, BUG, lockdep...) printed while the mount lived go to stderr,
 * prominently; they do not fail the test (contrib/check lists them and decides). */
int fx_umount(struct mnt *m);

/* Aborts m's FUSE connection through fusectl (mounted if need be), as "sigbusctl abort"
 * does: every request in flight fails and the daemon's device reads end. 0 or -errno. */
int fx_abort(const struct mnt *m);

/* m->dir + "/" + rel into buf; returns buf */
char *fx_path(const struct mnt *m, const char *rel, char *buf, size_t size);

/* Runs fn(arg) in a forked child process and returns its exit status (0..255), or 128+sig
 * if it died from a signal, or -errno. */
int fx_child(int (*fn)(void *arg), void *arg);

/* Writes all of len bytes of buf to path (O_CREAT|O_TRUNC, mode 0644); 0 or -errno. */
int fx_write_file(const char *path, const void *buf, size_t len);

/* A failure report from a forked child to its parent, kept in memory shared across fork.
 * fx_fail() prints "file:line: message" to stderr, records it if no failure is recorded yet,
 * and returns 1, so a child function can end with `return FX_FAIL("pread: %zd", n);`.
 * fx_child() clears the record before it forks; a test that forks by itself calls
 * fx_fail_clear() first (it also allocates the record). fx_failure() returns the recorded
 * message, or "" if there is none, for the parent's ck_assert_msg(). */
#define FX_FAIL(...) fx_fail(__FILE__, __LINE__, __VA_ARGS__)
int fx_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void fx_fail_clear(void);
const char *fx_failure(void);

#endif
