/* Unit tests of the control protocol's wire format (fs/ctl_proto.c, ctl_wire.c,
 * ctl_client.c): every command's valid forms, the rejection of malformed ones, numbers,
 * quoting round trips, errno names, and reading replies. The server is check_ctl.c's. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctl_client.h"
#include "suite.h"

static struct ctl_req req;
static char err[1024];

static int parse(const char *line)
{
	ctl_req_free(&req);
	return ctl_parse(line, strlen(line), &req, err, sizeof(err));
}

static void parse_ok(const char *line)
{
	int rc = parse(line);

	ck_assert_msg(rc == 0, "'%s' failed: %s", line, err);
}

static void teardown(void)
{
	ctl_req_free(&req);
}

START_TEST(test_status_stats_log)
{
	parse_ok("status");
	ck_assert_int_eq(req.cmd, CTL_STATUS);
	ck_assert_ptr_null(req.path);
	parse_ok("stats");
	ck_assert_int_eq(req.cmd, CTL_STATS);
	ck_assert_ptr_null(req.path);
	parse_ok("stats /a//b/./c/");
	ck_assert_str_eq(req.path, "/a//b/./c/");
	parse_ok("log");
	ck_assert(!req.follow && !req.has_since);
	parse_ok("log --since 41 --follow");
	ck_assert(req.follow && req.has_since);
	ck_assert_uint_eq(req.since, 41);
	parse_ok("\tlog  --follow \r\n");
	ck_assert(req.follow);
}
END_TEST

START_TEST(test_inval_truncate_punch)
{
	parse_ok("inval f");
	ck_assert(!req.has_range);
	ck_assert_str_eq(req.path, "f");
	parse_ok("inval dir/f 4K 8K");
	ck_assert(req.has_range);
	ck_assert_uint_eq(req.off, 4096);
	ck_assert_uint_eq(req.len, 8192);
	parse_ok("truncate f 0");
	ck_assert_int_eq(req.cmd, CTL_TRUNCATE);
	ck_assert_uint_eq(req.size, 0);
	parse_ok("truncate f 1G");
	ck_assert_uint_eq(req.size, 1ull << 30);
	parse_ok("truncate f 9223372036854775807");
	ck_assert_uint_eq(req.size, INT64_MAX);
	parse_ok("punch f 2M 1");
	ck_assert(req.has_range);
	ck_assert_uint_eq(req.off, 2u << 20);
	ck_assert_uint_eq(req.len, 1);
}
END_TEST

START_TEST(test_write)
{
	parse_ok("write f 0 hello");
	ck_assert_int_eq(req.src, CTL_SRC_DATA);
	ck_assert_uint_eq(req.data_len, 5);
	ck_assert_uint_eq(req.len, 5);
	ck_assert_mem_eq(req.data, "hello", 5);
	ck_assert(!req.no_notify);
	parse_ok("write --no-notify f 1M \"a b\\n\\x01\"");
	ck_assert(req.no_notify);
	ck_assert_uint_eq(req.off, 1u << 20);
	ck_assert_uint_eq(req.data_len, 5);
	ck_assert_mem_eq(req.data, "a b\n\x01", 5);
	parse_ok("write f 4K --pattern 0xff --len 4K");
	ck_assert_int_eq(req.src, CTL_SRC_PATTERN);
	ck_assert_uint_eq(req.pattern_len, 1);
	ck_assert_uint_eq(req.pattern[0], 0xff);
	ck_assert_uint_eq(req.len, 4096);
	parse_ok("write f 0 --len 10 --pattern abc");
	ck_assert_uint_eq(req.pattern_len, 3);
	ck_assert_mem_eq(req.pattern, "abc", 3);
	parse_ok("write f 0 --pattern 0xfff --len 1");
	ck_assert_uint_eq(req.pattern_len, 5);
	parse_ok("write f 0 --pattern 0X0a --len 1");
	ck_assert_uint_eq(req.pattern_len, 1);
	ck_assert_uint_eq(req.pattern[0], 10);
	parse_ok("write f 0 --pattern \"0x\x10\x10\" --len 1");
	ck_assert_uint_eq(req.pattern_len, 4);
	parse_ok("write f 0 --pattern 0xg0 --len 1");
	ck_assert_uint_eq(req.pattern_len, 4);
	parse_ok("write f 0 --from /tmp/x --no-notify");
	ck_assert_int_eq(req.src, CTL_SRC_FILE);
	ck_assert_str_eq(req.from, "/tmp/x");
	ck_assert_uint_eq(req.len, 0);
	parse_ok("write f 0 --from /dev/zero --len 4K");
	ck_assert_int_eq(req.src, CTL_SRC_FILE);
	ck_assert_uint_eq(req.len, 4096);
	parse_ok("write f 0 -- --follow");
	ck_assert_mem_eq(req.data, "--follow", 8);
	parse_ok("write f 0 \"--follow\"");
	ck_assert_mem_eq(req.data, "--follow", 8);
	parse_ok("write f 0 -x");
	ck_assert_mem_eq(req.data, "-x", 2);
}
END_TEST

START_TEST(test_revoke_plug)
{
	parse_ok("revoke d");
	ck_assert(!req.has_errno);
	parse_ok("revoke d --errno ENODEV");
	ck_assert(req.has_errno);
	ck_assert_int_eq(req.error, ENODEV);
	parse_ok("revoke --errno 5 d");
	ck_assert_int_eq(req.error, 5);
	ck_assert_str_eq(req.path, "d");
	parse_ok("unplug");
	ck_assert(!req.vanish);
	parse_ok("unplug --vanish");
	ck_assert(req.vanish);
	parse_ok("replug");
	ck_assert_int_eq(req.cmd, CTL_REPLUG);
	parse_ok("abort");
	ck_assert_int_eq(req.cmd, CTL_ABORT);
}
END_TEST

START_TEST(test_triggers)
{
	parse_ok("on write db-wal do powercut");
	ck_assert_int_eq(req.cmd, CTL_ON);
	ck_assert_int_eq(req.op, CTL_OP_WRITE);
	ck_assert_str_eq(req.path, "db-wal");
	ck_assert(!req.has_after && !req.has_range);
	ck_assert_ptr_nonnull(req.action);
	ck_assert_int_eq(req.action->cmd, CTL_POWERCUT);
	parse_ok("on read f 4K 4K --after 100 do fail f --op read --errno EIO --count 2");
	ck_assert_int_eq(req.op, CTL_OP_READ);
	ck_assert(req.has_after && req.after == 100 && req.has_range);
	ck_assert_uint_eq(req.off, 4096);
	ck_assert_int_eq(req.action->cmd, CTL_FAIL);
	ck_assert_int_eq(req.action->op, CTL_OP_READ);
	ck_assert_uint_eq(req.action->count, 2);
	parse_ok("on fsync f do unplug --vanish");
	ck_assert(req.action->vanish);
	parse_ok("on write f --after 3 do torn f 0 4K --pages 1");
	ck_assert_int_eq(req.action->cmd, CTL_TORN);
	ck_assert(req.action->has_pages && req.action->has_range);
	parse_ok("on open \"do\" do replug"); /* a quoted "do" is a name */
	ck_assert_str_eq(req.path, "do");
}
END_TEST

START_TEST(test_rules)
{
	parse_ok("fail f --op read --errno EIO");
	ck_assert_int_eq(req.cmd, CTL_FAIL);
	ck_assert_int_eq(req.op, CTL_OP_READ);
	ck_assert_int_eq(req.error, EIO);
	ck_assert(!req.has_range && !req.has_count);
	parse_ok("fail f 0 4K --op write --errno ENOSPC --count 3");
	ck_assert(req.has_range && req.has_count);
	ck_assert_uint_eq(req.count, 3);
	ck_assert_int_eq(req.op, CTL_OP_WRITE);
	parse_ok("delay f --op fsync --ms 2000");
	ck_assert_int_eq(req.op, CTL_OP_FSYNC);
	ck_assert_uint_eq(req.ms, 2000);
	parse_ok("delay --count 1 f 1 2 --ms 0 --op open");
	ck_assert_int_eq(req.op, CTL_OP_OPEN);
	ck_assert(req.has_range && req.has_count);
	parse_ok("rules");
	parse_ok("clear");
	ck_assert(!req.has_id);
	parse_ok("clear 7");
	ck_assert(req.has_id);
	ck_assert_uint_eq(req.id, 7);
	parse_ok("torn f --bytes 4K");
	ck_assert_int_eq(req.cmd, CTL_TORN);
	ck_assert(req.has_bytes && !req.has_pages && !req.has_range);
	ck_assert_uint_eq(req.bytes, 4096);
	parse_ok("torn f 8K 4K --pages 0");
	ck_assert(req.has_pages && !req.has_bytes && req.has_range);
	ck_assert_uint_eq(req.pages, 0);
	ck_assert_uint_eq(req.off, 8192);
}
END_TEST

START_TEST(test_store_audit_paths)
{
	parse_ok("store f 8K \"a b\"");
	ck_assert_int_eq(req.src, CTL_SRC_DATA);
	ck_assert_uint_eq(req.len, 3);
	ck_assert_uint_eq(req.off, 8192);
	parse_ok("audit f");
	ck_assert_int_eq(req.cmd, CTL_AUDIT);
	/* kept as given: the daemon normalises (fs/path.c, tests/unit/check_path.c) */
	parse_ok("audit .");
	ck_assert_str_eq(req.path, ".");
	parse_ok("audit \"\"");
	ck_assert_str_eq(req.path, "");
	parse_ok("audit /a//b/../c/");
	ck_assert_str_eq(req.path, "/a//b/../c/");
	parse_ok("audit \"a b/\\n/c\"");
	ck_assert_str_eq(req.path, "a b/\n/c");
	parse_ok("audit ...");
	ck_assert_str_eq(req.path, "...");
}
END_TEST

#define C16  "aaaaaaaaaaaaaaaa"
#define C256 C16 C16 C16 C16 C16 C16 C16 C16 C16 C16 C16 C16 C16 C16 C16 C16

static const struct bad {
	const char *line;
	int rc;
	const char *msg; /* a substring of the message */
} bad[] = {
	{ "", -EINVAL, "empty request line" },
	{ "  \t ", -EINVAL, "empty request line" },
	{ "frobnicate", -EINVAL, "unknown command 'frobnicate' (commands: status, stats" },
	{ "\"\"", -EINVAL, "unknown command '' (commands:" }, /* found by the fuzzer */
	{ "truncate f", -EINVAL, "truncate: missing SIZE (usage: truncate PATH SIZE)" },
	{ "on write f", -EINVAL, "missing 'do COMMAND [ARGS]'" },
	{ "on write f do", -EINVAL, "missing 'do COMMAND [ARGS]'" },
	{ "on scribble f do unplug", -EINVAL, "OP 'scribble' is not an operation" },
	{ "on write f --after 0 do unplug", -EINVAL, "--after must be at least 1" },
	{ "on write f do frob", -EINVAL, "do: unknown command 'frob'" },
	{ "on write f do fail f --op read", -EINVAL, "do: fail: missing option --errno" },
	{ "on write f do on read f do unplug", -EINVAL, "cannot be another trigger" },
	{ "truncate", -EINVAL, "truncate: missing PATH" },
	{ "truncate f 1 2", -EINVAL, "truncate: unexpected argument '2'" },
	{ "truncate f 12Q", -EINVAL,
	  "truncate: SIZE '12Q' is not a number (accepted: 4096, 8K, 2M, 1G)" },
	{ "truncate f -1", -EINVAL, "SIZE '-1' is not a number" },
	{ "truncate f 1.5K", -EINVAL, "is not a number" },
	{ "truncate f 0x10", -EINVAL, "is not a number" },
	{ "truncate f 16E", -EINVAL, "SIZE '16E' is not a number" },
	{ "truncate f 18446744073709551616", -ERANGE, "out of range" },
	{ "truncate f 9223372036854775808", -ERANGE, "largest: 9223372036854775807" },
	{ "truncate f 16777216T", -ERANGE, "out of range" },
	{ "truncate f 8388608T", -ERANGE, "out of range" },
	{ "inval f 9223372036854775807 1", -ERANGE, "OFF + LEN passes the largest" },
	{ "inval f 4K", -EINVAL, "inval: missing LEN" },
	{ "inval f 0 0", -EINVAL, "LEN must be at least 1" },
	{ "punch f 0", -EINVAL, "punch: missing LEN" },
	{ "status now", -EINVAL, "status: unexpected argument 'now'" },
	{ "status --follow", -EINVAL, "unknown option '--follow' (status takes no options)" },
	{ "log --foo", -EINVAL, "log: unknown option '--foo' (accepted: --follow, --since SEQ)" },
	{ "log --since=5", -EINVAL, "unknown option '--since=5'" },
	{ "log --since", -EINVAL, "option '--since' needs an argument SEQ" },
	{ "log --since --follow", -EINVAL, "needs an argument" },
	{ "log --since 1K", -EINVAL, "--since '1K' is not a number (accepted: decimal" },
	{ "log --follow --follow", -EINVAL, "log: option '--follow' given twice" },
	{ "revoke f --errno EIO --errno EIO", -EINVAL, "given twice" },
	{ "revoke f --errno EFOO", -EINVAL, "--errno 'EFOO' is not an errno" },
	{ "revoke f --errno 0", -EINVAL, "is not an errno" },
	{ "revoke f --errno 4096", -EINVAL, "is not an errno" },
	{ "revoke f --errno eio", -EINVAL, "is not an errno" },
	{ "revoke a/" C256, -ENAMETOOLONG, "has a component longer than 255 bytes" },
	{ "write f 0", -EINVAL, "write: no data: give DATA, --pattern P --len N or --from FILE" },
	{ "write f 0 x --from /a", -EINVAL, "DATA and --from are exclusive" },
	{ "write f 0 x --pattern a --len 1", -EINVAL, "DATA and --pattern are exclusive" },
	{ "write f 0 --pattern a --len 1 --from /a", -EINVAL,
	  "--pattern and --from are exclusive" },
	{ "write f 0 --pattern a", -EINVAL, "--pattern needs --len N" },
	{ "write f 0 x --len 5", -EINVAL, "--len goes only with --pattern or --from" },
	{ "write f 0 --from /dev/zero --len 0", -EINVAL, "--len must be at least 1" },
	{ "write f 0 --pattern \"\" --len 5", -EINVAL, "--pattern is empty" },
	{ "write f 0 --pattern a --len 0", -EINVAL, "--len must be at least 1" },
	{ "write f 0 --from rel/x", -EINVAL, "--from 'rel/x' is not an absolute path" },
	{ "write f 0 \"\"", -EINVAL, "DATA is empty" },
	{ "write f 9223372036854775807 ab", -ERANGE, "passes the largest" },
	{ "write f 0 a b", -EINVAL, "unexpected argument 'b'" },
	{ "store f 0", -EINVAL, "store: missing DATA" },
	{ "fail f --errno EIO", -EINVAL, "fail: missing option --op OP" },
	{ "fail f --op read", -EINVAL, "fail: missing option --errno E" },
	{ "fail f --op rd --errno EIO", -EINVAL,
	  "--op 'rd' is not an operation (accepted: read, write, fsync, open)" },
	{ "fail f --op read --errno EIO --count 0", -EINVAL, "--count must be at least 1" },
	{ "fail f --op read --errno EIO --ms 5", -EINVAL,
	  "unknown option '--ms' (accepted: --errno E, --op OP, --count N)" },
	{ "delay f --op read", -EINVAL, "delay: missing option --ms N" },
	{ "delay f --op read --ms 1s", -EINVAL, "--ms '1s' is not a number" },
	{ "delay f --op read --ms 18446744073709551616", -ERANGE, "out of range" },
	{ "delay f --op read --ms 99999999999", -ERANGE,
	  "--ms '99999999999' is out of range (largest: 86400000)" },
	{ "delay f --op read --ms 86400001", -ERANGE, "out of range (largest: 86400000)" },
	{ "on write f do torn f", -EINVAL, "do: torn: missing --bytes N or --pages N" },
	{ "torn f", -EINVAL, "torn: missing --bytes N or --pages N: what persists of the write" },
	{ "torn f --bytes 1 --pages 1", -EINVAL, "torn: --bytes and --pages are exclusive" },
	{ "torn --bytes 1", -EINVAL, "torn: missing PATH" },
	{ "torn f 4K --bytes 1", -EINVAL, "torn: missing LEN" },
	{ "torn f 0 0 --pages 1", -EINVAL, "LEN must be at least 1" },
	{ "torn f --bytes", -EINVAL, "option '--bytes' needs an argument N" },
	{ "torn f --bytes x", -EINVAL, "--bytes 'x' is not a number (accepted: 4096, 8K" },
	{ "torn f --pages 1K", -EINVAL, "--pages '1K' is not a number (accepted: decimal" },
	{ "torn f --pages 9223372036854775808", -ERANGE,
	  "--pages '9223372036854775808' is out of range" },
	{ "torn f --pages 1 --pages 2", -EINVAL, "option '--pages' given twice" },
	{ "torn f --bytes 1 --op write", -EINVAL,
	  "unknown option '--op' (accepted: --bytes N, --pages N)" },
	{ "torn f 1 2 3 --bytes 1", -EINVAL, "unexpected argument '3'" },
	{ "clear x", -EINVAL, "ID 'x' is not a number" },
	{ "clear 1 2", -EINVAL, "unexpected argument '2'" },
	{ "audit \"abc", -EINVAL, "unterminated quote in token 2" },
	{ "audit \"a\\qb\"", -EINVAL, "bad escape '\\q' in token 2" },
	{ "audit \"a\\x4\"", -EINVAL, "bad escape" },
	{ "audit \"a\\x00\"", -EINVAL, "NUL bytes are not allowed" },
	{ "audit \"a\"b", -EINVAL, "text right after the closing quote of token 2" },
	{ "audit a\"b\"", -EINVAL, "quote inside unquoted token 2" },
	{ "audit a\\b", -EINVAL, "backslash inside unquoted token 2" },
	{ "audit a\nb", -EINVAL, "request contains a newline" },
};

START_TEST(test_malformed)
{
	const struct bad *b = &bad[_i];
	int rc = parse(b->line);

	ck_assert_msg(rc == b->rc, "'%s': rc %d, want %d (%s)", b->line, rc, b->rc, err);
	ck_assert_msg(strstr(err, b->msg), "'%s': message '%s' lacks '%s'", b->line, err, b->msg);
	ck_assert_ptr_null(req.path);
	ck_assert_ptr_null(req.data);
}
END_TEST

START_TEST(test_nul_and_size)
{
	static const char nul[] = "status\0x";
	char *big = malloc(CTL_LINE_MAX + 2);
	size_t n;

	ck_assert_int_eq(ctl_parse(nul, sizeof(nul) - 1, &req, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "request contains a NUL byte");
	memset(big, 'a', CTL_LINE_MAX + 1);
	memcpy(big, "write f 0 ", 10);
	n = CTL_LINE_MAX - 1; /* the longest line: 65535 bytes and its newline */
	big[n] = '\n';
	ck_assert_int_eq(ctl_parse(big, n + 1, &req, err, sizeof(err)), 0);
	ck_assert_uint_eq(req.data_len, n - 10);
	ctl_req_free(&req);
	big[n] = 'a';
	big[n + 1] = '\n';
	ck_assert_int_eq(ctl_parse(big, n + 2, &req, err, sizeof(err)), -E2BIG);
	ck_assert_str_eq(err, "request line longer than 65536 bytes");
	free(big);
}
END_TEST

START_TEST(test_path_limits)
{
	char line[8192] = "revoke ";
	size_t n = strlen(line);

	for (int i = 0; i < 255; i++, n += 16) /* 255 components: 4080 bytes */
		memcpy(line + n, "aaaaaaaaaaaaaaa/", 16);
	memcpy(line + n, "bbbbbbbbbbbbbbb", 16);
	ck_assert_int_eq(parse(line), 0);
	ck_assert_uint_eq(strlen(req.path), 4095);
	memcpy(line + n, "bbbbbbbbbbbbbbbb", 17);
	ck_assert_int_eq(parse(line), -ENAMETOOLONG);
	ck_assert_str_eq(err, "revoke: PATH is longer than 4095 bytes");
}
END_TEST

START_TEST(test_errno_names)
{
	char buf[16];

	ck_assert_str_eq(ctl_errno_name(ENOENT), "ENOENT");
	ck_assert_str_eq(ctl_errno_name(ENOSPC), "ENOSPC");
	ck_assert_ptr_null(ctl_errno_name(0));
	ck_assert_ptr_null(ctl_errno_name(4000));
	ck_assert_str_eq(ctl_errno_str(4000, buf, sizeof(buf)), "4000");
	ck_assert_int_eq(ctl_errno_parse("EIO"), EIO);
	ck_assert_int_eq(ctl_errno_parse("EWOULDBLOCK"), EAGAIN);
	ck_assert_int_eq(ctl_errno_parse("ENOTSUP"), EOPNOTSUPP);
	ck_assert_int_eq(ctl_errno_parse("EDEADLOCK"), EDEADLK);
	ck_assert_int_eq(ctl_errno_parse("4095"), 4095);
	ck_assert_int_eq(ctl_errno_parse("4096"), -EINVAL);
	ck_assert_int_eq(ctl_errno_parse("0"), -EINVAL);
	ck_assert_int_eq(ctl_errno_parse("EFOO"), -EINVAL);
	ck_assert_int_eq(ctl_errno_parse(""), -EINVAL);
	for (int e = 1; e <= CTL_ERRNO_MAX; e++) {
		const char *name = ctl_errno_name(e);

		if (name)
			ck_assert_int_eq(ctl_errno_parse(name), e);
	}
}
END_TEST

/* Builds a line from argv, tokenizes it back and compares byte for byte. */
static void round_trip(int argc, char **argv)
{
	struct ctl_tokens toks;
	char *line;
	size_t len;

	ck_assert_int_eq(ctl_build_line(argc, argv, &line, &len), 0);
	ck_assert_uint_eq(strlen(line), len);
	ck_assert_ptr_null(memchr(line, '\n', len));
	ck_assert_int_eq(ctl_tokenize(line, len, &toks, err, sizeof(err)), 0);
	ck_assert_uint_eq(toks.n, (size_t)argc);
	for (int i = 0; i < argc; i++) {
		ck_assert_uint_eq(toks.v[i].len, strlen(argv[i]));
		ck_assert_mem_eq(toks.v[i].s, argv[i], toks.v[i].len);
	}
	ctl_tokens_free(&toks);
	free(line);
}

START_TEST(test_round_trip)
{
	char all[256], one[256][2], *argv[256];

	for (int c = 1; c < 256; c++) {
		all[c - 1] = (char)c;
		one[c][0] = (char)c;
		one[c][1] = '\0';
		argv[c - 1] = one[c];
	}
	all[255] = '\0';
	round_trip(255, argv);
	argv[0] = all;
	argv[1] = "";
	argv[2] = "\"\\\"";
	argv[3] = "--x";
	round_trip(4, argv);
}
END_TEST

START_TEST(test_round_trip_random)
{
	char buf[8][64], *argv[8];
	unsigned seed = 1;

	for (int iter = 0; iter < 20000; iter++) {
		int argc = 1 + rand_r(&seed) % 8;

		for (int i = 0; i < argc; i++) {
			int n = rand_r(&seed) % 63;

			for (int j = 0; j < n; j++)
				buf[i][j] = (char)(1 + rand_r(&seed) % 255);
			buf[i][n] = '\0';
			argv[i] = buf[i];
		}
		round_trip(argc, argv);
	}
}
END_TEST

START_TEST(test_round_trip_parse)
{
	char *argv[] = { "write", "dir with space/f\n\"x\"", "4K", "--", "--data \\ \x01\xff" };
	char *line;
	size_t len;

	ck_assert_int_eq(ctl_build_line(5, argv, &line, &len), 0);
	ck_assert_int_eq(ctl_parse(line, len, &req, err, sizeof(err)), 0);
	ck_assert_str_eq(req.path, argv[1]);
	ck_assert_uint_eq(req.data_len, strlen(argv[4]));
	ck_assert_mem_eq(req.data, argv[4], req.data_len);
	free(line);
}
END_TEST

START_TEST(test_build_too_long)
{
	char *big = malloc(CTL_LINE_MAX), *argv[] = { "write", "f", "0", big }, *line;
	size_t len;

	memset(big, 'a', CTL_LINE_MAX - 1);
	big[CTL_LINE_MAX - 1] = '\0';
	ck_assert_int_eq(ctl_build_line(4, argv, &line, &len), -E2BIG);
	ck_assert_ptr_null(line);
	big[CTL_LINE_MAX - 12] = '\0'; /* "write f 0 " + 65524 bytes = 65534 */
	ck_assert_int_eq(ctl_build_line(4, argv, &line, &len), 0);
	ck_assert_uint_eq(len, CTL_LINE_MAX - 2);
	free(line);
	free(big);
}
END_TEST

START_TEST(test_argv_index)
{
	char *w[] = { "write", "--no-notify", "f", "0", "--from", "x" };
	char *l[] = { "log", "--since", "5" };
	char *f[] = { "fail", "--op", "read", "--errno", "EIO", "g" };
	char *d[] = { "write", "--", "--from", "0", "x" };
	char *u[] = { "nosuch", "x" };

	ck_assert_int_eq(ctl_argv_path_index(6, w), 2);
	ck_assert_int_eq(ctl_argv_option_index(6, w, "--from"), 5);
	ck_assert_int_eq(ctl_argv_path_index(3, l), -1);
	ck_assert_int_eq(ctl_argv_path_index(6, f), 5);
	ck_assert_int_eq(ctl_argv_path_index(5, d), 2);
	ck_assert_int_eq(ctl_argv_option_index(5, d, "--from"), -1);
	ck_assert_int_eq(ctl_argv_path_index(2, u), -1);
}
END_TEST

START_TEST(test_table)
{
	const char *prefix = "sigbusctl -m /mnt/sbfs ";

	for (int i = 0; i < CTL_CMD_COUNT; i++) {
		const struct ctl_cmd_desc *d = ctl_cmd_get(i);

		ck_assert_int_eq(d->cmd, i);
		ck_assert_ptr_eq(ctl_cmd_find(d->name), d);
		ck_assert(!strncmp(d->usage, d->name, strlen(d->name)));
		ck_assert(d->brief[0] && d->help[0]);
		ck_assert_msg(!strncmp(d->example, prefix, strlen(prefix)), "%s", d->example);
		ck_assert_msg(parse(d->example + strlen(prefix)) == 0, "%s: %s", d->example, err);
		ck_assert_int_eq(req.cmd, i);
	}
	ck_assert_ptr_null(ctl_cmd_find("STATUS"));
	ck_assert_str_eq(ctl_op_name(CTL_OP_FSYNC), "fsync");
}
END_TEST

/* Reads a reply written as text into one end of a socket pair. */
static int read_reply(const char *text, struct ctl_result *r)
{
	struct ctl_lines lr;
	int sv[2], rc;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(ctl_write_all(sv[0], text, strlen(text)), 0);
	close(sv[0]);
	ctl_lines_init(&lr, sv[1], CTL_REPLY_LINE_MAX);
	rc = ctl_result_read(&lr, r);
	ctl_lines_free(&lr);
	close(sv[1]);
	return rc;
}

START_TEST(test_result_read)
{
	struct ctl_result r;

	ck_assert_int_eq(read_reply("ok 3 files\nsize=4096\nname=\"a b\\n\"\nempty=\"\"\n\n", &r),
			 0);
	ck_assert(r.is_ok);
	ck_assert_str_eq(r.text, "3 files");
	ck_assert_uint_eq(r.nkv, 3);
	ck_assert_str_eq(r.kv[0].key, "size");
	ck_assert_str_eq(r.kv[0].value, "4096");
	ck_assert_str_eq(r.kv[1].value, "a b\n");
	ck_assert_str_eq(r.kv[1].raw, "\"a b\\n\"");
	ck_assert_str_eq(r.kv[2].value, "");
	ctl_result_free(&r);
	ck_assert_int_eq(read_reply("err ENOENT no such file: f\n\n", &r), 0);
	ck_assert(!r.is_ok);
	ck_assert_int_eq(r.error, ENOENT);
	ck_assert_str_eq(r.errname, "ENOENT");
	ck_assert_str_eq(r.text, "no such file: f");
	ctl_result_free(&r);
	ck_assert_int_eq(read_reply("ok\n\n", &r), 0);
	ck_assert_str_eq(r.text, "");
	ctl_result_free(&r);
	ck_assert_int_eq(read_reply("err 4000\n\n", &r), 0);
	ck_assert_int_eq(r.error, 4000);
	ctl_result_free(&r);
	ck_assert_int_eq(read_reply("okay\n\n", &r), -EBADMSG);
	ctl_result_free(&r);
	ck_assert_int_eq(read_reply("ok\nnoequals\n\n", &r), -EBADMSG);
	ctl_result_free(&r);
	ck_assert_int_eq(read_reply("ok\nk=\"unterminated\n\n", &r), -EBADMSG);
	ctl_result_free(&r);
	ck_assert_int_eq(read_reply("ok\nk=v\n", &r), -ECONNRESET);
	ctl_result_free(&r);
	ck_assert_int_eq(read_reply("", &r), -ECONNRESET);
	ctl_result_free(&r);
}
END_TEST

START_TEST(test_kv_split)
{
	const char *line = "seq=12 time=1.000000001 cmd=write target=\"a b\\\"c\" result=ok";
	struct ctl_kv *kv;
	size_t n;

	ck_assert_int_eq(ctl_kv_split(line, strlen(line), &kv, &n), 0);
	ck_assert_uint_eq(n, 5);
	ck_assert_str_eq(kv[0].key, "seq");
	ck_assert_str_eq(kv[0].value, "12");
	ck_assert_str_eq(kv[3].key, "target");
	ck_assert_str_eq(kv[3].value, "a b\"c");
	ctl_kv_free(kv, n);
	ck_assert_int_eq(ctl_kv_split("a=1 free text", 13, &kv, &n), -EINVAL);
	ck_assert_ptr_null(kv);
}
END_TEST

START_TEST(test_quote_text)
{
	struct ctl_buf b = { 0 };

	ctl_buf_add_quoted(&b, "plain", 5);
	ctl_buf_add(&b, " ", 1);
	ctl_buf_add_quoted(&b, "a b\t\"\\\x7f\xc3\xa9", 9);
	ck_assert_str_eq(b.p, "plain \"a b\\t\\\"\\\\\\x7f\xc3\xa9\"");
	ctl_buf_free(&b);
	ctl_buf_add_text(&b, "line\nnext\x01 \\ok");
	ck_assert_str_eq(b.p, "line\\nnext\\x01 \\ok");
	ctl_buf_free(&b);
}
END_TEST

/* Lines longer than the reader's limit are skipped whole and reported once. */
START_TEST(test_lines_limit)
{
	struct ctl_lines lr;
	char *line, big[100];
	size_t len;
	int sv[2];

	memset(big, 'x', sizeof(big));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(ctl_write_all(sv[0], "12345678\n", 9), 0);
	ck_assert_int_eq(ctl_write_all(sv[0], big, sizeof(big)), 0);
	ck_assert_int_eq(ctl_write_all(sv[0], "\nabc\nlast", 9), 0);
	close(sv[0]);
	ctl_lines_init(&lr, sv[1], 10);
	ck_assert_int_eq(ctl_lines_read(&lr, &line, &len), 1);
	ck_assert_str_eq(line, "12345678");
	ck_assert_int_eq(ctl_lines_read(&lr, &line, &len), -E2BIG);
	ck_assert_int_eq(ctl_lines_read(&lr, &line, &len), 1);
	ck_assert_str_eq(line, "abc");
	ck_assert_int_eq(ctl_lines_read(&lr, &line, &len), 1);
	ck_assert_str_eq(line, "last");
	ck_assert_int_eq(ctl_lines_read(&lr, &line, &len), 0);
	ctl_lines_free(&lr);
	close(sv[1]);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ctl_proto");
	TCase *tc;

	fx_unit_tcase(s, "commands", 0, NULL, teardown,
		      FX_TESTS(test_status_stats_log, test_inval_truncate_punch, test_write,
			       test_revoke_plug, test_triggers, test_rules, test_store_audit_paths,
			       test_table, test_argv_index));
	tc = fx_unit_tcase(s, "rejects", 0, NULL, teardown,
			   FX_TESTS(test_nul_and_size, test_path_limits));
	tcase_add_loop_test(tc, test_malformed, 0, sizeof(bad) / sizeof(bad[0]));
	/* the random round trips take 0.6 s of CPU: on a loaded machine, more than Check's
	 * default 4 s of wall clock */
	fx_unit_tcase(s, "wire", 60, NULL, teardown,
		      FX_TESTS(test_errno_names, test_round_trip, test_round_trip_random,
			       test_round_trip_parse, test_build_too_long, test_quote_text,
			       test_lines_limit));
	fx_unit_tcase(s, "replies", 0, NULL, NULL, FX_TESTS(test_result_read, test_kv_split));
	return fx_run_suite(s);
}
