/* See source.h. The messages have the backends' shape, "scheme: what: why", so that a
 * user reads one shape whichever side refused the source. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source.h"
#include "units.h"

static int refuse(char *err, size_t errsize, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int refuse(char *err, size_t errsize, const char *fmt, ...)
{
	va_list ap;

	if (errsize) {
		va_start(ap, fmt);
		vsnprintf(err, errsize, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int parse_size(const struct bk_ops *ops, const char *arg, struct bk_source *out, char *err,
		      size_t errsize)
{
	int rc;

	if (!*arg)
		return 0;
	rc = units_parse_size(arg, &out->size);
	if (rc == -ERANGE)
		return refuse(err, errsize, "%s: size '%s': too large", ops->name, arg);
	if (rc < 0)
		return refuse(err, errsize,
			      "%s: size '%s': not a number (expected digits and an optional K, "
			      "M, G or T suffix)",
			      ops->name, arg);
	out->has_size = true;
	return 0;
}

int source_parse_arg(const struct bk_ops *ops, const char *arg, struct bk_source *out, char *err,
		     size_t errsize)
{
	*out = (struct bk_source){ .arg = arg };
	switch (ops->source_form) {
	case BK_SOURCE_SIZE:
		return parse_size(ops, arg, out, err, errsize);
	case BK_SOURCE_PATH:
		if (!*arg)
			return refuse(err, errsize, "%s: PATH: missing (expected %s:PATH)",
				      ops->name, ops->name);
		return 0;
	}
	return refuse(err, errsize, "%s: SOURCE: a form this daemon does not know", ops->name);
}

int source_parse(const char *text, struct source *out, char *err, size_t errsize)
{
	const char *colon = strchr(text, ':');

	*out = (struct source){ 0 };
	out->ops = colon ? bk_find(text, (size_t)(colon - text)) : NULL;
	if (!out->ops)
		return refuse(err, errsize, "unknown source '%s': expected %s", text, bk_sources());
	return source_parse_arg(out->ops, colon + 1, &out->bk, err, errsize);
}

/* The canonical form of path, or of its directory when path does not exist yet (a new
 * database): 0, or -1 when neither resolves. */
static int resolve(const char *path, char *out)
{
	char copy[PATH_MAX];

	if (realpath(path, out))
		return 0;
	snprintf(copy, sizeof(copy), "%s", path);
	return realpath(dirname(copy), out) ? 0 : -1;
}

int source_check_outside(const struct source *src, const char *mountpoint, char *err,
			 size_t errsize)
{
	char path[PATH_MAX], mnt[PATH_MAX];
	size_t len;

	if (src->ops->source_form != BK_SOURCE_PATH || resolve(src->bk.arg, path) < 0 ||
	    !realpath(mountpoint, mnt))
		return 0;
	len = strlen(mnt);
	if (strncmp(path, mnt, len) != 0 || (path[len] != '\0' && path[len] != '/' && len > 1))
		return 0;
	return refuse(err, errsize, "%s: %s: inside the mount point %s (it would serve itself)",
		      src->ops->name, src->bk.arg, mountpoint);
}
