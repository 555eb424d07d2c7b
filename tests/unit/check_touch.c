/* Unit tests of the SIGBUS guard (fs/common/touch.c) on a real fault: a mapping of a
 * memfd cut short by ftruncate raises SIGBUS past the new end, without any mount. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "touch.h"
#include "suite.h"

#define PAGES 4

static size_t pg;
static char *map; /* PAGES pages of a memfd whose size is one page: the rest faults */

static void setup(void)
{
	int fd = memfd_create("touch", MFD_CLOEXEC);

	pg = (size_t)sysconf(_SC_PAGESIZE);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)(PAGES * pg)), 0);
	map = mmap(NULL, PAGES * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(map, MAP_FAILED);
	memset(map, 'a', PAGES * pg);
	ck_assert_int_eq(ftruncate(fd, (off_t)pg), 0);
	close(fd);
}

static void teardown(void)
{
	munmap(map, PAGES * pg);
}

START_TEST(test_no_fault)
{
	char buf[64];
	uintptr_t fault = 1;

	ck_assert_int_eq(touch_copy(buf, map + 10, sizeof(buf), &fault), 0);
	ck_assert_uint_eq(fault, 1);
	for (size_t i = 0; i < sizeof(buf); i++)
		ck_assert_int_eq(buf[i], 'a');
	ck_assert_int_eq(touch_copy(map + 100, "xyz", 3, NULL), 0);
	ck_assert_int_eq(memcmp(map + 99, "axyza", 5), 0);
}
END_TEST

START_TEST(test_read_fault)
{
	char c = 0, *buf = malloc(PAGES * pg);
	uintptr_t fault = 0;

	ck_assert_int_eq(touch_copy(&c, map + pg + 5, 1, &fault), TOUCH_SIGBUS);
	ck_assert_ptr_eq((void *)fault, map + pg + 5);
	/* a copy across the end faults somewhere past it, and the guard is armed again */
	ck_assert_int_eq(touch_copy(buf, map, PAGES * pg, &fault), TOUCH_SIGBUS);
	ck_assert_uint_ge(fault, (uintptr_t)(map + pg));
	ck_assert_uint_lt(fault, (uintptr_t)(map + PAGES * pg));
	ck_assert_int_eq(touch_copy(&c, map + pg - 1, 1, NULL), 0);
	ck_assert_int_eq(c, 'a');
	free(buf);
}
END_TEST

START_TEST(test_write_fault)
{
	uintptr_t fault = 0;

	ck_assert_int_eq(touch_copy(map + 3 * pg, "x", 1, &fault), TOUCH_SIGBUS);
	ck_assert_ptr_eq((void *)fault, map + 3 * pg);
	ck_assert_int_eq(touch_copy(map, "x", 1, NULL), 0);
}
END_TEST

/* The exit status of a forked child running fn, or 128 + the signal it died of. */
static int in_child(void (*fn)(void))
{
	int status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		fn();
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

static void child_touches(void)
{
	char c;

	_exit(touch_copy(&c, map + 2 * pg, 1, NULL) == TOUCH_SIGBUS ? 7 : 1);
}

START_TEST(test_forked_child)
{
	char c;

	/* a child that touches first, and one forked after the parent set the guard up */
	ck_assert_int_eq(in_child(child_touches), 7);
	ck_assert_int_eq(touch_copy(&c, map + 2 * pg, 1, NULL), TOUCH_SIGBUS);
	ck_assert_int_eq(in_child(child_touches), 7);
}
END_TEST

static void exit_42(int sig)
{
	(void)sig;
	_exit(42);
}

/* The SIGBUS disposition a child installs before the guard (set before in_child()). */
static void (*stray_handler)(int);

/* A guarded fault is a result; a fault outside a touch reaches stray_handler. */
static void stray_fault(void)
{
	struct sigaction sa = { .sa_handler = stray_handler };
	char c;

	sigaction(SIGBUS, &sa, NULL);
	if (touch_copy(&c, map + pg, 1, NULL) != TOUCH_SIGBUS)
		_exit(1);
	c = *(volatile char *)(map + pg);
	_exit(2);
}

/* A SIGBUS sent by a process reaches stray_handler too. */
static void stray_kill(void)
{
	struct sigaction sa = { .sa_handler = stray_handler };

	sigaction(SIGBUS, &sa, NULL);
	if (touch_setup() != 0)
		_exit(1);
	kill(getpid(), SIGBUS);
	_exit(2);
}

START_TEST(test_stray_sigbus)
{
	stray_handler = exit_42;
	ck_assert_int_eq(in_child(stray_fault), 42);
	ck_assert_int_eq(in_child(stray_kill), 42);
	stray_handler = SIG_DFL;
	ck_assert_int_eq(in_child(stray_fault), 128 + SIGBUS);
	ck_assert_int_eq(in_child(stray_kill), 128 + SIGBUS);
}
END_TEST

struct toucher {
	char *addr;
	int rounds, faults;
};

static void *touch_loop(void *arg)
{
	struct toucher *t = arg;
	char c;

	for (int i = 0; i < t->rounds; i++)
		t->faults += touch_copy(&c, t->addr, 1, NULL) == TOUCH_SIGBUS;
	return NULL;
}

/* Each thread gets its own result: one faults on every touch, the other never. */
START_TEST(test_threads)
{
	struct toucher t[2] = { { map + 2 * pg, 2000, 0 }, { map + 7, 2000, 0 } };
	pthread_t tid[2];

	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&tid[i], NULL, touch_loop, &t[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(tid[i], NULL);
	ck_assert_int_eq(t[0].faults, 2000);
	ck_assert_int_eq(t[1].faults, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("touch");

	fx_unit_tcase(s, "touch", 0, setup, teardown,
		      FX_TESTS(test_no_fault, test_read_fault, test_write_fault, test_forked_child,
			       test_stray_sigbus, test_threads));
	return fx_run_suite(s);
}
