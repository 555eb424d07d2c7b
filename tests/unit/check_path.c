/* Unit tests of the paths of control commands (fs/path.c): path_normalize() resolves "."
 * and ".." against the backend's directories, never above the root, refuses "", a
 * trailing "/" on a file and a ".." after a file, and names the problem; path_resolve()
 * and path_walk() take its canonical form. A mem backend holds d/e/f and d/g. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "path.h"
#include "suite.h"

static struct sfs fs;
static char *canon;
static char err[256];

static uint64_t mk(uint64_t parent, const char *name, mode_t mode)
{
	const struct bk_new n = { .mode = mode };
	struct bk_attr a;

	ck_assert_int_eq(bk_mknod(fs.bk, parent, name, &n, &a), 0);
	return a.ino;
}

static void setup(void)
{
	const struct bk_source src = { .arg = "", .has_size = true, .size = 1 << 20 };
	uint64_t d;

	ck_assert_int_eq(bk_open(&bk_mem_ops, &src, NULL, &fs.bk), 0);
	d = mk(BK_ROOT_INO, "d", S_IFDIR | 0755);
	mk(mk(d, "e", S_IFDIR | 0755), "f", S_IFREG | 0644);
	mk(d, "g", S_IFREG | 0644);
}

static void teardown(void)
{
	free(canon);
	canon = NULL;
	bk_close(fs.bk);
}

static int norm(const char *given)
{
	free(canon);
	canon = NULL;
	err[0] = '\0';
	return path_normalize(&fs, given, &canon, err, sizeof(err));
}

static const struct {
	const char *given, *want;
} good[] = {
	{ "/", "" },	       { ".", "" },	  { "//./", "" },
	{ "d", "d" },	       { "/d/", "d" },	  { "d//e/./f", "d/e/f" },
	{ "d/e/../g", "d/g" }, { "d/e/..", "d" }, { "d/e/../../d/e/f", "d/e/f" },
	{ "d/..", "" },
};

START_TEST(test_good)
{
	ck_assert_msg(norm(good[_i].given) == 0, "'%s': %s", good[_i].given, err);
	ck_assert_str_eq(canon, good[_i].want);
}
END_TEST

static const struct {
	const char *given;
	int rc;
	const char *msg;
} bad[] = {
	{ "", -ENOENT, "PATH is empty (the mount's root is \"/\")" },
	{ "d/g/", -ENOTDIR, "d/g/: d/g is not a directory" },
	{ "d/g/.", -ENOTDIR, "d/g is not a directory" },
	{ "d/g/..", -ENOTDIR, "d/g is not a directory" },
	{ "d/g/x", -ENOTDIR, "d/g is not a directory" },
	{ "..", -EINVAL, "..: '..' climbs above the mount's root" },
	{ "/../d", -EINVAL, "/../d: '..' climbs above the mount's root" },
	{ "d/e/../../../d", -EINVAL, "climbs above the mount's root" },
	{ "x", -ENOENT, "x: No such file or directory" },
	{ "d/x/../g", -ENOENT, "d/x/../g: d/x: No such file or directory" },
};

START_TEST(test_bad)
{
	ck_assert_int_eq(norm(bad[_i].given), bad[_i].rc);
	ck_assert_ptr_null(canon);
	ck_assert_msg(strstr(err, bad[_i].msg), "'%s': message '%s' lacks '%s'", bad[_i].given, err,
		      bad[_i].msg);
}
END_TEST

START_TEST(test_resolve_canonical)
{
	struct bk_attr a;
	uint64_t parent;

	ck_assert_int_eq(norm("d/e/../e/f"), 0);
	ck_assert_int_eq(path_resolve(&fs, canon, &parent, &a), 0);
	ck_assert(S_ISREG(a.mode));
	ck_assert_int_eq(path_resolve(&fs, "", &parent, &a), 0);
	ck_assert_uint_eq(a.ino, BK_ROOT_INO);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("path");
	TCase *tc = tcase_create("normalize");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_good, 0, sizeof(good) / sizeof(good[0]));
	tcase_add_loop_test(tc, test_bad, 0, sizeof(bad) / sizeof(bad[0]));
	tcase_add_test(tc, test_resolve_canonical);
	suite_add_tcase(s, tc);
	return fx_run_suite(s);
}
