/* POSIX operations through the kernel on a real sigbusfs mount: file I/O, stat fields and
 * times, directories, unlink and rename, links, special files, readdir, statfs and ENOSPC,
 * fallocate, SEEK_DATA/SEEK_HOLE, user xattrs, and ownership and permission rules checked
 * from processes running as other users. mmap behaviour is in check_mmap.c. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/magic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"

#define MIB	     (1024 * 1024)
#define SMALL_FS_MIB 16
#define NOBODY	     65534
#define OTHER_UID    65533
#define OTHER_GID    1234
#define NENTRIES     1000

static struct mnt mnt; /* one per TCase, shared by its tests */
static int teardown_failures;
static char workdir[PATH_MAX]; /* this test's own directory in the mount */

/* workdir + "/" + rel in one of a few rotating buffers, so calls can be nested. */
static const char *P(const char *rel)
{
	static char bufs[8][PATH_MAX];
	static unsigned next;
	char *b = bufs[next++ % 8];
	int n = snprintf(b, PATH_MAX, "%s/%s", workdir, rel);

	ck_assert(n > 0 && n < PATH_MAX);
	return b;
}

/* Checked fixture: each test works in a fresh directory, so tests sharing a mount do not
 * see each other's names and can run alone (CK_RUN_TEST). */
static void enter_workdir(void)
{
	static unsigned n; /* with CK_FORK=no, tests share one process */
	char rel[32];

	snprintf(rel, sizeof(rel), "t%d-%u", (int)getpid(), n++);
	fx_path(&mnt, rel, workdir, sizeof(workdir));
	ck_assert_msg(mkdir(workdir, 0755) == 0, "mkdir %s: %s", workdir, strerror(errno));
}

static void mount_or_abort(const char *source, const char *opts)
{
	int rc = fx_mount(&mnt, source, opts);

	ck_assert_msg(rc == 0, "fx_mount(%s, %s): %s", source, opts ? opts : "-", strerror(-rc));
}

static void setup_default(void)
{
	mount_or_abort("mem:", NULL);
}

static void setup_small(void)
{
	mount_or_abort("mem:16M", NULL); /* SMALL_FS_MIB */
}

/* Other users act in this mount: allow_other, and a root directory they can enter. */
static void setup_shared(void)
{
	mount_or_abort("mem:", "allow_other");
	ck_assert_int_eq(chmod(mnt.dir, 0755), 0);
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

static void tick(void)
{
	usleep(20 * 1000);
}

static int ts_cmp(struct timespec a, struct timespec b)
{
	if (a.tv_sec != b.tv_sec)
		return a.tv_sec < b.tv_sec ? -1 : 1;
	if (a.tv_nsec != b.tv_nsec)
		return a.tv_nsec < b.tv_nsec ? -1 : 1;
	return 0;
}

static struct stat stat_of(const char *path)
{
	struct stat st;

	ck_assert_msg(lstat(path, &st) == 0, "lstat %s: %s", path, strerror(errno));
	return st;
}

static void create_file(const char *path, const char *content)
{
	int rc = fx_write_file(path, content, strlen(content));

	ck_assert_msg(rc == 0, "write %s: %s", path, strerror(-rc));
}

/* The whole content of path, NUL-terminated, in a static buffer. */
static const char *slurp(const char *path)
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

/* Checks that [off, off+len) of path holds val: through the page cache with pread, and as the
 * daemon stores it with an O_DIRECT descriptor of the same file. */
static void expect_range(const char *path, off_t off, size_t len, char val)
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

/* Runs fn(arg) in a child process with these credentials (no supplementary groups besides
 * extra, which may be 0). Returns fn's result; a failure message is in fx_failure(). */
struct as_user {
	uid_t uid;
	gid_t gid;
	gid_t extra;
	int (*fn)(void *arg);
	void *arg;
};

static int as_user_main(void *arg)
{
	struct as_user *u = arg;
	gid_t groups[1] = { u->extra };

	if (setgroups(u->extra ? 1 : 0, groups) < 0 || setresgid(u->gid, u->gid, u->gid) < 0 ||
	    setresuid(u->uid, u->uid, u->uid) < 0)
		return FX_FAIL("become %d:%d: %s", (int)u->uid, (int)u->gid, strerror(errno));
	return u->fn(u->arg);
}

static void run_as(uid_t uid, gid_t gid, gid_t extra, int (*fn)(void *), void *arg)
{
	struct as_user u = { uid, gid, extra, fn, arg };
	int rc = fx_child(as_user_main, &u);

	ck_assert_msg(rc == 0, "child as uid %d ended with %d: %s", (int)uid, rc, fx_failure());
}

/* In a child: returns FX_FAIL(...) unless call fails with errno e (or succeeds, if e is 0). */
#define EXPECT_ERRNO(call, e)                                                           \
	do {                                                                            \
		int rc_ = (call);                                                       \
		int err_ = rc_ < 0 ? errno : 0;                                         \
		if ((e) == 0 ? rc_ < 0 : (rc_ >= 0 || err_ != (e)))                     \
			return FX_FAIL("%s: returned %d (%s), expected %s", #call, rc_, \
				       strerror(err_), (e) ? strerror(e) : "success");  \
	} while (0)

/* ---- files ---- */

START_TEST(test_create_read_write)
{
	char buf[64];
	struct stat st;
	int fd = open(P("f"), O_CREAT | O_EXCL | O_RDWR, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "hello, world", 12), 12);
	ck_assert_int_eq(pwrite(fd, "W", 1, 7), 1);
	ck_assert_int_eq(fsync(fd), 0);
	ck_assert_int_eq(fdatasync(fd), 0);
	ck_assert_int_eq(close(fd), 0);
	ck_assert_int_eq(open(P("f"), O_CREAT | O_EXCL | O_RDWR, 0644), -1);
	ck_assert_int_eq(errno, EEXIST);
	ck_assert_int_eq(open(P("missing"), O_RDONLY), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_str_eq(slurp(P("f")), "hello, World");

	fd = open(P("f"), O_WRONLY | O_APPEND);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	ck_assert_int_eq(write(fd, "!", 1), 1);
	ck_assert_int_eq(close(fd), 0);
	ck_assert_str_eq(slurp(P("f")), "hello, World!");

	fd = open(P("f"), O_RDWR | O_TRUNC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, 0);
	ck_assert_int_eq(pread(fd, buf, sizeof(buf), 0), 0);
	ck_assert_int_eq(close(fd), 0);
}
END_TEST

START_TEST(test_large_unaligned_io)
{
	const size_t size = 3 * MIB + 123, step = 7777;
	char *data = malloc(size), *back = malloc(size);
	int fd = open(P("big"), O_CREAT | O_RDWR, 0644), out;
	off_t in_off, out_off;

	ck_assert_int_ge(fd, 0);
	for (size_t i = 0; i < size; i++)
		data[i] = (char)(i * 7 + i / 4096);
	for (size_t off = 0; off < size; off += step) {
		size_t n = size - off < step ? size - off : step;

		ck_assert_int_eq(pwrite(fd, data + off, n, (off_t)off), (ssize_t)n);
	}
	ck_assert_int_eq(close(fd), 0);
	fd = open(P("big"), O_RDONLY);
	ck_assert_int_eq(read(fd, back, size), (ssize_t)size);
	ck_assert_int_eq(read(fd, back, 1), 0);
	ck_assert_int_eq(close(fd), 0);
	ck_assert_msg(memcmp(data, back, size) == 0, "read back differs from what was written");

	/* copy_file_range: through FUSE_COPY_FILE_RANGE or the kernel's fallback */
	fd = open(P("big"), O_RDONLY);
	out = open(P("copy"), O_CREAT | O_RDWR, 0644);
	ck_assert_int_ge(out, 0);
	in_off = 4000;
	out_off = 100;
	for (size_t done = 0; done < MIB;) {
		ssize_t n = copy_file_range(fd, &in_off, out, &out_off, MIB - done, 0);

		ck_assert_msg(n > 0, "copy_file_range: %zd (%s)", n, strerror(errno));
		done += (size_t)n;
	}
	ck_assert_int_eq(pread(out, back, MIB + 100, 0), MIB + 100);
	ck_assert_msg(memcmp(back + 100, data + 4000, MIB) == 0,
		      "copy_file_range copied wrong bytes");
	ck_assert_int_eq(close(out), 0);
	ck_assert_int_eq(close(fd), 0);
	free(data);
	free(back);
}
END_TEST

START_TEST(test_truncate_zeroes)
{
	char buf[10000];
	int fd = open(P("t"), O_CREAT | O_RDWR, 0644);

	memset(buf, 'x', sizeof(buf));
	ck_assert_int_eq(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	ck_assert_int_eq(ftruncate(fd, 100), 0);
	ck_assert_int_eq(stat_of(P("t")).st_size, 100);
	ck_assert_int_eq(ftruncate(fd, 10000), 0);
	ck_assert_int_eq(close(fd), 0);
	expect_range(P("t"), 0, 100, 'x');
	expect_range(P("t"), 100, 9900, 0);
	ck_assert_int_eq(truncate(P("t"), 5), 0);
	ck_assert_int_eq(stat_of(P("t")).st_size, 5);
	ck_assert_int_eq(mkdir(P("d"), 0755), 0);
	ck_assert_int_eq(truncate(P("d"), 0), -1);
	ck_assert_int_eq(errno, EISDIR);
}
END_TEST

/* ---- stat fields and times ---- */

START_TEST(test_stat_fields)
{
	struct stat f, g, d, root;
	char buf[8192];

	memset(buf, 'b', sizeof(buf));
	ck_assert_int_eq(fx_write_file(P("f"), buf, sizeof(buf)), 0);
	create_file(P("g"), "");
	ck_assert_int_eq(mkdir(P("d"), 0777), 0);
	f = stat_of(P("f"));
	g = stat_of(P("g"));
	d = stat_of(P("d"));
	root = stat_of(mnt.dir);
	ck_assert_int_eq(f.st_mode, S_IFREG | 0644);
	ck_assert_int_eq(f.st_nlink, 1);
	ck_assert_int_eq(f.st_uid, getuid());
	ck_assert_int_eq(f.st_gid, getgid());
	ck_assert_int_eq(f.st_size, 8192);
	ck_assert_int_ge(f.st_blocks * 512, 8192);
	ck_assert_int_gt(f.st_blksize, 0);
	ck_assert_int_eq(f.st_dev, root.st_dev);
	ck_assert_int_ne(f.st_ino, g.st_ino);
	ck_assert_int_ne(f.st_ino, d.st_ino);
	ck_assert_int_eq(g.st_size, 0);
	ck_assert_int_eq(d.st_mode, S_IFDIR | 0755);
	ck_assert_int_eq(d.st_nlink, 2);
	ck_assert(S_ISDIR(root.st_mode));
}
END_TEST

START_TEST(test_times_on_write)
{
	struct stat a, b;
	struct timespec set[2] = { { 1000000000, 123456789 }, { 1100000000, 987654321 } };
	char c;
	int fd = open(P("f"), O_CREAT | O_RDWR, 0644);

	ck_assert_int_ge(fd, 0);
	a = stat_of(P("f"));
	tick();
	ck_assert_int_eq(write(fd, "data", 4), 4);
	b = stat_of(P("f"));
	ck_assert_int_gt(ts_cmp(b.st_mtim, a.st_mtim), 0);
	ck_assert_int_gt(ts_cmp(b.st_ctim, a.st_ctim), 0);
	tick();
	ck_assert_int_eq(ftruncate(fd, 2), 0);
	a = stat_of(P("f"));
	ck_assert_int_gt(ts_cmp(a.st_mtim, b.st_mtim), 0);
	ck_assert_int_gt(ts_cmp(a.st_ctim, b.st_ctim), 0);
	tick();
	ck_assert_int_eq(pread(fd, &c, 1, 0), 1);
	b = stat_of(P("f"));
	ck_assert_int_eq(ts_cmp(b.st_mtim, a.st_mtim), 0);
	ck_assert_int_eq(ts_cmp(b.st_ctim, a.st_ctim), 0);
	ck_assert_int_eq(close(fd), 0);

	tick();
	ck_assert_int_eq(utimensat(AT_FDCWD, P("f"), set, 0), 0);
	b = stat_of(P("f"));
	ck_assert_int_eq(ts_cmp(b.st_atim, set[0]), 0);
	ck_assert_int_eq(ts_cmp(b.st_mtim, set[1]), 0);
	ck_assert_int_gt(ts_cmp(b.st_ctim, a.st_ctim), 0);
	set[0].tv_nsec = UTIME_OMIT;
	set[1].tv_nsec = UTIME_NOW;
	tick();
	ck_assert_int_eq(utimensat(AT_FDCWD, P("f"), set, 0), 0);
	a = stat_of(P("f"));
	ck_assert_int_eq(ts_cmp(a.st_atim, b.st_atim), 0);
	ck_assert_int_gt(ts_cmp(a.st_mtim, b.st_ctim), 0);
}
END_TEST

/* what succeeded (rc is its result) and advanced the mtime and ctime of every path in dirs
 * from the stat in before[]. DIR_OP runs an operation between the stats. */
static void expect_dir_times_advance(const char *what, int rc, const char *const *dirs,
				     const struct stat *before)
{
	ck_assert_msg(rc == 0, "%s: %s", what, strerror(errno));
	for (int i = 0; dirs[i]; i++) {
		struct stat now = stat_of(dirs[i]);

		ck_assert_msg(ts_cmp(now.st_mtim, before[i].st_mtim) > 0,
			      "%s: mtime of %s unchanged", what, dirs[i]);
		ck_assert_msg(ts_cmp(now.st_ctim, before[i].st_ctim) > 0,
			      "%s: ctime of %s unchanged", what, dirs[i]);
	}
}

#define DIR_OP(op, ...)                                              \
	do {                                                         \
		const char *const dirs_[] = { __VA_ARGS__, NULL };   \
		struct stat before_[4];                              \
		for (int i_ = 0; dirs_[i_]; i_++)                    \
			before_[i_] = stat_of(dirs_[i_]);            \
		tick();                                              \
		expect_dir_times_advance(#op, (op), dirs_, before_); \
	} while (0)

START_TEST(test_times_on_dir_ops)
{
	struct stat f0, f1;

	ck_assert_int_eq(mkdir(P("a"), 0755), 0);
	ck_assert_int_eq(mkdir(P("b"), 0755), 0);
	DIR_OP(fx_write_file(P("a/f"), "x", 1), P("a"));
	DIR_OP(mkdir(P("a/sub"), 0755), P("a"));
	DIR_OP(rmdir(P("a/sub")), P("a"));
	DIR_OP(symlink("f", P("a/l")), P("a"));
	DIR_OP(link(P("a/f"), P("a/h")), P("a"));
	DIR_OP(unlink(P("a/h")), P("a"));
	DIR_OP(mkfifo(P("a/p"), 0644), P("a"));
	f0 = stat_of(P("a/f"));
	DIR_OP(rename(P("a/f"), P("b/f")), P("a"), P("b"));
	f1 = stat_of(P("b/f"));
	ck_assert_int_eq(f0.st_ino, f1.st_ino);
	ck_assert_msg(ts_cmp(f1.st_ctim, f0.st_ctim) > 0, "rename left the file's ctime unchanged");
	DIR_OP(unlink(P("b/f")), P("b"));
}
END_TEST

START_TEST(test_ctime_on_attr_change)
{
	struct stat a, b;

	create_file(P("f"), "x");
	a = stat_of(P("f"));
	tick();
	ck_assert_int_eq(chmod(P("f"), 0600), 0);
	b = stat_of(P("f"));
	ck_assert_int_eq(b.st_mode, S_IFREG | 0600);
	ck_assert_int_gt(ts_cmp(b.st_ctim, a.st_ctim), 0);
	ck_assert_int_eq(ts_cmp(b.st_mtim, a.st_mtim), 0);
	tick();
	ck_assert_int_eq(chown(P("f"), OTHER_UID, OTHER_GID), 0);
	a = stat_of(P("f"));
	ck_assert_int_eq(a.st_uid, OTHER_UID);
	ck_assert_int_eq(a.st_gid, OTHER_GID);
	ck_assert_int_gt(ts_cmp(a.st_ctim, b.st_ctim), 0);
	ck_assert_int_eq(ts_cmp(a.st_mtim, b.st_mtim), 0);
	tick();
	ck_assert_int_eq(link(P("f"), P("g")), 0);
	b = stat_of(P("f"));
	ck_assert_int_eq(b.st_nlink, 2);
	ck_assert_int_gt(ts_cmp(b.st_ctim, a.st_ctim), 0);
	ck_assert_int_eq(ts_cmp(b.st_mtim, a.st_mtim), 0);
}
END_TEST

/* ---- directories, unlink, rename, links ---- */

START_TEST(test_mkdir_rmdir)
{
	ck_assert_int_eq(mkdir(P("d"), 0755), 0);
	ck_assert_int_eq(mkdir(P("d"), 0755), -1);
	ck_assert_int_eq(errno, EEXIST);
	create_file(P("d/f"), "x");
	ck_assert_int_eq(rmdir(P("d")), -1);
	ck_assert_int_eq(errno, ENOTEMPTY);
	ck_assert_int_eq(rmdir(P("d/f")), -1);
	ck_assert_int_eq(errno, ENOTDIR);
	ck_assert_int_eq(unlink(P("d")), -1);
	ck_assert_int_eq(errno, EISDIR);
	ck_assert_int_eq(open(P("d/f/x"), O_CREAT | O_WRONLY, 0644), -1);
	ck_assert_int_eq(errno, ENOTDIR);
	ck_assert_int_eq(unlink(P("d/f")), 0);
	ck_assert_int_eq(rmdir(P("d")), 0);
	ck_assert_int_eq(access(P("d"), F_OK), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(rmdir(P("d")), -1);
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(test_name_limits)
{
	char name[260];

	memset(name, 'n', 255);
	name[255] = '\0';
	ck_assert_int_eq(mkdir(P(name), 0755), 0);
	ck_assert(S_ISDIR(stat_of(P(name)).st_mode));
	name[255] = 'n';
	name[256] = '\0';
	ck_assert_int_eq(mkdir(P(name), 0755), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
	ck_assert_int_eq(open(P(name), O_CREAT | O_WRONLY, 0644), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
	ck_assert_int_eq(symlink("x", P(name)), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
}
END_TEST

START_TEST(test_link_counts)
{
	ck_assert_int_eq(mkdir(P("d"), 0755), 0);
	ck_assert_int_eq(mkdir(P("e"), 0755), 0);
	for (int i = 0; i < 3; i++) {
		char name[16];

		snprintf(name, sizeof(name), "d/s%d", i);
		ck_assert_int_eq(mkdir(P(name), 0755), 0);
	}
	ck_assert_int_eq(stat_of(P("d")).st_nlink, 5);
	ck_assert_int_eq(rmdir(P("d/s0")), 0);
	ck_assert_int_eq(stat_of(P("d")).st_nlink, 4);
	ck_assert_int_eq(rename(P("d/s1"), P("e/s1")), 0);
	ck_assert_int_eq(stat_of(P("d")).st_nlink, 3);
	ck_assert_int_eq(stat_of(P("e")).st_nlink, 3);

	create_file(P("f"), "x");
	ck_assert_int_eq(link(P("f"), P("d/f2")), 0);
	ck_assert_int_eq(link(P("f"), P("e/f3")), 0);
	ck_assert_int_eq(stat_of(P("f")).st_nlink, 3);
	ck_assert_int_eq(stat_of(P("d/f2")).st_ino, stat_of(P("f")).st_ino);
	ck_assert_int_eq(unlink(P("f")), 0);
	ck_assert_int_eq(stat_of(P("e/f3")).st_nlink, 2);
	ck_assert_str_eq(slurp(P("e/f3")), "x");
	ck_assert_int_eq(link(P("d"), P("dl")), -1);
	ck_assert_int_eq(errno, EPERM);
	ck_assert_int_eq(link(P("e/f3"), P("d/f2")), -1);
	ck_assert_int_eq(errno, EEXIST);
}
END_TEST

START_TEST(test_unlinked_open_file)
{
	char buf[32] = { 0 };
	struct stat st;
	int fd = open(P("u"), O_CREAT | O_RDWR, 0644);
	int fd2 = open(P("u"), O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_ge(fd2, 0);
	ck_assert_int_eq(write(fd, "before", 6), 6);
	ck_assert_int_eq(unlink(P("u")), 0);
	ck_assert_int_eq(access(P("u"), F_OK), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_nlink, 0);
	ck_assert_int_eq(st.st_size, 6);

	create_file(P("u"), "new file");
	ck_assert_int_ne(stat_of(P("u")).st_ino, st.st_ino);
	ck_assert_int_eq(pwrite(fd, "after", 5, 6), 5);
	ck_assert_int_eq(close(fd), 0);
	ck_assert_int_eq(pread(fd2, buf, sizeof(buf), 0), 11);
	ck_assert_str_eq(buf, "beforeafter");
	ck_assert_int_eq(fstat(fd2, &st), 0);
	ck_assert_int_eq(st.st_size, 11);
	ck_assert_int_eq(close(fd2), 0);
	ck_assert_str_eq(slurp(P("u")), "new file");
}
END_TEST

START_TEST(test_rename_over_file)
{
	char buf[16] = { 0 };
	struct stat st;
	int old_fd;

	create_file(P("a"), "aaa");
	create_file(P("b"), "bbbbb");
	old_fd = open(P("b"), O_RDWR);
	ck_assert_int_ge(old_fd, 0);
	ck_assert_int_eq(rename(P("a"), P("b")), 0);
	ck_assert_int_eq(access(P("a"), F_OK), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_str_eq(slurp(P("b")), "aaa");
	ck_assert_int_eq(pwrite(old_fd, "B", 1, 0), 1);
	ck_assert_int_eq(pread(old_fd, buf, sizeof(buf), 0), 5);
	ck_assert_str_eq(buf, "Bbbbb");
	ck_assert_str_eq(slurp(P("b")), "aaa");
	ck_assert_int_eq(fstat(old_fd, &st), 0);
	ck_assert_int_eq(st.st_nlink, 0);
	ck_assert_int_eq(close(old_fd), 0);

	ck_assert_int_eq(mkdir(P("d"), 0755), 0);
	ck_assert_int_eq(rename(P("b"), P("d")), -1);
	ck_assert_int_eq(errno, EISDIR);
	ck_assert_int_eq(rename(P("d"), P("b")), -1);
	ck_assert_int_eq(errno, ENOTDIR);
	ck_assert_int_eq(rename(P("b"), P("d/b")), 0);
	ck_assert_str_eq(slurp(P("d/b")), "aaa");
}
END_TEST

START_TEST(test_rename_noreplace)
{
	create_file(P("a"), "aaa");
	create_file(P("b"), "bbb");
	ck_assert_int_eq(renameat2(AT_FDCWD, P("a"), AT_FDCWD, P("b"), RENAME_NOREPLACE), -1);
	ck_assert_int_eq(errno, EEXIST);
	ck_assert_str_eq(slurp(P("a")), "aaa");
	ck_assert_str_eq(slurp(P("b")), "bbb");
	ck_assert_int_eq(renameat2(AT_FDCWD, P("a"), AT_FDCWD, P("c"), RENAME_NOREPLACE), 0);
	ck_assert_str_eq(slurp(P("c")), "aaa");
	ck_assert_int_eq(access(P("a"), F_OK), -1);
}
END_TEST

START_TEST(test_rename_exchange)
{
	ino_t ia, id;

	create_file(P("a"), "aaa");
	create_file(P("b"), "bbb");
	ck_assert_int_eq(mkdir(P("d"), 0755), 0);
	create_file(P("d/in"), "in d");
	ck_assert_int_eq(renameat2(AT_FDCWD, P("a"), AT_FDCWD, P("b"), RENAME_EXCHANGE), 0);
	ck_assert_str_eq(slurp(P("a")), "bbb");
	ck_assert_str_eq(slurp(P("b")), "aaa");

	ia = stat_of(P("a")).st_ino;
	id = stat_of(P("d")).st_ino;
	ck_assert_int_eq(renameat2(AT_FDCWD, P("a"), AT_FDCWD, P("d"), RENAME_EXCHANGE), 0);
	ck_assert(S_ISDIR(stat_of(P("a")).st_mode));
	ck_assert(S_ISREG(stat_of(P("d")).st_mode));
	ck_assert_int_eq(stat_of(P("a")).st_ino, id);
	ck_assert_int_eq(stat_of(P("d")).st_ino, ia);
	ck_assert_str_eq(slurp(P("a/in")), "in d");
	ck_assert_str_eq(slurp(P("d")), "bbb");
	ck_assert_int_eq(renameat2(AT_FDCWD, P("b"), AT_FDCWD, P("none"), RENAME_EXCHANGE), -1);
	ck_assert_int_eq(errno, ENOENT);

	/* across directories, a directory for a file: both parents' link counts change */
	ck_assert_int_eq(mkdir(P("p"), 0755), 0);
	ck_assert_int_eq(mkdir(P("p/sub"), 0755), 0);
	ck_assert_int_eq(renameat2(AT_FDCWD, P("p/sub"), AT_FDCWD, P("b"), RENAME_EXCHANGE), 0);
	ck_assert(S_ISDIR(stat_of(P("b")).st_mode));
	ck_assert_str_eq(slurp(P("p/sub")), "aaa");
	ck_assert_int_eq(stat_of(P("p")).st_nlink, 2);
	ck_assert_int_eq(stat_of(workdir).st_nlink, 5);
}
END_TEST

START_TEST(test_rename_dirs)
{
	ck_assert_int_eq(mkdir(P("src"), 0755), 0);
	create_file(P("src/f"), "f");
	ck_assert_int_eq(mkdir(P("full"), 0755), 0);
	create_file(P("full/x"), "x");
	ck_assert_int_eq(mkdir(P("empty"), 0755), 0);
	ck_assert_int_eq(rename(P("src"), P("full")), -1);
	ck_assert_int_eq(errno, ENOTEMPTY);
	ck_assert_str_eq(slurp(P("full/x")), "x");
	ck_assert_int_eq(mkdir(P("src/sub"), 0755), 0);
	ck_assert_int_eq(rename(P("src"), P("src/sub/loop")), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(rename(P("src"), P("empty")), 0);
	ck_assert_str_eq(slurp(P("empty/f")), "f");
	ck_assert_int_eq(access(P("src"), F_OK), -1);
	ck_assert_int_eq(stat_of(workdir).st_nlink, 4);
}
END_TEST

START_TEST(test_symlink)
{
	char buf[2048], long_target[1001];
	struct stat st;

	create_file(P("target"), "pointed at");
	ck_assert_int_eq(symlink("target", P("l")), 0);
	st = stat_of(P("l"));
	ck_assert(S_ISLNK(st.st_mode));
	ck_assert_int_eq(st.st_size, 6);
	ck_assert_int_eq(readlink(P("l"), buf, sizeof(buf)), 6);
	ck_assert_mem_eq(buf, "target", 6);
	ck_assert_str_eq(slurp(P("l")), "pointed at");
	ck_assert_int_eq(symlink("elsewhere", P("l")), -1);
	ck_assert_int_eq(errno, EEXIST);

	ck_assert_int_eq(symlink("no/such/file", P("dangling")), 0);
	ck_assert_int_eq(open(P("dangling"), O_RDONLY), -1);
	ck_assert_int_eq(errno, ENOENT);
	memset(long_target, 'x', 1000);
	long_target[1000] = '\0';
	ck_assert_int_eq(symlink(long_target, P("long")), 0);
	ck_assert_int_eq(readlink(P("long"), buf, sizeof(buf)), 1000);
	ck_assert_mem_eq(buf, long_target, 1000);
	ck_assert_int_eq(readlink(P("target"), buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(test_mknod)
{
	char c = 0;
	struct stat st;
	int fd;

	ck_assert_int_eq(mkfifo(P("fifo"), 0640), 0);
	st = stat_of(P("fifo"));
	ck_assert_int_eq(st.st_mode, S_IFIFO | 0640);
	fd = open(P("fifo"), O_RDWR | O_NONBLOCK);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "p", 1), 1);
	ck_assert_int_eq(read(fd, &c, 1), 1);
	ck_assert_int_eq(c, 'p');
	ck_assert_int_eq(close(fd), 0);

	ck_assert_int_eq(mknod(P("reg"), S_IFREG | 0600, 0), 0);
	ck_assert_int_eq(stat_of(P("reg")).st_mode, S_IFREG | 0600);
	ck_assert_int_eq(stat_of(P("reg")).st_size, 0);
	ck_assert_int_eq(mknod(P("sock"), S_IFSOCK | 0600, 0), 0);
	ck_assert(S_ISSOCK(stat_of(P("sock")).st_mode));
	ck_assert_int_eq(mknod(P("null"), S_IFCHR | 0666, makedev(1, 3)), 0);
	st = stat_of(P("null"));
	ck_assert(S_ISCHR(st.st_mode));
	ck_assert_int_eq(st.st_rdev, makedev(1, 3));
	ck_assert_int_eq(mkfifo(P("fifo"), 0640), -1);
	ck_assert_int_eq(errno, EEXIST);
}
END_TEST

/* ---- readdir ---- */

static void make_entries(const char *dir, int n)
{
	char rel[64];

	ck_assert_int_eq(mkdir(P(dir), 0755), 0);
	for (int i = 0; i < n; i++) {
		snprintf(rel, sizeof(rel), "%s/entry-%04d", dir, i);
		create_file(P(rel), "");
	}
}

/* The index of a name made by make_entries(), or -1 for anything else but "." and "..". */
static int entry_index(const char *name)
{
	int i;
	char end;

	if (sscanf(name, "entry-%d%c", &i, &end) != 1 || i < 0 || i >= NENTRIES)
		return -1;
	return i;
}

START_TEST(test_readdir_1000)
{
	static int seen[NENTRIES];
	int dots = 0, n = 0;
	struct dirent *de;
	DIR *d;

	make_entries("big", NENTRIES);
	ck_assert_int_eq(mkdir(P("big/subdir"), 0755), 0);
	d = opendir(P("big"));
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d))) {
		int i = entry_index(de->d_name);
		char rel[300];

		snprintf(rel, sizeof(rel), "big/%s", de->d_name);
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) {
			dots++;
			continue;
		}
		if (!strcmp(de->d_name, "subdir")) {
			ck_assert(de->d_type == DT_DIR || de->d_type == DT_UNKNOWN);
			continue;
		}
		ck_assert_msg(i >= 0, "unexpected entry %s", de->d_name);
		ck_assert_msg(seen[i] == 0, "entry %s listed twice", de->d_name);
		seen[i] = 1;
		n++;
		ck_assert(de->d_type == DT_REG || de->d_type == DT_UNKNOWN);
		ck_assert_int_eq(de->d_ino, stat_of(P(rel)).st_ino);
	}
	ck_assert_int_eq(closedir(d), 0);
	ck_assert_int_eq(dots, 2);
	ck_assert_int_eq(n, NENTRIES);
}
END_TEST

/* Lists dir with getdents64 in small batches, calling on_batch(after) after each batch.
 * Fails on a duplicate or a foreign name; fills seen[]. */
static void list_small_batches(const char *dir, int *seen, void (*on_batch)(const int *seen))
{
	char buf[1024];
	int fd = open(P(dir), O_RDONLY | O_DIRECTORY);
	long n;

	ck_assert_int_ge(fd, 0);
	while ((n = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
		for (long pos = 0; pos < n;) {
			struct dirent64 *de = (struct dirent64 *)(buf + pos);
			int i = entry_index(de->d_name);

			pos += de->d_reclen;
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			ck_assert_msg(i >= 0, "unexpected entry %s", de->d_name);
			ck_assert_msg(seen[i] == 0, "entry %s listed twice", de->d_name);
			seen[i] = 1;
		}
		on_batch(seen);
	}
	ck_assert_msg(n == 0, "getdents64: %s", strerror(errno));
	ck_assert_int_eq(close(fd), 0);
}

/* rm -r style: every entry seen so far is unlinked before the next batch is read. */
static void unlink_seen(const int *seen)
{
	static int done[NENTRIES];
	char rel[64];

	for (int i = 0; i < NENTRIES; i++) {
		if (!seen[i] || done[i])
			continue;
		snprintf(rel, sizeof(rel), "rm/entry-%04d", i);
		ck_assert_msg(unlink(P(rel)) == 0, "unlink %s: %s", rel, strerror(errno));
		done[i] = 1;
	}
}

START_TEST(test_readdir_unlink_each)
{
	static int seen[NENTRIES];

	make_entries("rm", NENTRIES);
	list_small_batches("rm", seen, unlink_seen);
	for (int i = 0; i < NENTRIES; i++)
		ck_assert_msg(seen[i], "entry-%04d was never listed", i);
	ck_assert_int_eq(rmdir(P("rm")), 0);
}
END_TEST

/* After the first batch, unlinks every third entry, listed yet or not. */
static void unlink_thirds_once(const int *seen)
{
	static int done;
	char rel[64];

	(void)seen;
	if (done++)
		return;
	for (int i = 0; i < NENTRIES; i += 3) {
		snprintf(rel, sizeof(rel), "thirds/entry-%04d", i);
		ck_assert_int_eq(unlink(P(rel)), 0);
	}
}

START_TEST(test_readdir_unlink_others)
{
	static int seen[NENTRIES];

	make_entries("thirds", NENTRIES);
	list_small_batches("thirds", seen, unlink_thirds_once);
	for (int i = 0; i < NENTRIES; i++)
		ck_assert_msg(i % 3 == 0 || seen[i], "entry-%04d was never unlinked nor listed", i);
}
END_TEST

START_TEST(test_seekdir)
{
	char next[256];
	struct dirent *de;
	long pos;
	int n = 0;
	DIR *d;

	make_entries("s", NENTRIES);
	d = opendir(P("s"));
	ck_assert_ptr_nonnull(d);
	for (int i = 0; i < 300; i++)
		ck_assert_ptr_nonnull(readdir(d));
	pos = telldir(d);
	de = readdir(d);
	ck_assert_ptr_nonnull(de);
	snprintf(next, sizeof(next), "%s", de->d_name);
	while (readdir(d))
		;
	seekdir(d, pos);
	de = readdir(d);
	ck_assert_ptr_nonnull(de);
	ck_assert_str_eq(de->d_name, next);
	rewinddir(d);
	while (readdir(d))
		n++;
	ck_assert_int_eq(n, NENTRIES + 2);
	ck_assert_int_eq(closedir(d), 0);
}
END_TEST

/* ---- space: statfs, ENOSPC ---- */

static uint64_t free_bytes(void)
{
	struct statvfs sv;

	ck_assert_int_eq(statvfs(mnt.dir, &sv), 0);
	return (uint64_t)sv.f_bfree * sv.f_frsize;
}

/* Free space settles after an unlink once the kernel has sent FORGET; waits up to 2 s. */
static uint64_t free_bytes_at_least(uint64_t want)
{
	uint64_t got = free_bytes();

	for (int i = 0; i < 200 && got < want; i++) {
		usleep(10 * 1000);
		got = free_bytes();
	}
	return got;
}

START_TEST(test_statfs_limit)
{
	const uint64_t size = (uint64_t)SMALL_FS_MIB * MIB, slack = 256 * 1024;
	char *buf = malloc(4 * MIB);
	struct statvfs sv;
	struct statfs sf;
	uint64_t before, during, after;

	ck_assert_int_eq(statvfs(mnt.dir, &sv), 0);
	ck_assert_int_eq(statfs(mnt.dir, &sf), 0);
	ck_assert_int_eq(sf.f_type, FUSE_SUPER_MAGIC);
	ck_assert_int_eq((uint64_t)sv.f_blocks * sv.f_frsize, size);
	ck_assert_uint_le(sv.f_bfree, sv.f_blocks);
	ck_assert_uint_le(sv.f_bavail, sv.f_bfree);
	ck_assert_int_eq(sv.f_namemax, 255);
	ck_assert_uint_le(sv.f_ffree, sv.f_files);
	before = free_bytes();
	ck_assert_uint_ge(before, size - slack);
	memset(buf, 's', 4 * MIB);
	ck_assert_int_eq(fx_write_file(P("four"), buf, 4 * MIB), 0);
	during = free_bytes();
	ck_assert_msg(during <= before - 4 * MIB + slack && during >= before - 4 * MIB - slack,
		      "free bytes %llu -> %llu after writing 4 MiB", (unsigned long long)before,
		      (unsigned long long)during);
	ck_assert_int_eq(unlink(P("four")), 0);
	after = free_bytes_at_least(before - slack);
	ck_assert_msg(after >= before - slack, "free bytes %llu, %llu before the 4 MiB file",
		      (unsigned long long)after, (unsigned long long)before);
	free(buf);
}
END_TEST

/* Writes 1 MiB chunks into path until a write fails: the bytes written; errno is kept. */
static uint64_t fill(const char *path, const char *chunk)
{
	uint64_t total = 0;
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);

	ck_assert_int_ge(fd, 0);
	for (;;) {
		ssize_t n = write(fd, chunk, MIB);
		int err = errno;

		if (n <= 0) {
			close(fd);
			errno = n < 0 ? err : EIO;
			return total;
		}
		total += (uint64_t)n;
		ck_assert_uint_le(total, (uint64_t)SMALL_FS_MIB * MIB);
	}
}

START_TEST(test_enospc)
{
	const uint64_t size = (uint64_t)SMALL_FS_MIB * MIB;
	char *chunk = malloc(MIB);
	uint64_t total;

	memset(chunk, 'e', MIB);
	total = fill(P("hog"), chunk);
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_uint_ge(total, size - MIB);
	ck_assert_int_eq(stat_of(P("hog")).st_size, (off_t)total);
	expect_range(P("hog"), (off_t)total - 4096, 4096, 'e');
	ck_assert_uint_lt(free_bytes(), MIB);

	ck_assert_int_eq(unlink(P("hog")), 0);
	ck_assert_uint_ge(free_bytes_at_least(size - MIB), size - MIB);
	ck_assert_int_eq(mkdir(P("after"), 0755), 0);
	chunk = realloc(chunk, 4 * MIB);
	memset(chunk, 'a', 4 * MIB);
	ck_assert_int_eq(fx_write_file(P("after/f"), chunk, 4 * MIB), 0);
	expect_range(P("after/f"), 3 * MIB, MIB, 'a');
	ck_assert_int_eq(unlink(P("after/f")), 0);
	free(chunk);
}
END_TEST

START_TEST(test_enospc_fallocate)
{
	int fd = open(P("pre"), O_CREAT | O_RDWR, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_uint_ge(free_bytes_at_least(8 * MIB), 8 * MIB);
	ck_assert_int_eq(ftruncate(fd, (off_t)1 << 30), 0);
	ck_assert_int_eq(ftruncate(fd, 0), 0);
	ck_assert_int_eq(fallocate(fd, 0, 0, (off_t)2 * SMALL_FS_MIB * MIB), -1);
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_int_eq(stat_of(P("pre")).st_size, 0);
	ck_assert_int_eq(fallocate(fd, 0, 0, 4 * MIB), 0);
	ck_assert_int_eq(stat_of(P("pre")).st_size, 4 * MIB);
	ck_assert_int_eq(close(fd), 0);
}
END_TEST

/* ---- fallocate, SEEK_DATA/SEEK_HOLE ---- */

static off_t size_of(const char *path)
{
	return stat_of(path).st_size;
}

START_TEST(test_fallocate_modes)
{
	const char *f = P("fa");
	char buf[16384];
	int fd;

	memset(buf, 'x', sizeof(buf));
	ck_assert_int_eq(fx_write_file(f, buf, sizeof(buf)), 0);
	fd = open(f, O_RDWR);
	ck_assert_int_ge(fd, 0);

	ck_assert_int_eq(fallocate(fd, 0, 16384, 8192), 0);
	ck_assert_int_eq(size_of(f), 24576);
	ck_assert_int_ge(stat_of(f).st_blocks * 512, 24576);
	expect_range(f, 16384, 8192, 0);
	ck_assert_int_eq(fallocate(fd, FALLOC_FL_KEEP_SIZE, 24576, 8192), 0);
	ck_assert_int_eq(size_of(f), 24576);

	ck_assert_int_eq(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 8192), 0);
	ck_assert_int_eq(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100, 50), 0);
	ck_assert_int_eq(size_of(f), 24576);
	expect_range(f, 0, 100, 'x');
	expect_range(f, 100, 50, 0);
	expect_range(f, 150, 4096 - 150, 'x');
	expect_range(f, 4096, 8192, 0);
	expect_range(f, 12288, 4096, 'x');

	ck_assert_int_eq(fallocate(fd, FALLOC_FL_ZERO_RANGE, 13000, 1000), 0);
	ck_assert_int_eq(size_of(f), 24576);
	expect_range(f, 12288, 13000 - 12288, 'x');
	expect_range(f, 13000, 1000, 0);
	expect_range(f, 14000, 16384 - 14000, 'x');
	ck_assert_int_eq(fallocate(fd, FALLOC_FL_ZERO_RANGE, 24000, 4000), 0);
	ck_assert_int_eq(size_of(f), 28000);
	ck_assert_int_eq(fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 28000, 5000), 0);
	ck_assert_int_eq(size_of(f), 28000);
	expect_range(f, 16384, 28000 - 16384, 0);
	ck_assert_int_eq(close(fd), 0);
}
END_TEST

START_TEST(test_seek_data_hole)
{
	const off_t tib = (off_t)1 << 40, far = (off_t)1 << 39;
	char *chunk = malloc(MIB);
	int fd = open(P("sparse"), O_CREAT | O_RDWR, 0644);

	ck_assert_int_ge(fd, 0);
	memset(chunk, 'd', MIB);
	ck_assert_int_eq(ftruncate(fd, tib), 0);
	ck_assert_int_eq(pwrite(fd, chunk, MIB, MIB), MIB);
	ck_assert_int_eq(pwrite(fd, chunk, MIB, far), MIB);
	ck_assert_int_eq(stat_of(P("sparse")).st_size, tib);
	ck_assert_int_lt(stat_of(P("sparse")).st_blocks * 512, 64 * MIB);

	ck_assert_int_eq(lseek(fd, 0, SEEK_HOLE), 0);
	ck_assert_int_eq(lseek(fd, 0, SEEK_DATA), MIB);
	ck_assert_int_eq(lseek(fd, MIB + 10, SEEK_DATA), MIB + 10);
	ck_assert_int_eq(lseek(fd, MIB, SEEK_HOLE), 2 * MIB);
	ck_assert_int_eq(lseek(fd, 2 * MIB, SEEK_DATA), far);
	ck_assert_int_eq(lseek(fd, far, SEEK_HOLE), far + MIB);
	ck_assert_int_eq(lseek(fd, far + MIB, SEEK_DATA), -1);
	ck_assert_int_eq(errno, ENXIO);
	ck_assert_int_eq(lseek(fd, tib - 1, SEEK_HOLE), tib - 1);
	ck_assert_int_eq(lseek(fd, tib, SEEK_HOLE), -1);
	ck_assert_int_eq(errno, ENXIO);
	ck_assert_int_eq(lseek(fd, tib, SEEK_DATA), -1);
	ck_assert_int_eq(errno, ENXIO);
	ck_assert_int_eq(close(fd), 0);
	expect_range(P("sparse"), far - 4096, 4096, 0);
	expect_range(P("sparse"), far, 4096, 'd');
	expect_range(P("sparse"), tib - 4096, 4096, 0);
	free(chunk);
}
END_TEST

/* ---- xattrs ---- */

START_TEST(test_xattr_user)
{
	const char bin[] = { 'a', 0, 'b', 0, 0 };
	char buf[256], list[256];
	ssize_t n;

	create_file(P("x"), "");
	ck_assert_int_eq(setxattr(P("x"), "user.a", "1", 1, 0), 0);
	ck_assert_int_eq(setxattr(P("x"), "user.bin", bin, sizeof(bin), XATTR_CREATE), 0);
	ck_assert_int_eq(setxattr(P("x"), "user.empty", "", 0, 0), 0);
	ck_assert_int_eq(getxattr(P("x"), "user.a", NULL, 0), 1);
	ck_assert_int_eq(getxattr(P("x"), "user.bin", buf, sizeof(buf)), (ssize_t)sizeof(bin));
	ck_assert_mem_eq(buf, bin, sizeof(bin));
	ck_assert_int_eq(getxattr(P("x"), "user.empty", buf, sizeof(buf)), 0);
	ck_assert_int_eq(getxattr(P("x"), "user.bin", buf, 2), -1);
	ck_assert_int_eq(errno, ERANGE);
	ck_assert_int_eq(getxattr(P("x"), "user.none", buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, ENODATA);

	ck_assert_int_eq(setxattr(P("x"), "user.a", "2", 1, XATTR_CREATE), -1);
	ck_assert_int_eq(errno, EEXIST);
	ck_assert_int_eq(setxattr(P("x"), "user.none", "2", 1, XATTR_REPLACE), -1);
	ck_assert_int_eq(errno, ENODATA);
	ck_assert_int_eq(setxattr(P("x"), "user.a", "22", 2, XATTR_REPLACE), 0);
	ck_assert_int_eq(getxattr(P("x"), "user.a", buf, sizeof(buf)), 2);
	ck_assert_mem_eq(buf, "22", 2);

	n = listxattr(P("x"), list, sizeof(list));
	ck_assert_int_eq(n, (ssize_t)sizeof("user.a\0user.bin\0user.empty"));
	ck_assert_int_eq(listxattr(P("x"), NULL, 0), n);
	ck_assert_int_eq(listxattr(P("x"), list, 3), -1);
	ck_assert_int_eq(errno, ERANGE);
	ck_assert_int_eq(removexattr(P("x"), "user.a"), 0);
	ck_assert_int_eq(getxattr(P("x"), "user.a", buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, ENODATA);
	ck_assert_int_eq(removexattr(P("x"), "user.a"), -1);
	ck_assert_int_eq(errno, ENODATA);
	ck_assert_int_eq(listxattr(P("x"), list, sizeof(list)), n - 7);

	ck_assert_int_eq(mkdir(P("d"), 0755), 0);
	ck_assert_int_eq(setxattr(P("d"), "user.dir", "yes", 3, 0), 0);
	ck_assert_int_eq(getxattr(P("d"), "user.dir", buf, sizeof(buf)), 3);
}
END_TEST

START_TEST(test_xattr_other_namespaces)
{
	char buf[64];

	create_file(P("x"), "");
	ck_assert_int_eq(setxattr(P("x"), "trusted.t", "1", 1, 0), -1);
	ck_assert_int_eq(errno, EOPNOTSUPP);
	ck_assert_int_eq(setxattr(P("x"), "security.s", "1", 1, 0), -1);
	ck_assert_int_eq(errno, EOPNOTSUPP);
	ck_assert_int_eq(removexattr(P("x"), "trusted.t"), -1);
	ck_assert_int_eq(errno, EOPNOTSUPP);
	/* nothing can be stored outside user.*, so a get finds nothing */
	ck_assert_int_eq(getxattr(P("x"), "trusted.t", buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, ENODATA);
	ck_assert_int_eq(getxattr(P("x"), "security.s", buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, ENODATA);
	ck_assert_int_eq(setxattr(P("x"), "user.u", "1", 1, 0), 0);
	ck_assert_int_eq(listxattr(P("x"), buf, sizeof(buf)), (ssize_t)sizeof("user.u"));
	ck_assert_str_eq(buf, "user.u");
	ck_assert_str_eq(slurp(P("x")), "");
}
END_TEST

/* ---- ownership and permissions (allow_other mount) ---- */

static int nobody_creates(void *arg)
{
	(void)arg;
	EXPECT_ERRNO(fx_write_file(P("pub/f"), "n", 1), 0);
	EXPECT_ERRNO(mkdir(P("pub/d"), 0755), 0);
	EXPECT_ERRNO(symlink("f", P("pub/l")), 0);
	EXPECT_ERRNO(mkfifo(P("pub/p"), 0644), 0);
	return 0;
}

START_TEST(test_owner_is_caller)
{
	const char *names[] = { "pub/f", "pub/d", "pub/l", "pub/p" };

	ck_assert_int_eq(mkdir(P("pub"), 0777), 0);
	ck_assert_int_eq(chmod(P("pub"), 0777), 0);
	run_as(NOBODY, NOBODY, 0, nobody_creates, NULL);
	for (int i = 0; i < 4; i++) {
		struct stat st = stat_of(P(names[i]));

		ck_assert_msg(st.st_uid == NOBODY && st.st_gid == NOBODY, "%s belongs to %d:%d",
			      names[i], (int)st.st_uid, (int)st.st_gid);
	}
	ck_assert_int_eq(stat_of(P("pub")).st_uid, 0);
}
END_TEST

static int create_in_setgid_dir(void *arg)
{
	(void)arg;
	EXPECT_ERRNO(fx_write_file(P("sg/f"), "", 0), 0);
	EXPECT_ERRNO(mkdir(P("sg/sub"), 0755), 0);
	return 0;
}

START_TEST(test_setgid_dir)
{
	struct stat f, sub, rootf;

	ck_assert_int_eq(mkdir(P("sg"), 0777), 0);
	ck_assert_int_eq(chown(P("sg"), 0, OTHER_GID), 0);
	ck_assert_int_eq(chmod(P("sg"), 02777), 0);
	ck_assert_int_eq(stat_of(P("sg")).st_mode, S_IFDIR | 02777);
	run_as(NOBODY, NOBODY, 0, create_in_setgid_dir, NULL);
	create_file(P("sg/rootf"), "");
	f = stat_of(P("sg/f"));
	sub = stat_of(P("sg/sub"));
	rootf = stat_of(P("sg/rootf"));
	ck_assert_int_eq(f.st_uid, NOBODY);
	ck_assert_int_eq(f.st_gid, OTHER_GID);
	ck_assert_int_eq(sub.st_uid, NOBODY);
	ck_assert_int_eq(sub.st_gid, OTHER_GID);
	ck_assert_msg(sub.st_mode & S_ISGID, "new subdirectory mode %o lacks S_ISGID",
		      (unsigned)sub.st_mode);
	ck_assert_int_eq(rootf.st_gid, OTHER_GID);
	ck_assert_int_eq(f.st_mode & S_ISGID, 0);
}
END_TEST

static int nobody_writes(void *arg)
{
	int fd;

	(void)arg;
	fd = open(P("pub/suid"), O_WRONLY);
	if (fd < 0)
		return FX_FAIL("open pub/suid: %s", strerror(errno));
	if (write(fd, "w", 1) != 1)
		return FX_FAIL("write pub/suid: %s", strerror(errno));
	close(fd);
	EXPECT_ERRNO(truncate(P("pub/suid2"), 1), 0);
	return 0;
}

START_TEST(test_suid_cleared_on_write)
{
	int fd;

	ck_assert_int_eq(mkdir(P("pub"), 0777), 0);
	ck_assert_int_eq(chmod(P("pub"), 0777), 0);
	create_file(P("pub/suid"), "data");
	create_file(P("pub/suid2"), "data");
	create_file(P("pub/rootw"), "data");
	ck_assert_int_eq(chmod(P("pub/suid"), 06777), 0);
	ck_assert_int_eq(chmod(P("pub/suid2"), 04777), 0);
	ck_assert_int_eq(chmod(P("pub/rootw"), 04755), 0);
	run_as(NOBODY, NOBODY, 0, nobody_writes, NULL);
	ck_assert_int_eq(stat_of(P("pub/suid")).st_mode, S_IFREG | 0777);
	ck_assert_int_eq(stat_of(P("pub/suid2")).st_mode, S_IFREG | 0777);
	ck_assert_str_eq(slurp(P("pub/suid")), "wata");

	/* root has CAP_FSETID: its write keeps the bit; chown clears it for anyone */
	fd = open(P("pub/rootw"), O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, "D", 1, 0), 1);
	ck_assert_int_eq(close(fd), 0);
	ck_assert_int_eq(stat_of(P("pub/rootw")).st_mode, S_IFREG | 04755);
	ck_assert_int_eq(chown(P("pub/rootw"), NOBODY, NOBODY), 0);
	ck_assert_int_eq(stat_of(P("pub/rootw")).st_mode, S_IFREG | 0755);
}
END_TEST

static int nobody_is_denied(void *arg)
{
	struct timespec now[2] = { { 0, UTIME_NOW }, { 0, UTIME_NOW } };

	(void)arg;
	EXPECT_ERRNO(open(P("secret"), O_RDONLY), EACCES);
	EXPECT_ERRNO(open(P("public"), O_WRONLY), EACCES);
	EXPECT_ERRNO(open(P("public"), O_RDONLY), 0);
	EXPECT_ERRNO(truncate(P("public"), 0), EACCES);
	EXPECT_ERRNO(open(P("rootdir/new"), O_CREAT | O_WRONLY, 0644), EACCES);
	EXPECT_ERRNO(mkdir(P("rootdir/new"), 0755), EACCES);
	EXPECT_ERRNO(unlink(P("rootdir/f")), EACCES);
	EXPECT_ERRNO(open(P("private"), O_RDONLY | O_DIRECTORY), EACCES);
	EXPECT_ERRNO(chmod(P("public"), 0666), EPERM);
	EXPECT_ERRNO(utimensat(AT_FDCWD, P("public"), now, 0), EACCES);
	EXPECT_ERRNO(setxattr(P("public"), "user.x", "1", 1, 0), EACCES);
	return 0;
}

START_TEST(test_permission_denied)
{
	create_file(P("secret"), "secret");
	ck_assert_int_eq(chmod(P("secret"), 0600), 0);
	create_file(P("public"), "public");
	ck_assert_int_eq(mkdir(P("rootdir"), 0755), 0);
	create_file(P("rootdir/f"), "");
	ck_assert_int_eq(mkdir(P("private"), 0700), 0);
	run_as(NOBODY, NOBODY, 0, nobody_is_denied, NULL);
	ck_assert_str_eq(slurp(P("public")), "public");
	ck_assert_int_eq(stat_of(P("public")).st_mode, S_IFREG | 0644);
}
END_TEST

static int nobody_chowns(void *arg)
{
	(void)arg;
	EXPECT_ERRNO(fx_write_file(P("pub/mine"), "", 0), 0);
	EXPECT_ERRNO(chown(P("pub/mine"), 0, -1), EPERM);
	EXPECT_ERRNO(chown(P("pub/mine"), -1, 0), EPERM);
	EXPECT_ERRNO(chown(P("pub/mine"), NOBODY, NOBODY), 0);
	EXPECT_ERRNO(chown(P("pub/mine"), -1, OTHER_GID), 0);
	EXPECT_ERRNO(chown(P("pub/theirs"), NOBODY, -1), EPERM);
	return 0;
}

START_TEST(test_chown_nonroot)
{
	struct stat st;

	ck_assert_int_eq(mkdir(P("pub"), 0777), 0);
	ck_assert_int_eq(chmod(P("pub"), 0777), 0);
	create_file(P("pub/theirs"), "");
	run_as(NOBODY, NOBODY, OTHER_GID, nobody_chowns, NULL);
	st = stat_of(P("pub/mine"));
	ck_assert_int_eq(st.st_uid, NOBODY);
	ck_assert_int_eq(st.st_gid, OTHER_GID);
	ck_assert_int_eq(stat_of(P("pub/theirs")).st_uid, 0);
}
END_TEST

static int sticky_owner_creates(void *arg)
{
	(void)arg;
	EXPECT_ERRNO(fx_write_file(P("sticky/a"), "a", 1), 0);
	EXPECT_ERRNO(fx_write_file(P("open/a"), "a", 1), 0);
	return 0;
}

static int sticky_other_acts(void *arg)
{
	(void)arg;
	EXPECT_ERRNO(unlink(P("sticky/a")), EPERM);
	EXPECT_ERRNO(rename(P("sticky/a"), P("sticky/b")), EPERM);
	EXPECT_ERRNO(fx_write_file(P("sticky/c"), "c", 1), 0);
	EXPECT_ERRNO(rename(P("sticky/c"), P("sticky/a")), EPERM);
	EXPECT_ERRNO(rename(P("sticky/c"), P("sticky/c2")), 0);
	EXPECT_ERRNO(unlink(P("sticky/c2")), 0);
	EXPECT_ERRNO(unlink(P("open/a")), 0);
	return 0;
}

static int sticky_owner_removes(void *arg)
{
	(void)arg;
	EXPECT_ERRNO(unlink(P("sticky/a")), 0);
	return 0;
}

START_TEST(test_sticky_dir)
{
	ck_assert_int_eq(mkdir(P("sticky"), 0777), 0);
	ck_assert_int_eq(chmod(P("sticky"), 01777), 0);
	ck_assert_int_eq(mkdir(P("open"), 0777), 0);
	ck_assert_int_eq(chmod(P("open"), 0777), 0);
	run_as(NOBODY, NOBODY, 0, sticky_owner_creates, NULL);
	run_as(OTHER_UID, OTHER_UID, 0, sticky_other_acts, NULL);
	ck_assert_str_eq(slurp(P("sticky/a")), "a");
	ck_assert_int_eq(access(P("open/a"), F_OK), -1);
	run_as(NOBODY, NOBODY, 0, sticky_owner_removes, NULL);
	ck_assert_int_eq(access(P("sticky/a"), F_OK), -1);
}
END_TEST

/* ---- the mount itself ---- */

START_TEST(test_mount_umount)
{
	struct mnt m;
	struct statfs sf;
	char path[PATH_MAX];
	int rc = fx_mount(&m, "mem:", NULL);
	int statfs_rc, write_rc, umount_rc;

	ck_assert_msg(rc == 0, "fx_mount: %s", strerror(-rc));
	/* nothing may fail between mount and unmount: a failing test would leave a mount */
	statfs_rc = statfs(m.dir, &sf);
	write_rc = fx_write_file(fx_path(&m, "f", path, sizeof(path)), "x", 1);
	umount_rc = fx_umount(&m);
	ck_assert_int_eq(statfs_rc, 0);
	ck_assert_int_eq(sf.f_type, FUSE_SUPER_MAGIC);
	ck_assert_int_eq(write_rc, 0);
	ck_assert_int_eq(umount_rc, 0);
	ck_assert_int_eq(access(m.dir, F_OK), -1);
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(test_mount_bad_source)
{
	const char *bad[] = { "nosuchscheme:", "mem:12Q" };

	for (int i = 0; i < 2; i++) {
		struct mnt m;
		int rc = fx_mount(&m, bad[i], NULL);

		if (rc == 0)
			fx_umount(&m);
		ck_assert_msg(rc == -ECHILD, "SOURCE %s: fx_mount returned %d, expected -ECHILD",
			      bad[i], rc);
	}
}
END_TEST

static TCase *tcase(Suite *s, const char *name, void (*setup)(void), int timeout)
{
	TCase *tc = tcase_create(name);

	if (setup) {
		tcase_add_unchecked_fixture(tc, setup, teardown);
		tcase_add_checked_fixture(tc, enter_workdir, NULL);
	}
	tcase_set_timeout(tc, timeout);
	suite_add_tcase(s, tc);
	return tc;
}

static Suite *posix_suite(void)
{
	Suite *s = suite_create("posix");
	TCase *tc;

	tc = tcase(s, "file_io", setup_default, 30);
	tcase_add_test(tc, test_create_read_write);
	tcase_add_test(tc, test_large_unaligned_io);
	tcase_add_test(tc, test_truncate_zeroes);
	tc = tcase(s, "stat", setup_default, 30);
	tcase_add_test(tc, test_stat_fields);
	tcase_add_test(tc, test_times_on_write);
	tcase_add_test(tc, test_times_on_dir_ops);
	tcase_add_test(tc, test_ctime_on_attr_change);
	tc = tcase(s, "namespace", setup_default, 30);
	tcase_add_test(tc, test_mkdir_rmdir);
	tcase_add_test(tc, test_name_limits);
	tcase_add_test(tc, test_link_counts);
	tcase_add_test(tc, test_unlinked_open_file);
	tcase_add_test(tc, test_symlink);
	tcase_add_test(tc, test_mknod);
	tc = tcase(s, "rename", setup_default, 30);
	tcase_add_test(tc, test_rename_over_file);
	tcase_add_test(tc, test_rename_noreplace);
	tcase_add_test(tc, test_rename_exchange);
	tcase_add_test(tc, test_rename_dirs);
	tc = tcase(s, "readdir", setup_default, 60);
	tcase_add_test(tc, test_readdir_1000);
	tcase_add_test(tc, test_readdir_unlink_each);
	tcase_add_test(tc, test_readdir_unlink_others);
	tcase_add_test(tc, test_seekdir);
	tc = tcase(s, "space", setup_small, 30);
	tcase_add_test(tc, test_statfs_limit);
	tcase_add_test(tc, test_enospc);
	tcase_add_test(tc, test_enospc_fallocate);
	tc = tcase(s, "fallocate_seek", setup_default, 30);
	tcase_add_test(tc, test_fallocate_modes);
	tcase_add_test(tc, test_seek_data_hole);
	tc = tcase(s, "xattr", setup_default, 30);
	tcase_add_test(tc, test_xattr_user);
	tcase_add_test(tc, test_xattr_other_namespaces);
	tc = tcase(s, "ownership", setup_shared, 30);
	tcase_add_test(tc, test_owner_is_caller);
	tcase_add_test(tc, test_setgid_dir);
	tcase_add_test(tc, test_suid_cleared_on_write);
	tcase_add_test(tc, test_permission_denied);
	tcase_add_test(tc, test_chown_nonroot);
	tcase_add_test(tc, test_sticky_dir);
	tc = tcase(s, "mount", NULL, 30);
	tcase_add_test(tc, test_mount_umount);
	tcase_add_test(tc, test_mount_bad_source);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	fx_require_fuse();
	umask(022);
	sr = srunner_create(posix_suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 && teardown_failures == 0 ? 0 : 1;
}
