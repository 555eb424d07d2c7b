/* Unit tests for backend/pagemap.c: insert, lookup, next_present, remove and range
 * removal, with small, large and sparse indexes, checked against a simple model. */
#include "pagemap.h"
#include "suite.h"

#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#define TIB_PAGES (UINT64_C(1) << 28)	    /* 4 KiB pages in 1 TiB */
#define LAST_PAGE ((UINT64_C(1) << 51) - 1) /* the page holding byte INT64_MAX */

static struct pagemap pm;
static uint64_t nfreed;

static void *item(uint64_t idx)
{
	return (void *)(uintptr_t)~idx;
}

static void count_free(void *it, void *ctx)
{
	(void)it;
	(void)ctx;
	nfreed++;
}

static void setup(void)
{
	pagemap_init(&pm);
	nfreed = 0;
}

static void teardown(void)
{
	pagemap_destroy(&pm, NULL, NULL);
}

static void insert_all(const uint64_t *idx, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(pagemap_insert(&pm, idx[i], item(idx[i])), 0);
}

START_TEST(test_empty)
{
	ck_assert_ptr_null(pagemap_lookup(&pm, 0));
	ck_assert_ptr_null(pagemap_lookup(&pm, PAGEMAP_INDEX_MAX));
	ck_assert_uint_eq(pagemap_next_present(&pm, 0), PAGEMAP_NONE);
	ck_assert_ptr_null(pagemap_remove(&pm, 7));
	ck_assert_uint_eq(pagemap_remove_range(&pm, 0, PAGEMAP_INDEX_MAX, NULL, NULL), 0);
	ck_assert_uint_eq(pm.count, 0);
}
END_TEST

START_TEST(test_insert_lookup)
{
	for (uint64_t i = 0; i < 1000; i++)
		ck_assert_int_eq(pagemap_insert(&pm, i * 3, item(i * 3)), 0);
	ck_assert_uint_eq(pm.count, 1000);
	for (uint64_t i = 0; i < 3000; i++)
		ck_assert_ptr_eq(pagemap_lookup(&pm, i), i % 3 ? NULL : item(i));
	ck_assert_int_eq(pagemap_insert(&pm, 3, item(3)), -EEXIST);
	ck_assert_uint_eq(pm.count, 1000);
}
END_TEST

START_TEST(test_sparse_large)
{
	const uint64_t idx[] = {
		0, 63, 64, 4096, TIB_PAGES, UINT64_C(1) << 40, LAST_PAGE, PAGEMAP_INDEX_MAX
	};

	const uint64_t absent[] = { 1,
				    62,
				    65,
				    4095,
				    4097,
				    TIB_PAGES - 1,
				    TIB_PAGES + 1,
				    LAST_PAGE - 1,
				    PAGEMAP_INDEX_MAX - 1 };

	insert_all(idx, sizeof(idx) / sizeof(idx[0]));
	for (size_t i = 0; i < sizeof(idx) / sizeof(idx[0]); i++)
		ck_assert_ptr_eq(pagemap_lookup(&pm, idx[i]), item(idx[i]));
	for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++)
		ck_assert_ptr_null(pagemap_lookup(&pm, absent[i]));
	ck_assert_uint_eq(pm.count, sizeof(idx) / sizeof(idx[0]));
}
END_TEST

/* A 1 TiB offset costs one path of nodes, and the tree shrinks back when it goes. */
START_TEST(test_height)
{
	ck_assert_int_eq(pagemap_insert(&pm, 5, item(5)), 0);
	ck_assert_uint_eq(pm.height, 1);
	ck_assert_int_eq(pagemap_insert(&pm, TIB_PAGES, item(TIB_PAGES)), 0);
	ck_assert_uint_eq(pm.height, 5);
	ck_assert_ptr_eq(pagemap_remove(&pm, TIB_PAGES), item(TIB_PAGES));
	ck_assert_uint_eq(pm.height, 1);
	ck_assert_ptr_eq(pagemap_remove(&pm, 5), item(5));
	ck_assert_ptr_null(pm.root);
	ck_assert_uint_eq(pm.height, 0);
}
END_TEST

/* The node count, as pagemap_bytes() reports it: 64 consecutive entries share one node, a
 * 1 TiB offset adds a path of them, and removals give every node back. */
START_TEST(test_node_bytes)
{
	uint64_t node;

	ck_assert_uint_eq(pagemap_bytes(&pm), 0);
	for (uint64_t i = 0; i < 64; i++)
		ck_assert_int_eq(pagemap_insert(&pm, i, item(i)), 0);
	node = pagemap_bytes(&pm);
	ck_assert_uint_eq(pm.nodes, 1);
	ck_assert_uint_ge(node, 64 * sizeof(void *));
	ck_assert_int_eq(pagemap_insert(&pm, TIB_PAGES, item(TIB_PAGES)), 0);
	ck_assert_uint_eq(pm.nodes, 9); /* a root of height 5, 4 nodes down to the new entry */
	ck_assert_uint_eq(pagemap_bytes(&pm), 9 * node);
	ck_assert_uint_eq(pagemap_remove_range(&pm, 1, TIB_PAGES - 1, NULL, NULL), 63);
	ck_assert_uint_eq(pm.nodes, 9);
	ck_assert_ptr_eq(pagemap_remove(&pm, TIB_PAGES), item(TIB_PAGES));
	ck_assert_uint_eq(pm.nodes, 1);
	ck_assert_ptr_eq(pagemap_remove(&pm, 0), item(0));
	ck_assert_uint_eq(pagemap_bytes(&pm), 0);
}
END_TEST

START_TEST(test_next_present)
{
	const uint64_t idx[] = { 5, 64, 4095, 4096, TIB_PAGES, LAST_PAGE };

	insert_all(idx, sizeof(idx) / sizeof(idx[0]));
	ck_assert_uint_eq(pagemap_next_present(&pm, 0), 5);
	ck_assert_uint_eq(pagemap_next_present(&pm, 5), 5);
	ck_assert_uint_eq(pagemap_next_present(&pm, 6), 64);
	ck_assert_uint_eq(pagemap_next_present(&pm, 65), 4095);
	ck_assert_uint_eq(pagemap_next_present(&pm, 4096), 4096);
	ck_assert_uint_eq(pagemap_next_present(&pm, 4097), TIB_PAGES);
	ck_assert_uint_eq(pagemap_next_present(&pm, TIB_PAGES + 1), LAST_PAGE);
	ck_assert_uint_eq(pagemap_next_present(&pm, LAST_PAGE + 1), PAGEMAP_NONE);
	ck_assert_uint_eq(pagemap_next_present(&pm, PAGEMAP_INDEX_MAX), PAGEMAP_NONE);
}
END_TEST

START_TEST(test_remove)
{
	for (uint64_t i = 0; i < 200; i++)
		ck_assert_int_eq(pagemap_insert(&pm, i, item(i)), 0);
	for (uint64_t i = 0; i < 200; i += 2)
		ck_assert_ptr_eq(pagemap_remove(&pm, i), item(i));
	ck_assert_ptr_null(pagemap_remove(&pm, 0));
	ck_assert_ptr_null(pagemap_remove(&pm, 1000));
	ck_assert_uint_eq(pm.count, 100);
	ck_assert_uint_eq(pagemap_next_present(&pm, 0), 1);
	for (uint64_t i = 1; i < 200; i += 2)
		ck_assert_ptr_eq(pagemap_remove(&pm, i), item(i));
	ck_assert_ptr_null(pm.root);
	ck_assert_uint_eq(pm.count, 0);
}
END_TEST

START_TEST(test_remove_range)
{
	for (uint64_t i = 0; i < 1000; i++)
		ck_assert_int_eq(pagemap_insert(&pm, i, item(i)), 0);
	ck_assert_uint_eq(pagemap_remove_range(&pm, 100, 899, count_free, NULL), 800);
	ck_assert_uint_eq(nfreed, 800);
	ck_assert_uint_eq(pm.count, 200);
	ck_assert_ptr_eq(pagemap_lookup(&pm, 99), item(99));
	ck_assert_ptr_null(pagemap_lookup(&pm, 100));
	ck_assert_ptr_null(pagemap_lookup(&pm, 899));
	ck_assert_ptr_eq(pagemap_lookup(&pm, 900), item(900));
	ck_assert_uint_eq(pagemap_next_present(&pm, 100), 900);
	ck_assert_uint_eq(pagemap_remove_range(&pm, 5, 4, count_free, NULL), 0);
	ck_assert_uint_eq(pagemap_remove_range(&pm, 0, PAGEMAP_INDEX_MAX, count_free, NULL), 200);
	ck_assert_ptr_null(pm.root);
}
END_TEST

/* Far wider than could be walked index by index: must skip the empty subtrees. */
START_TEST(test_remove_huge_range)
{
	const uint64_t idx[] = { 3, TIB_PAGES, UINT64_C(1) << 40, LAST_PAGE - 1, LAST_PAGE };

	insert_all(idx, sizeof(idx) / sizeof(idx[0]));
	ck_assert_uint_eq(pagemap_remove_range(&pm, 4, LAST_PAGE - 1, count_free, NULL), 3);
	ck_assert_uint_eq(pm.count, 2);
	ck_assert_ptr_eq(pagemap_lookup(&pm, 3), item(3));
	ck_assert_ptr_eq(pagemap_lookup(&pm, LAST_PAGE), item(LAST_PAGE));
	ck_assert_uint_eq(pagemap_next_present(&pm, 4), LAST_PAGE);
	ck_assert_uint_eq(pagemap_remove_range(&pm, 0, UINT64_MAX, count_free, NULL), 2);
	ck_assert_uint_eq(nfreed, 5);
	ck_assert_uint_eq(pm.height, 0);
}
END_TEST

START_TEST(test_destroy_frees_all)
{
	const uint64_t idx[] = { 1, 2, 100000, TIB_PAGES, LAST_PAGE };

	insert_all(idx, sizeof(idx) / sizeof(idx[0]));
	pagemap_destroy(&pm, count_free, NULL);
	ck_assert_uint_eq(nfreed, 5);
	ck_assert_ptr_null(pm.root);
	ck_assert_uint_eq(pm.count, 0);
	ck_assert_uint_eq(pm.nodes, 0);
}
END_TEST

/* Random operations on a small universe spread over the index space, against a model. */
#define MODEL_N 512

static uint64_t model_index(unsigned k)
{
	return (uint64_t)k * (uint64_t)k * 977 + (k % 7 == 0 ? UINT64_C(1) << 44 : 0);
}

static void model_check(const bool *present)
{
	uint64_t count = 0;

	for (unsigned k = 0; k < MODEL_N; k++) {
		uint64_t idx = model_index(k);

		count += present[k];
		ck_assert_ptr_eq(pagemap_lookup(&pm, idx), present[k] ? item(idx) : NULL);
	}
	ck_assert_uint_eq(pm.count, count);
	/* no empty node stays: each node leads to an entry */
	ck_assert_uint_eq(pm.nodes == 0, count == 0);
	ck_assert_uint_le(pm.nodes, count * pm.height);
}

static uint64_t model_next(const bool *present, uint64_t from)
{
	uint64_t best = PAGEMAP_NONE;

	for (unsigned k = 0; k < MODEL_N; k++) {
		if (present[k] && model_index(k) >= from && model_index(k) < best)
			best = model_index(k);
	}
	return best;
}

START_TEST(test_model)
{
	bool present[MODEL_N] = { false };

	srand(12345);
	for (int step = 0; step < 20000; step++) {
		unsigned k = (unsigned)rand() % MODEL_N;
		uint64_t idx = model_index(k);

		if (rand() % 3 == 0) {
			ck_assert_ptr_eq(pagemap_remove(&pm, idx), present[k] ? item(idx) : NULL);
			present[k] = false;
		} else {
			ck_assert_int_eq(pagemap_insert(&pm, idx, item(idx)),
					 present[k] ? -EEXIST : 0);
			present[k] = true;
		}
		ck_assert_uint_eq(pagemap_next_present(&pm, idx), model_next(present, idx));
	}
	model_check(present);
}
END_TEST

START_TEST(test_model_ranges)
{
	bool present[MODEL_N];

	for (unsigned k = 0; k < MODEL_N; k++) {
		present[k] = k % 3 != 0;
		if (present[k])
			ck_assert_int_eq(pagemap_insert(&pm, model_index(k), item(model_index(k))),
					 0);
	}
	srand(777);
	for (int step = 0; step < 50; step++) {
		uint64_t a = model_index((unsigned)rand() % MODEL_N) + (uint64_t)(rand() % 3) - 1;
		uint64_t z = a + (uint64_t)rand() * 4099;
		uint64_t expect = 0;

		for (unsigned k = 0; k < MODEL_N; k++) {
			if (present[k] && model_index(k) >= a && model_index(k) <= z) {
				present[k] = false;
				expect++;
			}
		}
		ck_assert_uint_eq(pagemap_remove_range(&pm, a, z, NULL, NULL), expect);
		model_check(present);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pagemap");

	fx_unit_tcase(s, "pagemap", 60, setup, teardown,
		      FX_TESTS(test_empty, test_insert_lookup, test_sparse_large, test_height,
			       test_node_bytes, test_next_present, test_remove, test_remove_range,
			       test_remove_huge_range, test_destroy_frees_all, test_model,
			       test_model_ranges));
	return fx_run_suite(s);
}
