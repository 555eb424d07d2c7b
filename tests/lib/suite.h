/* The Check scaffolding every test binary shares, unit and integration: building TCases
 * from lists of tests, running a suite as main() does, counting the failures that
 * unchecked teardowns report; and the clock that tests measure waits with. */
#ifndef SIGBUSFS_TEST_SUITE_H
#define SIGBUSFS_TEST_SUITE_H

#include <check.h>

/* A TCase named name with a timeout in seconds, added to s. setup/teardown become its
 * unchecked fixture (run once around its tests: a mount per TCase) and each_test its
 * checked fixture (run before every test); either pair may be NULL. */
TCase *fx_tcase(Suite *s, const char *name, int timeout, void (*setup)(void),
		void (*teardown)(void), void (*each_test)(void));

/* A TCase for unit tests, added to s: the checked fixture setup/teardown (either may be
 * NULL) around each test of the NULL-terminated array, timeout seconds per test (0:
 * Check's default, 4 s). Returns it, for more tests. */
TCase *fx_unit_tcase(Suite *s, const char *name, int timeout, void (*setup)(void),
		     void (*teardown)(void), const TTest *const *tests);

/* Adds the tests of a NULL-terminated array to tc, in order; FX_TESTS(a, b, ...) builds
 * the array, FX_ADD_TESTS(tc, a, b, ...) adds them. */
void fx_add_tests(TCase *tc, const TTest *const *tests);
#define FX_TESTS(...)	      ((const TTest *const[]){ __VA_ARGS__, NULL })
#define FX_ADD_TESTS(tc, ...) fx_add_tests((tc), FX_TESTS(__VA_ARGS__))

/* Reports a failure that a fixture's teardown found: prints the message and a newline to
 * stderr and makes fx_run_suite() return 1. Call it in the runner process, where unchecked
 * fixtures run. */
void fx_teardown_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs every test of s (srunner_run_all() with CK_ENV: CK_FORK, CK_RUN_CASE ... apply) and
 * frees it. Returns main()'s exit code: 0 if no test failed and no teardown reported a
 * failure, else 1. */
int fx_run_suite(Suite *s);

/* CLOCK_MONOTONIC in milliseconds, for tests that bound how long something took. */
double fx_now_ms(void);

#endif
