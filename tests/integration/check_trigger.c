/* Triggers: an event fired at the Nth matching request of a client process. The request
 * that fires an unplug or a power cut fails as unplugged, and so does every later one (a
 * revoke or a power cut of one file: every request to that file);
 * the writes before it reach the backend. A trigger that arms a fault rule makes the
 * rule apply from the firing request on. The same program run twice with the same
 * trigger meets the event at the same request. rules shows what is left of N; the log
 * names the request that fired the event; commands a trigger cannot run are refused. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "client.h"
#include "ctlreq.h"
#include "fixture.h"

#define WRITES 8 /* writes of the test program, one byte each at offsets 0..7 */

static struct mnt mnt;

#define P(rel)		       fx_work_path(rel)
#define R(rel)		       fx_work_rel(rel)
#define CTL_OK(res, ...)       fx_ctl_ok(&mnt, (res), __VA_ARGS__, (char *)NULL)
#define CTL_ERR(res, err, ...) fx_ctl_err(&mnt, (res), (err), __VA_ARGS__, (char *)NULL)

static void setup(void)
{
	fx_mount_or_fail(&mnt, "mem:64M", "powercut");
}

static void teardown(void)
{
	fx_teardown(&mnt);
}

/* The test program: fsyncs the file empty, then writes byte i ('a' + i) at offset i, for
 * i < WRITES, with an fsync after the second. Records in *first_failed the index of the
 * first write that failed (WRITES if none) and its errno in *err. */
struct run {
	int first_failed;
	int err;
};

static int program(void *arg)
{
	struct run *r = arg;
	int fd = open(P("f"), O_WRONLY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) < 0)
		return FX_FAIL("open, fsync f: %s", strerror(errno));
	r->first_failed = WRITES;
	for (int i = 0; i < WRITES; i++) {
		char c = (char)('a' + i);

		if (pwrite(fd, &c, 1, i) != 1 && r->first_failed == WRITES) {
			r->first_failed = i;
			r->err = errno;
		}
		if (i == 1 && r->first_failed == WRITES && fsync(fd) < 0)
			return FX_FAIL("fsync: %s", strerror(errno));
	}
	close(fd);
	return 0;
}

/* program() in a child process; its result in shared memory. */
static struct run run_program(void)
{
	static struct run *shared;

	if (!shared) {
		shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE,
			      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		ck_assert(shared != MAP_FAILED);
	}
	*shared = (struct run){ -1, 0 };
	fx_run_child(program, shared);
	return *shared;
}

static void make_empty(const char *path)
{
	fx_create_file(path, "");
}

START_TEST(test_unplug_at_nth_write)
{
	struct ctl_result res = { 0 };
	struct run r;

	make_empty(P("f"));
	CTL_OK(&res, "on", "write", R("f"), "--after", "3", "do", "unplug");
	ck_assert_int_ge(fx_ctl_num(&res, "id"), 1);
	r = run_program();
	ck_assert_int_eq(r.first_failed, 2); /* the third write met the unplug */
	ck_assert_int_eq(r.err, EIO);
	CTL_OK(&res, "replug"); /* after the unplug the trigger fired, which it waits for */
	CTL_OK(&res, "log");
	ck_assert_msg(fx_log_has(&res, "cmd=unplug", "after=3 op=write"),
		      "the log does not name the request that fired the unplug");
	ck_assert_int_eq(fx_lstat(P("f")).st_size, 2);
	ck_assert_str_eq(fx_slurp(P("f")), "ab");
	ctl_result_free(&res);
}
END_TEST

/* A power cut at the 5th write: what the program fsynced survives, the rest is lost, and
 * a second run meets the cut at the same write with the same outcome. */
START_TEST(test_powercut_is_repeatable)
{
	struct ctl_result res = { 0 };

	for (int round = 0; round < 2; round++) {
		struct run r;

		make_empty(P("f"));
		CTL_OK(&res, "on", "write", R("f"), "--after", "5", "do", "powercut");
		r = run_program();
		ck_assert_int_eq(r.first_failed, 4);
		CTL_OK(&res, "replug");
		ck_assert_int_eq(fx_lstat(P("f")).st_size, 2);
		ck_assert_str_eq(fx_slurp(P("f")), "ab"); /* synced after the second write */
	}
	ctl_result_free(&res);
}
END_TEST

/* A trigger on fsync that arms a fail rule on writes: the writes after the fsync fail. */
START_TEST(test_trigger_arms_rule)
{
	struct ctl_result res = { 0 };
	struct run r;

	make_empty(P("f"));
	CTL_OK(&res, "on", "fsync", R("f"), "--after", "2", "do", "fail", R("f"), "--op", "write",
	       "--errno", "ENOSPC");
	CTL_OK(&res, "rules");
	ck_assert_uint_eq(res.nkv, 2); /* the trigger, and the rule waiting for it */
	r = run_program();	       /* its 2nd fsync is the one after the 2nd write */
	ck_assert_int_eq(r.first_failed, 2);
	ck_assert_int_eq(r.err, ENOSPC);
	CTL_OK(&res, "clear");
	ctl_result_free(&res);
}
END_TEST

START_TEST(test_rules_show_what_is_left)
{
	struct ctl_result res = { 0 };
	const char *line;
	int fd;

	make_empty(P("f"));
	CTL_OK(&res, "on", "write", R("f"), "--after", "5", "do", "unplug");
	fd = open(P("f"), O_WRONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, "x", 1, 0), 1);
	ck_assert_int_eq(pwrite(fd, "x", 1, 1), 1);
	close(fd);
	CTL_OK(&res, "rules");
	ck_assert_uint_eq(res.nkv, 1);
	line = res.kv[0].value;
	ck_assert_msg(strstr(line, "after=3") && strstr(line, "do unplug"), "rules: %s", line);
	CTL_OK(&res, "clear");
	ctl_result_free(&res);
}
END_TEST

/* A mapping of g, read through while the program writes f, until the trigger revokes g:
 * then the same page raises SIGBUS, open fails with the errno given, and the firing write
 * itself is answered as after the revoke when it is to g. */
static int map_then_expect_sigbus(void *arg)
{
	const char *want = arg;
	int fd = open(P("g"), O_RDONLY | O_CLOEXEC);
	char *p = fd < 0 ? MAP_FAILED : mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	struct run r;
	int rc;

	if (p == MAP_FAILED)
		return FX_FAIL("open, mmap g: %s", strerror(errno));
	rc = fx_expect_bytes("g before the trigger", p, 0, want, strlen(want));
	if (rc == 0)
		r = run_program();
	if (rc == 0 && r.first_failed != WRITES)
		rc = FX_FAIL("the writes to f failed from %d: %s", r.first_failed, strerror(r.err));
	if (rc == 0)
		rc = fx_expect_sigbus("g after the trigger", p, 0, false);
	if (rc == 0)
		rc = fx_expect_err(open(P("g"), O_RDONLY | O_CLOEXEC), ENODEV, "open g");
	munmap(p, 4096);
	close(fd);
	return rc;
}

START_TEST(test_revoke_at_nth_write)
{
	struct ctl_result res = { 0 };
	struct run r;

	make_empty(P("f"));
	fx_create_file(P("g"), "ggg");
	CTL_OK(&res, "on", "write", R("f"), "--after", "3", "do", "revoke", R("f"));
	r = run_program();
	ck_assert_int_eq(r.first_failed, 2); /* the third write met the revoke */
	ck_assert_int_eq(r.err, EIO);
	ck_assert_int_eq(fx_expect_err(open(P("f"), O_RDONLY | O_CLOEXEC), EIO, "open f"), 0);
	CTL_OK(&res, "log");
	ck_assert_msg(fx_log_has(&res, "cmd=revoke", "after=3 op=write"),
		      "the log does not name the request that fired the revoke");
	/* another file's revoke leaves the firing request alone */
	CTL_OK(&res, "replug");
	make_empty(P("f"));
	CTL_OK(&res, "on", "write", R("f"), "--after", "5", "do", "revoke", R("g"), "--errno",
	       "ENODEV");
	fx_run_child(map_then_expect_sigbus, "ggg");
	CTL_OK(&res, "replug");
	ck_assert_str_eq(fx_slurp(P("f")), "abcdefgh");
	ck_assert_str_eq(fx_slurp(P("g")), "ggg");
	ctl_result_free(&res);
}
END_TEST

/* powercut PATH as an action: f loses what was written after its last fsync; the firing
 * write and every later one to f fail, another file is untouched. */
START_TEST(test_powercut_of_a_file_at_nth_write)
{
	struct ctl_result res = { 0 };
	struct run r;

	make_empty(P("f"));
	fx_create_file(P("g"), "ggg");
	CTL_OK(&res, "on", "write", R("f"), "--after", "5", "do", "powercut", R("f"));
	r = run_program();
	ck_assert_int_eq(r.first_failed, 4);
	ck_assert_int_eq(r.err, EIO);
	ck_assert_str_eq(fx_slurp(P("g")), "ggg"); /* the mount is not unplugged */
	CTL_OK(&res, "replug");
	ck_assert_str_eq(fx_slurp(P("f")), "ab"); /* fsynced after the second write */
	CTL_OK(&res, "log");
	ck_assert_msg(fx_log_has(&res, "cmd=powercut", "after=5 op=write"),
		      "the log does not name the request that fired the power cut");
	ctl_result_free(&res);
}
END_TEST

START_TEST(test_refused_actions)
{
	struct ctl_result res = { 0 };

	make_empty(P("f"));
	CTL_ERR(&res, EOPNOTSUPP, "on", "write", R("f"), "do", "truncate", R("f"), "0");
	ck_assert_ptr_nonnull(strstr(res.text, "truncate"));
	CTL_ERR(&res, ENOENT, "on", "write", R("f"), "do", "revoke", R("nosuch"));
	CTL_ERR(&res, EINVAL, "on", "write", R("f"), "do", "revoke", "/");
	CTL_ERR(&res, ENOENT, "on", "write", R("nosuch"), "do", "unplug");
	CTL_OK(&res, "rules");
	ck_assert_uint_eq(res.nkv, 0);
	ctl_result_free(&res);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("trigger");
	TCase *tc;

	fx_require_fuse();
	tc = fx_tcase(s, "trigger", 120, setup, teardown, fx_enter_workdir);
	FX_ADD_TESTS(tc, test_unplug_at_nth_write, test_powercut_is_repeatable,
		     test_trigger_arms_rule, test_rules_show_what_is_left, test_refused_actions,
		     test_revoke_at_nth_write, test_powercut_of_a_file_at_nth_write);
	return fx_run_suite(s);
}
