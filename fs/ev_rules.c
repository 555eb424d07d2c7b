/* Events that install and remove fault rules. A fault that cached pages would hide is no
 * fault: installing a read rule drops the cached pages of its range, so mappings fault
 * through it, and removing it drops them again, so healthy data comes back. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "events.h"
#include "kern.h"
#include "path.h"
#include "trigger.h"

static void note_rule(struct ev *e, const struct rule *r)
{
	ev_note(e, "id", "%llu", (unsigned long long)r->id);
	ev_note(e, "op", "%s", rule_op_name(r->op));
	ev_note(e, "off", "%llu", (unsigned long long)r->off);
	ev_note(e, "len", "%llu", (unsigned long long)r->len);
	if (r->kind == RULE_FAIL)
		ev_note(e, "errno", "%s", strerrorname_np(r->err));
	else if (r->kind == RULE_DELAY)
		ev_note(e, "ms", "%u", r->ms);
	else
		ev_note(e, r->is_pages ? "pages" : "bytes", "%llu", (unsigned long long)r->keep);
	if (r->count && r->kind != RULE_TORN)
		ev_note(e, "count", "%llu", (unsigned long long)r->count);
}

/* Drops the cached pages a read rule covers. */
static int inval_rule(struct sfs *fs, const struct rule *r)
{
	if (r->op != RULE_READ)
		return 0;
	return kern_inval(fs, r->ino, (off_t)r->off, (off_t)r->len);
}

static const char *const kind_names[] = { "fail", "delay", "on", "torn" };

int ev_rule_add(struct sfs *fs, struct ev_result *res, const char *rel, struct rule *rule)
{
	struct bk_attr a;
	struct ev e;
	int rc;

	ev_begin(&e, fs, res, kind_names[rule->kind], rel);
	rc = ev_file(&e, rel, &a);
	if (rc == 0 && rule->kind == RULE_TORN && !fs->durable) {
		ev_result_text(res, EV_ERRMSG,
			       "a torn write needs a mount made with -o powercut (nothing "
			       "tracks what is durable here)");
		rc = -EOPNOTSUPP;
	}
	if (rc == 0 && rule->kind == RULE_TORN)
		rc = trigger_start(fs);
	if (rc < 0)
		return ev_end(&e, rc);
	rule->ino = a.ino;
	snprintf(rule->path, sizeof(rule->path), "%s", rel);
	rc = rules_add(fs->rules, rule, &rule->id);
	if (rc == 0)
		rc = inval_rule(fs, rule);
	if (rc == 0)
		note_rule(&e, rule);
	return ev_end(&e, rc);
}

int ev_torn_fired(struct sfs *fs, struct ev_result *res, const struct rule *t, uint64_t off,
		  uint64_t len, uint64_t keep)
{
	struct ev e;

	ev_begin(&e, fs, res, "torn", t->path);
	ev_note(&e, "fired", "%llu", (unsigned long long)t->id);
	ev_note(&e, "off", "%llu", (unsigned long long)off);
	ev_note(&e, "len", "%llu", (unsigned long long)len);
	ev_note(&e, "kept", "%llu", (unsigned long long)keep);
	ev_note(&e, "lost", "%llu", (unsigned long long)(len - keep));
	return ev_end(&e, 0);
}

/* Installs the rule a trigger arms, waiting: 0 or -errno with the result's message. */
static int add_waiting(struct ev *e, struct rule *then, const char *then_rel)
{
	struct bk_attr a;
	int rc = ev_file(e, then_rel, &a);

	if (rc < 0)
		return rc;
	then->ino = a.ino;
	then->armed_by = UINT64_MAX; /* waits for the trigger */
	snprintf(then->path, sizeof(then->path), "%s", then_rel);
	return rules_add(e->fs->rules, then, &then->id);
}

/* What a revoke or a power cut a trigger fires acts on must be there now: a file or a
 * directory but the root (revoke), a regular file (powercut PATH). */
static int check_target(struct ev *e, const struct rule *t)
{
	struct bk_attr a;
	uint64_t parent;
	int rc;

	if (t->then == THEN_POWERCUT && t->then_path[0])
		return ev_file(e, t->then_path, &a);
	if (t->then != THEN_REVOKE)
		return 0;
	rc = path_resolve(e->fs, t->then_path, &parent, &a);
	if (rc == 0 && a.ino == BK_ROOT_INO)
		rc = -EINVAL;
	if (rc < 0)
		ev_result_text(e->res, EV_ERRMSG, "%s: %s", t->then_path,
			       rc == -EINVAL ? "the root cannot be revoked; use unplug"
					     : strerror(-rc));
	return rc;
}

int ev_trigger_add(struct sfs *fs, struct ev_result *res, const char *rel, struct rule *t,
		   struct rule *then, const char *then_rel)
{
	struct bk_attr a;
	struct ev e;
	int rc;

	ev_begin(&e, fs, res, "on", rel);
	rc = ev_file(&e, rel, &a);
	if (rc == 0 && (t->then == THEN_POWERCUT || (then && then->kind == RULE_TORN)) &&
	    !fs->durable) {
		ev_result_text(res, EV_ERRMSG, "a %s needs a mount made with -o powercut",
			       t->then == THEN_POWERCUT ? "power cut" : "torn write");
		rc = -EOPNOTSUPP;
	}
	if (rc == 0)
		rc = check_target(&e, t);
	if (rc == 0)
		rc = trigger_start(fs);
	if (rc == 0 && then)
		rc = add_waiting(&e, then, then_rel);
	if (rc < 0)
		return ev_end(&e, rc);
	t->ino = a.ino;
	t->then_id = then ? then->id : 0;
	snprintf(t->path, sizeof(t->path), "%s", rel);
	rc = rules_add(fs->rules, t, &t->id);
	if (rc == 0) {
		ev_note(&e, "id", "%llu", (unsigned long long)t->id);
		ev_note(&e, "after", "%llu", (unsigned long long)t->count);
		if (then)
			ev_note(&e, "arms", "%llu", (unsigned long long)then->id);
	}
	return ev_end(&e, rc);
}

int ev_rule_clear(struct sfs *fs, struct ev_result *res, bool has_id, uint64_t id)
{
	struct rule rule;
	uint64_t n = 0;
	struct ev e;
	int rc = 0;
	char idbuf[24];

	snprintf(idbuf, sizeof(idbuf), "%llu", (unsigned long long)id);
	ev_begin(&e, fs, res, "clear", has_id ? idbuf : "all");
	if (has_id) {
		rc = rules_remove(fs->rules, id, &rule);
		if (rc < 0)
			ev_result_text(res, EV_ERRMSG, "no rule with id %llu",
				       (unsigned long long)id);
		if (rc == 0 && ++n)
			rc = inval_rule(fs, &rule);
	}
	while (!has_id && rc == 0 && rules_pop(fs->rules, &rule) == 0) {
		n++;
		rc = inval_rule(fs, &rule);
	}
	if (rc == 0)
		ev_note(&e, "cleared", "%llu", (unsigned long long)n);
	return ev_end(&e, rc);
}

struct listing {
	struct ev_result *res;
	unsigned n;
};

/* "on write f off=0 len=0 after=3 hits=1 do powercut" */
static void list_trigger(struct listing *l, const char *key, const struct rule *t)
{
	static const char *const thens[] = { "unplug", "unplug --vanish", "powercut", "rule",
					     "revoke" };

	ev_result_note(l->res, key,
		       "on %s op=%s off=%llu len=%llu after=%llu hits=%llu do %s%s%.0llu%s%s",
		       t->path, rule_op_name(t->op), (unsigned long long)t->off,
		       (unsigned long long)t->len, (unsigned long long)t->count,
		       (unsigned long long)t->hits, thens[t->then], t->then_id ? " " : "",
		       (unsigned long long)t->then_id, t->then_path[0] ? " " : "", t->then_path);
	l->n++;
}

static void list_one(void *ctx, const struct rule *rule)
{
	struct listing *l = ctx;
	char key[32], what[48];

	snprintf(key, sizeof(key), "rule%llu", (unsigned long long)rule->id);
	if (rule->kind == RULE_TRIGGER) {
		list_trigger(l, key, rule);
		return;
	}
	if (rule->kind == RULE_FAIL)
		snprintf(what, sizeof(what), "errno=%s", strerrorname_np(rule->err));
	else if (rule->kind == RULE_DELAY)
		snprintf(what, sizeof(what), "ms=%u", rule->ms);
	else
		snprintf(what, sizeof(what), "%s=%llu", rule->is_pages ? "pages" : "bytes",
			 (unsigned long long)rule->keep);
	ev_result_note(l->res, key, "%s%s %s op=%s off=%llu len=%llu %s count=%llu hits=%llu",
		       rule->armed_by ? "(waiting for its trigger) " : "", kind_names[rule->kind],
		       rule->path, rule_op_name(rule->op), (unsigned long long)rule->off,
		       (unsigned long long)rule->len, what, (unsigned long long)rule->count,
		       (unsigned long long)rule->hits);
	l->n++;
}

int ev_rules_list(struct sfs *fs, struct ev_result *res)
{
	struct listing l = { .res = res };

	rules_each(fs->rules, list_one, &l);
	ev_result_text(res, EV_SUMMARY, "%u rule%s", l.n, l.n == 1 ? "" : "s");
	return 0;
}
