/* Unit tests of SOURCE parsing (fs/source.c): the split at the scheme, the registry
 * lookup, and each form a backend can declare (backend.h, bk_source_form). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "source.h"
#include "suite.h"

static struct source src;
static char err[512];

START_TEST(test_size_form)
{
	ck_assert_int_eq(source_parse("mem:", &src, err, sizeof(err)), 0);
	ck_assert_ptr_eq(src.ops, &bk_mem_ops);
	ck_assert_str_eq(src.bk.arg, "");
	ck_assert(!src.bk.has_size);
	ck_assert_int_eq(source_parse("mem:512M", &src, err, sizeof(err)), 0);
	ck_assert_str_eq(src.bk.arg, "512M");
	ck_assert(src.bk.has_size);
	ck_assert_uint_eq(src.bk.size, UINT64_C(512) << 20);
	ck_assert_int_eq(source_parse("mem:0", &src, err, sizeof(err)), 0);
	ck_assert(src.bk.has_size);
	ck_assert_uint_eq(src.bk.size, 0);
}
END_TEST

START_TEST(test_bad_size)
{
	ck_assert_int_eq(source_parse("mem:12Q", &src, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "mem: size '12Q': not a number (expected digits and an optional "
			      "K, M, G or T suffix)");
	ck_assert_int_eq(source_parse("mem:1:2", &src, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "mem: size '1:2': not a number (expected digits and an optional "
			      "K, M, G or T suffix)");
	ck_assert_int_eq(source_parse("mem:99999999999999999999", &src, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "mem: size '99999999999999999999': too large");
}
END_TEST

START_TEST(test_unknown_scheme)
{
	const char *const bad[] = { "foo", "nosuch:x", ":16M", "", "MEM:", "me:" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[128];

		ck_assert_msg(source_parse(bad[i], &src, err, sizeof(err)) == -EINVAL,
			      "'%s' accepted", bad[i]);
		snprintf(want, sizeof(want), "unknown source '%s': expected %s", bad[i],
			 bk_sources());
		ck_assert_str_eq(err, want);
		ck_assert_ptr_null(src.ops);
	}
}
END_TEST

/* A backend that takes a path, as sqlite:PATH does. */
static const struct bk_ops path_ops = {
	.version = BK_OPS_VERSION,
	.name = "db",
	.source_form = BK_SOURCE_PATH,
};

START_TEST(test_path_form)
{
	struct bk_source bk;

	ck_assert_int_eq(source_parse_arg(&path_ops, "/var/tmp/x.db", &bk, err, sizeof(err)), 0);
	ck_assert_str_eq(bk.arg, "/var/tmp/x.db");
	ck_assert(!bk.has_size);
	ck_assert_int_eq(source_parse_arg(&path_ops, "rel:12K", &bk, err, sizeof(err)), 0);
	ck_assert_str_eq(bk.arg, "rel:12K");
	ck_assert(!bk.has_size);
	ck_assert_int_eq(source_parse_arg(&path_ops, "", &bk, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "db: PATH: missing (expected db:PATH)");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("source");

	fx_unit_tcase(s, "parse", 0, NULL, NULL,
		      FX_TESTS(test_size_form, test_bad_size, test_unknown_scheme, test_path_form));
	return fx_run_suite(s);
}
