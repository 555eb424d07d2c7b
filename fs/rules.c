/* The rule list. Rules are few (a test installs a handful), so a list under one mutex
 * is enough; the common case, no rule at all, is an atomic load on the request path. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

struct rule_node {
	struct rule r;
	struct rule_node *next;
};

struct rules {
	pthread_mutex_t lock;
	struct rule_node *head; /* guarded by lock, in id order */
	uint64_t next_id;	/* guarded by lock */
	atomic_uint count;	/* number of rules, read without the lock */
};

int rules_new(struct rules **out)
{
	struct rules *rs = calloc(1, sizeof(*rs));

	*out = rs;
	if (!rs)
		return -ENOMEM;
	pthread_mutex_init(&rs->lock, NULL);
	rs->next_id = 1;
	return 0;
}

void rules_free(struct rules *rs)
{
	struct rule r;

	if (!rs)
		return;
	while (rules_pop(rs, &r) == 0)
		;
	pthread_mutex_destroy(&rs->lock);
	free(rs);
}

int rules_add(struct rules *rs, const struct rule *r, uint64_t *id_out)
{
	struct rule_node *n = calloc(1, sizeof(*n)), **p;

	if (!n)
		return -ENOMEM;
	n->r = *r;
	pthread_mutex_lock(&rs->lock);
	n->r.id = rs->next_id++;
	for (p = &rs->head; *p; p = &(*p)->next)
		;
	*p = n;
	atomic_fetch_add(&rs->count, 1);
	pthread_mutex_unlock(&rs->lock);
	*id_out = n->r.id;
	return 0;
}

/* Unlinks *p and copies the rule out. Called with rs->lock held. */
static void unlink_locked(struct rules *rs, struct rule_node **p, struct rule *out)
{
	struct rule_node *n = *p;

	if (out)
		*out = n->r;
	*p = n->next;
	atomic_fetch_sub(&rs->count, 1);
	free(n);
}

int rules_remove(struct rules *rs, uint64_t id, struct rule *out)
{
	struct rule_node **p;
	int rc = -ENOENT;

	pthread_mutex_lock(&rs->lock);
	for (p = &rs->head; *p; p = &(*p)->next) {
		if ((*p)->r.id == id) {
			unlink_locked(rs, p, out);
			rc = 0;
			break;
		}
	}
	pthread_mutex_unlock(&rs->lock);
	return rc;
}

int rules_pop(struct rules *rs, struct rule *out)
{
	int rc = -ENOENT;

	pthread_mutex_lock(&rs->lock);
	if (rs->head) {
		unlink_locked(rs, &rs->head, out);
		rc = 0;
	}
	pthread_mutex_unlock(&rs->lock);
	return rc;
}

void rules_each(struct rules *rs, void (*fn)(void *ctx, const struct rule *r), void *ctx)
{
	pthread_mutex_lock(&rs->lock);
	for (struct rule_node *n = rs->head; n; n = n->next)
		fn(ctx, &n->r);
	pthread_mutex_unlock(&rs->lock);
}

static bool overlaps(const struct rule *r, uint64_t off, uint64_t len)
{
	uint64_t end = off + (len ? len : 1);

	if (r->op == RULE_FSYNC || r->op == RULE_OPEN)
		return true;
	return end > r->off && (r->len == 0 || off < r->off + r->len);
}

/* Called with rs->lock held: what r does to a request it matches. Returns whether r is
 * used up. */
static bool apply_locked(struct rule *r, int *rc, unsigned *delay_ms, struct rule *fired)
{
	r->hits++;
	if (r->kind == RULE_FAIL && *rc == 0)
		*rc = -r->err;
	if (r->kind == RULE_DELAY)
		*delay_ms += r->ms;
	if (r->kind == RULE_TRIGGER && r->count == 1 && fired->id != 0)
		return false; /* one trigger per request: the next request fires this one */
	if (r->count == 0 || --r->count != 0)
		return false;
	if (r->kind == RULE_TRIGGER)
		*fired = *r;
	return true;
}

static bool matches(const struct rule *r, uint64_t ino, enum rule_op op, uint64_t off, uint64_t len,
		    const struct rule *torn)
{
	return r->armed_by == 0 && r->ino == ino && r->op == op && overlaps(r, off, len) &&
	       (r->kind != RULE_TORN || torn);
}

/* Called with rs->lock held: the torn rule at *p tears this write, unless another did
 * (one per write: this one waits for the next). */
static void take_torn_locked(struct rules *rs, struct rule_node **p, struct rule *torn)
{
	if (torn->id != 0)
		return;
	(*p)->r.hits++;
	unlink_locked(rs, p, torn);
}

int rules_match(struct rules *rs, uint64_t ino, enum rule_op op, uint64_t off, uint64_t len,
		unsigned *delay_ms, struct rule *fired, struct rule *torn)
{
	struct rule_node **p, **torn_p = NULL;
	int rc = 0;

	fired->id = 0;
	if (torn)
		torn->id = 0;
	if (atomic_load(&rs->count) == 0)
		return 0;
	pthread_mutex_lock(&rs->lock);
	for (p = &rs->head; *p;) {
		struct rule *r = &(*p)->r;
		bool is_match = matches(r, ino, op, off, len, torn);

		if (is_match && r->kind == RULE_TORN && !torn_p)
			torn_p = p;
		if (is_match && r->kind != RULE_TORN && apply_locked(r, &rc, delay_ms, fired))
			unlink_locked(rs, p, NULL);
		else
			p = &(*p)->next;
	}
	/* a write a fail rule refuses is not torn: the rule waits for the next */
	if (torn_p && rc == 0)
		take_torn_locked(rs, torn_p, torn);
	pthread_mutex_unlock(&rs->lock);
	return rc;
}

int rules_arm(struct rules *rs, uint64_t id, uint64_t ino, enum rule_op op, uint64_t off,
	      uint64_t len, unsigned *delay_ms, struct rule *torn)
{
	struct rule none = { 0 };
	struct rule_node **p;
	int rc = 0;

	pthread_mutex_lock(&rs->lock);
	for (p = &rs->head; *p && (*p)->r.id != id; p = &(*p)->next)
		;
	if (*p) {
		struct rule *r = &(*p)->r;
		bool is_match;

		r->armed_by = 0;
		is_match = matches(r, ino, op, off, len, torn);
		if (is_match && r->kind == RULE_TORN)
			take_torn_locked(rs, p, torn);
		else if (is_match && apply_locked(r, &rc, delay_ms, &none))
			unlink_locked(rs, p, NULL);
	}
	pthread_mutex_unlock(&rs->lock);
	return rc;
}

unsigned rules_count(struct rules *rs)
{
	return atomic_load(&rs->count);
}

const char *rule_op_name(enum rule_op op)
{
	static const char *const names[RULE_OP_NR] = { "read", "write", "fsync", "open" };

	return op < RULE_OP_NR ? names[op] : "?";
}

uint64_t rule_torn_keep(const struct rule *r, uint64_t off, uint64_t len, uint64_t page_size)
{
	uint64_t first = off / page_size, touched;

	if (!r->is_pages)
		return r->keep < len ? r->keep : len;
	if (len == 0 || r->keep == 0)
		return 0;
	touched = (off + len - 1) / page_size - first + 1;
	return r->keep >= touched ? len : (first + r->keep) * page_size - off;
}
