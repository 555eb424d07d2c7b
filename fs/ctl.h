/* The control socket's server: listening, one thread per connection, the owner check,
 * the greeting, reading and parsing requests, calling the daemon's handler for each
 * command and writing its reply. What the commands do is the handlers' business. */
#ifndef SIGBUSFS_CTL_H
#define SIGBUSFS_CTL_H

#include <stdbool.h>

#include "ctl_proto.h"

/* The server's limits. Only the daemon's user and root may connect at all, so every peer is
 * the owner: a new connection that finds every command slot taken closes the connection
 * idle the longest (it reads "err EMFILE ..."), and is refused only when every slot runs a
 * command. Streams (log --follow) leave their command slot while they stream. */
#define CTL_MAX_CMDS	   64  /* connections waiting for or running a command */
#define CTL_MAX_STREAMS	   256 /* connections streaming, besides those */
#define CTL_IDLE_TIMEOUT_S 300 /* no request for this long: "err ETIMEDOUT ...", closed */
#define CTL_SEND_TIMEOUT_S 30  /* a peer that reads nothing for this long is dropped */

struct ctl_limits {
	unsigned max_cmds;    /* CTL_MAX_CMDS */
	unsigned max_streams; /* CTL_MAX_STREAMS */
	unsigned idle_ms;     /* CTL_IDLE_TIMEOUT_S, in milliseconds */
	unsigned send_ms;     /* CTL_SEND_TIMEOUT_S, in milliseconds */
};

struct ctl_server;
struct ctl_conn;

/* What a handler answers, collected by the ctl_reply_*() calls below; the transport turns
 * it into "ok SUMMARY" or "err ERRNO_NAME MESSAGE", the key=value lines and an empty
 * line. Members are ctl.c's; tests may read them. */
struct ctl_reply {
	struct ctl_buf summary; /* one line, control bytes escaped */
	struct ctl_buf kv;	/* "key=value\n" lines, values quoted as needed */
	struct ctl_buf errmsg;	/* one line, control bytes escaped */
	int err;		/* 0, or the first failure of a ctl_reply_*() call */
	int fd;			/* the peer; -1 for a reply made with ctl_reply_init() */
	bool is_streaming;	/* the header went out; stream lines follow */
	struct ctl_conn *conn;	/* NULL for a reply made with ctl_reply_init() */
};

/* Handles one parsed request: fills r and returns 0 (reply "ok"), or -errno (reply "err";
 * the message is what ctl_reply_errmsg() set, else strerror). Positive returns count as 0;
 * anything below -CTL_ERRNO_MAX as -EIO. Handlers run on the connection's thread, several
 * at once (one per connection), and must lock what they share; they may block (the
 * command is synchronous), but ctl_stop() waits for them. req and r are valid only during
 * the call. */
typedef int (*ctl_handler_fn)(void *ctx, const struct ctl_req *req, struct ctl_reply *r);
/* Receives a message about a failure no client can be told of ("ctl: accept: ..."). */
typedef void (*ctl_log_fn)(void *ctx, const char *msg);
/* Runs before every handler, on its thread, and may rewrite what req owns (the daemon
 * normalises PATH there). 0 to call the handler, or -errno to answer err at once, the
 * message set with ctl_reply_errmsg(). */
typedef int (*ctl_prepare_fn)(void *ctx, struct ctl_req *req, struct ctl_reply *r);

struct ctl_handlers {
	ctl_handler_fn cmd[CTL_CMD_COUNT]; /* by enum ctl_cmd; NULL answers ENOSYS */
	ctl_prepare_fn prepare;		   /* may be NULL */
	ctl_log_fn log;			   /* may be NULL */
};

/* Listens on the Unix socket path (mode 0600; its parent directory is created 0700 if
 * missing, and must belong to the daemon's euid or root) and serves connections on their
 * own threads, with signals blocked, until ctl_stop(), within lim (NULL: the CTL_* values
 * above; tests shorten them). A stale socket at path is removed;
 * -EADDRINUSE if a live server answers there, -EEXIST if path is something else,
 * -ENAMETOOLONG if it does not fit in sun_path, -EPERM for a parent owned by another user,
 * or another -errno; h->log hears the details. h and ctx are borrowed until ctl_stop().
 * Peers whose uid is neither our euid nor 0 get "err EACCES ..." and are closed. */
int ctl_listen(const char *path, const struct ctl_handlers *h, const struct ctl_limits *lim,
	       void *ctx, struct ctl_server **out);

/* Removes from the directory of path (a ctl_default_path()) the sockets of daemons that
 * died without cleaning up: entries named PID.sock that are sockets owned by our euid,
 * whose PID is not a live process and on which no one listens (connect() is refused).
 * Anything else is left alone. Returns how many were removed, or -errno if the directory
 * cannot be read (-ENOENT when there is none yet). */
int ctl_remove_stale(const char *path);

/* Never from a handler (it waits for handlers). Stops accepting, removes the socket, ends every
 * connection (streams first see ctl_reply_alive() fail; a connection still busy after 2 s is shut
 * down both ways) and waits until every handler has returned; then frees s. NULL is a no-op. */
void ctl_stop(struct ctl_server *s);

/* The default socket path: $XDG_RUNTIME_DIR/sigbusfs/PID.sock when that variable holds an
 * absolute path, else /run/sigbusfs/PID.sock for root, /tmp/sigbusfs-UID/PID.sock for
 * others. 0, or -ENAMETOOLONG if it does not fit in size or in sun_path. Reads the
 * environment: call it from main(). */
int ctl_default_path(char *buf, size_t size);

/* Adds the line key=value, value being printf(fmt, ...) quoted as ctl_buf_add_quoted()
 * does. Keys are [A-Za-z0-9_.-]+ and may repeat (a list). 0, -ENOMEM, or -EINVAL for a
 * bad key; the first failure also turns the reply into an err. */
int ctl_reply_kv(struct ctl_reply *r, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Sets the text after "ok " (replacing an earlier one). 0 or -ENOMEM. */
int ctl_reply_summary(struct ctl_reply *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Sets the message of an err reply (replacing an earlier one); used only when the handler
 * returns -errno. 0 or -ENOMEM. */
int ctl_reply_errmsg(struct ctl_reply *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Streaming (log --follow): the first call sends the reply header ("ok" with what was
 * collected so far), then each call sends line, which must be non-empty and hold no
 * newline (-EINVAL). When the handler returns, the transport ends the stream with an
 * empty line and serves the next request. 0, -EPIPE once the peer is gone, did not read
 * for the send timeout, or the server is stopping, -ENOTCONN for a reply made with
 * ctl_reply_init(), or r->err if an earlier ctl_reply_*() call failed (no header goes
 * out then). The first call fails -EMFILE, and turns the reply into that err, when the
 * server already streams to max_streams peers. Call only from the handler's own thread, holding no
 * lock others need (it may block while the peer's buffer is full). */
int ctl_reply_stream(struct ctl_reply *r, const char *line);
/* Without blocking: 0 while the peer is connected and the server runs, -EPIPE otherwise
 * (-ENOTCONN as above). A streaming handler that waits for events must call it at least
 * every 100 ms or so and return when it fails. */
int ctl_reply_alive(struct ctl_reply *r);

/* A reply outside any connection, for tests of handlers: stream calls fail -ENOTCONN. */
void ctl_reply_init(struct ctl_reply *r);
void ctl_reply_fini(struct ctl_reply *r);
/* Appends to out the wire text of r as answered with rc: the status line, the key=value
 * lines and the empty line. 0 or -ENOMEM. */
int ctl_reply_format(const struct ctl_reply *r, int rc, struct ctl_buf *out);

#endif
