/* sigbusctl: the control client. Checks a command locally with the daemon's own parser,
 * finds the socket (-S, the mount's user.sigbusfs.ctl attribute, $SIGBUSCTL_SOCKET), sends
 * one request and prints the reply as text or JSON. Exit: 0 ok, 1 err, 2 usage. */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "ctl_client.h"
#include "ctl_xattr.h"

#define EXIT_ERR   1
#define EXIT_USAGE 2
#define USAGE_HEAD "sigbusctl [-m MOUNTPOINT | -S SOCKET] [--json] "

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

/* Prints text wrapped at 78 columns, each line indented by indent spaces. */
static void wrap(FILE *f, const char *text, int indent)
{
	size_t width = (size_t)(78 - indent), n;
	const char *p = text;

	while (*p) {
		n = strlen(p);
		if (n > width) {
			n = width;
			while (n > 0 && p[n] != ' ')
				n--;
			if (n == 0)
				n = (size_t)(strchrnul(p + width, ' ') - p);
		}
		fprintf(f, "%*s%.*s\n", indent, "", (int)n, p);
		p += n;
		while (*p == ' ')
			p++;
	}
}

static void help_all(FILE *f)
{
	fputs("Usage: " USAGE_HEAD "COMMAND [ARGS]\n"
	      "       sigbusctl help [COMMAND]\n\n"
	      "Drives a sigbusfs daemon through its control socket: each command returns\n"
	      "once the backend has changed and the kernel has been told.\n\n"
	      "Options:\n"
	      "  -m MOUNTPOINT  the daemon of this mount (its socket is the user.sigbusfs.ctl\n"
	      "                 attribute of the mount's root); absolute PATHs inside it work\n"
	      "  -S SOCKET      the control socket itself (wins over -m)\n"
	      "  --json         print the reply as one JSON object (one per line with --follow)\n"
	      "  -h, --help     this help; 'sigbusctl COMMAND --help' for a command's\n"
	      "  -V, --version  print the version\n"
	      "Without -m and -S, the socket is $SIGBUSCTL_SOCKET.\n\nCommands:\n",
	      f);
	for (int i = 0; i < CTL_CMD_COUNT; i++)
		fprintf(f, "  %-10s %s\n", ctl_cmd_get(i)->name, ctl_cmd_get(i)->brief);
	fputs("\nPATH is relative to the mount root. OFF, LEN, SIZE and --len take a K, M, G or T\n"
	      "suffix (binary: 4K = 4096). E is an errno name (EIO) or number.\n"
	      "Exit status: 0 ok, 1 the daemon answered err or could not be reached, 2 usage.\n",
	      f);
}

static void help_cmd(FILE *f, const struct ctl_cmd_desc *d)
{
	fprintf(f, "Usage: " USAGE_HEAD "%s\n\n", d->usage);
	wrap(f, d->help, 0);
	fprintf(f, "\nExample:\n  %s\n", d->example);
}

/* The command reference for the README, in Markdown. */
static void help_markdown(FILE *f)
{
	for (int i = 0; i < CTL_CMD_COUNT; i++) {
		const struct ctl_cmd_desc *d = ctl_cmd_get(i);

		fprintf(f, "### `%s`\n\n", d->usage);
		wrap(f, d->help, 0);
		fprintf(f, "\n    %s\n\n", d->example);
	}
}

/* sigbusctl help [COMMAND | --markdown] */
static int cmd_help(int argc, char **argv)
{
	const struct ctl_cmd_desc *d;

	if (argc == 1) {
		help_all(stdout);
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "--markdown")) {
		help_markdown(stdout);
		return 0;
	}
	d = argc == 2 ? ctl_cmd_find(argv[1]) : NULL;
	if (!d)
		return usage_error("help: unknown command '%s' (see sigbusctl --help)",
				   argc == 2 ? argv[1] : argv[2]);
	help_cmd(stdout, d);
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
			help_all(stdout);
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

/* The part of abs below root, or NULL if abs is not inside root. */
static const char *below(const char *abs, const char *root)
{
	size_t n = strlen(root);

	if (strncmp(abs, root, n) || (abs[n] && abs[n] != '/'))
		return NULL;
	return abs[n] ? abs + n + 1 : ".";
}

/* An absolute PATH inside the -m mount point becomes relative to its root. */
static int rewrite_path(struct cli *c)
{
	struct ctl_buf mnt = { 0 }, abs = { 0 };
	int i = ctl_argv_path_index(c->argc, c->argv);
	const char *rel = NULL;
	char *real = NULL;

	if (i < 0 || c->argv[i][0] != '/' || !c->mount)
		return -1;
	lexical_abs(c->mount, &mnt);
	lexical_abs(c->argv[i], &abs);
	if (mnt.p && abs.p)
		rel = below(abs.p, mnt.p);
	real = rel || !abs.p ? NULL : realpath(c->mount, NULL);
	if (real)
		rel = below(abs.p, real);
	if (rel)
		c->argv[i] = c->owned[0] = strdup(rel);
	ctl_buf_free(&mnt);
	ctl_buf_free(&abs);
	free(real);
	if (!rel)
		return usage_error("%s: PATH '%s' is outside the mount point %s", c->d->name,
				   c->argv[i], c->mount);
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

/* "0", "42", "-7": no sign but '-', no leading zero, nothing else. */
static bool is_decimal(const char *v)
{
	const char *d = v + (v[0] == '-');
	size_t n = strspn(d, "0123456789");

	return n && !d[n] && (n == 1 || d[0] != '0');
}

/* A decimal integer value becomes a JSON number; anything else a string. */
static json_object *json_value(const struct ctl_kv *kv)
{
	const char *v = kv->value;
	bool is_int = is_decimal(v);
	char *end;

	errno = 0;
	if (is_int && v[0] == '-') {
		long long x = strtoll(v, &end, 10);

		if (!errno)
			return json_object_new_int64(x);
	} else if (is_int) {
		unsigned long long x = strtoull(v, &end, 10);

		if (!errno)
			return json_object_new_uint64(x);
	}
	return json_object_new_string_len(v, (int)kv->value_len);
}

/* {key: value}; a key that repeats gets an array of its values, in order. */
static json_object *json_data(const struct ctl_kv *kv, size_t n)
{
	json_object *data = json_object_new_object(), *old, *arr;

	for (size_t i = 0; i < n; i++) {
		if (!json_object_object_get_ex(data, kv[i].key, &old)) {
			json_object_object_add(data, kv[i].key, json_value(&kv[i]));
			continue;
		}
		if (!json_object_is_type(old, json_type_array)) {
			arr = json_object_new_array();
			json_object_array_add(arr, json_object_get(old));
			json_object_object_add(data, kv[i].key, arr);
			old = arr;
		}
		json_object_array_add(old, json_value(&kv[i]));
	}
	return data;
}

static void json_print(json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	fflush(stdout);
}

static void print_json(const struct ctl_result *r)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "ok", json_object_new_boolean(r->is_ok));
	if (r->is_ok) {
		json_object_object_add(o, "summary",
				       *r->text ? json_object_new_string(r->text) : NULL);
	} else {
		json_object_object_add(o, "errno", json_object_new_string(r->errname));
		json_object_object_add(o, "message", json_object_new_string(r->text));
	}
	if (r->is_ok || r->nkv)
		json_object_object_add(o, "data", json_data(r->kv, r->nkv));
	json_print(o);
}

/* The message without a leading "CMD: ", which the error line already has. */
static const char *own_message(const char *msg, const char *cmd)
{
	size_t n = strlen(cmd);

	return !strncmp(msg, cmd, n) && !strncmp(msg + n, ": ", 2) ? msg + n + 2 : msg;
}

static void print_text(const struct cli *c, const struct ctl_result *r)
{
	FILE *f = r->is_ok ? stdout : stderr;

	if (!r->is_ok)
		fprintf(stderr, "sigbusctl: %s: %s: %s\n", c->d->name, r->errname,
			*r->text ? own_message(r->text, c->d->name) : "failed");
	else if (*r->text)
		printf("%s\n", r->text);
	for (size_t i = 0; i < r->nkv; i++)
		fprintf(f, "%s: %s\n", r->kv[i].key, r->kv[i].raw);
	fflush(f);
}

static void print_stream_line(const struct cli *c, const char *line, size_t len)
{
	struct ctl_kv *kv;
	size_t n;
	json_object *o;

	if (!c->is_json) {
		printf("%s\n", line);
		fflush(stdout);
		return;
	}
	if (ctl_kv_split(line, len, &kv, &n) == 0) {
		json_print(json_data(kv, n));
		ctl_kv_free(kv, n);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "line", json_object_new_string_len(line, (int)len));
	json_print(o);
}

/* Prints streamed lines until the daemon ends the stream or the user interrupts. */
static int follow(const struct cli *c, struct ctl_client *cl)
{
	char *line;
	size_t len;
	int rc;

	while ((rc = ctl_client_stream_line(cl, &line, &len)) == 1)
		print_stream_line(c, line, len);
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
	if (c->is_json)
		print_json(&r);
	else
		print_text(c, &r);
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
		help_cmd(stdout, c->d);
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
