/* See suite.h. The count of teardown failures lives in the runner process, where Check
 * runs unchecked fixtures. */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "suite.h"

static int teardown_failures;

TCase *fx_tcase(Suite *s, const char *name, int timeout, void (*setup)(void),
		void (*teardown)(void), void (*each_test)(void))
{
	TCase *tc = tcase_create(name);

	if (setup || teardown)
		tcase_add_unchecked_fixture(tc, setup, teardown);
	if (each_test)
		tcase_add_checked_fixture(tc, each_test, NULL);
	tcase_set_timeout(tc, timeout);
	suite_add_tcase(s, tc);
	return tc;
}

TCase *fx_unit_tcase(Suite *s, const char *name, int timeout, void (*setup)(void),
		     void (*teardown)(void), const TTest *const *tests)
{
	TCase *tc = tcase_create(name);

	if (setup || teardown)
		tcase_add_checked_fixture(tc, setup, teardown);
	if (timeout)
		tcase_set_timeout(tc, timeout);
	fx_add_tests(tc, tests);
	suite_add_tcase(s, tc);
	return tc;
}

void fx_add_tests(TCase *tc, const TTest *const *tests)
{
	for (size_t i = 0; tests[i]; i++)
		tcase_add_test(tc, tests[i]);
}

void fx_teardown_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	teardown_failures++;
}

int fx_run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 && teardown_failures == 0 ? 0 : 1;
}

double fx_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}
