/* The control commands: one table with each command's grammar and help text, and
 * ctl_parse(), which both the daemon and sigbusctl run on a request line. Tokens, quoting
 * and numbers are ctl_wire.c's. Design note: reject, never guess. Every request either
 * parses into a fully checked struct ctl_req or fails with a message naming the token. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_proto.h"
#include "units.h"

#define NARGS(n) (1u << (n))
#define O(x)	 CTL_OPT(CTL_O_##x)

/* One entry per command, in enum ctl_cmd order. args lists the positional arguments;
 * nargs_ok says which counts of them make a complete request. */
static const struct ctl_cmd_desc cmds[CTL_CMD_COUNT] = {
	[CTL_STATUS] = {
		.name = "status",
		.cmd = CTL_STATUS,
		.flags = CTL_F_READONLY,
		.nargs_ok = NARGS(0),
		.usage = "status",
		.brief = "the daemon's state",
		.help = "Shows the daemon's state as key: value lines: the mount point, the "
			"backend and its source, the cache mode, whether the backend is plugged "
			"in, the number of fault rules and the sequence number of the latest "
			"event.",
		.example = "sigbusctl -m /mnt/sbfs status",
	},
	[CTL_STATS] = {
		.name = "stats",
		.cmd = CTL_STATS,
		.flags = CTL_F_READONLY,
		.args = { CTL_A_PATH },
		.nargs_ok = NARGS(0) | NARGS(1),
		.usage = "stats [PATH]",
		.brief = "counters of the mount, or of one file",
		.help = "Without PATH, shows the mount's counters: reads and writes with their "
			"bytes, requests failed by fault rules, revocation or unplug (errors), "
			"dirty bytes lost to revocation (lost_bytes), the notifications sent to "
			"the kernel, by kind (notify_inval_inode, notify_inval_entry, "
			"notify_store, notify_retrieve, notify_inc_epoch) and in all, and a line op: name=OP "
			"requests=N errors=M for each FUSE operation requested so far (errors: "
			"error replies of any kind, ENOENT of a lookup included). With PATH, "
			"shows the counters and state of that file.",
		.example = "sigbusctl -m /mnt/sbfs stats data.bin",
		.records = "op",
	},
	[CTL_LOG] = {
		.name = "log",
		.cmd = CTL_LOG,
		.flags = CTL_F_READONLY | CTL_F_STREAM,
		.nargs_ok = NARGS(0),
		.opts = O(FOLLOW) | O(SINCE),
		.usage = "log [--follow] [--since SEQ]",
		.brief = "the event log",
		.help = "Prints the event log, one event per line: seq=N start=S.NNNNNNNNN "
			"end=S.NNNNNNNNN cmd=... target=... result=... and the event's own "
			"keys (off=, bytes=, size=...), times on the monotonic clock, result ok "
			"or an errno name, values with spaces in double quotes. With --json, "
			"the events are objects with those keys, numbers as numbers. Every "
			"event has a sequence number; --since SEQ prints only the events after "
			"SEQ. --follow keeps going and prints each new event as it happens, "
			"until interrupted.",
		.example = "sigbusctl -m /mnt/sbfs log --follow --since 41",
		.records = "event",
	},
	[CTL_INVAL] = {
		.name = "inval",
		.cmd = CTL_INVAL,
		.args = { CTL_A_PATH, CTL_A_OFF, CTL_A_LEN },
		.nargs_ok = NARGS(1) | NARGS(3),
		.usage = "inval PATH [OFF LEN]",
		.brief = "drop cached pages; content unchanged",
		.help = "Drops the kernel's cached pages of PATH, all of them or those of the "
			"range OFF, OFF+LEN, without changing the file: mapped pages fault "
			"again and read the same bytes from the backend.",
		.example = "sigbusctl -m /mnt/sbfs inval data.bin 0 64K",
	},
	[CTL_WRITE] = {
		.name = "write",
		.cmd = CTL_WRITE,
		.args = { CTL_A_PATH, CTL_A_OFF, CTL_A_DATA },
		.nargs_ok = NARGS(2) | NARGS(3),
		.opts = O(PATTERN) | O(LEN) | O(FROM) | O(NO_NOTIFY),
		.usage = "write PATH OFF (DATA | --pattern P --len N | --from FILE [--len N]) "
			 "[--no-notify]",
		.brief = "change bytes out of band, then invalidate",
		.help = "Changes the bytes of PATH at OFF in the backend, behind the kernel's "
			"back, then invalidates the kernel's cache of that range, so that reads "
			"and mappings see the new bytes. The bytes are DATA, taken byte for "
			"byte from the argument (after '--' when they start with '--'), or the "
			"text P repeated over N bytes (--pattern 0xHH repeats one byte), or the "
			"content of the local FILE, read by the daemon: all of it, or its first N "
			"bytes with --len N, which a FILE that is not a regular file (a device, "
			"a pipe) needs; a FILE inside the mount itself is refused. With --no-notify the kernel is not told: "
			"cached pages stay stale on purpose, and audit reports them. Writing "
			"past the end grows the file.",
		.example = "sigbusctl -m /mnt/sbfs write data.bin 4K --pattern 0xff --len 4K",
	},
	[CTL_TRUNCATE] = {
		.name = "truncate",
		.cmd = CTL_TRUNCATE,
		.args = { CTL_A_PATH, CTL_A_SIZE },
		.nargs_ok = NARGS(2),
		.usage = "truncate PATH SIZE",
		.brief = "change the size on the server side",
		.help = "Sets the size of PATH in the backend and makes the kernel learn it. A "
			"shrink is a truncation inside the old i_size: mapped pages past the "
			"new end raise SIGBUS and the tail of the last page reads zeros. "
			"Growing again reads zeros, never the old bytes.",
		.example = "sigbusctl -m /mnt/sbfs truncate data.bin 4K",
	},
	[CTL_PUNCH] = {
		.name = "punch",
		.cmd = CTL_PUNCH,
		.args = { CTL_A_PATH, CTL_A_OFF, CTL_A_LEN },
		.nargs_ok = NARGS(3),
		.usage = "punch PATH OFF LEN",
		.brief = "zero a range inside the size",
		.help = "Zeroes the range OFF, OFF+LEN of PATH in the backend and drops the "
			"kernel's pages of it; the size does not change. Mapped pages in the "
			"range read zeros after their next fault.",
		.example = "sigbusctl -m /mnt/sbfs punch data.bin 8K 4K",
	},
	[CTL_REVOKE] = {
		.name = "revoke",
		.cmd = CTL_REVOKE,
		.args = { CTL_A_PATH },
		.nargs_ok = NARGS(1),
		.opts = O(ERRNO),
		.usage = "revoke PATH [--errno E]",
		.brief = "revoke a file, or a directory recursively",
		.help = "Revokes PATH, and everything below it if it is a directory, as a "
			"hot-removed device would: every mapped page raises SIGBUS, I/O on "
			"descriptors opened before fails with E (an errno name or number; EIO "
			"by default), and new opens and stats fail.",
		.example = "sigbusctl -m /mnt/sbfs revoke data.bin --errno ENODEV",
	},
	[CTL_UNPLUG] = {
		.name = "unplug",
		.cmd = CTL_UNPLUG,
		.nargs_ok = NARGS(0),
		.opts = O(VANISH),
		.usage = "unplug [--vanish]",
		.brief = "the whole backend disappears",
		.help = "Unplugs the backend: every file behaves as revoked. Operations fail "
			"with EIO; with --vanish, lookups fail with ENOENT instead, as if the "
			"files had gone away. Replug brings the backend back.",
		.example = "sigbusctl -m /mnt/sbfs unplug --vanish",
	},
	[CTL_REPLUG] = {
		.name = "replug",
		.cmd = CTL_REPLUG,
		.nargs_ok = NARGS(0),
		.usage = "replug",
		.brief = "the backend comes back",
		.help = "Plugs the backend back in after unplug. New opens see the backend's "
			"data; descriptors and mappings from before the unplug stay dead.",
		.example = "sigbusctl -m /mnt/sbfs replug",
	},
	[CTL_FAIL] = {
		.name = "fail",
		.cmd = CTL_FAIL,
		.args = { CTL_A_PATH, CTL_A_OFF, CTL_A_LEN },
		.nargs_ok = NARGS(1) | NARGS(3),
		.opts = O(OP) | O(ERRNO) | O(COUNT),
		.opts_needed = O(OP) | O(ERRNO),
		.usage = "fail PATH [OFF LEN] --op read|write|fsync|open --errno E [--count N]",
		.brief = "add a rule: failing requests",
		.help = "Adds a fault rule: the next N (or, without --count, all) OP requests "
			"on PATH, or on its range OFF, OFF+LEN, fail with E (an errno name or "
			"number). Adding a read rule drops the range's cached pages, so mapped "
			"pages in it raise SIGBUS at their next fault. N counts requests the "
			"daemon answers, not client accesses: the kernel retries a failed page "
			"read (readahead, then the page alone, then the fault's retry), so a "
			"mapped access takes up to 3. A write rule fails write(2) at once (no "
			"writeback cache) and dirty mapped pages at msync or fsync, reported "
			"once per descriptor. Prints the rule's id, for clear.",
		.example = "sigbusctl -m /mnt/sbfs fail data.bin 0 4K --op read --errno EIO "
			   "--count 3",
	},
	[CTL_DELAY] = {
		.name = "delay",
		.cmd = CTL_DELAY,
		.args = { CTL_A_PATH, CTL_A_OFF, CTL_A_LEN },
		.nargs_ok = NARGS(1) | NARGS(3),
		.opts = O(OP) | O(MS) | O(COUNT),
		.opts_needed = O(OP) | O(MS),
		.usage = "delay PATH [OFF LEN] --op read|write|fsync|open --ms N [--count N]",
		.brief = "add a rule: slow requests",
		.help = "Adds a delay rule: the next N (or, without --count, all) OP requests "
			"on PATH, or on its range OFF, OFF+LEN, are answered N milliseconds "
			"late (N at most 86400000, one day). Prints the rule's id, for clear.",
		.example = "sigbusctl -m /mnt/sbfs delay data.bin --op fsync --ms 2000",
	},
	[CTL_RULES] = {
		.name = "rules",
		.cmd = CTL_RULES,
		.flags = CTL_F_READONLY,
		.nargs_ok = NARGS(0),
		.usage = "rules",
		.brief = "list the fault, delay and torn rules and the triggers",
		.help = "Lists the fault, delay and torn rules and the triggers in force, with "
			"their ids, targets and the number of requests each has left.",
		.example = "sigbusctl -m /mnt/sbfs rules",
	},
	[CTL_CLEAR] = {
		.name = "clear",
		.cmd = CTL_CLEAR,
		.args = { CTL_A_ID },
		.nargs_ok = NARGS(0) | NARGS(1),
		.usage = "clear [ID]",
		.brief = "remove one rule, or all",
		.help = "Removes the rule ID (as fail, delay, torn, on and rules print it), or "
			"every rule.",
		.example = "sigbusctl -m /mnt/sbfs clear 3",
	},
	[CTL_STORE] = {
		.name = "store",
		.cmd = CTL_STORE,
		.args = { CTL_A_PATH, CTL_A_OFF, CTL_A_DATA },
		.nargs_ok = NARGS(3),
		.usage = "store PATH OFF DATA",
		.brief = "push bytes into the page cache only",
		.help = "Pushes DATA into the kernel's page cache of PATH at OFF without "
			"changing the backend: reads and mappings see bytes the backend does "
			"not have, and audit reports the difference.",
		.example = "sigbusctl -m /mnt/sbfs store data.bin 0 GHOST",
	},
	[CTL_AUDIT] = {
		.name = "audit",
		.cmd = CTL_AUDIT,
		.flags = CTL_F_READONLY,
		.args = { CTL_A_PATH },
		.nargs_ok = NARGS(1),
		.usage = "audit PATH",
		.brief = "compare the page cache with the backend",
		.help = "Compares the kernel's cached pages of PATH with the backend and "
			"reports the ranges that differ (stale pages after write --no-notify, "
			"bytes pushed with store), in bytes: cached_bytes and stale_bytes count "
			"them, and each stale range, neighbouring pages merged, is a line "
			"stale: off=N len=N; every range is listed (with --json, \"stale\" is "
			"an array of {\"off\", \"len\"} objects, empty when none differ).",
		.example = "sigbusctl -m /mnt/sbfs audit data.bin",
		.records = "stale",
	},
	[CTL_ABORT] = {
		.name = "abort",
		.cmd = CTL_ABORT,
		.nargs_ok = NARGS(0),
		.usage = "abort",
		.brief = "cut the FUSE connection",
		.help = "Cuts the FUSE connection as a crashed daemon would: cached pages stay "
			"readable, faults on uncached pages raise SIGBUS, and every other "
			"operation fails with ENOTCONN.",
		.example = "sigbusctl -m /mnt/sbfs abort",
	},
	[CTL_POWERCUT] = {
		.name = "powercut",
		.cmd = CTL_POWERCUT,
		.args = { CTL_A_PATH },
		.nargs_ok = NARGS(0) | NARGS(1),
		.usage = "powercut [PATH]",
		.brief = "lose what was not made durable, then unplug",
		.help = "Cuts the power of the whole mount, or of the file PATH, on a mount "
			"made with -o powercut: every write since the file's last fsync, "
			"fdatasync or msync(MS_SYNC), or the last sync command, is lost, content "
			"and size, dirty pages in the kernel included. The mount is then "
			"unplugged (PATH: revoked) until replug, after which new opens see the "
			"durable state. Names are durable once created, renamed or removed.",
		.example = "sigbusctl -m /mnt/sbfs powercut",
	},
	[CTL_SYNC] = {
		.name = "sync",
		.cmd = CTL_SYNC,
		.args = { CTL_A_PATH },
		.nargs_ok = NARGS(0) | NARGS(1),
		.usage = "sync [PATH]",
		.brief = "make everything durable now",
		.help = "On a mount made with -o powercut, makes every file's present state, or "
			"PATH's, durable, as fsync of each would: a later powercut keeps it. "
			"Reports the files and bytes that were not durable yet.",
		.example = "sigbusctl -m /mnt/sbfs sync",
	},
	[CTL_ON] = {
		.name = "on",
		.cmd = CTL_ON,
		.args = { CTL_A_OP, CTL_A_PATH, CTL_A_OFF, CTL_A_LEN },
		.nargs_ok = NARGS(2) | NARGS(4),
		.opts = O(AFTER),
		.usage = "on OP PATH [OFF LEN] [--after N] do COMMAND [ARGS]",
		.brief = "add a trigger: an event at the Nth request",
		.help = "Adds a trigger: when the Nth request OP (read, write, fsync or open) "
			"on PATH (in the range OFF, OFF+LEN) arrives, COMMAND runs: unplug "
			"[--vanish], powercut [PATH], revoke PATH [--errno E], or a fail, delay "
			"or torn rule, which then applies from that request on (a torn rule "
			"tears it if it is a write to the rule's PATH). That request is "
			"answered as after the event (unplug, powercut, revoke: it fails if the "
			"event covers its file), and no later request is served before. N is 1 "
			"without --after. rules lists triggers with the requests left; the log "
			"names the request that fired each.",
		.example = "sigbusctl -m /mnt/sbfs on write db.sqlite-wal --after 100 do powercut",
	},
	[CTL_TORN] = {
		.name = "torn",
		.cmd = CTL_TORN,
		.args = { CTL_A_PATH, CTL_A_OFF, CTL_A_LEN },
		.nargs_ok = NARGS(1) | NARGS(3),
		.opts = O(BYTES) | O(PAGES),
		.usage = "torn PATH [OFF LEN] (--bytes N | --pages N)",
		.brief = "add a rule: the next write persists only a prefix",
		.help = "On a mount made with -o powercut, tears the next write to PATH (or the "
			"next one overlapping OFF, OFF+LEN), as a power cut in the middle of it "
			"would: clients read the whole write until the power cut, but only its "
			"first N bytes, or its part in its first N pages (page-aligned in the "
			"file; N may be 0), reach storage, at once and without a sync; at a "
			"power cut the rest of the written range reverts to what was durable "
			"before it. That tail stays lost through fsync, fdatasync and "
			"msync(MS_SYNC), as on a device that dropped it, until a later write "
			"rewrites those bytes, or the sync command or an out-of-band write, "
			"truncate or punch makes the file durable. Writes of dirty mapped pages "
			"count. The rule fires once: rules lists it until then; the log records "
			"the write it tore (cmd=torn fired=ID).",
		.example = "sigbusctl -m /mnt/sbfs torn db.sqlite-wal --pages 1",
	},
};

/* How an option's value is read. */
enum opt_kind {
	OPT_FLAG,   /* no value */
	OPT_TEXT,   /* read by option_value() */
	OPT_NUMBER, /* decimal digits, 0..max */
	OPT_SIZE,   /* a size with an optional K, M, G or T suffix, 0..max */
};

/* Options by enum ctl_opt; meta names an option's value, NULL for a flag; numbers are
 * refused past max, never clamped. */
static const struct opt_desc {
	const char *name;
	const char *meta;
	enum opt_kind kind;
	uint64_t max;
} opts[CTL_O_COUNT_ALL] = {
	[CTL_O_FOLLOW] = { "--follow", NULL, OPT_FLAG, 0 },
	[CTL_O_SINCE] = { "--since", "SEQ", OPT_NUMBER, UINT64_MAX },
	[CTL_O_PATTERN] = { "--pattern", "P", OPT_TEXT, 0 },
	[CTL_O_LEN] = { "--len", "N", OPT_SIZE, INT64_MAX },
	[CTL_O_FROM] = { "--from", "FILE", OPT_TEXT, 0 },
	[CTL_O_NO_NOTIFY] = { "--no-notify", NULL, OPT_FLAG, 0 },
	[CTL_O_ERRNO] = { "--errno", "E", OPT_TEXT, 0 },
	[CTL_O_VANISH] = { "--vanish", NULL, OPT_FLAG, 0 },
	[CTL_O_OP] = { "--op", "OP", OPT_TEXT, 0 },
	[CTL_O_COUNT] = { "--count", "N", OPT_NUMBER, UINT64_MAX },
	[CTL_O_MS] = { "--ms", "N", OPT_NUMBER, CTL_MS_MAX },
	[CTL_O_AFTER] = { "--after", "N", OPT_NUMBER, UINT64_MAX },
	[CTL_O_BYTES] = { "--bytes", "N", OPT_SIZE, INT64_MAX },
	[CTL_O_PAGES] = { "--pages", "N", OPT_NUMBER, INT64_MAX },
};

static const char *const arg_names[] = { "", "PATH", "OFF", "LEN", "SIZE", "DATA", "ID", "OP" };
static const char *const op_names[] = { NULL, "read", "write", "fsync", "open" };

/* Parsing state: the request, the command, and where messages go. */
struct parse {
	struct ctl_req *req;
	const struct ctl_cmd_desc *d;
	unsigned opts_seen;
	size_t npos;
	char *err;
	size_t errsize;
};

static int fail(struct parse *ps, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Writes "CMD: message" (just the message before the command is known) to the error
 * buffer and returns rc. */
static int fail(struct parse *ps, int rc, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!ps->errsize)
		return rc;
	n = ps->d ? snprintf(ps->err, ps->errsize, "%s: ", ps->d->name) : 0;
	if (n < 0 || (size_t)n >= ps->errsize)
		return rc;
	va_start(ap, fmt);
	vsnprintf(ps->err + n, ps->errsize - (size_t)n, fmt, ap);
	va_end(ap);
	return rc;
}

const struct ctl_cmd_desc *ctl_cmd_find(const char *name)
{
	for (size_t i = 0; i < CTL_CMD_COUNT; i++) {
		if (!strcmp(cmds[i].name, name))
			return &cmds[i];
	}
	return NULL;
}

const struct ctl_cmd_desc *ctl_cmd_get(enum ctl_cmd cmd)
{
	return &cmds[cmd];
}

const char *ctl_op_name(enum ctl_op op)
{
	return op <= CTL_OP_OPEN ? op_names[op] : NULL;
}

static const struct opt_desc *opt_find(const char *name, enum ctl_opt *id)
{
	for (size_t i = 0; i < CTL_O_COUNT_ALL; i++) {
		if (!strcmp(opts[i].name, name)) {
			*id = (enum ctl_opt)i;
			return &opts[i];
		}
	}
	return NULL;
}

/* Shown input: the token, cut at 60 bytes, control bytes escaped. Returns buf. */
static const char *shown(const char *tok, struct ctl_buf *buf)
{
	char head[64];

	snprintf(head, sizeof(head), "%.60s%s", tok, strlen(tok) > 60 ? "..." : "");
	ctl_buf_add_text(buf, head);
	return buf->p ? buf->p : "";
}

/* what = "SIZE" or "--len": names the value in messages. */
static int number(struct parse *ps, const char *what, const char *tok, bool is_size, uint64_t max,
		  uint64_t *out)
{
	struct ctl_buf b = { 0 };
	int rc = is_size ? units_parse_size(tok, out) : units_parse_u64(tok, out);

	if (rc == 0 && *out > max)
		rc = -ERANGE;
	if (rc == -EINVAL)
		fail(ps, rc, "%s '%s' is not a number (accepted: %s)", what, shown(tok, &b),
		     is_size ? "4096, 8K, 2M, 1G" : "decimal digits, e.g. 250");
	else if (rc == -ERANGE)
		fail(ps, rc, "%s '%s' is out of range (largest: %llu)", what, shown(tok, &b),
		     (unsigned long long)max);
	ctl_buf_free(&b);
	return rc;
}

/* Checks a PATH's length, its own and its components', and keeps it as given: the daemon
 * normalises it (fs/path.h, path_normalize()), where "." and ".." can be resolved
 * against its directories. */
static int path_value(struct parse *ps, const struct ctl_token *tok)
{
	struct ctl_buf b = { 0 };
	const char *p = tok->s, *end;
	int rc = 0;

	for (; *p && !rc; p = *end ? end + 1 : end) {
		end = strchrnul(p, '/');
		if (end - p > NAME_MAX)
			rc = fail(ps, -ENAMETOOLONG,
				  "PATH '%s' has a component longer than %d bytes",
				  shown(tok->s, &b), NAME_MAX);
	}
	if (!rc && tok->len >= PATH_MAX)
		rc = fail(ps, -ENAMETOOLONG, "PATH is longer than %d bytes", PATH_MAX - 1);
	ctl_buf_free(&b);
	if (!rc)
		ps->req->path = strdup(tok->s);
	if (!rc && !ps->req->path)
		rc = fail(ps, -ENOMEM, "out of memory");
	return rc;
}

static int bytes_dup(struct parse *ps, const struct ctl_token *tok, uint8_t **out, size_t *len)
{
	*out = malloc(tok->len + 1);
	if (!*out)
		return fail(ps, -ENOMEM, "out of memory");
	memcpy(*out, tok->s, tok->len + 1);
	*len = tok->len;
	return 0;
}

static int op_value(struct parse *ps, const char *what, const char *tok)
{
	struct ctl_buf b = { 0 };

	for (int op = CTL_OP_READ; op <= CTL_OP_OPEN; op++) {
		if (!strcmp(tok, op_names[op])) {
			ps->req->op = (enum ctl_op)op;
			return 0;
		}
	}
	fail(ps, -EINVAL, "%s '%s' is not an operation (accepted: read, write, fsync, open)", what,
	     shown(tok, &b));
	ctl_buf_free(&b);
	return -EINVAL;
}

static int positional(struct parse *ps, const struct ctl_token *tok)
{
	struct ctl_req *r = ps->req;
	enum ctl_arg a = ps->d->args[ps->npos];

	switch (a) {
	case CTL_A_PATH:
		return path_value(ps, tok);
	case CTL_A_OFF:
		return number(ps, "OFF", tok->s, true, INT64_MAX, &r->off);
	case CTL_A_LEN:
		r->has_range = true;
		return number(ps, "LEN", tok->s, true, INT64_MAX, &r->len);
	case CTL_A_SIZE:
		return number(ps, "SIZE", tok->s, true, INT64_MAX, &r->size);
	case CTL_A_DATA:
		r->src = CTL_SRC_DATA;
		return bytes_dup(ps, tok, &r->data, &r->data_len);
	case CTL_A_ID:
		r->has_id = true;
		return number(ps, "ID", tok->s, false, UINT64_MAX, &r->id);
	case CTL_A_OP:
		return op_value(ps, "OP", tok->s);
	case CTL_A_END:
		break;
	}
	return fail(ps, -EINVAL, "unexpected argument");
}

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* --pattern P: "0xHH" is one byte; any other text is used as it is. */
static int pattern_value(struct parse *ps, const struct ctl_token *tok)
{
	struct ctl_req *r = ps->req;
	const char *t = tok->s;

	if (r->src == CTL_SRC_NONE)
		r->src = CTL_SRC_PATTERN;
	if (tok->len != 4 || t[0] != '0' || (t[1] != 'x' && t[1] != 'X') || !is_hex(t[2]) ||
	    !is_hex(t[3]))
		return bytes_dup(ps, tok, &r->pattern, &r->pattern_len);
	r->pattern = malloc(2);
	if (!r->pattern)
		return fail(ps, -ENOMEM, "out of memory");
	r->pattern[0] = (uint8_t)strtoul(t + 2, NULL, 16);
	r->pattern[1] = 0;
	r->pattern_len = 1;
	return 0;
}

static int errno_value(struct parse *ps, const char *name, const char *tok, int *out)
{
	struct ctl_buf b = { 0 };
	int e = ctl_errno_parse(tok);

	if (e < 0)
		fail(ps, -EINVAL,
		     "%s '%s' is not an errno (accepted: a name such as EIO or ENOSPC, or a "
		     "number from 1 to %d)",
		     name, shown(tok, &b), CTL_ERRNO_MAX);
	else
		*out = e;
	ctl_buf_free(&b);
	return e < 0 ? -EINVAL : 0;
}

static int from_value(struct parse *ps, const struct ctl_token *tok)
{
	struct ctl_buf b = { 0 };

	if (tok->s[0] != '/') {
		fail(ps, -EINVAL, "--from '%s' is not an absolute path", shown(tok->s, &b));
		ctl_buf_free(&b);
		return -EINVAL;
	}
	ps->req->from = strdup(tok->s);
	if (!ps->req->from)
		return fail(ps, -ENOMEM, "out of memory");
	if (ps->req->src == CTL_SRC_NONE)
		ps->req->src = CTL_SRC_FILE;
	return 0;
}

/* Where the number of a numeric option goes; NULL for the others. */
static uint64_t *number_slot(struct ctl_req *r, enum ctl_opt id)
{
	switch (id) {
	case CTL_O_SINCE:
		r->has_since = true;
		return &r->since;
	case CTL_O_LEN:
		return &r->len;
	case CTL_O_COUNT:
		r->has_count = true;
		return &r->count;
	case CTL_O_MS:
		return &r->ms;
	case CTL_O_AFTER:
		r->has_after = true;
		return &r->after;
	case CTL_O_BYTES:
		r->has_bytes = true;
		return &r->bytes;
	case CTL_O_PAGES:
		r->has_pages = true;
		return &r->pages;
	default:
		return NULL;
	}
}

/* Stores the value tok of option id. */
static int option_value(struct parse *ps, enum ctl_opt id, const struct ctl_token *tok)
{
	const struct opt_desc *o = &opts[id];
	struct ctl_req *r = ps->req;

	if (o->kind == OPT_NUMBER || o->kind == OPT_SIZE)
		return number(ps, o->name, tok->s, o->kind == OPT_SIZE, o->max, number_slot(r, id));
	switch (id) {
	case CTL_O_PATTERN:
		return pattern_value(ps, tok);
	case CTL_O_FROM:
		return from_value(ps, tok);
	case CTL_O_ERRNO:
		r->has_errno = true;
		return errno_value(ps, "--errno", tok->s, &r->error);
	case CTL_O_OP:
		return op_value(ps, "--op", tok->s);
	default:
		return 0;
	}
}

static void flag_set(struct ctl_req *r, enum ctl_opt id)
{
	if (id == CTL_O_FOLLOW)
		r->follow = true;
	else if (id == CTL_O_NO_NOTIFY)
		r->no_notify = true;
	else if (id == CTL_O_VANISH)
		r->vanish = true;
}

/* "--follow, --since SEQ" for the options of d, into b. */
static const char *opts_list(const struct ctl_cmd_desc *d, struct ctl_buf *b)
{
	for (size_t i = 0; i < CTL_O_COUNT_ALL; i++) {
		if (!(d->opts & CTL_OPT(i)))
			continue;
		ctl_buf_addf(b, "%s%s%s%s", b->len ? ", " : "", opts[i].name,
			     opts[i].meta ? " " : "", opts[i].meta ? opts[i].meta : "");
	}
	return b->p ? b->p : "";
}

static int unknown_option(struct parse *ps, const char *tok)
{
	struct ctl_buf b = { 0 }, list = { 0 };

	if (ps->d->opts)
		fail(ps, -EINVAL, "unknown option '%s' (accepted: %s)", shown(tok, &b),
		     opts_list(ps->d, &list));
	else
		fail(ps, -EINVAL, "unknown option '%s' (%s takes no options)", shown(tok, &b),
		     ps->d->name);
	ctl_buf_free(&b);
	ctl_buf_free(&list);
	return -EINVAL;
}

static bool looks_like_option(const char *s)
{
	return s[0] == '-' && s[1] == '-' && s[2] != '\0';
}

static bool is_option(const struct ctl_token *tok)
{
	return !tok->is_quoted && looks_like_option(tok->s);
}

/* Handles the option at toks[*i], and its value; advances *i past what it used. */
static int option(struct parse *ps, const struct ctl_tokens *toks, size_t *i)
{
	const struct ctl_token *tok = &toks->v[*i];
	const struct opt_desc *o;
	enum ctl_opt id;

	o = opt_find(tok->s, &id);
	if (!o || !(ps->d->opts & CTL_OPT(id)))
		return unknown_option(ps, tok->s);
	if (ps->opts_seen & CTL_OPT(id))
		return fail(ps, -EINVAL, "option '%s' given twice", o->name);
	ps->opts_seen |= CTL_OPT(id);
	if (!o->meta) {
		flag_set(ps->req, id);
		return 0;
	}
	if (*i + 1 >= toks->n || is_option(&toks->v[*i + 1]) ||
	    (!toks->v[*i + 1].is_quoted && !strcmp(toks->v[*i + 1].s, "--")))
		return fail(ps, -EINVAL, "option '%s' needs an argument %s (usage: %s)", o->name,
			    o->meta, ps->d->usage);
	(*i)++;
	return option_value(ps, id, &toks->v[*i]);
}

static size_t max_args(const struct ctl_cmd_desc *d)
{
	size_t n = 0;

	while (n < 4 && d->args[n] != CTL_A_END)
		n++;
	return n;
}

/* Walks the tokens after the command name: options anywhere, "--" ends them. */
static int arguments(struct parse *ps, const struct ctl_tokens *toks)
{
	struct ctl_buf b = { 0 };
	bool is_dashdash = false;
	int rc = 0;

	for (size_t i = 1; i < toks->n && !rc; i++) {
		const struct ctl_token *tok = &toks->v[i];

		if (!is_dashdash && !tok->is_quoted && !strcmp(tok->s, "--"))
			is_dashdash = true;
		else if (!is_dashdash && is_option(tok))
			rc = option(ps, toks, &i);
		else if (ps->npos >= max_args(ps->d))
			rc = fail(ps, -EINVAL, "unexpected argument '%s' (usage: %s)",
				  shown(tok->s, &b), ps->d->usage);
		else {
			rc = positional(ps, tok);
			ps->npos++;
		}
	}
	ctl_buf_free(&b);
	return rc;
}

/* Counts missing positionals and required options once all tokens are read. */
static int completeness(struct parse *ps)
{
	const struct ctl_cmd_desc *d = ps->d;
	unsigned missing = d->opts_needed & ~ps->opts_seen;

	if (!(d->nargs_ok & NARGS(ps->npos)))
		return fail(ps, -EINVAL, "missing %s (usage: %s)", arg_names[d->args[ps->npos]],
			    d->usage);
	for (size_t i = 0; i < CTL_O_COUNT_ALL; i++) {
		if (missing & CTL_OPT(i))
			return fail(ps, -EINVAL, "missing option %s %s (usage: %s)", opts[i].name,
				    opts[i].meta, d->usage);
	}
	return 0;
}

static int range_check(struct parse *ps, const char *what)
{
	const struct ctl_req *r = ps->req;

	if (r->len > (uint64_t)INT64_MAX - r->off)
		return fail(ps, -ERANGE, "OFF + %s passes the largest file offset (%lld)", what,
			    (long long)INT64_MAX);
	return 0;
}

/* write: exactly one data source; --len goes with --pattern, and may go with --from. */
static int write_check(struct parse *ps)
{
	struct ctl_req *r = ps->req;
	bool has_data = ps->npos == 3, has_pattern = ps->opts_seen & O(PATTERN);
	bool has_from = ps->opts_seen & O(FROM), has_len = ps->opts_seen & O(LEN);

	if (has_data + has_pattern + has_from == 0)
		return fail(ps, -EINVAL,
			    "no data: give DATA, --pattern P --len N or --from FILE "
			    "(usage: %s)",
			    ps->d->usage);
	if (has_data + has_pattern + has_from > 1)
		return fail(ps, -EINVAL, "%s and %s are exclusive: give exactly one data source",
			    has_data ? "DATA" : "--pattern", has_from ? "--from" : "--pattern");
	if (has_pattern && !has_len)
		return fail(ps, -EINVAL, "--pattern needs --len N");
	if (has_len && has_data)
		return fail(ps, -EINVAL, "--len goes only with --pattern or --from");
	if (has_pattern && r->pattern_len == 0)
		return fail(ps, -EINVAL, "--pattern is empty");
	if (has_len && r->len == 0)
		return fail(ps, -EINVAL, "--len must be at least 1");
	if (has_data)
		r->len = r->data_len;
	return 0;
}

/* torn: exactly one of --bytes and --pages. */
static int torn_check(struct parse *ps)
{
	const struct ctl_req *r = ps->req;

	if (!r->has_bytes && !r->has_pages)
		return fail(ps, -EINVAL,
			    "missing --bytes N or --pages N: what persists of the write "
			    "(usage: %s)",
			    ps->d->usage);
	if (r->has_bytes && r->has_pages)
		return fail(ps, -EINVAL, "--bytes and --pages are exclusive: give one");
	return 0;
}

/* The checks that span tokens, once every token is stored. */
static int semantics(struct parse *ps)
{
	struct ctl_req *r = ps->req;
	int rc = 0;

	if (r->has_range && r->len == 0)
		return fail(ps, -EINVAL,
			    "LEN must be at least 1 (leave out OFF LEN for the whole "
			    "file)");
	if (r->has_count && r->count == 0)
		return fail(ps, -EINVAL, "--count must be at least 1 (leave it out for no limit)");
	if (r->has_after && r->after == 0)
		return fail(ps, -EINVAL, "--after must be at least 1 (1: the first request)");
	if (r->src == CTL_SRC_DATA && r->data_len == 0)
		return fail(ps, -EINVAL, "DATA is empty");
	if (r->cmd == CTL_WRITE)
		rc = write_check(ps);
	if (r->cmd == CTL_TORN)
		rc = torn_check(ps);
	if (r->cmd == CTL_STORE)
		r->len = r->data_len;
	if (!rc && (r->has_range || r->cmd == CTL_WRITE || r->cmd == CTL_STORE))
		rc = range_check(ps, r->has_range ? "LEN" : "length");
	return rc;
}

static int command(struct parse *ps, const struct ctl_tokens *toks)
{
	struct ctl_buf b = { 0 }, list = { 0 };

	if (toks->n == 0)
		return fail(ps, -EINVAL, "empty request line");
	ps->d = ctl_cmd_find(toks->v[0].s);
	if (ps->d) {
		ps->req->cmd = ps->d->cmd;
		return 0;
	}
	for (size_t i = 0; i < CTL_CMD_COUNT; i++)
		ctl_buf_addf(&list, "%s%s", i ? ", " : "", cmds[i].name);
	fail(ps, -EINVAL, "unknown command '%s' (commands: %s)", shown(toks->v[0].s, &b),
	     list.p ? list.p : "");
	ctl_buf_free(&b);
	ctl_buf_free(&list);
	return -EINVAL;
}

/* Strips one trailing "\n" or "\r\n" and checks the size and the bytes of the line. */
static int line_check(struct parse *ps, const char *line, size_t *len)
{
	if (*len && line[*len - 1] == '\n')
		(*len)--;
	if (*len && line[*len - 1] == '\r')
		(*len)--;
	if (*len >= CTL_LINE_MAX)
		return fail(ps, -E2BIG, "request line longer than %d bytes", CTL_LINE_MAX);
	if (memchr(line, '\0', *len))
		return fail(ps, -EINVAL, "request contains a NUL byte");
	if (memchr(line, '\n', *len))
		return fail(ps, -EINVAL, "request contains a newline (write it as \\n in quotes)");
	return 0;
}

/* The tokens of one request, the command first, into ps->req. */
static int request(struct parse *ps, const struct ctl_tokens *toks)
{
	int rc = command(ps, toks);

	if (!rc)
		rc = arguments(ps, toks);
	if (!rc)
		rc = completeness(ps);
	if (!rc)
		rc = semantics(ps);
	return rc;
}

/* Where on's "do" is: the first unquoted "do" token, or toks->n. */
static size_t do_index(const struct ctl_tokens *toks)
{
	size_t i = 1;

	while (i < toks->n && (toks->v[i].is_quoted || strcmp(toks->v[i].s, "do")))
		i++;
	return i;
}

/* on OP PATH [OFF LEN] [--after N] do COMMAND [ARGS]: the trigger, then its action, a
 * request of its own (errors in it are prefixed "do: "). */
static int trigger_request(struct parse *ps, const struct ctl_tokens *toks)
{
	size_t k = do_index(toks);
	struct ctl_tokens head = { .v = toks->v, .n = k };
	struct ctl_tokens tail = { .v = toks->v + k + 1, .n = k < toks->n ? toks->n - k - 1 : 0 };
	struct parse sub = { .err = ps->err, .errsize = ps->errsize };
	int rc = request(ps, &head);

	if (!rc && tail.n == 0)
		return fail(ps, -EINVAL, "missing 'do COMMAND [ARGS]' (usage: %s)", ps->d->usage);
	if (!rc && !strcmp(tail.v[0].s, "on"))
		return fail(ps, -EINVAL, "a trigger's action cannot be another trigger");
	if (!rc && !(sub.req = ps->req->action = calloc(1, sizeof(*sub.req))))
		return -ENOMEM;
	if (!rc)
		rc = request(&sub, &tail);
	if (rc && sub.req && ps->errsize) {
		char msg[512];

		snprintf(msg, sizeof(msg), "do: %s", ps->err);
		snprintf(ps->err, ps->errsize, "%s", msg);
	}
	return rc;
}

int ctl_parse(const char *line, size_t len, struct ctl_req *out, char *err, size_t errsize)
{
	struct parse ps = { .req = out, .err = err, .errsize = errsize };
	struct ctl_tokens toks = { 0 };
	int rc;

	*out = (struct ctl_req){ 0 };
	if (errsize)
		err[0] = '\0';
	rc = line_check(&ps, line, &len);
	if (rc)
		return rc;
	rc = ctl_tokenize(line, len, &toks, err, errsize);
	if (!rc && toks.n > 0 && !toks.v[0].is_quoted && !strcmp(toks.v[0].s, "on"))
		rc = trigger_request(&ps, &toks);
	else if (!rc)
		rc = request(&ps, &toks);
	ctl_tokens_free(&toks);
	if (rc)
		ctl_req_free(out);
	return rc;
}

void ctl_req_free(struct ctl_req *req)
{
	if (req->action) {
		ctl_req_free(req->action);
		free(req->action);
	}
	free(req->path);
	free(req->data);
	free(req->pattern);
	free(req->from);
	*req = (struct ctl_req){ 0 };
}

/* Walks argv as arguments() walks tokens: the index of the value of option opt, or of the
 * first positional argument of kind want, or -1. */
static int argv_walk(int argc, char *const argv[], const char *opt, enum ctl_arg want)
{
	const struct ctl_cmd_desc *d = argc > 0 ? ctl_cmd_find(argv[0]) : NULL;
	const struct opt_desc *o;
	bool is_dashdash = false;
	enum ctl_opt id;
	size_t npos = 0;

	for (int i = 1; d && i < argc; i++) {
		if (!is_dashdash && !strcmp(argv[i], "--")) {
			is_dashdash = true;
		} else if (!is_dashdash && looks_like_option(argv[i])) {
			o = opt_find(argv[i], &id);
			if (!o || !o->meta || i + 1 >= argc || !strcmp(argv[i + 1], "--") ||
			    looks_like_option(argv[i + 1]))
				continue;
			if (opt && !strcmp(o->name, opt))
				return i + 1;
			i++;
		} else if (npos < max_args(d) && d->args[npos++] == want) {
			return i;
		}
	}
	return -1;
}

int ctl_argv_path_index(int argc, char *const argv[])
{
	return argv_walk(argc, argv, NULL, CTL_A_PATH);
}

int ctl_argv_option_index(int argc, char *const argv[], const char *opt)
{
	return argv_walk(argc, argv, opt, CTL_A_END);
}
