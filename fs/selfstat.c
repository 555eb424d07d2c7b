/* The helper processes of selfstat.h: how one starts detached from the daemon's
 * descriptors, how it watches the daemon, its request loop, and the daemon's side of the
 * socket pairs, which splits a request about many paths among the helpers. A request is
 * one SOCK_SEQPACKET message, an op byte then NUL-terminated paths (as many as fit); the
 * answer is one message of a struct answer per path (one for an abort), and a helper's
 * first message is one struct answer too (its start). A helper only makes system calls:
 * it is a fork of the daemon. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "selfstat.h"

#define SELFSTAT_MSG_MAX   65536   /* bytes of one request, op byte included */
#define SELFSTAT_PATHS_MAX 1024	   /* paths in one request */
#define SELFSTAT_FD	   3	   /* the helper's end of the socket pair, in the helper */
#define SELFSTAT_DEATH_SIG SIGUSR1 /* the daemon's main thread has exited */
#define FUSECTL_DIR	   "/sys/fs/fuse/connections"

#define SELFSTAT_LIST_BYTES (1 << 20) /* a listing's buffer: the kernel's largest READDIR */

enum selfstat_op {
	SELFSTAT_FORCE = 1, /* each path: stat, then the size the kernel kept */
	SELFSTAT_LIST,	    /* each directory of the paths listed, then each path's size */
	SELFSTAT_ABORT,	    /* abort the connection */
};

struct answer {
	int32_t err; /* 0 or -errno */
	uint64_t size;
};

/* The daemon's end of one helper. */
struct link {
	pid_t pid;
	int sock;
};

struct selfstat {
	size_t n; /* helpers */
	struct link links[SELFSTAT_MAX];
	pthread_mutex_t lock; /* one caller at a time */
	char *msgs;	      /* n requests of SELFSTAT_MSG_MAX bytes: guarded by lock */
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
static bool is_daemon_gone(const struct helper *h)
{
	struct signalfd_siginfo si;

	if (read(h->sigfd, &si, sizeof(si)) != sizeof(si))
		return false;
	return si.ssi_signo == SELFSTAT_DEATH_SIG && (pid_t)si.ssi_pid == h->daemon;
}

/* The size the kernel holds for name in dirfd (AT_FDCWD: name is a path), without a
 * GETATTR. */
static struct answer peek(int dirfd, const char *name)
{
	struct answer a = { 0 };
	struct statx stx;

	if (statx(dirfd, name, AT_STATX_DONT_SYNC, STATX_SIZE, &stx) < 0)
		a.err = -errno;
	else
		a.size = stx.stx_size;
	return a;
}

/* stat(path), then the size the kernel kept afterwards. */
static struct answer force(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return (struct answer){ .err = -errno };
	return peek(AT_FDCWD, path);
}

/* The length of path's directory part (absolute paths: 0 for a file of /). */
static size_t dir_len(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? (size_t)(slash - path) : 0;
}

/* One getdents of the directory, as large as the kernel makes a READDIRPLUS (it asks for
 * one at offset 0), then the size the kernel holds for each of the n files of paths in
 * it, into out. */
static void list_dir(const char *const *paths, size_t n, struct answer *out)
{
	static char buf[SELFSTAT_LIST_BYTES];
	char dir[PATH_MAX];
	size_t len = dir_len(paths[0]);
	int fd = -1, err = -ENAMETOOLONG;

	if (len < sizeof(dir)) {
		memcpy(dir, paths[0], len);
		dir[len] = '\0';
		fd = open(len ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		err = fd < 0 ? -errno : 0;
	}
	if (fd >= 0 && syscall(SYS_getdents64, fd, buf, sizeof(buf)) < 0)
		err = -errno;
	for (size_t i = 0; i < n; i++)
		out[i] = err ? (struct answer){ .err = err } : peek(fd, paths[i] + len + 1);
	if (fd >= 0)
		close(fd);
}

/* Lists the directory of each run of paths that share one, then peeks at their sizes. */
static void list_runs(const char *const *paths, size_t n, struct answer *out)
{
	for (size_t a = 0, b; a < n; a = b) {
		size_t len = dir_len(paths[a]);

		for (b = a + 1;
		     b < n && dir_len(paths[b]) == len && !memcmp(paths[a], paths[b], len); b++)
			;
		list_dir(paths + a, b - a, out + a);
	}
}

/* Serves one request of len bytes (msg[len] is NUL) into out; returns the answers' count. */
static size_t answer_request(const struct helper *h, const char *msg, size_t len,
			     struct answer *out)
{
	static const char *paths[SELFSTAT_PATHS_MAX];
	const char *path = msg + 1;
	size_t n = 0;

	if (msg[0] == SELFSTAT_ABORT) {
		out[0] = (struct answer){ .err = write_abort(h) };
		return 1;
	}
	for (; path < msg + len && n < SELFSTAT_PATHS_MAX; path += strlen(path) + 1)
		paths[n++] = path;
	if (msg[0] == SELFSTAT_LIST)
		list_runs(paths, n, out);
	for (size_t i = 0; msg[0] == SELFSTAT_FORCE && i < n; i++)
		out[i] = force(paths[i]);
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
static int read_answers(const struct link *l, struct answer *a, size_t n)
{
	ssize_t got;

	do
		got = recv(l->sock, a, n * sizeof(*a), MSG_TRUNC);
	while (got < 0 && errno == EINTR);
	if (got == (ssize_t)(n * sizeof(*a)))
		return 0;
	if (got < 0)
		return -errno;
	return got == 0 ? -ECONNRESET : -EBADMSG;
}

static int send_request(const struct link *l, const char *msg, size_t len)
{
	ssize_t sent;

	do
		sent = send(l->sock, msg, len, MSG_NOSIGNAL);
	while (sent < 0 && errno == EINTR);
	return sent < 0 ? -errno : 0;
}

/* Forks one helper and reads its first message: whether it could open the abort file
 * (said once, for the first helper). 0 or -errno; l->pid is 0 if no helper runs, and
 * l->sock is open if one does. */
static int start_one(struct link *l, const char *mountpoint, bool is_first)
{
	pid_t daemon = getpid();
	struct answer a;
	int sv[2], rc;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	l->pid = fork();
	if (l->pid == 0)
		helper_main(sv[1], sv[0], daemon, mountpoint);
	rc = l->pid < 0 ? -errno : 0;
	close(sv[1]);
	if (rc < 0) {
		l->pid = 0;
		close(sv[0]);
		return rc;
	}
	l->sock = sv[0];
	rc = read_answers(l, &a, 1);
	if (rc == 0 && a.err < 0 && is_first)
		log_warn("selfstat: cannot open the fusectl abort file of %s: %s; 'abort' "
			 "will fail, and a daemon killed while it notifies the kernel may leave "
			 "the mount hung",
			 mountpoint, strerror(-a.err));
	return rc;
}

static size_t helpers_wanted(size_t max)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (cpus > 0 && (size_t)cpus < max)
		max = (size_t)cpus;
	if (max > SELFSTAT_MAX)
		max = SELFSTAT_MAX;
	return max ? max : 1;
}

int selfstat_start(const char *mountpoint, size_t max, struct selfstat **out)
{
	struct selfstat *s = calloc(1, sizeof(*s));
	size_t want = helpers_wanted(max);
	int rc = 0;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	s->msgs = malloc(want * SELFSTAT_MSG_MAX);
	if (!s->msgs)
		rc = -ENOMEM;
	while (rc == 0 && s->n < want) {
		struct link *l = &s->links[s->n];

		rc = start_one(l, mountpoint, s->n == 0);
		if (l->pid > 0)
			s->n++; /* running: selfstat_stop() ends it if need be */
	}
	if (rc == 0)
		*out = s;
	else
		selfstat_stop(s);
	return rc;
}

void selfstat_stop(struct selfstat *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		close(s->links[i].sock);
	for (size_t i = 0; i < s->n; i++) {
		while (waitpid(s->links[i].pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	pthread_mutex_destroy(&s->lock);
	free(s->msgs);
	free(s);
}

size_t selfstat_pids(const struct selfstat *s, pid_t *out)
{
	for (size_t i = 0; i < s->n; i++)
		out[i] = s->links[i].pid;
	return s->n;
}

/* One helper's part of a request about many paths: paths[next, end), sent of them in
 * the request it is answering. */
struct share {
	size_t next, end, sent;
};

/* Sends the helper at i as many of its paths as fit in a request. 0 or -errno. */
static int send_share(struct selfstat *s, size_t i, enum selfstat_op op, char *const *paths,
		      struct share *sh)
{
	char *msg = s->msgs + i * SELFSTAT_MSG_MAX;
	size_t len = 1, k = 0;
	int rc;

	msg[0] = (char)op;
	while (sh->next + k < sh->end && k < SELFSTAT_PATHS_MAX) {
		size_t plen = strlen(paths[sh->next + k]) + 1;

		if (len + plen > SELFSTAT_MSG_MAX)
			break;
		memcpy(msg + len, paths[sh->next + k], plen);
		len += plen;
		k++;
	}
	rc = k ? send_request(&s->links[i], msg, len) : -ENAMETOOLONG;
	sh->sent = rc == 0 ? k : 0;
	return rc;
}

/* How many of n paths each helper is handed: the first helpers take that many each, in
 * order, the last what remains. */
static size_t share_of(const struct selfstat *s, size_t n)
{
	return (n + s->n - 1) / s->n;
}

/* Asks op about the n paths, split among the helpers, which work at once, and keeps each
 * path's answer in out (n of them). 0 or -errno. Every request
 * sent is answered before it returns, failed or not, so the next finds the sockets
 * empty. */
static int ask_paths(struct selfstat *s, enum selfstat_op op, char *const *paths, size_t n,
		     struct answer *out)
{
	struct share sh[SELFSTAT_MAX];
	size_t each = share_of(s, n), left = n;
	int rc = 0;

	for (size_t i = 0; i < s->n; i++) {
		sh[i].next = i * each < n ? i * each : n;
		sh[i].end = (i + 1) * each < n ? (i + 1) * each : n;
	}
	pthread_mutex_lock(&s->lock);
	while (rc == 0 && left > 0) {
		for (size_t i = 0; i < s->n; i++) {
			sh[i].sent = 0;
			if (rc == 0 && sh[i].next < sh[i].end)
				rc = send_share(s, i, op, paths, &sh[i]);
		}
		for (size_t i = 0; i < s->n; i++) {
			int got;

			if (!sh[i].sent)
				continue;
			got = read_answers(&s->links[i], out + sh[i].next, sh[i].sent);
			rc = rc < 0 ? rc : got;
			sh[i].next += sh[i].sent;
			left -= sh[i].sent;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int selfstat_force(struct selfstat *s, const char *path, uint64_t *held_out)
{
	int err = 0;
	int rc = selfstat_force_many(s, (char *const *)&path, 1, &err, held_out);

	return rc < 0 ? rc : err;
}

static int ask_many(struct selfstat *s, enum selfstat_op op, char *const *paths, size_t n,
		    int *errs, uint64_t *held)
{
	struct answer *a = calloc(n ? n : 1, sizeof(*a));
	int rc = a ? ask_paths(s, op, paths, n, a) : -ENOMEM;

	for (size_t i = 0; rc == 0 && i < n; i++) {
		errs[i] = a[i].err;
		held[i] = a[i].size;
	}
	free(a);
	return rc;
}

int selfstat_force_many(struct selfstat *s, char *const *paths, size_t n, int *errs, uint64_t *held)
{
	return ask_many(s, SELFSTAT_FORCE, paths, n, errs, held);
}

int selfstat_list_many(struct selfstat *s, char *const *paths, size_t n, int *errs, uint64_t *held)
{
	return ask_many(s, SELFSTAT_LIST, paths, n, errs, held);
}

pid_t selfstat_pid_of(const struct selfstat *s, size_t k, size_t n)
{
	return s->links[k / share_of(s, n)].pid;
}

int selfstat_abort(struct selfstat *s)
{
	const char msg = SELFSTAT_ABORT;
	struct answer a;
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = send_request(&s->links[0], &msg, 1);
	if (rc == 0)
		rc = read_answers(&s->links[0], &a, 1);
	pthread_mutex_unlock(&s->lock);
	return rc < 0 ? rc : a.err;
}
