/* POSIX operations through the kernel on a real sigbusfs mount: file I/O, stat fields and
 * times, directories, unlink and rename, links, special files, readdir, fallocate,
 * SEEK_DATA/SEEK_HOLE and user xattrs. Ownership, permissions and ENOSPC are tested in
 * check_perms.c, mmap behaviour in check_mmap.c. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "fixture.h"

#define MIB	  (1024 * 1024)
#define OTHER_UID 65533
#define OTHER_GID 1234
#define NENTRIES  1000

static struct mnt mnt; /* one per TCase, shared by its tests */

#define P(rel) fx_work_path(rel) /* rel in the running test's own directory */

static void setup_default(void)
{
	fx_mount_or_fail(&mnt, "mem:", NULL);
}

static void teardown(void)
{
	fx_teardown(&mnt);
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
	ck_assert_str_eq(fx_slurp(P("f")), "hello, World");

	fd = open(P("f"), O_WRONLY | O_APPEND);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	ck_assert_int_eq(write(fd, "!", 1), 1);
	ck_assert_int_eq(close(fd), 0);
	ck_assert_str_eq(fx_slurp(P("f")), "hello, World!");

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
	ck_assert_int_eq(fx_lstat(P("t")).st_size, 100);
	ck_assert_int_eq(ftruncate(fd, 10000), 0);
	ck_assert_int_eq(close(fd), 0);
	fx_expect_range(P("t"), 0, 100, 'x');
	fx_expect_range(P("t"), 100, 9900, 0);
	ck_assert_int_eq(truncate(P("t"), 5), 0);
	ck_assert_int_eq(fx_lstat(P("t")).st_size, 5);
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
	fx_create_file(P("g"), "");
	ck_assert_int_eq(mkdir(P("d"), 0777), 0);
	f = fx_lstat(P("f"));
	g = fx_lstat(P("g"));
	d = fx_lstat(P("d"));
	root = fx_lstat(mnt.dir);
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
	a = fx_lstat(P("f"));
	tick();
	ck_assert_int_eq(write(fd, "data", 4), 4);
	b = fx_lstat(P("f"));
	ck_assert_int_gt(ts_cmp(b.st_mtim, a.st_mtim), 0);
	ck_assert_int_gt(ts_cmp(b.st_ctim, a.st_ctim), 0);
	tick();
	ck_assert_int_eq(ftruncate(fd, 2), 0);
	a = fx_lstat(P("f"));
	ck_assert_int_gt(ts_cmp(a.st_mtim, b.st_mtim), 0);
	ck_assert_int_gt(ts_cmp(a.st_ctim, b.st_ctim), 0);
	tick();
	ck_assert_int_eq(pread(fd, &c, 1, 0), 1);
	b = fx_lstat(P("f"));
	ck_assert_int_eq(ts_cmp(b.st_mtim, a.st_mtim), 0);
	ck_assert_int_eq(ts_cmp(b.st_ctim, a.st_ctim), 0);
	ck_assert_int_eq(close(fd), 0);

	tick();
	ck_assert_int_eq(utimensat(AT_FDCWD, P("f"), set, 0), 0);
	b = fx_lstat(P("f"));
	ck_assert_int_eq(ts_cmp(b.st_atim, set[0]), 0);
	ck_assert_int_eq(ts_cmp(b.st_mtim, set[1]), 0);
	ck_assert_int_gt(ts_cmp(b.st_ctim, a.st_ctim), 0);
	set[0].tv_nsec = UTIME_OMIT;
	set[1].tv_nsec = UTIME_NOW;
	tick();
	ck_assert_int_eq(utimensat(AT_FDCWD, P("f"), set, 0), 0);
	a = fx_lstat(P("f"));
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
		struct stat now = fx_lstat(dirs[i]);

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
			before_[i_] = fx_lstat(dirs_[i_]);           \
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
	f0 = fx_lstat(P("a/f"));
	DIR_OP(rename(P("a/f"), P("b/f")), P("a"), P("b"));
	f1 = fx_lstat(P("b/f"));
	ck_assert_int_eq(f0.st_ino, f1.st_ino);
	ck_assert_msg(ts_cmp(f1.st_ctim, f0.st_ctim) > 0, "rename left the file's ctime unchanged");
	DIR_OP(unlink(P("b/f")), P("b"));
}
END_TEST

START_TEST(test_ctime_on_attr_change)
{
	struct stat a, b;

	fx_create_file(P("f"), "x");
	a = fx_lstat(P("f"));
	tick();
	ck_assert_int_eq(chmod(P("f"), 0600), 0);
	b = fx_lstat(P("f"));
	ck_assert_int_eq(b.st_mode, S_IFREG | 0600);
	ck_assert_int_gt(ts_cmp(b.st_ctim, a.st_ctim), 0);
	ck_assert_int_eq(ts_cmp(b.st_mtim, a.st_mtim), 0);
	tick();
	ck_assert_int_eq(chown(P("f"), OTHER_UID, OTHER_GID), 0);
	a = fx_lstat(P("f"));
	ck_assert_int_eq(a.st_uid, OTHER_UID);
	ck_assert_int_eq(a.st_gid, OTHER_GID);
	ck_assert_int_gt(ts_cmp(a.st_ctim, b.st_ctim), 0);
	ck_assert_int_eq(ts_cmp(a.st_mtim, b.st_mtim), 0);
	tick();
	ck_assert_int_eq(link(P("f"), P("g")), 0);
	b = fx_lstat(P("f"));
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
	fx_create_file(P("d/f"), "x");
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
	ck_assert(S_ISDIR(fx_lstat(P(name)).st_mode));
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
	ck_assert_int_eq(fx_lstat(P("d")).st_nlink, 5);
	ck_assert_int_eq(rmdir(P("d/s0")), 0);
	ck_assert_int_eq(fx_lstat(P("d")).st_nlink, 4);
	ck_assert_int_eq(rename(P("d/s1"), P("e/s1")), 0);
	ck_assert_int_eq(fx_lstat(P("d")).st_nlink, 3);
	ck_assert_int_eq(fx_lstat(P("e")).st_nlink, 3);

	fx_create_file(P("f"), "x");
	ck_assert_int_eq(link(P("f"), P("d/f2")), 0);
	ck_assert_int_eq(link(P("f"), P("e/f3")), 0);
	ck_assert_int_eq(fx_lstat(P("f")).st_nlink, 3);
	ck_assert_int_eq(fx_lstat(P("d/f2")).st_ino, fx_lstat(P("f")).st_ino);
	ck_assert_int_eq(unlink(P("f")), 0);
	ck_assert_int_eq(fx_lstat(P("e/f3")).st_nlink, 2);
	ck_assert_str_eq(fx_slurp(P("e/f3")), "x");
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

	fx_create_file(P("u"), "new file");
	ck_assert_int_ne(fx_lstat(P("u")).st_ino, st.st_ino);
	ck_assert_int_eq(pwrite(fd, "after", 5, 6), 5);
	ck_assert_int_eq(close(fd), 0);
	ck_assert_int_eq(pread(fd2, buf, sizeof(buf), 0), 11);
	ck_assert_str_eq(buf, "beforeafter");
	ck_assert_int_eq(fstat(fd2, &st), 0);
	ck_assert_int_eq(st.st_size, 11);
	ck_assert_int_eq(close(fd2), 0);
	ck_assert_str_eq(fx_slurp(P("u")), "new file");
}
END_TEST

START_TEST(test_rename_over_file)
{
	char buf[16] = { 0 };
	struct stat st;
	int old_fd;

	fx_create_file(P("a"), "aaa");
	fx_create_file(P("b"), "bbbbb");
	old_fd = open(P("b"), O_RDWR);
	ck_assert_int_ge(old_fd, 0);
	ck_assert_int_eq(rename(P("a"), P("b")), 0);
	ck_assert_int_eq(access(P("a"), F_OK), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_str_eq(fx_slurp(P("b")), "aaa");
	ck_assert_int_eq(pwrite(old_fd, "B", 1, 0), 1);
	ck_assert_int_eq(pread(old_fd, buf, sizeof(buf), 0), 5);
	ck_assert_str_eq(buf, "Bbbbb");
	ck_assert_str_eq(fx_slurp(P("b")), "aaa");
	ck_assert_int_eq(fstat(old_fd, &st), 0);
	ck_assert_int_eq(st.st_nlink, 0);
	ck_assert_int_eq(close(old_fd), 0);

	ck_assert_int_eq(mkdir(P("d"), 0755), 0);
	ck_assert_int_eq(rename(P("b"), P("d")), -1);
	ck_assert_int_eq(errno, EISDIR);
	ck_assert_int_eq(rename(P("d"), P("b")), -1);
	ck_assert_int_eq(errno, ENOTDIR);
	ck_assert_int_eq(rename(P("b"), P("d/b")), 0);
	ck_assert_str_eq(fx_slurp(P("d/b")), "aaa");
}
END_TEST

START_TEST(test_rename_noreplace)
{
	fx_create_file(P("a"), "aaa");
	fx_create_file(P("b"), "bbb");
	ck_assert_int_eq(renameat2(AT_FDCWD, P("a"), AT_FDCWD, P("b"), RENAME_NOREPLACE), -1);
	ck_assert_int_eq(errno, EEXIST);
	ck_assert_str_eq(fx_slurp(P("a")), "aaa");
	ck_assert_str_eq(fx_slurp(P("b")), "bbb");
	ck_assert_int_eq(renameat2(AT_FDCWD, P("a"), AT_FDCWD, P("c"), RENAME_NOREPLACE), 0);
	ck_assert_str_eq(fx_slurp(P("c")), "aaa");
	ck_assert_int_eq(access(P("a"), F_OK), -1);
}
END_TEST

START_TEST(test_rename_exchange)
{
	ino_t ia, id;

	fx_create_file(P("a"), "aaa");
	fx_create_file(P("b"), "bbb");
	ck_assert_int_eq(mkdir(P("d"), 0755), 0);
	fx_create_file(P("d/in"), "in d");
	ck_assert_int_eq(renameat2(AT_FDCWD, P("a"), AT_FDCWD, P("b"), RENAME_EXCHANGE), 0);
	ck_assert_str_eq(fx_slurp(P("a")), "bbb");
	ck_assert_str_eq(fx_slurp(P("b")), "aaa");

	ia = fx_lstat(P("a")).st_ino;
	id = fx_lstat(P("d")).st_ino;
	ck_assert_int_eq(renameat2(AT_FDCWD, P("a"), AT_FDCWD, P("d"), RENAME_EXCHANGE), 0);
	ck_assert(S_ISDIR(fx_lstat(P("a")).st_mode));
	ck_assert(S_ISREG(fx_lstat(P("d")).st_mode));
	ck_assert_int_eq(fx_lstat(P("a")).st_ino, id);
	ck_assert_int_eq(fx_lstat(P("d")).st_ino, ia);
	ck_assert_str_eq(fx_slurp(P("a/in")), "in d");
	ck_assert_str_eq(fx_slurp(P("d")), "bbb");
	ck_assert_int_eq(renameat2(AT_FDCWD, P("b"), AT_FDCWD, P("none"), RENAME_EXCHANGE), -1);
	ck_assert_int_eq(errno, ENOENT);

	/* across directories, a directory for a file: both parents' link counts change */
	ck_assert_int_eq(mkdir(P("p"), 0755), 0);
	ck_assert_int_eq(mkdir(P("p/sub"), 0755), 0);
	ck_assert_int_eq(renameat2(AT_FDCWD, P("p/sub"), AT_FDCWD, P("b"), RENAME_EXCHANGE), 0);
	ck_assert(S_ISDIR(fx_lstat(P("b")).st_mode));
	ck_assert_str_eq(fx_slurp(P("p/sub")), "aaa");
	ck_assert_int_eq(fx_lstat(P("p")).st_nlink, 2);
	ck_assert_int_eq(fx_lstat(fx_workdir()).st_nlink, 5);
}
END_TEST

START_TEST(test_rename_dirs)
{
	ck_assert_int_eq(mkdir(P("src"), 0755), 0);
	fx_create_file(P("src/f"), "f");
	ck_assert_int_eq(mkdir(P("full"), 0755), 0);
	fx_create_file(P("full/x"), "x");
	ck_assert_int_eq(mkdir(P("empty"), 0755), 0);
	ck_assert_int_eq(rename(P("src"), P("full")), -1);
	ck_assert_int_eq(errno, ENOTEMPTY);
	ck_assert_str_eq(fx_slurp(P("full/x")), "x");
	ck_assert_int_eq(mkdir(P("src/sub"), 0755), 0);
	ck_assert_int_eq(rename(P("src"), P("src/sub/loop")), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(rename(P("src"), P("empty")), 0);
	ck_assert_str_eq(fx_slurp(P("empty/f")), "f");
	ck_assert_int_eq(access(P("src"), F_OK), -1);
	ck_assert_int_eq(fx_lstat(fx_workdir()).st_nlink, 4);
}
END_TEST

START_TEST(test_symlink)
{
	char buf[2048], long_target[1001];
	struct stat st;

	fx_create_file(P("target"), "pointed at");
	ck_assert_int_eq(symlink("target", P("l")), 0);
	st = fx_lstat(P("l"));
	ck_assert(S_ISLNK(st.st_mode));
	ck_assert_int_eq(st.st_size, 6);
	ck_assert_int_eq(readlink(P("l"), buf, sizeof(buf)), 6);
	ck_assert_mem_eq(buf, "target", 6);
	ck_assert_str_eq(fx_slurp(P("l")), "pointed at");
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
	st = fx_lstat(P("fifo"));
	ck_assert_int_eq(st.st_mode, S_IFIFO | 0640);
	fd = open(P("fifo"), O_RDWR | O_NONBLOCK);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "p", 1), 1);
	ck_assert_int_eq(read(fd, &c, 1), 1);
	ck_assert_int_eq(c, 'p');
	ck_assert_int_eq(close(fd), 0);

	ck_assert_int_eq(mknod(P("reg"), S_IFREG | 0600, 0), 0);
	ck_assert_int_eq(fx_lstat(P("reg")).st_mode, S_IFREG | 0600);
	ck_assert_int_eq(fx_lstat(P("reg")).st_size, 0);
	ck_assert_int_eq(mknod(P("sock"), S_IFSOCK | 0600, 0), 0);
	ck_assert(S_ISSOCK(fx_lstat(P("sock")).st_mode));
	ck_assert_int_eq(mknod(P("null"), S_IFCHR | 0666, makedev(1, 3)), 0);
	st = fx_lstat(P("null"));
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
		fx_create_file(P(rel), "");
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
		/* the daemon gives every entry its type, "." and ".." included */
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) {
			ck_assert_int_eq(de->d_type, DT_DIR);
			dots++;
			continue;
		}
		if (!strcmp(de->d_name, "subdir")) {
			ck_assert_int_eq(de->d_type, DT_DIR);
			continue;
		}
		ck_assert_msg(i >= 0, "unexpected entry %s", de->d_name);
		ck_assert_msg(seen[i] == 0, "entry %s listed twice", de->d_name);
		seen[i] = 1;
		n++;
		ck_assert_int_eq(de->d_type, DT_REG);
		ck_assert_int_eq(de->d_ino, fx_lstat(P(rel)).st_ino);
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

/* Every position telldir() gives, over thousands of entries, is non-negative and one
 * seekdir() returns to (every 7th is tried, and the last ones and the end: each seek
 * costs a listing of 32 KiB), whatever offsets the host directory uses (ext4 gives 63-bit
 * hashes, and INT64_MAX after the last entry). */
START_TEST(test_telldir_each)
{
	enum { N = 3000 };
	static long pos[N + 3];
	static char names[N + 2][NAME_MAX + 1];
	struct dirent *de;
	int n = 0;
	DIR *d;

	make_entries("tell", N);
	d = opendir(P("tell"));
	ck_assert_ptr_nonnull(d);
	for (;;) {
		ck_assert_int_lt(n, N + 3);
		pos[n] = telldir(d);
		ck_assert_msg(pos[n] >= 0, "telldir before entry %d: %ld", n, pos[n]);
		de = readdir(d);
		if (!de)
			break;
		snprintf(names[n++], sizeof(names[0]), "%s", de->d_name);
	}
	ck_assert_int_eq(n, N + 2);
	/* backwards, each seek against the stream; the end lists nothing */
	for (int i = n; i >= 0; i -= i > n - 10 ? 1 : 7) {
		seekdir(d, pos[i]);
		de = readdir(d);
		if (i == n) {
			ck_assert_msg(!de, "seekdir to the end, then %s", de ? de->d_name : "");
			continue;
		}
		ck_assert_msg(de && strcmp(de->d_name, names[i]) == 0, "seekdir %d: %s, not %s", i,
			      de ? de->d_name : "the end", names[i]);
	}
	ck_assert_int_eq(closedir(d), 0);
}
END_TEST

/* Names added and removed between batches of a listing: every entry there throughout is
 * listed exactly once, every other at most once. */
START_TEST(test_readdir_add_remove)
{
	static int seen[NENTRIES], added[NENTRIES];
	char buf[1024], rel[64];
	int fd, batches = 0;
	long got;

	make_entries("ar", NENTRIES);
	fd = open(P("ar"), O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(fd, 0);
	while ((got = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
		for (long at = 0; at < got;) {
			struct dirent64 *de = (struct dirent64 *)(buf + at);
			int i = entry_index(de->d_name), k;

			at += de->d_reclen;
			if (sscanf(de->d_name, "new-%d", &k) == 1 && k >= 0 && k < NENTRIES) {
				ck_assert_msg(added[k]++ == 0, "%s listed twice", de->d_name);
				continue;
			}
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			ck_assert_msg(i >= 0, "unexpected entry %s", de->d_name);
			ck_assert_msg(seen[i]++ == 0, "%s listed twice", de->d_name);
		}
		/* each batch: 10 names more, and every 7th entry of the next 70 gone */
		for (int j = 0; j < 10 && batches * 10 + j < NENTRIES; j++) {
			snprintf(rel, sizeof(rel), "ar/new-%04d", batches * 10 + j);
			fx_create_file(P(rel), "");
		}
		for (int i = batches * 70; i < batches * 70 + 70 && i < NENTRIES; i += 7) {
			snprintf(rel, sizeof(rel), "ar/entry-%04d", i);
			ck_assert_int_eq(unlink(P(rel)), 0);
		}
		batches++;
	}
	ck_assert_msg(got == 0, "getdents64: %s", strerror(errno));
	ck_assert_int_eq(close(fd), 0);
	ck_assert_int_gt(batches, 10);
	for (int i = 0; i < NENTRIES; i++)
		ck_assert_msg(seen[i] || (i % 7 == 0 && i < batches * 70),
			      "entry-%04d never listed", i);
}
END_TEST

/* ---- fallocate, SEEK_DATA/SEEK_HOLE ---- */

static off_t size_of(const char *path)
{
	return fx_lstat(path).st_size;
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
	ck_assert_int_ge(fx_lstat(f).st_blocks * 512, 24576);
	fx_expect_range(f, 16384, 8192, 0);
	ck_assert_int_eq(fallocate(fd, FALLOC_FL_KEEP_SIZE, 24576, 8192), 0);
	ck_assert_int_eq(size_of(f), 24576);

	ck_assert_int_eq(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 8192), 0);
	ck_assert_int_eq(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100, 50), 0);
	ck_assert_int_eq(size_of(f), 24576);
	fx_expect_range(f, 0, 100, 'x');
	fx_expect_range(f, 100, 50, 0);
	fx_expect_range(f, 150, 4096 - 150, 'x');
	fx_expect_range(f, 4096, 8192, 0);
	fx_expect_range(f, 12288, 4096, 'x');

	ck_assert_int_eq(fallocate(fd, FALLOC_FL_ZERO_RANGE, 13000, 1000), 0);
	ck_assert_int_eq(size_of(f), 24576);
	fx_expect_range(f, 12288, 13000 - 12288, 'x');
	fx_expect_range(f, 13000, 1000, 0);
	fx_expect_range(f, 14000, 16384 - 14000, 'x');
	ck_assert_int_eq(fallocate(fd, FALLOC_FL_ZERO_RANGE, 24000, 4000), 0);
	ck_assert_int_eq(size_of(f), 28000);
	ck_assert_int_eq(fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 28000, 5000), 0);
	ck_assert_int_eq(size_of(f), 28000);
	fx_expect_range(f, 16384, 28000 - 16384, 0);
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
	ck_assert_int_eq(fx_lstat(P("sparse")).st_size, tib);
	ck_assert_int_lt(fx_lstat(P("sparse")).st_blocks * 512, 64 * MIB);

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
	fx_expect_range(P("sparse"), far - 4096, 4096, 0);
	fx_expect_range(P("sparse"), far, 4096, 'd');
	fx_expect_range(P("sparse"), tib - 4096, 4096, 0);
	free(chunk);
}
END_TEST

/* ---- xattrs ---- */

START_TEST(test_xattr_user)
{
	const char bin[] = { 'a', 0, 'b', 0, 0 };
	char buf[256], list[256];
	ssize_t n;

	fx_create_file(P("x"), "");
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

	fx_create_file(P("x"), "");
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
	ck_assert_str_eq(fx_slurp(P("x")), "");
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

/* Files still open when the daemon ends (unmounted lazily, then sent SIGTERM, so that no
 * RELEASE comes for them): it exits 0 as after any SIGTERM and, under LeakSanitizer, has
 * let go of every handle: with contrib/check's ASAN_OPTIONS
 * (detect_leaks=1:abort_on_error=1) a leak makes it 134. */
START_TEST(test_umount_with_open_files)
{
	struct mnt m;
	char path[PATH_MAX];
	int rc = fx_mount(&m, "mem:", NULL);
	int fds[3], umount_rc;

	ck_assert_msg(rc == 0, "fx_mount: %s", strerror(-rc));
	/* nothing may fail between mount and unmount: a failing test would leave a mount */
	fds[0] = open(fx_path(&m, "f", path, sizeof(path)), O_RDWR | O_CREAT, 0644);
	fds[1] = open(path, O_RDONLY);
	fds[2] = open(fx_path(&m, "", path, sizeof(path)), O_RDONLY | O_DIRECTORY);
	rc = fds[0] >= 0 ? (int)pwrite(fds[0], "x", 1, 0) : -1;
	umount2(m.dir, MNT_DETACH);
	kill(m.pid, SIGTERM);
	umount_rc = fx_umount(&m);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_ge(fds[i], 0);
		close(fds[i]);
	}
	ck_assert_int_eq(rc, 1);
	ck_assert_int_eq(umount_rc, 0);
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

/* Runs the daemon on source with a fresh mount point: its exit status, output in out. */
static int run_daemon(const char *source, const char *mnt_dir, char *out, size_t size)
{
	const char *argv[] = { getenv("SIGBUSFS"), "-f", source, mnt_dir, NULL };

	return fx_run_program(argv, out, size);
}

/* dir:PATH that is missing, not a directory, or inside the mount point: a message naming
 * PATH and why, a failed exit, nothing mounted. */
START_TEST(test_mount_bad_dir_source)
{
	char mnt_dir[] = "/tmp/sigbusfs-bad-XXXXXX", file[64], inside[96], missing[64];
	const char *src[3], *why[3] = { "No such file", "not a directory", "inside the mount" };
	char text[3][128], out[1024];

	ck_assert_ptr_nonnull(mkdtemp(mnt_dir));
	snprintf(missing, sizeof(missing), "%s.missing", mnt_dir);
	snprintf(file, sizeof(file), "%s.file", mnt_dir);
	snprintf(inside, sizeof(inside), "%s/sub", mnt_dir);
	fx_create_file(file, "x");
	ck_assert_int_eq(mkdir(inside, 0755), 0);
	src[0] = missing, src[1] = file, src[2] = inside;
	for (int i = 0; i < 3; i++) {
		int status;

		snprintf(text[i], sizeof(text[i]), "dir:%s", src[i]);
		status = run_daemon(text[i], mnt_dir, out, sizeof(out));
		ck_assert_msg(status != 0 && strstr(out, src[i]) && strstr(out, why[i]),
			      "%s: status %d, output '%s'", text[i], status, out);
	}
	ck_assert_int_eq(rmdir(inside), 0);
	ck_assert_int_eq(rmdir(mnt_dir), 0); /* fails if something is mounted there */
	ck_assert_int_eq(unlink(file), 0);
}
END_TEST

static Suite *posix_suite(void)
{
	Suite *s = suite_create("posix");
	TCase *tc;

	tc = fx_tcase(s, "file_io", 30, setup_default, teardown, fx_enter_workdir);
	FX_ADD_TESTS(tc, test_create_read_write, test_large_unaligned_io, test_truncate_zeroes);
	tc = fx_tcase(s, "stat", 30, setup_default, teardown, fx_enter_workdir);
	FX_ADD_TESTS(tc, test_stat_fields, test_times_on_write, test_times_on_dir_ops,
		     test_ctime_on_attr_change);
	tc = fx_tcase(s, "namespace", 30, setup_default, teardown, fx_enter_workdir);
	FX_ADD_TESTS(tc, test_mkdir_rmdir, test_name_limits, test_link_counts,
		     test_unlinked_open_file, test_symlink, test_mknod);
	tc = fx_tcase(s, "rename", 30, setup_default, teardown, fx_enter_workdir);
	FX_ADD_TESTS(tc, test_rename_over_file, test_rename_noreplace, test_rename_exchange,
		     test_rename_dirs);
	tc = fx_tcase(s, "readdir", 60, setup_default, teardown, fx_enter_workdir);
	FX_ADD_TESTS(tc, test_readdir_1000, test_readdir_unlink_each, test_readdir_unlink_others,
		     test_seekdir, test_telldir_each, test_readdir_add_remove);
	tc = fx_tcase(s, "fallocate_seek", 30, setup_default, teardown, fx_enter_workdir);
	FX_ADD_TESTS(tc, test_fallocate_modes, test_seek_data_hole);
	tc = fx_tcase(s, "xattr", 30, setup_default, teardown, fx_enter_workdir);
	FX_ADD_TESTS(tc, test_xattr_user, test_xattr_other_namespaces);
	tc = fx_tcase(s, "mount", 30, NULL, NULL, NULL);
	FX_ADD_TESTS(tc, test_mount_umount, test_umount_with_open_files, test_mount_bad_source,
		     test_mount_bad_dir_source);
	return s;
}

int main(void)
{
	fx_require_fuse();
	umask(022);
	return fx_run_suite(posix_suite());
}
