/* What the control side of events reports: commands on a missing path and malformed
 * requests fail without harm, and the counters and the event log follow the events. The
 * machinery is tests/lib/matrix.c's. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "matrix.h"

/* ---- row 11: errors; and the counters and the log ---- */

static int reads_original(void *arg)
{
	(void)arg;
	return mx_new_mapping_reads(mx_orig);
}

/* Fails with ENOENT and names the path in its message. */
#define EXPECT_MISSING(miss, ...)                                                       \
	do {                                                                            \
		MX_CTL_ERR(ENOENT, __VA_ARGS__);                                        \
		ck_assert_msg(strstr(mx_res.text, miss), "%s: no mention of %s in: %s", \
			      #__VA_ARGS__, miss, mx_res.text);                         \
	} while (0)

/* Commands on a missing path fail and name the path; the mount serves on. */
START_TEST(test_missing_path)
{
	char miss[96];

	snprintf(miss, sizeof(miss), "%s-missing", mx_rel);
	EXPECT_MISSING(miss, "inval", miss);
	EXPECT_MISSING(miss, "write", miss, "0", "x");
	EXPECT_MISSING(miss, "truncate", miss, "100");
	EXPECT_MISSING(miss, "punch", miss, "0", "100");
	EXPECT_MISSING(miss, "fail", miss, "--op", "read", "--errno", "EIO");
	EXPECT_MISSING(miss, "delay", miss, "--op", "read", "--ms", "10");
	EXPECT_MISSING(miss, "store", miss, "0", "x");
	EXPECT_MISSING(miss, "audit", miss);
	EXPECT_MISSING("no-such-dir", "inval", "no-such-dir/f");
	MX_CTL_OK("status");
	fx_run_child(reads_original, NULL);
}
END_TEST

/* Malformed requests are refused with EINVAL and a reason (sigbusctl refuses them before
 * sending: check_sigbusctl.sh); the mount serves on. */
START_TEST(test_malformed)
{
	MX_CTL_ERR(EINVAL, "no-such-command");
	MX_CTL_ERR(EINVAL, "inval");
	MX_CTL_ERR(EINVAL, "inval", mx_rel, "4096");
	MX_CTL_ERR(EINVAL, "truncate", mx_rel);
	MX_CTL_ERR(EINVAL, "truncate", mx_rel, "12Q");
	ck_assert_msg(strstr(mx_res.text, "'12Q'"), "no mention of 12Q in: %s", mx_res.text);
	MX_CTL_ERR(EINVAL, "write", mx_rel, "abc", "x");
	MX_CTL_ERR(EINVAL, "punch", mx_rel, "0");
	MX_CTL_ERR(EINVAL, "fail", mx_rel, "--op", "read");
	MX_CTL_ERR(EINVAL, "fail", mx_rel, "--op", "frob", "--errno", "EIO");
	MX_CTL_ERR(EINVAL, "fail", mx_rel, "--op", "read", "--errno", "ENOTANERRNO");
	MX_CTL_ERR(EINVAL, "delay", mx_rel, "--op", "read", "--ms", "abc");
	MX_CTL_ERR(ERANGE, "delay", mx_rel, "--op", "read", "--ms", "99999999999");
	ck_assert_msg(strstr(mx_res.text, "out of range"), "no range in: %s", mx_res.text);
	MX_CTL_OK("status");
	MX_CTL_OK("inval", mx_rel);
	fx_run_child(reads_original, NULL);
}
END_TEST

/* A PATH is normalised once, by the daemon: "." and ".." resolve against its directories,
 * never above the root; "" and a "/" after a file are refused. The same ino each time. */
START_TEST(test_paths)
{
	char dir[64], p[160];
	long long ino;

	snprintf(dir, sizeof(dir), "%.*s", (int)(strrchr(mx_rel, '/') - mx_rel), mx_rel);
	MX_CTL_OK("stats", mx_rel);
	ino = mx_val("ino");
	snprintf(p, sizeof(p), "%s/../%s", dir, mx_rel);
	MX_CTL_OK("stats", p);
	ck_assert_int_eq(mx_val("ino"), ino);
	snprintf(p, sizeof(p), "/.//%s/./%s", dir, strrchr(mx_rel, '/') + 1);
	MX_CTL_OK("stats", p);
	ck_assert_int_eq(mx_val("ino"), ino);
	MX_CTL_ERR(ENOENT, "stats", "");
	ck_assert_msg(strstr(mx_res.text, "PATH is empty"), "%s", mx_res.text);
	snprintf(p, sizeof(p), "%s/", mx_rel);
	MX_CTL_ERR(ENOTDIR, "stats", p);
	snprintf(p, sizeof(p), "%s/../x", mx_rel);
	MX_CTL_ERR(ENOTDIR, "inval", p);
	snprintf(p, sizeof(p), "../%s", mx_rel);
	MX_CTL_ERR(EINVAL, "stats", p);
	ck_assert_msg(strstr(mx_res.text, "climbs above the mount's root"), "%s", mx_res.text);
	snprintf(p, sizeof(p), "%s/../../%s", dir, mx_rel);
	MX_CTL_ERR(EINVAL, "truncate", p, "0");
	MX_CTL_OK("stats", "/");
	ck_assert_int_eq(mx_val("ino"), 1);
	fx_run_child(reads_original, NULL);
}
END_TEST

/* write --from: a device needs --len; a FILE inside the mount itself, named directly or
 * through a symlink outside it, is refused (the daemon never reads through its own
 * mount), and the mount serves on. */
START_TEST(test_write_from)
{
	char link[64];

	MX_CTL_ERR(EINVAL, "write", mx_rel, "0", "--from", "/dev/zero");
	ck_assert_msg(strstr(mx_res.text, "/dev/zero: not a regular file"), "%s", mx_res.text);
	MX_CTL_OK("write", mx_rel, "0", "--from", "/dev/zero", "--len", "100");
	ck_assert_int_eq(mx_val("bytes"), 100);
	MX_CTL_ERR(EXDEV, "write", mx_rel, "0", "--from", mx_path);
	ck_assert_msg(strstr(mx_res.text, "own mount"), "%s", mx_res.text);
	snprintf(link, sizeof(link), "/tmp/check_events_ctl-%d", (int)getpid());
	ck_assert_int_eq(symlink(mx_path, link), 0);
	MX_CTL_ERR(EXDEV, "write", mx_rel, "0", "--from", link);
	unlink(link);
	MX_CTL_OK("stats", mx_rel);
	ck_assert_int_eq(mx_val("size"), MX_FSIZE);
}
END_TEST

/* A write --pattern that cannot fit fails with ENOSPC before the daemon makes its bytes,
 * and the file stays as it was. The mount is mem:64M. */
START_TEST(test_pattern_enospc)
{
	MX_CTL_ERR(ENOSPC, "write", mx_rel, "0", "--pattern", "x", "--len", "1T");
	ck_assert_msg(strstr(mx_res.text, "cannot fit"), "%s", mx_res.text);
	/* past the mount's own limit: only a backend with one (mem:64M) refuses 65M */
	if (fx_test_has_limit()) {
		MX_CTL_ERR(ENOSPC, "write", mx_rel, "4K", "--pattern", "0xff", "--len", "65M");
		ck_assert_msg(strstr(mx_res.text, "bytes free"), "%s", mx_res.text);
	}
	MX_CTL_OK("write", mx_rel, "0", "--pattern", "0x41", "--len", "4K");
	fx_run_child(reads_original, NULL);
}
END_TEST

/* counter key of `stats` (path NULL) or `stats PATH` */
static long long counter(const char *path, const char *key)
{
	if (path)
		MX_CTL_OK("stats", path);
	else
		MX_CTL_OK("stats");
	ck_assert_msg(mx_val(key) >= 0, "no %s in the reply to stats %s", key, path ? path : "");
	return mx_val(key);
}

/* field (requests, errors) of operation op in the op records of the last stats, 0 if
 * it has none yet */
static long long op_count(const char *op, const char *field)
{
	char want[64];
	const char *v, *f;

	snprintf(want, sizeof(want), "name=%s ", op);
	for (size_t i = 0; i < mx_res.nkv; i++) {
		v = mx_res.kv[i].value;
		if (strcmp(mx_res.kv[i].key, "op") || strncmp(v, want, strlen(want)))
			continue;
		f = strstr(v, field);
		ck_assert_msg(f && f[strlen(field)] == '=', "no %s in op record %s", field, v);
		return strtoll(f + strlen(field) + 1, NULL, 10);
	}
	return 0;
}

static int stat_missing(void *arg)
{
	struct stat st;

	return stat(arg, &st) < 0 && errno == ENOENT ? 0 : FX_FAIL("stat %s", (char *)arg);
}

/* Requests and error replies per FUSE operation, and notifications by kind. */
START_TEST(test_stats_per_op)
{
	char miss[PATH_MAX + 16];
	long long lookups, lookup_errs, reads, notes;

	snprintf(miss, sizeof(miss), "%s-missing", mx_path);
	MX_CTL_OK("stats");
	lookups = op_count("lookup", "requests");
	lookup_errs = op_count("lookup", "errors");
	reads = op_count("read", "requests");
	notes = mx_val("notify_inval_inode");
	ck_assert_int_eq(mx_val("notifications"),
			 notes + mx_val("notify_inval_entry") + mx_val("notify_store") +
				 mx_val("notify_retrieve") + mx_val("notify_inc_epoch"));
	fx_run_child(stat_missing, miss);
	MX_CTL_OK("inval", mx_rel);
	fx_run_child(reads_original, NULL);
	MX_CTL_OK("stats");
	ck_assert_int_gt(op_count("lookup", "requests"), lookups);
	ck_assert_int_gt(op_count("lookup", "errors"), lookup_errs);
	ck_assert_int_gt(op_count("read", "requests"), reads);
	ck_assert_int_eq(op_count("read", "errors"), 0);
	ck_assert_int_gt(mx_val("notify_inval_inode"), notes);
}
END_TEST

START_TEST(test_stats)
{
	const char *paths[2] = { NULL, mx_rel }, *keys[2] = { "reads", "invals" };
	long long before[2][2], now;

	for (int i = 0; i < 4; i++)
		before[i / 2][i % 2] = counter(paths[i / 2], keys[i % 2]);
	MX_CTL_OK("inval", mx_rel);
	fx_run_child(reads_original, NULL);
	for (int i = 0; i < 4; i++) {
		now = counter(paths[i / 2], keys[i % 2]);
		ck_assert_msg(now > before[i / 2][i % 2], "stats %s: %s %lld -> %lld",
			      i / 2 ? mx_rel : "", keys[i % 2], before[i / 2][i % 2], now);
	}
}
END_TEST

/* The seq of the event line of cmd on the test file in the `log` reply, -1 if none. */
static long long log_seq(const char *cmd)
{
	char want[160];

	snprintf(want, sizeof(want), "cmd=%s target=%s ", cmd, mx_rel);
	for (size_t i = 0; i < mx_res.nkv; i++) {
		const char *v = mx_res.kv[i].value;

		if (!strcmp(mx_res.kv[i].key, "event") && strstr(v, want) && !strncmp(v, "seq=", 4))
			return strtoll(v + 4, NULL, 10);
	}
	return -1;
}

START_TEST(test_log)
{
	const char *cmds[] = { "inval", "punch", "write" };
	long long seq[3];

	MX_CTL_OK("inval", mx_rel);
	seq[0] = mx_val("seq");
	MX_CTL_OK("punch", mx_rel, "0", "10");
	seq[1] = mx_val("seq");
	MX_CTL_OK("write", mx_rel, "0", "x");
	seq[2] = mx_val("seq");
	ck_assert_msg(seq[0] >= 1 && seq[1] > seq[0] && seq[2] > seq[1], "seq %lld, %lld, %lld",
		      seq[0], seq[1], seq[2]);
	MX_CTL_OK("log");
	for (int i = 0; i < 3; i++)
		ck_assert_msg(log_seq(cmds[i]) == seq[i], "no %s with seq %lld in the log", cmds[i],
			      seq[i]);
}
END_TEST

/* audit lists every stale range, in bytes, however many: 40 stale pages apart, then two
 * neighbours, which make one range. */
START_TEST(test_audit_complete)
{
	char path[PATH_MAX + 8], rel[96], off[32], buf[MX_PG];
	int fd;

	snprintf(path, sizeof(path), "%s.big", mx_path);
	snprintf(rel, sizeof(rel), "%s.big", mx_rel);
	fd = open(path, O_RDWR | O_CREAT, 0644);
	ck_assert_int_ge(fd, 0);
	memset(buf, 'a', sizeof(buf));
	for (int i = 0; i < 80; i++)
		ck_assert_int_eq(pwrite(fd, buf, sizeof(buf), (off_t)i * MX_PG), MX_PG);
	for (int i = 0; i < 80; i++) /* every page cached */
		ck_assert_int_eq(pread(fd, buf, sizeof(buf), (off_t)i * MX_PG), MX_PG);
	for (int i = 0; i < 80; i += 2) {
		snprintf(off, sizeof(off), "%d", i * MX_PG);
		MX_CTL_OK("write", rel, off, "b", "--no-notify");
	}
	MX_CTL_OK("audit", rel);
	ck_assert_int_eq(mx_val("cached_bytes"), 80 * MX_PG);
	ck_assert_int_eq(mx_val("stale_bytes"), 40 * MX_PG);
	ck_assert_msg(mx_record_has("stale", "off=0 len=4096") &&
			      mx_record_has("stale", "off=319488 len=4096"),
		      "first or last range missing: %s", ctl_result_get(&mx_res, "stale"));
	MX_CTL_OK("write", rel, "4096", "b", "--no-notify");
	MX_CTL_OK("audit", rel);
	ck_assert_msg(mx_record_has("stale", "off=0 len=12288"), "pages 0-2 not one range");
	close(fd);
}
END_TEST

int main(void)
{
	const struct mx_tcase tcs[] = {
		{ "errors", { test_missing_path, test_malformed, test_paths } },
		{ "stats_log", { test_stats, test_log, test_write_from } },
		{ "audit", { test_audit_complete, test_pattern_enospc } },
		{ "stats_per_op", { test_stats_per_op } },
	};

	return mx_run("events_ctl", tcs, sizeof(tcs) / sizeof(tcs[0]));
}
