/* The control protocol, shared by the daemon's server (fs/ctl.c) and every client
 * (fs/sigbusctl, contrib/, tests): the command table with its help text and ctl_parse()
 * (ctl_proto.c), and the bytes on the wire: tokens, quoting, errno names and line I/O
 * (ctl_wire.c). The client's side of a connection is ctl_client.h's. Nothing here knows
 * about FUSE or threads. */
#ifndef SIGBUSFS_CTL_PROTO_H
#define SIGBUSFS_CTL_PROTO_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Protocol versioning: on connect the server sends "sigbusfs-ctl N" (N = the version it
 * speaks; more words may follow in later versions and are ignored). A change that an old
 * peer could misread (a reply line's meaning, the quoting rules) bumps the version; a new
 * command or option does not, since an old server rejects it with a readable err. */
#define CTL_PROTO_VERSION  1
#define CTL_GREETING	   "sigbusfs-ctl"
#define CTL_LINE_MAX	   65536	       /* a request line, newline included */
#define CTL_REPLY_LINE_MAX (16u * 1024 * 1024) /* a reply line, as a client accepts it */
#define CTL_ERRNO_MAX	   4095		       /* --errno E accepts 1..CTL_ERRNO_MAX */
#define CTL_MS_MAX	   86400000u	       /* delay --ms N accepts 0..CTL_MS_MAX (one day) */

enum ctl_cmd {
	CTL_STATUS,
	CTL_STATS,
	CTL_LOG,
	CTL_INVAL,
	CTL_WRITE,
	CTL_TRUNCATE,
	CTL_PUNCH,
	CTL_REVOKE,
	CTL_UNPLUG,
	CTL_REPLUG,
	CTL_FAIL,
	CTL_DELAY,
	CTL_RULES,
	CTL_CLEAR,
	CTL_STORE,
	CTL_AUDIT,
	CTL_ABORT,
	CTL_POWERCUT,
	CTL_SYNC,
	CTL_ON,
	CTL_TORN,
	CTL_CMD_COUNT
};

enum ctl_op { CTL_OP_NONE, CTL_OP_READ, CTL_OP_WRITE, CTL_OP_FSYNC, CTL_OP_OPEN };

/* Where the bytes of write/store come from. */
enum ctl_src { CTL_SRC_NONE, CTL_SRC_DATA, CTL_SRC_PATTERN, CTL_SRC_FILE };

/* A parsed request. Numbers are checked: offsets, lengths and sizes are <= INT64_MAX and
 * off + len does not pass INT64_MAX. Freed with ctl_req_free(). */
struct ctl_req {
	enum ctl_cmd cmd;
	char *path;	    /* owned; relative to the mount root, as given: shorter than
			     * PATH_MAX, no component past NAME_MAX. The daemon normalises it
			     * before its handler runs (fs/path.h). NULL when the command
			     * takes no PATH or it was left out (stats) */
	bool has_range;	    /* OFF LEN given: inval, fail, delay; always set for punch */
	uint64_t off;	    /* bytes: OFF of the range, or of write and store */
	uint64_t len;	    /* bytes: LEN of the range; for write and store the number of
			     * bytes written (data_len or --len N; 0 with --from FILE
			     * without --len) */
	uint64_t size;	    /* bytes: truncate SIZE */
	enum ctl_src src;   /* write, store */
	uint8_t *data;	    /* owned: DATA (CTL_SRC_DATA); NUL-terminated for convenience */
	size_t data_len;    /* bytes in data, >= 1 when src is CTL_SRC_DATA */
	uint8_t *pattern;   /* owned: --pattern P as bytes (0xHH gives one byte) */
	size_t pattern_len; /* bytes in pattern, >= 1 when src is CTL_SRC_PATTERN */
	char *from;	    /* owned: --from FILE, an absolute path on the daemon's host */
	bool no_notify;	    /* write --no-notify */
	bool follow;	    /* log --follow */
	bool vanish;	    /* unplug --vanish */
	bool has_since;	    /* log --since SEQ */
	uint64_t since;
	bool has_errno; /* --errno E (revoke, fail) */
	int error;	/* E as a positive errno, 1..CTL_ERRNO_MAX */
	enum ctl_op op; /* --op: fail, delay; on's OP; CTL_OP_NONE elsewhere */
	bool has_count; /* --count N (>= 1); without it a rule stays until cleared */
	uint64_t count;
	uint64_t ms;	/* delay --ms N, milliseconds, <= CTL_MS_MAX */
	bool has_after; /* on --after N (>= 1) */
	uint64_t after;
	struct ctl_req *action; /* owned: on's "do COMMAND [ARGS]", never itself an on */
	bool has_id;		/* clear ID */
	uint64_t id;
	bool has_bytes; /* torn --bytes N: bytes of the write that persist */
	uint64_t bytes;
	bool has_pages; /* torn --pages N: whole pages of the write that persist */
	uint64_t pages;
};

/* Flags of a command. */
#define CTL_F_READONLY (1u << 0) /* changes neither the backend nor the kernel's view */
#define CTL_F_STREAM   (1u << 1) /* may stream lines after its reply (log --follow) */

/* What a positional argument is. */
enum ctl_arg {
	CTL_A_END,
	CTL_A_PATH,
	CTL_A_OFF,
	CTL_A_LEN,
	CTL_A_SIZE,
	CTL_A_DATA,
	CTL_A_ID,
	CTL_A_OP /* read, write, fsync, open: into op */
};

/* Options, as bits of ctl_cmd_desc.opts: CTL_OPT(CTL_O_FOLLOW). */
enum ctl_opt {
	CTL_O_FOLLOW,
	CTL_O_SINCE,
	CTL_O_PATTERN,
	CTL_O_LEN,
	CTL_O_FROM,
	CTL_O_NO_NOTIFY,
	CTL_O_ERRNO,
	CTL_O_VANISH,
	CTL_O_OP,
	CTL_O_COUNT,
	CTL_O_MS,
	CTL_O_AFTER,
	CTL_O_BYTES,
	CTL_O_PAGES,
	CTL_O_COUNT_ALL
};
#define CTL_OPT(o) (1u << (o))

/* One command: its name and grammar, and its help, which sigbusctl --help and the README
 * print. */
struct ctl_cmd_desc {
	const char *name;
	enum ctl_cmd cmd;
	unsigned flags;	      /* CTL_F_* */
	enum ctl_arg args[4]; /* positional arguments, in order; unused slots CTL_A_END */
	unsigned nargs_ok;    /* bit n set: n positional arguments are a complete request */
	unsigned opts;	      /* CTL_OPT() bits accepted */
	unsigned opts_needed; /* CTL_OPT() bits required */
	const char *usage;    /* "truncate PATH SIZE" */
	const char *brief;    /* one line for the command list */
	const char *help;     /* one paragraph, not wrapped */
	const char *example;  /* a sigbusctl command line */
	const char *records;  /* NULL, or the reply key whose values are records: one per
			       * line, each "k=v k=v ..." quoted as on the wire, a list even
			       * when one or none came (JSON: an array of objects) */
};

/* The command named name (exact match), or NULL. */
const struct ctl_cmd_desc *ctl_cmd_find(const char *name);
/* The descriptor of cmd; cmd must be < CTL_CMD_COUNT. Table order is enum order. */
const struct ctl_cmd_desc *ctl_cmd_get(enum ctl_cmd cmd);

/* Parses one request line (len bytes, an optional trailing "\n" or "\r\n" included) into
 * *out. Returns 0, or -errno with a one-line message naming the offending token in err:
 * -E2BIG for a line of CTL_LINE_MAX bytes or more, -ERANGE for a number out of range,
 * -ENAMETOOLONG for a PATH past PATH_MAX or NAME_MAX, -EINVAL for everything else. On
 * failure *out holds nothing to free. err may be NULL when errsize is 0. */
int ctl_parse(const char *line, size_t len, struct ctl_req *out, char *err, size_t errsize);
/* Frees what *req owns and zeroes it; safe on a zeroed or already freed request. */
void ctl_req_free(struct ctl_req *req);

/* For clients rewriting argv before sending: the index in argv (argv[0] = the command) of
 * the argument the command reads as PATH, or of the value of option opt ("--from"), or -1.
 * Follows the parser's rules (options anywhere, "--" ends options). */
int ctl_argv_path_index(int argc, char *const argv[]);
int ctl_argv_option_index(int argc, char *const argv[], const char *opt);

/* "read" ... for CTL_OP_*, NULL for CTL_OP_NONE. */
const char *ctl_op_name(enum ctl_op op);

/* --- ctl_wire.c: bytes on the wire ------------------------------------------------- */

/* A growable NUL-terminated string. The first failure (-ENOMEM, -E2BIG) sticks in err and
 * makes later appends no-ops, so a caller may check once at the end. */
struct ctl_buf {
	char *p;    /* NUL-terminated; NULL until the first append */
	size_t len; /* bytes before the NUL */
	size_t cap;
	int err; /* 0 or the first -errno */
};
int ctl_buf_add(struct ctl_buf *b, const void *s, size_t n);
int ctl_buf_addf(struct ctl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ctl_buf_vaddf(struct ctl_buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Appends s as one token or reply value: as is when it is non-empty and holds no byte
 * <= 0x20, no 0x7f, '"' or '\\'; otherwise double-quoted with \\ \" \n \t \xHH escapes.
 * Bytes >= 0x80 stay raw. */
int ctl_buf_add_quoted(struct ctl_buf *b, const void *s, size_t n);
/* Appends human text (a summary, a message) kept on one line: control bytes become
 * \n, \t or \xHH; everything else, '\\' included, is copied. */
int ctl_buf_add_text(struct ctl_buf *b, const char *s);
void ctl_buf_free(struct ctl_buf *b);

/* Formats a message into err when errsize > 0, and returns rc: for "return ctl_errf(err,
 * errsize, -EINVAL, "...")" in functions that report errors as text. */
int ctl_errf(char *err, size_t errsize, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* One token of a request line. */
struct ctl_token {
	char *s; /* NUL-terminated (tokens hold no NUL), unescaped */
	size_t len;
	bool is_quoted; /* written as "...": never an option, even if it starts with "--" */
};
struct ctl_tokens {
	struct ctl_token *v;
	size_t n;
	char *mem; /* backs every v[i].s */
};
/* Splits line[0..len) (no newline; NUL bytes are an error) at spaces and tabs. A token is
 * a run of bytes other than space, tab, '"' and '\\', or a "..." string with the escapes
 * \\ \" \n \t \xHH (not \x00) followed by a separator or the end. 0, or -EINVAL with a
 * message in err; the caller frees *out with ctl_tokens_free() either way. */
int ctl_tokenize(const char *line, size_t len, struct ctl_tokens *out, char *err, size_t errsize);
void ctl_tokens_free(struct ctl_tokens *t);
/* Decodes the quoted string that starts at p[0] == '"' and lies within p[0..len): writes
 * the bytes to dst (room for len bytes) and their count to *dst_len, and the bytes used,
 * closing quote included, to *used. 0, or -EINVAL for an unterminated string, a bad
 * escape or \x00, with the reason in err ("bad escape '\\q'"). */
int ctl_unquote(const char *p, size_t len, char *dst, size_t *dst_len, size_t *used, char *err,
		size_t errsize);

/* Builds a request line (no newline) from argv, quoting each token as ctl_buf_add_quoted()
 * does, so that ctl_tokenize() gives back argv byte for byte. *out is malloc'ed. 0,
 * -ENOMEM, or -E2BIG if the line would not fit in CTL_LINE_MAX with its newline. */
int ctl_build_line(int argc, char *const argv[], char **out, size_t *len_out);

/* "ENOENT" for ENOENT; NULL for a number this libc has no name for. */
const char *ctl_errno_name(int e);
/* The name, or else e in decimal written into buf; returns buf or the static name. */
const char *ctl_errno_str(int e, char *buf, size_t size);
/* A name ("EIO", also the aliases EWOULDBLOCK, EDEADLOCK, ENOTSUP) or a decimal number
 * 1..CTL_ERRNO_MAX: returns the positive errno, or -EINVAL. */
int ctl_errno_parse(const char *s);

/* Buffered line reader on a socket. */
struct ctl_lines {
	int fd;	    /* borrowed */
	size_t max; /* longest line accepted, newline included */
	char *buf;
	size_t cap, start, end;
	bool is_eof;
	bool is_skipping; /* inside a line longer than max, dropping it */
};
void ctl_lines_init(struct ctl_lines *lr, int fd, size_t max);
/* Reads the next line into *line (newline stripped, NUL-terminated, valid until the next
 * call) and *len. Returns 1, 0 at end of file (a last line without newline is returned
 * first), -E2BIG after skipping a line longer than max, or -errno from recv(). */
int ctl_lines_read(struct ctl_lines *lr, char **line, size_t *len);
void ctl_lines_free(struct ctl_lines *lr);
/* Writes all of buf with send(MSG_NOSIGNAL), retrying on EINTR: 0, -EPIPE, or -errno. */
int ctl_write_all(int fd, const void *buf, size_t len);
#endif
