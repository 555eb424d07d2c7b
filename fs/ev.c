/* What every event shares: the event lock, the sequence number and log entry (evlog.c),
 * the file it acts on, and struct ev_result, in which it tells its caller what happened.
 * The events themselves are events.c's, ev_rules.c's and revoke.c's. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ctl_proto.h"
#include "durable.h"
#include "events.h"
#include "path.h"

void ev_result_free(struct ev_result *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->kv[i].key);
		free(r->kv[i].value);
	}
	free(r->kv);
	free(r->summary);
	free(r->errmsg);
	*r = (struct ev_result){ 0 };
}

/* Keeps rc as the result's failure if it is the first. */
static int result_failed(struct ev_result *r, int rc)
{
	if (rc && !r->err)
		r->err = rc;
	return rc;
}

static int note_add(struct ev_result *r, const char *key, const char *value)
{
	struct ev_kv *v = realloc(r->kv, (r->n + 1) * sizeof(*v));

	if (!v)
		return result_failed(r, -ENOMEM);
	r->kv = v;
	v[r->n].key = strdup(key);
	v[r->n].value = strdup(value);
	if (!v[r->n].key || !v[r->n].value) {
		free(v[r->n].key);
		free(v[r->n].value);
		return result_failed(r, -ENOMEM);
	}
	r->n++;
	return 0;
}

int ev_result_note(struct ev_result *r, const char *key, const char *fmt, ...)
{
	char *value;
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vasprintf(&value, fmt, ap);
	va_end(ap);
	if (n < 0)
		return result_failed(r, -ENOMEM);
	rc = note_add(r, key, value);
	free(value);
	return rc;
}

int ev_result_text(struct ev_result *r, enum ev_text which, const char *fmt, ...)
{
	char **dst = which == EV_SUMMARY ? &r->summary : &r->errmsg, *text;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n < 0)
		return result_failed(r, -ENOMEM);
	free(*dst);
	*dst = text;
	return 0;
}

/* Appends " key=value" to the event's log text, the value quoted as on the wire, so that
 * log readers can split the line whatever bytes a path holds. */
static void text_add(struct ev *e, const char *key, const char *val)
{
	struct ctl_buf q = { 0 };
	size_t used = strlen(e->text);

	ctl_buf_add_quoted(&q, val, strlen(val));
	snprintf(e->text + used, sizeof(e->text) - used, "%s%s=%s", used ? " " : "", key,
		 q.p ? q.p : "-");
	ctl_buf_free(&q);
}

void ev_begin(struct ev *e, struct sfs *fs, struct ev_result *res, const char *cmd,
	      const char *target)
{
	e->fs = fs;
	e->res = res;
	e->text[0] = '\0';
	pthread_mutex_lock(&fs->event_lock);
	e->seq = evlog_begin(fs->evlog, &e->start);
	text_add(e, "cmd", cmd);
	text_add(e, "target", !target ? "-" : *target ? target : "/");
	ev_result_note(res, "seq", "%llu", (unsigned long long)e->seq);
}

void ev_note(struct ev *e, const char *key, const char *fmt, ...)
{
	char val[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	text_add(e, key, val);
	ev_result_note(e->res, key, "%s", val);
}

int ev_end(struct ev *e, int rc)
{
	size_t used = strlen(e->text);

	snprintf(e->text + used, sizeof(e->text) - used, " result=%s",
		 rc < 0 ? strerrorname_np(-rc) : "ok");
	evlog_end(e->fs->evlog, e->seq, &e->start, e->text);
	pthread_mutex_unlock(&e->fs->event_lock);
	return rc;
}

int ev_file_changing(struct ev *e, const char *rel, struct bk_attr *out)
{
	int rc = ev_file(e, rel, out);

	if (rc == 0 && e->fs->durable)
		durable_sync(e->fs->durable, out->ino);
	return rc;
}

int ev_file(struct ev *e, const char *rel, struct bk_attr *out)
{
	uint64_t parent;
	int rc = path_resolve(e->fs, rel, &parent, out);

	if (rc < 0)
		ev_result_text(e->res, EV_ERRMSG, "%s: %s", rel, strerror(-rc));
	if (rc == 0 && !S_ISREG(out->mode)) {
		ev_result_text(e->res, EV_ERRMSG, "%s: not a regular file", *rel ? rel : "/");
		rc = -EINVAL;
	}
	return rc;
}
