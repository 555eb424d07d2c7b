/* Unit tests of the one number parser (fs/common/units.c) that the control protocol,
 * sigbusctl, the daemon's SOURCE and the contrib tools share. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "units.h"
#include "suite.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

START_TEST(test_u64)
{
	const char *const bad[] = { "", "-1", "+1", " 1", "1 ", "8K", "0x10", "1.0" };
	uint64_t v = 99;

	ck_assert_int_eq(units_parse_u64("0", &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(units_parse_u64("007", &v), 0);
	ck_assert_uint_eq(v, 7);
	ck_assert_int_eq(units_parse_u64("18446744073709551615", &v), 0);
	ck_assert_uint_eq(v, UINT64_MAX);
	for (size_t i = 0; i < N_OF(bad); i++) {
		v = 99;
		ck_assert_msg(units_parse_u64(bad[i], &v) == -EINVAL, "'%s' accepted", bad[i]);
		ck_assert_msg(v == 99, "'%s' changed the result", bad[i]);
	}
	ck_assert_int_eq(units_parse_u64("18446744073709551616", &v), -ERANGE);
	ck_assert_int_eq(units_parse_u64("99999999999999999999999", &v), -ERANGE);
}
END_TEST

START_TEST(test_size_suffixes)
{
	static const struct {
		const char *s;
		uint64_t v;
	} good[] = {
		{ "0", 0 },
		{ "512", 512 },
		{ "8K", 8192 },
		{ "8k", 8192 },
		{ "2M", UINT64_C(2) << 20 },
		{ "512m", UINT64_C(512) << 20 },
		{ "2g", UINT64_C(2) << 30 },
		{ "3T", UINT64_C(3) << 40 },
		{ "16777215T", UINT64_C(16777215) << 40 },
		{ "18446744073709551615", UINT64_MAX },
	};
	uint64_t v;

	for (size_t i = 0; i < N_OF(good); i++) {
		ck_assert_msg(units_parse_size(good[i].s, &v) == 0, "'%s' refused", good[i].s);
		ck_assert_msg(v == good[i].v, "'%s' read as %llu", good[i].s,
			      (unsigned long long)v);
	}
}
END_TEST

START_TEST(test_size_rejects)
{
	const char *const bad[] = { "",	   "K",	  "-1",	 "+1",	 " 1",	 "1 ",
				    "12X", "1KB", "1KK", "1.5G", "0x10", "16E" };
	const char *const big[] = { "18446744073709551616", "99999999999999999999999K", "16777216T",
				    "17179869184G" };
	uint64_t v = 99;

	for (size_t i = 0; i < N_OF(bad); i++)
		ck_assert_msg(units_parse_size(bad[i], &v) == -EINVAL, "'%s' accepted", bad[i]);
	for (size_t i = 0; i < N_OF(big); i++)
		ck_assert_msg(units_parse_size(big[i], &v) == -ERANGE, "'%s' accepted", big[i]);
	ck_assert_uint_eq(v, 99);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("units");

	fx_unit_tcase(s, "parse", 0, NULL, NULL,
		      FX_TESTS(test_u64, test_size_suffixes, test_size_rejects));
	return fx_run_suite(s);
}
