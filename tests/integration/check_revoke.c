/* The revocation rows of the semantics matrix (revoke, unplug, replug, abort) on a real
 * mount, driven by the real sigbusctl and observed from forked client processes that
 * mapped and read a file before the event: shared, clean private and COWed private pages,
 * descriptors opened before it, and new opens and stats after it. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctlrun.h"
#include "fixture.h"

#define PG	      4096
#define NPAGES	      4 /* page i of a test file is filled with 'A' + i */
#define COW_PAGE      1 /* the page a client writes through its MAP_PRIVATE mapping */
#define DIRTY_PAGE    2 /* the page a client dirties through MAP_SHARED before a revoke */
#define DIR_FILES     1000
#define OUT_MAX	      8192
#define EXIT_WAIT_MS  5000 /* how long a daemon whose connection was cut may take to exit */
#define CTL_FAILED    1	   /* sigbusctl: the command failed */
#define FILE_SIZE     (NPAGES * PG)
#define FILL(i)	      ((char)('A' + (i)))
#define DIR_MAPPED(i) ((i) * (DIR_FILES - 1) / 3) /* the 4 files of the directory mapped */

static struct mnt mnt;
static int teardown_failures;
static char workdir[192]; /* this test's own directory in the mount */
static char relwork[64];  /* the same, relative to the mount root, for sigbusctl */
static int *aborted;	  /* shared across fork: the abort test cut the connection */

/* base/rel in one of a few rotating buffers */
static const char *join(const char *base, const char *rel)
{
	static char bufs[8][PATH_MAX];
	static unsigned next;
	char *b = bufs[next++ % 8];
	int n = snprintf(b, PATH_MAX, "%s/%s", base, rel);

	ck_assert(n > 0 && n < PATH_MAX);
	return b;
}

/* a path in this test's directory, for clients */
static const char *P(const char *rel)
{
	return join(workdir, rel);
}

/* the same path relative to the mount root, for sigbusctl */
static const char *R(const char *rel)
{
	return join(relwork, rel);
}

static void enter_workdir(void)
{
	static unsigned n; /* with CK_FORK=no, tests share one process */

	snprintf(relwork, sizeof(relwork), "t%d-%u", (int)getpid(), n++);
	fx_path(&mnt, relwork, workdir, sizeof(workdir));
	ck_assert_msg(mkdir(workdir, 0755) == 0, "mkdir %s: %s", workdir, strerror(errno));
}

static void setup(void)
{
	int rc = fx_mount(&mnt, "mem:64M", NULL);

	ck_assert_msg(rc == 0, "fx_mount: %s", strerror(-rc));
}

static void teardown(void)
{
	int rc = fx_umount(&mnt);

	if (rc != 0) {
		fprintf(stderr, "teardown: the daemon ended with %d, expected a clean exit 0\n",
			rc);
		teardown_failures++;
	}
}

/* Runs sigbusctl on this test's mount with the output in out (a char array). */
#define CTL(out, ...) fx_ctl(&mnt, out, sizeof(out), __VA_ARGS__, (char *)NULL)
#define CTL_OK(out, ...)                                                                        \
	do {                                                                                    \
		int ctl_rc_ = CTL(out, __VA_ARGS__);                                            \
		ck_assert_msg(ctl_rc_ == 0, "sigbusctl %s: exit %d: %s", #__VA_ARGS__, ctl_rc_, \
			      out);                                                             \
	} while (0)

/* Writes a file of npages pages whose page i is filled with 'A' + i. */
static void make_file(const char *path, int npages)
{
	static char buf[NPAGES * PG];
	int rc;

	for (int i = 0; i < npages; i++)
		memset(buf + i * PG, FILL(i), PG);
	rc = fx_write_file(path, buf, (size_t)npages * PG);
	ck_assert_msg(rc == 0, "write %s: %s", path, strerror(-rc));
}

/* ---- checks run inside client processes: each returns 0 or FX_FAIL(...) ---- */

#define TRY(expr)                   \
	do {                        \
		int rc_ = (expr);   \
		if (rc_)            \
			return rc_; \
	} while (0)

/* Every byte of [p, p+len) reads as val, without SIGBUS. */
static int expect_mapped(const char *path, const char *what, int page, volatile char *p, size_t len,
			 char val)
{
	for (size_t i = 0; i < len; i++) {
		char c;

		if (fx_touch(p + i, false, 0, &c) == FX_SIGBUS)
			return FX_FAIL("%s: %s page %d: SIGBUS at +%zu, expected '%c'", path, what,
				       page, i, val);
		if (c != val)
			return FX_FAIL("%s: %s page %d: byte +%zu is 0x%02x, expected '%c'", path,
				       what, page, i, (unsigned char)c, val);
	}
	return 0;
}

/* Touching the byte at p raises SIGBUS. */
static int expect_sigbus(const char *path, const char *what, int page, volatile char *p,
			 bool is_write)
{
	char c = 0;

	if (fx_touch(p, is_write, 'w', &c) != FX_SIGBUS)
		return FX_FAIL("%s: %s page %d: %s without SIGBUS (byte 0x%02x)", path, what, page,
			       is_write ? "wrote" : "read", (unsigned char)c);
	return 0;
}

/* n is what a call returned: 0 if it failed with err. Reads errno first. */
static int expect_err(const char *path, const char *what, long n, int err)
{
	int e = errno;

	if (n == -1 && e == err)
		return 0;
	if (n == -1)
		return FX_FAIL("%s: %s: %s, expected %s", path, what, strerrorname_np(e),
			       strerrorname_np(err));
	return FX_FAIL("%s: %s returned %ld, expected %s", path, what, n, strerrorname_np(err));
}

/* A new open and a stat of path both fail with err. */
static int expect_name_err(const char *path, int err)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	int e = errno;

	if (fd >= 0) {
		close(fd);
		return FX_FAIL("%s: a new open succeeded, expected %s", path, strerrorname_np(err));
	}
	errno = e;
	TRY(expect_err(path, "new open", -1, err));
	return expect_err(path, "stat", stat(path, &st), err);
}

/* A new open of path reads the file make_file() wrote, through pread and a new mapping. */
static int expect_backend_data(const char *path)
{
	static char buf[FILE_SIZE];
	volatile char *p;
	int rc = 0, fd = open(path, O_RDONLY);

	if (fd < 0)
		return FX_FAIL("%s: new open: %s", path, strerror(errno));
	if (pread(fd, buf, sizeof(buf), 0) != FILE_SIZE) {
		rc = FX_FAIL("%s: pread through a new descriptor: %s", path, strerror(errno));
		goto out_close;
	}
	for (size_t i = 0; i < sizeof(buf) && rc == 0; i++) {
		if (buf[i] != FILL(i / PG))
			rc = FX_FAIL("%s: new descriptor: byte %zu is 0x%02x, expected '%c'", path,
				     i, (unsigned char)buf[i], FILL(i / PG));
	}
	p = mmap(NULL, FILE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	if (rc == 0 && p == MAP_FAILED)
		rc = FX_FAIL("%s: mmap of a new descriptor: %s", path, strerror(errno));
	for (int i = 0; rc == 0 && i < NPAGES; i++)
		rc = expect_mapped(path, "new shared mapping", i, p + i * PG, PG, FILL(i));
	if (p != MAP_FAILED)
		munmap((void *)p, FILE_SIZE);
out_close:
	close(fd);
	return rc;
}

/* What a client holds on one file from before an event. */
struct view {
	char path[PATH_MAX];
	int fd;		   /* O_RDWR */
	volatile char *sh; /* MAP_SHARED, every page read */
	volatile char *pv; /* MAP_PRIVATE, every page read, page COW_PAGE written ('z') */
};

static int view_open(struct view *v, const char *path)
{
	snprintf(v->path, sizeof(v->path), "%s", path);
	v->fd = open(path, O_RDWR);
	if (v->fd < 0)
		return FX_FAIL("%s: open: %s", path, strerror(errno));
	v->sh = mmap(NULL, FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	v->pv = mmap(NULL, FILE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, v->fd, 0);
	if (v->sh == MAP_FAILED || v->pv == MAP_FAILED)
		return FX_FAIL("%s: mmap: %s", path, strerror(errno));
	for (int i = 0; i < NPAGES; i++) {
		TRY(expect_mapped(path, "shared", i, v->sh + i * PG, PG, FILL(i)));
		TRY(expect_mapped(path, "private", i, v->pv + i * PG, PG, FILL(i)));
	}
	if (fx_touch(v->pv + COW_PAGE * PG, true, 'z', NULL) == FX_SIGBUS)
		return FX_FAIL("%s: SIGBUS writing the private page %d", path, COW_PAGE);
	return expect_mapped(path, "COWed private", COW_PAGE, v->pv + COW_PAGE * PG, 1, 'z');
}

/* The descriptor opened before the event: pread, pwrite and fstat fail with err. */
static int view_fd_dead(const struct view *v, int err)
{
	char buf[16] = "written";
	struct stat st;

	TRY(expect_err(v->path, "pread on the old descriptor", pread(v->fd, buf, sizeof(buf), PG),
		       err));
	TRY(expect_err(v->path, "pwrite on the old descriptor", pwrite(v->fd, buf, sizeof(buf), PG),
		       err));
	return expect_err(v->path, "fstat on the old descriptor", fstat(v->fd, &st), err);
}

/* Every page of both mappings, the COWed one included, raises SIGBUS; the old descriptor
 * fails with err. */
static int view_dead(const struct view *v, int err)
{
	for (int i = 0; i < NPAGES; i++) {
		TRY(expect_sigbus(v->path, "shared", i, v->sh + i * PG + 7, false));
		TRY(expect_sigbus(v->path, i == COW_PAGE ? "COWed private" : "clean private", i,
				  v->pv + i * PG + 7, false));
	}
	TRY(expect_sigbus(v->path, "shared", 0, v->sh, true));
	return view_fd_dead(v, err);
}

/* Nothing changed: mappings, COWed copy and the old descriptor all work. */
static int view_alive(const struct view *v)
{
	char buf[PG];
	struct stat st;

	for (int i = 0; i < NPAGES; i++) {
		TRY(expect_mapped(v->path, "shared", i, v->sh + i * PG, PG, FILL(i)));
		if (i != COW_PAGE)
			TRY(expect_mapped(v->path, "clean private", i, v->pv + i * PG, PG,
					  FILL(i)));
	}
	TRY(expect_mapped(v->path, "COWed private", COW_PAGE, v->pv + COW_PAGE * PG, 1, 'z'));
	TRY(expect_mapped(v->path, "COWed private", COW_PAGE, v->pv + COW_PAGE * PG + 1, PG - 1,
			  FILL(COW_PAGE)));
	if (pread(v->fd, buf, PG, 3 * PG) != PG || buf[0] != FILL(3) || buf[PG - 1] != FILL(3))
		return FX_FAIL("%s: pread on the old descriptor: %s", v->path, strerror(errno));
	if (pwrite(v->fd, buf, 1, 3 * PG) != 1)
		return FX_FAIL("%s: pwrite on the old descriptor: %s", v->path, strerror(errno));
	if (fstat(v->fd, &st) < 0)
		return FX_FAIL("%s: fstat on the old descriptor: %s", v->path, strerror(errno));
	if (st.st_size != FILE_SIZE)
		return FX_FAIL("%s: fstat on the old descriptor: size %lld", v->path,
			       (long long)st.st_size);
	return 0;
}

/* ---- client processes that run in steps, as in check_mmap.c ---- */

struct peer {
	pid_t pid;
	int to_peer;   /* the test writes 'g' here: go on */
	int from_peer; /* the peer writes 'r' here: step done */
};

typedef int (*peer_fn)(int rd, int wr, void *arg);

/* In the peer: reports the step done and waits for the test to act. */
static int peer_wait_go(int rd, int wr)
{
	char c = 'r';

	if (write(wr, &c, 1) != 1 || read(rd, &c, 1) != 1)
		return FX_FAIL("the test went away");
	return 0;
}

static void peer_start(struct peer *p, peer_fn fn, void *arg)
{
	int down[2], up[2];

	ck_assert_int_eq(pipe(down), 0);
	ck_assert_int_eq(pipe(up), 0);
	fx_fail_clear();
	fflush(stdout);
	fflush(stderr);
	p->pid = fork();
	ck_assert_int_ge(p->pid, 0);
	if (p->pid == 0) {
		close(down[1]);
		close(up[0]);
		_exit(fn(down[0], up[1], arg));
	}
	close(down[0]);
	close(up[1]);
	p->to_peer = down[1];
	p->from_peer = up[0];
}

/* Waits until the peer finished its current step; fails the test if it exited instead. */
static void peer_step_done(struct peer *p)
{
	char c;
	int status;

	if (read(p->from_peer, &c, 1) == 1)
		return;
	waitpid(p->pid, &status, 0);
	ck_abort_msg("client process ended early (status 0x%x): %s", status, fx_failure());
}

static void peer_go(struct peer *p)
{
	char c = 'g';

	ck_assert_int_eq(write(p->to_peer, &c, 1), 1);
}

static void peer_finish(struct peer *p)
{
	int status;

	close(p->to_peer);
	close(p->from_peer);
	ck_assert_int_eq(waitpid(p->pid, &status, 0), p->pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "client process failed (status 0x%x): %s", status, fx_failure());
}

static void run_child(int (*fn)(void *), void *arg)
{
	int rc = fx_child(fn, arg);

	ck_assert_msg(rc == 0, "client process ended with %d: %s", rc, fx_failure());
}

/* ---- row 1: revoke PATH [--errno E] ---- */

/* A peer holding views of f (to be revoked) and g (left alone). */
static int revoke_observer(int rd, int wr, void *arg)
{
	int err = *(int *)arg;
	struct view f, g;

	TRY(view_open(&f, P("f")));
	TRY(view_open(&g, P("g")));
	TRY(peer_wait_go(rd, wr));
	TRY(view_dead(&f, err));
	TRY(expect_name_err(P("f"), err));
	TRY(view_alive(&g));
	return expect_backend_data(P("g"));
}

/* Revokes f (with "--errno name" unless errname is NULL) under a peer's views. */
static void revoke_and_observe(int err, const char *errname)
{
	char out[OUT_MAX], want[64];
	struct peer o;

	make_file(P("f"), NPAGES);
	make_file(P("g"), NPAGES);
	peer_start(&o, revoke_observer, &err);
	peer_step_done(&o);
	if (errname)
		CTL_OK(out, "revoke", R("f"), "--errno", errname);
	else
		CTL_OK(out, "revoke", R("f"));
	ck_assert_int_ge(fx_ctl_value(out, "seq"), 1);
	ck_assert_int_eq(fx_ctl_value(out, "files"), 1);
	ck_assert_int_eq(fx_ctl_value(out, "dirs"), 0);
	snprintf(want, sizeof(want), "errno: %s\n", strerrorname_np(err));
	ck_assert_msg(strstr(out, want), "revoke: no \"%s\" in: %s", want, out);
	peer_go(&o);
	peer_finish(&o);
}

START_TEST(test_revoke_file)
{
	revoke_and_observe(EIO, NULL);
}
END_TEST

START_TEST(test_revoke_errno)
{
	revoke_and_observe(ENXIO, "ENXIO");
}
END_TEST

static int reads_g(void *arg)
{
	(void)arg;
	return expect_backend_data(P("g"));
}

START_TEST(test_revoke_twice)
{
	char out[OUT_MAX];
	int rc;

	make_file(P("f"), NPAGES);
	make_file(P("g"), NPAGES);
	CTL_OK(out, "revoke", R("f"));
	rc = CTL(out, "revoke", R("f"));
	ck_assert_int_eq(rc, CTL_FAILED);
	ck_assert_msg(strstr(out, "already revoked"), "second revoke: unclear message: %s", out);
	CTL_OK(out, "status");
	CTL_OK(out, "stats");
	run_child(reads_g, NULL);
}
END_TEST

/* Dirties page DIRTY_PAGE through MAP_SHARED, with no msync and the descriptor kept open
 * (closing it would flush the page to the daemon). */
static int dirty_observer(int rd, int wr, void *arg)
{
	struct view f;

	(void)arg;
	TRY(view_open(&f, P("f")));
	for (int i = 0; i < 64; i++) {
		if (fx_touch(f.sh + DIRTY_PAGE * PG + i, true, 'x', NULL) == FX_SIGBUS)
			return FX_FAIL("SIGBUS dirtying the shared page %d", DIRTY_PAGE);
	}
	TRY(peer_wait_go(rd, wr));
	return view_dead(&f, EIO);
}

static int reads_original_f(void *arg)
{
	(void)arg;
	return expect_backend_data(P("f"));
}

START_TEST(test_revoke_dirty_shared)
{
	char out[OUT_MAX];
	long long lost_before;
	struct peer o;

	make_file(P("f"), NPAGES);
	peer_start(&o, dirty_observer, NULL);
	peer_step_done(&o);
	CTL_OK(out, "stats");
	lost_before = fx_ctl_value(out, "lost_bytes");
	ck_assert_int_ge(lost_before, 0);
	CTL_OK(out, "revoke", R("f"));
	ck_assert_msg(fx_ctl_value(out, "lost_bytes") > 0,
		      "revoke of a file with a dirty shared page lost nothing: %s", out);
	CTL_OK(out, "stats");
	ck_assert_int_gt(fx_ctl_value(out, "lost_bytes"), lost_before);
	peer_go(&o);
	peer_finish(&o);
	CTL_OK(out, "replug");
	/* the dirty bytes never reached the backend */
	run_child(reads_original_f, NULL);
}
END_TEST

static const char *dir_file(int i)
{
	char rel[32];

	snprintf(rel, sizeof(rel), "d/f%04d", i);
	return P(rel);
}

static int dir_observer(int rd, int wr, void *arg)
{
	struct view v[4];

	(void)arg;
	for (int i = 0; i < 4; i++)
		TRY(view_open(&v[i], dir_file(DIR_MAPPED(i))));
	TRY(peer_wait_go(rd, wr));
	for (int i = 0; i < 4; i++)
		TRY(view_dead(&v[i], EIO));
	return 0;
}

static int stats_dir_files(void *arg)
{
	struct stat st;

	(void)arg;
	TRY(expect_err(P("d"), "stat of the revoked directory", stat(P("d"), &st), EIO));
	for (int i = 0; i < DIR_FILES; i++)
		TRY(expect_err(dir_file(i), "stat", stat(dir_file(i), &st), EIO));
	return 0;
}

START_TEST(test_revoke_directory)
{
	char out[OUT_MAX];
	struct peer o;
	int rc;

	ck_assert_int_eq(mkdir(P("d"), 0755), 0);
	for (int i = 0; i < DIR_FILES; i++) {
		rc = fx_write_file(dir_file(i), "x", 1);
		ck_assert_msg(rc == 0, "write %s: %s", dir_file(i), strerror(-rc));
	}
	for (int i = 0; i < 4; i++)
		make_file(dir_file(DIR_MAPPED(i)), NPAGES);
	peer_start(&o, dir_observer, NULL);
	peer_step_done(&o);
	CTL_OK(out, "revoke", R("d"));
	ck_assert_int_eq(fx_ctl_value(out, "files"), DIR_FILES);
	ck_assert_int_eq(fx_ctl_value(out, "dirs"), 1);
	peer_go(&o);
	peer_finish(&o);
	run_child(stats_dir_files, NULL);
}
END_TEST

/* ---- row 2: unplug [--vanish] ---- */

/* A peer holding views of f and g; after the unplug both are dead, and their names fail
 * with the errno arg points to. */
static int unplug_observer(int rd, int wr, void *arg)
{
	int name_err = *(int *)arg;
	struct view f, g;

	TRY(view_open(&f, P("f")));
	TRY(view_open(&g, P("g")));
	TRY(peer_wait_go(rd, wr));
	TRY(view_dead(&f, EIO));
	TRY(view_dead(&g, EIO));
	TRY(expect_name_err(P("f"), name_err));
	return expect_name_err(P("g"), name_err);
}

static void unplug_and_observe(int name_err, const char *vanish)
{
	char out[OUT_MAX];
	struct peer o;
	int rc;

	make_file(P("f"), NPAGES);
	make_file(P("g"), NPAGES);
	peer_start(&o, unplug_observer, &name_err);
	peer_step_done(&o);
	if (vanish)
		CTL_OK(out, "unplug", vanish);
	else
		CTL_OK(out, "unplug");
	ck_assert_int_ge(fx_ctl_value(out, "lost_bytes"), 0);
	peer_go(&o);
	peer_finish(&o);
	rc = CTL(out, "unplug");
	ck_assert_int_eq(rc, CTL_FAILED);
	ck_assert_msg(strstr(out, "already unplugged"), "second unplug: unclear message: %s", out);
	CTL_OK(out, "status");
}

START_TEST(test_unplug)
{
	unplug_and_observe(EIO, NULL);
}
END_TEST

START_TEST(test_unplug_vanish)
{
	unplug_and_observe(ENOENT, "--vanish");
}
END_TEST

/* ---- row 3: replug ---- */

/* After the event and the replug, and after another process opened f again: f's old views
 * stay dead, a new open works; g, if it was left alone, still works. */
struct replug_case {
	bool is_g_alive; /* a revoke of f only: g's views must still work */
};

static int replug_observer(int rd, int wr, void *arg)
{
	const struct replug_case *c = arg;
	struct view f, g;

	TRY(view_open(&f, P("f")));
	TRY(view_open(&g, P("g")));
	TRY(peer_wait_go(rd, wr));
	TRY(view_dead(&f, EIO));
	TRY(expect_backend_data(P("f")));
	/* the new open above refilled f's page cache: the old views must not see it */
	TRY(view_dead(&f, EIO));
	if (c->is_g_alive)
		TRY(view_alive(&g));
	else
		TRY(view_dead(&g, EIO));
	return expect_backend_data(P("g"));
}

/* Runs "sigbusctl cmd [arg]" under a peer, replugs, refills f's page cache from another
 * process, then lets the peer look. */
static void replug_after(const char *cmd, const char *arg, const struct replug_case *c,
			 long long revived)
{
	char out[OUT_MAX];
	struct peer o;

	make_file(P("f"), NPAGES);
	make_file(P("g"), NPAGES);
	peer_start(&o, replug_observer, (void *)c);
	peer_step_done(&o);
	CTL_OK(out, cmd, arg);
	CTL_OK(out, "replug");
	ck_assert_msg(fx_ctl_value(out, "revived") >= revived, "replug revived too few: %s", out);
	ck_assert_int_ge(fx_ctl_value(out, "names_dropped"), 1);
	run_child(reads_original_f, NULL);
	peer_go(&o);
	peer_finish(&o);
}

START_TEST(test_replug_after_revoke)
{
	struct replug_case c = { .is_g_alive = true };

	replug_after("revoke", R("f"), &c, 1);
}
END_TEST

START_TEST(test_replug_after_unplug)
{
	struct replug_case c = { .is_g_alive = false };

	replug_after("unplug", NULL, &c, 2);
}
END_TEST

/* ---- row 4: abort ---- */

/* f was read through its mappings before the abort (cached); u was opened and mapped
 * but never read (uncached). */
static int abort_observer(int rd, int wr, void *arg)
{
	char buf[PG];
	struct view f, u;

	(void)arg;
	TRY(view_open(&f, P("f")));
	snprintf(u.path, sizeof(u.path), "%s", P("u"));
	u.fd = open(u.path, O_RDWR);
	u.sh = mmap(NULL, FILE_SIZE, PROT_READ, MAP_SHARED, u.fd, 0);
	if (u.fd < 0 || u.sh == MAP_FAILED)
		return FX_FAIL("%s: open or mmap: %s", u.path, strerror(errno));
	TRY(peer_wait_go(rd, wr));
	for (int i = 0; i < NPAGES; i++) {
		TRY(expect_mapped(f.path, "cached shared", i, f.sh + i * PG, PG, FILL(i)));
		if (i != COW_PAGE)
			TRY(expect_mapped(f.path, "cached private", i, f.pv + i * PG, PG, FILL(i)));
	}
	TRY(expect_mapped(f.path, "COWed private", COW_PAGE, f.pv + COW_PAGE * PG, 1, 'z'));
	TRY(expect_sigbus(u.path, "uncached shared", 0, u.sh, false));
	TRY(expect_sigbus(u.path, "uncached shared", NPAGES - 1, u.sh + FILE_SIZE - 1, false));
	TRY(expect_err(u.path, "pread of uncached data", pread(u.fd, buf, PG, 0), ENOTCONN));
	TRY(expect_err(u.path, "pwrite", pwrite(u.fd, buf, PG, 0), ENOTCONN));
	/* kernel, not daemon: the page cache outlives the connection (kernel-fuse.md 4) */
	if (pread(f.fd, buf, PG, 2 * PG) != PG || buf[0] != FILL(2))
		return FX_FAIL("%s: pread of cached data after abort: %s", f.path, strerror(errno));
	TRY(expect_name_err(f.path, ENOTCONN));
	return expect_name_err(u.path, ENOTCONN);
}

START_TEST(test_abort)
{
	char out[OUT_MAX];
	struct peer o;

	make_file(P("f"), NPAGES);
	make_file(P("u"), NPAGES);
	/* writing u filled its page cache */
	CTL_OK(out, "inval", R("u"));
	peer_start(&o, abort_observer, NULL);
	peer_step_done(&o);
	CTL_OK(out, "abort");
	*aborted = 1;
	peer_go(&o);
	peer_finish(&o);
}
END_TEST

static void abort_setup(void)
{
	aborted = mmap(NULL, sizeof(*aborted), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		       -1, 0);
	ck_assert(aborted != MAP_FAILED);
	*aborted = 0;
	setup();
}

/* Whether /proc/self/mountinfo lists dir as a mount point. */
static bool is_mount_point(const char *dir)
{
	char line[4096], mp[4096];
	bool found = false;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	while (f && !found && fgets(line, sizeof(line), f))
		found = sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && strcmp(mp, dir) == 0;
	if (f)
		fclose(f);
	return found;
}

/* Whether process pid (a child, not reaped) exits within ms milliseconds. */
static bool exits_within(pid_t pid, int ms)
{
	struct pollfd p = { .events = POLLIN };
	bool exited;

	p.fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (p.fd < 0)
		return false;
	exited = poll(&p, 1, ms) == 1;
	close(p.fd);
	return exited;
}

static void abort_fail(const char *what)
{
	fprintf(stderr, "abort teardown: %s\n", what);
	teardown_failures++;
}

/* After abort the daemon exits by itself and leaves the mount; fx_umount() cleans up. */
static void abort_teardown(void)
{
	char dir[sizeof(mnt.dir)];
	int rc;

	snprintf(dir, sizeof(dir), "%s", mnt.dir);
	if (*aborted && !exits_within(mnt.pid, EXIT_WAIT_MS))
		abort_fail("the daemon is still running after abort");
	if (*aborted && !is_mount_point(dir))
		abort_fail("the mount is gone after abort, expected it left in place");
	rc = fx_umount(&mnt);
	if (rc < 0)
		abort_fail("fx_umount could not reap the daemon");
	else
		fprintf(stderr, "abort teardown: the daemon exited with %d\n", rc);
	if (is_mount_point(dir))
		abort_fail("still mounted after fx_umount");
	munmap(aborted, sizeof(*aborted));
}

/* ---- the suite ---- */

struct tcase_def {
	const char *name;
	void (*setup)(void);
	void (*teardown)(void);
	const TTest *tests[6];
};

static Suite *revoke_suite(void)
{
	/* one mount per TCase: rows whose event takes down the whole mount get one TCase
	 * per test */
	const struct tcase_def defs[] = {
		{ "revoke",
		  setup,
		  teardown,
		  { test_revoke_file, test_revoke_errno, test_revoke_twice,
		    test_revoke_dirty_shared, test_revoke_directory } },
		{ "unplug", setup, teardown, { test_unplug } },
		{ "unplug_vanish", setup, teardown, { test_unplug_vanish } },
		{ "replug",
		  setup,
		  teardown,
		  { test_replug_after_revoke, test_replug_after_unplug } },
		{ "abort", abort_setup, abort_teardown, { test_abort } },
	};
	Suite *s = suite_create("revoke");

	for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
		TCase *tc = tcase_create(defs[i].name);

		tcase_add_unchecked_fixture(tc, defs[i].setup, defs[i].teardown);
		tcase_add_checked_fixture(tc, enter_workdir, NULL);
		tcase_set_timeout(tc, 30);
		for (size_t t = 0; defs[i].tests[t]; t++)
			tcase_add_test(tc, defs[i].tests[t]);
		suite_add_tcase(s, tc);
	}
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	fx_require_fuse();
	sr = srunner_create(revoke_suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 && teardown_failures == 0 ? 0 : 1;
}
