/* Fault rules: requests on a file (optionally a byte range of it) that fail with an errno
 * or are delayed, for a number of times or until cleared; triggers, which fire an action
 * at the Nth matching request; and torn-write rules, which tear the next matching write
 * once (durable.h). Installed by the control thread, consulted by every
 * FUSE handler that does I/O. */
#ifndef SIGBUSFS_RULES_H
#define SIGBUSFS_RULES_H

#include <stdbool.h>
#include <stdint.h>

enum rule_op { RULE_READ, RULE_WRITE, RULE_FSYNC, RULE_OPEN, RULE_OP_NR };
enum rule_kind { RULE_FAIL, RULE_DELAY, RULE_TRIGGER, RULE_TORN };

/* What a trigger does when it fires. */
enum rule_then { THEN_UNPLUG, THEN_UNPLUG_VANISH, THEN_POWERCUT, THEN_RULE, THEN_REVOKE };

struct rule {
	uint64_t id; /* assigned by rules_add() */
	enum rule_kind kind;
	enum rule_op op;
	uint64_t ino;
	char path[256];	   /* as given, for listings */
	uint64_t off, len; /* len 0: to the end of the file */
	int err;	   /* RULE_FAIL, THEN_REVOKE: positive errno */
	unsigned ms;	   /* RULE_DELAY: milliseconds */
	uint64_t keep;	   /* RULE_TORN: what persists of the write, in bytes or pages */
	bool is_pages;	   /* RULE_TORN: keep counts whole pages, page-aligned in the file */
	uint64_t count;	   /* times left to fire; 0: unlimited. RULE_TRIGGER: requests
			    * left until it fires (the last one fires it), >= 1 */
	uint64_t hits;	   /* times fired; RULE_TRIGGER: requests matched */
	uint64_t armed_by; /* 0: active; else the trigger that arms it (it waits) */
	enum rule_then then;
	uint64_t then_id;    /* THEN_RULE: the rule the trigger arms */
	char then_path[256]; /* THEN_REVOKE, THEN_POWERCUT: the path acted on ("": the
			      * whole mount) */
};

struct rules;

int rules_new(struct rules **out);
void rules_free(struct rules *rs);

/* Copies r, assigns its id into *id_out. 0 or -ENOMEM. */
int rules_add(struct rules *rs, const struct rule *r, uint64_t *id_out);
/* Removes rule id and copies it to *out. 0 or -ENOENT. */
int rules_remove(struct rules *rs, uint64_t id, struct rule *out);
/* Removes the first rule left and copies it to *out. 0, or -ENOENT when none is left. */
int rules_pop(struct rules *rs, struct rule *out);
/* Calls fn on a copy of each rule, in id order. */
void rules_each(struct rules *rs, void (*fn)(void *ctx, const struct rule *r), void *ctx);

/* Applies the rules to a request of op on [off, off+len) of ino: returns 0 or the -errno
 * of a firing fail rule, and adds the delays of firing delay rules to *delay_ms. Rules
 * whose count runs out are removed. A trigger whose count runs out is removed and copied
 * to *fired (fired->id 0 if none fired; one per request, the lowest id). torn NULL: torn
 * rules are passed by (a request that is no client write); else the torn rule that
 * matches, unless a fail rule fails the request, is removed and copied there (torn->id 0
 * if none; one per request, the lowest id). Lock-free when no rule is installed. */
int rules_match(struct rules *rs, uint64_t ino, enum rule_op op, uint64_t off, uint64_t len,
		unsigned *delay_ms, struct rule *fired, struct rule *torn);
/* Arms rule id (its trigger fired) and applies it alone to the request that fired it, as
 * rules_match() would (torn as there: a torn rule tears the firing write unless another
 * did). 0 or the -errno of the armed fail rule; -ENOENT is never returned for a rule
 * cleared meanwhile (0). */
int rules_arm(struct rules *rs, uint64_t id, uint64_t ino, enum rule_op op, uint64_t off,
	      uint64_t len, unsigned *delay_ms, struct rule *torn);

/* Number of rules installed. */
unsigned rules_count(struct rules *rs);

const char *rule_op_name(enum rule_op op);

/* The bytes of a write [off, off + len) that torn rule r lets persist: its first r->keep
 * bytes, or the part of it in its first r->keep pages of page_size bytes (the first
 * partial when off is not page-aligned); at most len. */
uint64_t rule_torn_keep(const struct rule *r, uint64_t off, uint64_t len, uint64_t page_size);

#endif
