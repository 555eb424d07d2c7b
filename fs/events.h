/* The event engine: each control command that changes what clients see, applied to the
 * backend and then made known to the kernel, synchronously. Every event runs on a control
 * thread, serialises with the other events, logs an entry and tells its caller what
 * happened in a struct ev_result (seq=, plus keys of its own). 0 or -errno, with the reason
 * in the result's errmsg. */
#ifndef SIGBUSFS_EVENTS_H
#define SIGBUSFS_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sfs.h"

/* One note of a result: key=value. */
struct ev_kv {
	char *key;   /* [A-Za-z0-9_.-]+ */
	char *value; /* text without NUL */
};

/* What an event tells whoever ran it: notes in order (a key may repeat: a list), an
 * optional one-line summary, and the message of a failure. Start from { 0 }; the caller
 * frees with ev_result_free(). The control server turns it into a reply (ctl_cmds.c). */
struct ev_result {
	struct ev_kv *kv; /* n notes, malloc'ed */
	size_t n;
	char *summary; /* NULL: none */
	char *errmsg;  /* NULL: none (the errno's own text will do) */
	int err;       /* 0, or -ENOMEM if a note or text could not be kept */
};

void ev_result_free(struct ev_result *r);
/* Adds the note key=printf(fmt, ...). 0, or -ENOMEM (kept in r->err). */
int ev_result_note(struct ev_result *r, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Sets (replaces) the summary, or the message of a failure, to printf(fmt, ...). 0, or
 * -ENOMEM (kept in r->err). */
enum ev_text { EV_SUMMARY, EV_ERRMSG };
int ev_result_text(struct ev_result *r, enum ev_text which, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The bookkeeping every event shares: its sequence number, start time and log text. */
struct ev {
	struct sfs *fs;
	struct ev_result *res;
	uint64_t seq;
	struct timespec start;
	char text[EVLOG_TEXT_MAX];
};

/* Takes the event lock, numbers the event, starts its log text "cmd=... target=..." and
 * notes seq= in res. */
void ev_begin(struct ev *e, struct sfs *fs, struct ev_result *res, const char *cmd,
	      const char *target);
/* Appends " key=value" to the log text and notes the pair in the result. */
void ev_note(struct ev *e, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Records the result, logs the event, releases the lock; returns rc. */
int ev_end(struct ev *e, int rc);

/* Resolves rel to a regular file for an event: 0 or -errno with the result's message. */
int ev_file(struct ev *e, const char *rel, struct bk_attr *out);
/* ev_file() for an event that changes the file in the backend (write, truncate, punch):
 * with -o powercut, the file's present state becomes durable first, as storage that
 * flushes its cache before it obeys (durable.h). */
int ev_file_changing(struct ev *e, const char *rel, struct bk_attr *out);

/* events.c. len 0: to the end of the file */
/* off rounded down to a page */
uint64_t ev_page_down(const struct sfs *fs, uint64_t off);
/* After the backend's bytes in [off, off+len) of ino (named rel) changed: drops those
 * pages, and if the size changed, makes the kernel learn the backend's. */
int ev_publish(struct sfs *fs, const char *rel, uint64_t ino, uint64_t off, uint64_t len,
	       bool size_changed);
int ev_inval(struct sfs *fs, struct ev_result *res, const char *rel, uint64_t off, uint64_t len);
int ev_write(struct sfs *fs, struct ev_result *res, const char *rel, uint64_t off, const void *data,
	     size_t len, bool notify);
int ev_truncate(struct sfs *fs, struct ev_result *res, const char *rel, uint64_t size);
int ev_punch(struct sfs *fs, struct ev_result *res, const char *rel, uint64_t off, uint64_t len);
int ev_store(struct sfs *fs, struct ev_result *res, const char *rel, uint64_t off, const void *data,
	     size_t len);
/* Compares the page cache with the backend; changes nothing and logs nothing. */
int ev_audit(struct sfs *fs, struct ev_result *res, const char *rel);

/* ev_rules.c: rule->kind, op, off, len, err, ms or keep and count set by the caller;
 * fills rule->ino, path and id. A torn rule needs -o powercut, and starts the trigger
 * thread, which logs the writes it tears. */
int ev_rule_add(struct sfs *fs, struct ev_result *res, const char *rel, struct rule *rule);
/* The event that records, on the trigger thread, the write [off, off + len) torn rule t
 * tore: its first keep bytes persist. Changes nothing. */
int ev_torn_fired(struct sfs *fs, struct ev_result *res, const struct rule *t, uint64_t off,
		  uint64_t len, uint64_t keep);
/* on: installs trigger t on rel (t->kind, op, range, count and then set by the caller);
 * for THEN_RULE, the rule then on then_rel first, waiting for t. Starts the trigger
 * thread. A power cut needs -o powercut. */
int ev_trigger_add(struct sfs *fs, struct ev_result *res, const char *rel, struct rule *t,
		   struct rule *then, const char *then_rel);
int ev_rule_clear(struct sfs *fs, struct ev_result *res, bool has_id, uint64_t id);
int ev_rules_list(struct sfs *fs, struct ev_result *res);

/* ev_feed.c: one change of the backend's feed made known to the kernel as the matching
 * command would, logged as an event "cmd=feed-..." when the kernel holds what it concerns.
 * Runs on the feed thread (feed.h). 0 or -errno. */
int ev_feed(struct sfs *fs, const struct bk_change *ch);
/* revoke.c; the _in forms do the work inside an event already begun (the power cut's) */
int ev_revoke(struct sfs *fs, struct ev_result *res, const char *rel, int err);
/* is_marked: a trigger marked rel's subtree revoking already (ev_revoke_mark()) */
int ev_revoke_in(struct ev *e, const char *rel, int err, bool is_marked);
/* In a FUSE worker whose request fired a revoke: rel's subtree becomes revoking (its
 * requests fail with err from now on), without a word to the kernel, which the trigger
 * thread's ev_revoke_fired() then tells. 0 or -errno. */
int ev_revoke_mark(struct sfs *fs, const char *rel, int err);
/* The revoke a trigger fired; cause names the request, for the log. */
int ev_revoke_fired(struct sfs *fs, struct ev_result *res, const char *rel, int err,
		    const char *cause);
int ev_unplug(struct sfs *fs, struct ev_result *res, bool vanish);
/* is_flipped: a trigger set the plug state to unplugging already (trigger.h) */
int ev_unplug_in(struct ev *e, bool vanish, bool is_flipped);
/* The unplug a trigger fired; cause names the request, for the log. */
int ev_unplug_fired(struct sfs *fs, struct ev_result *res, bool vanish, const char *cause);
int ev_replug(struct sfs *fs, struct ev_result *res);
/* The kernel looks names up again at their next use: every name, in one notification
 * (or one per name on a kernel without it); or, is_stale_only, the names of revived
 * inodes only. Notes how. 0 or -errno. */
int ev_drop_names(struct ev *e, bool is_stale_only);
int ev_abort(struct sfs *fs, struct ev_result *res);

/* powercut.c: with -o powercut (else -EOPNOTSUPP) */
/* rel (a regular file) or, NULL, the whole mount loses what was not made durable: revoked
 * or unplugged first, then reverted in the backend. */
int ev_powercut(struct sfs *fs, struct ev_result *res, const char *rel);
/* The power cut a trigger fired, of rel (NULL: the whole mount), as ev_unplug_fired() and
 * ev_revoke_fired(). */
int ev_powercut_fired(struct sfs *fs, struct ev_result *res, const char *rel, const char *cause);
/* rel's (NULL: every file's) present state becomes durable. */
int ev_sync(struct sfs *fs, struct ev_result *res, const char *rel);

#endif
