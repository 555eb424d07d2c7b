/* The control socket's server: listen, accept, owner check, one detached thread per
 * connection that reads request lines, parses them (ctl_proto.c) and writes the handler's
 * reply; plus the reply builder handlers fill. The commands themselves are the daemon's.
 * Lifetime: ctl_stop() joins the acceptor, then waits on nconn for detached threads.
 * Slots: a connection holds a command slot (ncmds) while idle or busy, a stream slot
 * (nstreams) while streaming, and none once evicted; slot_of() is the one place that says
 * which, and every change of state or eviction goes through it under lock. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

enum conn_state {
	CONN_IDLE,  /* waiting for a request line */
	CONN_BUSY,  /* reading, running or answering one */
	CONN_STREAM /* its handler streams (log --follow) */
};

struct ctl_conn {
	struct ctl_conn *next, *prev; /* guarded by srv->lock */
	struct ctl_server *srv;
	int fd;		       /* closed by the connection's thread, under srv->lock */
	enum conn_state state; /* guarded by srv->lock */
	uint64_t idle_seq;     /* guarded by srv->lock: when it went idle, in s->seq ticks */
	bool is_evicted;       /* guarded by srv->lock: its slot went to a newer connection */
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
	unsigned nconn;		/* guarded by lock: connection threads */
	unsigned ncmds;		/* guarded by lock: command slots taken */
	unsigned nstreams;	/* guarded by lock: stream slots taken */
	uint64_t seq;		/* guarded by lock: ticks at every change to idle */
	struct ctl_limits lim;
	atomic_bool is_stopping;
};

static const struct ctl_limits default_limits = {
	.max_cmds = CTL_MAX_CMDS,
	.max_streams = CTL_MAX_STREAMS,
	.idle_ms = CTL_IDLE_TIMEOUT_S * 1000,
	.send_ms = CTL_SEND_TIMEOUT_S * 1000,
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

/* The counter of the slot c holds, or NULL once it was evicted. Under s->lock. */
static unsigned *slot_of(struct ctl_server *s, const struct ctl_conn *c)
{
	if (c->is_evicted)
		return NULL;
	return c->state == CONN_STREAM ? &s->nstreams : &s->ncmds;
}

/* Moves c to state, and to the slot of that state. Under s->lock. */
static void conn_set_state(struct ctl_conn *c, enum conn_state state)
{
	struct ctl_server *s = c->srv;
	unsigned *slot = slot_of(s, c);

	if (slot)
		(*slot)--;
	c->state = state;
	if (state == CONN_IDLE)
		c->idle_seq = ++s->seq;
	slot = slot_of(s, c);
	if (slot)
		(*slot)++;
}

static void conn_enter(struct ctl_conn *c, enum conn_state state)
{
	pthread_mutex_lock(&c->srv->lock);
	conn_set_state(c, state);
	pthread_mutex_unlock(&c->srv->lock);
}

/* After an idle wait: false if c was evicted meanwhile, else marks it busy. */
static bool conn_claim(struct ctl_conn *c)
{
	bool is_evicted;

	pthread_mutex_lock(&c->srv->lock);
	is_evicted = c->is_evicted;
	if (!is_evicted)
		conn_set_state(c, CONN_BUSY);
	pthread_mutex_unlock(&c->srv->lock);
	return !is_evicted;
}

/* Frees command slots for one more connection by evicting the connections idle the
 * longest: 0, or -EMFILE when every slot runs a command. Under s->lock. */
static int make_room(struct ctl_server *s)
{
	struct ctl_conn *victim;

	while (s->ncmds >= s->lim.max_cmds) {
		victim = NULL;
		for (struct ctl_conn *c = s->conns; c; c = c->next)
			if (c->state == CONN_IDLE && !c->is_evicted &&
			    (!victim || c->idle_seq < victim->idle_seq))
				victim = c;
		if (!victim)
			return -EMFILE;
		(*slot_of(s, victim))--;
		victim->is_evicted = true;
		/* its thread wakes from recv() and tells the peer why before closing */
		shutdown(victim->fd, SHUT_RD);
	}
	return 0;
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

	if (r->fd < 0 || !r->conn)
		return -ENOTCONN;
	if (atomic_load(&r->conn->srv->is_stopping))
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

/* Moves the connection of r's first stream line to a stream slot: 0, or -EMFILE (the reply
 * becomes that err) when they are all taken. */
static int stream_begin(struct ctl_reply *r)
{
	struct ctl_server *s = r->conn->srv;
	bool is_full;

	pthread_mutex_lock(&s->lock);
	is_full = s->nstreams >= s->lim.max_streams;
	if (!is_full)
		conn_set_state(r->conn, CONN_STREAM);
	pthread_mutex_unlock(&s->lock);
	if (!is_full)
		return 0;
	ctl_reply_errmsg(r, "too many streams: %u clients follow already", s->lim.max_streams);
	return reply_failed(r, -EMFILE);
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
	if (!r->is_streaming) {
		rc = stream_begin(r);
		if (rc)
			return rc;
		ctl_reply_format(r, 0, &b);
	}
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
static int dispatch(struct ctl_conn *c, struct ctl_req *req)
{
	struct ctl_server *s = c->srv;
	ctl_handler_fn fn = s->h->cmd[req->cmd];
	struct ctl_reply r = { .fd = c->fd, .conn = c };
	struct ctl_buf out = { 0 };
	int rc = s->h->prepare ? s->h->prepare(s->ctx, req, &r) : 0;

	if (rc == 0 && fn) {
		rc = fn(s->ctx, req, &r);
	} else if (rc == 0) {
		rc = -ENOSYS;
		ctl_reply_errmsg(&r, "this daemon does not implement %s",
				 ctl_cmd_get(req->cmd)->name);
	}
	if (r.is_streaming) {
		if (rc < 0)
			say(s, "ctl: %s: failed while streaming: %s", ctl_cmd_get(req->cmd)->name,
			    strerror(-rc));
		conn_enter(c, CONN_BUSY);
		ctl_buf_add(&out, "\n", 1);
	} else {
		ctl_reply_format(&r, rc, &out);
	}
	rc = send_buf(c->fd, &out);
	ctl_buf_free(&out);
	ctl_reply_fini(&r);
	return rc;
}

/* Waits, idle, for the next request line: 1 with it, -E2BIG for an overlong one, or <0
 * to end the connection, after telling the peer why if it was evicted or silent. */
static int next_line(struct ctl_conn *c, struct ctl_lines *lr, char **line, size_t *len)
{
	const struct ctl_limits *lim = &c->srv->lim;
	char msg[160];
	int rc;

	conn_enter(c, CONN_IDLE);
	rc = ctl_lines_read(lr, line, len);
	if (!conn_claim(c)) {
		snprintf(msg, sizeof(msg),
			 "idle connection closed: all %u command slots were taken when another "
			 "client connected",
			 lim->max_cmds);
		send_text(c->fd, -EMFILE, msg);
		return -ECONNABORTED;
	}
	if (rc == -EAGAIN) {
		snprintf(msg, sizeof(msg), "no request for %g s: connection closed",
			 lim->idle_ms / 1000.0);
		send_text(c->fd, -ETIMEDOUT, msg);
		return -ETIMEDOUT;
	}
	return rc == 0 ? -ECONNRESET : rc;
}

/* Serves one request line: 0 to go on, or <0 to end the connection. */
static int serve_one(struct ctl_conn *c, struct ctl_lines *lr)
{
	struct ctl_req req;
	char err[512], *line;
	size_t len;
	int rc;

	rc = next_line(c, lr, &line, &len);
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
	c->state = CONN_IDLE;
	c->idle_seq = ++s->seq;
	s->ncmds++;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->nconn++;
}

static void conn_unlink(struct ctl_server *s, struct ctl_conn *c)
{
	unsigned *slot = slot_of(s, c);

	if (slot)
		(*slot)--;
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

static void set_timeout(int fd, int opt, unsigned ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = ms % 1000 * 1000 };

	setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv));
}

static void *conn_main(void *arg)
{
	struct ctl_conn *c = arg;
	struct ctl_lines lr;
	char greeting[32];
	int rc;

	ctl_lines_init(&lr, c->fd, CTL_LINE_MAX);
	set_timeout(c->fd, SO_SNDTIMEO, c->srv->lim.send_ms);
	/* a connection that sends nothing for this long is closed (next_line()) */
	set_timeout(c->fd, SO_RCVTIMEO, c->srv->lim.idle_ms);
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
	char msg[96];

	pthread_mutex_lock(&s->lock);
	if (!rc && make_room(s) < 0) {
		snprintf(msg, sizeof(msg),
			 "too many control connections: all %u command slots run a command",
			 s->lim.max_cmds);
		send_text(fd, -EMFILE, msg);
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

/* The directory part of path, malloc'ed ("." for a bare name), or NULL. */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return strdup(".");
	return strndup(path, slash == path ? 1 : (size_t)(slash - path));
}

/* Creates the socket's parent directory (0700), or checks that it belongs to us or root:
 * a directory someone else controls could swap the socket under the clients. */
static int parent_dir(struct ctl_server *s)
{
	char *dir = dir_of(s->path);
	struct stat st;
	int rc = 0;

	if (!dir)
		return -ENOMEM;
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

/* Whether a server listens at sa: 0 if one answers, -ECONNREFUSED if no one listens (the
 * socket is dead), or another -errno. */
static int probe(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc;

	if (fd < 0)
		return -errno;
	rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

/* Removes a dead socket left at path; refuses a live one and anything not a socket. */
static int clear_stale(struct ctl_server *s, const struct sockaddr_un *sa)
{
	struct stat st;
	int rc;

	if (lstat(s->path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		say(s, "ctl: %s exists and is not a socket", s->path);
		return -EEXIST;
	}
	rc = probe(sa);
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

/* lim with its 0 members replaced by the defaults */
static struct ctl_limits limits_pick(const struct ctl_limits *lim)
{
	struct ctl_limits l = lim ? *lim : default_limits;

	l.max_cmds = l.max_cmds ? l.max_cmds : default_limits.max_cmds;
	l.max_streams = l.max_streams ? l.max_streams : default_limits.max_streams;
	l.idle_ms = l.idle_ms ? l.idle_ms : default_limits.idle_ms;
	l.send_ms = l.send_ms ? l.send_ms : default_limits.send_ms;
	return l;
}

int ctl_listen(const char *path, const struct ctl_handlers *h, const struct ctl_limits *lim,
	       void *ctx, struct ctl_server **out)
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
	*s = (struct ctl_server){
		.h = h, .ctx = ctx, .lfd = -1, .wake = { -1, -1 }, .lim = limits_pick(lim)
	};
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

/* The PID of a socket named "PID.sock" (decimal, no sign or leading zero), or 0. */
static pid_t name_pid(const char *name)
{
	unsigned long pid;
	char *end;

	if (name[0] < '1' || name[0] > '9')
		return 0;
	errno = 0;
	pid = strtoul(name, &end, 10);
	if (errno || pid > INT_MAX || strcmp(end, ".sock") != 0)
		return 0;
	return (pid_t)pid;
}

/* Whether name in dir (open as dfd) is a dead daemon's socket: see ctl_remove_stale(). */
static bool is_stale(int dfd, const char *dir, const char *name)
{
	pid_t pid = name_pid(name);
	struct sockaddr_un sa;
	struct stat st;
	char path[sizeof(sa.sun_path) + 1];

	if (!pid || kill(pid, 0) == 0 || errno != ESRCH)
		return false;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISSOCK(st.st_mode) ||
	    st.st_uid != geteuid())
		return false;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path) ||
	    fill_addr(path, &sa) < 0)
		return false;
	return probe(&sa) == -ECONNREFUSED;
}

int ctl_remove_stale(const char *path)
{
	char *dir = dir_of(path);
	struct dirent *e;
	DIR *d;
	int n = 0;

	if (!dir)
		return -ENOMEM;
	d = opendir(dir);
	if (!d) {
		n = -errno;
		goto out_free;
	}
	while ((e = readdir(d)))
		if (is_stale(dirfd(d), dir, e->d_name) && unlinkat(dirfd(d), e->d_name, 0) == 0)
			n++;
	closedir(d);
out_free:
	free(dir);
	return n;
}
