/* Touching memory that may raise SIGBUS (a mapping of a file that shrank, was revoked or
 * fails through a fault rule) so that the fault is a result, not a crash: for the tools
 * and tests that observe sigbusfs from a client's side. */
#ifndef SIGBUSFS_TOUCH_H
#define SIGBUSFS_TOUCH_H

#include <stddef.h>
#include <stdint.h>

#define TOUCH_SIGBUS 1 /* touch_copy(): an access raised SIGBUS */

/* Installs the one SIGBUS handler of the process, once (later calls return the first
 * result): 0 or -errno. touch_copy() calls it; call it first to fail early. A child forked
 * afterwards inherits the handler. A SIGBUS outside a touch gets the disposition in place
 * before (by default it kills the process, as it would have), which then stays. */
int touch_setup(void);

/* Copies n bytes from src to dst, where either may lie in a mapping, in no particular
 * order. Returns 0; or TOUCH_SIGBUS if an access raised SIGBUS, with the faulting address
 * in *fault_out (may be NULL) and an unknown part of dst written; or touch_setup()'s
 * -errno. The jump target belongs to the calling thread, so threads may touch at once.
 * Call it from ordinary code, not from a signal handler. */
int touch_copy(volatile void *dst, const volatile void *src, size_t n, uintptr_t *fault_out);

#endif
