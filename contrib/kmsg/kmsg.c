/* The kernel-log watcher (see kmsg.h): reading /dev/kmsg records without blocking, the
 * patterns that start a kernel report, and the grouping of the records that follow into
 * that report. Printing the reports is left to each user. */
#include "kmsg.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KMSG_BUF      32768 /* /dev/kmsg returns one record per read, at most a few KiB */
#define KMSG_LEVEL_OK 4	    /* KERN_WARNING: a report's first line is this severe or more */

struct kmsg {
	int fd; /* -1 for kmsg_new() */
	size_t used;
	struct kmsg_report *r;
	size_t n, cap;
	uint64_t next_seq; /* the sequence number expected next; 0 before the first record */
	uint64_t lost;
	char buf[KMSG_BUF];
};

/* First lines of kernel reports, the most specific first. Phrases that only the kernel's
 * checkers print match anywhere in a line ("watchdog: BUG: soft lockup", "INFO: task x
 * blocked for more than"); the generic words only at its start, since boot messages such
 * as "Speculative Return Stack Overflow: WARNING: See ..." carry them too. "Oops" and
 * "Kernel panic" also continue a report already open (x86 prints "BUG: ..." then "Oops:"). */
static const struct pattern {
	const char *text;
	bool is_anywhere;
} patterns[] = {
	{ "possible circular locking", true },
	{ "possible recursive locking", true },
	{ "inconsistent lock state", true },
	{ "suspicious RCU usage", true },
	{ "KASAN:", true },
	{ "soft lockup", true },
	{ "hard LOCKUP", true },
	{ "detected stalls", true },
	{ "blocked for more than", true },
	{ "general protection fault", true },
	{ "kernel BUG at", false },
	{ "UBSAN:", false },
	{ "WARNING:", false },
	{ "BUG:", false },
	{ "Oops", false },
	{ "Kernel panic", false },
};

static const char *const end_markers[] = {
	"---[ end trace",
	"---[ end Kernel panic",
	"==================================================================",
};

static bool is_word_start(const char *text, const char *at)
{
	return at == text || !(isalnum((unsigned char)at[-1]) || at[-1] == '_');
}

static bool is_match(const char *text, const struct pattern *p)
{
	if (!p->is_anywhere)
		return strncmp(text, p->text, strlen(p->text)) == 0;
	for (const char *at = strstr(text, p->text); at; at = strstr(at + 1, p->text)) {
		if (is_word_start(text, at))
			return true;
	}
	return false;
}

const char *kmsg_match(const char *text)
{
	for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
		if (is_match(text, &patterns[i]))
			return patterns[i].text;
	}
	return NULL;
}

static bool is_continuing(const char *kind)
{
	return strcmp(kind, "Oops") == 0 || strcmp(kind, "Kernel panic") == 0;
}

static bool is_end_marker(const char *text)
{
	for (size_t i = 0; i < sizeof(end_markers) / sizeof(end_markers[0]); i++) {
		if (strstr(text, end_markers[i]))
			return true;
	}
	return false;
}

int kmsg_new(struct kmsg **out)
{
	struct kmsg *k = calloc(1, sizeof(*k));

	*out = k;
	if (!k)
		return -ENOMEM;
	k->fd = -1;
	return 0;
}

int kmsg_open(const char *path, bool from_end, struct kmsg **out)
{
	int rc = kmsg_new(out);

	if (rc < 0)
		return rc;
	(*out)->fd = open(path ? path : KMSG_DEFAULT_PATH, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if ((*out)->fd < 0) {
		rc = -errno;
		goto out_free;
	}
	/* a FIFO cannot seek (ESPIPE): it only ever holds what comes after the open */
	if (from_end && lseek((*out)->fd, 0, SEEK_END) < 0 && errno != ESPIPE) {
		rc = -errno;
		goto out_free;
	}
	return 0;
out_free:
	kmsg_close(*out);
	*out = NULL;
	return rc;
}

static struct kmsg_report *open_report(struct kmsg *k)
{
	if (k->n == 0 || k->r[k->n - 1].is_closed)
		return NULL;
	return &k->r[k->n - 1];
}

void kmsg_flush(struct kmsg *k)
{
	struct kmsg_report *o = open_report(k);

	if (o)
		o->is_closed = true;
}

static int add_line(struct kmsg_report *r, const char *text, size_t len, uint64_t ts_us)
{
	char *line;

	r->last_us = ts_us;
	if (r->nlines == KMSG_REPORT_LINES) {
		r->dropped++;
		return 0;
	}
	line = strndup(text, len);
	if (!line)
		return -ENOMEM;
	r->lines[r->nlines++] = line;
	return 0;
}

static int start_report(struct kmsg *k, const char *kind, uint64_t seq, uint64_t ts_us)
{
	struct kmsg_report *r;

	if (k->n == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 8;
		struct kmsg_report *p = realloc(k->r, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		k->r = p;
		k->cap = cap;
	}
	r = &k->r[k->n];
	memset(r, 0, sizeof(*r));
	r->lines = calloc(KMSG_REPORT_LINES, sizeof(char *));
	if (!r->lines)
		return -ENOMEM;
	r->seq = seq;
	r->ts_us = ts_us;
	r->kind = kind;
	k->n++;
	return 0;
}

/* "PRIO,SEQ,TS_US,FLAGS[,...];" : the three numbers and where the text starts. */
static int parse_prefix(const char *rec, size_t len, unsigned *prio, uint64_t *seq, uint64_t *ts_us,
			size_t *text_at)
{
	const char *semi = memchr(rec, ';', len);
	char head[128], *p, *end;

	if (!semi || (size_t)(semi - rec) >= sizeof(head))
		return -EINVAL;
	memcpy(head, rec, (size_t)(semi - rec));
	head[semi - rec] = '\0';
	p = head;
	*prio = (unsigned)strtoul(p, &end, 10);
	if (end == p || *end != ',')
		return -EINVAL;
	*seq = strtoull(p = end + 1, &end, 10);
	if (end == p || *end != ',')
		return -EINVAL;
	*ts_us = strtoull(p = end + 1, &end, 10);
	if (end == p || (*end != ',' && *end != '\0'))
		return -EINVAL;
	*text_at = (size_t)(semi - rec) + 1;
	return 0;
}

/* Feeds one parsed record: closes, starts or extends the open report. */
static int feed_text(struct kmsg *k, unsigned prio, uint64_t seq, uint64_t ts_us, const char *text,
		     size_t len)
{
	struct kmsg_report *o = open_report(k);
	bool is_kernel = (prio >> 3) == 0;
	char line[1024];
	const char *kind;
	int rc;

	snprintf(line, sizeof(line), "%.*s", (int)len, text);
	kind = is_kernel && (prio & 7) <= KMSG_LEVEL_OK ? kmsg_match(line) : NULL;
	if (o && (!is_kernel || ts_us > o->last_us + KMSG_GAP_US)) {
		o->is_closed = true;
		o = NULL;
	}
	if (kind && !(o && is_continuing(kind))) {
		if (o)
			o->is_closed = true;
		rc = start_report(k, kind, seq, ts_us);
		return rc < 0 ? rc : add_line(&k->r[k->n - 1], text, len, ts_us);
	}
	if (!o)
		return 0;
	rc = add_line(o, text, len, ts_us);
	if (is_end_marker(line))
		o->is_closed = true;
	return rc;
}

int kmsg_feed(struct kmsg *k, const char *rec, size_t len)
{
	const char *nl = memchr(rec, '\n', len);
	unsigned prio;
	uint64_t seq, ts_us;
	size_t at;

	if (nl)
		len = (size_t)(nl - rec);
	if (parse_prefix(rec, len, &prio, &seq, &ts_us, &at) < 0)
		return -EINVAL;
	if (k->next_seq && seq > k->next_seq)
		k->lost += seq - k->next_seq;
	k->next_seq = seq + 1;
	return feed_text(k, prio, seq, ts_us, rec + at, len - at);
}

/* Feeds every complete line of the buffer (dictionary lines start with a space) and
 * keeps the incomplete rest. The number of records fed, or -ENOMEM. */
static int feed_lines(struct kmsg *k)
{
	size_t start = 0;
	int rc = 0;

	for (char *nl; (nl = memchr(k->buf + start, '\n', k->used - start));) {
		size_t len = (size_t)(nl - (k->buf + start));

		if (len > 0 && k->buf[start] != ' ') {
			if (kmsg_feed(k, k->buf + start, len) == -ENOMEM)
				rc = -ENOMEM;
			else if (rc >= 0)
				rc++;
		}
		start += len + 1;
	}
	if (start == 0 && k->used == sizeof(k->buf)) /* a line longer than the buffer */
		start = k->used;
	memmove(k->buf, k->buf + start, k->used - start);
	k->used -= start;
	return rc;
}

int kmsg_poll(struct kmsg *k)
{
	int records = 0, rc;

	while (k->fd >= 0) {
		ssize_t n = read(k->fd, k->buf + k->used, sizeof(k->buf) - k->used);

		if (n < 0 && (errno == EINTR || errno == EPIPE))
			continue; /* EPIPE: records overwritten; the sequence gap counts them */
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		k->used += (size_t)n;
		rc = feed_lines(k);
		if (rc < 0)
			return rc;
		records += rc;
	}
	return records;
}

size_t kmsg_count(const struct kmsg *k)
{
	return k->n;
}

const struct kmsg_report *kmsg_report(const struct kmsg *k, size_t i)
{
	return i < k->n ? &k->r[i] : NULL;
}

uint64_t kmsg_lost(const struct kmsg *k)
{
	return k->lost;
}

void kmsg_close(struct kmsg *k)
{
	if (!k)
		return;
	for (size_t i = 0; i < k->n; i++) {
		for (unsigned j = 0; j < k->r[i].nlines; j++)
			free(k->r[i].lines[j]);
		free(k->r[i].lines);
	}
	free(k->r);
	if (k->fd >= 0)
		close(k->fd);
	free(k);
}
