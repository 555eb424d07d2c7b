/* fx_ctl(): fork, exec sigbusctl with a pipe on stdout and stderr, wait. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctlrun.h"

#define CTL_ARGS_MAX 32

static size_t collect_args(const struct mnt *m, const char **argv, const char *arg, va_list ap)
{
	size_t n = 0;
	const char *bin = getenv("SIGBUSCTL");

	argv[n++] = bin ? bin : "sigbusctl";
	argv[n++] = m->ctl[0] ? "-S" : "-m";
	argv[n++] = m->ctl[0] ? m->ctl : m->dir;
	for (; arg && n < CTL_ARGS_MAX - 1; arg = va_arg(ap, const char *))
		argv[n++] = arg;
	argv[n] = NULL;
	return n;
}

static void read_all(int fd, char *out, size_t size)
{
	size_t used = 0;
	char sink[4096];
	ssize_t n;

	for (;;) {
		char *dst = out && used + 1 < size ? out + used : sink;
		size_t room = out && used + 1 < size ? size - 1 - used : sizeof(sink);

		n = read(fd, dst, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (dst != sink)
			used += (size_t)n;
	}
	if (out && size)
		out[used] = '\0';
}

int fx_ctl(const struct mnt *m, char *out, size_t size, const char *arg, ...)
{
	const char *argv[CTL_ARGS_MAX];
	int pfd[2], status;
	va_list ap;
	pid_t pid;

	va_start(ap, arg);
	collect_args(m, argv, arg, ap);
	va_end(ap);
	if (pipe(pfd) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		close(pfd[0]);
		close(pfd[1]);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pfd[1]);
	read_all(pfd[0], out, size);
	close(pfd[0]);
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

long long fx_ctl_value(const char *out, const char *key)
{
	size_t klen = strlen(key);

	for (const char *p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, key, klen) == 0 && p[klen] == ':')
			return strtoll(p + klen + 1, NULL, 10);
	}
	return -1;
}
