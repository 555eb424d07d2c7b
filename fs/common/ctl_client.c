/* The client side of the control protocol: finding a mount's socket, connecting and
 * checking the greeting, sending a request, reading a reply (status line, key=value
 * lines, empty line) and streamed lines. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "ctl_client.h"
#include "ctl_xattr.h"
#include "units.h"

/* Decodes a value that is either raw (up to end) or one quoted string filling all of it. */
static int kv_value(const char *p, size_t n, struct ctl_kv *kv)
{
	size_t used;

	kv->value = malloc(n + 1);
	kv->raw = strndup(p, n);
	if (!kv->value || !kv->raw)
		return -ENOMEM;
	if (n == 0 || p[0] != '"') {
		memcpy(kv->value, p, n);
		kv->value_len = n;
	} else if (ctl_unquote(p, n, kv->value, &kv->value_len, &used, NULL, 0) || used != n) {
		return -EBADMSG;
	}
	kv->value[kv->value_len] = '\0';
	return 0;
}

static int kv_parse(const char *p, size_t n, struct ctl_kv *kv)
{
	const char *eq = memchr(p, '=', n);

	if (!eq || eq == p || memchr(p, ' ', (size_t)(eq - p)))
		return -EBADMSG;
	kv->key = strndup(p, (size_t)(eq - p));
	if (!kv->key)
		return -ENOMEM;
	return kv_value(eq + 1, n - (size_t)(eq - p) - 1, kv);
}

static int kv_append(struct ctl_kv **kv, size_t *n, const char *p, size_t len)
{
	struct ctl_kv *v = realloc(*kv, (*n + 1) * sizeof(**kv));

	if (!v)
		return -ENOMEM;
	*kv = v;
	v[*n] = (struct ctl_kv){ 0 };
	(*n)++;
	return kv_parse(p, len, &v[*n - 1]);
}

void ctl_kv_free(struct ctl_kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
		free(kv[i].raw);
	}
	free(kv);
}

/* The length of the word at p: up to a space outside quotes, or the end. */
static size_t word_len(const char *p, size_t n)
{
	bool in_quote = false;
	size_t i;

	for (i = 0; i < n && (in_quote || p[i] != ' '); i++) {
		if (in_quote && p[i] == '\\' && i + 1 < n)
			i++;
		else if (p[i] == '"')
			in_quote = !in_quote;
	}
	return i;
}

int ctl_kv_split(const char *line, size_t len, struct ctl_kv **out, size_t *n_out)
{
	size_t pos = 0, w;
	int rc = 0;

	*out = NULL;
	*n_out = 0;
	while (pos < len && !rc) {
		if (line[pos] == ' ') {
			pos++;
			continue;
		}
		w = word_len(line + pos, len - pos);
		rc = kv_append(out, n_out, line + pos, w);
		pos += w;
	}
	if (rc == -EBADMSG)
		rc = -EINVAL;
	if (rc) {
		ctl_kv_free(*out, *n_out);
		*out = NULL;
		*n_out = 0;
	}
	return rc;
}

/* "ok", "ok SUMMARY", "err NAME" or "err NAME MESSAGE". */
static int parse_status(const char *line, size_t len, struct ctl_result *r)
{
	const char *name, *sp;

	if (!strcmp(line, "ok") || !strncmp(line, "ok ", 3)) {
		r->is_ok = true;
		r->text = strdup(len > 3 ? line + 3 : "");
		return r->text ? 0 : -ENOMEM;
	}
	if (strncmp(line, "err ", 4) || len == 4 || line[4] == ' ')
		return -EBADMSG;
	name = line + 4;
	sp = strchr(name, ' ');
	r->errname = sp ? strndup(name, (size_t)(sp - name)) : strdup(name);
	r->text = strdup(sp ? sp + 1 : "");
	if (!r->errname || !r->text)
		return -ENOMEM;
	r->error = ctl_errno_parse(r->errname);
	if (r->error < 0)
		r->error = 0;
	return 0;
}

int ctl_result_read(struct ctl_lines *lr, struct ctl_result *out)
{
	char *line;
	size_t len;
	int rc;

	*out = (struct ctl_result){ 0 };
	rc = ctl_lines_read(lr, &line, &len);
	if (rc <= 0)
		return rc == 0 ? -ECONNRESET : rc;
	rc = parse_status(line, len, out);
	while (rc == 0) {
		rc = ctl_lines_read(lr, &line, &len);
		if (rc <= 0)
			return rc == 0 ? -ECONNRESET : rc;
		if (len == 0)
			return 0;
		rc = kv_append(&out->kv, &out->nkv, line, len);
	}
	return rc;
}

void ctl_result_free(struct ctl_result *r)
{
	free(r->errname);
	free(r->text);
	ctl_kv_free(r->kv, r->nkv);
	*r = (struct ctl_result){ 0 };
}

const char *ctl_result_get(const struct ctl_result *r, const char *key)
{
	for (size_t i = 0; i < r->nkv; i++) {
		if (!strcmp(r->kv[i].key, key))
			return r->kv[i].value;
	}
	return NULL;
}

int ctl_result_u64(const struct ctl_result *r, const char *key, uint64_t *out)
{
	const char *v = ctl_result_get(r, key);

	return v ? units_parse_u64(v, out) : -ENOENT;
}

int ctl_client_socket_of(const char *mountpoint, char *buf, size_t size)
{
	ssize_t n = size ? getxattr(mountpoint, CTL_XATTR, buf, size - 1) : -1;

	if (!size)
		return -ERANGE;
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

static int greeting_err(const char *path, const char *line, size_t len, char *err, size_t errsize)
{
	struct ctl_result r = { 0 };
	int rc = parse_status(line, len, &r);

	if (rc == 0)
		rc = ctl_errf(err, errsize, r.error ? -r.error : -EPROTO, "%s: %s", path,
			      *r.text ? r.text : r.errname);
	ctl_result_free(&r);
	return rc;
}

/* The version of a greeting "sigbusfs-ctl N[ ...]", or false if line is none. */
static bool greeting_version(const char *line, long *version)
{
	size_t plen = strlen(CTL_GREETING);
	char *end;

	if (strncmp(line, CTL_GREETING " ", plen + 1) || line[plen + 1] < '0' ||
	    line[plen + 1] > '9')
		return false;
	errno = 0;
	*version = strtol(line + plen + 1, &end, 10);
	return !errno && (*end == '\0' || *end == ' ');
}

static int not_greeting(const char *path, const char *line, size_t len, char *err, size_t errsize)
{
	struct ctl_buf said = { 0 };
	char head[61];
	int rc;

	snprintf(head, sizeof(head), "%s", line);
	ctl_buf_add_text(&said, head);
	rc = ctl_errf(err, errsize, -EPROTO, "%s is not a sigbusfs control socket (it said '%s%s')",
		      path, said.p ? said.p : "", len >= sizeof(head) ? "..." : "");
	ctl_buf_free(&said);
	return rc;
}

static int greeting_check(struct ctl_client *c, const char *path, char *err, size_t errsize)
{
	size_t len;
	char *line;
	int rc;

	rc = ctl_lines_read(&c->lines, &line, &len);
	if (rc == 0)
		return ctl_errf(err, errsize, -ECONNRESET,
				"%s closed the connection before its greeting", path);
	if (rc < 0)
		return ctl_errf(err, errsize, rc, "cannot read the greeting of %s: %s", path,
				strerror(-rc));
	if (!strncmp(line, "err ", 4))
		return greeting_err(path, line, len, err, errsize);
	if (!greeting_version(line, &c->version))
		return not_greeting(path, line, len, err, errsize);
	if (c->version != CTL_PROTO_VERSION)
		return ctl_errf(err, errsize, -EPROTONOSUPPORT,
				"daemon speaks control protocol %ld, this %s speaks %d", c->version,
				program_invocation_short_name, CTL_PROTO_VERSION);
	return 0;
}

static int connect_unix(const char *path, int *fd_out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, rc;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	do {
		rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	} while (rc < 0 && errno == EINTR);
	if (rc < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	*fd_out = fd;
	return 0;
}

int ctl_client_connect(const char *path, struct ctl_client **out, char *err, size_t errsize)
{
	struct ctl_client *c;
	int rc;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return ctl_errf(err, errsize, -ENOMEM, "out of memory");
	rc = connect_unix(path, &c->fd);
	if (rc) {
		ctl_errf(err, errsize, rc, "cannot connect to %s: %s", path, strerror(-rc));
		goto out_free;
	}
	ctl_lines_init(&c->lines, c->fd, CTL_REPLY_LINE_MAX);
	rc = greeting_check(c, path, err, errsize);
	if (rc)
		goto out_close;
	*out = c;
	return 0;
out_close:
	ctl_lines_free(&c->lines);
	close(c->fd);
out_free:
	free(c);
	return rc;
}

int ctl_client_request(struct ctl_client *c, const char *line, size_t len, struct ctl_result *out)
{
	int rc, read_rc;

	*out = (struct ctl_result){ 0 };
	rc = ctl_write_all(c->fd, line, len);
	if (rc == 0)
		rc = ctl_write_all(c->fd, "\n", 1);
	/* a server that closed the connection left its reason, as a reply, to be read */
	if (rc && rc != -EPIPE)
		return rc;
	read_rc = ctl_result_read(&c->lines, out);
	return read_rc < 0 && rc ? rc : read_rc;
}

int ctl_client_request_argv(struct ctl_client *c, int argc, char *const argv[],
			    struct ctl_result *out)
{
	size_t len;
	char *line;
	int rc;

	*out = (struct ctl_result){ 0 };
	rc = ctl_build_line(argc, argv, &line, &len);
	if (rc)
		return rc;
	rc = ctl_client_request(c, line, len, out);
	free(line);
	return rc;
}

int ctl_client_stream_line(struct ctl_client *c, char **line, size_t *len)
{
	int rc = ctl_lines_read(&c->lines, line, len);

	if (rc == 0)
		return -ECONNRESET;
	if (rc == 1 && *len == 0)
		return 0;
	return rc;
}

void ctl_client_close(struct ctl_client *c)
{
	if (!c)
		return;
	ctl_lines_free(&c->lines);
	close(c->fd);
	free(c);
}
