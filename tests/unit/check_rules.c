/* Unit tests of the fault rules (fs/rules.c): ids and order, which requests a rule
 * matches (inode, operation, byte range), counts that run out, delays that add up and
 * the first failing rule's errno; torn rules: met only by client writes, once, and the
 * prefix they keep. */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"
#include "suite.h"

static struct rules *rs;

static void setup(void)
{
	ck_assert_int_eq(rules_new(&rs), 0);
}

static void teardown(void)
{
	rules_free(rs);
	rs = NULL;
}

static uint64_t add(enum rule_kind kind, enum rule_op op, uint64_t ino, uint64_t off, uint64_t len,
		    int err_or_ms, uint64_t count)
{
	struct rule r = {
		.kind = kind, .op = op, .ino = ino, .off = off, .len = len, .count = count
	};
	uint64_t id;

	if (kind == RULE_FAIL)
		r.err = err_or_ms;
	else
		r.ms = (unsigned)err_or_ms;
	ck_assert_int_eq(rules_add(rs, &r, &id), 0);
	return id;
}

static int match(uint64_t ino, enum rule_op op, uint64_t off, uint64_t len)
{
	unsigned delay = 0;
	struct rule fired;
	int rc = rules_match(rs, ino, op, off, len, &delay, &fired, NULL);

	ck_assert_uint_eq(delay, 0);
	ck_assert_uint_eq(fired.id, 0);
	return rc;
}

static void collect(void *ctx, const struct rule *r)
{
	char *ids = ctx;

	ids[strlen(ids)] = (char)('0' + r->id);
}

START_TEST(test_ids_and_order)
{
	char seen[8] = "";
	struct rule out;

	ck_assert_uint_eq(add(RULE_FAIL, RULE_READ, 5, 0, 0, EIO, 0), 1);
	ck_assert_uint_eq(add(RULE_DELAY, RULE_WRITE, 5, 0, 0, 10, 0), 2);
	ck_assert_uint_eq(add(RULE_FAIL, RULE_OPEN, 6, 0, 0, EACCES, 0), 3);
	ck_assert_uint_eq(rules_count(rs), 3);
	rules_each(rs, collect, seen);
	ck_assert_str_eq(seen, "123");
	ck_assert_int_eq(rules_remove(rs, 2, &out), 0);
	ck_assert_uint_eq(out.id, 2);
	ck_assert_int_eq(out.op, RULE_WRITE);
	ck_assert_int_eq(rules_remove(rs, 2, &out), -ENOENT);
	ck_assert_int_eq(rules_pop(rs, &out), 0);
	ck_assert_uint_eq(out.id, 1);
	ck_assert_int_eq(rules_pop(rs, &out), 0);
	ck_assert_uint_eq(out.id, 3);
	ck_assert_int_eq(rules_pop(rs, &out), -ENOENT);
	ck_assert_uint_eq(rules_count(rs), 0);
	/* ids are never reused */
	ck_assert_uint_eq(add(RULE_FAIL, RULE_READ, 5, 0, 0, EIO, 0), 4);
}
END_TEST

START_TEST(test_match_inode_and_op)
{
	struct rule out;

	add(RULE_FAIL, RULE_READ, 5, 0, 0, EIO, 0);
	ck_assert_int_eq(match(5, RULE_READ, 0, 4096), -EIO);
	ck_assert_int_eq(match(6, RULE_READ, 0, 4096), 0);
	ck_assert_int_eq(match(5, RULE_WRITE, 0, 4096), 0);
	ck_assert_int_eq(match(5, RULE_READ, 1ull << 40, 1), -EIO); /* len 0: to the end */
	ck_assert_int_eq(rules_pop(rs, &out), 0);
	ck_assert_uint_eq(out.hits, 2);
}
END_TEST

START_TEST(test_match_range)
{
	add(RULE_FAIL, RULE_WRITE, 5, 4096, 4096, ENOSPC, 0);
	ck_assert_int_eq(match(5, RULE_WRITE, 0, 4096), 0);
	ck_assert_int_eq(match(5, RULE_WRITE, 0, 4097), -ENOSPC);
	ck_assert_int_eq(match(5, RULE_WRITE, 8191, 1), -ENOSPC);
	ck_assert_int_eq(match(5, RULE_WRITE, 8192, 4096), 0);
	/* a request of length 0 counts as its first byte */
	ck_assert_int_eq(match(5, RULE_WRITE, 4096, 0), -ENOSPC);
	ck_assert_int_eq(match(5, RULE_WRITE, 8192, 0), 0);
}
END_TEST

/* fsync and open have no range: a rule on them matches whatever its range says. */
START_TEST(test_rangeless_ops)
{
	add(RULE_FAIL, RULE_FSYNC, 5, 100, 1, EIO, 0);
	add(RULE_FAIL, RULE_OPEN, 5, 100, 1, EACCES, 0);
	ck_assert_int_eq(match(5, RULE_FSYNC, 0, 0), -EIO);
	ck_assert_int_eq(match(5, RULE_OPEN, 0, 0), -EACCES);
}
END_TEST

START_TEST(test_count_runs_out)
{
	add(RULE_FAIL, RULE_READ, 5, 0, 0, EIO, 2);
	ck_assert_int_eq(match(5, RULE_READ, 0, 1), -EIO);
	ck_assert_uint_eq(rules_count(rs), 1);
	ck_assert_int_eq(match(6, RULE_READ, 0, 1), 0); /* no hit: no count used */
	ck_assert_int_eq(match(5, RULE_READ, 0, 1), -EIO);
	ck_assert_uint_eq(rules_count(rs), 0);
	ck_assert_int_eq(match(5, RULE_READ, 0, 1), 0);
}
END_TEST

START_TEST(test_delays_and_errnos)
{
	struct rule fired;
	unsigned delay = 0;

	add(RULE_DELAY, RULE_READ, 5, 0, 0, 100, 0);
	add(RULE_FAIL, RULE_READ, 5, 0, 0, EIO, 0);
	add(RULE_DELAY, RULE_READ, 5, 0, 0, 50, 1);
	add(RULE_FAIL, RULE_READ, 5, 0, 0, ENOSPC, 0);
	ck_assert_int_eq(rules_match(rs, 5, RULE_READ, 0, 1, &delay, &fired, NULL), -EIO);
	ck_assert_uint_eq(delay, 150);
	delay = 0;
	ck_assert_int_eq(rules_match(rs, 5, RULE_READ, 0, 1, &delay, &fired, NULL), -EIO);
	ck_assert_uint_eq(delay, 100); /* the 50 ms rule had --count 1 */
}
END_TEST

/* A trigger fires at its Nth matching request, once, and is gone; the rule it arms waits
 * until then and applies from the firing request on. */
START_TEST(test_trigger_arms_rule)
{
	struct rule t = { .kind = RULE_TRIGGER,
			  .op = RULE_WRITE,
			  .ino = 5,
			  .count = 3,
			  .then = THEN_RULE },
		    r = { .kind = RULE_FAIL, .op = RULE_WRITE, .ino = 5, .err = ENOSPC }, fired;
	unsigned delay = 0;
	uint64_t tid, rid;

	ck_assert_int_eq(rules_add(rs, &r, &rid), 0);
	t.then_id = rid;
	ck_assert_int_eq(rules_add(rs, &t, &tid), 0);
	ck_assert_int_eq(rules_remove(rs, rid, &r), 0); /* re-added waiting for the trigger */
	r.armed_by = tid;
	ck_assert_int_eq(rules_add(rs, &r, &rid), 0);
	for (int i = 1; i <= 2; i++) {
		ck_assert_int_eq(rules_match(rs, 5, RULE_WRITE, 0, 1, &delay, &fired, NULL), 0);
		ck_assert_uint_eq(fired.id, 0);
	}
	ck_assert_int_eq(rules_match(rs, 6, RULE_WRITE, 0, 1, &delay, &fired, NULL), 0); /* not 5 */
	ck_assert_int_eq(rules_match(rs, 5, RULE_WRITE, 0, 1, &delay, &fired, NULL), 0);
	ck_assert_uint_eq(fired.id, tid);
	ck_assert_uint_eq(fired.hits, 3);
	ck_assert_int_eq(rules_arm(rs, rid, 5, RULE_WRITE, 0, 1, &delay, NULL), -ENOSPC);
	ck_assert_int_eq(rules_match(rs, 5, RULE_WRITE, 0, 1, &delay, &fired, NULL), -ENOSPC);
	ck_assert_uint_eq(fired.id, 0);
	ck_assert_uint_eq(rules_count(rs), 1); /* the trigger is gone, the rule stays */
}
END_TEST

/* A torn rule on ino 5, range [off, off + len). */
static uint64_t add_torn(uint64_t off, uint64_t len, uint64_t keep, bool is_pages)
{
	struct rule r = { .kind = RULE_TORN,
			  .op = RULE_WRITE,
			  .ino = 5,
			  .off = off,
			  .len = len,
			  .count = 1,
			  .keep = keep,
			  .is_pages = is_pages };
	uint64_t id;

	ck_assert_int_eq(rules_add(rs, &r, &id), 0);
	return id;
}

/* The id of the torn rule a write to ino 5 at [off, off + len) meets, 0 for none. */
static uint64_t torn_of(uint64_t off, uint64_t len)
{
	unsigned delay = 0;
	struct rule fired, torn;

	ck_assert_int_eq(rules_match(rs, 5, RULE_WRITE, off, len, &delay, &fired, &torn), 0);
	return torn.id;
}

START_TEST(test_torn_once)
{
	uint64_t a = add_torn(0, 0, 10, false), b = add_torn(8192, 4096, 1, true);

	ck_assert_int_eq(match(5, RULE_WRITE, 0, 100), 0); /* not a client write */
	ck_assert_uint_eq(rules_count(rs), 2);
	ck_assert_uint_eq(torn_of(8000, 1000), a); /* one per write, the lowest id */
	ck_assert_uint_eq(torn_of(0, 100), 0);	   /* a is used up, b's range is missed */
	ck_assert_uint_eq(torn_of(12287, 1), b);
	ck_assert_uint_eq(rules_count(rs), 0);
}
END_TEST

/* A write a fail rule refuses is not torn: the torn rule waits for the next one. */
START_TEST(test_torn_waits_for_a_served_write)
{
	unsigned delay = 0;
	struct rule fired, torn;
	uint64_t id = add_torn(0, 0, 1, false);

	add(RULE_FAIL, RULE_WRITE, 5, 0, 0, ENOSPC, 1);
	ck_assert_int_eq(rules_match(rs, 5, RULE_WRITE, 0, 10, &delay, &fired, &torn), -ENOSPC);
	ck_assert_uint_eq(torn.id, 0);
	ck_assert_uint_eq(rules_count(rs), 1);
	ck_assert_uint_eq(torn_of(0, 10), id);
}
END_TEST

/* A trigger at the next write to ino 5 that arms a waiting torn rule; returns the torn
 * rule's id. */
static uint64_t add_trigger_of_torn(void)
{
	struct rule r = { .kind = RULE_TORN,
			  .op = RULE_WRITE,
			  .ino = 5,
			  .count = 1,
			  .armed_by = UINT64_MAX },
		    t = { .kind = RULE_TRIGGER,
			  .op = RULE_WRITE,
			  .ino = 5,
			  .count = 1,
			  .then = THEN_RULE };
	uint64_t id;

	ck_assert_int_eq(rules_add(rs, &r, &t.then_id), 0);
	ck_assert_int_eq(rules_add(rs, &t, &id), 0);
	return t.then_id;
}

/* As gate.c does for a write: the rules, then the rule the trigger arms. */
static uint64_t torn_of_firing(uint64_t armed)
{
	unsigned delay = 0;
	struct rule fired, torn;

	ck_assert_int_eq(rules_match(rs, 5, RULE_WRITE, 0, 10, &delay, &fired, &torn), 0);
	ck_assert_uint_ne(fired.id, 0);
	ck_assert_int_eq(rules_arm(rs, armed, 5, RULE_WRITE, 0, 10, &delay, &torn), 0);
	return torn.id;
}

/* A trigger that arms a torn rule tears the write that fires it, unless a torn rule
 * already tore that write: then the next one. */
START_TEST(test_trigger_arms_torn)
{
	uint64_t armed = add_trigger_of_torn(), first;

	ck_assert_uint_eq(torn_of_firing(armed), armed);
	ck_assert_uint_eq(rules_count(rs), 0);
	first = add_torn(0, 0, 1, false);
	armed = add_trigger_of_torn();
	ck_assert_uint_eq(torn_of_firing(armed), first);
	ck_assert_uint_eq(torn_of(0, 10), armed);
	ck_assert_uint_eq(rules_count(rs), 0);
}
END_TEST

START_TEST(test_torn_keep)
{
	const struct rule bytes = { .kind = RULE_TORN, .keep = 100 };
	const struct rule none = { .kind = RULE_TORN, .keep = 0, .is_pages = true };
	const struct rule one = { .kind = RULE_TORN, .keep = 1, .is_pages = true };
	const struct rule two = { .kind = RULE_TORN, .keep = 2, .is_pages = true };

	ck_assert_uint_eq(rule_torn_keep(&bytes, 5, 1000, 4096), 100);
	ck_assert_uint_eq(rule_torn_keep(&bytes, 5, 50, 4096), 50);
	ck_assert_uint_eq(rule_torn_keep(&none, 4096, 8192, 4096), 0);
	ck_assert_uint_eq(rule_torn_keep(&one, 4096, 8192, 4096), 4096);
	ck_assert_uint_eq(rule_torn_keep(&one, 4096 + 2048, 8192, 4096), 2048);
	ck_assert_uint_eq(rule_torn_keep(&two, 4096 + 2048, 8192, 4096), 2048 + 4096);
	ck_assert_uint_eq(rule_torn_keep(&two, 4096 + 2048, 4096, 4096), 4096); /* all of it */
	ck_assert_uint_eq(rule_torn_keep(&one, 100, 10, 4096), 10);
}
END_TEST

START_TEST(test_op_names)
{
	ck_assert_str_eq(rule_op_name(RULE_READ), "read");
	ck_assert_str_eq(rule_op_name(RULE_WRITE), "write");
	ck_assert_str_eq(rule_op_name(RULE_FSYNC), "fsync");
	ck_assert_str_eq(rule_op_name(RULE_OPEN), "open");
	ck_assert_str_eq(rule_op_name(RULE_OP_NR), "?");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("rules");

	fx_unit_tcase(s, "rules", 0, setup, teardown,
		      FX_TESTS(test_ids_and_order, test_match_inode_and_op, test_match_range,
			       test_rangeless_ops, test_count_runs_out, test_delays_and_errnos,
			       test_trigger_arms_rule, test_torn_once,
			       test_torn_waits_for_a_served_write, test_trigger_arms_torn,
			       test_torn_keep, test_op_names));
	return fx_run_suite(s);
}
