/* The event engine: each control command that changes what clients see, applied to the
 * backend and then made known to the kernel, synchronously. Every function runs on a
 * control thread, serialises with the other events, logs an event, and puts what a
 * client needs in the reply (seq=, plus command-specific keys). 0 or -errno, with the
 * reason in the reply's message. */
#ifndef SIGBUSFS_EVENTS_H
#define SIGBUSFS_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctl.h"
#include "sfs.h"

/* The bookkeeping every event shares: its sequence number, start time and log text. */
struct ev {
	struct sfs *fs;
	struct ctl_reply *r;
	uint64_t seq;
	struct timespec start;
	char text[EVLOG_TEXT_MAX];
};

/* Takes the event lock, numbers the event and starts its log text "cmd=... target=...". */
void ev_begin(struct ev *e, struct sfs *fs, struct ctl_reply *r, const char *cmd,
	      const char *target);
/* Appends " key=value" to the log text and adds the pair to the reply. */
void ev_note(struct ev *e, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Records the result, logs the event, releases the lock; returns rc. */
int ev_end(struct ev *e, int rc);

/* Resolves rel to a regular file for an event: 0 or -errno with a reply message. */
int ev_file(struct ev *e, const char *rel, struct bk_attr *out);

/* len 0: to the end of the file */
int ev_inval(struct sfs *fs, struct ctl_reply *r, const char *rel, uint64_t off, uint64_t len);
int ev_write(struct sfs *fs, struct ctl_reply *r, const char *rel, uint64_t off, const void *data,
	     size_t len, bool notify);
int ev_truncate(struct sfs *fs, struct ctl_reply *r, const char *rel, uint64_t size);
int ev_punch(struct sfs *fs, struct ctl_reply *r, const char *rel, uint64_t off, uint64_t len);
int ev_store(struct sfs *fs, struct ctl_reply *r, const char *rel, uint64_t off, const void *data,
	     size_t len);
/* Compares the page cache with the backend; changes nothing and logs nothing. */
int ev_audit(struct sfs *fs, struct ctl_reply *r, const char *rel);

/* ev_rules.c: rule->kind, op, off, len, err or ms and count set by the caller; fills
 * rule->ino, path and id */
int ev_rule_add(struct sfs *fs, struct ctl_reply *r, const char *rel, struct rule *rule);
int ev_rule_clear(struct sfs *fs, struct ctl_reply *r, bool has_id, uint64_t id);
int ev_rules_list(struct sfs *fs, struct ctl_reply *r);

/* revoke.c */
int ev_revoke(struct sfs *fs, struct ctl_reply *r, const char *rel, int err);
int ev_unplug(struct sfs *fs, struct ctl_reply *r, bool vanish);
int ev_replug(struct sfs *fs, struct ctl_reply *r);
int ev_abort(struct sfs *fs, struct ctl_reply *r);

#endif
