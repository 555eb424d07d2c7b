/* A mount made by an unprivileged user: the daemon runs as nobody and mounts through
 * fusermount3. Its root directory is that user's, so the user can create, write, read and
 * map files; sigbusctl -m finds the daemon's default socket; the socket a killed daemon
 * leaves is removed by the next one. Also -o uid=, gid=, mode= and their rejection. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "client.h"
#include "fixture.h"

#define NOBODY	  65534
#define NOGROUP	  65534
#define OTHER_UID 65532
#define OTHER_GID 65533
#define PAGE	  4096

static struct mnt mnt; /* one per TCase */

/* sigbusctl itself, as a user runs it: "-m m->dir" (the default socket found through the
 * mount) unless m->ctl names a socket ("-S m->ctl"), then the words ARG... Its exit status
 * with stdout and stderr in out, or -errno. */
static int sigbusctl(const struct mnt *m, char *out, size_t size, const char *arg, ...)
{
	const char *argv[16] = { getenv("SIGBUSCTL"), m->ctl[0] ? "-S" : "-m",
				 m->ctl[0] ? m->ctl : m->dir };
	size_t n = 3;
	va_list ap;

	va_start(ap, arg);
	for (; arg && n < 15; arg = va_arg(ap, const char *))
		argv[n++] = arg;
	va_end(ap);
	return argv[0] ? fx_run_program(argv, out, size) : -ENOENT;
}

static void setup_user(void)
{
	int rc = fx_mount_as(&mnt, "mem:64M", NULL, NOBODY, NOGROUP);

	ck_assert_msg(rc == 0, "mount as nobody: %s", strerror(-rc));
}

static void teardown(void)
{
	fx_teardown(&mnt);
}

/* Runs fn(arg) in a child process as uid:gid, without supplementary groups. */
struct as_user {
	uid_t uid;
	gid_t gid;
	int (*fn)(void *arg);
	void *arg;
};

static int as_user_main(void *arg)
{
	struct as_user *u = arg;

	if (setgroups(0, NULL) < 0 || setresgid(u->gid, u->gid, u->gid) < 0 ||
	    setresuid(u->uid, u->uid, u->uid) < 0)
		return FX_FAIL("become %d:%d: %s", (int)u->uid, (int)u->gid, strerror(errno));
	return u->fn(u->arg);
}

static void run_as(uid_t uid, gid_t gid, int (*fn)(void *), void *arg)
{
	struct as_user u = { uid, gid, fn, arg };
	int rc = fx_child(as_user_main, &u);

	ck_assert_msg(rc == 0, "child as uid %d ended with %d: %s", (int)uid, rc, fx_failure());
}

static int expect_owner(const char *path, uid_t uid, gid_t gid, mode_t mode)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return FX_FAIL("lstat %s: %s", path, strerror(errno));
	if (st.st_uid != uid || st.st_gid != gid || st.st_mode != mode)
		return FX_FAIL("%s: %d:%d mode %o, expected %d:%d mode %o", path, (int)st.st_uid,
			       (int)st.st_gid, st.st_mode, (int)uid, (int)gid, mode);
	return 0;
}

/* Writes text to rel in the mount, in a client: 0 or FX_FAIL. */
static int write_rel(const char *rel, const char *text)
{
	char path[128];
	int rc = fx_write_file(fx_path(&mnt, rel, path, sizeof(path)), text, strlen(text));

	return rc ? FX_FAIL("write %s: %s", path, strerror(-rc)) : 0;
}

/* ---- the mounting user's own mount ---- */

/* As nobody: the root is ours; a file written, read back, mapped and changed through the
 * mapping; a directory. */
static int use_own_mount(void *arg)
{
	char path[128], buf[16] = { 0 };
	volatile char *map;
	int fd;

	FX_TRY(expect_owner(mnt.dir, NOBODY, NOGROUP, S_IFDIR | 0755));
	FX_TRY(write_rel("f", "hello"));
	FX_TRY(expect_owner(fx_path(&mnt, "f", path, sizeof(path)), NOBODY, NOGROUP,
			    S_IFREG | 0644));
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 || pread(fd, buf, sizeof(buf), 0) != 5 || strcmp(buf, "hello") != 0)
		return FX_FAIL("read back %s: '%s' (%s)", path, buf, strerror(errno));
	if (ftruncate(fd, 2 * PAGE) < 0)
		return FX_FAIL("ftruncate: %s", strerror(errno));
	map = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return FX_FAIL("mmap: %s", strerror(errno));
	FX_TRY(fx_expect_bytes("map", map, 0, "hello", 5));
	FX_TRY(fx_write_bytes("map", map, PAGE, "mapped", 6));
	if (msync((void *)map, 2 * PAGE, MS_SYNC) < 0)
		return FX_FAIL("msync: %s", strerror(errno));
	if (pread(fd, buf, 6, PAGE) != 6 || memcmp(buf, "mapped", 6) != 0)
		return FX_FAIL("pread after msync: '%.6s'", buf);
	munmap((void *)map, 2 * PAGE);
	close(fd);
	if (mkdir(fx_path(&mnt, "d", path, sizeof(path)), 0700) < 0)
		return FX_FAIL("mkdir %s: %s", path, strerror(errno));
	return expect_owner(path, NOBODY, NOGROUP, S_IFDIR | 0700);
}

START_TEST(test_user_owns_root)
{
	struct stat st;

	run_as(NOBODY, NOGROUP, use_own_mount, NULL);
	/* without allow_other, the kernel lets no one else in, root included */
	ck_assert_int_eq(stat(mnt.dir, &st), -1);
	ck_assert_int_eq(errno, EACCES);
}
END_TEST

/* As nobody: the default socket, published on the root, and sigbusctl -m through it. */
static int control_own_mount(void *arg)
{
	char want[128], got[128] = { 0 }, path[128], out[4096];
	volatile char *map;
	ssize_t n;
	int fd, rc;

	snprintf(want, sizeof(want), "/tmp/sigbusfs-%d/%d.sock", NOBODY, (int)mnt.pid);
	n = getxattr(mnt.dir, "user.sigbusfs.ctl", got, sizeof(got) - 1);
	if (n < 0 || strcmp(got, want) != 0)
		return FX_FAIL("user.sigbusfs.ctl: '%s' (%s), expected %s", got,
			       n < 0 ? strerror(errno) : "", want);
	FX_TRY(expect_owner(want, NOBODY, NOGROUP, S_IFSOCK | 0600));
	snprintf(path, sizeof(path), "/tmp/sigbusfs-%d", NOBODY);
	FX_TRY(expect_owner(path, NOBODY, NOGROUP, S_IFDIR | 0700));
	rc = sigbusctl(&mnt, out, sizeof(out), "status", NULL);
	if (rc != 0 || !strstr(out, mnt.dir))
		return FX_FAIL("sigbusctl -m %s status: %d: %s", mnt.dir, rc, out);
	/* an event that makes the daemon stat its own mount, as this user */
	FX_TRY(write_rel("t", "0123456789"));
	fd = open(fx_path(&mnt, "t", path, sizeof(path)), O_RDONLY | O_CLOEXEC);
	map = fd < 0 ? MAP_FAILED : mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return FX_FAIL("map %s: %s", path, strerror(errno));
	FX_TRY(fx_expect_bytes("t", map, 0, "0123456789", 10));
	rc = sigbusctl(&mnt, out, sizeof(out), "truncate", "t", "0", NULL);
	if (rc != 0)
		return FX_FAIL("sigbusctl -m %s truncate t 0: %d: %s", mnt.dir, rc, out);
	FX_TRY(fx_expect_sigbus("t", map, 0, false));
	munmap((void *)map, PAGE);
	close(fd);
	return 0;
}

START_TEST(test_sigbusctl_as_user)
{
	struct mnt by_socket = mnt;
	char out[4096];

	run_as(NOBODY, NOGROUP, control_own_mount, NULL);
	/* root may use the socket, but cannot read the attribute of a mount it cannot enter */
	ck_assert_int_eq(sigbusctl(&mnt, out, sizeof(out), "status", NULL), 1);
	ck_assert_msg(strstr(out, "Permission denied"), "%s", out);
	snprintf(by_socket.ctl, sizeof(by_socket.ctl), "/tmp/sigbusfs-%d/%d.sock", NOBODY,
		 (int)mnt.pid);
	ck_assert_int_eq(sigbusctl(&by_socket, out, sizeof(out), "status", NULL), 0);
}
END_TEST

/* A daemon killed with SIGKILL leaves its socket; the next one in that directory removes
 * it. */
START_TEST(test_stale_socket_removed)
{
	struct mnt killed, next;
	struct stat st;
	char sock[128];
	int rc;

	rc = fx_mount_as(&killed, "mem:", NULL, NOBODY, NOGROUP);
	ck_assert_msg(rc == 0, "mount as nobody: %s", strerror(-rc));
	snprintf(sock, sizeof(sock), "/tmp/sigbusfs-%d/%d.sock", NOBODY, (int)killed.pid);
	ck_assert_int_eq(lstat(sock, &st), 0);
	ck_assert_int_eq(kill(killed.pid, SIGKILL), 0);
	ck_assert_int_eq(fx_umount(&killed), 128 + SIGKILL);
	ck_assert_msg(lstat(sock, &st) == 0, "%s: gone already", sock);
	rc = fx_mount_as(&next, "mem:", NULL, NOBODY, NOGROUP);
	ck_assert_msg(rc == 0, "mount as nobody: %s", strerror(-rc));
	ck_assert_int_eq(lstat(sock, &st), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(fx_umount(&next), 0);
}
END_TEST

/* SIGTERM and SIGINT are the way to stop a daemon: it unmounts, removes its socket and
 * exits 0. */
START_TEST(test_signal_stops_cleanly)
{
	const int sigs[] = { SIGTERM, SIGINT };

	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		struct mnt m;
		struct stat st;
		int rc = fx_mount(&m, "mem:", NULL);

		ck_assert_msg(rc == 0, "mount: %s", strerror(-rc));
		ck_assert_int_eq(kill(m.pid, sigs[i]), 0);
		ck_assert_msg(fx_umount(&m) == 0, "the daemon did not exit 0 on %s",
			      strsignal(sigs[i]));
		ck_assert_msg(lstat(m.ctl, &st) < 0 && errno == ENOENT, "%s: left behind", m.ctl);
	}
}
END_TEST

/* Whether the process pid runs a thread named name. */
static bool has_thread(pid_t pid, const char *name)
{
	char path[300], comm[32];
	bool found = false;
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	while (d && !found && (e = readdir(d))) {
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/task/%s/comm", (int)pid, e->d_name);
		f = fopen(path, "re");
		if (f && fgets(comm, sizeof(comm), f))
			found = strncmp(comm, name, strlen(name)) == 0 &&
				comm[strlen(name)] == '\n';
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return found;
}

/* Run in the background (no -f), the daemon forks before it opens its backend, so the
 * threads a backend starts are the daemon's: the sqlite backend's flusher and
 * checkpointer run (before, they stayed behind in the process that exited: batches
 * committed only when full and the WAL grew without end), and at unmount the daemon
 * exits 0 (it waited for those threads forever). */
START_TEST(test_background_daemon)
{
	struct mnt m;
	char path[128];
	int rc;

	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	rc = fx_mount_background(&m, "mem:", NULL);
	ck_assert_msg(rc == 0, "background mount: %s", strerror(-rc));
	fx_create_file(fx_path(&m, "f", path, sizeof(path)), "wwwwwwwwww");
	if (strcmp(fx_test_backend(), "sqlite") == 0) {
		ck_assert_msg(has_thread(m.pid, "sqlite-flusher"), "no sqlite-flusher thread");
		ck_assert_msg(has_thread(m.pid, "sqlite-ckpt"), "no sqlite-ckpt thread");
	}
	fx_expect_range(path, 0, 10, 'w');
	ck_assert_int_eq(fx_umount(&m), 0);
}
END_TEST

/* ---- -o uid=, gid=, mode= ---- */

static int create_as(void *arg)
{
	return write_rel(arg, "x");
}

static int remove_other(void *arg)
{
	char path[128];

	if (unlink(fx_path(&mnt, arg, path, sizeof(path))) == 0 || errno != EPERM)
		return FX_FAIL("unlink %s: %s, expected EPERM (sticky)", path, strerror(errno));
	return 0;
}

static void setup_root_options(void)
{
	fx_mount_or_fail(&mnt, "mem:", "allow_other,uid=65534,gid=65533,mode=1770");
}

/* A root daemon gives the root to another user and group, with the sticky bit. */
START_TEST(test_root_options)
{
	char path[128];

	ck_assert_int_eq(expect_owner(mnt.dir, NOBODY, OTHER_GID, S_IFDIR | 01770), 0);
	run_as(NOBODY, NOGROUP, create_as, "mine");
	ck_assert_int_eq(expect_owner(fx_path(&mnt, "mine", path, sizeof(path)), NOBODY, NOGROUP,
				      S_IFREG | 0644),
			 0);
	run_as(OTHER_UID, OTHER_GID, create_as, "theirs");
	run_as(OTHER_UID, OTHER_GID, remove_other, "mine");
}
END_TEST

/* The kernel's readahead for a mount: its bdi's read_ahead_kb. */
static unsigned readahead_of(const char *dir)
{
	char path[64];
	unsigned kb = 0;
	struct stat st;
	FILE *f;

	ck_assert_int_eq(stat(dir, &st), 0);
	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb", major(st.st_dev),
		 minor(st.st_dev));
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%u", &kb), 1);
	fclose(f);
	return kb;
}

/* A root daemon sets the readahead of its mount: 1 MiB, the READ size INIT allows, or
 * what -o readahead= says (0: the kernel's default). */
START_TEST(test_readahead)
{
	struct mnt other, kernels;

	ck_assert_uint_eq(readahead_of(mnt.dir), 1024);
	fx_mount_or_fail(&other, "mem:", "readahead=256");
	fx_mount_or_fail(&kernels, "mem:", "readahead=0");
	ck_assert_uint_eq(readahead_of(other.dir), 256);
	ck_assert_uint_eq(readahead_of(kernels.dir), 128);
	ck_assert_int_eq(fx_umount(&other), 0);
	ck_assert_int_eq(fx_umount(&kernels), 0);
}
END_TEST

/* dir: the root is a host directory, whose owner cannot give it to a group of which
 * nobody is not a member: the group stays the daemon's (README, the semantics matrix). */
static bool is_host_root(void)
{
	return strcmp(fx_test_backend(), "dir") == 0;
}

static void setup_user_options(void)
{
	int rc = fx_mount_as(&mnt, "mem:", is_host_root() ? "mode=0700" : "gid=0,mode=0700", NOBODY,
			     NOGROUP);

	ck_assert_msg(rc == 0, "mount as nobody: %s", strerror(-rc));
}

static int expect_private_root(void *arg)
{
	return expect_owner(mnt.dir, NOBODY, is_host_root() ? NOGROUP : 0, S_IFDIR | 0700);
}

/* A user's daemon can choose them too. */
START_TEST(test_user_options)
{
	run_as(NOBODY, NOGROUP, expect_private_root, NULL);
}
END_TEST

/* Runs "$SIGBUSFS -f -o opts mem: dir" and stores its stderr in out: its exit status. */
static int run_daemon(const char *opts, const char *dir, char *out, size_t size)
{
	const char *daemon = getenv("SIGBUSFS");
	int pfd[2], status;
	size_t used = 0;
	ssize_t n;
	pid_t pid;

	ck_assert_ptr_nonnull(daemon);
	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(pfd[1], STDERR_FILENO);
		close(pfd[0]);
		execl(daemon, daemon, "-f", "-o", opts, "mem:", dir, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	while (used + 1 < size && (n = read(pfd[0], out + used, size - 1 - used)) > 0)
		used += (size_t)n;
	out[used] = '\0';
	close(pfd[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Every bad value is reported, by name, and nothing is mounted (exit status 2). */
START_TEST(test_bad_options)
{
	static const struct {
		const char *opts;
		const char *msgs[3];
	} cases[] = {
		{ "uid=abc,gid=-1,mode=0800",
		  { "bad option uid=abc: expected a decimal number from 0 to 4294967294",
		    "bad option gid=-1: expected a decimal number",
		    "bad option mode=0800: expected permission bits in octal, from 0 to 7777" } },
		{ "uid=4294967295,gid=,mode=10000",
		  { "bad option uid=4294967295: expected", "bad option gid=: expected",
		    "bad option mode=10000: expected" } },
		{ "uid=1x,gid=99999999999,mode=040755",
		  { "bad option uid=1x: expected", "bad option gid=99999999999: expected",
		    "bad option mode=040755: expected" } },
		{ "uid= 1,mode=",
		  { "bad option uid= 1: expected", "bad option mode=: expected", NULL } },
		{ "readahead=2000000",
		  { "bad option readahead=2000000: expected KiB from 0 to 1048576", NULL } },
		{ "feed_ms=10001,readahead=-1",
		  { "bad option feed_ms=10001: expected milliseconds from 0 to 10000",
		    "bad option readahead=-1: expected", NULL } },
		{ "feed_ms=", { "bad option feed_ms=: expected milliseconds", NULL } },
	};
	char dir[] = "/tmp/check_user.XXXXXX", out[4096];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(run_daemon(cases[i].opts, dir, out, sizeof(out)), 2);
		for (int j = 0; j < 3 && cases[i].msgs[j]; j++)
			ck_assert_msg(strstr(out, cases[i].msgs[j]), "-o %s: no '%s' in:\n%s",
				      cases[i].opts, cases[i].msgs[j], out);
	}
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* Debian's udev rule makes /dev/fuse 0666, so that a user's daemon can open it before
 * fusermount3 mounts for it. Where it is not (containers), this process and its children
 * get a private mount namespace in which a 0666 node of the same device covers it;
 * nothing outside changes, and the mounts made here are seen only here. */
static void open_fuse_to_users(void)
{
	char dir[] = "/tmp/check_user.XXXXXX", node[64];
	struct stat st;

	if (stat("/dev/fuse", &st) < 0 || (st.st_mode & 0666) == 0666)
		return;
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    !mkdtemp(dir)) {
		fprintf(stderr, "check_user: private mount namespace: %s\n", strerror(errno));
		exit(1);
	}
	snprintf(node, sizeof(node), "%s/fuse", dir);
	if (mknod(node, S_IFCHR | 0600, st.st_rdev) < 0 || chmod(node, 0666) < 0 ||
	    mount(node, "/dev/fuse", NULL, MS_BIND, NULL) < 0) {
		fprintf(stderr, "check_user: a 0666 /dev/fuse: %s\n", strerror(errno));
		exit(1);
	}
	unlink(node);
	rmdir(dir);
}

int main(void)
{
	Suite *s = suite_create("user");
	TCase *tc;

	fx_require_fuse();
	if (geteuid() != 0) {
		fprintf(stderr, "check_user: becoming another user needs root; skipping\n");
		return 77;
	}
	open_fuse_to_users();
	/* the daemons' default socket is then /tmp/sigbusfs-UID/PID.sock */
	unsetenv("XDG_RUNTIME_DIR");
	tc = fx_tcase(s, "own_mount", 60, setup_user, teardown, NULL);
	FX_ADD_TESTS(tc, test_user_owns_root, test_sigbusctl_as_user);
	tc = fx_tcase(s, "stale_socket", 60, NULL, NULL, NULL);
	FX_ADD_TESTS(tc, test_stale_socket_removed, test_signal_stops_cleanly,
		     test_background_daemon);
	tc = fx_tcase(s, "root_options", 60, setup_root_options, teardown, NULL);
	FX_ADD_TESTS(tc, test_root_options, test_readahead);
	tc = fx_tcase(s, "user_options", 60, setup_user_options, teardown, NULL);
	FX_ADD_TESTS(tc, test_user_options);
	tc = fx_tcase(s, "bad_options", 60, NULL, NULL, NULL);
	FX_ADD_TESTS(tc, test_bad_options);
	return fx_run_suite(s);
}
