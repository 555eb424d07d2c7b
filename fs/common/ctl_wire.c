/* The control protocol's bytes: growable strings, quoting and the one tokenizer, errno
 * names, and line I/O on a socket. Numbers are units.c's, the grammar of commands is
 * ctl_proto.c's and the client side ctl_client.c's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ctl_proto.h"
#include "units.h"

#define BUF_FIRST 256

static int buf_reserve(struct ctl_buf *b, size_t n)
{
	size_t want, cap;
	char *p;

	if (b->err)
		return b->err;
	if (n > SIZE_MAX / 2 - b->len - 1) {
		b->err = -ENOMEM;
		return b->err;
	}
	want = b->len + n + 1;
	if (want <= b->cap)
		return 0;
	cap = b->cap ? b->cap : BUF_FIRST;
	while (cap < want)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->err = -ENOMEM;
		return b->err;
	}
	b->p = p;
	b->p[b->len] = '\0';
	b->cap = cap;
	return 0;
}

int ctl_buf_add(struct ctl_buf *b, const void *s, size_t n)
{
	int rc = buf_reserve(b, n);

	if (rc)
		return rc;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

int ctl_buf_vaddf(struct ctl_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n, rc;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0) {
		if (!b->err)
			b->err = -EINVAL;
		return b->err;
	}
	rc = buf_reserve(b, (size_t)n);
	if (rc)
		return rc;
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int ctl_buf_addf(struct ctl_buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = ctl_buf_vaddf(b, fmt, ap);
	va_end(ap);
	return rc;
}

void ctl_buf_free(struct ctl_buf *b)
{
	free(b->p);
	*b = (struct ctl_buf){ 0 };
}

static bool needs_quote(const unsigned char *s, size_t n)
{
	if (n == 0)
		return true;
	for (size_t i = 0; i < n; i++) {
		if (s[i] <= ' ' || s[i] == 0x7f || s[i] == '"' || s[i] == '\\')
			return true;
	}
	return false;
}

/* The escape for c inside quotes, or "" when c goes as it is. */
static const char *escape_of(unsigned char c, char tmp[5])
{
	switch (c) {
	case '\\':
		return "\\\\";
	case '"':
		return "\\\"";
	case '\n':
		return "\\n";
	case '\t':
		return "\\t";
	}
	if (c < ' ' || c == 0x7f) {
		snprintf(tmp, 5, "\\x%02x", c);
		return tmp;
	}
	return "";
}

int ctl_buf_add_quoted(struct ctl_buf *b, const void *s, size_t n)
{
	const unsigned char *p = s;
	const char *esc;
	char tmp[5];
	size_t run = 0;

	if (!needs_quote(p, n))
		return ctl_buf_add(b, p, n);
	ctl_buf_add(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		esc = escape_of(p[i], tmp);
		if (!*esc) {
			run++;
			continue;
		}
		ctl_buf_add(b, p + i - run, run);
		ctl_buf_add(b, esc, strlen(esc));
		run = 0;
	}
	ctl_buf_add(b, p + n - run, run);
	return ctl_buf_add(b, "\"", 1);
}

int ctl_buf_add_text(struct ctl_buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	const char *esc;
	char tmp[5];

	for (; *p; p++) {
		esc = *p < ' ' || *p == 0x7f ? escape_of(*p, tmp) : "";
		if (*esc)
			ctl_buf_add(b, esc, strlen(esc));
		else
			ctl_buf_add(b, p, 1);
	}
	return buf_reserve(b, 0);
}

int ctl_errf(char *err, size_t errsize, int rc, const char *fmt, ...)
{
	va_list ap;

	if (errsize) {
		va_start(ap, fmt);
		vsnprintf(err, errsize, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes the escape at p[0] == '\\' into *c; returns the bytes used, or 0 if invalid. */
static size_t unescape(const char *p, size_t len, char *c)
{
	if (len < 2)
		return 0;
	switch (p[1]) {
	case '\\':
	case '"':
		*c = p[1];
		return 2;
	case 'n':
		*c = '\n';
		return 2;
	case 't':
		*c = '\t';
		return 2;
	case 'x':
		if (len < 4 || hex_val(p[2]) < 0 || hex_val(p[3]) < 0)
			return 0;
		*c = (char)(hex_val(p[2]) * 16 + hex_val(p[3]));
		return 4;
	}
	return 0;
}

static int bad_escape(const char *p, size_t len, char *err, size_t errsize)
{
	size_t want = len > 1 && p[1] == 'x' ? 4 : 2, show = len < want ? len : want;
	struct ctl_buf b = { 0 }, shown = { 0 };
	int rc;

	ctl_buf_add(&b, p, show);
	ctl_buf_add_text(&shown, b.p ? b.p : "");
	if (show == 4 && !memcmp(p, "\\x00", 4))
		rc = ctl_errf(err, errsize, -EINVAL, "NUL bytes are not allowed ('\\x00')");
	else
		rc = ctl_errf(err, errsize, -EINVAL, "bad escape '%s'", shown.p ? shown.p : "");
	ctl_buf_free(&b);
	ctl_buf_free(&shown);
	return rc;
}

int ctl_unquote(const char *p, size_t len, char *dst, size_t *dst_len, size_t *used, char *err,
		size_t errsize)
{
	size_t i = 1, n = 0, step;
	char c;

	while (i < len && p[i] != '"') {
		if (p[i] != '\\') {
			dst[n++] = p[i++];
			continue;
		}
		step = unescape(p + i, len - i, &c);
		if (!step || c == '\0')
			return bad_escape(p + i, len - i, err, errsize);
		dst[n++] = c;
		i += step;
	}
	if (i >= len)
		return ctl_errf(err, errsize, -EINVAL, "unterminated quote");
	*dst_len = n;
	*used = i + 1;
	return 0;
}

static bool is_sep(char c)
{
	return c == ' ' || c == '\t';
}

/* Reads the quoted token at line[*pos] into tok, whose s has room for it. */
static int quoted_token(const char *line, size_t len, size_t *pos, struct ctl_token *tok, size_t no,
			char *err, size_t errsize)
{
	char why[96];
	size_t used;
	int rc;

	rc = ctl_unquote(line + *pos, len - *pos, tok->s, &tok->len, &used, why, sizeof(why));
	if (rc)
		return ctl_errf(err, errsize, rc, "%s in token %zu%s", why, no,
				strncmp(why, "bad escape", 10)
					? ""
					: " (accepted: \\\\ \\\" \\n \\t \\xHH)");
	*pos += used;
	if (*pos < len && !is_sep(line[*pos]))
		return ctl_errf(err, errsize, -EINVAL,
				"text right after the closing quote of token %zu (put a space "
				"between tokens, or the whole token in quotes)",
				no);
	tok->is_quoted = true;
	return 0;
}

static int plain_token(const char *line, size_t len, size_t *pos, struct ctl_token *tok, size_t no,
		       char *err, size_t errsize)
{
	size_t i = *pos;

	while (i < len && !is_sep(line[i])) {
		if (line[i] == '"' || line[i] == '\\')
			return ctl_errf(err, errsize, -EINVAL,
					"%s inside unquoted token %zu (quote the whole token)",
					line[i] == '"' ? "quote" : "backslash", no);
		i++;
	}
	tok->len = i - *pos;
	memcpy(tok->s, line + *pos, tok->len);
	*pos = i;
	return 0;
}

int ctl_tokenize(const char *line, size_t len, struct ctl_tokens *out, char *err, size_t errsize)
{
	struct ctl_token *tok;
	char *dst;
	size_t pos = 0;
	int rc;

	*out = (struct ctl_tokens){ 0 };
	if (memchr(line, '\0', len))
		return ctl_errf(err, errsize, -EINVAL, "request contains a NUL byte");
	out->mem = malloc(len + 1);
	out->v = calloc(len / 2 + 1, sizeof(*out->v));
	if (!out->mem || !out->v)
		return ctl_errf(err, errsize, -ENOMEM, "out of memory");
	dst = out->mem;
	for (;;) {
		while (pos < len && is_sep(line[pos]))
			pos++;
		if (pos == len)
			return 0;
		tok = &out->v[out->n++];
		tok->s = dst;
		if (line[pos] == '"')
			rc = quoted_token(line, len, &pos, tok, out->n, err, errsize);
		else
			rc = plain_token(line, len, &pos, tok, out->n, err, errsize);
		if (rc)
			return rc;
		dst += tok->len;
		*dst++ = '\0';
	}
}

void ctl_tokens_free(struct ctl_tokens *t)
{
	free(t->v);
	free(t->mem);
	*t = (struct ctl_tokens){ 0 };
}

int ctl_build_line(int argc, char *const argv[], char **out, size_t *len_out)
{
	struct ctl_buf b = { 0 };

	*out = NULL;
	for (int i = 0; i < argc; i++) {
		if (i)
			ctl_buf_add(&b, " ", 1);
		ctl_buf_add_quoted(&b, argv[i], strlen(argv[i]));
		if (b.len >= CTL_LINE_MAX)
			b.err = b.err ? b.err : -E2BIG;
	}
	if (buf_reserve(&b, 0)) {
		int rc = b.err;

		ctl_buf_free(&b);
		return rc;
	}
	*out = b.p;
	*len_out = b.len;
	return 0;
}

const char *ctl_errno_name(int e)
{
	if (e <= 0 || e > CTL_ERRNO_MAX)
		return NULL;
	return strerrorname_np(e);
}

const char *ctl_errno_str(int e, char *buf, size_t size)
{
	const char *name = ctl_errno_name(e);

	if (name)
		return name;
	snprintf(buf, size, "%d", e);
	return buf;
}

int ctl_errno_parse(const char *s)
{
	static const struct {
		const char *name;
		int e;
	} aliases[] = { { "EWOULDBLOCK", EWOULDBLOCK },
			{ "EDEADLOCK", EDEADLOCK },
			{ "ENOTSUP", ENOTSUP } };
	const char *name;
	uint64_t v;

	if (units_parse_u64(s, &v) == 0)
		return v >= 1 && v <= CTL_ERRNO_MAX ? (int)v : -EINVAL;
	for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++) {
		if (!strcmp(s, aliases[i].name))
			return aliases[i].e;
	}
	for (int e = 1; e <= CTL_ERRNO_MAX; e++) {
		name = strerrorname_np(e);
		if (name && !strcmp(name, s))
			return e;
	}
	return -EINVAL;
}

void ctl_lines_init(struct ctl_lines *lr, int fd, size_t max)
{
	*lr = (struct ctl_lines){ .fd = fd, .max = max };
}

void ctl_lines_free(struct ctl_lines *lr)
{
	free(lr->buf);
	lr->buf = NULL;
	lr->cap = lr->start = lr->end = 0;
}

/* Makes room for at least one more byte after end, within max + 1 (the NUL). */
static int lines_room(struct ctl_lines *lr)
{
	size_t cap;
	char *p;

	if (lr->start) {
		memmove(lr->buf, lr->buf + lr->start, lr->end - lr->start);
		lr->end -= lr->start;
		lr->start = 0;
	}
	if (lr->end + 1 < lr->cap)
		return 0;
	cap = lr->cap ? lr->cap * 2 : 4096;
	if (cap > lr->max + 1)
		cap = lr->max + 1;
	p = realloc(lr->buf, cap);
	if (!p)
		return -ENOMEM;
	lr->buf = p;
	lr->cap = cap;
	return 0;
}

static int lines_fill(struct ctl_lines *lr)
{
	ssize_t n;
	int rc = lines_room(lr);

	if (rc)
		return rc;
	do {
		n = recv(lr->fd, lr->buf + lr->end, lr->cap - 1 - lr->end, 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		lr->is_eof = true;
	lr->end += (size_t)n;
	return 0;
}

/* Hands out buf[start..start+n) as a line and moves past it and skip more bytes. */
static int lines_take(struct ctl_lines *lr, size_t n, size_t skip, char **line, size_t *len)
{
	*line = lr->buf + lr->start;
	(*line)[n] = '\0';
	*len = n;
	lr->start += n + skip;
	return 1;
}

int ctl_lines_read(struct ctl_lines *lr, char **line, size_t *len)
{
	char *nl;
	int rc;

	for (;;) {
		nl = lr->buf ? memchr(lr->buf + lr->start, '\n', lr->end - lr->start) : NULL;
		if (nl && lr->is_skipping) {
			lr->start = (size_t)(nl - lr->buf) + 1;
			lr->is_skipping = false;
			return -E2BIG;
		}
		if (nl)
			return lines_take(lr, (size_t)(nl - lr->buf) - lr->start, 1, line, len);
		if (lr->is_skipping || lr->end - lr->start >= lr->max) {
			lr->is_skipping = true;
			lr->start = lr->end = 0;
		}
		if (lr->is_eof && lr->is_skipping) {
			lr->is_skipping = false;
			return -E2BIG;
		}
		if (lr->is_eof)
			return lr->end > lr->start
				       ? lines_take(lr, lr->end - lr->start, 0, line, len)
				       : 0;
		rc = lines_fill(lr);
		if (rc)
			return rc;
	}
}

int ctl_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}
