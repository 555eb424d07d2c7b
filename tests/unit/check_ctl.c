/* Unit tests of the control socket's server (fs/ctl.c) driven by the client functions of
 * ctl_client.c: replies and errors, streaming, concurrent clients, overlong lines, socket
 * creation and permissions, stopping. Test handlers stand in for the daemon's. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl.h"
#include "ctl_client.h"
#include "suite.h"

struct tctx {
	atomic_int streams_ended; /* log --follow handlers that saw the peer go */
	atomic_int logged;	  /* messages from the server's log callback */
	atomic_int flood_rc;	  /* what ended log --follow --since 7's flood, once it ended */
	atomic_int flood_ended;
	atomic_int blocked; /* truncate block: handlers waiting for release */
	atomic_int release;
};

#define MANY	    100 /* idle connections, or followers, beyond every limit of the server */
#define FLOOD_SINCE 7	/* log --follow --since 7 streams until the peer stops reading */

static char dir[64], sock[128];
static struct ctl_server *srv;
static struct tctx tctx;

static int h_status(void *ctx, const struct ctl_req *req, struct ctl_reply *r)
{
	ctl_reply_summary(r, "running");
	ctl_reply_kv(r, "mount", "/mnt/x");
	ctl_reply_kv(r, "name", "%s", "a b\n");
	ctl_reply_kv(r, "files", "%d", 42);
	return 0;
}

/* truncate block waits until the test sets release. */
static int h_truncate(void *ctx, const struct ctl_req *req, struct ctl_reply *r)
{
	struct tctx *t = ctx;

	if (!strcmp(req->path, "block")) {
		atomic_fetch_add(&t->blocked, 1);
		while (!atomic_load(&t->release))
			usleep(1000);
	}
	if (!strcmp(req->path, "missing")) {
		ctl_reply_errmsg(r, "no such file: %s", req->path);
		return -ENOENT;
	}
	ctl_reply_kv(r, "size", "%llu", (unsigned long long)req->size);
	return 0;
}

static int h_stats(void *ctx, const struct ctl_req *req, struct ctl_reply *r)
{
	return -EIO;
}

static int h_revoke(void *ctx, const struct ctl_req *req, struct ctl_reply *r)
{
	return ctl_reply_kv(r, "bad key", "x");
}

/* log --follow --since FLOOD_SINCE: streams lines until sending fails. */
static int flood(struct tctx *t, struct ctl_reply *r)
{
	char line[1024];
	int rc;

	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	while ((rc = ctl_reply_stream(r, line)) == 0)
		;
	atomic_store(&t->flood_rc, rc);
	atomic_store(&t->flood_ended, 1);
	return 0;
}

/* log: three events; with --follow, streams them and waits for the peer to go. */
static int h_log(void *ctx, const struct ctl_req *req, struct ctl_reply *r)
{
	static const char *events[] = { "seq=1 cmd=inval", "seq=2 cmd=write",
					"seq=3 target=\"a b\"" };
	struct tctx *t = ctx;

	for (int i = 0; i < 3 && !req->follow; i++)
		ctl_reply_kv(r, "event", "%s", events[i]);
	if (!req->follow)
		return 0;
	if (req->has_since && req->since == FLOOD_SINCE)
		return flood(t, r);
	/* as the daemon's handler does: a refused stream is the err reply */
	if (ctl_reply_stream(r, events[0]) < 0)
		return 0;
	for (int i = 1; i < 3; i++)
		ck_assert_int_eq(ctl_reply_stream(r, events[i]), 0);
	ck_assert_int_eq(ctl_reply_stream(r, "two\nlines"), -EINVAL);
	for (int i = 0; i < 1000 && ctl_reply_alive(r) == 0; i++)
		usleep(10 * 1000);
	ck_assert_int_eq(ctl_reply_stream(r, "late"), -EPIPE);
	atomic_fetch_add(&t->streams_ended, 1);
	return 0;
}

static void h_log_msg(void *ctx, const char *msg)
{
	struct tctx *t = ctx;

	atomic_fetch_add(&t->logged, 1);
}

/* Before every handler: PATH "refused" is answered here, "alias" becomes "missing". */
static int h_prepare(void *ctx, struct ctl_req *req, struct ctl_reply *r)
{
	if (req->path && !strcmp(req->path, "refused")) {
		ctl_reply_errmsg(r, "refused before the handler");
		return -EXDEV;
	}
	if (req->path && !strcmp(req->path, "alias")) {
		free(req->path);
		req->path = strdup("missing");
	}
	return 0;
}

static const struct ctl_handlers handlers = {
	.cmd = { [CTL_STATUS] = h_status,
		 [CTL_TRUNCATE] = h_truncate,
		 [CTL_STATS] = h_stats,
		 [CTL_REVOKE] = h_revoke,
		 [CTL_LOG] = h_log },
	.prepare = h_prepare,
	.log = h_log_msg,
};

static void setup(void)
{
	atomic_store(&tctx.streams_ended, 0);
	atomic_store(&tctx.logged, 0);
	atomic_store(&tctx.flood_ended, 0);
	atomic_store(&tctx.blocked, 0);
	atomic_store(&tctx.release, 0);
	strcpy(dir, "/tmp/check_ctl.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/run/ctl.sock", dir);
	ck_assert_int_eq(ctl_listen(sock, &handlers, NULL, &tctx, &srv), 0);
}

/* Replaces the fixture's server by one with these limits, on the same socket. */
static void relisten(const struct ctl_limits *lim)
{
	ctl_stop(srv);
	srv = NULL;
	ck_assert_int_eq(ctl_listen(sock, &handlers, lim, &tctx, &srv), 0);
}

static void teardown(void)
{
	char run[160];

	ctl_stop(srv);
	srv = NULL;
	snprintf(run, sizeof(run), "%s/run", dir);
	rmdir(run);
	rmdir(dir);
}

static struct ctl_client *client(void)
{
	struct ctl_client *c;
	char err[256];

	ck_assert_msg(ctl_client_connect(sock, &c, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(c->version, CTL_PROTO_VERSION);
	return c;
}

static int request(struct ctl_client *c, const char *line, struct ctl_result *r)
{
	return ctl_client_request(c, line, strlen(line), r);
}

START_TEST(test_ok_reply)
{
	struct ctl_client *c = client();
	struct ctl_result r;

	ck_assert_int_eq(request(c, "status", &r), 0);
	ck_assert(r.is_ok);
	ck_assert_str_eq(r.text, "running");
	ck_assert_uint_eq(r.nkv, 3);
	ck_assert_str_eq(r.kv[1].key, "name");
	ck_assert_str_eq(r.kv[1].value, "a b\n");
	ck_assert_str_eq(r.kv[1].raw, "\"a b\\n\"");
	ck_assert_str_eq(r.kv[2].value, "42");
	ctl_result_free(&r);
	ck_assert_int_eq(request(c, "truncate /f 4K", &r), 0);
	ck_assert(r.is_ok);
	ck_assert_str_eq(r.kv[0].value, "4096");
	ctl_result_free(&r);
	ctl_client_close(c);
}
END_TEST

START_TEST(test_err_replies)
{
	struct ctl_client *c = client();
	struct ctl_result r;

	ck_assert_int_eq(request(c, "truncate missing 0", &r), 0);
	ck_assert(!r.is_ok);
	ck_assert_int_eq(r.error, ENOENT);
	ck_assert_str_eq(r.text, "no such file: missing");
	ctl_result_free(&r);
	/* the prepare hook: answers instead of the handler, or rewrites the request */
	ck_assert_int_eq(request(c, "truncate refused 0", &r), 0);
	ck_assert_str_eq(r.errname, "EXDEV");
	ck_assert_str_eq(r.text, "refused before the handler");
	ctl_result_free(&r);
	ck_assert_int_eq(request(c, "truncate alias 0", &r), 0);
	ck_assert_str_eq(r.text, "no such file: missing");
	ctl_result_free(&r);
	ck_assert_int_eq(request(c, "stats", &r), 0);
	ck_assert_str_eq(r.errname, "EIO");
	ck_assert_str_eq(r.text, "Input/output error");
	ctl_result_free(&r);
	ck_assert_int_eq(request(c, "abort", &r), 0);
	ck_assert_str_eq(r.errname, "ENOSYS");
	ck_assert_str_eq(r.text, "this daemon does not implement abort");
	ctl_result_free(&r);
	ck_assert_int_eq(request(c, "revoke f", &r), 0);
	ck_assert_str_eq(r.errname, "EINVAL");
	ctl_result_free(&r);
	ck_assert_int_eq(request(c, "truncate f 12Q", &r), 0);
	ck_assert_str_eq(r.errname, "EINVAL");
	ck_assert_str_eq(r.text,
			 "truncate: SIZE '12Q' is not a number (accepted: 4096, 8K, 2M, 1G)");
	ctl_result_free(&r);
	ck_assert_int_eq(request(c, "truncate f 16777216T", &r), 0);
	ck_assert_str_eq(r.errname, "ERANGE");
	ctl_result_free(&r);
	ck_assert_int_eq(request(c, "", &r), 0);
	ck_assert_str_eq(r.text, "empty request line");
	ctl_result_free(&r);
	ctl_client_close(c);
}
END_TEST

/* Speaks the protocol by hand: CRLF, NUL bytes, several requests in one write. */
START_TEST(test_raw_socket)
{
	static const char reqs[] = "status\r\nstat\0s\nstats\n";
	struct ctl_client *c = client();
	struct ctl_result r;

	ck_assert_int_eq(ctl_write_all(c->fd, reqs, sizeof(reqs) - 1), 0);
	ck_assert_int_eq(ctl_result_read(&c->lines, &r), 0);
	ck_assert(r.is_ok);
	ctl_result_free(&r);
	ck_assert_int_eq(ctl_result_read(&c->lines, &r), 0);
	ck_assert_str_eq(r.errname, "EINVAL");
	ck_assert_str_eq(r.text, "request contains a NUL byte");
	ctl_result_free(&r);
	ck_assert_int_eq(ctl_result_read(&c->lines, &r), 0);
	ck_assert_str_eq(r.errname, "EIO");
	ctl_result_free(&r);
	ctl_client_close(c);
}
END_TEST

START_TEST(test_overlong_line)
{
	struct ctl_client *c = client();
	size_t n = 200 * 1024;
	char *big = malloc(n);
	struct ctl_result r;

	memset(big, 'a', n);
	memcpy(big, "write f 0 ", 10);
	ck_assert_int_eq(ctl_client_request(c, big, n, &r), 0);
	ck_assert_str_eq(r.errname, "E2BIG");
	ck_assert_str_eq(r.text, "request line longer than 65536 bytes");
	ctl_result_free(&r);
	ck_assert_int_eq(ctl_client_request(c, big, CTL_LINE_MAX - 1, &r), 0);
	ck_assert_str_eq(r.errname, "ENOSYS"); /* parsed: no handler for write here */
	ctl_result_free(&r);
	ck_assert_int_eq(ctl_client_request(c, big, CTL_LINE_MAX, &r), 0);
	ck_assert_str_eq(r.errname, "E2BIG");
	ctl_result_free(&r);
	ck_assert_int_eq(request(c, "status", &r), 0);
	ck_assert(r.is_ok);
	ctl_result_free(&r);
	ctl_client_close(c);
	free(big);
}
END_TEST

static void wait_for(atomic_int *v, int want)
{
	for (int i = 0; i < 2000 && atomic_load(v) < want; i++)
		usleep(10 * 1000);
	ck_assert_int_eq(atomic_load(v), want);
}

/* A follower streams while a second client is served; the handler sees it go. */
START_TEST(test_stream_and_concurrent)
{
	struct ctl_client *a = client(), *b;
	struct ctl_result r;
	char *line;
	size_t len;

	ck_assert_int_eq(request(a, "log --follow", &r), 0);
	ck_assert(r.is_ok);
	ck_assert_uint_eq(r.nkv, 0);
	ctl_result_free(&r);
	ck_assert_int_eq(ctl_client_stream_line(a, &line, &len), 1);
	ck_assert_str_eq(line, "seq=1 cmd=inval");
	b = client();
	ck_assert_int_eq(request(b, "status", &r), 0);
	ck_assert(r.is_ok);
	ctl_result_free(&r);
	ck_assert_int_eq(request(b, "log", &r), 0);
	ck_assert_uint_eq(r.nkv, 3);
	ck_assert_str_eq(r.kv[2].value, "seq=3 target=\"a b\"");
	ctl_result_free(&r);
	ctl_client_close(b);
	ck_assert_int_eq(ctl_client_stream_line(a, &line, &len), 1);
	ck_assert_int_eq(ctl_client_stream_line(a, &line, &len), 1);
	ck_assert_str_eq(line, "seq=3 target=\"a b\"");
	ck_assert_int_eq(atomic_load(&tctx.streams_ended), 0);
	ctl_client_close(a);
	wait_for(&tctx.streams_ended, 1);
}
END_TEST

/* Stopping the server ends a stream with its empty line, and removes the socket. */
START_TEST(test_stop_ends_stream)
{
	struct ctl_client *a = client(), *idle = client();
	struct ctl_result r;
	struct stat st;
	char *line;
	size_t len;

	ck_assert_int_eq(request(a, "log --follow", &r), 0);
	ctl_result_free(&r);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(ctl_client_stream_line(a, &line, &len), 1);
	ctl_stop(srv);
	srv = NULL;
	ck_assert_int_eq(atomic_load(&tctx.streams_ended), 1);
	ck_assert_int_eq(ctl_client_stream_line(a, &line, &len), 0);
	ck_assert_int_eq(ctl_client_stream_line(a, &line, &len), -ECONNRESET);
	ck_assert_int_lt(request(idle, "status", &r), 0);
	ck_assert_int_eq(stat(sock, &st), -1);
	ctl_client_close(a);
	ctl_client_close(idle);
}
END_TEST

START_TEST(test_socket_files)
{
	struct ctl_server *other;
	char run[160];
	struct stat st;
	int fd;

	ck_assert_int_eq(stat(sock, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	snprintf(run, sizeof(run), "%s/run", dir);
	ck_assert_int_eq(stat(run, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0700);
	ck_assert_int_eq(ctl_listen(sock, &handlers, NULL, &tctx, &other), -EADDRINUSE);
	ck_assert_ptr_null(other);
	ck_assert_int_ge(atomic_load(&tctx.logged), 1);
	snprintf(run, sizeof(run), "%s/plain", dir);
	fd = open(run, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(ctl_listen(run, &handlers, NULL, &tctx, &other), -EEXIST);
	unlink(run);
	ck_assert_int_eq(ctl_listen("/tmp/x/../../a/much/too/long/path/for/a/unix/socket/"
				    "address/which/holds/only/one/hundred/and/eight/bytes/x.sock",
				    &handlers, NULL, &tctx, &other),
			 -ENAMETOOLONG);
}
END_TEST

/* A socket left by a dead daemon is replaced. */
START_TEST(test_stale_socket)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ctl_server *other;
	char path[160];
	int fd;

	snprintf(path, sizeof(path), "%s/stale.sock", dir);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	ck_assert_int_eq(ctl_listen(path, &handlers, NULL, &tctx, &other), 0);
	ctl_stop(other);
	ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

/* Reads the reply the server left on c before closing it, then the end of the stream. */
static void expect_closed(struct ctl_client *c, const char *errname, const char *text)
{
	struct ctl_result r;

	ck_assert_int_eq(ctl_result_read(&c->lines, &r), 0);
	ck_assert_str_eq(r.errname, errname);
	ck_assert_msg(strstr(r.text, text), "%s", r.text);
	ctl_result_free(&r);
	ck_assert_int_eq(ctl_result_read(&c->lines, &r), -ECONNRESET);
	ctl_result_free(&r);
}

/* log --follow on c, and its three lines: c is a follower until it closes. */
static void follow(struct ctl_client *c)
{
	struct ctl_result r;
	char *line;
	size_t len;

	ck_assert_int_eq(request(c, "log --follow", &r), 0);
	ck_assert_msg(r.is_ok, "%s %s", r.errname, r.text);
	ctl_result_free(&r);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(ctl_client_stream_line(c, &line, &len), 1);
}

static void expect_served(struct ctl_client *c)
{
	struct ctl_result r;

	ck_assert_int_eq(request(c, "status", &r), 0);
	ck_assert_msg(r.is_ok, "%s %s", r.errname, r.text);
	ctl_result_free(&r);
}

/* More idle connections than command slots: each new one closes the one idle the longest,
 * which is told why; a command is served, the newest idle connections stay usable. */
START_TEST(test_idle_evicted)
{
	struct ctl_client *c[MANY], *cmd;
	struct ctl_result r;
	int i;

	for (i = 0; i < MANY; i++)
		c[i] = client();
	cmd = client();
	expect_served(cmd);
	expect_closed(c[0], "EMFILE", "idle connection closed: all 64 command slots were taken");
	/* a request on an evicted connection gets the reason as its reply */
	ck_assert_int_eq(request(c[1], "status", &r), 0);
	ck_assert_str_eq(r.errname, "EMFILE");
	ctl_result_free(&r);
	expect_served(c[MANY - 1]);
	expect_served(c[MANY - CTL_MAX_CMDS + 2]);
	for (i = 0; i < MANY; i++)
		ctl_client_close(c[i]);
	ctl_client_close(cmd);
}
END_TEST

/* Followers do not take command slots. */
START_TEST(test_many_followers)
{
	struct ctl_client *c[MANY], *cmd;
	int i;

	for (i = 0; i < MANY; i++) {
		c[i] = client();
		follow(c[i]);
	}
	cmd = client();
	expect_served(cmd);
	ctl_client_close(cmd);
	for (i = 0; i < MANY; i++)
		ctl_client_close(c[i]);
	wait_for(&tctx.streams_ended, MANY);
}
END_TEST

/* Streams have their own cap; a follower beyond it is told, and its connection stays. */
START_TEST(test_stream_cap)
{
	static const struct ctl_limits lim = { .max_streams = 2 };
	struct ctl_client *f[2], *extra;
	struct ctl_result r;

	relisten(&lim);
	for (int i = 0; i < 2; i++) {
		f[i] = client();
		follow(f[i]);
	}
	extra = client();
	ck_assert_int_eq(request(extra, "log --follow", &r), 0);
	ck_assert_str_eq(r.errname, "EMFILE");
	ck_assert_str_eq(r.text, "too many streams: 2 clients follow already");
	ctl_result_free(&r);
	expect_served(extra);
	ctl_client_close(f[0]);
	wait_for(&tctx.streams_ended, 1);
	follow(extra);
	ctl_client_close(extra);
	ctl_client_close(f[1]);
	wait_for(&tctx.streams_ended, 3);
}
END_TEST

/* Only when every command slot runs a command is a new connection refused. */
START_TEST(test_all_busy)
{
	static const struct ctl_limits lim = { .max_cmds = 2 };
	struct ctl_client *busy[2], *extra;
	struct ctl_result r;
	char err[256];

	relisten(&lim);
	for (int i = 0; i < 2; i++) {
		busy[i] = client();
		ck_assert_int_eq(ctl_write_all(busy[i]->fd, "truncate block 0\n", 17), 0);
	}
	wait_for(&tctx.blocked, 2);
	ck_assert_int_eq(ctl_client_connect(sock, &extra, err, sizeof(err)), -EMFILE);
	ck_assert_msg(
		strstr(err, "too many control connections: all 2 command slots run a command"),
		"%s", err);
	atomic_store(&tctx.release, 1);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(ctl_result_read(&busy[i]->lines, &r), 0);
		ck_assert(r.is_ok);
		ctl_result_free(&r);
	}
	/* done, they go idle and give their slots to newcomers */
	for (int i = 0; i < 100 && ctl_client_connect(sock, &extra, err, sizeof(err)); i++)
		usleep(10 * 1000);
	ck_assert_msg(extra, "%s", err);
	expect_served(extra);
	ctl_client_close(extra);
	for (int i = 0; i < 2; i++)
		ctl_client_close(busy[i]);
}
END_TEST

/* A connection that sends nothing is closed, and told why; requests keep it open. */
START_TEST(test_idle_timeout)
{
	static const struct ctl_limits lim = { .idle_ms = 2000 };
	struct ctl_client *c;

	relisten(&lim);
	c = client();
	/* each request restarts the clock: 2.6 s in all, never 2 s without one */
	usleep(1300 * 1000);
	expect_served(c);
	usleep(1300 * 1000);
	expect_served(c);
	expect_closed(c, "ETIMEDOUT", "no request for 2 s: connection closed");
	ctl_client_close(c);
}
END_TEST

/* A follower that reads nothing is dropped after the send timeout; others are served. */
START_TEST(test_slow_reader)
{
	static const struct ctl_limits lim = { .send_ms = 300 };
	struct ctl_client *slow, *c;
	char line[32];

	relisten(&lim);
	slow = client();
	snprintf(line, sizeof(line), "log --follow --since %d\n", FLOOD_SINCE);
	ck_assert_int_eq(ctl_write_all(slow->fd, line, strlen(line)), 0);
	wait_for(&tctx.flood_ended, 1);
	ck_assert_int_eq(atomic_load(&tctx.flood_rc), -EPIPE);
	c = client();
	expect_served(c);
	ctl_client_close(c);
	ctl_client_close(slow);
}
END_TEST

/* Another user is refused with a readable err (needs root to become one). */
START_TEST(test_other_uid)
{
	char run[160], err[256];
	struct ctl_client *c;
	pid_t pid;
	int status;

	if (geteuid() != 0)
		return;
	snprintf(run, sizeof(run), "%s/run", dir);
	ck_assert_int_eq(chmod(dir, 0755) | chmod(run, 0755) | chmod(sock, 0666), 0);
	pid = fork();
	if (pid == 0) {
		if (setgid(65534) || setuid(65534))
			_exit(3);
		if (ctl_client_connect(sock, &c, err, sizeof(err)) != -EACCES)
			_exit(1);
		_exit(strstr(err, "control socket belongs to uid 0") ? 0 : 2);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

START_TEST(test_default_path)
{
	char buf[128], want[128];

	setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
	ck_assert_int_eq(ctl_default_path(buf, sizeof(buf)), 0);
	snprintf(want, sizeof(want), "/run/user/1000/sigbusfs/%d.sock", (int)getpid());
	ck_assert_str_eq(buf, want);
	ck_assert_int_eq(ctl_default_path(buf, 10), -ENAMETOOLONG);
	setenv("XDG_RUNTIME_DIR", "relative", 1);
	ck_assert_int_eq(ctl_default_path(buf, sizeof(buf)), 0);
	if (geteuid() == 0)
		snprintf(want, sizeof(want), "/run/sigbusfs/%d.sock", (int)getpid());
	else
		snprintf(want, sizeof(want), "/tmp/sigbusfs-%u/%d.sock", (unsigned)geteuid(),
			 (int)getpid());
	ck_assert_str_eq(buf, want);
	unsetenv("XDG_RUNTIME_DIR");
	ck_assert_int_eq(ctl_default_path(buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, want);
}
END_TEST

/* The PID of a process that was and is no more. */
static pid_t dead_pid(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
	return pid;
}

/* A socket file at dir/name: bound and closed (dead), or listening (returns its fd). */
static int make_socket(const char *dir, const char *name, bool is_live)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir, name);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (is_live) {
		ck_assert_int_eq(listen(fd, 1), 0);
		return fd;
	}
	close(fd);
	return -1;
}

static bool exists(const char *dir, const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

/* Only sockets named PID.sock, ours, of a dead PID and with no listener are removed. */
START_TEST(test_remove_stale)
{
	char d[64] = "/tmp/check_ctl.XXXXXX", path[128], dead[5][32], alive[32], ours[32];
	int live_fd, fd;

	ck_assert_ptr_nonnull(mkdtemp(d));
	snprintf(path, sizeof(path), "%s/x.sock", d);
	ck_assert_int_eq(ctl_remove_stale(path), 0);
	for (int i = 0; i < 5; i++)
		snprintf(dead[i], sizeof(dead[i]), "%d.sock", (int)dead_pid());
	snprintf(alive, sizeof(alive), "%d.sock", (int)getppid());
	snprintf(ours, sizeof(ours), "%d.sock", (int)getpid());
	make_socket(d, dead[0], false);			 /* removed */
	make_socket(d, dead[1], false);			 /* removed */
	live_fd = make_socket(d, dead[2], true);	 /* kept: someone listens */
	make_socket(d, alive, false);			 /* kept: its PID lives */
	make_socket(d, "x.sock", false);		 /* kept: not a PID */
	make_socket(d, "0123.sock", false);		 /* kept: not a PID as we write them */
	snprintf(path, sizeof(path), "%s.old", dead[3]); /* kept: not .sock */
	make_socket(d, path, false);
	snprintf(path, sizeof(path), "%s/%s", d, dead[3]); /* kept: not a socket */
	fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	if (geteuid() == 0) { /* kept: another user's */
		make_socket(d, dead[4], false);
		snprintf(path, sizeof(path), "%s/%s", d, dead[4]);
		ck_assert_int_eq(chown(path, 65534, 65534), 0);
	}
	snprintf(path, sizeof(path), "%s/%s", d, ours);
	ck_assert_int_eq(ctl_remove_stale(path), 2);
	ck_assert(!exists(d, dead[0]) && !exists(d, dead[1]));
	ck_assert(exists(d, dead[2]) && exists(d, dead[3]) && exists(d, alive));
	ck_assert(exists(d, "x.sock") && exists(d, "0123.sock"));
	ck_assert(geteuid() != 0 || exists(d, dead[4]));
	close(live_fd);
	snprintf(path, sizeof(path), "rm -r %s", d);
	ck_assert_int_eq(system(path), 0);
	ck_assert_int_eq(ctl_remove_stale("/nonexistent/dir/1.sock"), -ENOENT);
}
END_TEST

/* A reply built outside a connection, as the daemon's handler tests will use it. */
START_TEST(test_reply_format)
{
	struct ctl_buf out = { 0 };
	struct ctl_reply r;

	ctl_reply_init(&r);
	ck_assert_int_eq(ctl_reply_summary(&r, "%d rules", 2), 0);
	ck_assert_int_eq(ctl_reply_kv(&r, "rule", "1 read %s", "f"), 0);
	ck_assert_int_eq(ctl_reply_kv(&r, "rule", "2"), 0);
	ck_assert_int_eq(ctl_reply_stream(&r, "x"), -ENOTCONN);
	ck_assert_int_eq(ctl_reply_format(&r, 0, &out), 0);
	ck_assert_str_eq(out.p, "ok 2 rules\nrule=\"1 read f\"\nrule=2\n\n");
	ctl_buf_free(&out);
	ctl_reply_errmsg(&r, "bad\nthing");
	ck_assert_int_eq(ctl_reply_format(&r, -ENOSPC, &out), 0);
	ck_assert_str_eq(out.p, "err ENOSPC bad\\nthing\nrule=\"1 read f\"\nrule=2\n\n");
	ctl_buf_free(&out);
	ctl_reply_fini(&r);
	ctl_reply_init(&r);
	ck_assert_int_eq(ctl_reply_format(&r, -4000, &out), 0);
	ck_assert_str_eq(out.p, "err 4000 Unknown error 4000\n\n");
	ctl_buf_free(&out);
	ck_assert_int_eq(ctl_reply_format(&r, -5000, &out), 0);
	ck_assert_str_eq(out.p, "err EIO Input/output error\n\n");
	ctl_buf_free(&out);
	ctl_reply_fini(&r);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ctl");

	fx_unit_tcase(s, "server", 30, setup, teardown,
		      FX_TESTS(test_ok_reply, test_err_replies, test_raw_socket, test_overlong_line,
			       test_stream_and_concurrent, test_stop_ends_stream, test_socket_files,
			       test_stale_socket, test_idle_evicted, test_many_followers,
			       test_stream_cap, test_all_busy, test_idle_timeout, test_slow_reader,
			       test_other_uid));
	fx_unit_tcase(s, "standalone", 0, NULL, NULL,
		      FX_TESTS(test_default_path, test_remove_stale, test_reply_format));
	return fx_run_suite(s);
}
