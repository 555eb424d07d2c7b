/* Unit tests of the power cut's undo copies (fs/durable.c) over a real mem backend: what
 * was saved before a change comes back on revert, bytes and size; a sync forgets it;
 * appended bytes are cut; a page that was a hole comes back as a hole; pending counts;
 * a file the backend no longer has is passed by; torn writes: the prefix is durable at
 * once, the tail stays lost through fsync until a later change or a sync. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "durable.h"
#include "suite.h"

#define PG   4096
#define ROOT BK_ROOT_INO

static struct bk *b;
static struct durable *d;
static uint64_t f; /* a file of 2 durable pages: 'a', then 'b' */

static void put(uint64_t ino, off_t off, size_t len, char val)
{
	char *buf = malloc(len);

	memset(buf, val, len);
	ck_assert_int_eq(bk_write(b, ino, 0, buf, len, off), (ssize_t)len);
	free(buf);
}

/* A client's write: saved first, then made. */
static void client_write(uint64_t ino, off_t off, size_t len, char val)
{
	ck_assert_int_eq(durable_before_change(d, b, ino, (uint64_t)off, len), 0);
	put(ino, off, len, val);
}

static void expect(uint64_t ino, off_t off, size_t len, char val)
{
	char *buf = malloc(len);

	ck_assert_int_eq(bk_read(b, ino, 0, buf, len, off), (ssize_t)len);
	for (size_t i = 0; i < len; i++)
		ck_assert_msg(buf[i] == val, "byte %zu: %d, expected %d", (size_t)off + i, buf[i],
			      val);
	free(buf);
}

static uint64_t size_of(uint64_t ino)
{
	struct bk_attr a;

	ck_assert_int_eq(bk_getattr(b, ino, &a), 0);
	return a.size;
}

static void setup(void)
{
	const struct bk_source src = { .arg = "", .has_size = true, .size = 16 << 20 };
	const struct bk_new n = { .mode = S_IFREG | 0644 };
	struct bk_attr a;

	ck_assert_int_eq(bk_open(&bk_mem_ops, &src, NULL, &b), 0);
	ck_assert_int_eq(durable_new(PG, &d), 0);
	ck_assert_int_eq(bk_mknod(b, ROOT, "f", &n, &a), 0);
	f = a.ino;
	put(f, 0, PG, 'a');
	put(f, PG, PG, 'b');
}

static void teardown(void)
{
	durable_free(d);
	bk_close(b);
}

static struct durable_count revert(uint64_t ino)
{
	int err;
	struct durable_count c = durable_revert(d, b, ino, &err);

	ck_assert_int_eq(err, 0);
	return c;
}

START_TEST(test_revert_bytes_and_size)
{
	struct durable_count c;

	client_write(f, 100, 10, 'X');
	client_write(f, 150, 10, 'Y'); /* the same page: saved once */
	client_write(f, 2 * PG, 300, 'Z');
	c = durable_pending(d, b, 0);
	ck_assert_uint_eq(c.files, 1);
	ck_assert_uint_eq(c.bytes, PG + 300);
	c = revert(0);
	ck_assert_uint_eq(c.files, 1);
	ck_assert_uint_eq(size_of(f), 2 * PG);
	expect(f, 0, PG, 'a');
	expect(f, PG, PG, 'b');
	ck_assert_uint_eq(durable_pending(d, b, 0).files, 0);
}
END_TEST

START_TEST(test_sync_forgets)
{
	client_write(f, 0, 10, 'X');
	durable_sync(d, f);
	ck_assert_uint_eq(durable_pending(d, b, f).files, 0);
	client_write(f, PG, 10, 'Y');
	revert(0);
	expect(f, 0, 10, 'X');
	expect(f, PG, PG, 'b');
}
END_TEST

/* A shrink saves what it cuts; the page across the old end keeps only durable bytes. */
START_TEST(test_shrink_and_partial_page)
{
	const struct bk_setattr shrink = { .valid = BK_SET_SIZE, .size = 10 };
	struct bk_attr a;

	put(f, 2 * PG, 100, 'c'); /* durable end at 2 pages + 100 */
	client_write(f, 2 * PG + 100, 50, 'Q');
	ck_assert_int_eq(durable_before_change(d, b, f, 10, UINT64_MAX), 0);
	ck_assert_int_eq(bk_setattr(b, f, &shrink, &a), 0);
	revert(f);
	ck_assert_uint_eq(size_of(f), 2 * PG + 100);
	expect(f, 0, PG, 'a');
	expect(f, PG, PG, 'b');
	expect(f, 2 * PG, 100, 'c');
}
END_TEST

START_TEST(test_hole_comes_back)
{
	ck_assert_int_eq(bk_fallocate(b, f, 0, BK_FALLOC_PUNCH_HOLE | BK_FALLOC_KEEP_SIZE, PG, PG),
			 0);
	client_write(f, PG, 10, 'X');
	revert(f);
	expect(f, PG, PG, 0);
	ck_assert_int_eq(bk_lseek(b, f, PG, SEEK_DATA), -ENXIO);
}
END_TEST

START_TEST(test_removed_file_passed_by)
{
	struct durable_count c;
	int err;

	client_write(f, 0, 10, 'X');
	ck_assert_int_eq(bk_unlink(b, ROOT, "f"), 0);
	bk_forget(b, f);
	c = durable_revert(d, b, 0, &err);
	ck_assert_int_eq(err, 0);
	ck_assert_uint_eq(c.files, 0);
}
END_TEST

/* A client's write of val, torn after keep bytes. */
static void torn_write(uint64_t ino, off_t off, size_t len, char val, uint64_t keep)
{
	char *buf = malloc(len);

	memset(buf, val, len);
	ck_assert_int_eq(durable_torn_write(d, b, ino, (uint64_t)off, buf, len, keep), 0);
	ck_assert_int_eq(bk_write(b, ino, 0, buf, len, off), (ssize_t)len);
	free(buf);
}

START_TEST(test_torn_prefix_without_sync)
{
	client_write(f, 0, 10, 'Y'); /* not synced: lost */
	torn_write(f, 100, 5000, 'X', 300);
	revert(f);
	ck_assert_uint_eq(size_of(f), 2 * PG);
	expect(f, 0, 100, 'a');
	expect(f, 100, 300, 'X');
	expect(f, 400, PG - 400, 'a');
	expect(f, PG, PG, 'b');
}
END_TEST

/* The tail stays lost through fsync; a later write into it, in its middle, is kept. */
START_TEST(test_torn_tail_survives_fsync)
{
	torn_write(f, 0, 2 * PG, 'X', 100);
	client_write(f, PG, 10, 'Z');
	ck_assert_int_eq(durable_fsync(d, b, f), 0);
	ck_assert_uint_eq(durable_pending(d, b, f).files, 1);
	ck_assert_int_eq(durable_fsync(d, b, f), 0); /* a second one changes nothing */
	revert(f);
	expect(f, 0, 100, 'X');
	expect(f, 100, PG - 100, 'a');
	expect(f, PG, 10, 'Z');
	expect(f, PG + 10, PG - 10, 'b');
	ck_assert_uint_eq(durable_pending(d, b, f).files, 0);
}
END_TEST

/* An append torn after keep bytes: the durable size grows to the prefix; after fsync to
 * the whole write, whose tail reads 0. A shrink cuts the tail. */
START_TEST(test_torn_append)
{
	const struct bk_setattr shrink = { .valid = BK_SET_SIZE, .size = 3 * PG };
	struct bk_attr a;

	torn_write(f, 3 * PG, 200, 'X', 50); /* a hole of a page before it */
	revert(f);
	ck_assert_uint_eq(size_of(f), 3 * PG + 50);
	expect(f, 2 * PG, PG, 0);
	expect(f, 3 * PG, 50, 'X');
	torn_write(f, 3 * PG + 50, PG, 'Y', 10);
	ck_assert_int_eq(durable_fsync(d, b, f), 0);
	revert(f);
	ck_assert_uint_eq(size_of(f), 4 * PG + 50);
	expect(f, 3 * PG + 50, 10, 'Y');
	expect(f, 3 * PG + 60, PG - 10, 0);
	torn_write(f, 0, 100, 'W', 0);
	ck_assert_int_eq(durable_before_change(d, b, f, 3 * PG, UINT64_MAX), 0);
	ck_assert_int_eq(bk_setattr(b, f, &shrink, &a), 0);
	ck_assert_int_eq(durable_fsync(d, b, f), 0);
	revert(f);
	ck_assert_uint_eq(size_of(f), 3 * PG);
	expect(f, 0, PG, 'a');
}
END_TEST

START_TEST(test_torn_sync_forgets)
{
	torn_write(f, 0, 100, 'X', 10);
	durable_sync(d, f);
	revert(f);
	expect(f, 0, 100, 'X');
}
END_TEST

int main(void)
{
	Suite *s = suite_create("durable");

	fx_unit_tcase(s, "durable", 30, setup, teardown,
		      FX_TESTS(test_revert_bytes_and_size, test_sync_forgets,
			       test_shrink_and_partial_page, test_hole_comes_back,
			       test_removed_file_passed_by, test_torn_prefix_without_sync,
			       test_torn_tail_survives_fsync, test_torn_append,
			       test_torn_sync_forgets));
	return fx_run_suite(s);
}
