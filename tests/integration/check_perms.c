/* Permissions and space on a real sigbusfs mount: ownership, setgid directories, the
 * suid bits, permission checks and the sticky bit as other users see them (allow_other),
 * and statfs and ENOSPC on a size-limited mount. The other POSIX operations are tested in
 * check_posix.c. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/magic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "client.h"
#include "fixture.h"

#define MIB	     (1024 * 1024)
#define SMALL_FS_MIB 16
#define NOBODY	     65534
#define OTHER_UID    65533
#define OTHER_GID    1234

static struct mnt mnt; /* one per TCase, shared by its tests */

#define P(rel) fx_work_path(rel) /* rel in the running test's own directory */

static void setup_small(void)
{
	fx_mount_or_fail(&mnt, "mem:16M", NULL); /* SMALL_FS_MIB */
}

/* Other users act in this mount: allow_other, and a root directory they can enter. */
static void setup_shared(void)
{
	fx_mount_or_fail(&mnt, "mem:", "allow_other");
	ck_assert_int_eq(chmod(mnt.dir, 0755), 0);
}

static void teardown(void)
{
	fx_teardown(&mnt);
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
	ck_assert_int_eq(fx_lstat(P("hog")).st_size, (off_t)total);
	fx_expect_range(P("hog"), (off_t)total - 4096, 4096, 'e');
	ck_assert_uint_lt(free_bytes(), MIB);

	ck_assert_int_eq(unlink(P("hog")), 0);
	ck_assert_uint_ge(free_bytes_at_least(size - MIB), size - MIB);
	ck_assert_int_eq(mkdir(P("after"), 0755), 0);
	chunk = realloc(chunk, 4 * MIB);
	memset(chunk, 'a', 4 * MIB);
	ck_assert_int_eq(fx_write_file(P("after/f"), chunk, 4 * MIB), 0);
	fx_expect_range(P("after/f"), 3 * MIB, MIB, 'a');
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
	ck_assert_int_eq(fx_lstat(P("pre")).st_size, 0);
	ck_assert_int_eq(fallocate(fd, 0, 0, 4 * MIB), 0);
	ck_assert_int_eq(fx_lstat(P("pre")).st_size, 4 * MIB);
	ck_assert_int_eq(close(fd), 0);
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
		struct stat st = fx_lstat(P(names[i]));

		ck_assert_msg(st.st_uid == NOBODY && st.st_gid == NOBODY, "%s belongs to %d:%d",
			      names[i], (int)st.st_uid, (int)st.st_gid);
	}
	ck_assert_int_eq(fx_lstat(P("pub")).st_uid, 0);
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
	ck_assert_int_eq(fx_lstat(P("sg")).st_mode, S_IFDIR | 02777);
	run_as(NOBODY, NOBODY, 0, create_in_setgid_dir, NULL);
	fx_create_file(P("sg/rootf"), "");
	f = fx_lstat(P("sg/f"));
	sub = fx_lstat(P("sg/sub"));
	rootf = fx_lstat(P("sg/rootf"));
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
	fx_create_file(P("pub/suid"), "data");
	fx_create_file(P("pub/suid2"), "data");
	fx_create_file(P("pub/rootw"), "data");
	ck_assert_int_eq(chmod(P("pub/suid"), 06777), 0);
	ck_assert_int_eq(chmod(P("pub/suid2"), 04777), 0);
	ck_assert_int_eq(chmod(P("pub/rootw"), 04755), 0);
	run_as(NOBODY, NOBODY, 0, nobody_writes, NULL);
	ck_assert_int_eq(fx_lstat(P("pub/suid")).st_mode, S_IFREG | 0777);
	ck_assert_int_eq(fx_lstat(P("pub/suid2")).st_mode, S_IFREG | 0777);
	ck_assert_str_eq(fx_slurp(P("pub/suid")), "wata");

	/* root has CAP_FSETID: its write keeps the bit; chown clears it for anyone */
	fd = open(P("pub/rootw"), O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, "D", 1, 0), 1);
	ck_assert_int_eq(close(fd), 0);
	ck_assert_int_eq(fx_lstat(P("pub/rootw")).st_mode, S_IFREG | 04755);
	ck_assert_int_eq(chown(P("pub/rootw"), NOBODY, NOBODY), 0);
	ck_assert_int_eq(fx_lstat(P("pub/rootw")).st_mode, S_IFREG | 0755);
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
	fx_create_file(P("secret"), "secret");
	ck_assert_int_eq(chmod(P("secret"), 0600), 0);
	fx_create_file(P("public"), "public");
	ck_assert_int_eq(mkdir(P("rootdir"), 0755), 0);
	fx_create_file(P("rootdir/f"), "");
	ck_assert_int_eq(mkdir(P("private"), 0700), 0);
	run_as(NOBODY, NOBODY, 0, nobody_is_denied, NULL);
	ck_assert_str_eq(fx_slurp(P("public")), "public");
	ck_assert_int_eq(fx_lstat(P("public")).st_mode, S_IFREG | 0644);
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
	fx_create_file(P("pub/theirs"), "");
	run_as(NOBODY, NOBODY, OTHER_GID, nobody_chowns, NULL);
	st = fx_lstat(P("pub/mine"));
	ck_assert_int_eq(st.st_uid, NOBODY);
	ck_assert_int_eq(st.st_gid, OTHER_GID);
	ck_assert_int_eq(fx_lstat(P("pub/theirs")).st_uid, 0);
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
	ck_assert_str_eq(fx_slurp(P("sticky/a")), "a");
	ck_assert_int_eq(access(P("open/a"), F_OK), -1);
	run_as(NOBODY, NOBODY, 0, sticky_owner_removes, NULL);
	ck_assert_int_eq(access(P("sticky/a"), F_OK), -1);
}
END_TEST

static Suite *perms_suite(void)
{
	Suite *s = suite_create("perms");

	/* filling the mount and reading 2 MiB back byte by byte takes 20 to 40 s under
	 * AddressSanitizer on 2 loaded cores */
	if (fx_test_has_limit())
		FX_ADD_TESTS(fx_tcase(s, "space", 120, setup_small, teardown, fx_enter_workdir),
			     test_statfs_limit, test_enospc, test_enospc_fallocate);
	FX_ADD_TESTS(fx_tcase(s, "ownership", 30, setup_shared, teardown, fx_enter_workdir),
		     test_owner_is_caller, test_setgid_dir, test_suid_cleared_on_write,
		     test_permission_denied, test_chown_nonroot, test_sticky_dir);
	return s;
}

int main(void)
{
	fx_require_fuse();
	umask(022);
	return fx_run_suite(perms_suite());
}
