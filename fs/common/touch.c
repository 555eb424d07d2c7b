/* The SIGBUS guard of touch_copy(). A signal handler gets no context argument, so the
 * touch in progress publishes its jump buffer in a thread-local pointer, and the handler
 * leaves the fault address in another; both are set only around one copy. The handler
 * calls only async-signal-safe functions (sigaction, raise) besides siglongjmp(), which
 * leaves it for the interrupted memcpy(); sigsetjmp(, 1) restores the signal mask. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#include "touch.h"

static __thread sigjmp_buf *touch_jmp;
static __thread volatile uintptr_t touch_fault;

/* SIGBUS's disposition before the handler: written once, under touch_once. */
static struct sigaction touch_prev;
static pthread_once_t touch_once = PTHREAD_ONCE_INIT;
static int touch_setup_err;

static void touch_on_sigbus(int sig, siginfo_t *si, void *uc)
{
	sigjmp_buf *jb = touch_jmp;

	(void)uc;
	if (jb) {
		touch_jmp = NULL;
		touch_fault = (uintptr_t)si->si_addr;
		siglongjmp(*jb, 1);
	}
	/* not a touch: back to the old disposition. A fault comes again by itself when the
	 * handler returns, since the access runs again; a signal someone sent must be sent
	 * again */
	sigaction(sig, &touch_prev, NULL);
	if (si->si_code <= 0)
		raise(sig);
}

static void touch_install(void)
{
	struct sigaction sa = { .sa_sigaction = touch_on_sigbus, .sa_flags = SA_SIGINFO };

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, &touch_prev) < 0)
		touch_setup_err = -errno;
}

int touch_setup(void)
{
	pthread_once(&touch_once, touch_install);
	return touch_setup_err;
}

int touch_copy(volatile void *dst, const volatile void *src, size_t n, uintptr_t *fault_out)
{
	int rc = touch_setup();
	sigjmp_buf jb;

	if (rc)
		return rc;
	if (sigsetjmp(jb, 1)) {
		if (fault_out)
			*fault_out = touch_fault;
		return TOUCH_SIGBUS;
	}
	touch_jmp = &jb;
	atomic_signal_fence(memory_order_seq_cst);
	memcpy((void *)dst, (const void *)src, n);
	atomic_signal_fence(memory_order_seq_cst);
	touch_jmp = NULL;
	return 0;
}
