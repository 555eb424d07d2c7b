/* Unit tests of write --from's reader (fs/fromfile.c): a regular file whole or its first
 * N bytes, a device only with N, a short file refused, and any path that steps on the
 * "own mount", directly, through a symlink, or only passing through it, refused before
 * anything in it is opened. /dev/shm, a tmpfs of its own, plays the daemon's mount. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fromfile.h"
#include "suite.h"

#define OWN "/dev/shm"

static char dir[64], inside[96], err[512];
static uint8_t *buf;
static size_t len;

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static void setup(void)
{
	char path[160];

	snprintf(dir, sizeof(dir), "/tmp/check_fromfile-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(inside, sizeof(inside), OWN "/check_fromfile-%d", (int)getpid());
	put(inside, "own mount");
	snprintf(path, sizeof(path), "%s/f", dir);
	put(path, "hello");
	snprintf(path, sizeof(path), "%s/to-own", dir);
	ck_assert_int_eq(symlink(inside, path), 0);
	snprintf(path, sizeof(path), "%s/to-f", dir);
	ck_assert_int_eq(symlink("f", path), 0);
}

static void teardown(void)
{
	char cmd[128];

	free(buf);
	buf = NULL;
	unlink(inside);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static int rd(const char *fmt, const char *arg, uint64_t n)
{
	char path[256];

	free(buf);
	buf = NULL;
	snprintf(path, sizeof(path), fmt, arg);
	return fromfile_read(path, OWN, n, &buf, &len, err, sizeof(err));
}

START_TEST(test_regular)
{
	ck_assert_int_eq(rd("%s/f", dir, 0), 0);
	ck_assert_uint_eq(len, 5);
	ck_assert_mem_eq(buf, "hello", 5);
	ck_assert_int_eq(rd("%s/f", dir, 2), 0);
	ck_assert_uint_eq(len, 2);
	ck_assert_int_eq(rd("%s//./to-f", dir, 0), 0);
	ck_assert_mem_eq(buf, "hello", 5);
	ck_assert_int_eq(rd("%s/f", dir, 6), -ENODATA);
	ck_assert_msg(strstr(err, "ends after 5 of 6 bytes"), "%s", err);
	ck_assert_int_eq(rd("%s/none", dir, 0), -ENOENT);
	ck_assert_msg(strstr(err, "/none: No such file"), "%s", err);
}
END_TEST

START_TEST(test_device_needs_len)
{
	ck_assert_int_eq(rd("%s", "/dev/zero", 0), -EINVAL);
	ck_assert_msg(strstr(err, "/dev/zero: not a regular file") && strstr(err, "--len N"), "%s",
		      err);
	ck_assert_ptr_null(buf);
	ck_assert_int_eq(rd("%s", "/dev/zero", 4096), 0);
	ck_assert_uint_eq(len, 4096);
	ck_assert_uint_eq(buf[0] | buf[4095], 0);
	ck_assert_int_eq(rd("%s", "/dev/zero", FROMFILE_MAX + 1ull), -EFBIG);
}
END_TEST

START_TEST(test_own_mount_refused)
{
	ck_assert_int_eq(rd("%s", inside, 0), -EXDEV);
	ck_assert_msg(strstr(err, "inside this daemon's own mount " OWN), "%s", err);
	ck_assert_int_eq(rd("%s/to-own", dir, 0), -EXDEV);
	ck_assert_int_eq(rd("%s", OWN "/../shm/x", 0), -EXDEV);
	/* even only passing through it: no step is taken on the mount */
	ck_assert_int_eq(rd("%s", OWN "/../null", 1), -EXDEV);
	ck_assert_int_eq(rd("%s/../../dev/zero", dir, 1), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fromfile");

	fx_unit_tcase(s, "fromfile", 30, setup, teardown,
		      FX_TESTS(test_regular, test_device_needs_len, test_own_mount_refused));
	return fx_run_suite(s);
}
