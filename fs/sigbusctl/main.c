/* sigbusctl: the control client. This file handles the arguments: it checks a command
 * locally with the daemon's own parser, finds the socket (-S, the mount's
 * user.sigbusfs.ctl attribute, $SIGBUSCTL_SOCKET), sends one request and hands the reply
 * to output.c, which prints it as text or JSON. Exit: 0 ok, 1 err, 2 usage. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "ctl_xattr.h"
#include "sigbusctl.h"

#define EXIT_ERR   1
#define EXIT_USAGE 2

struct cli {
	const char *mount; /* -m */
	const char *sock;  /* -S */
	bool is_json;	   /* --json */
	int argc;	   /* COMMAND [ARGS] */
	char **argv;	   /* copied pointers; rewritten entries are in owned[] */
	char *owned[2];
	const struct ctl_cmd_desc *d;
	bool is_follow; /* log --follow: print streamed lines after the reply */
};

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("sigbusctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n", stderr);
	return EXIT_USAGE;
}

/* sigbusctl help [COMMAND | --markdown] */
static int cmd_help(int argc, char **argv)
{
	const struct ctl_cmd_desc *d;

	if (argc == 1) {
		output_help_all(stdout);
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "--markdown")) {
		output_help_markdown(stdout);
		return 0;
	}
	d = argc == 2 ? ctl_cmd_find(argv[1]) : NULL;
	if (!d)
		return usage_error("help: unknown command '%s' (see sigbusctl --help)",
				   argc == 2 ? argv[1] : argv[2]);
	output_help_cmd(stdout, d);
	return 0;
}

/* Whether a --help comes before any "--". */
static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "--help"))
			return true;
	}
	return false;
}

/* Parses the options before COMMAND: -1 to go on, or an exit status. */
static int global_opts(int argc, char **argv, struct cli *c)
{
	static const struct option longs[] = { { "json", no_argument, NULL, 'j' },
					       { "help", no_argument, NULL, 'h' },
					       { "version", no_argument, NULL, 'V' },
					       { 0 } };
	int opt;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+m:S:hV", longs, NULL)) != -1) {
		switch (opt) {
		case 'm':
			c->mount = optarg;
			break;
		case 'S':
			c->sock = optarg;
			break;
		case 'j':
			c->is_json = true;
			break;
		case 'h':
			output_help_all(stdout);
			return 0;
		case 'V':
			printf("sigbusctl %s (control protocol %d)\n", SIGBUSFS_VERSION,
			       CTL_PROTO_VERSION);
			return 0;
		default:
			if (optopt == 'm' || optopt == 'S')
				return usage_error("option -%c needs an argument (see sigbusctl "
						   "--help)",
						   optopt);
			return usage_error("unknown option '%s' (see sigbusctl --help)",
					   argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return usage_error("no command given (see sigbusctl --help)");
	c->argc = argc - optind;
	c->argv = argv + optind;
	return -1;
}

/* Appends the cleaned absolute form of path ("" for "/") to b, resolving "." and ".."
 * by name only; a relative path is taken from the working directory. */
static int lexical_abs(const char *path, struct ctl_buf *b)
{
	char cwd[PATH_MAX];
	const char *p, *end;
	char *slash;

	if (path[0] != '/' && !getcwd(cwd, sizeof(cwd)))
		return -errno;
	if (path[0] != '/')
		lexical_abs(cwd, b);
	for (p = path; *p; p = *end ? end + 1 : end) {
		end = strchrnul(p, '/');
		if (end == p || (end - p == 1 && *p == '.'))
			continue;
		if (end - p == 2 && !memcmp(p, "..", 2)) {
			slash = b->p ? strrchr(b->p, '/') : NULL;
			b->len = slash ? (size_t)(slash - b->p) : 0;
			if (b->p)
				b->p[b->len] = '\0';
			continue;
		}
		ctl_buf_addf(b, "/%.*s", (int)(end - p), p);
	}
	return ctl_buf_add(b, "", 0);
}

/* The next component of *p that is neither empty nor ".", with its length (0 at the
 * end); advances *p past it. */
static size_t next_name(const char **p, const char **name)
{
	size_t n;

	do {
		*p += strspn(*p, "/");
		*name = *p;
		n = strcspn(*p, "/");
		*p += n;
	} while (n == 1 && **name == '.');
	return n;
}

/* What follows root in path, comparing components ("//" and "." do not count, ".." is
 * the daemon's to resolve): "." for root itself, or NULL if path does not start with
 * root. */
static const char *below(const char *path, const char *root)
{
	const char *name, *rname;
	size_t n, rn;

	while ((rn = next_name(&root, &rname)) > 0) {
		n = next_name(&path, &name);
		if (n != rn || memcmp(name, rname, n))
			return NULL;
	}
	path += strspn(path, "/");
	return *path ? path : ".";
}

/* An absolute PATH that starts with the -m mount point becomes relative to its root; the
 * daemon normalises the rest (fs/path.h). */
static int rewrite_path(struct cli *c)
{
	struct ctl_buf mnt = { 0 };
	int i = ctl_argv_path_index(c->argc, c->argv);
	const char *rel = NULL;
	char *real = NULL;

	if (i < 0 || c->argv[i][0] != '/' || !c->mount)
		return -1;
	if (lexical_abs(c->mount, &mnt) == 0)
		rel = below(c->argv[i], mnt.p);
	real = rel ? NULL : realpath(c->mount, NULL);
	if (real)
		rel = below(c->argv[i], real);
	if (rel)
		c->argv[i] = c->owned[0] = strdup(rel);
	ctl_buf_free(&mnt);
	free(real);
	if (!rel)
		return usage_error("%s: PATH '%s' is outside the mount point %s (an absolute "
				   "PATH starts with it)",
				   c->d->name, c->argv[i], c->mount);
	return c->argv[i] ? -1 : usage_error("out of memory");
}

/* --from FILE is read by the daemon: send it as an absolute path. */
static int rewrite_from(struct cli *c)
{
	int i = ctl_argv_option_index(c->argc, c->argv, "--from");
	struct ctl_buf abs = { 0 };
	char *real;

	if (i < 0 || c->argv[i][0] == '/')
		return -1;
	real = realpath(c->argv[i], NULL);
	if (!real && lexical_abs(c->argv[i], &abs) == 0)
		real = abs.p;
	if (!real) {
		ctl_buf_free(&abs);
		return usage_error("%s: cannot make --from '%s' absolute: %s", c->d->name,
				   c->argv[i], strerror(errno));
	}
	c->argv[i] = c->owned[1] = real;
	return -1;
}

/* Builds the request line and checks it as the daemon will: -1 to go on, or 2. */
static int make_line(struct cli *c, char **line, size_t *len)
{
	char err[512];
	struct ctl_req req;
	int rc;

	rc = rewrite_path(c);
	if (rc < 0)
		rc = rewrite_from(c);
	if (rc >= 0)
		return rc;
	rc = ctl_build_line(c->argc, c->argv, line, len);
	if (rc)
		return usage_error("%s: %s", c->d->name,
				   rc == -E2BIG ? "request line longer than 65536 bytes"
						: strerror(-rc));
	rc = ctl_parse(*line, *len, &req, err, sizeof(err));
	c->is_follow = req.follow;
	ctl_req_free(&req);
	if (!rc)
		return -1;
	usage_error("%s", err);
	fprintf(stderr, "usage: " USAGE_HEAD "%s\n", c->d->usage);
	return EXIT_USAGE;
}

/* The socket path: -S, else the -m mount's attribute, else $SIGBUSCTL_SOCKET. -1 to go
 * on, or an exit status. */
static int find_socket(struct cli *c, char *buf, size_t size)
{
	const char *env = getenv("SIGBUSCTL_SOCKET");
	int rc;

	if (c->sock || (!c->mount && env && *env)) {
		snprintf(buf, size, "%s", c->sock ? c->sock : env);
		return -1;
	}
	if (!c->mount)
		return usage_error("no daemon given: use -m MOUNTPOINT or -S SOCKET, or set "
				   "SIGBUSCTL_SOCKET");
	rc = ctl_client_socket_of(c->mount, buf, size);
	if (rc == -ENODATA || rc == -ENOTSUP) {
		fprintf(stderr, "sigbusctl: %s is not a sigbusfs mount (it has no %s attribute)\n",
			c->mount, CTL_XATTR);
		return EXIT_ERR;
	}
	if (rc < 0) {
		fprintf(stderr, "sigbusctl: cannot read %s of %s: %s\n", CTL_XATTR, c->mount,
			strerror(-rc));
		return EXIT_ERR;
	}
	return -1;
}

/* Prints streamed lines until the daemon ends the stream or the user interrupts. */
static int follow(const struct cli *c, struct ctl_client *cl)
{
	char *line;
	size_t len;
	int rc;

	while ((rc = ctl_client_stream_line(cl, &line, &len)) == 1)
		output_stream_line(line, len, c->is_json);
	if (rc == 0)
		return 0;
	fprintf(stderr, "sigbusctl: %s: %s\n", c->d->name,
		rc == -ECONNRESET ? "the daemon closed the connection" : strerror(-rc));
	return EXIT_ERR;
}

/* Connects, sends line, prints the reply: the exit status. */
static int talk(struct cli *c, const char *sock, const char *line, size_t len)
{
	struct ctl_client *cl;
	struct ctl_result r;
	char err[512];
	int rc;

	rc = ctl_client_connect(sock, &cl, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "sigbusctl: %s\n", err);
		return EXIT_ERR;
	}
	rc = ctl_client_request(cl, line, len, &r);
	if (rc) {
		fprintf(stderr, "sigbusctl: %s: no reply from %s: %s\n", c->d->name, sock,
			rc == -ECONNRESET ? "connection closed" : strerror(-rc));
		rc = EXIT_ERR;
		goto out_free;
	}
	output_reply(&r, c->d, c->is_json);
	rc = r.is_ok ? 0 : EXIT_ERR;
	if (r.is_ok && c->is_follow)
		rc = follow(c, cl);
out_free:
	ctl_result_free(&r);
	ctl_client_close(cl);
	return rc;
}

static int run(struct cli *c)
{
	char sock[PATH_MAX], *line = NULL;
	size_t len;
	int rc;

	if (!strcmp(c->argv[0], "help"))
		return cmd_help(c->argc, c->argv);
	c->d = ctl_cmd_find(c->argv[0]);
	if (!c->d)
		return usage_error("unknown command '%s' (see sigbusctl --help)", c->argv[0]);
	if (wants_help(c->argc, c->argv)) {
		output_help_cmd(stdout, c->d);
		return 0;
	}
	rc = make_line(c, &line, &len);
	if (rc < 0)
		rc = find_socket(c, sock, sizeof(sock));
	if (rc < 0)
		rc = talk(c, sock, line, len);
	free(line);
	return rc;
}

int main(int argc, char **argv)
{
	struct cli c = { 0 };
	int rc = global_opts(argc, argv, &c);

	if (rc < 0) {
		char **args = calloc((size_t)c.argc + 1, sizeof(char *));

		if (!args)
			return usage_error("out of memory");
		c.argv = memcpy(args, c.argv, (size_t)c.argc * sizeof(char *));
		rc = run(&c);
		free(c.owned[0]);
		free(c.owned[1]);
		free(c.argv);
	}
	return rc;
}
