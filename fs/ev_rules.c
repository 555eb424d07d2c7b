/* Events that install and remove fault rules. A fault that cached pages would hide is no
 * fault: installing a read rule drops the cached pages of its range, so mappings fault
 * through it, and removing it drops them again, so healthy data comes back. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "events.h"
#include "kern.h"

static void note_rule(struct ev *e, const struct rule *r)
{
	ev_note(e, "id", "%llu", (unsigned long long)r->id);
	ev_note(e, "op", "%s", rule_op_name(r->op));
	ev_note(e, "off", "%llu", (unsigned long long)r->off);
	ev_note(e, "len", "%llu", (unsigned long long)r->len);
	if (r->kind == RULE_FAIL)
		ev_note(e, "errno", "%s", strerrorname_np(r->err));
	else
		ev_note(e, "ms", "%u", r->ms);
	if (r->count)
		ev_note(e, "count", "%llu", (unsigned long long)r->count);
}

/* Drops the cached pages a read rule covers. */
static int inval_rule(struct sfs *fs, const struct rule *r)
{
	if (r->op != RULE_READ)
		return 0;
	return kern_inval(fs, r->ino, (off_t)r->off, (off_t)r->len);
}

int ev_rule_add(struct sfs *fs, struct ev_result *res, const char *rel, struct rule *rule)
{
	struct bk_attr a;
	struct ev e;
	int rc;

	ev_begin(&e, fs, res, rule->kind == RULE_FAIL ? "fail" : "delay", rel);
	rc = ev_file(&e, rel, &a);
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

static void list_one(void *ctx, const struct rule *rule)
{
	struct listing *l = ctx;
	char key[32], what[48];

	snprintf(key, sizeof(key), "rule%llu", (unsigned long long)rule->id);
	if (rule->kind == RULE_FAIL)
		snprintf(what, sizeof(what), "errno=%s", strerrorname_np(rule->err));
	else
		snprintf(what, sizeof(what), "ms=%u", rule->ms);
	ev_result_note(l->res, key, "%s %s op=%s off=%llu len=%llu %s count=%llu hits=%llu",
		       rule->kind == RULE_FAIL ? "fail" : "delay", rule->path,
		       rule_op_name(rule->op), (unsigned long long)rule->off,
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
