/* Triggers firing: a FUSE worker whose request is the Nth a trigger waited for turns the
 * mount's state at once, so that this request and every later one are answered as after
 * the event (unplug, powercut: the plug state goes to unplugging, which fails them; a
 * revoke or a power cut of PATH: the files it covers go to revoking; a fail or delay
 * rule is armed), and hands the rest of the event, which talks to the kernel, to the
 * trigger thread: a notification never goes out from a request handler (README, "Kernel
 * notes"). The thread also logs the writes torn rules tear, since a worker must not wait
 * for the event lock. */
#ifndef SIGBUSFS_TRIGGER_H
#define SIGBUSFS_TRIGGER_H

#include <stdint.h>

#include "rules.h"

struct sfs;
struct trigger;

/* The request that fired a trigger, for the event log. */
struct trigger_cause {
	uint64_t ino;
	enum rule_op op;
	uint64_t off, len;
};

/* Starts the trigger thread of fs if it is not running (from the control thread: after
 * the daemon forked into the background). 0 or -errno. */
int trigger_start(struct sfs *fs);
/* Stops it, after it ran every event handed to it. */
void trigger_stop(struct sfs *fs);

/* Waits until the events triggers fired have run (replug must not overtake them). Not
 * from a FUSE worker, nor with the event lock held. */
void trigger_drain(struct sfs *fs);

/* In a FUSE worker, for the trigger t that cause fired: turns the state, queues the event.
 * 0, or the -errno (or delay, in *delay_ms) an armed rule gives this request; an armed
 * torn rule that tears it is copied to *torn (NULL: the request is no client write). */
int trigger_fire(struct sfs *fs, const struct rule *t, const struct trigger_cause *cause,
		 unsigned *delay_ms, struct rule *torn);
/* In a FUSE worker whose write (cause) torn rule t tore: queues the event that logs it
 * (the thread runs since the rule was added). */
void trigger_torn(struct sfs *fs, const struct rule *t, const struct trigger_cause *cause);

#endif
