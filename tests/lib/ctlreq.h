/* Driving a fixture mount's daemon from a test: a request given as words, sent through the
 * control client library (fs/common, ctl_client.h) on a connection of its own, and the
 * reply parsed, with typed lookups of its key=value lines. sigbusctl itself, its output
 * and its exit codes, are tested by tests/integration/check_sigbusctl.sh. */
#ifndef SIGBUSFS_TEST_CTLREQ_H
#define SIGBUSFS_TEST_CTLREQ_H

#include "ctl_client.h"
#include "fixture.h"

/* Sends the request ARG... (NULL-terminated words, argv[0] the command, quoted as
 * sigbusctl quotes them) to m's daemon and reads the reply into *out, which the caller
 * frees with ctl_result_free(). 0 when a reply came, ok or err (out->is_ok, out->error);
 * -errno, with a message on stderr, when none did. Usable in forked children. */
int fx_ctl_request(const struct mnt *m, struct ctl_result *out, const char *arg, ...)
	__attribute__((sentinel));

/* fx_ctl_request() in the test process, failing the test unless the daemon answered ok;
 * the reply is left in *out (freed first, so it may be reused; zero it before the first
 * use). */
void fx_ctl_ok(const struct mnt *m, struct ctl_result *out, const char *arg, ...)
	__attribute__((sentinel));

/* The same for a request that must fail: the daemon must answer err with errno err. */
void fx_ctl_err(const struct mnt *m, struct ctl_result *out, int err, const char *arg, ...)
	__attribute__((sentinel));

/* The value of key in r as a decimal number, or -1 if it is absent or not a number. */
long long fx_ctl_num(const struct ctl_result *r, const char *key);

/* Whether an event of a "log" reply r holds both a and b. */
bool fx_log_has(const struct ctl_result *r, const char *a, const char *b);

#endif
