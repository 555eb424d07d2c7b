/* libFuzzer target for the control protocol's parser: ctl_parse() on arbitrary bytes must
 * neither crash nor leak, and what it accepts must be consistent; the same bytes, cut at
 * NULs into argv, must survive ctl_build_line() and ctl_tokenize() unchanged. */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_client.h"

static void check_req(const struct ctl_req *r)
{
	if (r->cmd >= CTL_CMD_COUNT || r->off > INT64_MAX || r->len > INT64_MAX - r->off)
		abort();
	/* PATH is kept as given, within the limits (the daemon normalises it) */
	if (r->path && strlen(r->path) >= PATH_MAX)
		abort();
	if (r->src == CTL_SRC_DATA && (!r->data || !r->data_len))
		abort();
	if (r->has_errno && (r->error < 1 || r->error > CTL_ERRNO_MAX))
		abort();
}

/* data cut at NUL bytes is an argv; building a line and tokenizing it gives it back. */
static void check_round_trip(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1), *argv[64], *line;
	struct ctl_tokens toks;
	size_t len;
	int argc = 0;

	memcpy(copy, data, size);
	copy[size] = '\0';
	for (char *p = copy; argc < 64 && p <= copy + size; p += strlen(p) + 1)
		argv[argc++] = p;
	if (ctl_build_line(argc, argv, &line, &len) == 0) {
		if (ctl_tokenize(line, len, &toks, NULL, 0) || toks.n != (size_t)argc)
			abort();
		for (int i = 0; i < argc; i++) {
			if (strcmp(toks.v[i].s, argv[i]))
				abort();
		}
		ctl_tokens_free(&toks);
		free(line);
	}
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_req req;
	char err[256];
	struct ctl_kv *kv;
	size_t n;

	if (ctl_parse((const char *)data, size, &req, err, sizeof(err)) == 0)
		check_req(&req);
	else if (!err[0] || strchr(err, '\n'))
		abort();
	ctl_req_free(&req);
	if (!memchr(data, '\0', size) && ctl_kv_split((const char *)data, size, &kv, &n) == 0)
		ctl_kv_free(kv, n);
	check_round_trip(data, size);
	return 0;
}
