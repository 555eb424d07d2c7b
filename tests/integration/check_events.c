/* The semantics matrix (DESIGN.md), one TCase per row: a server-side event run with the
 * real sigbusctl, observed from a forked client process through a MAP_SHARED mapping, a
 * clean and a COWed MAP_PRIVATE page, a descriptor opened before the event and a new open.
 * Client-side changes (ftruncate, write(2) from elsewhere) live in check_mmap.c. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "ctl_client.h"
#include "ctlrun.h"
#include "fixture.h"

#define PG     4096
#define NPG    4
#define FSIZE  (NPG * PG)	/* the test file: page i is filled with 'A' + i */
#define MAPMAX ((NPG + 1) * PG) /* what a client maps: a page past the end of the file */

static struct mnt mnt;
static char fpath[PATH_MAX]; /* the test file, its own directory for each test */
static char frel[64];	     /* the same, relative to the mount root (for sigbusctl) */
static char orig[MAPMAX];    /* the file's bytes before any event, zeros past FSIZE */
static char out[16384];	     /* what the last sigbusctl printed */

/* Runs sigbusctl, output in out: CTL() gives its exit status, CTL_EXPECT() asserts it. */
#define CTL(...)	      fx_ctl(&mnt, out, sizeof(out), __VA_ARGS__, (char *)NULL)
#define CTL_EXPECT(want, ...) ctl_expect(CTL(__VA_ARGS__), (want), #__VA_ARGS__)
#define CTL_OK(...)	      CTL_EXPECT(0, __VA_ARGS__)

static void setup(void)
{
	fx_mount_or_fail(&mnt, "mem:64M", NULL);
}

static void teardown(void)
{
	fx_teardown(&mnt);
}

static void make_test_file(void)
{
	int rc;

	fx_enter_workdir();
	snprintf(frel, sizeof(frel), "%s", fx_work_rel("f"));
	snprintf(fpath, sizeof(fpath), "%s", fx_work_path("f"));
	rc = fx_write_file(fpath, orig, FSIZE);
	ck_assert_msg(rc == 0, "write %s: %s", fpath, strerror(-rc));
}

/* ---- sigbusctl output ---- */

static void ctl_expect(int rc, int want, const char *args)
{
	ck_assert_msg(rc == want, "sigbusctl %s: exit %d, expected %d; output:\n%s", args, rc, want,
		      out);
}

static long long val(const char *key)
{
	return fx_ctl_value(out, key);
}

/* The first line of out that starts with prefix and contains has, copied into line. */
static bool out_line(const char *prefix, const char *has, char *line, size_t size)
{
	for (const char *p = out; *p;) {
		size_t n = strcspn(p, "\n");

		snprintf(line, size, "%.*s", (int)n, p);
		if (strncmp(line, prefix, strlen(prefix)) == 0 && strstr(line, has))
			return true;
		p += n + (p[n] == '\n');
	}
	return false;
}

/* Whether the "key: a,b,c" line of the last output lists n. */
static bool list_has(const char *key, long long n)
{
	char line[512], *p, *end;

	if (!out_line(key, "", line, sizeof(line)))
		return false;
	for (p = line + strlen(key) + 1; *p; p = end + (*end != '\0')) {
		if (strtoll(p, &end, 10) == n && end != p)
			return true;
		if (end == p)
			end++;
	}
	return false;
}

/* Installs a fault rule (args as for fail/delay) and returns its id. */
#define RULE_ADD(...) (CTL_OK(__VA_ARGS__), rule_id())

static long long rule_id(void)
{
	long long id = val("id");

	ck_assert_msg(id >= 1, "no id in:\n%s", out);
	return id;
}

/* Whether `rules` lists rule id: a line "ruleID: ..." naming the test file. */
static bool rule_listed(long long id)
{
	char key[32], line[512];

	snprintf(key, sizeof(key), "rule%lld:", id);
	CTL_OK("rules");
	return out_line(key, frel, line, sizeof(line));
}

/* ---- checks run inside client processes: each returns 0 or FX_FAIL(...) ---- */

/* orig with n bytes at off replaced by bytes (zeros if NULL); one image at a time. */
static char *image(size_t off, const char *bytes, size_t n)
{
	static char img[MAPMAX];

	memcpy(img, orig, sizeof(img));
	if (bytes)
		memcpy(img + off, bytes, n);
	else
		memset(img + off, 0, n);
	return img;
}

/* The descriptor reads want[0, size) and then end of file. */
static int expect_pread(const char *what, int fd, const char *want, size_t size)
{
	char c;
	ssize_t n;

	FX_TRY(fx_expect_pread(what, fd, want, 0, size));
	n = pread(fd, &c, 1, (off_t)size);
	if (n != 0)
		return FX_FAIL("%s: pread at %zu, the expected end of file: %zd", what, size, n);
	return 0;
}

static int expect_pread_errno(int fd, size_t off, int err)
{
	static char buf[PG] __attribute__((aligned(PG))); /* O_DIRECT too */

	return fx_expect_err(pread(fd, buf, PG, (off_t)off), err, "pread at %zu", off);
}

/* A new open maps the file and reads want[0, FSIZE) through both kinds of mapping. */
static int new_mapping_reads(const char *want)
{
	volatile char *sh, *pv;
	int fd = open(fpath, O_RDONLY);

	if (fd < 0)
		return FX_FAIL("new open: %s", strerror(errno));
	sh = mmap(NULL, FSIZE, PROT_READ, MAP_SHARED, fd, 0);
	pv = mmap(NULL, FSIZE, PROT_READ, MAP_PRIVATE, fd, 0);
	if (sh == MAP_FAILED || pv == MAP_FAILED)
		return FX_FAIL("mmap: %s", strerror(errno));
	FX_TRY(fx_expect_bytes("new shared mapping", sh, 0, want, FSIZE));
	FX_TRY(fx_expect_bytes("new private mapping", pv, 0, want, FSIZE));
	FX_TRY(expect_pread("new descriptor", fd, want, FSIZE));
	munmap((void *)sh, FSIZE);
	munmap((void *)pv, FSIZE);
	close(fd);
	return 0;
}

/* ---- the client process ---- */

struct client;
typedef int (*step_fn)(struct client *c);

/* What a row's client does, and what its checks need to know of the event. */
struct row {
	int cow;	 /* the private page the client writes 'z' into before the event */
	size_t off, len; /* the event's range, for the checks */
	int err;	 /* the errno of a fault rule */
	step_fn step[2]; /* run one per fx_peer_step() of the test; NULL: no more steps */
};
#define ROW(cow, off, len, err, s0, s1)     \
	{                                   \
		(cow), (off), (len), (err), \
		{                           \
			(s0), (s1)          \
		}                           \
	}

struct client {
	const struct row *row;
	int fd;		    /* O_RDWR, opened before the event */
	int dfd;	    /* O_RDONLY | O_DIRECT, opened before the event */
	volatile char *sh;  /* MAP_SHARED of fd, MAPMAX bytes */
	volatile char *pv;  /* MAP_PRIVATE of fd, MAPMAX bytes, page row->cow COWed */
	struct stat before; /* fstat before the event */
};

/* Bit i set: page i overlaps the row's range. */
static unsigned range_mask(const struct row *row)
{
	unsigned mask = 0;

	for (size_t p = 0; p < NPG; p++) {
		if ((p + 1) * PG > row->off && p * PG < row->off + row->len)
			mask |= 1u << p;
	}
	return mask;
}

/* The COWed private page still holds the client's copy: 'z', then the original bytes. */
static int expect_cow_kept(struct client *c)
{
	size_t off = (size_t)c->row->cow * PG;
	char img[PG];

	memcpy(img, orig + off, PG);
	img[0] = 'z';
	return fx_expect_bytes("COWed private page", c->pv + off, 0, img, PG);
}

/* The client's whole view is want[0, size): the shared mapping and the clean private pages
 * up to the end of the last page, the COWed page its own copy, the old descriptor. */
static int expect_view(struct client *c, const char *want, size_t size)
{
	size_t end = (size + PG - 1) / PG * PG;

	FX_TRY(fx_expect_bytes("shared mapping", c->sh, 0, want, end));
	for (size_t p = 0; p < end / PG; p++) {
		if ((int)p == c->row->cow)
			FX_TRY(expect_cow_kept(c));
		else
			FX_TRY(fx_expect_bytes("clean private page", c->pv, p * PG, want, PG));
	}
	return expect_pread("old descriptor", c->fd, want, size);
}

static int healthy_seen(struct client *c)
{
	return expect_view(c, orig, FSIZE);
}

enum mtime { MT_ANY, MT_SAME, MT_NEWER };

static int check_mtime(const char *what, const struct stat *st, const struct stat *before,
		       enum mtime mt)
{
	long long d = (long long)(st->st_mtim.tv_sec - before->st_mtim.tv_sec) * 1000000000LL +
		      (st->st_mtim.tv_nsec - before->st_mtim.tv_nsec);

	if ((mt == MT_SAME && d != 0) || (mt == MT_NEWER && d <= 0))
		return FX_FAIL("%s: mtime moved by %lld ns, expected %s", what, d,
			       mt == MT_SAME ? "no change" : "a newer one");
	return 0;
}

/* stat of the path, fstat of the old descriptor and of a new open give size and mt. */
static int expect_stat(struct client *c, off_t size, enum mtime mt)
{
	struct stat st[3];
	const char *what[3] = { "stat", "fstat of the old descriptor", "fstat after a new open" };
	int fd = open(fpath, O_RDONLY);

	if (fd < 0)
		return FX_FAIL("new open: %s", strerror(errno));
	if (stat(fpath, &st[0]) < 0 || fstat(c->fd, &st[1]) < 0 || fstat(fd, &st[2]) < 0)
		return FX_FAIL("stat: %s", strerror(errno));
	close(fd);
	for (int i = 0; i < 3; i++) {
		if (st[i].st_size != size)
			return FX_FAIL("%s: size %lld, expected %lld", what[i],
				       (long long)st[i].st_size, (long long)size);
		FX_TRY(check_mtime(what[i], &st[i], &c->before, mt));
	}
	return 0;
}

/* Page i of the shared mapping is in the page cache exactly when bit i of mask is set. */
static int expect_cached(struct client *c, unsigned mask)
{
	unsigned char vec[NPG];

	if (mincore((void *)c->sh, FSIZE, vec) < 0)
		return FX_FAIL("mincore: %s", strerror(errno));
	for (int i = 0; i < NPG; i++) {
		if ((vec[i] & 1) != ((mask >> i) & 1))
			return FX_FAIL("page %d is %s the page cache", i,
				       vec[i] & 1 ? "still in" : "not in");
	}
	return 0;
}

/* Before the event: map a page more than the file, read everything (so every page is
 * cached), COW one page. */
static int client_prepare(struct client *c)
{
	c->fd = open(fpath, O_RDWR);
	c->dfd = open(fpath, O_RDONLY | O_DIRECT);
	if (c->fd < 0 || c->dfd < 0)
		return FX_FAIL("open %s: %s", fpath, strerror(errno));
	c->sh = mmap(NULL, MAPMAX, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
	c->pv = mmap(NULL, MAPMAX, PROT_READ | PROT_WRITE, MAP_PRIVATE, c->fd, 0);
	if (c->sh == MAP_FAILED || c->pv == MAP_FAILED)
		return FX_FAIL("mmap: %s", strerror(errno));
	FX_TRY(fx_expect_bytes("shared mapping, before", c->sh, 0, orig, FSIZE));
	FX_TRY(fx_expect_bytes("private mapping, before", c->pv, 0, orig, FSIZE));
	FX_TRY(expect_pread("old descriptor", c->fd, orig, FSIZE));
	FX_TRY(fx_expect_sigbus("shared mapping past EOF, before", c->sh, FSIZE, false));
	FX_TRY(fx_write_bytes("private mapping", c->pv, (size_t)c->row->cow * PG, "z", 1));
	FX_TRY(expect_cached(c, (1u << NPG) - 1));
	if (fstat(c->fd, &c->before) < 0)
		return FX_FAIL("fstat: %s", strerror(errno));
	return 0;
}

static int client_main(int sock, const void *arg)
{
	const struct row *row = arg;
	struct client c = { .row = row };

	FX_TRY(client_prepare(&c));
	for (int i = 0; i < 2 && row->step[i]; i++) {
		FX_TRY(fx_peer_wait_go(sock));
		FX_TRY(row->step[i](&c));
	}
	return 0;
}

/* ---- the test's side ---- */

/* Starts row's client, which maps and reads the file, runs event (a statement) from the
 * test's side, and lets rest() take the client through its steps to its end. */
#define ROW_WITH(row, event, rest)                      \
	do {                                            \
		struct fx_peer p_;                      \
		fx_peer_start(&p_, client_main, (row)); \
		event;                                  \
		rest(&p_);                              \
	} while (0)

static void last_step(struct fx_peer *p)
{
	fx_peer_step(p);
	fx_peer_finish(p);
}

static void clear_between_steps(struct fx_peer *p)
{
	fx_peer_step(p);
	CTL_OK("clear");
	last_step(p);
}

/* A one-step row: the client maps, the test runs the event (its output stays in out),
 * the client observes. */
#define ROW_RUN(row, ...) ROW_WITH((row), CTL_OK(__VA_ARGS__), last_step)

/* A fault rule (the args of fail), the client's first step, `clear`, its second step. */
#define RULE_THEN_CLEAR(row, ...) ROW_WITH((row), RULE_ADD(__VA_ARGS__), clear_between_steps)

/* ---- row 1: inval ---- */

/* The range's pages were dropped; everything reads the same, the COWed page is kept. */
static int inval_seen(struct client *c)
{
	FX_TRY(expect_cached(c, ~range_mask(c->row) & ((1u << NPG) - 1)));
	FX_TRY(expect_view(c, orig, FSIZE));
	FX_TRY(expect_cached(c, (1u << NPG) - 1));
	return expect_stat(c, FSIZE, MT_SAME);
}

START_TEST(test_inval_whole_file)
{
	static const struct row row = ROW(1, 0, FSIZE, 0, inval_seen, NULL);

	ROW_RUN(&row, "inval", frel);
	ck_assert_int_ge(val("seq"), 1);
}
END_TEST

START_TEST(test_inval_range)
{
	static const struct row row = ROW(1, 4100, 5000, 0, inval_seen, NULL);

	ROW_RUN(&row, "inval", frel, "4100", "5000");
	ck_assert_int_eq(val("off"), 4100);
	ck_assert_int_eq(val("len"), 5000);
}
END_TEST

/* ---- row 2: write (notify) ---- */

#define NEW_BYTES "0123456789ab" /* written at 4090: the end of page 0, the start of page 1 */

static int write_seen(struct client *c)
{
	FX_TRY(expect_view(c, image(4090, NEW_BYTES, 12), FSIZE));
	return expect_stat(c, FSIZE, MT_NEWER);
}

START_TEST(test_write_notify)
{
	static const struct row row = ROW(0, 0, 0, 0, write_seen, NULL);

	ROW_RUN(&row, "write", frel, "4090", NEW_BYTES);
	ck_assert_int_eq(val("off"), 4090);
	ck_assert_int_eq(val("bytes"), 12);
	ck_assert_int_eq(val("size"), FSIZE);
}
END_TEST

/* "XYZ" at 16400: the file grows into the page mapped past its old end, 16384..16399
 * is a hole. */
static int write_past_eof_seen(struct client *c)
{
	FX_TRY(expect_stat(c, 16403, MT_NEWER));
	return expect_view(c, image(16400, "XYZ", 3), 16403);
}

START_TEST(test_write_past_eof)
{
	static const struct row row = ROW(2, 0, 0, 0, write_past_eof_seen, NULL);

	ROW_RUN(&row, "write", frel, "16400", "XYZ");
	ck_assert_int_eq(val("bytes"), 3);
	ck_assert_int_eq(val("size"), 16403);
}
END_TEST

/* ---- row 3: write --no-notify, then audit and inval ---- */

#define STALE_OFF 8292 /* in page 2 */

static int stale_seen(struct client *c)
{
	FX_TRY(expect_view(c, orig, FSIZE));
	return expect_stat(c, FSIZE, MT_SAME);
}

static int fresh_seen(struct client *c)
{
	return expect_view(c, image(STALE_OFF, "STALE", 5), FSIZE);
}

START_TEST(test_write_no_notify)
{
	static const struct row row = ROW(0, 0, 0, 0, stale_seen, fresh_seen);
	struct fx_peer p;

	fx_peer_start(&p, client_main, &row);
	CTL_OK("write", frel, "8292", "STALE", "--no-notify");
	fx_peer_step(&p);
	CTL_OK("audit", frel);
	ck_assert_msg(val("stale_pages") >= 1, "audit after write --no-notify:\n%s", out);
	ck_assert_msg(list_has("stale_list", STALE_OFF / PG), "page 2 not in:\n%s", out);
	CTL_OK("inval", frel);
	fx_peer_step(&p);
	fx_peer_finish(&p);
	CTL_OK("audit", frel);
	ck_assert_msg(val("stale_pages") == 0, "audit after inval:\n%s", out);
}
END_TEST

/* ---- row 4: truncate, shrinking 16384 -> 6144 ---- */

#define SHRUNK 6144

/* The old descriptor may extend the file again: the extension reads zeros. */
static int extend_again(struct client *c)
{
	char *want, ch;

	if (pread(c->fd, &ch, 1, 2 * PG) != 0)
		return FX_FAIL("pread at 8192 after the shrink is not end of file");
	if (pwrite(c->fd, "X", 1, 10000) != 1)
		return FX_FAIL("pwrite at 10000 after the shrink: %s", strerror(errno));
	want = image(SHRUNK, NULL, MAPMAX - SHRUNK);
	want[10000] = 'X';
	FX_TRY(expect_stat(c, 10001, MT_ANY));
	FX_TRY(expect_pread("old descriptor", c->fd, want, 10001));
	return fx_expect_bytes("shared mapping after the extension", c->sh, 0, want, 3 * PG);
}

static int shrunk_seen(struct client *c)
{
	FX_TRY(expect_view(c, image(SHRUNK, NULL, MAPMAX - SHRUNK), SHRUNK));
	for (size_t p = 2; p < NPG; p++) {
		const char *pv = p == 2 ? "COWed private page past EOF" : "private page past EOF";

		FX_TRY(fx_expect_sigbus("shared page past EOF", c->sh, p * PG, false));
		FX_TRY(fx_expect_sigbus(pv, c->pv, p * PG + 1, false));
	}
	FX_TRY(expect_stat(c, SHRUNK, MT_ANY));
	return extend_again(c);
}

START_TEST(test_truncate_shrink)
{
	static const struct row row = ROW(2, 0, 0, 0, shrunk_seen, NULL);

	ROW_RUN(&row, "truncate", frel, "6144");
	ck_assert_int_eq(val("old_size"), FSIZE);
	ck_assert_int_eq(val("size"), SHRUNK);
}
END_TEST

/* The size the kernel holds for path, without asking the daemon. */
static long long kernel_size(const char *path)
{
	struct statx stx;

	ck_assert_msg(statx(AT_FDCWD, path, AT_STATX_DONT_SYNC, STATX_SIZE, &stx) == 0,
		      "statx %s: %s", path, strerror(errno));
	return (long long)stx.stx_size;
}

#define RACE_ROUNDS 400
#define STATTERS    3

#define SLOW_MAPS 20000

/* A client that stats the file as fast as it can, so that its GETATTRs race the daemon's.
 * It maps the file SLOW_MAPS times first, so that the kernel's page cache truncation,
 * which visits every mapping, takes long enough to be seen unfinished. */
static void stat_storm(const char *path)
{
	struct stat st;
	int fd = open(path, O_RDONLY);

	prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failing test must not leave it spinning */
	for (int i = 0; fd >= 0 && i < SLOW_MAPS; i++)
		mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, 0);
	for (;;)
		stat(path, &st);
}

/* A client that reads the whole file, uncached, as fast as it can: a READ cut short by
 * the new end of file also tells the kernel that size, without truncating its cache. */
static void read_storm(const char *path)
{
	static char buf[FSIZE];
	int fd = open(path, O_RDONLY);

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;) {
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		if (pread(fd, buf, sizeof(buf), 0) < 0)
			usleep(100);
	}
}

/* "truncate frel size" on a connection c kept open across calls: the race test sends
 * hundreds, and starting sigbusctl for each would dominate its time under sanitizers. */
static void ctl_truncate(struct ctl_client *c, const char *size)
{
	struct ctl_result res;
	char line[128];
	int rc;

	snprintf(line, sizeof(line), "truncate %s %s", frel, size);
	rc = ctl_client_request(c, line, strlen(line), &res);
	ck_assert_msg(rc == 0 && res.is_ok, "%s: %s", line, rc ? strerror(-rc) : res.text);
	ctl_result_free(&res);
}

/* Clients racing a shrink can teach the kernel the new size first, and the 10-minute soak
 * found both ways to leave a COWed private page past the new end of file readable after
 * truncate returned: a client's GETATTR carrying the new size makes the kernel truncate in
 * that client's thread, which may still be running when the daemon's stat(2) returns; and
 * a client's short READ sets the size without truncating at all, so the daemon's GETATTR
 * then changes nothing. Each round must see the new size in the kernel and SIGBUS on
 * that page. */
START_TEST(test_truncate_shrink_racing_stat)
{
	pid_t kids[STATTERS];
	struct ctl_client *c;
	volatile char *map;
	int fd = open(fpath, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ctl_client_connect(mnt.ctl, &c, out, sizeof(out)), 0);
	map = mmap(NULL, FSIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	ck_assert_ptr_ne((void *)map, MAP_FAILED);
	for (int i = 0; i < STATTERS; i++) {
		kids[i] = fork();
		ck_assert_int_ge(kids[i], 0);
		if (kids[i] == 0 && i == 0)
			read_storm(fpath);
		if (kids[i] == 0)
			stat_storm(fpath);
	}
	for (int r = 0; r < RACE_ROUNDS; r++) {
		map[PG] = 'x'; /* a COWed private copy, which only truncation can drop */
		ctl_truncate(c, "4096");
		ck_assert_msg(kernel_size(fpath) == PG,
			      "round %d: truncate to 4096 returned, the kernel holds size %lld", r,
			      kernel_size(fpath));
		ck_assert_msg(fx_expect_sigbus("COWed page past EOF", map, PG, false) == 0,
			      "round %d: truncate to 4096 returned, the COWed page past it is "
			      "still mapped",
			      r);
		ctl_truncate(c, "16384");
	}
	ctl_client_close(c);
	for (int i = 0; i < STATTERS; i++) {
		kill(kids[i], SIGKILL);
		waitpid(kids[i], NULL, 0);
	}
	munmap((void *)map, FSIZE);
	close(fd);
}
END_TEST

/* ---- row 5: truncate, growing again after the shrink ---- */

static int regrown_seen(struct client *c)
{
	const char *want = image(SHRUNK, NULL, MAPMAX - SHRUNK);

	FX_TRY(expect_stat(c, FSIZE, MT_ANY));
	FX_TRY(new_mapping_reads(want));
	FX_TRY(expect_pread("old descriptor", c->fd, want, FSIZE));
	FX_TRY(fx_expect_bytes("old shared mapping", c->sh, 0, want, FSIZE));
	/* the shrink discarded the COWed page 3 too (truncate_pagecache takes private copies,
	 * notes section 2), so the old private mapping refaults it from the file: zeros */
	return fx_expect_bytes("old private mapping", c->pv, 0, want, FSIZE);
}

START_TEST(test_truncate_regrow)
{
	static const struct row row = ROW(3, 0, 0, 0, regrown_seen, NULL);
	struct fx_peer p;

	fx_peer_start(&p, client_main, &row);
	CTL_OK("truncate", frel, "6144");
	CTL_OK("truncate", frel, "16384");
	ck_assert_int_eq(val("old_size"), SHRUNK);
	ck_assert_int_eq(val("size"), FSIZE);
	fx_peer_step(&p);
	fx_peer_finish(&p);
}
END_TEST

/* ---- row 6: punch ---- */

static int punched_seen(struct client *c)
{
	FX_TRY(expect_view(c, image(c->row->off, NULL, c->row->len), FSIZE));
	return expect_stat(c, FSIZE, MT_ANY);
}

START_TEST(test_punch_pages)
{
	static const struct row row = ROW(1, 4096, 8192, 0, punched_seen, NULL);

	ROW_RUN(&row, "punch", frel, "4096", "8192");
	ck_assert_int_eq(val("off"), 4096);
	ck_assert_int_eq(val("len"), 8192);
}
END_TEST

START_TEST(test_punch_unaligned)
{
	static const struct row row = ROW(0, 5000, 3000, 0, punched_seen, NULL);

	ROW_RUN(&row, "punch", frel, "5000", "3000");
}
END_TEST

/* ---- row 7: fail --op read ---- */

/* Pages in the rule's range were dropped and fault with SIGBUS, the others read. */
static int read_fail_pages(struct client *c)
{
	unsigned range = range_mask(c->row);

	FX_TRY(expect_cached(c, ~range & ((1u << NPG) - 1)));
	for (size_t p = 0; p < NPG; p++) {
		if (!(range >> p & 1)) {
			FX_TRY(fx_expect_bytes("shared page outside the rule", c->sh, p * PG, orig,
					       PG));
			FX_TRY(fx_expect_bytes("private page outside the rule", c->pv, p * PG, orig,
					       PG));
			continue;
		}
		FX_TRY(fx_expect_sigbus("shared page in the rule", c->sh, p * PG, false));
		if ((int)p == c->row->cow)
			FX_TRY(expect_cow_kept(c));
		else
			FX_TRY(fx_expect_sigbus("clean private page in the rule", c->pv, p * PG,
						false));
	}
	return 0;
}

static int read_fail_seen(struct client *c)
{
	FX_TRY(read_fail_pages(c));
	for (size_t p = 0; p < NPG; p++) {
		if (range_mask(c->row) >> p & 1)
			FX_TRY(expect_pread_errno(c->fd, p * PG, c->row->err));
		else
			FX_TRY(fx_expect_pread("old descriptor", c->fd, orig, p * PG, PG));
	}
	return expect_stat(c, FSIZE, MT_SAME);
}

START_TEST(test_fail_read)
{
	static const struct row row = ROW(1, 4096, 8192, EIO, read_fail_seen, healthy_seen);
	struct fx_peer p;
	long long id;
	char idstr[32];

	fx_peer_start(&p, client_main, &row);
	id = RULE_ADD("fail", frel, "4096", "8192", "--op", "read", "--errno", "EIO");
	fx_peer_step(&p);
	ck_assert_msg(rule_listed(id), "rule %lld not in:\n%s", id, out);
	snprintf(idstr, sizeof(idstr), "%lld", id);
	CTL_OK("clear", idstr);
	ck_assert_msg(!rule_listed(id), "rule %lld still in:\n%s", id, out);
	fx_peer_step(&p);
	fx_peer_finish(&p);
}
END_TEST

START_TEST(test_fail_read_errno)
{
	static const struct row row = ROW(3, 0, FSIZE, ENOSPC, read_fail_seen, healthy_seen);

	RULE_THEN_CLEAR(&row, "fail", frel, "--op", "read", "--errno", "ENOSPC");
}
END_TEST

/* Through O_DIRECT each pread is one READ: the first fails, the next ones succeed. */
static int count_seen(struct client *c)
{
	FX_TRY(expect_pread_errno(c->dfd, PG, EIO));
	FX_TRY(fx_expect_pread("O_DIRECT descriptor", c->dfd, orig, PG, PG));
	FX_TRY(fx_expect_pread("O_DIRECT descriptor", c->dfd, orig, PG, PG));
	return expect_view(c, orig, FSIZE);
}

/* Kernel, not daemon: a failed page cache read is retried (readahead's READ, then
 * read_folio's: notes section 2), so a page cache reader never sees a rule that fires
 * once. A pread needs --count 2 to fail, a fault --count 3 (6.18.44). */
static int count_absorbed(struct client *c)
{
	return fx_expect_pread("old descriptor", c->fd, orig, PG, PG);
}

START_TEST(test_fail_read_count)
{
	static const struct row row = ROW(0, 0, 0, 0, count_seen, count_absorbed);
	struct fx_peer p;
	long long id;

	fx_peer_start(&p, client_main, &row);
	for (int i = 0; i < 2; i++) {
		id = RULE_ADD("fail", frel, "4096", "4096", "--op", "read", "--errno", "EIO",
			      "--count", "1");
		fx_peer_step(&p);
		ck_assert_msg(!rule_listed(id), "rule %lld, --count 1, left after a read:\n%s", id,
			      out);
	}
	fx_peer_finish(&p);
}
END_TEST

/* ---- row 8: fail --op write, fsync, open ---- */

/* The error of a failed writeback is reported once (notes section 9). */
static int write_fail_seen(struct client *c)
{
	FX_TRY(fx_write_bytes("dirtying the shared mapping", c->sh, PG + 10, "dirty", 5));
	if (msync((void *)c->sh, FSIZE, MS_SYNC) == 0 || errno != EIO)
		return FX_FAIL("msync of a page whose write fails: %s, expected EIO",
			       strerrorname_np(errno));
	if (msync((void *)c->sh, FSIZE, MS_SYNC) < 0 || fsync(c->fd) < 0)
		return FX_FAIL("a second msync or fsync reported the error again: %s",
			       strerror(errno));
	/* kernel: without the writeback cache write(2) is synchronous, so pwrite reports
	 * the error itself and leaves none for fsync */
	if (pwrite(c->fd, "x", 1, 100) >= 0 || errno != EIO)
		return FX_FAIL("pwrite with a failing write rule: %s, expected EIO",
			       strerrorname_np(errno));
	if (fsync(c->fd) < 0)
		return FX_FAIL("fsync after the failed pwrite: %s", strerror(errno));
	return fx_expect_pread("old descriptor", c->fd, orig, 0, PG);
}

START_TEST(test_fail_write)
{
	static const struct row row = ROW(0, 0, 0, 0, write_fail_seen, NULL);

	ROW_RUN(&row, "fail", frel, "--op", "write", "--errno", "EIO");
	ck_assert_int_ge(val("id"), 1);
}
END_TEST

static int fsync_fail_seen(struct client *c)
{
	if (fsync(c->fd) == 0 || errno != ENOSPC)
		return FX_FAIL("fsync with a failing fsync rule: %s, expected ENOSPC",
			       strerrorname_np(errno));
	return expect_view(c, orig, FSIZE);
}

static int fsync_ok(struct client *c)
{
	if (fsync(c->fd) < 0)
		return FX_FAIL("fsync after clear: %s", strerror(errno));
	return 0;
}

START_TEST(test_fail_fsync)
{
	static const struct row row = ROW(0, 0, 0, 0, fsync_fail_seen, fsync_ok);

	RULE_THEN_CLEAR(&row, "fail", frel, "--op", "fsync", "--errno", "ENOSPC");
}
END_TEST

static int open_fail_seen(struct client *c)
{
	int fd = open(fpath, O_RDONLY);

	if (fd >= 0 || errno != EACCES)
		return FX_FAIL("open with a failing open rule: %d (%s), expected EACCES", fd,
			       fd < 0 ? strerrorname_np(errno) : "no error");
	return expect_view(c, orig, FSIZE);
}

static int open_ok(struct client *c)
{
	(void)c;
	return new_mapping_reads(orig);
}

START_TEST(test_fail_open)
{
	static const struct row row = ROW(0, 0, 0, 0, open_fail_seen, open_ok);

	RULE_THEN_CLEAR(&row, "fail", frel, "--op", "open", "--errno", "EACCES");
}
END_TEST

/* ---- row 9: delay ---- */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Only a lower bound: the delay is a floor, a loaded machine may add to it. */
static int delayed_seen(struct client *c)
{
	long long t0 = now_ms(), took;

	FX_TRY(fx_expect_pread("old descriptor", c->fd, orig, PG, PG));
	took = now_ms() - t0;
	if (took < 300)
		return FX_FAIL("an uncached pread with a 300 ms delay rule took %lld ms", took);
	return 0;
}

START_TEST(test_delay_read)
{
	static const struct row row = ROW(0, 0, 0, 0, delayed_seen, healthy_seen);
	struct fx_peer p;
	long long id;

	fx_peer_start(&p, client_main, &row);
	id = RULE_ADD("delay", frel, "--op", "read", "--ms", "300");
	CTL_OK("inval", frel);
	fx_peer_step(&p);
	ck_assert_msg(rule_listed(id), "rule %lld not in:\n%s", id, out);
	CTL_OK("clear");
	ck_assert_msg(!rule_listed(id), "rule %lld still in after clear:\n%s", id, out);
	CTL_OK("inval", frel);
	fx_peer_step(&p);
	fx_peer_finish(&p);
}
END_TEST

/* ---- row 10: store, then audit and inval ---- */

#define STORE_OFF 4196 /* in page 1 */

static int stored_seen(struct client *c)
{
	FX_TRY(expect_view(c, image(STORE_OFF, "STORED", 6), FSIZE));
	return expect_stat(c, FSIZE, MT_SAME);
}

START_TEST(test_store)
{
	static const struct row row = ROW(0, 0, 0, 0, stored_seen, healthy_seen);
	struct fx_peer p;

	fx_peer_start(&p, client_main, &row);
	CTL_OK("store", frel, "4196", "STORED");
	ck_assert_int_eq(val("off"), STORE_OFF);
	ck_assert_int_eq(val("bytes"), 6);
	fx_peer_step(&p);
	CTL_OK("audit", frel);
	ck_assert_msg(val("stale_pages") >= 1, "audit after store:\n%s", out);
	ck_assert_msg(list_has("stale_list", STORE_OFF / PG), "page 1 not in:\n%s", out);
	CTL_OK("inval", frel);
	fx_peer_step(&p);
	fx_peer_finish(&p);
}
END_TEST

/* ---- row 11: errors; and the counters and the log ---- */

static int reads_original(void *arg)
{
	(void)arg;
	return new_mapping_reads(orig);
}

/* Exits 1 and names the path in its message. */
#define EXPECT_MISSING(miss, ...)                                                              \
	do {                                                                                   \
		CTL_EXPECT(1, __VA_ARGS__);                                                    \
		ck_assert_msg(strstr(out, miss), "%s: no mention of %s in:\n%s", #__VA_ARGS__, \
			      miss, out);                                                      \
	} while (0)

/* Commands on a missing path exit 1 and name the path; the mount serves on. */
START_TEST(test_missing_path)
{
	char miss[96];

	snprintf(miss, sizeof(miss), "%s-missing", frel);
	EXPECT_MISSING(miss, "inval", miss);
	EXPECT_MISSING(miss, "write", miss, "0", "x");
	EXPECT_MISSING(miss, "truncate", miss, "100");
	EXPECT_MISSING(miss, "punch", miss, "0", "100");
	EXPECT_MISSING(miss, "fail", miss, "--op", "read", "--errno", "EIO");
	EXPECT_MISSING(miss, "delay", miss, "--op", "read", "--ms", "10");
	EXPECT_MISSING(miss, "store", miss, "0", "x");
	EXPECT_MISSING(miss, "audit", miss);
	EXPECT_MISSING("no-such-dir", "inval", "no-such-dir/f");
	CTL_OK("status");
	fx_run_child(reads_original, NULL);
}
END_TEST

/* Malformed commands exit 2 (usage); the mount serves on. */
START_TEST(test_malformed)
{
	CTL_EXPECT(2, "no-such-command");
	CTL_EXPECT(2, "inval");
	CTL_EXPECT(2, "inval", frel, "4096");
	CTL_EXPECT(2, "truncate", frel);
	CTL_EXPECT(2, "truncate", frel, "12Q");
	CTL_EXPECT(2, "write", frel, "abc", "x");
	CTL_EXPECT(2, "punch", frel, "0");
	CTL_EXPECT(2, "fail", frel, "--op", "read");
	CTL_EXPECT(2, "fail", frel, "--op", "frob", "--errno", "EIO");
	CTL_EXPECT(2, "fail", frel, "--op", "read", "--errno", "ENOTANERRNO");
	CTL_EXPECT(2, "delay", frel, "--op", "read", "--ms", "abc");
	CTL_OK("status");
	CTL_OK("inval", frel);
	fx_run_child(reads_original, NULL);
}
END_TEST

/* counter key of `stats` (path NULL) or `stats PATH` */
static long long counter(const char *path, const char *key)
{
	if (path)
		CTL_OK("stats", path);
	else
		CTL_OK("stats");
	ck_assert_msg(val(key) >= 0, "no %s in:\n%s", key, out);
	return val(key);
}

START_TEST(test_stats)
{
	const char *paths[2] = { NULL, frel }, *keys[2] = { "reads", "invals" };
	long long before[2][2], now;

	for (int i = 0; i < 4; i++)
		before[i / 2][i % 2] = counter(paths[i / 2], keys[i % 2]);
	CTL_OK("inval", frel);
	fx_run_child(reads_original, NULL);
	for (int i = 0; i < 4; i++) {
		now = counter(paths[i / 2], keys[i % 2]);
		ck_assert_msg(now > before[i / 2][i % 2], "stats %s: %s %lld -> %lld",
			      i / 2 ? frel : "", keys[i % 2], before[i / 2][i % 2], now);
	}
}
END_TEST

/* The seq of the log line of cmd on the test file, -1 if there is none. */
static long long log_seq(const char *cmd)
{
	char want[160], line[512];
	const char *seq;

	snprintf(want, sizeof(want), "cmd=%s target=%s ", cmd, frel);
	if (!out_line("", want, line, sizeof(line)) || !(seq = strstr(line, "seq=")))
		return -1;
	return strtoll(seq + 4, NULL, 10);
}

START_TEST(test_log)
{
	const char *cmds[] = { "inval", "punch", "write" };
	long long seq[3];

	CTL_OK("inval", frel);
	seq[0] = val("seq");
	CTL_OK("punch", frel, "0", "10");
	seq[1] = val("seq");
	CTL_OK("write", frel, "0", "x");
	seq[2] = val("seq");
	ck_assert_msg(seq[0] >= 1 && seq[1] > seq[0] && seq[2] > seq[1], "seq %lld, %lld, %lld",
		      seq[0], seq[1], seq[2]);
	CTL_OK("log");
	for (int i = 0; i < 3; i++)
		ck_assert_msg(log_seq(cmds[i]) == seq[i], "no %s with seq %lld in the log:\n%s",
			      cmds[i], seq[i], out);
}
END_TEST

/* ---- the suite ---- */

struct tcase_def {
	const char *name;
	const TTest *tests[4]; /* NULL-terminated */
};

static Suite *events_suite(void)
{
	const struct tcase_def defs[] = {
		{ "inval", { test_inval_whole_file, test_inval_range } },
		{ "write", { test_write_notify, test_write_past_eof } },
		{ "write_no_notify", { test_write_no_notify } },
		{ "truncate_shrink", { test_truncate_shrink, test_truncate_shrink_racing_stat } },
		{ "truncate_regrow", { test_truncate_regrow } },
		{ "punch", { test_punch_pages, test_punch_unaligned } },
		{ "fail_read", { test_fail_read, test_fail_read_errno, test_fail_read_count } },
		{ "fail_write", { test_fail_write, test_fail_fsync, test_fail_open } },
		{ "delay", { test_delay_read } },
		{ "store", { test_store } },
		{ "errors", { test_missing_path, test_malformed } },
		{ "stats_log", { test_stats, test_log } },
	};
	Suite *s = suite_create("events");

	for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++)
		fx_add_tests(fx_tcase(s, defs[i].name, 30, setup, teardown, make_test_file),
			     defs[i].tests);
	return s;
}

int main(void)
{
	fx_require_fuse();
	for (size_t i = 0; i < FSIZE; i++)
		orig[i] = (char)('A' + i / PG);
	return fx_run_suite(events_suite());
}
