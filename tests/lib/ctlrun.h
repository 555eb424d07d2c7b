/* Running sigbusctl from integration tests: the real client binary (env SIGBUSCTL, set by
 * meson) against a fixture mount's control socket, with its output captured. */
#ifndef SIGBUSFS_TEST_CTLRUN_H
#define SIGBUSFS_TEST_CTLRUN_H

#include <stddef.h>

#include "fixture.h"

/* Runs "$SIGBUSCTL -S m->ctl ARG..." (NULL-terminated), or "-m m->dir" when the daemon
 * uses its default socket (m->ctl is ""). Stores stdout and stderr, NUL
 * terminated and truncated to size, in out (may be NULL). Returns the exit status, or
 * -errno if it could not run. */
int fx_ctl(const struct mnt *m, char *out, size_t size, const char *arg, ...)
	__attribute__((sentinel));

/* The value of "key: value" (human output) in out, as a number; -1 if absent. */
long long fx_ctl_value(const char *out, const char *key);

#endif
