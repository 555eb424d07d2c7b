/* Integration test: the fsx exerciser (fsx.c) against a real sigbusfs mount: 20000 ops with
 * the default cache=strict, 4 processes on 4 files at once (5000 ops each), and 20000 ops
 * with cache=auto. FSX_DIR=<dir> runs the same variants in any directory without mounting;
 * FSX_SEED and FSX_OPS replay a run (the 4 processes use seeds SEED+0..3, FSX_OPS/4 ops). */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "fsx.h"

#define NPROCS 4

/* Check's fixtures take no argument, so the mount of the running TCase lives here. They
 * are unchecked fixtures: they run in the runner process, so a test that fails in its
 * forked child still leaves the unmount to the teardown. */
static struct mnt mnt;
static bool is_mounted;
static char dir[PATH_MAX];
static const char *variant; /* the TCase's name: "strict" or "auto" */

static void mount_with(const char *name, const char *opts)
{
	const char *env = getenv("FSX_DIR");
	int rc;

	variant = name;
	if (env && *env) {
		fprintf(stderr, "fsx[%s]: FSX_DIR=%s: no mount, the cache option does not apply\n",
			name, env);
		snprintf(dir, sizeof(dir), "%s", env);
		return;
	}
	rc = fx_mount(&mnt, "mem:256M", opts);
	ck_assert_int_eq(rc, 0);
	is_mounted = true;
	snprintf(dir, sizeof(dir), "%s", mnt.dir);
}

static void setup_strict(void)
{
	mount_with("strict", NULL);
}

static void setup_auto(void)
{
	mount_with("auto", "cache=auto");
}

static void teardown(void)
{
	int rc;

	if (!is_mounted)
		return;
	is_mounted = false;
	rc = fx_umount(&mnt);
	ck_assert_msg(rc == 0, "the daemon exited with status %d", rc);
}

/* The options every run starts from: the defaults, then FSX_SEED and FSX_OPS. */
static void base_opts(struct fsx_opts *o, char *path, size_t size, const char *file,
		      const char *name)
{
	int n = snprintf(path, size, "%s/%s", dir, file);

	ck_assert_msg(n > 0 && (size_t)n < size, "path too long: %s/%s", dir, file);
	fsx_opts_init(o, path, name);
	ck_assert_int_eq(fsx_opts_env(o), 0);
}

/* A long run must have drawn every kind of op, or the test proves less than it claims.
 * sigbusfs must support every fallocate mode; another directory (FSX_DIR) may lack some. */
static void assert_coverage(const struct fsx_opts *o, const struct fsx_stats *st)
{
	for (int op = 0; op < FSX_OP_COUNT; op++)
		ck_assert_msg(!is_mounted || !(st->skipped & (1u << op)),
			      "sigbusfs does not support the fallocate mode of %s ops",
			      fsx_op_name(op));
	if (o->nops < 10000)
		return;
	for (int op = 0; op < FSX_OP_COUNT; op++)
		ck_assert_msg(st->count[op] > 0 || (st->skipped & (1u << op)), "no %s op ran",
			      fsx_op_name(op));
	ck_assert_int_gt(st->msyncs, 0);
	ck_assert_int_gt(st->sigbus, 0);
	ck_assert_int_gt(st->far_checks, 0);
}

START_TEST(test_single)
{
	char path[PATH_MAX];
	struct fsx_stats st;
	struct fsx_opts o;
	int rc;

	base_opts(&o, path, sizeof(path), "fsx.single", variant);
	rc = fsx_run(&o, &st);
	ck_assert_msg(rc == 0,
		      "fsx[%s] failed with %d (%s): see the report above; replay with its "
		      "FSX_SEED and FSX_OPS and CK_RUN_CASE=%s",
		      variant, rc, strerror(-rc), variant);
	assert_coverage(&o, &st);
	unlink(path);
}
END_TEST

/* In a child: runs one exerciser with its output in a temporary file, so that the parent
 * can print the four reports one after the other. Exits 0 when it passed. */
static void run_child(struct fsx_opts *o, FILE *out)
{
	struct fsx_stats st;
	int rc;

	o->out = out;
	rc = fsx_run(o, &st);
	fflush(out);
	if (rc == 0)
		unlink(o->path);
	_exit(rc == 0 ? 0 : 1);
}

static void print_and_close(FILE *f)
{
	char line[512];

	rewind(f);
	while (fgets(line, sizeof(line), f))
		fputs(line, stderr);
	fclose(f);
}

START_TEST(test_concurrent)
{
	char path[NPROCS][PATH_MAX], file[32];
	struct fsx_opts o[NPROCS];
	FILE *out[NPROCS];
	pid_t pid[NPROCS];
	int status[NPROCS];

	for (int i = 0; i < NPROCS; i++) {
		snprintf(file, sizeof(file), "fsx.proc%d", i);
		base_opts(&o[i], path[i], sizeof(path[i]), file, variant);
		/* one seed for the group, so that FSX_SEED replays all four */
		o[i].seed = o[0].seed + (uint64_t)i;
		o[i].nops = o[i].nops / NPROCS > 0 ? o[i].nops / NPROCS : 1;
		out[i] = tmpfile();
		ck_assert_ptr_nonnull(out[i]);
		fprintf(stderr, "fsx[%s]: process %d on %s: seed 0x%" PRIx64 ", %ld ops\n", variant,
			i, path[i], o[i].seed, o[i].nops);
	}
	fflush(stderr);
	for (int i = 0; i < NPROCS; i++) {
		pid[i] = fork();
		ck_assert_int_ge(pid[i], 0);
		if (pid[i] == 0)
			run_child(&o[i], out[i]);
	}
	for (int i = 0; i < NPROCS; i++) {
		ck_assert_int_eq(waitpid(pid[i], &status[i], 0), pid[i]);
		print_and_close(out[i]);
	}
	for (int i = 0; i < NPROCS; i++)
		ck_assert_msg(WIFEXITED(status[i]) && WEXITSTATUS(status[i]) == 0,
			      "fsx process %d (seed 0x%" PRIx64 ") failed (wait status 0x%x): "
			      "see its report above",
			      i, o[i].seed, (unsigned)status[i]);
}
END_TEST

static TCase *variant_tcase(const char *name, void (*setup)(void), bool has_concurrent)
{
	TCase *tc = tcase_create(name);

	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_single);
	if (has_concurrent)
		tcase_add_test(tc, test_concurrent);
	return tc;
}

int main(void)
{
	Suite *s = suite_create("fsx");
	SRunner *sr;
	int nfailed;

	if (!getenv("FSX_DIR"))
		fx_require_fuse();
	suite_add_tcase(s, variant_tcase("strict", setup_strict, true));
	suite_add_tcase(s, variant_tcase("auto", setup_auto, false));
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	nfailed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nfailed ? EXIT_FAILURE : EXIT_SUCCESS;
}
