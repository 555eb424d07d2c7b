/* The helper process of selfstat.h: how it starts detached from the daemon's descriptors,
 * how it watches the daemon, its request loop, and the daemon's side of the socket pair.
 * A request is one SOCK_SEQPACKET message, an op byte then NUL-terminated paths (as many as
 * fit); the answer is one message of a struct answer per path (one for an abort), and
 * the helper's first message is one struct answer too (its start). The helper only makes
 * system calls: it is a fork of the daemon. */
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
#define SELFSTAT_PATHS_MAX 1024	   /* paths in one request */
#define SELFSTAT_FD	   3	   /* the helper's end of the socket pair, in the helper */
#define SELFSTAT_DEATH_SIG SIGUSR1 /* the daemon's main thread has exited */
#define FUSECTL_DIR	   "/sys/fs/fuse/connections"

enum selfstat_op {
	SELFSTAT_FORCE = 1, /* each path: stat, then the size the kernel kept */
	SELFSTAT_LOOKUP,    /* each path: stat */
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

static struct answer answer_path(enum selfstat_op op, const char *path)
{
	struct answer a = { 0 };
	struct statx stx;
	struct stat st;

	if (stat(path, &st) < 0)
		a.err = -errno;
	else if (op == SELFSTAT_FORCE &&
		 statx(AT_FDCWD, path, AT_STATX_DONT_SYNC, STATX_SIZE, &stx) < 0)
		a.err = -errno;
	else
		a.size = op == SELFSTAT_FORCE ? stx.stx_size : 0;
	return a;
}

/* Serves one request of len bytes (msg[len] is NUL) into out; returns the answers' count. */
static size_t answer_request(const struct helper *h, const char *msg, size_t len,
			     struct answer *out)
{
	const char *path = msg + 1;
	size_t n = 0;

	if (msg[0] == SELFSTAT_ABORT) {
		out[0] = (struct answer){ .err = write_abort(h) };
		return 1;
	}
	for (; path < msg + len && n < SELFSTAT_PATHS_MAX; path += strlen(path) + 1)
		out[n++] = answer_path((enum selfstat_op)msg[0], path);
	return n;
}

static void __attribute__((noreturn)) helper_loop(const struct helper *h)
{
	static struct answer out[SELFSTAT_PATHS_MAX];
	static char msg[SELFSTAT_MSG_MAX + 1];
	struct pollfd p[2] = { { .fd = SELFSTAT_FD, .events = POLLIN },
			       { .fd = h->sigfd, .events = POLLIN } };

	for (;;) {
		ssize_t n;
		size_t count;

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
		count = answer_request(h, msg, (size_t)n, out);
		if (send(SELFSTAT_FD, out, count * sizeof(out[0]), MSG_NOSIGNAL) < 0)
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

/* Reads an answer message of n struct answers into a: 0, or -errno of the socket
 * (-ECONNRESET at its end, -EBADMSG for another count). */
static int read_answers(struct selfstat *s, struct answer *a, size_t n)
{
	ssize_t got;

	do
		got = recv(s->sock, a, n * sizeof(*a), MSG_TRUNC);
	while (got < 0 && errno == EINTR);
	if (got == (ssize_t)(n * sizeof(*a)))
		return 0;
	if (got < 0)
		return -errno;
	return got == 0 ? -ECONNRESET : -EBADMSG;
}

/* The helper's first message: whether it could open the abort file. */
static int wait_started(struct selfstat *s, const char *mountpoint)
{
	struct answer a;
	int rc = read_answers(s, &a, 1);

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

/* Sends a request of len bytes and reads its n answers into a; 0 or -errno of the
 * socket. */
static int ask(struct selfstat *s, const char *msg, size_t len, struct answer *a, size_t n)
{
	ssize_t sent;
	int rc;

	pthread_mutex_lock(&s->lock);
	do
		sent = send(s->sock, msg, len, MSG_NOSIGNAL);
	while (sent < 0 && errno == EINTR);
	rc = sent < 0 ? -errno : read_answers(s, a, n);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* Asks op about the n paths, as many per request as fit, and keeps each path's answer in
 * out (n of them), or none if out is NULL. 0, or -errno of the socket. */
static int ask_paths(struct selfstat *s, enum selfstat_op op, char *const *paths, size_t n,
		     struct answer *out)
{
	static const size_t room = SELFSTAT_MSG_MAX - 1;
	struct answer scratch[SELFSTAT_PATHS_MAX];
	char *msg = malloc(SELFSTAT_MSG_MAX);
	size_t done = 0;
	int rc = 0;

	if (!msg)
		return -ENOMEM;
	msg[0] = (char)op;
	while (rc == 0 && done < n) {
		size_t len = 1, k = 0;

		while (done + k < n && k < SELFSTAT_PATHS_MAX &&
		       len - 1 + strlen(paths[done + k]) + 1 <= room) {
			size_t plen = strlen(paths[done + k]) + 1;

			memcpy(msg + len, paths[done + k], plen);
			len += plen;
			k++;
		}
		rc = k ? ask(s, msg, len, out ? out + done : scratch, k) : -ENAMETOOLONG;
		done += k;
	}
	free(msg);
	return rc;
}

int selfstat_force(struct selfstat *s, const char *path, uint64_t *held_out)
{
	int err;
	int rc = selfstat_force_many(s, (char *const *)&path, 1, &err, held_out);

	return rc < 0 ? rc : err;
}

int selfstat_force_many(struct selfstat *s, char *const *paths, size_t n, int *errs, uint64_t *held)
{
	struct answer *a = calloc(n ? n : 1, sizeof(*a));
	int rc = a ? ask_paths(s, SELFSTAT_FORCE, paths, n, a) : -ENOMEM;

	for (size_t i = 0; rc == 0 && i < n; i++) {
		errs[i] = a[i].err;
		held[i] = a[i].size;
	}
	free(a);
	return rc;
}

int selfstat_lookup(struct selfstat *s, char *const *paths, size_t n)
{
	return ask_paths(s, SELFSTAT_LOOKUP, paths, n, NULL);
}

int selfstat_abort(struct selfstat *s)
{
	const char msg = SELFSTAT_ABORT;
	struct answer a;
	int rc = ask(s, &msg, 1, &a, 1);

	return rc < 0 ? rc : a.err;
}
