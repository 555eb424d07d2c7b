/* The revocation rows of the semantics matrix (revoke, unplug, replug, abort) on a real
 * mount, driven through the control client library and observed from forked client
 * processes that
 * mapped and read a file before the event: shared, clean private and COWed private pages,
 * descriptors opened before it, and new opens and stats after it. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "client.h"
#include "ctlreq.h"
#include "fixture.h"
#include "touch.h"

#define PG	      4096
#define NPAGES	      4 /* page i of a test file is filled with 'A' + i */
#define COW_PAGE      1 /* the page a client writes through its MAP_PRIVATE mapping */
#define DIRTY_PAGE    2 /* the page a client dirties through MAP_SHARED before a revoke */
#define DIR_FILES     1000
#define EXIT_WAIT_MS  5000 /* how long a daemon whose connection was cut may take to exit */
#define FILE_SIZE     (NPAGES * PG)
#define FILL(i)	      ((char)('A' + (i)))
#define DIR_MAPPED(i) ((i) * (DIR_FILES - 1) / 3) /* the 4 files of the directory mapped */

static struct mnt mnt;
static int *aborted;		/* shared across fork: the abort test cut the connection */
static char pattern[FILE_SIZE]; /* a test file: page i filled with FILL(i) */

#define P(rel) fx_work_path(rel) /* rel in the running test's directory, for clients */
#define R(rel) fx_work_rel(rel)	 /* the same, relative to the mount root, for commands */

static void setup(void)
{
	fx_mount_or_fail(&mnt, "mem:64M", NULL);
}

static void teardown(void)
{
	fx_teardown(&mnt);
}

/* A control command on this test's mount that must succeed (CTL_OK) or fail with errno
 * err (CTL_ERR); the reply is left in *res. */
#define CTL_OK(res, ...)       fx_ctl_ok(&mnt, (res), __VA_ARGS__, (char *)NULL)
#define CTL_ERR(res, err, ...) fx_ctl_err(&mnt, (res), (err), __VA_ARGS__, (char *)NULL)

/* Writes a file of npages pages whose page i is filled with 'A' + i. */
static void make_file(const char *path, int npages)
{
	int rc = fx_write_file(path, pattern, (size_t)npages * PG);

	ck_assert_msg(rc == 0, "write %s: %s", path, strerror(-rc));
}

/* ---- checks run inside client processes: each returns 0 or FX_FAIL(...) ---- */

/* "path: what page N": what a check of one page of a view reports */
static const char *page_label(const char *path, const char *what, int page)
{
	static char label[PATH_MAX + 64];

	snprintf(label, sizeof(label), "%s: %s page %d", path, what, page);
	return label;
}

/* Every byte of [p, p+len) reads as val, without SIGBUS. */
static int expect_mapped(const char *path, const char *what, int page, volatile char *p, size_t len,
			 char val)
{
	return fx_expect_fill(page_label(path, what, page), p, 0, len, val);
}

/* Touching the byte at p raises SIGBUS. */
static int expect_sigbus(const char *path, const char *what, int page, volatile char *p,
			 bool is_write)
{
	return fx_expect_sigbus(page_label(path, what, page), p, 0, is_write);
}

/* n is what a call returned: 0 if it failed with err. Reads errno first. */
static int expect_err(const char *path, const char *what, long n, int err)
{
	return fx_expect_err(n, err, "%s: %s", path, what);
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
	FX_TRY(expect_err(path, "new open", -1, err));
	return expect_err(path, "stat", stat(path, &st), err);
}

/* A new open of path reads the file make_file() wrote, through pread and a new mapping. */
static int expect_backend_data(const char *path)
{
	volatile char *p;
	int rc = 0, fd = open(path, O_RDONLY);

	if (fd < 0)
		return FX_FAIL("%s: new open: %s", path, strerror(errno));
	rc = fx_expect_pread(path, fd, pattern, 0, FILE_SIZE);
	p = mmap(NULL, FILE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	if (rc == 0 && p == MAP_FAILED)
		rc = FX_FAIL("%s: mmap of a new descriptor: %s", path, strerror(errno));
	for (int i = 0; rc == 0 && i < NPAGES; i++)
		rc = expect_mapped(path, "new shared mapping", i, p + i * PG, PG, FILL(i));
	if (p != MAP_FAILED)
		munmap((void *)p, FILE_SIZE);
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
		FX_TRY(expect_mapped(path, "shared", i, v->sh + i * PG, PG, FILL(i)));
		FX_TRY(expect_mapped(path, "private", i, v->pv + i * PG, PG, FILL(i)));
	}
	FX_TRY(fx_write_bytes(page_label(path, "private", COW_PAGE), v->pv, COW_PAGE * PG, "z", 1));
	return expect_mapped(path, "COWed private", COW_PAGE, v->pv + COW_PAGE * PG, 1, 'z');
}

/* The descriptor opened before the event: pread, pwrite and fstat fail with err. */
static int view_fd_dead(const struct view *v, int err)
{
	char buf[16] = "written";
	struct stat st;

	FX_TRY(expect_err(v->path, "pread on the old descriptor",
			  pread(v->fd, buf, sizeof(buf), PG), err));
	FX_TRY(expect_err(v->path, "pwrite on the old descriptor",
			  pwrite(v->fd, buf, sizeof(buf), PG), err));
	return expect_err(v->path, "fstat on the old descriptor", fstat(v->fd, &st), err);
}

/* Every page of both mappings, the COWed one included, raises SIGBUS; the old descriptor
 * fails with err. */
static int view_dead(const struct view *v, int err)
{
	for (int i = 0; i < NPAGES; i++) {
		FX_TRY(expect_sigbus(v->path, "shared", i, v->sh + i * PG + 7, false));
		FX_TRY(expect_sigbus(v->path, i == COW_PAGE ? "COWed private" : "clean private", i,
				     v->pv + i * PG + 7, false));
	}
	FX_TRY(expect_sigbus(v->path, "shared", 0, v->sh, true));
	return view_fd_dead(v, err);
}

/* Nothing changed: mappings, COWed copy and the old descriptor all work. */
static int view_alive(const struct view *v)
{
	char buf[PG];
	struct stat st;

	for (int i = 0; i < NPAGES; i++) {
		FX_TRY(expect_mapped(v->path, "shared", i, v->sh + i * PG, PG, FILL(i)));
		if (i != COW_PAGE)
			FX_TRY(expect_mapped(v->path, "clean private", i, v->pv + i * PG, PG,
					     FILL(i)));
	}
	FX_TRY(expect_mapped(v->path, "COWed private", COW_PAGE, v->pv + COW_PAGE * PG, 1, 'z'));
	FX_TRY(expect_mapped(v->path, "COWed private", COW_PAGE, v->pv + COW_PAGE * PG + 1, PG - 1,
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

/* The event told the kernel size 0 for n files written through the mount (so that their
 * pages may be cached), all in one directory: by a listing of it, a stat for those the
 * listing missed; or by a stat each when they are too few for a listing (KERN_LIST_MIN). */
static void expect_sized(struct ctl_result *res, long long n)
{
	long long listed = fx_ctl_num(res, "listed"), stated = fx_ctl_num(res, "stated");

	ck_assert_msg(listed + stated == n && (n < 4 ? listed == 0 : listed > 0),
		      "sized %lld of %lld files by a listing and %lld by a stat", listed, n,
		      stated);
}

/* ---- row 1: revoke PATH [--errno E] ---- */

/* A peer holding views of f (to be revoked) and g (left alone). */
static int revoke_observer(int sock, const void *arg)
{
	int err = *(const int *)arg;
	struct view f, g;

	FX_TRY(view_open(&f, P("f")));
	FX_TRY(view_open(&g, P("g")));
	FX_TRY(fx_peer_wait_go(sock));
	FX_TRY(view_dead(&f, err));
	FX_TRY(expect_name_err(P("f"), err));
	FX_TRY(view_alive(&g));
	return expect_backend_data(P("g"));
}

/* Revokes f (with "--errno name" unless errname is NULL) under a peer's views. */
static void revoke_and_observe(int err, const char *errname)
{
	struct ctl_result res = { 0 };
	struct fx_peer o;

	make_file(P("f"), NPAGES);
	make_file(P("g"), NPAGES);
	fx_peer_start(&o, revoke_observer, &err);
	if (errname)
		CTL_OK(&res, "revoke", R("f"), "--errno", errname);
	else
		CTL_OK(&res, "revoke", R("f"));
	ck_assert_int_ge(fx_ctl_num(&res, "seq"), 1);
	ck_assert_int_eq(fx_ctl_num(&res, "files"), 1);
	ck_assert_int_eq(fx_ctl_num(&res, "dirs"), 0);
	ck_assert_pstr_eq(ctl_result_get(&res, "errno"), strerrorname_np(err));
	fx_peer_step(&o);
	fx_peer_finish(&o);
	ctl_result_free(&res);
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
	struct ctl_result res = { 0 };

	make_file(P("f"), NPAGES);
	make_file(P("g"), NPAGES);
	CTL_OK(&res, "revoke", R("f"));
	CTL_ERR(&res, EALREADY, "revoke", R("f"));
	ck_assert_msg(strstr(res.text, "already revoked"), "second revoke: unclear message: %s",
		      res.text);
	CTL_OK(&res, "status");
	CTL_OK(&res, "stats");
	fx_run_child(reads_g, NULL);
	ctl_result_free(&res);
}
END_TEST

/* Dirties page DIRTY_PAGE through MAP_SHARED, with no msync and the descriptor kept open
 * (closing it would flush the page to the daemon). */
static int dirty_observer(int sock, const void *arg)
{
	char dirt[64];
	struct view f;

	(void)arg;
	FX_TRY(view_open(&f, P("f")));
	memset(dirt, 'x', sizeof(dirt));
	if (touch_copy(f.sh + DIRTY_PAGE * PG, dirt, sizeof(dirt), NULL) == TOUCH_SIGBUS)
		return FX_FAIL("SIGBUS dirtying the shared page %d", DIRTY_PAGE);
	FX_TRY(fx_peer_wait_go(sock));
	return view_dead(&f, EIO);
}

static int reads_original_f(void *arg)
{
	(void)arg;
	return expect_backend_data(P("f"));
}

START_TEST(test_revoke_dirty_shared)
{
	struct ctl_result res = { 0 };
	long long lost_before;
	struct fx_peer o;

	make_file(P("f"), NPAGES);
	fx_peer_start(&o, dirty_observer, NULL);
	CTL_OK(&res, "stats");
	lost_before = fx_ctl_num(&res, "lost_bytes");
	ck_assert_int_ge(lost_before, 0);
	CTL_OK(&res, "revoke", R("f"));
	ck_assert_msg(fx_ctl_num(&res, "lost_bytes") > 0,
		      "revoke of a file with a dirty shared page lost nothing: %lld",
		      fx_ctl_num(&res, "lost_bytes"));
	CTL_OK(&res, "stats");
	ck_assert_int_gt(fx_ctl_num(&res, "lost_bytes"), lost_before);
	fx_peer_step(&o);
	fx_peer_finish(&o);
	CTL_OK(&res, "replug");
	/* the dirty bytes never reached the backend */
	fx_run_child(reads_original_f, NULL);
	ctl_result_free(&res);
}
END_TEST

static const char *dir_file(int i)
{
	char rel[32];

	snprintf(rel, sizeof(rel), "d/f%04d", i);
	return P(rel);
}

static int dir_observer(int sock, const void *arg)
{
	struct view v[4];

	(void)arg;
	for (int i = 0; i < 4; i++)
		FX_TRY(view_open(&v[i], dir_file(DIR_MAPPED(i))));
	FX_TRY(fx_peer_wait_go(sock));
	for (int i = 0; i < 4; i++)
		FX_TRY(view_dead(&v[i], EIO));
	return 0;
}

static int stats_dir_files(void *arg)
{
	struct stat st;

	(void)arg;
	FX_TRY(expect_err(P("d"), "stat of the revoked directory", stat(P("d"), &st), EIO));
	for (int i = 0; i < DIR_FILES; i++)
		FX_TRY(expect_err(dir_file(i), "stat", stat(dir_file(i), &st), EIO));
	return 0;
}

START_TEST(test_revoke_directory)
{
	struct ctl_result res = { 0 };
	struct fx_peer o;
	int rc;

	ck_assert_int_eq(mkdir(P("d"), 0755), 0);
	for (int i = 0; i < DIR_FILES; i++) {
		rc = fx_write_file(dir_file(i), "x", 1);
		ck_assert_msg(rc == 0, "write %s: %s", dir_file(i), strerror(-rc));
	}
	for (int i = 0; i < 4; i++)
		make_file(dir_file(DIR_MAPPED(i)), NPAGES);
	fx_peer_start(&o, dir_observer, NULL);
	CTL_OK(&res, "revoke", R("d"));
	ck_assert_int_eq(fx_ctl_num(&res, "files"), DIR_FILES);
	ck_assert_int_eq(fx_ctl_num(&res, "dirs"), 1);
	expect_sized(&res, DIR_FILES);
	ctl_result_free(&res);
	fx_peer_step(&o);
	fx_peer_finish(&o);
	fx_run_child(stats_dir_files, NULL);
}
END_TEST

/* ---- row 2: unplug [--vanish] ---- */

/* A peer holding views of f and g; after the unplug both are dead, and their names fail
 * with the errno arg points to. */
static int unplug_observer(int sock, const void *arg)
{
	int name_err = *(const int *)arg;
	struct view f, g;

	FX_TRY(view_open(&f, P("f")));
	FX_TRY(view_open(&g, P("g")));
	FX_TRY(fx_peer_wait_go(sock));
	FX_TRY(view_dead(&f, EIO));
	FX_TRY(view_dead(&g, EIO));
	FX_TRY(expect_name_err(P("f"), name_err));
	return expect_name_err(P("g"), name_err);
}

static void unplug_and_observe(int name_err, const char *vanish)
{
	struct ctl_result res = { 0 };
	struct fx_peer o;

	make_file(P("f"), NPAGES);
	make_file(P("g"), NPAGES);
	fx_peer_start(&o, unplug_observer, &name_err);
	if (vanish)
		CTL_OK(&res, "unplug", vanish);
	else
		CTL_OK(&res, "unplug");
	ck_assert_int_ge(fx_ctl_num(&res, "lost_bytes"), 0);
	expect_sized(&res, 2);
	fx_peer_step(&o);
	fx_peer_finish(&o);
	CTL_ERR(&res, EALREADY, "unplug");
	ck_assert_msg(strstr(res.text, "already unplugged"), "second unplug: unclear message: %s",
		      res.text);
	CTL_OK(&res, "status");
	ctl_result_free(&res);
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

/* A directory of files the kernel may cache pages of: the unplug gives them size 0
 * through a listing; their views die as any others, private copies included, and read(2)
 * meets the error, not end of file. */
#define UNPLUG_DIR_FILES 8

static const char *unplug_dir_file(int i)
{
	char rel[32];

	snprintf(rel, sizeof(rel), "u/f%d", i);
	return P(rel);
}

static int unplug_dir_observer(int sock, const void *arg)
{
	struct view v[UNPLUG_DIR_FILES];

	(void)arg;
	for (int i = 0; i < UNPLUG_DIR_FILES; i++)
		FX_TRY(view_open(&v[i], unplug_dir_file(i)));
	FX_TRY(fx_peer_wait_go(sock));
	for (int i = 0; i < UNPLUG_DIR_FILES; i++)
		FX_TRY(view_dead(&v[i], EIO));
	return 0;
}

START_TEST(test_unplug_directory)
{
	struct ctl_result res = { 0 };
	struct fx_peer o;

	ck_assert_int_eq(mkdir(P("u"), 0755), 0);
	for (int i = 0; i < UNPLUG_DIR_FILES; i++)
		make_file(unplug_dir_file(i), NPAGES);
	fx_peer_start(&o, unplug_dir_observer, NULL);
	CTL_OK(&res, "unplug");
	expect_sized(&res, UNPLUG_DIR_FILES);
	fx_peer_step(&o);
	fx_peer_finish(&o);
	ctl_result_free(&res);
}
END_TEST

/* ---- row 3: replug ---- */

/* After the event and the replug, and after another process opened f again: f's old views
 * stay dead, a new open works; g, if it was left alone, still works. */
struct replug_case {
	bool is_g_alive; /* a revoke of f only: g's views must still work */
};

static int replug_observer(int sock, const void *arg)
{
	const struct replug_case *c = arg;
	struct view f, g;

	FX_TRY(view_open(&f, P("f")));
	FX_TRY(view_open(&g, P("g")));
	FX_TRY(fx_peer_wait_go(sock));
	FX_TRY(view_dead(&f, EIO));
	FX_TRY(expect_backend_data(P("f")));
	/* the new open above refilled f's page cache: the old views must not see it */
	FX_TRY(view_dead(&f, EIO));
	if (c->is_g_alive)
		FX_TRY(view_alive(&g));
	else
		FX_TRY(view_dead(&g, EIO));
	return expect_backend_data(P("g"));
}

/* Runs "sigbusctl cmd [arg]" under a peer, replugs, refills f's page cache from another
 * process, then lets the peer look. */
static void replug_after(const char *cmd, const char *arg, const struct replug_case *c,
			 long long revived)
{
	struct ctl_result res = { 0 };
	struct fx_peer o;

	make_file(P("f"), NPAGES);
	make_file(P("g"), NPAGES);
	fx_peer_start(&o, replug_observer, c);
	CTL_OK(&res, cmd, arg);
	CTL_OK(&res, "replug");
	ck_assert_msg(fx_ctl_num(&res, "revived") >= revived, "replug revived too few: %lld",
		      fx_ctl_num(&res, "revived"));
	ck_assert_ptr_nonnull(ctl_result_get(&res, "names"));
	ctl_result_free(&res);
	fx_run_child(reads_original_f, NULL);
	fx_peer_step(&o);
	fx_peer_finish(&o);
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
static int abort_observer(int sock, const void *arg)
{
	char buf[PG];
	struct view f, u;

	(void)arg;
	FX_TRY(view_open(&f, P("f")));
	snprintf(u.path, sizeof(u.path), "%s", P("u"));
	u.fd = open(u.path, O_RDWR);
	u.sh = mmap(NULL, FILE_SIZE, PROT_READ, MAP_SHARED, u.fd, 0);
	if (u.fd < 0 || u.sh == MAP_FAILED)
		return FX_FAIL("%s: open or mmap: %s", u.path, strerror(errno));
	FX_TRY(fx_peer_wait_go(sock));
	for (int i = 0; i < NPAGES; i++) {
		FX_TRY(expect_mapped(f.path, "cached shared", i, f.sh + i * PG, PG, FILL(i)));
		if (i != COW_PAGE)
			FX_TRY(expect_mapped(f.path, "cached private", i, f.pv + i * PG, PG,
					     FILL(i)));
	}
	FX_TRY(expect_mapped(f.path, "COWed private", COW_PAGE, f.pv + COW_PAGE * PG, 1, 'z'));
	FX_TRY(expect_sigbus(u.path, "uncached shared", 0, u.sh, false));
	FX_TRY(expect_sigbus(u.path, "uncached shared", NPAGES - 1, u.sh + FILE_SIZE - 1, false));
	FX_TRY(expect_err(u.path, "pread of uncached data", pread(u.fd, buf, PG, 0), ENOTCONN));
	FX_TRY(expect_err(u.path, "pwrite", pwrite(u.fd, buf, PG, 0), ENOTCONN));
	/* kernel, not daemon: the page cache outlives the connection (README, "The semantics
	 * matrix", note 3) */
	if (pread(f.fd, buf, PG, 2 * PG) != PG || buf[0] != FILL(2))
		return FX_FAIL("%s: pread of cached data after abort: %s", f.path, strerror(errno));
	FX_TRY(expect_name_err(f.path, ENOTCONN));
	return expect_name_err(u.path, ENOTCONN);
}

START_TEST(test_abort)
{
	struct ctl_result res = { 0 };
	struct fx_peer o;

	make_file(P("f"), NPAGES);
	make_file(P("u"), NPAGES);
	/* writing u filled its page cache */
	CTL_OK(&res, "inval", R("u"));
	fx_peer_start(&o, abort_observer, NULL);
	CTL_OK(&res, "abort");
	*aborted = 1;
	fx_peer_step(&o);
	fx_peer_finish(&o);
	ctl_result_free(&res);
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
	fx_teardown_fail("abort teardown: %s", what);
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
		{ "unplug_directory", setup, teardown, { test_unplug_directory } },
		{ "replug",
		  setup,
		  teardown,
		  { test_replug_after_revoke, test_replug_after_unplug } },
		{ "abort", abort_setup, abort_teardown, { test_abort } },
	};
	Suite *s = suite_create("revoke");

	for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++)
		fx_add_tests(fx_tcase(s, defs[i].name, 30, defs[i].setup, defs[i].teardown,
				      fx_enter_workdir),
			     defs[i].tests);
	return s;
}

int main(void)
{
	fx_require_fuse();
	for (size_t i = 0; i < FILE_SIZE; i++)
		pattern[i] = FILL(i / PG);
	return fx_run_suite(revoke_suite());
}
