/* The control socket's server: listen, accept, owner check, one detached thread per
 * connection that reads request lines, parses them (ctl_proto.c) and writes the handler's
 * reply; plus the reply builder handlers fill. The commands themselves are the daemon's.
 * Lifetime: ctl_stop() joins the acceptor, then waits on nconn for detached threads. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

struct ctl_conn {
	struct ctl_conn *next, *prev; /* guarded by srv->lock */
	struct ctl_server *srv;
	int fd; /* closed by the connection's thread, under srv->lock */
};

struct ctl_server {
	const struct ctl_handlers *h;
	void *ctx;
	char *path;
	dev_t dev; /* of the socket we bound: unlink only that one */
	ino_t ino;
	int lfd;
	int wake[2]; /* ctl_stop() writes to wake[1] to end the accept loop */
	pthread_t acceptor;
	pthread_mutex_t lock;
	pthread_cond_t idle;	/* signalled when nconn drops */
	struct ctl_conn *conns; /* guarded by lock */
	unsigned nconn;		/* guarded by lock */
	atomic_bool is_stopping;
};

static void say(const struct ctl_server *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void say(const struct ctl_server *s, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!s->h->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	s->h->log(s->ctx, msg);
}

void ctl_reply_init(struct ctl_reply *r)
{
	*r = (struct ctl_reply){ .fd = -1 };
}

void ctl_reply_fini(struct ctl_reply *r)
{
	ctl_buf_free(&r->summary);
	ctl_buf_free(&r->kv);
	ctl_buf_free(&r->errmsg);
}

static int reply_failed(struct ctl_reply *r, int rc)
{
	if (rc && !r->err)
		r->err = rc;
	return rc;
}

static bool key_ok(const char *key)
{
	if (!*key)
		return false;
	return key[strspn(key,
			  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")] ==
	       '\0';
}

int ctl_reply_kv(struct ctl_reply *r, const char *key, const char *fmt, ...)
{
	struct ctl_buf v = { 0 };
	va_list ap;
	int rc;

	if (!key_ok(key)) {
		ctl_buf_free(&r->errmsg);
		ctl_buf_add_text(&r->errmsg, "internal error: bad reply key");
		return reply_failed(r, -EINVAL);
	}
	va_start(ap, fmt);
	ctl_buf_vaddf(&v, fmt, ap);
	va_end(ap);
	ctl_buf_addf(&r->kv, "%s=", key);
	ctl_buf_add_quoted(&r->kv, v.p ? v.p : "", v.len);
	rc = ctl_buf_add(&r->kv, "\n", 1);
	if (!rc)
		rc = v.err;
	ctl_buf_free(&v);
	return reply_failed(r, rc);
}

static int set_text(struct ctl_reply *r, struct ctl_buf *dst, const char *fmt, va_list ap)
{
	struct ctl_buf v = { 0 };
	int rc;

	ctl_buf_vaddf(&v, fmt, ap);
	ctl_buf_free(dst);
	rc = v.err ? v.err : ctl_buf_add_text(dst, v.p ? v.p : "");
	ctl_buf_free(&v);
	return reply_failed(r, rc);
}

int ctl_reply_summary(struct ctl_reply *r, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = set_text(r, &r->summary, fmt, ap);
	va_end(ap);
	return rc;
}

int ctl_reply_errmsg(struct ctl_reply *r, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = set_text(r, &r->errmsg, fmt, ap);
	va_end(ap);
	return rc;
}

int ctl_reply_format(const struct ctl_reply *r, int rc, struct ctl_buf *out)
{
	const char *msg;
	char num[16];

	if (rc > 0)
		rc = 0;
	if (rc < -CTL_ERRNO_MAX)
		rc = -EIO;
	if (rc == 0 && r->err)
		rc = r->err;
	if (rc == 0) {
		ctl_buf_add(out, "ok", 2);
		if (r->summary.len)
			ctl_buf_addf(out, " %s", r->summary.p);
	} else {
		msg = r->errmsg.len ? r->errmsg.p : strerrordesc_np(-rc);
		ctl_buf_addf(out, "err %s ", ctl_errno_str(-rc, num, sizeof(num)));
		if (msg)
			ctl_buf_add(out, msg, strlen(msg));
		else
			ctl_buf_addf(out, "Unknown error %d", -rc);
	}
	ctl_buf_add(out, "\n", 1);
	if (r->kv.len)
		ctl_buf_add(out, r->kv.p, r->kv.len);
	return ctl_buf_add(out, "\n", 1);
}

int ctl_reply_alive(struct ctl_reply *r)
{
	struct pollfd pfd;

	if (r->fd < 0 || !r->srv)
		return -ENOTCONN;
	if (atomic_load(&r->srv->is_stopping))
		return -EPIPE;
	pfd = (struct pollfd){ .fd = r->fd, .events = POLLRDHUP };
	if (poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)))
		return -EPIPE;
	return 0;
}

/* Sends the whole of b, mapping every failure to -EPIPE (the peer is of no more use). */
static int send_buf(int fd, const struct ctl_buf *b)
{
	if (b->err)
		return b->err;
	return ctl_write_all(fd, b->p, b->len) ? -EPIPE : 0;
}

int ctl_reply_stream(struct ctl_reply *r, const char *line)
{
	struct ctl_buf b = { 0 };
	int rc;

	if (!*line || strchr(line, '\n'))
		return -EINVAL;
	rc = ctl_reply_alive(r);
	if (rc)
		return rc;
	if (!r->is_streaming && r->err)
		return r->err; /* the header would be an err: nothing may follow it */
	if (!r->is_streaming)
		ctl_reply_format(r, 0, &b);
	ctl_buf_addf(&b, "%s\n", line);
	rc = send_buf(r->fd, &b);
	ctl_buf_free(&b);
	r->is_streaming = true;
	return rc;
}

static int send_text(int fd, int rc, const char *msg)
{
	struct ctl_reply r;
	struct ctl_buf out = { 0 };

	ctl_reply_init(&r);
	ctl_buf_add_text(&r.errmsg, msg);
	ctl_reply_format(&r, rc, &out);
	rc = send_buf(fd, &out);
	ctl_buf_free(&out);
	ctl_reply_fini(&r);
	return rc;
}

/* Calls the handler for req and sends its reply; or ends its stream. */
static int dispatch(struct ctl_conn *c, const struct ctl_req *req)
{
	struct ctl_server *s = c->srv;
	ctl_handler_fn fn = s->h->cmd[req->cmd];
	struct ctl_reply r = { .fd = c->fd, .srv = s };
	struct ctl_buf out = { 0 };
	int rc;

	if (fn) {
		rc = fn(s->ctx, req, &r);
	} else {
		rc = -ENOSYS;
		ctl_reply_errmsg(&r, "this daemon does not implement %s",
				 ctl_cmd_get(req->cmd)->name);
	}
	if (r.is_streaming) {
		if (rc < 0)
			say(s, "ctl: %s: failed while streaming: %s", ctl_cmd_get(req->cmd)->name,
			    strerror(-rc));
		ctl_buf_add(&out, "\n", 1);
	} else {
		ctl_reply_format(&r, rc, &out);
	}
	rc = send_buf(c->fd, &out);
	ctl_buf_free(&out);
	ctl_reply_fini(&r);
	return rc;
}

/* Serves one request line: 0 to go on, or <0 to end the connection. */
static int serve_one(struct ctl_conn *c, struct ctl_lines *lr)
{
	struct ctl_req req;
	char err[512], *line;
	size_t len;
	int rc;

	rc = ctl_lines_read(lr, &line, &len);
	if (rc == 0)
		return -ECONNRESET;
	if (rc == -E2BIG) {
		snprintf(err, sizeof(err), "request line longer than %d bytes", CTL_LINE_MAX);
		return send_text(c->fd, -E2BIG, err);
	}
	if (rc < 0)
		return rc;
	rc = ctl_parse(line, len, &req, err, sizeof(err));
	if (rc)
		return send_text(c->fd, rc, err);
	rc = dispatch(c, &req);
	ctl_req_free(&req);
	return rc;
}

/* Both under s->lock. */
static void conn_link(struct ctl_server *s, struct ctl_conn *c)
{
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->nconn++;
}

static void conn_unlink(struct ctl_server *s, struct ctl_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconn--;
	pthread_cond_broadcast(&s->idle);
}

static void conn_end(struct ctl_conn *c)
{
	struct ctl_server *s = c->srv;

	pthread_mutex_lock(&s->lock);
	conn_unlink(s, c);
	close(c->fd);
	pthread_mutex_unlock(&s->lock);
	free(c);
}

static void *conn_main(void *arg)
{
	struct ctl_conn *c = arg;
	struct timeval tv = { .tv_sec = CTL_SEND_TIMEOUT_S };
	struct ctl_lines lr;
	char greeting[32];
	int rc;

	ctl_lines_init(&lr, c->fd, CTL_LINE_MAX);
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	snprintf(greeting, sizeof(greeting), "%s %d\n", CTL_GREETING, CTL_PROTO_VERSION);
	rc = ctl_write_all(c->fd, greeting, strlen(greeting));
	while (rc == 0 && !atomic_load(&c->srv->is_stopping))
		rc = serve_one(c, &lr);
	ctl_lines_free(&lr);
	conn_end(c);
	return NULL;
}

/* Starts fn on a thread with every signal blocked, so that signals reach the daemon's
 * own threads (libfuse's session loop). Detached when tid is NULL. */
static int thread_start(void *(*fn)(void *), void *arg, pthread_t *tid)
{
	sigset_t all, old;
	pthread_attr_t attr;
	pthread_t t;
	int rc;

	rc = pthread_attr_init(&attr);
	if (rc)
		return -rc;
	if (!tid)
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(tid ? tid : &t, &attr, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return -rc;
}

/* The owner check: 0 to serve the peer, or -EACCES after telling it why. */
static int peer_check(struct ctl_server *s, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	char msg[64];

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	if (cred.uid == geteuid() || cred.uid == 0)
		return 0;
	snprintf(msg, sizeof(msg), "control socket belongs to uid %u", (unsigned)geteuid());
	send_text(fd, -EACCES, msg);
	say(s, "ctl: refused a connection from uid %u", (unsigned)cred.uid);
	return -EACCES;
}

/* Takes over fd: serves it on a new thread, or closes it. */
static void conn_start(struct ctl_server *s, int fd)
{
	struct ctl_conn *c = NULL;
	int rc = peer_check(s, fd);

	pthread_mutex_lock(&s->lock);
	if (!rc && s->nconn >= CTL_MAX_CONNS) {
		send_text(fd, -EMFILE, "too many control connections");
		rc = -EMFILE;
	}
	if (!rc) {
		c = calloc(1, sizeof(*c));
		rc = c ? 0 : -ENOMEM;
	}
	if (!rc) {
		*c = (struct ctl_conn){ .srv = s, .fd = fd };
		conn_link(s, c);
		rc = thread_start(conn_main, c, NULL);
	}
	if (rc && c) {
		conn_unlink(s, c);
		free(c);
		say(s, "ctl: cannot start a connection thread: %s", strerror(-rc));
	}
	pthread_mutex_unlock(&s->lock);
	if (rc)
		close(fd);
}

/* Whether accept() failing with errno e is worth retrying. */
static bool accept_retry(struct ctl_server *s, int e)
{
	static const struct timespec pause = { .tv_nsec = 100 * 1000 * 1000 };

	if (e == EINTR || e == ECONNABORTED || e == EAGAIN)
		return true;
	say(s, "ctl: accept: %s", strerror(e));
	if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
		nanosleep(&pause, NULL);
		return true;
	}
	return false;
}

static void *accept_main(void *arg)
{
	struct ctl_server *s = arg;
	struct pollfd pfd[2] = { { .fd = s->lfd, .events = POLLIN },
				 { .fd = s->wake[0], .events = POLLIN } };
	int fd;

	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (accept_retry(s, errno))
				continue;
			break;
		}
		if (pfd[1].revents)
			break;
		if (!(pfd[0].revents & POLLIN))
			continue;
		fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			conn_start(s, fd);
		else if (!accept_retry(s, errno))
			break;
	}
	return NULL;
}

/* Creates the socket's parent directory (0700), or checks that it belongs to us or root:
 * a directory someone else controls could swap the socket under the clients. */
static int parent_dir(struct ctl_server *s)
{
	char *dir = strdup(s->path), *slash;
	struct stat st;
	int rc = 0;

	if (!dir)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		strcpy(dir, ".");
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		rc = -errno;
	else if (stat(dir, &st) < 0)
		rc = -errno;
	else if (!S_ISDIR(st.st_mode))
		rc = -ENOTDIR;
	else if (st.st_uid != geteuid() && st.st_uid != 0)
		rc = -EPERM;
	if (rc)
		say(s, "ctl: socket directory %s: %s%s", dir, strerror(-rc),
		    rc == -EPERM ? " (it belongs to another user)" : "");
	free(dir);
	return rc;
}

static int fill_addr(const char *path, struct sockaddr_un *sa)
{
	*sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

/* Removes a dead socket left at path; refuses a live one and anything not a socket. */
static int clear_stale(struct ctl_server *s, const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, rc;

	if (lstat(s->path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		say(s, "ctl: %s exists and is not a socket", s->path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 ? -errno : 0;
	close(fd);
	if (rc == 0) {
		say(s, "ctl: a live daemon answers on %s", s->path);
		return -EADDRINUSE;
	}
	if (rc != -ECONNREFUSED)
		return rc;
	return unlink(s->path) < 0 && errno != ENOENT ? -errno : 0;
}

/* Binds and listens; the socket file is chmod'ed before listen(), while no one can connect
 * yet (umask would be process-wide). */
static int bind_listen(struct ctl_server *s, const struct sockaddr_un *sa)
{
	struct stat st;

	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->lfd < 0)
		return -errno;
	if (bind(s->lfd, (const struct sockaddr *)sa, sizeof(*sa)) < 0)
		return -errno;
	if (chmod(s->path, 0600) < 0 || stat(s->path, &st) < 0 || listen(s->lfd, 16) < 0) {
		int rc = -errno;

		unlink(s->path);
		return rc;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	return 0;
}

static void server_free(struct ctl_server *s)
{
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->wake[0] >= 0)
		close(s->wake[0]);
	if (s->wake[1] >= 0)
		close(s->wake[1]);
	pthread_cond_destroy(&s->idle);
	pthread_mutex_destroy(&s->lock);
	free(s->path);
	free(s);
}

/* Removes the socket file, if it is still the one we bound. */
static void unlink_ours(struct ctl_server *s)
{
	struct stat st;

	if (lstat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
		unlink(s->path);
}

int ctl_listen(const char *path, const struct ctl_handlers *h, void *ctx, struct ctl_server **out)
{
	struct sockaddr_un sa;
	struct ctl_server *s;
	int rc;

	*out = NULL;
	rc = fill_addr(path, &sa);
	if (rc)
		return rc;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	*s = (struct ctl_server){ .h = h, .ctx = ctx, .lfd = -1, .wake = { -1, -1 } };
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->idle, NULL);
	s->path = strdup(path);
	rc = s->path ? parent_dir(s) : -ENOMEM;
	if (!rc)
		rc = clear_stale(s, &sa);
	if (!rc)
		rc = bind_listen(s, &sa);
	if (rc)
		goto out_free;
	rc = pipe2(s->wake, O_CLOEXEC) < 0 ? -errno : thread_start(accept_main, s, &s->acceptor);
	if (rc)
		goto out_unlink;
	*out = s;
	return 0;
out_unlink:
	unlink_ours(s);
out_free:
	server_free(s);
	return rc;
}

/* Under s->lock: shuts every connection down in direction how. */
static void conns_shutdown(struct ctl_server *s, int how)
{
	for (struct ctl_conn *c = s->conns; c; c = c->next)
		shutdown(c->fd, how);
}

void ctl_stop(struct ctl_server *s)
{
	struct timespec deadline;

	if (!s)
		return;
	atomic_store(&s->is_stopping, true);
	if (write(s->wake[1], "x", 1) < 0)
		say(s, "ctl: stop: %s", strerror(errno));
	pthread_join(s->acceptor, NULL);
	unlink_ours(s);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 2;
	pthread_mutex_lock(&s->lock);
	conns_shutdown(s, SHUT_RD);
	while (s->nconn && pthread_cond_timedwait(&s->idle, &s->lock, &deadline) != ETIMEDOUT)
		;
	conns_shutdown(s, SHUT_RDWR);
	while (s->nconn)
		pthread_cond_wait(&s->idle, &s->lock);
	pthread_mutex_unlock(&s->lock);
	server_free(s);
}

int ctl_default_path(char *buf, size_t size)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	struct sockaddr_un sa;
	int n;

	if (xdg && xdg[0] == '/')
		n = snprintf(buf, size, "%s/sigbusfs/%d.sock", xdg, (int)getpid());
	else if (geteuid() == 0)
		n = snprintf(buf, size, "/run/sigbusfs/%d.sock", (int)getpid());
	else
		n = snprintf(buf, size, "/tmp/sigbusfs-%u/%d.sock", (unsigned)geteuid(),
			     (int)getpid());
	if (n < 0 || (size_t)n >= size || (size_t)n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	return 0;
}
