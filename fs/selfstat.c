/* The helper process of selfstat.h: how it starts detached from the daemon's descriptors,
 * how it watches the daemon, its request loop, and the daemon's side of the socket pair.
 * A request is one SOCK_SEQPACKET message, an op byte then NUL-terminated paths; the
 * answer is one struct answer, and the helper's first message is one too (its start).
 * The helper only makes system calls: it is a fork of the daemon. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "selfstat.h"

#define SELFSTAT_MSG_MAX   65536   /* bytes of one request, op byte included */
#define SELFSTAT_FD	   3	   /* the helper's end of the socket pair, in the helper */
#define SELFSTAT_DEATH_SIG SIGUSR1 /* the daemon's main thread has exited */
#define FUSECTL_DIR	   "/sys/fs/fuse/connections"

enum selfstat_op {
	SELFSTAT_FORCE = 1, /* one path: stat, then the size the kernel kept */
	SELFSTAT_LOOKUP,    /* paths: stat each, failures ignored */
	SELFSTAT_ABORT,	    /* abort the connection */
};

struct answer {
	int32_t err; /* 0 or -errno */
	uint64_t size;
};

struct selfstat {
	pid_t pid;
	int sock;
	pthread_mutex_t lock; /* one request in flight */
};

/* ---- the helper ---- */

struct helper {
	pid_t daemon;
	int sigfd;    /* signalfd of SELFSTAT_DEATH_SIG */
	int abort_fd; /* the connection's fusectl abort file, or -errno */
};

/* The abort file of the connection mounted at mountpoint, found without a request: the
 * mount's root is reached without a LOOKUP, and AT_STATX_DONT_SYNC sends no GETATTR.
 * fusectl names a connection by its device number as the kernel encodes it. fusectl is
 * often not mounted; root can mount it (harmless to leave mounted). */
static int open_abort(const char *mountpoint)
{
	struct statx stx;
	char path[64];
	int fd;

	if (statx(AT_FDCWD, mountpoint, AT_STATX_DONT_SYNC | AT_NO_AUTOMOUNT, 0, &stx) < 0)
		return -errno;
	snprintf(path, sizeof(path), FUSECTL_DIR "/%u/abort",
		 stx.stx_dev_major << 20 | stx.stx_dev_minor);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0 || errno != ENOENT)
		return fd >= 0 ? fd : -errno;
	if (mount("fusectl", FUSECTL_DIR, "fusectl", 0, NULL) < 0)
		return -ENOENT; /* mounted already (EBUSY), or not ours to mount */
	fd = open(path, O_WRONLY | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

static int write_abort(const struct helper *h)
{
	if (h->abort_fd < 0)
		return h->abort_fd;
	return write(h->abort_fd, "1", 1) == 1 ? 0 : -errno;
}

/* Whether the pending signal says that the daemon's main thread has exited: the kernel
 * sends the death signal in its name. */
static int is_daemon_gone(const struct helper *h)
{
	struct signalfd_siginfo si;

	if (read(h->sigfd, &si, sizeof(si)) != sizeof(si))
		return 0;
	return si.ssi_signo == SELFSTAT_DEATH_SIG && (pid_t)si.ssi_pid == h->daemon;
}

/* Serves one request of len bytes; msg[len] is NUL. */
static struct answer answer_request(const struct helper *h, const char *msg, size_t len)
{
	struct answer a = { 0 };
	const char *path = msg + 1;
	struct statx stx;
	struct stat st;

	switch (msg[0]) {
	case SELFSTAT_FORCE:
		if (stat(path, &st) < 0 ||
		    statx(AT_FDCWD, path, AT_STATX_DONT_SYNC, STATX_SIZE, &stx) < 0)
			a.err = -errno;
		else
			a.size = stx.stx_size;
		break;
	case SELFSTAT_LOOKUP:
		for (; path < msg + len; path += strlen(path) + 1)
			stat(path, &st);
		break;
	case SELFSTAT_ABORT:
		a.err = write_abort(h);
		break;
	default:
		a.err = -EINVAL;
	}
	return a;
}

static void __attribute__((noreturn)) helper_loop(const struct helper *h)
{
	static char msg[SELFSTAT_MSG_MAX + 1];
	struct pollfd p[2] = { { .fd = SELFSTAT_FD, .events = POLLIN },
			       { .fd = h->sigfd, .events = POLLIN } };

	for (;;) {
		ssize_t n;
		struct answer a;

		if (poll(p, 2, -1) < 0)
			continue; /* EINTR: a stop and continue */
		if (p[1].revents && is_daemon_gone(h)) {
			write_abort(h);
			_exit(0);
		}
		if (!p[0].revents)
			continue;
		n = recv(SELFSTAT_FD, msg, SELFSTAT_MSG_MAX, 0);
		if (n <= 0)
			_exit(0); /* stopped, or the daemon closed everything as it died */
		msg[n] = '\0';
		a = answer_request(h, msg, (size_t)n);
		if (send(SELFSTAT_FD, &a, sizeof(a), MSG_NOSIGNAL) < 0)
			_exit(0);
	}
}

/* Keeps stdio and sock (as SELFSTAT_FD) and drops everything else of the daemon's: its
 * descriptors (/dev/fuse above all), its signal handlers, its working directory. */
static void detach(int sock, int other_end)
{
	static const int handled[] = { SIGHUP, SIGINT, SIGTERM, SIGPIPE };

	close(other_end);
	if (sock != SELFSTAT_FD && dup2(sock, SELFSTAT_FD) < 0)
		_exit(1);
	if (close_range(SELFSTAT_FD + 1, ~0U, 0) < 0)
		_exit(1);
	for (size_t i = 0; i < sizeof(handled) / sizeof(handled[0]); i++)
		signal(handled[i], SIG_DFL);
	if (chdir("/") < 0)
		_exit(1);
	prctl(PR_SET_NAME, "sigbusfs-stat");
}

static void __attribute__((noreturn))
helper_main(int sock, int other_end, pid_t daemon, const char *mountpoint)
{
	struct helper h = { .daemon = daemon };
	struct answer started = { 0 };
	sigset_t death;

	/* blocked from the start, so that an early death waits for the signalfd */
	sigemptyset(&death);
	sigaddset(&death, SELFSTAT_DEATH_SIG);
	sigprocmask(SIG_SETMASK, &death, NULL);
	if (prctl(PR_SET_PDEATHSIG, SELFSTAT_DEATH_SIG) < 0 || getppid() != daemon)
		_exit(0);
	detach(sock, other_end);
	h.sigfd = signalfd(-1, &death, SFD_CLOEXEC);
	if (h.sigfd < 0)
		_exit(1);
	h.abort_fd = open_abort(mountpoint);
	started.err = h.abort_fd < 0 ? h.abort_fd : 0;
	if (send(SELFSTAT_FD, &started, sizeof(started), MSG_NOSIGNAL) < 0)
		_exit(0);
	helper_loop(&h);
}

/* ---- the daemon's side ---- */

/* Reads one answer: 0 with *a, or -errno of the socket (-ECONNRESET at its end). */
static int read_answer(struct selfstat *s, struct answer *a)
{
	ssize_t n;

	do
		n = recv(s->sock, a, sizeof(*a), 0);
	while (n < 0 && errno == EINTR);
	if (n == sizeof(*a))
		return 0;
	return n < 0 ? -errno : -ECONNRESET;
}

/* The helper's first message: whether it could open the abort file. */
static int wait_started(struct selfstat *s, const char *mountpoint)
{
	struct answer a;
	int rc = read_answer(s, &a);

	if (rc == 0 && a.err < 0)
		log_warn("selfstat: cannot open the fusectl abort file of %s: %s; 'abort' "
			 "will fail, and a daemon killed while it notifies the kernel may leave "
			 "the mount hung",
			 mountpoint, strerror(-a.err));
	return rc;
}

int selfstat_start(const char *mountpoint, struct selfstat **out)
{
	struct selfstat *s = calloc(1, sizeof(*s));
	pid_t daemon = getpid();
	int sv[2], rc = 0;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		rc = -errno;
		goto out_free;
	}
	s->pid = fork();
	if (s->pid == 0)
		helper_main(sv[1], sv[0], daemon, mountpoint);
	rc = s->pid < 0 ? -errno : 0;
	close(sv[1]);
	s->sock = sv[0];
	if (rc < 0)
		goto out_close;
	pthread_mutex_init(&s->lock, NULL);
	rc = wait_started(s, mountpoint);
	if (rc == 0)
		*out = s;
	else
		selfstat_stop(s);
	return rc;
out_close:
	close(s->sock);
out_free:
	free(s);
	return rc;
}

void selfstat_stop(struct selfstat *s)
{
	if (!s)
		return;
	close(s->sock);
	while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
		;
	pthread_mutex_destroy(&s->lock);
	free(s);
}

pid_t selfstat_pid(const struct selfstat *s)
{
	return s->pid;
}

/* Sends a request of len bytes and reads its answer: a->err, or -errno of the socket. */
static int ask(struct selfstat *s, const char *msg, size_t len, struct answer *a)
{
	ssize_t n;
	int rc;

	pthread_mutex_lock(&s->lock);
	do
		n = send(s->sock, msg, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	rc = n < 0 ? -errno : read_answer(s, a);
	pthread_mutex_unlock(&s->lock);
	return rc < 0 ? rc : a->err;
}

int selfstat_force(struct selfstat *s, const char *path, uint64_t *held_out)
{
	char msg[1 + PATH_MAX];
	size_t len = strlen(path) + 1;
	struct answer a;
	int rc;

	if (len > PATH_MAX)
		return -ENAMETOOLONG;
	msg[0] = SELFSTAT_FORCE;
	memcpy(msg + 1, path, len);
	rc = ask(s, msg, 1 + len, &a);
	if (rc == 0)
		*held_out = a.size;
	return rc;
}

int selfstat_lookup(struct selfstat *s, char *const *paths, size_t n)
{
	char *msg = malloc(SELFSTAT_MSG_MAX);
	size_t len = 1;
	struct answer a;
	int rc = 0;

	if (!msg)
		return -ENOMEM;
	msg[0] = SELFSTAT_LOOKUP;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		size_t plen = strlen(paths[i]) + 1;

		if (plen > PATH_MAX)
			continue; /* no such path could be stat()ed */
		if (len + plen > SELFSTAT_MSG_MAX) {
			rc = ask(s, msg, len, &a);
			len = 1;
		}
		memcpy(msg + len, paths[i], plen);
		len += plen;
	}
	if (rc == 0 && len > 1)
		rc = ask(s, msg, len, &a);
	free(msg);
	return rc;
}

int selfstat_abort(struct selfstat *s)
{
	const char msg = SELFSTAT_ABORT;
	struct answer a;

	return ask(s, &msg, 1, &a);
}
