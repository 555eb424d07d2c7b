/* The client's side of the control protocol: finding a mount's socket, connecting and
 * checking the greeting, sending requests and reading replies and streamed lines. Used by
 * sigbusctl, contrib/ tools and tests; the server is the daemon's (fs/ctl.c). */
#ifndef SIGBUSFS_CTL_CLIENT_H
#define SIGBUSFS_CTL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctl_proto.h"

/* Reads the path of the control socket of the sigbusfs mount at mountpoint, as its daemon
 * publishes it (ctl_xattr.h), into buf (NUL-terminated). 0, or the -errno of getxattr():
 * -ENODATA or -ENOTSUP when mountpoint is no sigbusfs mount, -ERANGE when buf is too
 * small. */
int ctl_client_socket_of(const char *mountpoint, char *buf, size_t size);

/* A key=value line of a reply, or a key=value word of a streamed line. */
struct ctl_kv {
	char *key;
	char *value; /* unescaped, NUL-terminated */
	size_t value_len;
	char *raw; /* the value as it was on the wire (quoted if it needed it) */
};
/* A reply as a client reads it. */
struct ctl_result {
	bool is_ok;
	int error;     /* !is_ok: the positive errno named by errname, 0 if unknown here */
	char *errname; /* !is_ok: "ENOENT" as sent */
	char *text;    /* the summary (ok) or the message (err); "" if none */
	struct ctl_kv *kv;
	size_t nkv;
};
/* Reads one reply: the status line, key=value lines, the empty line. 0, -EBADMSG for a
 * malformed reply, -ECONNRESET at end of file, -E2BIG, -ENOMEM or -errno. *out is zeroed
 * first and holds what was read either way: free it with ctl_result_free(). */
int ctl_result_read(struct ctl_lines *lr, struct ctl_result *out);
void ctl_result_free(struct ctl_result *r);
/* The value of the first key=value line named key, or NULL. */
const char *ctl_result_get(const struct ctl_result *r, const char *key);
/* That value as a decimal number (units_parse_u64()): 0, -ENOENT if there is no such key,
 * or -EINVAL or -ERANGE. */
int ctl_result_u64(const struct ctl_result *r, const char *key, uint64_t *out);
/* Splits a line of key=value words (values raw or quoted, as ctl_buf_add_quoted() writes
 * them) into a malloc'ed array. 0, -EINVAL if a word is not key=value, or -ENOMEM. */
int ctl_kv_split(const char *line, size_t len, struct ctl_kv **out, size_t *n_out);
void ctl_kv_free(struct ctl_kv *kv, size_t n);

/* A client connection, greeting checked. */
struct ctl_client {
	int fd;
	struct ctl_lines lines;
	long version; /* the server's protocol version */
};
/* Connects to the socket at path and checks the greeting. 0, or -errno with a message in
 * err: "cannot connect to PATH: ...", -EPROTONOSUPPORT "daemon speaks control protocol N,
 * this PROG speaks 1", -EPROTO when the peer is no sigbusfs control socket, or the errno
 * of an err reply sent instead of the greeting (EACCES for another user). */
int ctl_client_connect(const char *path, struct ctl_client **out, char *err, size_t errsize);
/* Sends line (without newline; one is appended) and reads its reply into *out, which the
 * caller frees with ctl_result_free(). 0 when a reply came, ok or err (out->is_ok says),
 * or -errno as ctl_result_read(). When the server has closed the connection (idle
 * timeout, eviction), the err reply it left saying why is the result. */
int ctl_client_request(struct ctl_client *c, const char *line, size_t len, struct ctl_result *out);
/* The same for a request given as words (argv[0] the command), quoted as
 * ctl_build_line() does; also -E2BIG or -ENOMEM from building the line. */
int ctl_client_request_argv(struct ctl_client *c, int argc, char *const argv[],
			    struct ctl_result *out);
/* Reads one streamed line after an ok reply (log --follow): 1 with *line (valid until the
 * next call), 0 when the server ended the stream (an empty line), -ECONNRESET at end of
 * file, or -errno. */
int ctl_client_stream_line(struct ctl_client *c, char **line, size_t *len);
void ctl_client_close(struct ctl_client *c);

#endif
