/* Unit tests of the gate (fs/gate.c) on a minimal mount context: the verdicts of each plug
 * state, of revoking and revoked inodes, of handles opened before an unplug or a
 * revocation, and of fault rules with their counts, ranges and delays; and what the gate
 * counts (errors, dirty bytes lost). */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gate.h"
#include "suite.h"

#define FILE_INO 5
#define ROOT	 BK_ROOT_INO

static struct sfs fs;
static uint64_t handles[8]; /* opened by handle(), released by teardown() */
static unsigned nhandles;

static void setup(void)
{
	memset(&fs, 0, sizeof(fs));
	ck_assert_int_eq(itab_new(&fs.itab), 0);
	ck_assert_int_eq(rules_new(&fs.rules), 0);
	ck_assert_int_eq(evlog_new(16, &fs.evlog), 0);
	atomic_store(&fs.plug, PLUG_ON);
	ck_assert_int_eq(inode_ref(fs.itab, FILE_INO), 0);
}

static void teardown(void)
{
	while (nhandles > 0)
		gate_release(&fs, handles[--nhandles]);
	evlog_free(fs.evlog);
	rules_free(fs.rules);
	itab_free(fs.itab);
}

/* Runs one event in the log: the next sequence number is used. */
static uint64_t event(void)
{
	struct timespec start;
	uint64_t seq = evlog_begin(fs.evlog, &start);

	evlog_end(fs.evlog, seq, &start, "cmd=test");
	return seq;
}

/* A new open file's handle on ino. */
static uint64_t handle(uint64_t ino)
{
	uint64_t fh;

	ck_assert_uint_lt(nhandles, sizeof(handles) / sizeof(handles[0]));
	ck_assert_int_eq(gate_open(&fs, ino, false, &fh), 0);
	ck_assert_uint_ne(fh, GATE_NO_HANDLE);
	handles[nhandles++] = fh;
	return fh;
}

static int g(uint64_t ino, enum gate_op op)
{
	return gate(&fs, ino, op, GATE_NO_HANDLE, 0, 0);
}

START_TEST(test_plug_on)
{
	for (int op = GATE_LOOKUP; op <= GATE_FSYNC; op++) {
		ck_assert_int_eq(g(FILE_INO, op), 0);
		ck_assert_int_eq(g(ROOT, op), 0);
	}
	ck_assert_uint_eq(atomic_load(&fs.stats.errors), 0);
}
END_TEST

/* Unplugging: a forced stat learns size 0, a descriptor's GETATTR and all I/O fail. */
START_TEST(test_plug_going)
{
	uint64_t fh = handle(FILE_INO);

	atomic_store(&fs.plug, PLUG_GOING);
	ck_assert_int_eq(g(FILE_INO, GATE_ATTR), GATE_SIZE_ZERO);
	ck_assert_int_eq(gate(&fs, FILE_INO, GATE_ATTR, fh, 0, 0), -EIO);
	ck_assert_int_eq(g(FILE_INO, GATE_LOOKUP), 0);
	ck_assert_int_eq(g(FILE_INO, GATE_DIR), 0);
	for (int op = GATE_META; op <= GATE_FSYNC; op++)
		ck_assert_int_eq(g(FILE_INO, op), -EIO);
	ck_assert_int_eq(g(ROOT, GATE_ATTR), 0);
}
END_TEST

START_TEST(test_plug_off)
{
	atomic_store(&fs.plug, PLUG_OFF);
	for (int op = GATE_LOOKUP; op <= GATE_FSYNC; op++)
		ck_assert_int_eq(g(FILE_INO, op), -EIO);
	ck_assert_int_eq(g(ROOT, GATE_ATTR), 0); /* the mount point stays a directory */
	ck_assert_int_eq(g(ROOT, GATE_DIR), -EIO);
	ck_assert_uint_eq(atomic_load(&fs.stats.errors), GATE_FSYNC + 2);
}
END_TEST

/* Vanished: names are gone, an inode reached through an old descriptor is a dead device. */
START_TEST(test_plug_vanished)
{
	atomic_store(&fs.plug, PLUG_VANISHED);
	ck_assert_int_eq(g(ROOT, GATE_ATTR), 0);
	ck_assert_int_eq(g(ROOT, GATE_DIR), GATE_EMPTY);
	ck_assert_int_eq(g(FILE_INO, GATE_LOOKUP), -ENOENT);
	ck_assert_int_eq(g(FILE_INO, GATE_DIR), -ENOENT);
	ck_assert_int_eq(g(FILE_INO, GATE_META), -ENOENT);
	ck_assert_int_eq(g(FILE_INO, GATE_OPEN), -ENOENT);
	ck_assert_int_eq(g(FILE_INO, GATE_ATTR), -EIO);
	ck_assert_int_eq(g(FILE_INO, GATE_READ), -EIO);
	ck_assert_int_eq(g(FILE_INO, GATE_WRITE), -EIO);
	ck_assert_int_eq(g(FILE_INO, GATE_FSYNC), -EIO);
}
END_TEST

START_TEST(test_inode_revoking)
{
	uint64_t fh = handle(FILE_INO);

	ck_assert_int_eq(inode_set_state(fs.itab, FILE_INO, INODE_REVOKING, ENODEV, 1), 0);
	ck_assert_int_eq(g(FILE_INO, GATE_ATTR), GATE_SIZE_ZERO);
	ck_assert_int_eq(gate(&fs, FILE_INO, GATE_ATTR, fh, 0, 0), -ENODEV);
	ck_assert_int_eq(g(FILE_INO, GATE_LOOKUP), 0);
	ck_assert_int_eq(g(FILE_INO, GATE_OPEN), -ENODEV);
	ck_assert_int_eq(g(FILE_INO, GATE_READ), -ENODEV);
	ck_assert_int_eq(g(6, GATE_READ), 0); /* other inodes are not touched */
}
END_TEST

START_TEST(test_inode_revoked)
{
	struct inode_info info;

	ck_assert_int_eq(inode_set_state(fs.itab, FILE_INO, INODE_REVOKED, ENODEV, 1), 0);
	for (int op = GATE_LOOKUP; op <= GATE_FSYNC; op++)
		ck_assert_int_eq(g(FILE_INO, op), -ENODEV);
	ck_assert_int_eq(inode_info(fs.itab, FILE_INO, &info), 0);
	ck_assert_uint_eq(info.count[IC_ERRORS], GATE_FSYNC + 1);
}
END_TEST

/* A handle remembers the event it was opened at: an unplug or a revocation that started
 * later kills it for good, even after replug; handles opened afterwards live. */
START_TEST(test_handle_epochs)
{
	uint64_t first = handle(FILE_INO), before, after, other;

	event();
	before = handle(FILE_INO);
	atomic_store(&fs.unplugged_at, event()); /* an unplug, and its replug */
	event();
	after = handle(FILE_INO);
	other = handle(6);
	ck_assert_int_eq(gate(&fs, FILE_INO, GATE_READ, first, 0, 1), -EIO);
	ck_assert_int_eq(gate(&fs, FILE_INO, GATE_READ, before, 0, 1), -EIO);
	ck_assert_int_eq(gate(&fs, FILE_INO, GATE_READ, after, 0, 1), 0);
	ck_assert_int_eq(gate(&fs, FILE_INO, GATE_READ, GATE_NO_HANDLE, 0, 1), 0);
	/* a revocation of the file at the next event, then replug */
	ck_assert_int_eq(inode_set_state(fs.itab, FILE_INO, INODE_REVOKED, EIO, event()), 0);
	itab_revive(fs.itab, true);
	ck_assert_int_eq(gate(&fs, FILE_INO, GATE_READ, after, 0, 1), -EIO);
	ck_assert_int_eq(gate(&fs, 6, GATE_READ, other, 0, 1), 0);
	ck_assert_int_eq(gate(&fs, FILE_INO, GATE_READ, handle(FILE_INO), 0, 1), 0);
}
END_TEST

/* After a replug the kernel's old inode names a revived one until a lookup gives it the
 * new generation: requests without a handle fail until then, the lookup itself passes. */
START_TEST(test_stale_until_looked_up)
{
	ck_assert_int_eq(inode_ref(fs.itab, 8), 0);
	ck_assert_int_eq(inode_set_state(fs.itab, 8, INODE_REVOKED, ENODEV, event()), 0);
	itab_revive(fs.itab, false);
	ck_assert_int_eq(gate(&fs, 8, GATE_ATTR, GATE_NO_HANDLE, 0, 0), -EIO);
	ck_assert_int_eq(gate(&fs, 8, GATE_OPEN, GATE_NO_HANDLE, 0, 0), -EIO);
	ck_assert_int_eq(gate(&fs, 8, GATE_DIR, GATE_NO_HANDLE, 0, 0), -EIO);
	ck_assert_int_eq(gate(&fs, 8, GATE_LOOKUP, GATE_NO_HANDLE, 0, 0), 0);
	ck_assert_int_eq(inode_ref(fs.itab, 8), 0); /* the entry reply */
	ck_assert_int_eq(gate(&fs, 8, GATE_ATTR, GATE_NO_HANDLE, 0, 0), 0);
	ck_assert_int_eq(gate(&fs, 8, GATE_OPEN, GATE_NO_HANDLE, 0, 0), 0);
}
END_TEST

/* A handle sees its inode's state through the entry it holds, which stays in the table
 * while held: a revocation, a count, a forget do not lose it. */
START_TEST(test_handle_holds_entry)
{
	uint64_t fh = handle(7), entries = itab_count(fs.itab);
	struct inode_info info;

	ck_assert_int_eq(inode_ref(fs.itab, 7), 0);
	ck_assert_uint_eq(inode_forget(fs.itab, 7, 1), 0);
	ck_assert_uint_eq(itab_count(fs.itab), entries);
	ck_assert_int_eq(gate(&fs, 7, GATE_READ, fh, 0, 1), 0);
	gate_count(&fs, 7, fh, IC_READS, 3);
	ck_assert_int_eq(inode_info(fs.itab, 7, &info), 0);
	ck_assert_uint_eq(info.count[IC_READS], 3);
	ck_assert_int_eq(inode_set_state(fs.itab, 7, INODE_REVOKED, ENODEV, event()), 0);
	ck_assert_int_eq(gate(&fs, 7, GATE_READ, fh, 0, 1), -ENODEV);
	itab_revive(fs.itab, false);
	ck_assert_int_eq(gate(&fs, 7, GATE_READ, fh, 0, 1), -EIO); /* dead for good */
	gate_release(&fs, handles[--nhandles]);
	ck_assert_uint_eq(itab_count(fs.itab), entries - 1);
}
END_TEST

static void add_rule(enum rule_kind kind, enum rule_op op, uint64_t off, uint64_t len,
		     int err_or_ms, uint64_t count)
{
	struct rule r = { .kind = kind,
			  .op = op,
			  .ino = FILE_INO,
			  .off = off,
			  .len = len,
			  .err = kind == RULE_FAIL ? err_or_ms : 0,
			  .ms = kind == RULE_DELAY ? (unsigned)err_or_ms : 0,
			  .count = count };
	uint64_t id;

	ck_assert_int_eq(rules_add(fs.rules, &r, &id), 0);
}

START_TEST(test_rule_verdicts)
{
	struct inode_info info;

	add_rule(RULE_FAIL, RULE_READ, 4096, 4096, EIO, 2);
	add_rule(RULE_FAIL, RULE_WRITE, 0, 0, ENOSPC, 0);
	add_rule(RULE_FAIL, RULE_OPEN, 0, 0, EACCES, 0);
	ck_assert_int_eq(gate(&fs, FILE_INO, GATE_READ, GATE_NO_HANDLE, 0, 4096), 0);
	ck_assert_int_eq(gate(&fs, FILE_INO, GATE_READ, GATE_NO_HANDLE, 4096, 10), -EIO);
	ck_assert_int_eq(gate(&fs, FILE_INO, GATE_READ, GATE_NO_HANDLE, 8000, 10), -EIO);
	ck_assert_int_eq(gate(&fs, FILE_INO, GATE_READ, GATE_NO_HANDLE, 4096, 10), 0); /* spent */
	ck_assert_int_eq(gate(&fs, FILE_INO, GATE_WRITE, GATE_NO_HANDLE, 1 << 20, 1), -ENOSPC);
	ck_assert_int_eq(g(FILE_INO, GATE_OPEN), -EACCES);
	ck_assert_uint_eq(atomic_load(&fs.stats.errors), 4);
	ck_assert_int_eq(inode_info(fs.itab, FILE_INO, &info), 0);
	ck_assert_uint_eq(info.count[IC_ERRORS], 4);
	/* a rule refuses a write: that is an error, not dirty data lost to a revocation */
	ck_assert_uint_eq(atomic_load(&fs.stats.lost_bytes), 0);
}
END_TEST

/* Rules are about I/O: names, attributes and listings never meet them. */
START_TEST(test_rules_spare_metadata)
{
	add_rule(RULE_FAIL, RULE_READ, 0, 0, EIO, 0);
	for (int op = GATE_LOOKUP; op < GATE_OPEN; op++)
		ck_assert_int_eq(g(FILE_INO, op), 0);
	ck_assert_int_eq(g(FILE_INO, GATE_READ), -EIO);
}
END_TEST

START_TEST(test_rule_delay)
{
	double t0;

	add_rule(RULE_DELAY, RULE_FSYNC, 0, 0, 120, 1);
	t0 = fx_now_ms();
	ck_assert_int_eq(g(FILE_INO, GATE_FSYNC), 0);
	ck_assert_msg(fx_now_ms() - t0 >= 120, "fsync delayed %.1f ms", fx_now_ms() - t0);
	ck_assert_uint_eq(rules_count(fs.rules), 0);
}
END_TEST

/* Dirty data the kernel writes back to a revoked file is refused and counted as lost. */
START_TEST(test_lost_bytes)
{
	struct inode_info info;

	ck_assert_int_eq(inode_set_state(fs.itab, FILE_INO, INODE_REVOKED, EIO, 1), 0);
	ck_assert_int_eq(gate(&fs, FILE_INO, GATE_WRITE, GATE_NO_HANDLE, 0, 100), -EIO);
	ck_assert_int_eq(gate(&fs, FILE_INO, GATE_READ, GATE_NO_HANDLE, 0, 50), -EIO);
	ck_assert_uint_eq(atomic_load(&fs.stats.lost_bytes), 100);
	ck_assert_int_eq(inode_info(fs.itab, FILE_INO, &info), 0);
	ck_assert_uint_eq(info.count[IC_LOST_BYTES], 100);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("gate");

	fx_unit_tcase(s, "gate", 0, setup, teardown,
		      FX_TESTS(test_plug_on, test_plug_going, test_plug_off, test_plug_vanished,
			       test_inode_revoking, test_inode_revoked, test_handle_epochs,
			       test_handle_holds_entry, test_stale_until_looked_up,
			       test_rule_verdicts, test_rules_spare_metadata, test_rule_delay,
			       test_lost_bytes));
	return fx_run_suite(s);
}
