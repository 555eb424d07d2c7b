/* fx_ctl_request(): connect, send, read, close, through the client library. */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ctlreq.h"

#define CTL_WORDS_MAX 32

/* The request's words, argv[0] the command; returns how many. */
static int words(char **argv, const char *arg, va_list ap)
{
	int n = 0;

	for (; arg && n < CTL_WORDS_MAX; arg = va_arg(ap, const char *))
		argv[n++] = (char *)arg;
	return n;
}

static int vrequest(const struct mnt *m, struct ctl_result *out, const char *arg, va_list ap)
{
	char *argv[CTL_WORDS_MAX], err[512];
	struct ctl_client *c;
	int argc = words(argv, arg, ap), rc;

	*out = (struct ctl_result){ 0 };
	rc = ctl_client_connect(m->ctl, &c, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "ctlreq: %s\n", err);
		return rc;
	}
	rc = ctl_client_request_argv(c, argc, argv, out);
	if (rc < 0)
		fprintf(stderr, "ctlreq: %s: no reply: %s\n", argv[0], strerror(-rc));
	ctl_client_close(c);
	return rc;
}

int fx_ctl_request(const struct mnt *m, struct ctl_result *out, const char *arg, ...)
{
	va_list ap;
	int rc;

	va_start(ap, arg);
	rc = vrequest(m, out, arg, ap);
	va_end(ap);
	return rc;
}

/* vrequest() into a freed *out, failing the test unless a reply came. */
static void vrequest_replied(const struct mnt *m, struct ctl_result *out, const char *arg,
			     va_list ap)
{
	int rc;

	ctl_result_free(out);
	rc = vrequest(m, out, arg, ap);
	ck_assert_msg(rc == 0, "%s: no reply from the daemon: %s", arg, strerror(-rc));
}

void fx_ctl_ok(const struct mnt *m, struct ctl_result *out, const char *arg, ...)
{
	va_list ap;

	va_start(ap, arg);
	vrequest_replied(m, out, arg, ap);
	va_end(ap);
	ck_assert_msg(out->is_ok, "%s: err %s %s", arg, out->errname, out->text);
}

void fx_ctl_err(const struct mnt *m, struct ctl_result *out, int err, const char *arg, ...)
{
	va_list ap;

	va_start(ap, arg);
	vrequest_replied(m, out, arg, ap);
	va_end(ap);
	ck_assert_msg(!out->is_ok, "%s: ok, expected err %s", arg, strerrorname_np(err));
	ck_assert_msg(out->error == err, "%s: err %s %s, expected %s", arg, out->errname, out->text,
		      strerrorname_np(err));
}

long long fx_ctl_num(const struct ctl_result *r, const char *key)
{
	uint64_t v;

	return ctl_result_u64(r, key, &v) == 0 && v <= INT64_MAX ? (long long)v : -1;
}

bool fx_log_has(const struct ctl_result *r, const char *a, const char *b)
{
	for (size_t i = 0; i < r->nkv; i++) {
		const char *v = r->kv[i].value;

		if (!strcmp(r->kv[i].key, "event") && strstr(v, a) && strstr(v, b))
			return true;
	}
	return false;
}
