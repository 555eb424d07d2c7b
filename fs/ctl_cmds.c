/* The daemon's command table: one handler per control command. Handlers for events call
 * the event engine (events.c, revoke.c); the read-only ones (status, stats, log, rules)
 * are here. Every handler runs on a control connection's thread, never a FUSE worker. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "ctl_cmds.h"
#include "events.h"
#include "fromfile.h"
#include "kern.h"
#include "log.h"
#include "path.h"
#include "trigger.h"

static const char *const plug_names[] = { "on", "unplugging", "off", "vanished" };

static int cmd_status(void *ctx, const struct ctl_req *req, struct ctl_reply *r)
{
	struct sfs *fs = ctx;
	uint64_t started, finished;

	evlog_seqs(fs->evlog, &started, &finished);
	ctl_reply_summary(r, "%s on %s, backend %s", fs->source, fs->mountpoint,
			  plug_names[atomic_load(&fs->plug)]);
	ctl_reply_kv(r, "version", "%s", SIGBUSFS_VERSION);
	ctl_reply_kv(r, "pid", "%d", (int)getpid());
	ctl_reply_kv(r, "mountpoint", "%s", fs->mountpoint);
	ctl_reply_kv(r, "source", "%s", fs->source);
	ctl_reply_kv(r, "backend", "%s", bk_name(fs->bk));
	ctl_reply_kv(r, "cache", "%s", cache_mode_name(fs->cache_mode));
	ctl_reply_kv(r, "plug", "%s", plug_names[atomic_load(&fs->plug)]);
	ctl_reply_kv(r, "seq", "%llu", (unsigned long long)started);
	ctl_reply_kv(r, "done", "%llu", (unsigned long long)finished);
	ctl_reply_kv(r, "inodes", "%llu", (unsigned long long)itab_count(fs->itab));
	ctl_reply_kv(r, "rules", "%u", rules_count(fs->rules));
	return 0;
}

static void reply_u64(struct ctl_reply *r, const char *key, uint64_t v)
{
	ctl_reply_kv(r, key, "%llu", (unsigned long long)v);
}

/* Turns an event's result into the reply: its notes become key=value lines, its summary
 * and message the reply's. Returns rc, or the result's own failure; frees res. */
static int reply_result(struct ctl_reply *r, struct ev_result *res, int rc)
{
	for (size_t i = 0; i < res->n; i++)
		ctl_reply_kv(r, res->kv[i].key, "%s", res->kv[i].value);
	if (res->summary)
		ctl_reply_summary(r, "%s", res->summary);
	if (res->errmsg)
		ctl_reply_errmsg(r, "%s", res->errmsg);
	if (rc == 0 && res->err)
		rc = res->err;
	ev_result_free(res);
	return rc;
}

/* With -o powercut: what ino (0: the mount) changed since it was last made durable. */
static void reply_unsynced(struct sfs *fs, uint64_t ino, struct ctl_reply *r)
{
	struct durable_count c;

	if (!fs->durable)
		return;
	c = durable_pending(fs->durable, fs->bk, ino);
	reply_u64(r, "unsynced_files", c.files);
	reply_u64(r, "unsynced_bytes", c.bytes);
}

static int stats_file(struct sfs *fs, const char *rel, struct ctl_reply *r)
{
	static const char *const states[] = { "live", "revoking", "revoked", "stale" };
	static const char *const names[IC_NR] = { "reads", "writes", "invals", "errors",
						  "lost_bytes" };
	struct inode_info info = { 0 };
	struct bk_attr a;
	uint64_t parent;
	int rc = path_resolve(fs, rel, &parent, &a);

	if (rc < 0) {
		ctl_reply_errmsg(r, "%s: %s", rel, strerror(-rc));
		return rc;
	}
	inode_info(fs->itab, a.ino, &info);
	reply_u64(r, "ino", a.ino);
	reply_u64(r, "size", a.size);
	reply_u64(r, "kernel_refs", info.nlookup);
	ctl_reply_kv(r, "state", "%s", states[info.state]);
	for (int i = 0; i < IC_NR; i++)
		reply_u64(r, names[i], info.count[i]);
	reply_unsynced(fs, a.ino, r);
	return 0;
}

/* The notifications sent, by kind and in all, and one "op" record per operation that was
 * requested at least once. */
static void stats_ops(struct sfs *fs, struct ctl_reply *r)
{
	uint64_t total = 0, n, errs;
	char key[32];

	for (int i = 0; i < SFS_N_NR; i++) {
		n = atomic_load(&fs->stats.notifications[i]);
		snprintf(key, sizeof(key), "notify_%s", sfs_notify_names[i]);
		reply_u64(r, key, n);
		total += n;
	}
	reply_u64(r, "notifications", total);
	for (int i = 0; i < SFS_OP_NR; i++) {
		n = atomic_load(&fs->stats.requests[i]);
		errs = atomic_load(&fs->stats.op_errors[i]);
		if (n)
			ctl_reply_kv(r, "op", "name=%s requests=%llu errors=%llu", sfs_op_names[i],
				     (unsigned long long)n, (unsigned long long)errs);
	}
}

static int cmd_stats(void *ctx, const struct ctl_req *req, struct ctl_reply *r)
{
	struct sfs *fs = ctx;
	struct statvfs sv;

	if (req->path)
		return stats_file(fs, req->path, r);
	reply_u64(r, "reads", atomic_load(&fs->stats.reads));
	reply_u64(r, "read_bytes", atomic_load(&fs->stats.read_bytes));
	reply_u64(r, "writes", atomic_load(&fs->stats.writes));
	reply_u64(r, "write_bytes", atomic_load(&fs->stats.write_bytes));
	reply_u64(r, "invals", atomic_load(&fs->stats.invals));
	reply_u64(r, "errors", atomic_load(&fs->stats.errors));
	reply_u64(r, "lost_bytes", atomic_load(&fs->stats.lost_bytes));
	reply_u64(r, "inodes", itab_count(fs->itab));
	reply_unsynced(fs, 0, r);
	stats_ops(fs, r);
	if (bk_statfs(fs->bk, &sv) == 0) {
		reply_u64(r, "space_bytes", (uint64_t)sv.f_blocks * sv.f_frsize);
		reply_u64(r, "free_bytes", (uint64_t)sv.f_bfree * sv.f_frsize);
	}
	return 0;
}

static int cmd_inval(void *ctx, const struct ctl_req *req, struct ctl_reply *r)
{
	struct ev_result res = { 0 };

	return reply_result(r, &res,
			    ev_inval(ctx, &res, req->path, req->has_range ? req->off : 0,
				     req->has_range ? req->len : 0));
}

/* The bytes of write --pattern P --len N: P repeated. */
static uint8_t *pattern_bytes(const struct ctl_req *req)
{
	uint8_t *buf = malloc(req->len ? req->len : 1);

	for (uint64_t i = 0; buf && i < req->len; i++)
		buf[i] = req->pattern[i % req->pattern_len];
	return buf;
}

/* The bytes of write --from FILE, read by the daemon (same user as the client). */
static int file_bytes(struct sfs *fs, const struct ctl_req *req, uint8_t **out, size_t *len_out,
		      struct ctl_reply *r)
{
	char err[PATH_MAX + 256];
	int rc = fromfile_read(req->from, fs->mountpoint, req->len, out, len_out, err, sizeof(err));

	if (rc < 0)
		ctl_reply_errmsg(r, "%s", err);
	return rc;
}

/* Fails fast, before a byte is made, a write of len bytes that cannot fit: more than the
 * backend has free beyond what the file holds already (all of which it might overwrite).
 * 0 when it may fit, or when the backend cannot tell (no statfs, no limit); the write
 * itself has the last word. */
static int space_check(struct sfs *fs, const char *rel, uint64_t len, struct ctl_reply *r)
{
	struct statvfs sv;
	struct bk_attr a;
	uint64_t parent, held, avail;

	if (bk_statfs(fs->bk, &sv) < 0 || sv.f_blocks == 0 || path_resolve(fs, rel, &parent, &a))
		return 0;
	held = a.blocks * 512;
	avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	if (len <= held || len - held <= avail)
		return 0;
	ctl_reply_errmsg(r, "%s: %llu bytes cannot fit: the backend has %llu bytes free", rel,
			 (unsigned long long)len, (unsigned long long)avail);
	return -ENOSPC;
}

static int cmd_write(void *ctx, const struct ctl_req *req, struct ctl_reply *r)
{
	struct ev_result res = { 0 };
	uint8_t *owned = NULL;
	const uint8_t *data = req->data;
	size_t len = req->data_len;
	int rc = 0;

	if (req->src == CTL_SRC_PATTERN) {
		rc = space_check(ctx, req->path, req->len, r);
		data = owned = rc == 0 ? pattern_bytes(req) : NULL;
		len = req->len;
		if (rc == 0 && !owned)
			rc = -ENOMEM;
	} else if (req->src == CTL_SRC_FILE) {
		rc = file_bytes(ctx, req, &owned, &len, r);
		data = owned;
	}
	if (rc == 0)
		rc = reply_result(
			r, &res,
			ev_write(ctx, &res, req->path, req->off, data, len, !req->no_notify));
	free(owned);
	return rc;
}

static int cmd_truncate(void *ctx, const struct ctl_req *req, struct ctl_reply *r)
{
	struct ev_result res = { 0 };

	return reply_result(r, &res, ev_truncate(ctx, &res, req->path, req->size));
}

static int cmd_punch(void *ctx, const struct ctl_req *req, struct ctl_reply *r)
{
	struct ev_result res = { 0 };

	return reply_result(r, &res, ev_punch(ctx, &res, req->path, req->off, req->len));
}

static int cmd_revoke(void *ctx, const struct ctl_req *req, struct ctl_reply *r)
{
	struct ev_result res = { 0 };

	return reply_result(r, &res,
			    ev_revoke(ctx, &res, req->path, req->has_errno ? req->error : EIO));
}

static int cmd_unplug(void *ctx, const struct ctl_req *req, struct ctl_reply *r)
{
	struct ev_result res = { 0 };

	return reply_result(r, &res, ev_unplug(ctx, &res, req->vanish));
}

static int cmd_replug(void *ctx, const struct ctl_req *req, struct ctl_reply *r)
{
	struct ev_result res = { 0 };

	return reply_result(r, &res, ev_replug(ctx, &res));
}

static int cmd_store(void *ctx, const struct ctl_req *req, struct ctl_reply *r)
{
	struct ev_result res = { 0 };

	return reply_result(r, &res,
			    ev_store(ctx, &res, req->path, req->off, req->data, req->data_len));
}

static int cmd_audit(void *ctx, const struct ctl_req *req, struct ctl_reply *r)
{
	struct ev_result res = { 0 };

	return reply_result(r, &res, ev_audit(ctx, &res, req->path));
}

static int cmd_abort(void *ctx, const struct ctl_req *req, struct ctl_reply *r)
{
	struct ev_result res = { 0 };

	return reply_result(r, &res, ev_abort(ctx, &res));
}

static int cmd_powercut(void *ctx, const struct ctl_req *req, struct ctl_reply *r)
{
	struct ev_result res = { 0 };

	return reply_result(r, &res, ev_powercut(ctx, &res, req->path));
}

static int cmd_sync(void *ctx, const struct ctl_req *req, struct ctl_reply *r)
{
	struct ev_result res = { 0 };

	return reply_result(r, &res, ev_sync(ctx, &res, req->path));
}

static int rule_from_req(const struct ctl_req *req, enum rule_kind kind, struct rule *out)
{
	static const enum rule_op ops[] = {
		[CTL_OP_READ] = RULE_READ,
		[CTL_OP_WRITE] = RULE_WRITE,
		[CTL_OP_FSYNC] = RULE_FSYNC,
		[CTL_OP_OPEN] = RULE_OPEN,
	};

	memset(out, 0, sizeof(*out));
	out->kind = kind;
	out->op = ops[req->op];
	out->off = req->has_range ? req->off : 0;
	out->len = req->has_range ? req->len : 0;
	out->err = req->has_errno ? req->error : EIO;
	out->ms = (unsigned)req->ms;
	out->count = req->has_count ? req->count : 0;
	if (kind == RULE_TORN) {
		out->op = RULE_WRITE;
		out->count = 1;
		out->is_pages = req->has_pages;
		out->keep = req->has_pages ? req->pages : req->bytes;
	}
	return 0;
}

static int cmd_fail(void *ctx, const struct ctl_req *req, struct ctl_reply *r)
{
	struct ev_result res = { 0 };
	struct rule rule;

	rule_from_req(req, RULE_FAIL, &rule);
	return reply_result(r, &res, ev_rule_add(ctx, &res, req->path, &rule));
}

static int cmd_delay(void *ctx, const struct ctl_req *req, struct ctl_reply *r)
{
	struct ev_result res = { 0 };
	struct rule rule;

	rule_from_req(req, RULE_DELAY, &rule);
	return reply_result(r, &res, ev_rule_add(ctx, &res, req->path, &rule));
}

static int cmd_torn(void *ctx, const struct ctl_req *req, struct ctl_reply *r)
{
	struct ev_result res = { 0 };
	struct rule rule;

	rule_from_req(req, RULE_TORN, &rule);
	return reply_result(r, &res, ev_rule_add(ctx, &res, req->path, &rule));
}

/* The kind of rule fail, delay and torn add. */
static enum rule_kind rule_kind_of(enum ctl_cmd cmd)
{
	return cmd == CTL_FAIL ? RULE_FAIL : cmd == CTL_DELAY ? RULE_DELAY : RULE_TORN;
}

/* on OP PATH ... do ACTION: the trigger, and the rule it arms (THEN_RULE). */
static int trigger_from_req(const struct ctl_req *req, struct rule *t, struct rule *then)
{
	const struct ctl_req *a = req->action;

	rule_from_req(req, RULE_TRIGGER, t);
	t->count = req->has_after ? req->after : 1;
	switch (a->cmd) {
	case CTL_UNPLUG:
		t->then = a->vanish ? THEN_UNPLUG_VANISH : THEN_UNPLUG;
		return 0;
	case CTL_REVOKE:
	case CTL_POWERCUT:
		t->then = a->cmd == CTL_REVOKE ? THEN_REVOKE : THEN_POWERCUT;
		t->err = a->has_errno ? a->error : EIO;
		snprintf(t->then_path, sizeof(t->then_path), "%s", a->path ? a->path : "");
		return 0;
	case CTL_FAIL:
	case CTL_DELAY:
	case CTL_TORN:
		t->then = THEN_RULE;
		return rule_from_req(a, rule_kind_of(a->cmd), then);
	default:
		return -EINVAL;
	}
}

static int cmd_on(void *ctx, const struct ctl_req *req, struct ctl_reply *r)
{
	struct ev_result res = { 0 };
	struct rule t, then;

	if (trigger_from_req(req, &t, &then) < 0) {
		ctl_reply_errmsg(
			r,
			"a trigger can do unplug [--vanish], powercut, revoke, fail, "
			"delay or torn; %s would have to hold later requests while the kernel "
			"waits for pages they hold",
			ctl_cmd_get(req->action->cmd)->name);
		return -EOPNOTSUPP;
	}
	return reply_result(r, &res,
			    ev_trigger_add(ctx, &res, req->path, &t,
					   t.then == THEN_RULE ? &then : NULL, req->action->path));
}

static int cmd_rules(void *ctx, const struct ctl_req *req, struct ctl_reply *r)
{
	struct ev_result res = { 0 };

	return reply_result(r, &res, ev_rules_list(ctx, &res));
}

static int cmd_clear(void *ctx, const struct ctl_req *req, struct ctl_reply *r)
{
	struct ev_result res = { 0 };

	return reply_result(r, &res, ev_rule_clear(ctx, &res, req->has_id, req->id));
}

static int log_as_kv(void *ctx, const struct event *e)
{
	char line[EVLOG_TEXT_MAX + 80];

	event_format(e, line, sizeof(line));
	return ctl_reply_kv(ctx, "event", "%s", line) < 0;
}

static int log_as_stream(void *ctx, const struct event *e)
{
	char line[EVLOG_TEXT_MAX + 80];

	event_format(e, line, sizeof(line));
	return ctl_reply_stream(ctx, line) < 0;
}

/* log --follow: what is kept after --since (none without it), then each new event, until
 * the client goes away or the server stops. */
static int follow_log(struct sfs *fs, const struct ctl_req *req, struct ctl_reply *r)
{
	uint64_t since = req->since, started;

	if (!req->has_since)
		evlog_seqs(fs->evlog, &started, &since);
	if (ctl_reply_stream(r, "following") < 0)
		return 0;
	while (ctl_reply_alive(r) == 0) {
		if (evlog_read(fs->evlog, since, log_as_stream, r, &since) != 0)
			break;
		evlog_wait(fs->evlog, since, 100);
	}
	return 0;
}

static int cmd_log(void *ctx, const struct ctl_req *req, struct ctl_reply *r)
{
	struct sfs *fs = ctx;
	uint64_t last;

	if (req->follow)
		return follow_log(fs, req, r);
	trigger_drain(fs); /* the events triggers fired are in the log before it is read */
	evlog_read(fs->evlog, req->has_since ? req->since : 0, log_as_kv, r, &last);
	ctl_reply_summary(r, "events up to seq %llu", (unsigned long long)last);
	return 0;
}

/* PATH, as given, becomes its canonical form (fs/path.h) before any handler sees it. */
static int prepare(void *ctx, struct ctl_req *req, struct ctl_reply *r)
{
	char err[PATH_MAX + 128], *canon;
	int rc;

	if (req->action) { /* on ... do COMMAND PATH: the action's path too */
		rc = prepare(ctx, req->action, r);
		if (rc < 0)
			return rc;
	}
	if (!req->path)
		return 0;
	rc = path_normalize(ctx, req->path, &canon, err, sizeof(err));
	if (rc < 0) {
		ctl_reply_errmsg(r, "%s", err);
		return rc;
	}
	free(req->path);
	req->path = canon;
	return 0;
}

static const struct ctl_handlers handlers = {
	.cmd = {
		[CTL_STATUS] = cmd_status,
		[CTL_STATS] = cmd_stats,
		[CTL_LOG] = cmd_log,
		[CTL_INVAL] = cmd_inval,
		[CTL_WRITE] = cmd_write,
		[CTL_TRUNCATE] = cmd_truncate,
		[CTL_PUNCH] = cmd_punch,
		[CTL_REVOKE] = cmd_revoke,
		[CTL_UNPLUG] = cmd_unplug,
		[CTL_REPLUG] = cmd_replug,
		[CTL_FAIL] = cmd_fail,
		[CTL_DELAY] = cmd_delay,
		[CTL_RULES] = cmd_rules,
		[CTL_CLEAR] = cmd_clear,
		[CTL_STORE] = cmd_store,
		[CTL_AUDIT] = cmd_audit,
		[CTL_ABORT] = cmd_abort,
		[CTL_POWERCUT] = cmd_powercut,
		[CTL_SYNC] = cmd_sync,
		[CTL_ON] = cmd_on,
		[CTL_TORN] = cmd_torn,
	},
	.prepare = prepare,
	.log = ctl_cmds_log,
};

void ctl_cmds_log(void *ctx, const char *msg)
{
	log_warn("%s", msg);
}

/* Daemons killed with SIGKILL leave their sockets behind in the default directory. */
static void remove_stale(const char *path)
{
	int n = ctl_remove_stale(path);

	if (n > 0)
		log_info("removed %d control sockets of daemons that are gone, next to %s", n,
			 path);
	else if (n < 0)
		log_warn("cannot look for stale control sockets next to %s: %s", path,
			 strerror(-n));
}

int ctl_cmds_start(struct sfs *fs, const char *path, struct ctl_server **out)
{
	char buf[108];
	int rc = path ? 0 : ctl_default_path(buf, sizeof(buf));

	if (rc == 0)
		fs->ctl_path = strdup(path ? path : buf);
	if (rc == 0 && !fs->ctl_path)
		rc = -ENOMEM;
	if (rc == 0)
		rc = ctl_listen(fs->ctl_path, &handlers, NULL, fs, out);
	if (rc < 0)
		log_err("control socket %s: %s", path ? path : buf, strerror(-rc));
	/* only the default directory follows the PID.sock naming ctl_remove_stale() relies on */
	if (rc == 0 && !path)
		remove_stale(fs->ctl_path);
	return rc;
}
