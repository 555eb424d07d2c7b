/* The trigger thread and the firing of triggers (trigger.h). */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "log.h"
#include "trigger.h"

#define TRIGGER_QUEUE 64 /* events waiting for the thread; each trigger fires once */

struct trigger_job {
	struct rule t;
	struct trigger_cause cause;
};

struct trigger {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t more, idle;
	struct trigger_job q[TRIGGER_QUEUE]; /* guarded by lock: a ring */
	unsigned head, n;		     /* guarded by lock */
	bool is_stopping;		     /* guarded by lock */
	bool is_running;		     /* guarded by lock: an event is being run */
};

/* "trigger=ID op=write ino=N off=N len=N": what fired, for the event log. */
static void cause_text(const struct trigger_job *j, char *buf, size_t size)
{
	snprintf(buf, size, "trigger=%llu after=%llu op=%s ino=%llu off=%llu len=%llu",
		 (unsigned long long)j->t.id, (unsigned long long)j->t.hits,
		 rule_op_name(j->cause.op), (unsigned long long)j->cause.ino,
		 (unsigned long long)j->cause.off, (unsigned long long)j->cause.len);
}

static void run_job(struct sfs *fs, const struct trigger_job *j)
{
	struct ev_result res = { 0 };
	char cause[160];
	int rc;

	cause_text(j, cause, sizeof(cause));
	if (j->t.kind == RULE_TORN)
		rc = ev_torn_fired(
			fs, &res, &j->t, j->cause.off, j->cause.len,
			rule_torn_keep(&j->t, j->cause.off, j->cause.len, fs->page_size));
	else if (j->t.then == THEN_POWERCUT)
		rc = ev_powercut_fired(fs, &res, j->t.then_path[0] ? j->t.then_path : NULL, cause);
	else if (j->t.then == THEN_REVOKE)
		rc = ev_revoke_fired(fs, &res, j->t.then_path, j->t.err, cause);
	else
		rc = ev_unplug_fired(fs, &res, j->t.then == THEN_UNPLUG_VANISH, cause);
	if (rc < 0)
		log_warn("the event of %s failed: %s", cause, res.errmsg ? res.errmsg : "");
	ev_result_free(&res);
}

static void *trigger_main(void *arg)
{
	struct sfs *fs = arg;
	struct trigger *tr = fs->trigger;
	struct trigger_job j;

	pthread_mutex_lock(&tr->lock);
	for (;;) {
		while (tr->n == 0 && !tr->is_stopping)
			pthread_cond_wait(&tr->more, &tr->lock);
		if (tr->n == 0)
			break;
		j = tr->q[tr->head];
		tr->head = (tr->head + 1) % TRIGGER_QUEUE;
		tr->n--;
		tr->is_running = true;
		pthread_mutex_unlock(&tr->lock);
		run_job(fs, &j);
		pthread_mutex_lock(&tr->lock);
		tr->is_running = false;
		pthread_cond_broadcast(&tr->idle);
	}
	pthread_mutex_unlock(&tr->lock);
	return NULL;
}

int trigger_start(struct sfs *fs)
{
	struct trigger *tr;
	int rc;

	if (fs->trigger)
		return 0;
	tr = calloc(1, sizeof(*tr));
	if (!tr)
		return -ENOMEM;
	pthread_mutex_init(&tr->lock, NULL);
	pthread_cond_init(&tr->more, NULL);
	pthread_cond_init(&tr->idle, NULL);
	fs->trigger = tr;
	rc = -pthread_create(&tr->thread, NULL, trigger_main, fs);
	if (rc < 0) {
		fs->trigger = NULL;
		free(tr);
	}
	return rc;
}

void trigger_stop(struct sfs *fs)
{
	struct trigger *tr = fs->trigger;

	if (!tr)
		return;
	pthread_mutex_lock(&tr->lock);
	tr->is_stopping = true;
	pthread_cond_signal(&tr->more);
	pthread_mutex_unlock(&tr->lock);
	pthread_join(tr->thread, NULL);
	pthread_cond_destroy(&tr->more);
	pthread_cond_destroy(&tr->idle);
	pthread_mutex_destroy(&tr->lock);
	free(tr);
	fs->trigger = NULL;
}

void trigger_drain(struct sfs *fs)
{
	struct trigger *tr = fs->trigger;

	if (!tr)
		return;
	pthread_mutex_lock(&tr->lock);
	while (tr->n > 0 || tr->is_running)
		pthread_cond_wait(&tr->idle, &tr->lock);
	pthread_mutex_unlock(&tr->lock);
}

/* Hands the event to the thread; with the queue full (64 events fired and not run yet),
 * the event is lost and logged. */
static void queue(struct sfs *fs, const struct rule *t, const struct trigger_cause *cause)
{
	struct trigger *tr = fs->trigger;
	bool is_full;

	pthread_mutex_lock(&tr->lock);
	is_full = tr->n == TRIGGER_QUEUE;
	if (!is_full) {
		tr->q[(tr->head + tr->n) % TRIGGER_QUEUE] = (struct trigger_job){ *t, *cause };
		tr->n++;
		pthread_cond_signal(&tr->more);
	}
	pthread_mutex_unlock(&tr->lock);
	if (is_full)
		log_err("trigger %llu fired with %d events waiting: its event is dropped",
			(unsigned long long)t->id, TRIGGER_QUEUE);
}

int trigger_fire(struct sfs *fs, const struct rule *t, const struct trigger_cause *cause,
		 unsigned *delay_ms, struct rule *torn)
{
	int on = PLUG_ON, rc;

	if (t->then == THEN_RULE)
		return rules_arm(fs->rules, t->then_id, cause->ino, cause->op, cause->off,
				 cause->len, delay_ms, torn);
	/* revoking (PATH) or unplugging from here on: this request and every later one to
	 * what the event covers fail as after it */
	if (t->then == THEN_REVOKE || t->then_path[0]) {
		rc = ev_revoke_mark(fs, t->then_path, t->then == THEN_REVOKE ? t->err : EIO);
		if (rc == 0)
			queue(fs, t, cause);
		else
			log_warn("trigger %llu: %s: %s; nothing is revoked",
				 (unsigned long long)t->id, t->then_path, strerror(-rc));
	} else if (atomic_compare_exchange_strong(&fs->plug, &on, PLUG_GOING)) {
		queue(fs, t, cause);
	}
	return 0;
}

void trigger_torn(struct sfs *fs, const struct rule *t, const struct trigger_cause *cause)
{
	queue(fs, t, cause);
}
