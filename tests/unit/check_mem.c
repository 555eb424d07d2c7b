/* Unit tests for what the mem backend adds to the backend contract: the limit bounds its
 * metadata too. Up to limit/64 bytes of metadata are free; past that, inodes, names,
 * xattr records and page-index nodes take space from the limit, so neither empty files
 * nor a sparse file with far-apart pages can grow the daemon without bound, and all of it
 * comes back. */
#include "backend.h"
#include "suite.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>

#define ROOT  BK_ROOT_INO
#define F_REG (S_IFREG | 0644)

static struct bk *be;

static void open_mem(uint64_t limit)
{
	const struct bk_source src = { .arg = "", .has_size = true, .size = limit };

	ck_assert_int_eq(bk_open(&bk_mem_ops, &src, NULL, &be), 0);
}

static void teardown(void)
{
	bk_close(be);
	be = NULL;
}

static struct statvfs statfs_of(void)
{
	struct statvfs sv;

	ck_assert_int_eq(bk_statfs(be, &sv), 0);
	return sv;
}

static int mk(const char *name, uint64_t *ino_out)
{
	const struct bk_new n = { .mode = F_REG };
	struct bk_attr a;
	int rc = bk_mknod(be, ROOT, name, &n, &a);

	*ino_out = rc == 0 ? a.ino : 0;
	return rc;
}

/* Empty files cost no data, but their inodes and names fill a mem:64K mount after a few
 * hundred files (not 2^32); unlinked and forgotten, they give it all back. */
START_TEST(test_empty_files_fill_the_mount)
{
	static uint64_t ino[1000];
	char name[32];
	int n, rc = 0;

	open_mem(64 << 10);
	for (n = 0; n < 1000 && rc == 0; n++) {
		snprintf(name, sizeof(name), "empty-file-%04d", n);
		rc = mk(name, &ino[n]);
	}
	ck_assert_int_eq(rc, -ENOSPC);
	ck_assert_uint_eq(statfs_of().f_bfree, 0);
	for (int i = 0; i < n - 1; i++) {
		snprintf(name, sizeof(name), "empty-file-%04d", i);
		ck_assert_int_eq(bk_unlink(be, ROOT, name), 0);
		bk_forget(be, ino[i]);
	}
	ck_assert_uint_eq(statfs_of().f_bfree, statfs_of().f_blocks);
}
END_TEST

/* Each page 1 TiB from the next needs its own path of index nodes: on mem:1M that fills
 * the mount well before 256 pages of data; truncation gives it all back. */
START_TEST(test_sparse_index_fills_the_mount)
{
	const struct bk_setattr truncate_to_0 = { .valid = BK_SET_SIZE, .size = 0 };
	struct bk_attr a;
	uint64_t f;
	ssize_t rc = 0;
	int n;

	open_mem(1 << 20);
	ck_assert_int_eq(mk("sparse", &f), 0);
	for (n = 0; n < 256 && rc >= 0; n++)
		rc = bk_write(be, f, 0, "x", 1, (off_t)n << 40);
	ck_assert_int_eq(rc, -ENOSPC);
	ck_assert_int_lt(n, 240);
	ck_assert_uint_eq(statfs_of().f_bfree, 0);
	ck_assert_int_eq(bk_write(be, f, 0, "x", 1, 4096), -ENOSPC);
	ck_assert_int_eq(bk_setattr(be, f, &truncate_to_0, &a), 0);
	ck_assert_uint_eq(statfs_of().f_bfree, statfs_of().f_blocks);
}
END_TEST

/* An xattr with an empty value costs its record, not just its name: a mem:64K mount
 * takes far fewer than 64K/9 of them; removed, they give it all back. */
START_TEST(test_xattr_records_fill_the_mount)
{
	char name[32];
	int n, rc = 0;

	open_mem(64 << 10);
	for (n = 0; n < 7000 && rc == 0; n++) {
		snprintf(name, sizeof(name), "user.%04d", n);
		rc = bk_setxattr(be, ROOT, name, "", 0, XATTR_CREATE);
	}
	ck_assert_int_eq(rc, -ENOSPC);
	ck_assert_int_lt(n, 3000);
	for (int i = 0; i < n - 1; i++) {
		snprintf(name, sizeof(name), "user.%04d", i);
		ck_assert_int_eq(bk_removexattr(be, ROOT, name), 0);
	}
	ck_assert_uint_eq(statfs_of().f_bfree, statfs_of().f_blocks);
}
END_TEST

/* Below the free share, metadata shows nowhere: a mem:16M mount with a few hundred small
 * names still offers every block. */
START_TEST(test_small_metadata_is_free)
{
	char name[32];
	uint64_t ino;

	open_mem(16 << 20);
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		ck_assert_int_eq(mk(name, &ino), 0);
	}
	ck_assert_uint_eq(statfs_of().f_bfree, statfs_of().f_blocks);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mem");

	fx_unit_tcase(s, "metadata", 0, NULL, teardown,
		      FX_TESTS(test_empty_files_fill_the_mount, test_sparse_index_fills_the_mount,
			       test_xattr_records_fill_the_mount, test_small_metadata_is_free));
	return fx_run_suite(s);
}
