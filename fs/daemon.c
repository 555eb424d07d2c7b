/* The background daemon's fork and the parent's wait (daemon.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"

/* The parent: 0 once the daemon said it serves, else the daemon's exit status. */
static int parent_wait(pid_t pid, int fd)
{
	char ready;
	int status;
	ssize_t got;

	while ((got = read(fd, &ready, 1)) < 0 && errno == EINTR)
		;
	if (got == 1)
		return EXIT_SUCCESS;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return EXIT_FAILURE;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_FAILURE;
}

int daemon_fork(void)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -errno;
	}
	if (pid > 0) {
		close(p[1]);
		_exit(parent_wait(pid, p[0]));
	}
	close(p[0]);
	return p[1];
}

void daemon_ready(int fd)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (setsid() < 0 || chdir("/") < 0 || null < 0)
		log_warn("leaving the terminal: %s", strerror(errno));
	for (int i = 0; null >= 0 && i <= 2; i++)
		dup2(null, i);
	if (null > 2)
		close(null);
	if (write(fd, "", 1) < 0)
		log_warn("telling the launcher that the daemon serves: %s", strerror(errno));
	close(fd);
}
