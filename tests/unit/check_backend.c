/* The backend contract suite: every test below runs once per backend through contract(),
 * which gives each test a fresh instance; plus the registry tests (bk_find, bk_sources,
 * bk_open and the checked wrappers), which run once. A new backend adds one
 * open_<name>() function and one contract() line in main(). What depends on a capability
 * (BK_F_LIMIT: exact accounting of a byte limit; BK_F_HARDLINKS, BK_F_XATTR,
 * BK_F_PERSISTENT, BK_F_FEED) is checked only for backends that declare it, never by
 * backend name. */
#include "backend.h"
#include "config.h"
#include "suite.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define ROOT	BK_ROOT_INO
#define PAGE	4096
#define LIMIT	(UINT64_C(16) << 20) /* bytes: the data limit of every contract test */
#define MIB	(INT64_C(1) << 20)
#define TIB	(INT64_C(1) << 40)
#define F_REG	(S_IFREG | 0644) /* modes for mk() */
#define F_DIR	(S_IFDIR | 0755)
#define OLD_SEC 1000 /* age() sets times to this second, so any update shows */

/* Opens a fresh, empty instance of one backend that holds at most limit bytes of data;
 * with is_again, another instance of the storage the last fresh one uses (only asked of
 * BK_F_PERSISTENT backends). */
typedef int (*contract_open_fn)(uint64_t limit, bool is_again, struct bk **out);

static contract_open_fn backend_open; /* the backend under test; set by contract() */
static struct bk *be;		      /* a fresh instance for each test */
static char scratch[256];	      /* a directory the instance keeps files in, or "" */

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

/* Removes scratch and everything in it. */
static void scratch_remove(void)
{
	if (scratch[0])
		nftw(scratch, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	scratch[0] = '\0';
}

static void setup(void)
{
	ck_assert_int_eq(backend_open(LIMIT, false, &be), 0);
}

static void teardown(void)
{
	bk_close(be);
	be = NULL;
	scratch_remove();
}

/* A test of a capability returns at once (and passes) on a backend without it. */
#define REQUIRES(flag)                          \
	do {                                    \
		if (!(be->ops->flags & (flag))) \
			return;                 \
	} while (0)

/* Whether the backend enforces the LIMIT it was opened with and accounts it exactly. */
static bool has_limit(void)
{
	return be->ops->flags & BK_F_LIMIT;
}

/* Whether the backend under test has an optional slot, as has says (asked of a fresh
 * instance, outside any test: an instance that does not open runs the tests, which then
 * fail). */
static bool has_slot(bool (*has)(const struct bk *b))
{
	struct bk *b;
	bool is_set;

	if (backend_open(LIMIT, false, &b) < 0)
		return true;
	is_set = has(b);
	bk_close(b);
	scratch_remove();
	return is_set;
}

static uint64_t mk(uint64_t parent, const char *name, mode_t mode)
{
	const struct bk_new n = { .mode = mode, .rdev = 0x0103, .uid = 1000, .gid = 100 };
	struct bk_attr a;

	ck_assert_int_eq(bk_mknod(be, parent, name, &n, &a), 0);
	return a.ino;
}

static struct bk_attr attr_of(uint64_t ino)
{
	struct bk_attr a;

	ck_assert_int_eq(bk_getattr(be, ino, &a), 0);
	return a;
}

/* The inode name refers to in parent, or 0. */
static uint64_t ino_of(uint64_t parent, const char *name)
{
	struct bk_attr a;

	return bk_lookup(be, parent, name, &a) == 0 ? a.ino : 0;
}

static void put(uint64_t ino, off_t off, const void *buf, size_t len)
{
	ck_assert_int_eq(bk_write(be, ino, 0, buf, len, off), (ssize_t)len);
}

static void fill(uint64_t ino, off_t off, int c, size_t len)
{
	char *buf = malloc(len);

	memset(buf, c, len);
	put(ino, off, buf, len);
	free(buf);
}

/* Asserts that all of [off, off + len) can be read and holds byte c. */
static void expect_bytes(uint64_t ino, off_t off, int c, size_t len)
{
	char *buf = malloc(len);

	ck_assert_int_eq(bk_read(be, ino, 0, buf, len, off), (ssize_t)len);
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != (char)c)
			ck_abort_msg("byte %lld is %d, expected %d", (long long)(off + (off_t)i),
				     buf[i], c);
	}
	free(buf);
}

static uint64_t free_blocks(void)
{
	struct statvfs sv;

	ck_assert_int_eq(bk_statfs(be, &sv), 0);
	return sv.f_bfree;
}

static void age(uint64_t ino)
{
	struct bk_setattr s = { .valid = BK_SET_ATIME | BK_SET_MTIME | BK_SET_CTIME };
	struct bk_attr a;

	s.atime = s.mtime = s.ctime = (struct timespec){ OLD_SEC, 0 };
	ck_assert_int_eq(bk_setattr(be, ino, &s, &a), 0);
}

static bool is_old(struct timespec t)
{
	return t.tv_sec == OLD_SEC && t.tv_nsec == 0;
}

/* Asserts which of ino's mtime and ctime changed since age(ino). */
static void expect_changed(uint64_t ino, bool is_mtime_new, bool is_ctime_new)
{
	struct bk_attr a = attr_of(ino);

	ck_assert_int_eq(!is_old(a.mtime), is_mtime_new);
	if (be->ops->flags & BK_F_SET_CTIME) /* else age() cannot age it */
		ck_assert_int_eq(!is_old(a.ctime), is_ctime_new);
}

static void set_size(uint64_t ino, uint64_t size, int expect)
{
	struct bk_setattr s = { .valid = BK_SET_SIZE, .size = size };
	struct bk_attr a;

	ck_assert_int_eq(bk_setattr(be, ino, &s, &a), expect);
}

START_TEST(test_root_and_lookup)
{
	struct bk_attr a = attr_of(ROOT);
	uint64_t f = mk(ROOT, "f", F_REG);

	ck_assert_uint_eq(a.ino, ROOT);
	ck_assert_uint_eq(a.mode, S_IFDIR | 0755);
	ck_assert_uint_eq(a.nlink, 2);
	ck_assert(a.uid == 0 && a.gid == 0);
	ck_assert_int_eq(bk_lookup(be, ROOT, "nope", &a), -ENOENT);
	ck_assert_int_eq(bk_lookup(be, f, "x", &a), -ENOTDIR);
	ck_assert_int_eq(bk_lookup(be, 999999, "x", &a), -ENOENT);
	ck_assert_int_eq(bk_getattr(be, 999999, &a), -ENOENT);
	ck_assert_int_eq(bk_readdir(be, f, 0, NULL, NULL), -ENOTDIR);
}
END_TEST

START_TEST(test_mknod_and_symlink)
{
	const struct bk_new n = { .mode = S_IFREG | 0600, .uid = 7, .gid = 8 };
	struct bk_attr a;
	char buf[64];
	uint64_t d = mk(ROOT, "d", F_DIR);

	ck_assert_int_eq(bk_mknod(be, d, "f", &n, &a), 0);
	ck_assert(a.mode == (S_IFREG | 0600) && a.uid == 7 && a.gid == 8);
	ck_assert_uint_eq(ino_of(d, "f"), a.ino);
	ck_assert_int_eq(bk_mknod(be, d, "f", &n, &a), -EEXIST);
	ck_assert_int_eq(bk_mknod(be, a.ino, "g", &n, &a), -ENOTDIR);
	ck_assert_int_eq(bk_readlink(be, a.ino, buf, sizeof(buf)), -EINVAL);
	a = attr_of(mk(d, "chr", S_IFCHR | 0600));
	ck_assert(a.mode == (S_IFCHR | 0600) && a.rdev == 0x0103);
	ck_assert_int_eq(bk_symlink(be, d, "l", "../some/target", &n, &a), 0);
	ck_assert(S_ISLNK(a.mode) && a.uid == 7);
	ck_assert_uint_eq(a.size, 14);
	ck_assert_uint_eq(ino_of(d, "l"), a.ino);
	ck_assert_int_eq(bk_readlink(be, a.ino, buf, sizeof(buf)), 14);
	ck_assert_mem_eq(buf, "../some/target", 14);
	ck_assert_int_eq(bk_readlink(be, a.ino, buf, 4), 14);
	ck_assert_mem_eq(buf, "../s", 4);
	ck_assert_int_eq(bk_symlink(be, d, "l", "x", &n, &a), -EEXIST);
}
END_TEST

START_TEST(test_name_max)
{
	const struct bk_new n = { .mode = S_IFREG | 0644 };
	char name[BK_NAME_MAX + 1], too_long[BK_NAME_MAX + 2];
	struct bk_attr a;
	uint64_t f;

	REQUIRES(BK_F_HARDLINKS);
	snprintf(name, sizeof(name), "%0*d", BK_NAME_MAX, 7);
	snprintf(too_long, sizeof(too_long), "%0*d", BK_NAME_MAX + 1, 7);
	f = mk(ROOT, name, F_REG);
	ck_assert_uint_eq(ino_of(ROOT, name), f);
	ck_assert_int_eq(bk_mknod(be, ROOT, too_long, &n, &a), -ENAMETOOLONG);
	ck_assert_int_eq(bk_lookup(be, ROOT, too_long, &a), -ENAMETOOLONG);
	ck_assert_int_eq(bk_symlink(be, ROOT, too_long, "t", &n, &a), -ENAMETOOLONG);
	ck_assert_int_eq(bk_link(be, f, ROOT, too_long, &a), -ENAMETOOLONG);
	ck_assert_int_eq(bk_rename(be, ROOT, name, ROOT, too_long, 0), -ENAMETOOLONG);
	ck_assert_int_eq(bk_rename(be, ROOT, name, ROOT, "short", 0), 0);
}
END_TEST

/* Files count their names; directories count 2 plus their subdirectories. */
START_TEST(test_links_and_removal)
{
	struct bk_attr a;
	uint64_t f = mk(ROOT, "f", F_REG), d = mk(ROOT, "d", F_DIR), sub;

	REQUIRES(BK_F_HARDLINKS);
	ck_assert_int_eq(bk_link(be, f, d, "g", &a), 0);
	ck_assert_uint_eq(a.nlink, 2);
	ck_assert_uint_eq(ino_of(d, "g"), f);
	ck_assert_int_eq(bk_link(be, f, d, "g", &a), -EEXIST);
	ck_assert_int_eq(bk_link(be, d, ROOT, "d2", &a), -EPERM);
	ck_assert_int_eq(bk_unlink(be, ROOT, "f"), 0);
	ck_assert_uint_eq(attr_of(f).nlink, 1);
	ck_assert_uint_eq(attr_of(ROOT).nlink, 3);
	sub = mk(d, "sub", F_DIR);
	ck_assert_uint_eq(attr_of(d).nlink, 3);
	ck_assert_int_eq(bk_unlink(be, d, "sub"), -EISDIR);
	ck_assert_int_eq(bk_rmdir(be, d, "g"), -ENOTDIR);
	ck_assert_int_eq(bk_rmdir(be, ROOT, "d"), -ENOTEMPTY);
	ck_assert_int_eq(bk_unlink(be, ROOT, "nope"), -ENOENT);
	ck_assert_int_eq(bk_rmdir(be, ROOT, "nope"), -ENOENT);
	ck_assert_int_eq(bk_rmdir(be, d, "sub"), 0);
	ck_assert_uint_eq(attr_of(d).nlink, 2);
	ck_assert_uint_eq(attr_of(sub).nlink, 0);
	ck_assert_int_eq(bk_unlink(be, d, "g"), 0);
	ck_assert_int_eq(bk_rmdir(be, ROOT, "d"), 0);
	ck_assert_uint_eq(attr_of(ROOT).nlink, 2);
}
END_TEST

/* An unlinked inode lives on for whoever still has it open, until forget. */
START_TEST(test_unlink_open_file)
{
	uint64_t f = mk(ROOT, "f", F_REG), g = mk(ROOT, "g", F_REG);
	uint64_t before = free_blocks();
	char buf[16] = { 0 };
	struct bk_attr a;

	put(f, 0, "hello", 5);
	ck_assert_int_eq(bk_unlink(be, ROOT, "f"), 0);
	ck_assert_uint_eq(attr_of(f).nlink, 0);
	ck_assert_int_eq(bk_read(be, f, 0, buf, sizeof(buf), 0), 5);
	ck_assert_str_eq(buf, "hello");
	put(f, 5, " world", 6);
	ck_assert_uint_eq(attr_of(f).size, 11);
	bk_forget(be, f);
	ck_assert_int_eq(bk_getattr(be, f, &a), -ENOENT);
	if (has_limit())
		ck_assert_uint_eq(free_blocks(), before);
	bk_forget(be, g);
	ck_assert_uint_eq(attr_of(g).nlink, 1);
	ck_assert_uint_ne(mk(ROOT, "f", F_REG), f);
}
END_TEST

/* An inode that never had a name: nlink 0, listed nowhere, alive until forget unless a
 * link gives it a name; a file unlinked while open may get its name back the same way. */
START_TEST(test_tmpfile)
{
	const struct bk_new n = { .mode = S_IFREG | 0600, .uid = 1000, .gid = 100 };
	uint64_t d = mk(ROOT, "d", F_DIR), f = mk(ROOT, "f", F_REG), before;
	struct bk_attr a, t, u;
	char buf[8] = { 0 };

	ck_assert_int_eq(bk_tmpfile(be, ROOT, &n, &t), 0);
	ck_assert_uint_eq(t.nlink, 0);
	ck_assert_uint_eq(t.mode, S_IFREG | 0600);
	ck_assert_uint_eq(t.uid, 1000);
	ck_assert_uint_eq(attr_of(ROOT).nlink, 3);
	put(t.ino, 0, "tmp", 3);
	ck_assert_int_eq(bk_read(be, t.ino, 0, buf, sizeof(buf), 0), 3);
	ck_assert_str_eq(buf, "tmp");
	ck_assert_int_eq(bk_link(be, t.ino, d, "t", &a), 0);
	ck_assert_uint_eq(a.nlink, 1);
	ck_assert_uint_eq(ino_of(d, "t"), t.ino);
	bk_forget(be, t.ino);
	ck_assert_uint_eq(attr_of(t.ino).size, 3);

	before = free_blocks();
	ck_assert_int_eq(bk_tmpfile(be, d, &n, &u), 0);
	ck_assert_uint_ne(u.ino, t.ino);
	fill(u.ino, 0, 'u', 2 * PAGE);
	bk_forget(be, u.ino);
	ck_assert_int_eq(bk_getattr(be, u.ino, &a), -ENOENT);
	if (has_limit())
		ck_assert_uint_eq(free_blocks(), before);

	ck_assert_int_eq(bk_unlink(be, ROOT, "f"), 0);
	if (be->ops->flags & BK_F_RELINK) {
		ck_assert_int_eq(bk_link(be, f, ROOT, "f2", &a), 0);
		ck_assert_uint_eq(a.nlink, 1);
	}
	ck_assert_int_eq(bk_tmpfile(be, f, &n, &u), -ENOTDIR);
	ck_assert_int_eq(bk_tmpfile(be, 999999, &n, &u), -ENOENT);
}
END_TEST

START_TEST(test_rename_basic)
{
	uint64_t d = mk(ROOT, "d", F_DIR), e = mk(ROOT, "e", F_DIR), f = mk(d, "f", F_REG), s;
	struct bk_attr a;

	REQUIRES(BK_F_HARDLINKS);
	ck_assert_int_eq(bk_rename(be, d, "f", d, "g", 0), 0);
	ck_assert_uint_eq(ino_of(d, "f"), 0);
	ck_assert_uint_eq(ino_of(d, "g"), f);
	ck_assert_int_eq(bk_rename(be, d, "g", e, "h", 0), 0);
	ck_assert_uint_eq(ino_of(e, "h"), f);
	ck_assert_int_eq(bk_rename(be, d, "nope", e, "x", 0), -ENOENT);
	ck_assert_int_eq(bk_rename(be, ROOT, "e", d, "e", 0), 0);
	ck_assert_uint_eq(attr_of(ROOT).nlink, 3);
	ck_assert_uint_eq(attr_of(d).nlink, 3);
	ck_assert_uint_eq(ino_of(ino_of(d, "e"), "h"), f);
	ck_assert_int_eq(bk_rename(be, ROOT, "d", ROOT, "x", 7), -EINVAL);
	/* renaming a name to itself, or onto another name of the same inode, does nothing */
	s = mk(ROOT, "s", F_REG);
	ck_assert_int_eq(bk_rename(be, ROOT, "s", ROOT, "s", 0), 0);
	ck_assert_int_eq(bk_link(be, s, ROOT, "s2", &a), 0);
	ck_assert_int_eq(bk_rename(be, ROOT, "s", ROOT, "s2", 0), 0);
	ck_assert_uint_eq(ino_of(ROOT, "s"), s);
	ck_assert_uint_eq(ino_of(ROOT, "s2"), s);
	ck_assert_uint_eq(attr_of(s).nlink, 2);
}
END_TEST

/* Replacing a name drops the old inode's link; only like may replace like. */
START_TEST(test_rename_replace)
{
	struct bk_attr a;
	uint64_t f = mk(ROOT, "f", F_REG), g = mk(ROOT, "g", F_REG), h = mk(ROOT, "h", F_REG);
	uint64_t d = mk(ROOT, "d", F_DIR), e = mk(ROOT, "e", F_DIR), c = mk(ROOT, "c", F_DIR);

	REQUIRES(BK_F_HARDLINKS);
	put(g, 0, "old", 3);
	ck_assert_int_eq(bk_rename(be, ROOT, "f", ROOT, "g", 0), 0);
	ck_assert_uint_eq(ino_of(ROOT, "g"), f);
	ck_assert_uint_eq(attr_of(g).nlink, 0);
	expect_bytes(g, 0, 'o', 1);
	bk_forget(be, g);
	ck_assert_int_eq(bk_getattr(be, g, &a), -ENOENT);
	ck_assert_int_eq(bk_link(be, h, ROOT, "h2", &a), 0);
	ck_assert_int_eq(bk_rename(be, ROOT, "g", ROOT, "h2", 0), 0);
	ck_assert_uint_eq(attr_of(h).nlink, 1);
	mk(c, "inside", F_REG);
	ck_assert_int_eq(bk_rename(be, ROOT, "h", ROOT, "d", 0), -EISDIR);
	ck_assert_int_eq(bk_rename(be, ROOT, "d", ROOT, "h", 0), -ENOTDIR);
	ck_assert_int_eq(bk_rename(be, ROOT, "d", ROOT, "c", 0), -ENOTEMPTY);
	ck_assert_uint_eq(attr_of(ROOT).nlink, 5);
	ck_assert_int_eq(bk_rename(be, ROOT, "d", ROOT, "e", 0), 0);
	ck_assert_uint_eq(ino_of(ROOT, "e"), d);
	ck_assert_uint_eq(attr_of(e).nlink, 0);
	ck_assert_uint_eq(attr_of(ROOT).nlink, 4);
	ck_assert_int_eq(bk_rename(be, ROOT, "e", c, "moved", 0), 0);
	ck_assert_uint_eq(attr_of(ROOT).nlink, 3);
	ck_assert_uint_eq(attr_of(c).nlink, 3);
}
END_TEST

START_TEST(test_rename_flags)
{
	const unsigned both = BK_RENAME_EXCHANGE | BK_RENAME_NOREPLACE;
	uint64_t d = mk(ROOT, "d", F_DIR), f = mk(ROOT, "f", F_REG), g = mk(d, "g", F_REG);
	uint64_t sub = mk(d, "sub", F_DIR), nf = mk(ROOT, "nf", F_REG);

	ck_assert_int_eq(bk_rename(be, ROOT, "f", d, "g", BK_RENAME_EXCHANGE), 0);
	ck_assert_uint_eq(ino_of(ROOT, "f"), g);
	ck_assert_uint_eq(ino_of(d, "g"), f);
	ck_assert_int_eq(bk_rename(be, ROOT, "f", d, "sub", BK_RENAME_EXCHANGE), 0);
	ck_assert_uint_eq(ino_of(ROOT, "f"), sub);
	ck_assert_uint_eq(ino_of(d, "sub"), g);
	ck_assert_uint_eq(attr_of(ROOT).nlink, 4);
	ck_assert_uint_eq(attr_of(d).nlink, 2);
	mk(sub, "x", F_REG);
	ck_assert_uint_eq(ino_of(ino_of(ROOT, "f"), "x"), ino_of(sub, "x"));
	ck_assert_int_eq(bk_rename(be, ROOT, "f", d, "nope", BK_RENAME_EXCHANGE), -ENOENT);
	ck_assert_int_eq(bk_rename(be, ROOT, "f", d, "g", both), -EINVAL);
	ck_assert_int_eq(bk_rename(be, ROOT, "d", d, "g", BK_RENAME_EXCHANGE), -EINVAL);
	ck_assert_int_eq(bk_rename(be, ROOT, "nf", ROOT, "f", BK_RENAME_NOREPLACE), -EEXIST);
	ck_assert_uint_eq(ino_of(ROOT, "nf"), nf);
	ck_assert_int_eq(bk_rename(be, ROOT, "nf", ROOT, "nh", BK_RENAME_NOREPLACE), 0);
	ck_assert_uint_eq(ino_of(ROOT, "nh"), nf);
}
END_TEST

START_TEST(test_rename_into_subtree)
{
	uint64_t a = mk(ROOT, "a", F_DIR), b = mk(a, "b", F_DIR), c = mk(b, "c", F_DIR);

	ck_assert_int_eq(bk_rename(be, ROOT, "a", c, "a", 0), -EINVAL);
	ck_assert_int_eq(bk_rename(be, ROOT, "a", a, "x", 0), -EINVAL);
	ck_assert_int_eq(bk_rename(be, a, "b", b, "x", 0), -EINVAL);
	ck_assert_uint_eq(ino_of(ROOT, "a"), a);
	ck_assert_int_eq(bk_rename(be, b, "c", ROOT, "c", 0), 0);
	ck_assert_int_eq(bk_rename(be, ROOT, "a", c, "a", 0), 0);
	ck_assert_uint_eq(ino_of(c, "a"), a);
}
END_TEST

/* A readdir consumer that takes at most stop_at entries, then reports a full buffer. */
struct listing {
	size_t n, cap, stop_at;
	char (*names)[BK_NAME_MAX + 1];
	uint64_t dir;
	uint64_t cookie; /* of the last entry taken */
};

static int take(void *ctx, const char *name, const struct bk_attr *a, uint64_t cookie)
{
	struct listing *l = ctx;

	if (l->n == l->stop_at || l->n == l->cap)
		return 1;
	if (be->ops->flags & BK_F_DOTS && (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)) {
		ck_assert_uint_eq(a->ino, l->dir);
		ck_assert(S_ISDIR(a->mode));
		ck_assert_uint_ne(cookie, 0);
		ck_assert_uint_le(cookie, INT64_MAX);
		return 0; /* not taken: after the last, a host's cookie may say "the end" */
	}
	ck_assert(strcmp(name, ".") != 0 && strcmp(name, "..") != 0);
	ck_assert_uint_ne(a->ino, 0);
	strcpy(l->names[l->n++], name);
	l->cookie = cookie;
	return 0;
}

/* Reads up to batch more entries, resuming after the last one taken. */
static size_t list_more(struct listing *l, uint64_t dir, size_t batch)
{
	size_t before = l->n;

	l->stop_at = l->n + batch;
	l->dir = dir;
	ck_assert_int_eq(bk_readdir(be, dir, l->cookie, take, l), 0);
	return l->n - before;
}

static size_t count_name(const struct listing *l, const char *name)
{
	size_t n = 0;

	for (size_t i = 0; i < l->n; i++)
		n += strcmp(l->names[i], name) == 0;
	return n;
}

START_TEST(test_readdir_basic)
{
	char third[BK_NAME_MAX + 1];
	struct listing l = { .cap = 16, .names = calloc(16, sizeof(*l.names)) };
	uint64_t cookie;

	ck_assert_uint_eq(list_more(&l, ROOT, 10), 0);
	mk(ROOT, "a", F_REG);
	mk(ROOT, "b", F_DIR);
	mk(ROOT, "c", S_IFIFO | 0600);
	ck_assert_uint_eq(list_more(&l, ROOT, 2), 2);
	cookie = l.cookie;
	ck_assert_uint_eq(list_more(&l, ROOT, 10), 1);
	ck_assert_uint_eq(list_more(&l, ROOT, 10), 0);
	ck_assert_uint_eq(count_name(&l, "a") + count_name(&l, "b") + count_name(&l, "c"), 3);
	strcpy(third, l.names[2]);
	l.n = 2;
	l.cookie = cookie;
	ck_assert_uint_eq(list_more(&l, ROOT, 1), 1);
	ck_assert_str_eq(l.names[2], third);
	free(l.names);
}
END_TEST

/* Entries present throughout a listing appear exactly once, whatever changes meanwhile. */
START_TEST(test_readdir_stable_cookies)
{
	char name[32];
	struct listing l = { .cap = 1000, .names = calloc(1000, sizeof(*l.names)) };

	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "e%03d", i);
		mk(ROOT, name, F_REG);
	}
	ck_assert_uint_eq(list_more(&l, ROOT, 100), 100);
	for (int i = 0; i < 300; i += 3) {
		snprintf(name, sizeof(name), "e%03d", i);
		ck_assert_int_eq(bk_unlink(be, ROOT, name), 0);
		snprintf(name, sizeof(name), "new%03d", i);
		mk(ROOT, name, F_REG);
	}
	while (list_more(&l, ROOT, 37) > 0)
		;
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "e%03d", i);
		ck_assert_uint_le(count_name(&l, name), 1);
		ck_assert(i % 3 == 0 || count_name(&l, name) == 1);
	}
	free(l.names);
}
END_TEST

START_TEST(test_readdir_large)
{
	enum { N = 10000 };
	bool seen[N] = { false };
	char name[32];
	struct listing l = { .cap = N + 1, .names = calloc(N + 1, sizeof(*l.names)) };
	uint64_t d = mk(ROOT, "big", F_DIR);

	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "file%05d", i);
		mk(d, name, F_REG);
	}
	while (list_more(&l, d, 100) > 0)
		;
	ck_assert_uint_eq(l.n, N);
	for (size_t i = 0; i < l.n; i++) {
		int k = atoi(l.names[i] + strlen("file"));

		ck_assert_msg(k >= 0 && k < N && !seen[k], "%s listed twice", l.names[i]);
		seen[k] = true;
		ck_assert_uint_ne(ino_of(d, l.names[i]), 0);
	}
	free(l.names);
}
END_TEST

/* Short reads at the end, nothing past it, zeros in holes and in regrown ranges. */
START_TEST(test_read_and_truncate)
{
	uint64_t f = mk(ROOT, "f", F_REG), g = mk(ROOT, "g", F_REG);
	char buf[100];

	ck_assert_int_eq(bk_read(be, f, 0, buf, sizeof(buf), 0), 0);
	put(f, 0, "0123456789", 10);
	ck_assert_int_eq(bk_read(be, f, 0, buf, sizeof(buf), 5), 5);
	ck_assert_mem_eq(buf, "56789", 5);
	ck_assert_int_eq(bk_read(be, f, 0, buf, sizeof(buf), 10), 0);
	ck_assert_int_eq(bk_read(be, f, 0, buf, sizeof(buf), 1000), 0);
	ck_assert_int_eq(bk_read(be, ROOT, 0, buf, sizeof(buf), 0), -EISDIR);
	put(g, 1 << 20, "tail", 4);
	ck_assert_uint_eq(attr_of(g).size, (1 << 20) + 4);
	expect_bytes(g, 0, 0, 1 << 20);
	fill(f, 0, 'a', 3 * PAGE);
	set_size(f, 100, 0);
	ck_assert_uint_le(attr_of(f).blocks, PAGE / 512);
	ck_assert_int_eq(bk_read(be, f, 0, buf, sizeof(buf), 99), 1);
	set_size(f, 3 * PAGE, 0);
	expect_bytes(f, 0, 'a', 100);
	expect_bytes(f, 100, 0, 3 * PAGE - 100);
	set_size(ROOT, 0, -EISDIR);
	set_size(mk(ROOT, "p", S_IFIFO | 0644), 0, -EINVAL);
}
END_TEST

/* Whether files may reach INT64_MAX bytes: yes, unless the backend serves a host directory
 * (BK_F_FOREIGN_ROOT) whose filesystem has a smaller maximum file size (ext4 with 4 KiB
 * blocks: 16 TiB less a block), which a file written there on the host shows. */
static bool reaches_int64_max(void)
{
	char path[sizeof(scratch) + 16];
	bool is_max;
	int fd;

	if (!(be->ops->flags & BK_F_FOREIGN_ROOT))
		return true;
	snprintf(path, sizeof(path), "%s/.probe", scratch);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ge(fd, 0);
	is_max = pwrite(fd, "y", 1, INT64_MAX - 1) == 1;
	ck_assert(is_max || errno == EFBIG);
	close(fd);
	unlink(path);
	return is_max;
}

START_TEST(test_huge_offset)
{
	uint64_t f = mk(ROOT, "f", F_REG), before = free_blocks();

	put(f, TIB, "x", 1);
	ck_assert_uint_eq(attr_of(f).size, TIB + 1);
	ck_assert_uint_le(attr_of(f).blocks, 2 * PAGE / 512);
	if (has_limit())
		ck_assert_uint_le(before - free_blocks(), 2);
	expect_bytes(f, TIB - PAGE, 0, PAGE);
	expect_bytes(f, TIB, 'x', 1);
	if (reaches_int64_max()) {
		put(f, INT64_MAX - 1, "y", 1);
		ck_assert_uint_eq(attr_of(f).size, INT64_MAX);
		ck_assert_int_eq(bk_write(be, f, 0, "zz", 2, INT64_MAX - 1), -EFBIG);
	} else { /* the host's EFBIG, and nothing changed */
		ck_assert_int_eq(bk_write(be, f, 0, "y", 1, INT64_MAX - 1), -EFBIG);
		ck_assert_uint_eq(attr_of(f).size, TIB + 1);
	}
	ck_assert_int_eq(bk_write(be, f, 0, "z", 1, INT64_MAX), -EFBIG);
	set_size(f, (uint64_t)INT64_MAX + 1, -EFBIG);
	if (has_limit())
		ck_assert_int_eq(bk_fallocate(be, f, 0, BK_FALLOC_KEEP_SIZE, 0, TIB), -ENOSPC);
	ck_assert_int_eq(
		bk_fallocate(be, f, 0, BK_FALLOC_PUNCH_HOLE | BK_FALLOC_KEEP_SIZE, 0, 2 * TIB), 0);
	expect_bytes(f, TIB, 0, 1);
	set_size(f, 0, 0);
	ck_assert_uint_eq(attr_of(f).blocks, 0);
	if (has_limit())
		ck_assert_uint_eq(free_blocks(), before);
}
END_TEST

/* Punching and zeroing free whole pages and zero partial ones in place. */
START_TEST(test_punch_and_zero)
{
	const int punch = BK_FALLOC_PUNCH_HOLE | BK_FALLOC_KEEP_SIZE, zero = BK_FALLOC_ZERO_RANGE;
	uint64_t f = mk(ROOT, "f", F_REG);

	fill(f, 0, 'x', 3 * PAGE);
	ck_assert_int_eq(bk_fallocate(be, f, 0, punch, 100, 2 * PAGE), 0);
	expect_bytes(f, 0, 'x', 100);
	expect_bytes(f, 100, 0, 2 * PAGE);
	expect_bytes(f, 2 * PAGE + 100, 'x', PAGE - 100);
	ck_assert_uint_eq(attr_of(f).size, 3 * PAGE);
	ck_assert_uint_le(attr_of(f).blocks, 2 * PAGE / 512);
	ck_assert_int_eq(bk_fallocate(be, f, 0, BK_FALLOC_PUNCH_HOLE, 0, PAGE), -EOPNOTSUPP);
	ck_assert_int_eq(bk_fallocate(be, f, 0, zero, 10, 20), 0);
	expect_bytes(f, 0, 'x', 10);
	expect_bytes(f, 10, 0, 20);
	expect_bytes(f, 30, 'x', 70);
	ck_assert_int_eq(bk_fallocate(be, f, 0, zero | BK_FALLOC_KEEP_SIZE, 3 * PAGE, PAGE), 0);
	ck_assert_uint_eq(attr_of(f).size, 3 * PAGE);
	ck_assert_int_eq(bk_fallocate(be, f, 0, zero, 3 * PAGE, PAGE), 0);
	ck_assert_uint_eq(attr_of(f).size, 4 * PAGE);
	expect_bytes(f, 3 * PAGE, 0, PAGE);
	ck_assert_int_eq(bk_fallocate(be, f, 0, punch, 0, 4 * PAGE), 0);
	ck_assert_uint_eq(attr_of(f).blocks, 0);
}
END_TEST

START_TEST(test_fallocate)
{
	uint64_t f = mk(ROOT, "f", F_REG), before = free_blocks();

	ck_assert_int_eq(bk_fallocate(be, f, 0, 0, 0, 2 * PAGE), 0);
	ck_assert_uint_eq(attr_of(f).size, 2 * PAGE);
	ck_assert_uint_eq(attr_of(f).blocks, 2 * PAGE / 512);
	if (has_limit())
		ck_assert_uint_eq(before - free_blocks(), 2);
	expect_bytes(f, 0, 0, 2 * PAGE);
	ck_assert_int_eq(bk_fallocate(be, f, 0, BK_FALLOC_KEEP_SIZE, 2 * PAGE, 2 * PAGE), 0);
	ck_assert_uint_eq(attr_of(f).size, 2 * PAGE);
	ck_assert_uint_eq(attr_of(f).blocks, 4 * PAGE / 512);
	ck_assert_int_eq(bk_fallocate(be, f, 0, 0x40, 0, PAGE), -EOPNOTSUPP);
	ck_assert_int_eq(bk_fallocate(be, f, 0, 0, 0, 0), -EINVAL);
	ck_assert_int_eq(bk_fallocate(be, f, 0, 0, -1, PAGE), -EINVAL);
	ck_assert_int_eq(bk_fallocate(be, f, 0, 0, INT64_MAX - 10, 100), -EFBIG);
	ck_assert_int_eq(bk_fallocate(be, ROOT, 0, 0, 0, PAGE), -EISDIR);
	ck_assert_int_eq(bk_fallocate(be, mk(ROOT, "p", S_IFIFO | 0644), 0, 0, 0, PAGE), -ENODEV);
	set_size(f, 0, 0);
	ck_assert_uint_eq(attr_of(f).blocks, 0);
	if (has_limit())
		ck_assert_uint_eq(free_blocks(), before);
}
END_TEST

START_TEST(test_seek_data_hole)
{
	uint64_t f = mk(ROOT, "f", F_REG), g = mk(ROOT, "g", F_REG);

	fill(f, 0, 'a', PAGE);
	fill(f, 4 * PAGE, 'b', PAGE);
	set_size(f, 8 * PAGE, 0);
	ck_assert_int_eq(bk_lseek(be, f, 0, SEEK_DATA), 0);
	ck_assert_int_eq(bk_lseek(be, f, 100, SEEK_DATA), 100);
	ck_assert_int_eq(bk_lseek(be, f, 0, SEEK_HOLE), PAGE);
	ck_assert_int_eq(bk_lseek(be, f, PAGE, SEEK_DATA), 4 * PAGE);
	ck_assert_int_eq(bk_lseek(be, f, PAGE + 5, SEEK_HOLE), PAGE + 5);
	ck_assert_int_eq(bk_lseek(be, f, 4 * PAGE, SEEK_HOLE), 5 * PAGE);
	ck_assert_int_eq(bk_lseek(be, f, 5 * PAGE, SEEK_DATA), -ENXIO);
	ck_assert_int_eq(bk_lseek(be, f, 8 * PAGE, SEEK_DATA), -ENXIO);
	ck_assert_int_eq(bk_lseek(be, f, 8 * PAGE, SEEK_HOLE), -ENXIO);
	ck_assert_int_eq(bk_lseek(be, f, 0, SEEK_SET), -EINVAL);
	put(g, 0, "0123456789", 10);
	ck_assert_int_eq(bk_lseek(be, g, 0, SEEK_HOLE), 10);
	ck_assert_int_eq(bk_lseek(be, g, 10, SEEK_DATA), -ENXIO);
}
END_TEST

/* statfs shows the limit: with L bytes free, L bytes of writes fit and one more byte does
 * not, and the failed write changes nothing. Only for BK_F_LIMIT. */
START_TEST(test_statfs_and_enospc)
{
	uint64_t a = mk(ROOT, "a", F_REG), b = mk(ROOT, "b", F_REG), c = mk(ROOT, "c", F_REG);
	uint64_t pages, half;
	struct statvfs sv;

	if (!has_limit())
		return;
	ck_assert_int_eq(bk_statfs(be, &sv), 0);
	ck_assert_uint_eq(sv.f_bsize, PAGE);
	ck_assert_uint_eq(sv.f_frsize, PAGE);
	ck_assert_uint_eq(sv.f_blocks * sv.f_frsize, 16 << 20);
	ck_assert_uint_eq(sv.f_bavail, sv.f_bfree);
	ck_assert_uint_eq(sv.f_namemax, BK_NAME_MAX);
	ck_assert_uint_gt(sv.f_files, sv.f_ffree);
	pages = sv.f_bfree;
	half = pages / 2 * PAGE;
	fill(a, 0, 'a', half);
	ck_assert_uint_eq(free_blocks(), pages - pages / 2);
	fill(b, 0, 'b', pages * PAGE - half);
	ck_assert_uint_eq(free_blocks(), 0);
	ck_assert_int_eq(bk_write(be, c, 0, "x", 1, 0), -ENOSPC);
	ck_assert_int_eq(bk_write(be, a, 0, "x", 1, (off_t)half), -ENOSPC);
	ck_assert_int_eq(bk_write(be, a, 0, "0123456789", 10, (off_t)half - 5), -ENOSPC);
	expect_bytes(a, (off_t)half - 5, 'a', 5);
	ck_assert_uint_eq(attr_of(a).size, half);
	ck_assert_uint_eq(attr_of(c).blocks, 0);
	ck_assert_int_eq(bk_fallocate(be, c, 0, 0, 0, PAGE), -ENOSPC);
	ck_assert_uint_eq(attr_of(c).size, 0);
	put(a, 0, "zz", 2);
	ck_assert_int_eq(bk_unlink(be, ROOT, "b"), 0);
	bk_forget(be, b);
	ck_assert_uint_eq(free_blocks(), pages - pages / 2);
	put(c, 0, "x", 1);
}
END_TEST

START_TEST(test_xattr)
{
	uint64_t f = mk(ROOT, "f", F_REG);
	char buf[64];

	REQUIRES(BK_F_XATTR);
	ck_assert_int_eq(bk_setxattr(be, f, "user.a", "one", 3, XATTR_CREATE), 0);
	ck_assert_int_eq(bk_setxattr(be, f, "user.a", "two", 3, XATTR_CREATE), -EEXIST);
	ck_assert_int_eq(bk_setxattr(be, f, "user.b", "x", 1, XATTR_REPLACE), -ENODATA);
	ck_assert_int_eq(bk_setxattr(be, f, "user.a", "three", 5, XATTR_REPLACE), 0);
	ck_assert_int_eq(bk_setxattr(be, f, "trusted.b", "", 0, 0), 0);
	ck_assert_int_eq(bk_getxattr(be, f, "user.a", NULL, 0), 5);
	ck_assert_int_eq(bk_getxattr(be, f, "user.a", buf, 4), -ERANGE);
	ck_assert_int_eq(bk_getxattr(be, f, "user.a", buf, sizeof(buf)), 5);
	ck_assert_mem_eq(buf, "three", 5);
	ck_assert_int_eq(bk_getxattr(be, f, "user.none", buf, sizeof(buf)), -ENODATA);
	ck_assert_int_eq(bk_listxattr(be, f, NULL, 0), 17);
	ck_assert_int_eq(bk_listxattr(be, f, buf, 16), -ERANGE);
	ck_assert_int_eq(bk_listxattr(be, f, buf, sizeof(buf)), 17);
	ck_assert(memcmp(buf, "user.a\0trusted.b\0", 17) == 0 ||
		  memcmp(buf, "trusted.b\0user.a\0", 17) == 0);
	ck_assert_int_eq(bk_removexattr(be, f, "user.a"), 0);
	ck_assert_int_eq(bk_removexattr(be, f, "user.a"), -ENODATA);
	ck_assert_int_eq(bk_listxattr(be, f, buf, sizeof(buf)), 10);
	ck_assert_int_eq(bk_setxattr(be, ROOT, "user.dir", "d", 1, 0), 0);
	ck_assert_int_eq(bk_getxattr(be, ROOT, "user.dir", buf, sizeof(buf)), 1);
}
END_TEST

START_TEST(test_times_data)
{
	uint64_t f = mk(ROOT, "f", F_REG);
	char buf[8];

	REQUIRES(BK_F_XATTR);
	age(f);
	put(f, 0, "abc", 3);
	expect_changed(f, true, true);
	age(f);
	ck_assert_int_eq(bk_read(be, f, 0, buf, sizeof(buf), 0), 3);
	ck_assert_int_eq(bk_write(be, f, 0, "", 0, 0), 0);
	expect_changed(f, false, false);
	set_size(f, 3, 0);
	expect_changed(f, false, true);
	age(f);
	set_size(f, 10, 0);
	expect_changed(f, true, true);
	age(f);
	ck_assert_int_eq(bk_setxattr(be, f, "user.x", "1", 1, 0), 0);
	expect_changed(f, false, true);
	age(f);
	ck_assert_int_eq(bk_removexattr(be, f, "user.x"), 0);
	expect_changed(f, false, true);
}
END_TEST

/* Asserts that the namespace operation op changed dir's mtime and ctime and, when ino is
 * not 0, ino's ctime. */
#define EXPECT_TOUCHED(dir, ino, op)                              \
	do {                                                      \
		age(dir);                                         \
		if (ino)                                          \
			age(ino);                                 \
		ck_assert_int_eq(op, 0);                          \
		expect_changed(dir, true, true);                  \
		ck_assert(!(ino) || !is_old(attr_of(ino).ctime)); \
	} while (0)

START_TEST(test_times_namespace)
{
	const struct bk_new n = { .mode = S_IFLNK | 0777 };
	uint64_t d = mk(ROOT, "d", F_DIR), e = mk(ROOT, "e", F_DIR), f;
	struct bk_attr a;

	REQUIRES(BK_F_HARDLINKS);
	age(d);
	f = mk(d, "f", F_REG);
	ck_assert(!is_old(attr_of(d).mtime) && !is_old(attr_of(d).ctime));
	EXPECT_TOUCHED(d, f, bk_link(be, f, d, "g", &a));
	EXPECT_TOUCHED(d, f, bk_unlink(be, d, "g"));
	EXPECT_TOUCHED(d, f, bk_rename(be, d, "f", d, "h", 0));
	age(d);
	EXPECT_TOUCHED(e, f, bk_rename(be, d, "h", e, "h", 0));
	expect_changed(d, true, true);
	EXPECT_TOUCHED(d, 0, bk_rename(be, e, "h", d, "h", 0));
	EXPECT_TOUCHED(d, 0, bk_symlink(be, d, "s", "t", &n, &a));
	mk(d, "sub", F_DIR);
	EXPECT_TOUCHED(d, 0, bk_rmdir(be, d, "sub"));
}
END_TEST

START_TEST(test_setattr)
{
	const struct timespec t1 = { 12345, 678 }, t2 = { 23456, 789 }, t3 = { 34567, 1 };
	const unsigned times = BK_SET_ATIME | BK_SET_MTIME | BK_SET_CTIME;
	uint64_t f = mk(ROOT, "f", F_REG);
	struct bk_setattr s = {
		.valid = BK_SET_MODE | BK_SET_UID | BK_SET_GID, .mode = 04711, .uid = 42, .gid = 43
	};
	struct bk_attr a;

	ck_assert_int_eq(bk_setattr(be, f, &s, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFREG | 04711);
	ck_assert(a.uid == 42 && a.gid == 43);
	s = (struct bk_setattr){ .valid = times, .atime = t1, .mtime = t2, .ctime = t3 };
	ck_assert_int_eq(bk_setattr(be, f, &s, &a), 0);
	ck_assert(a.atime.tv_sec == t1.tv_sec && a.atime.tv_nsec == t1.tv_nsec);
	ck_assert(a.mtime.tv_sec == t2.tv_sec && a.mtime.tv_nsec == t2.tv_nsec);
	ck_assert(!(be->ops->flags & BK_F_SET_CTIME) ||
		  (a.ctime.tv_sec == t3.tv_sec && a.ctime.tv_nsec == t3.tv_nsec));
	s = (struct bk_setattr){ .valid = BK_SET_MTIME_NOW | BK_SET_ATIME_NOW };
	ck_assert_int_eq(bk_setattr(be, f, &s, &a), 0);
	ck_assert(a.mtime.tv_sec > t3.tv_sec && a.atime.tv_sec > t3.tv_sec);
	ck_assert_int_gt(a.ctime.tv_sec, t3.tv_sec);
	ck_assert_int_eq(bk_setattr(be, 999999, &s, &a), -ENOENT);
	ck_assert_int_eq(bk_fsync(be, f, 0, false), 0);
}
END_TEST

/* Concurrency: I/O on private and shared files while names come and go. Threads count
 * errors instead of asserting; the test thread checks the counts. */
#define CONC_ITERS   2000
#define SHARED_PAGES 16

struct worker {
	uint64_t own, shared; /* a file only this worker uses, and one all of them use */
	unsigned id;
	int errors;
	pthread_t thread;
};

/* Private pages read back as written; shared pages, which every writer fills with a
 * single byte value, are never seen half written. */
static void *io_worker(void *arg)
{
	struct worker *w = arg;
	char buf[PAGE], back[2 * PAGE];

	for (unsigned i = 0; i < CONC_ITERS; i++) {
		off_t off = (off_t)((i * 7 + w->id) % (SHARED_PAGES - 1)) * PAGE;

		memset(buf, 'A' + (int)((i + w->id) % 26), PAGE);
		w->errors += bk_write(be, w->own, 0, buf, PAGE, off) != PAGE;
		w->errors +=
			bk_read(be, w->own, 0, back, PAGE, off) != PAGE || memcmp(buf, back, PAGE);
		w->errors += bk_write(be, w->shared, 0, buf, PAGE, off + PAGE) != PAGE;
		w->errors += bk_read(be, w->shared, 0, back, sizeof(back), off) != sizeof(back);
		for (size_t j = 0; j < sizeof(back); j++)
			w->errors +=
				back[j] != back[j / PAGE * PAGE] || back[j] < 'A' || back[j] > 'Z';
		if (i % 100 == 99)
			w->errors += bk_fallocate(be, w->own, 0,
						  BK_FALLOC_PUNCH_HOLE | BK_FALLOC_KEEP_SIZE, 0,
						  SHARED_PAGES * PAGE) != 0;
	}
	return NULL;
}

/* Counts the entries but "." and ".." (BK_F_DOTS). */
static int count_entry(void *ctx, const char *name, const struct bk_attr *a, uint64_t cookie)
{
	*(size_t *)ctx += strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
	return 0;
}

static void *namer(void *arg)
{
	struct worker *w = arg;
	const struct bk_new n = { .mode = S_IFREG | 0644 };
	char name[32], renamed[32];
	struct bk_attr a;
	size_t count;

	for (unsigned i = 0; i < CONC_ITERS / 4; i++) {
		snprintf(name, sizeof(name), "t%u", i);
		snprintf(renamed, sizeof(renamed), "u%u", i);
		count = 0;
		w->errors += bk_mknod(be, ROOT, name, &n, &a) != 0;
		w->errors += bk_write(be, a.ino, 0, name, 4, 0) != 4;
		w->errors += bk_rename(be, ROOT, name, ROOT, renamed, 0) != 0;
		w->errors += bk_readdir(be, ROOT, 0, count_entry, &count) != 0 || count < 6;
		w->errors += bk_unlink(be, ROOT, renamed) != 0;
		bk_forget(be, a.ino);
	}
	return NULL;
}

START_TEST(test_concurrency)
{
	enum { NW = 5 };
	struct worker w[NW];
	uint64_t shared = mk(ROOT, "shared", F_REG);
	char name[16];
	size_t count = 0;

	fill(shared, 0, 'A', SHARED_PAGES * PAGE);
	for (unsigned i = 0; i < NW; i++) {
		snprintf(name, sizeof(name), "own%u", i);
		w[i] = (struct worker){ .own = mk(ROOT, name, F_REG), .shared = shared, .id = i };
	}
	for (unsigned i = 0; i < NW; i++)
		ck_assert_int_eq(pthread_create(&w[i].thread, NULL, i ? io_worker : namer, &w[i]),
				 0);
	for (unsigned i = 0; i < NW; i++) {
		ck_assert_int_eq(pthread_join(w[i].thread, NULL), 0);
		ck_assert_int_eq(w[i].errors, 0);
	}
	ck_assert_int_eq(bk_readdir(be, ROOT, 0, count_entry, &count), 0);
	ck_assert_uint_eq(count, NW + 1);
}
END_TEST

/* Per-open handles: the data slots work through one and without one (fh 0), and what
 * went through it stays after frelease. */
START_TEST(test_handles)
{
	uint64_t f = mk(ROOT, "f", F_REG), fh = 1;
	char buf[8] = { 0 };

	ck_assert_int_eq(bk_fopen(be, f, O_RDWR, &fh), 0);
	ck_assert(be->ops->fopen ? fh != 0 : fh == 0);
	ck_assert_int_eq(bk_write(be, f, fh, "abc", 3, 0), 3);
	ck_assert_int_eq(bk_fallocate(be, f, fh, 0, 0, 5), 0);
	ck_assert_int_eq(bk_fsync(be, f, fh, false), 0);
	ck_assert_int_eq(bk_read(be, f, fh, buf, sizeof(buf), 0), 5);
	ck_assert_mem_eq(buf, "abc\0\0", 5);
	bk_frelease(be, f, fh);
	ck_assert_int_eq(bk_read(be, f, 0, buf, sizeof(buf), 1), 4);
	ck_assert_mem_eq(buf, "bc\0\0", 4);
}
END_TEST

/* What was synced is there in the next instance of the same storage, names, bytes, inode
 * numbers and generations alike. */
START_TEST(test_persistent)
{
	uint64_t d, f;
	struct bk_attr a;

	REQUIRES(BK_F_PERSISTENT);
	d = mk(ROOT, "d", F_DIR);
	f = mk(d, "f", F_REG);
	put(f, 3 * PAGE, "kept", 4);
	ck_assert_int_eq(bk_fsync(be, f, 0, false), 0);
	a = attr_of(f);
	bk_close(be);
	ck_assert_int_eq(backend_open(LIMIT, true, &be), 0);
	ck_assert_uint_eq(ino_of(ROOT, "d"), d);
	ck_assert_uint_eq(ino_of(d, "f"), f);
	ck_assert_uint_eq(attr_of(f).gen, a.gen);
	ck_assert_uint_eq(attr_of(f).size, 3 * PAGE + 4);
	expect_bytes(f, 0, 0, 3 * PAGE);
	expect_bytes(f, 3 * PAGE, 'k', 1);
}
END_TEST

/* What a feed reported, for test_feed. */
struct seen_changes {
	unsigned n, kinds; /* changes; bit (1 << kind) for each kind seen */
	struct bk_change data;
	char name[BK_NAME_MAX + 1];
};

static int note_change(void *ctx, const struct bk_change *ch)
{
	struct seen_changes *c = ctx;

	c->n++;
	c->kinds |= 1u << ch->kind;
	if (ch->kind == BK_CH_DATA)
		c->data = *ch;
	if (ch->kind == BK_CH_NAME_DEL)
		snprintf(c->name, sizeof(c->name), "%s", ch->name);
	return 0;
}

/* Changes made through another instance of the same storage reach this one's feed, once
 * each; its own do not. */
START_TEST(test_feed)
{
	struct seen_changes seen = { 0 };
	struct bk_attr oa;
	struct bk *other;
	uint64_t f;
	int fd, ms;

	REQUIRES(BK_F_FEED);
	REQUIRES(BK_F_PERSISTENT);
	ck_assert_int_eq(bk_feed_fd(be, &fd, &ms), 0);
	ck_assert(fd >= 0 || ms >= 0);
	ck_assert_int_eq(bk_feed_read(be, note_change, &seen), 0);
	f = mk(ROOT, "mine", F_REG);
	put(f, 0, "x", 1);
	ck_assert_int_eq(bk_fsync(be, f, 0, false), 0);
	ck_assert_int_eq(backend_open(LIMIT, true, &other), 0);
	/* the other instance numbers its inodes its own way */
	ck_assert_int_eq(bk_lookup(other, ROOT, "mine", &oa), 0);
	ck_assert_int_eq(bk_write(other, oa.ino, 0, "abc", 3, PAGE), 3);
	ck_assert_int_eq(bk_fsync(other, oa.ino, 0, false), 0);
	ck_assert_int_eq(bk_feed_read(be, note_change, &seen), 0);
	ck_assert(seen.kinds & (1u << BK_CH_DATA));
	ck_assert_uint_eq(seen.data.ino, f);
	/* the bytes written, or more: a feed may not know ranges */
	ck_assert(seen.data.off <= PAGE && seen.data.off + seen.data.len >= PAGE + 3);
	ck_assert_uint_eq(seen.data.size, PAGE + 3);
	ck_assert_int_eq(bk_unlink(other, ROOT, "mine"), 0);
	ck_assert_int_eq(bk_fsync(other, ROOT, 0, false), 0);
	ck_assert_int_eq(bk_feed_read(be, note_change, &seen), 0);
	ck_assert(seen.kinds & (1u << BK_CH_NAME_DEL));
	ck_assert_str_eq(seen.name, "mine");
	ck_assert(!(seen.kinds & (1u << BK_CH_NAME_ADD))); /* our own create */
	seen.n = 0;
	ck_assert_int_eq(bk_feed_read(be, note_change, &seen), 0);
	ck_assert_uint_eq(seen.n, 0);
	bk_close(other);
}
END_TEST

/* Zero-copy reads (read_direct), for backends that have the slot: what reply receives,
 * copied into got. A reply that must fail returns fail. */
struct racer {
	uint64_t ino;
	int kind; /* enum race */
	atomic_bool is_done;
	pthread_t thread;
};

struct direct_got {
	char buf[3 * MIB];
	size_t len;
	int calls, fail;
	struct racer racer; /* racing_reply() starts it; the test joins it */
};

static void gather(struct direct_got *g, const struct iovec *iov, int n)
{
	g->len = 0;
	for (int i = 0; i < n; i++) {
		ck_assert_uint_le(g->len + iov[i].iov_len, sizeof(g->buf));
		memcpy(g->buf + g->len, iov[i].iov_base, iov[i].iov_len);
		g->len += iov[i].iov_len;
	}
}

static int collect_reply(void *ctx, const struct iovec *iov, int n)
{
	struct direct_got *g = ctx;

	g->calls++;
	gather(g, iov, n);
	return g->fail;
}

/* Asserts that read_direct of [off, off + len) gives what read gives, in one reply. */
static void expect_direct(uint64_t ino, off_t off, size_t len)
{
	static struct direct_got g;
	char *want = malloc(len ? len : 1);
	ssize_t n = bk_read(be, ino, 0, want, len, off);

	g = (struct direct_got){ .calls = 0 };
	ck_assert_int_eq(bk_read_direct(be, ino, 0, len, off, collect_reply, &g), n);
	ck_assert_int_eq(g.calls, 1);
	ck_assert_uint_eq(g.len, (size_t)n);
	ck_assert(memcmp(g.buf, want, (size_t)n) == 0);
	free(want);
}

/* bk_reply_fd_fn: what the descriptor holds in the range, read into got. */
static int collect_fd_reply(void *ctx, int fd, off_t off, size_t len)
{
	struct direct_got *g = ctx;

	g->calls++;
	ck_assert_uint_le(len, sizeof(g->buf));
	g->len = (size_t)pread(fd, g->buf, len, off);
	return g->fail;
}

/* Descriptor reads (read_fd), for backends that have the slot: the range read gives the
 * bytes read gives, never past the end of the file; a failed reply is the result. */
START_TEST(test_fd_read)
{
	static struct direct_got g;
	uint64_t f = mk(ROOT, "f", F_REG);
	const struct {
		off_t off;
		size_t len, want;
	} cases[] = { { 0, PAGE, PAGE },
		      { 100, 3 * PAGE, 2 * PAGE + 50 },
		      { 2 * PAGE + 150, PAGE, 0 },
		      { 5 * PAGE, PAGE, 0 } };

	fill(f, 0, 'a', 2 * PAGE);
	fill(f, 2 * PAGE, 'b', 150);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char want[4 * PAGE];

		g = (struct direct_got){ .calls = 0 };
		ck_assert_int_eq(bk_read(be, f, 0, want, cases[i].len, cases[i].off),
				 (ssize_t)cases[i].want);
		ck_assert_int_eq(
			bk_read_fd(be, f, 0, cases[i].len, cases[i].off, collect_fd_reply, &g),
			(ssize_t)cases[i].want);
		ck_assert(g.calls == 1 && g.len == cases[i].want);
		ck_assert(memcmp(g.buf, want, g.len) == 0);
	}
	g = (struct direct_got){ .fail = -EPIPE };
	ck_assert_int_eq(bk_read_fd(be, f, 0, PAGE, 0, collect_fd_reply, &g), -EPIPE);
	ck_assert_int_eq(bk_read_fd(be, 999999, 0, PAGE, 0, collect_fd_reply, &g), -ENOENT);
}
END_TEST

START_TEST(test_direct_read)
{
	static struct direct_got g;
	uint64_t f = mk(ROOT, "f", F_REG), d = mk(ROOT, "d", F_DIR);

	fill(f, 0, 'a', PAGE);
	fill(f, 2 * PAGE + 100, 'c', PAGE);
	fill(f, 2 * MIB, 'e', 2 * PAGE);
	for (off_t off = 0; off < 2 * MIB; off += MIB - 3 * PAGE - 7)
		fill(f, off, 'b' + (int)(off % 20), 50);
	expect_direct(f, 0, 4 * PAGE);
	expect_direct(f, 100, 3 * PAGE);
	expect_direct(f, 2 * PAGE + 50, 10);
	expect_direct(f, 0, 2 * MIB + 3 * PAGE);
	expect_direct(f, 2 * MIB + PAGE, MIB);
	expect_direct(f, 2 * MIB + 2 * PAGE, 10);
	expect_direct(f, 3 * MIB, 10);
	expect_direct(f, 0, 0);
	ck_assert_int_eq(bk_read_direct(be, d, 0, 10, 0, collect_reply, &g), -EISDIR);
	ck_assert_int_eq(bk_read_direct(be, 999999, 0, 10, 0, collect_reply, &g), -ENOENT);
	ck_assert_int_eq(bk_read_direct(be, f, 0, 10, -1, collect_reply, &g), -EINVAL);
	ck_assert_int_eq(g.calls, 0);
	g.fail = -EPIPE;
	ck_assert_int_eq(bk_read_direct(be, f, 0, 10, 0, collect_reply, &g), -EPIPE);
	ck_assert_int_eq(g.calls, 1);
}
END_TEST

enum race { RACE_TRUNCATE, RACE_PUNCH, RACE_WRITE, RACE_NR };
#define RACE_PAGES   8
#define RACE_WAIT_MS 200 /* how long a reply gives the racer to change the file */

/* Changes every byte the reply was given: the pages are freed, or rewritten in place. */
static void *race(void *arg)
{
	struct racer *r = arg;

	if (r->kind == RACE_TRUNCATE)
		set_size(r->ino, 0, 0);
	if (r->kind == RACE_PUNCH)
		ck_assert_int_eq(bk_fallocate(be, r->ino, 0,
					      BK_FALLOC_PUNCH_HOLE | BK_FALLOC_KEEP_SIZE, 0,
					      RACE_PAGES * PAGE),
				 0);
	fill(r->ino, 0, 'z', RACE_PAGES * PAGE);
	atomic_store(&r->is_done, true);
	return NULL;
}

/* While it holds the pieces, lets a racer change the file; the pieces must not change. */
static int racing_reply(void *ctx, const struct iovec *iov, int n)
{
	static struct direct_got after;
	struct direct_got *g = ctx;

	g->calls++;
	gather(g, iov, n);
	ck_assert_int_eq(pthread_create(&g->racer.thread, NULL, race, &g->racer), 0);
	for (int ms = 0; ms < RACE_WAIT_MS && !atomic_load(&g->racer.is_done); ms++)
		usleep(1000);
	gather(&after, iov, n);
	ck_assert(after.len == g->len && memcmp(after.buf, g->buf, g->len) == 0);
	return 0;
}

START_TEST(test_direct_read_pins)
{
	static struct direct_got g;
	uint64_t f = mk(ROOT, "f", F_REG);

	for (int kind = 0; kind < RACE_NR; kind++) {
		fill(f, 0, 'a' + kind, RACE_PAGES * PAGE);
		g = (struct direct_got){ .racer = { .ino = f, .kind = kind } };
		ck_assert_int_eq(bk_read_direct(be, f, 0, RACE_PAGES * PAGE, 0, racing_reply, &g),
				 RACE_PAGES * PAGE);
		ck_assert_int_eq(g.calls, 1);
		ck_assert_int_eq(pthread_join(g.racer.thread, NULL), 0);
		for (size_t i = 0; i < g.len; i++)
			ck_assert_int_eq(g.buf[i], 'a' + kind);
		expect_bytes(f, 0, 'z', RACE_PAGES * PAGE);
	}
}
END_TEST

/* Runs the whole contract against the backend that open makes, one TCase per behaviour,
 * each test on a fresh instance: fx_run_suite()'s exit code. */
static int contract(const char *name, contract_open_fn open)
{
	char title[64];
	Suite *s;

	backend_open = open;
	snprintf(title, sizeof(title), "contract:%s", name);
	s = suite_create(title);
	fx_unit_tcase(s, "namespace", 60, setup, teardown,
		      FX_TESTS(test_root_and_lookup, test_mknod_and_symlink, test_name_max,
			       test_links_and_removal, test_unlink_open_file, test_tmpfile));
	fx_unit_tcase(s, "rename", 60, setup, teardown,
		      FX_TESTS(test_rename_basic, test_rename_replace, test_rename_flags,
			       test_rename_into_subtree));
	fx_unit_tcase(
		s, "readdir", 60, setup, teardown,
		FX_TESTS(test_readdir_basic, test_readdir_stable_cookies, test_readdir_large));
	fx_unit_tcase(s, "data", 60, setup, teardown,
		      FX_TESTS(test_read_and_truncate, test_huge_offset, test_seek_data_hole,
			       test_punch_and_zero, test_fallocate));
	fx_unit_tcase(s, "space", 60, setup, teardown, FX_TESTS(test_statfs_and_enospc));
	fx_unit_tcase(s, "attributes", 60, setup, teardown,
		      FX_TESTS(test_xattr, test_setattr, test_times_data, test_times_namespace));
	fx_unit_tcase(s, "concurrency", 60, setup, teardown, FX_TESTS(test_concurrency));
	fx_unit_tcase(s, "handles", 60, setup, teardown, FX_TESTS(test_handles));
	fx_unit_tcase(s, "persistence", 60, setup, teardown, FX_TESTS(test_persistent));
	fx_unit_tcase(s, "feed", 60, setup, teardown, FX_TESTS(test_feed));
	if (has_slot(bk_has_read_direct))
		fx_unit_tcase(s, "direct", 60, setup, teardown,
			      FX_TESTS(test_direct_read, test_direct_read_pins));
	if (has_slot(bk_has_read_fd))
		fx_unit_tcase(s, "fd_read", 60, setup, teardown, FX_TESTS(test_fd_read));
	return fx_run_suite(s);
}

static int open_mem(uint64_t limit, bool is_again, struct bk **out)
{
	const struct bk_source src = { .arg = "", .has_size = true, .size = limit };

	return bk_open(&bk_mem_ops, &src, NULL, out);
}

#if HAVE_SQLITE
/* A new database in a new directory, or the last one again; sqlite:PATH has no byte limit
 * (no BK_F_LIMIT). */
static int open_sqlite(uint64_t limit, bool is_again, struct bk **out)
{
	char path[sizeof(scratch) + 16];
	const struct bk_source src = { .arg = path };

	if (!is_again)
		snprintf(scratch, sizeof(scratch), "/tmp/check_backend-XXXXXX");
	if (!is_again && !mkdtemp(scratch))
		return -errno;
	snprintf(path, sizeof(path), "%s/fs.db", scratch);
	return bk_open(&bk_sqlite_ops, &src, NULL, out);
}
#endif

/* A new directory in $SIGBUSFS_TEST_DIR_ROOT (default: the tmpfs /dev/shm), or the last
 * one again; dir:PATH has no byte limit of its own. */
static int open_dir(uint64_t limit, bool is_again, struct bk **out)
{
	const struct bk_source src = { .arg = scratch };
	const char *root = getenv("SIGBUSFS_TEST_DIR_ROOT");

	(void)limit;
	if (!is_again)
		snprintf(scratch, sizeof(scratch), "%s/check_backend-XXXXXX",
			 root && *root ? root : "/dev/shm");
	if (!is_again && (!mkdtemp(scratch) || chmod(scratch, 0755) < 0))
		return -errno;
	return bk_open(&bk_dir_ops, &src, NULL, out);
}

/* What the backend logged, for the tests of refused sources. */
static char logged[512];

static void log_to_buffer(void *ctx, enum bk_log_level level, const char *msg)
{
	ck_assert_int_eq(level, BK_LOG_ERR);
	snprintf(logged, sizeof(logged), "%s", msg);
}

START_TEST(test_registry)
{
	ck_assert_str_eq(bk_sources(), HAVE_SQLITE ? "mem:, mem:SIZE, dir:PATH, sqlite:PATH"
						   : "mem:, mem:SIZE, dir:PATH");
	ck_assert_ptr_eq(bk_find("mem", 3), &bk_mem_ops);
	ck_assert_ptr_eq(bk_find("memory", 3), &bk_mem_ops);
	ck_assert_ptr_null(bk_find("me", 2));
	ck_assert_ptr_null(bk_find("nosuch", 6));
	ck_assert_ptr_null(bk_find("", 0));
	ck_assert_int_eq(bk_mem_ops.source_form, BK_SOURCE_SIZE);
}
END_TEST

START_TEST(test_open_errors)
{
	const struct bk_log log = { .fn = log_to_buffer };
	struct bk_source src = { .arg = "1K", .has_size = true, .size = 1024 };
	struct statvfs sv;
	struct bk *b;

	ck_assert_int_eq(bk_open(&bk_mem_ops, &src, &log, &b), -EINVAL);
	ck_assert_ptr_null(b);
	ck_assert_str_eq(logged, "mem: size '1K': too small (at least 64K)");
	src = (struct bk_source){ .arg = "64K", .has_size = true, .size = 64 << 10 };
	ck_assert_int_eq(bk_open(&bk_mem_ops, &src, &log, &b), 0);
	ck_assert_str_eq(bk_name(b), "mem");
	ck_assert_int_eq(bk_statfs(b, &sv), 0);
	ck_assert_uint_eq(sv.f_blocks * sv.f_frsize, 64 << 10);
	bk_close(b);
	src = (struct bk_source){ .arg = "" };
	ck_assert_int_eq(bk_open(&bk_mem_ops, &src, &log, &b), 0);
	ck_assert_int_eq(bk_statfs(b, &sv), 0);
	ck_assert_uint_ge(sv.f_blocks, 16);
	bk_close(b);
}
END_TEST

/* A backend built for another interface version is refused before any slot is called. */
static const struct bk_ops old_ops = { .version = BK_OPS_VERSION - 1, .name = "old" };

START_TEST(test_version)
{
	const struct bk_log log = { .fn = log_to_buffer };
	const struct bk_source src = { .arg = "" };
	struct bk *b = (struct bk *)&src;

	ck_assert_int_eq(bk_open(&old_ops, &src, &log, &b), -EPROTO);
	ck_assert_ptr_null(b);
	ck_assert_str_eq(logged, "old: backend interface version 1, this sigbusfs needs 2");
}
END_TEST

/* A backend with most slots NULL and no BK_F_THREADSAFE, driven through the wrappers. */
static int stub_getattr(struct bk *b, uint64_t ino, struct bk_attr *out)
{
	ck_assert_ptr_nonnull(b->lock);
	ck_assert_int_ne(pthread_mutex_trylock(b->lock), 0);
	return ino == ROOT ? 0 : -ENOENT;
}

static const struct bk_ops stub_ops = {
	.version = BK_OPS_VERSION,
	.name = "stub",
	.getattr = stub_getattr,
};

START_TEST(test_wrappers)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct bk stub = { .ops = &stub_ops, .lock = &lock };
	uint64_t fh = 1;
	struct bk_attr a;
	char buf[8];

	ck_assert_int_eq(bk_getattr(&stub, ROOT, &a), 0);
	ck_assert_int_eq(bk_getattr(&stub, 2, &a), -ENOENT);
	ck_assert_int_eq(pthread_mutex_trylock(&lock), 0);
	pthread_mutex_unlock(&lock);
	ck_assert_int_eq(bk_lookup(&stub, ROOT, "x", &a), -ENOSYS);
	ck_assert_int_eq(bk_read(&stub, 2, 0, buf, sizeof(buf), 0), -ENOSYS);
	ck_assert_int_eq(bk_lseek(&stub, 2, 0, SEEK_DATA), -ENOSYS);
	ck_assert_int_eq(bk_listxattr(&stub, 2, buf, sizeof(buf)), -ENOSYS);
	ck_assert_int_eq(bk_fsync(&stub, 2, 0, true), 0);
	ck_assert_int_eq(bk_fopen(&stub, 2, O_RDONLY, &fh), 0);
	ck_assert_uint_eq(fh, 0);
	bk_frelease(&stub, 2, fh);
	bk_forget(&stub, 2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("registry");
	int failed;

	fx_unit_tcase(s, "registry", 0, NULL, NULL,
		      FX_TESTS(test_registry, test_open_errors, test_version, test_wrappers));
	failed = fx_run_suite(s);
	failed |= contract("mem", open_mem);
	failed |= contract("dir", open_dir);
#if HAVE_SQLITE
	failed |= contract("sqlite", open_sqlite);
#endif
	return failed;
}
