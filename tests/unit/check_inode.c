/* Unit tests of the inode table (fs/inode.c): lookup counting and forget, revocation
 * state that outlives the kernel's references, revival with a new generation, the list
 * of inodes the kernel holds, per-inode counters, and growth past the initial buckets. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>

#include "inode.h"
#include "suite.h"

static struct itab *t;

static void setup(void)
{
	ck_assert_int_eq(itab_new(&t), 0);
}

static void teardown(void)
{
	itab_free(t);
	t = NULL;
}

static uint64_t nlookup(uint64_t ino)
{
	struct inode_info info;

	ck_assert_int_eq(inode_info(t, ino, &info), 0);
	return info.nlookup;
}

START_TEST(test_lookup_counting)
{
	struct inode_info info;

	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(inode_ref(t, 5), 0);
	ck_assert(inode_is_known(t, 5));
	ck_assert_uint_eq(nlookup(5), 3);
	ck_assert_uint_eq(itab_count(t), 1);
	ck_assert_uint_eq(inode_forget(t, 5, 2), 1);
	ck_assert(inode_is_known(t, 5));
	ck_assert_uint_eq(inode_forget(t, 5, 1), 0);
	ck_assert(!inode_is_known(t, 5));
	ck_assert_uint_eq(itab_count(t), 0);
	ck_assert_int_eq(inode_info(t, 5, &info), -ENOENT);
}
END_TEST

/* The kernel may forget more than it holds; an inode it never held stays unknown. */
START_TEST(test_forget_limits)
{
	ck_assert_int_eq(inode_ref(t, 8), 0);
	ck_assert_uint_eq(inode_forget(t, 8, 5), 0);
	ck_assert_uint_eq(itab_count(t), 0);
	ck_assert_uint_eq(inode_forget(t, 9, 1), 0);
	ck_assert_uint_eq(itab_count(t), 0);
	ck_assert(!inode_is_known(t, 9));
}
END_TEST

START_TEST(test_state)
{
	int err = -1;
	uint64_t at = 99;

	/* an unknown inode is live, and the out-parameters are left alone */
	ck_assert_int_eq(inode_state(t, 4, &err, &at), INODE_LIVE);
	ck_assert_int_eq(err, -1);
	ck_assert_uint_eq(at, 99);
	ck_assert_uint_eq(itab_count(t), 0);
	ck_assert_int_eq(inode_set_state(t, 4, INODE_REVOKING, ENODEV, 12), 0);
	ck_assert_int_eq(inode_state(t, 4, &err, &at), INODE_REVOKING);
	ck_assert_int_eq(err, ENODEV);
	ck_assert_uint_eq(at, 12);
	ck_assert(!inode_is_known(t, 4));
}
END_TEST

/* A revoked inode stays revoked after the kernel forgets it, so that it is still revoked
 * when it is looked up again. */
START_TEST(test_revoked_outlives_forget)
{
	int err = 0;
	uint64_t at = 0;

	ck_assert_int_eq(inode_ref(t, 7), 0);
	ck_assert_int_eq(inode_set_state(t, 7, INODE_REVOKED, EIO, 9), 0);
	ck_assert_uint_eq(inode_forget(t, 7, 1), 0);
	ck_assert_uint_eq(itab_count(t), 1);
	ck_assert(!inode_is_known(t, 7));
	ck_assert_int_eq(inode_state(t, 7, &err, &at), INODE_REVOKED);
	ck_assert_int_eq(err, EIO);
	ck_assert_uint_eq(at, 9);
	ck_assert_int_eq(inode_ref(t, 7), 0);
	ck_assert_int_eq(inode_state(t, 7, &err, &at), INODE_REVOKED);
}
END_TEST

static bool has(const uint64_t *ids, size_t n, uint64_t ino)
{
	for (size_t i = 0; i < n; i++) {
		if (ids[i] == ino)
			return true;
	}
	return false;
}

/* The kernel holds one reference to each of 1..last. */
static void ref_upto(uint64_t last)
{
	for (uint64_t ino = 1; ino <= last; ino++)
		ck_assert_int_eq(inode_ref(t, ino), 0);
}

/* collect() lists exactly a and b. */
static void expect_listed(int (*collect)(struct itab *, uint64_t **, size_t *), uint64_t a,
			  uint64_t b)
{
	uint64_t *ids;
	size_t n;

	ck_assert_int_eq(collect(t, &ids, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert(has(ids, n, a) && has(ids, n, b));
	free(ids);
}

START_TEST(test_revive)
{
	struct inode_info info;
	int err;
	uint64_t at;

	ck_assert_int_eq(inode_ref(t, 1), 0); /* revoked, held by the kernel */
	ck_assert_int_eq(inode_set_state(t, 1, INODE_REVOKED, EIO, 3), 0);
	ck_assert_int_eq(inode_set_state(t, 2, INODE_REVOKED, EIO, 3), 0); /* not held */
	ck_assert_int_eq(inode_ref(t, 3), 0);				   /* live, held */
	ck_assert_uint_eq(inode_gen(t, 1), 0);
	/* only the revoked: the held one gets a new generation, the other is dropped */
	ck_assert_uint_eq(itab_revive(t, false), 2);
	ck_assert_int_eq(inode_state(t, 1, &err, &at), INODE_STALE);
	ck_assert_uint_eq(inode_gen(t, 1), 1);
	ck_assert_int_eq(inode_info(t, 2, &info), -ENOENT);
	ck_assert_uint_eq(inode_gen(t, 3), 0);
	ck_assert_uint_eq(itab_count(t), 2);
	/* all: live ones too */
	ck_assert_uint_eq(itab_revive(t, true), 2);
	ck_assert_uint_eq(inode_gen(t, 1), 2);
	ck_assert_uint_eq(inode_gen(t, 3), 1);
	ck_assert_uint_eq(nlookup(1), 1);
	ck_assert_uint_eq(inode_gen(t, 42), 0);
}
END_TEST

/* A revived inode is stale until an entry reply names it again; a stale one the kernel
 * forgets leaves the table, and a later revival of the revoked only leaves it stale. */
START_TEST(test_stale_until_looked_up)
{
	struct inode_info info;
	int err;
	uint64_t at;

	ck_assert_int_eq(inode_ref(t, 1), 0);
	ck_assert_int_eq(inode_ref(t, 2), 0);
	ck_assert_uint_eq(itab_revive(t, true), 2);
	ck_assert_int_eq(inode_state(t, 1, &err, &at), INODE_STALE);
	ck_assert_uint_eq(itab_revive(t, false), 0);
	ck_assert_int_eq(inode_state(t, 1, &err, &at), INODE_STALE);
	ck_assert_int_eq(inode_ref(t, 1), 0);
	ck_assert_int_eq(inode_state(t, 1, &err, &at), INODE_LIVE);
	ck_assert_uint_eq(nlookup(1), 2);
	ck_assert_uint_eq(inode_forget(t, 2, 1), 0);
	ck_assert_int_eq(inode_info(t, 2, &info), -ENOENT);
}
END_TEST

/* A READ or WRITE counted notes that pages may be cached; taking it forgets it, for one
 * inode or for all the kernel holds. */
START_TEST(test_cached)
{
	uint64_t *ids;
	size_t n;

	ref_upto(4);
	ck_assert(!inode_take_cached(t, 1));
	inode_count(t, 1, IC_READS, 1);
	inode_count(t, 2, IC_WRITES, 1);
	inode_count(t, 3, IC_ERRORS, 1); /* no data: nothing cached */
	inode_note_cached(t, 4);
	inode_note_cached(t, 99); /* not in the table: nothing is created */
	ck_assert_uint_eq(itab_count(t), 4);
	ck_assert(inode_take_cached(t, 1));
	ck_assert(!inode_take_cached(t, 1));
	expect_listed(itab_take_cached, 2, 4);
	ck_assert_int_eq(itab_take_cached(t, &ids, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(ids);
	inode_count(t, 2, IC_READS, 1);
	ck_assert(inode_take_cached(t, 2));
}
END_TEST

START_TEST(test_known)
{
	ref_upto(3);
	ck_assert_int_eq(inode_set_state(t, 4, INODE_REVOKED, EIO, 1), 0);
	inode_forget(t, 2, 1);
	expect_listed(itab_known, 1, 3);
}
END_TEST

/* Files open for writing are counted apart: the inode is written while one holds it. */
START_TEST(test_writers)
{
	struct inode *r, *w1, *w2;

	ck_assert_int_eq(inode_ref(t, 8), 0);
	ck_assert_int_eq(inode_hold(t, 8, false, &r), 0);
	ck_assert(!inode_is_written(t, 8));
	ck_assert_int_eq(inode_hold(t, 8, true, &w1), 0);
	ck_assert_int_eq(inode_hold(t, 8, true, &w2), 0);
	ck_assert(inode_is_written(t, 8));
	inode_unhold(t, w1, true);
	ck_assert(inode_is_written(t, 8));
	inode_unhold(t, w2, true);
	ck_assert(!inode_is_written(t, 8));
	inode_unhold(t, r, false);
	ck_assert(!inode_is_written(t, 99)); /* not in the table */
}
END_TEST

START_TEST(test_counters)
{
	struct inode_info info;

	ck_assert_int_eq(inode_ref(t, 6), 0);
	inode_count(t, 6, IC_READS, 3);
	inode_count(t, 6, IC_READS, 2);
	inode_count(t, 6, IC_LOST_BYTES, 4096);
	inode_count(t, 77, IC_READS, 1); /* not in the table: nothing is created */
	ck_assert_uint_eq(itab_count(t), 1);
	ck_assert_int_eq(inode_info(t, 6, &info), 0);
	ck_assert_uint_eq(info.count[IC_READS], 5);
	ck_assert_uint_eq(info.count[IC_LOST_BYTES], 4096);
	ck_assert_uint_eq(info.count[IC_WRITES], 0);
}
END_TEST

/* Far more inodes than the initial buckets: every one stays reachable through the
 * rehashes, and the table empties again. */
/* The name an entry reply gave an inode is kept while the kernel holds it: the last one
 * given, gone with the entry. */
START_TEST(test_names)
{
	uint64_t parent;
	char name[8];

	ck_assert_int_eq(inode_name(t, 5, &parent, name, sizeof(name)), -ENOENT);
	ck_assert_int_eq(inode_ref_named(t, 5, 1, "first"), 0);
	ck_assert_int_eq(inode_name(t, 5, &parent, name, sizeof(name)), 0);
	ck_assert_uint_eq(parent, 1);
	ck_assert_str_eq(name, "first");
	ck_assert_int_eq(inode_ref_named(t, 5, 9, "second"), 0);
	ck_assert_int_eq(inode_name(t, 5, &parent, name, sizeof(name)), 0);
	ck_assert_uint_eq(parent, 9);
	ck_assert_str_eq(name, "second");
	ck_assert_int_eq(inode_name(t, 5, &parent, name, 4), -ENAMETOOLONG);
	ck_assert_int_eq(inode_ref(t, 5), 0); /* a reference without a name keeps the last */
	ck_assert_int_eq(inode_name(t, 5, &parent, name, sizeof(name)), 0);
	ck_assert_uint_eq(nlookup(5), 3);
	ck_assert_uint_eq(inode_forget(t, 5, 3), 0);
	ck_assert_int_eq(inode_name(t, 5, &parent, name, sizeof(name)), -ENOENT);
	ck_assert_int_eq(inode_ref(t, 5), 0);
	ck_assert_int_eq(inode_name(t, 5, &parent, name, sizeof(name)), -ENOENT);
}
END_TEST

START_TEST(test_growth)
{
	const uint64_t n = 5000;
	uint64_t *ids;
	size_t nk;

	for (uint64_t ino = 1; ino <= n; ino++) {
		ck_assert_int_eq(inode_ref(t, ino * 7919), 0);
		inode_count(t, ino * 7919, IC_WRITES, ino);
	}
	ck_assert_uint_eq(itab_count(t), n);
	for (uint64_t ino = 1; ino <= n; ino++) {
		struct inode_info info;

		ck_assert_int_eq(inode_info(t, ino * 7919, &info), 0);
		ck_assert_uint_eq(info.count[IC_WRITES], ino);
	}
	ck_assert_int_eq(itab_known(t, &ids, &nk), 0);
	ck_assert_uint_eq(nk, n);
	free(ids);
	for (uint64_t ino = 1; ino <= n; ino++)
		ck_assert_uint_eq(inode_forget(t, ino * 7919, 1), 0);
	ck_assert_uint_eq(itab_count(t), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("inode");

	fx_unit_tcase(s, "itab", 0, setup, teardown,
		      FX_TESTS(test_lookup_counting, test_forget_limits, test_state,
			       test_revoked_outlives_forget, test_revive, test_known, test_counters,
			       test_growth, test_stale_until_looked_up, test_cached, test_names,
			       test_writers));
	return fx_run_suite(s);
}
