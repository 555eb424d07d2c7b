/* Option parsing and validation. Every problem is reported, then parsing fails; nothing
 * is mounted until the options are known to be good. */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "opts.h"

#define OPT(t, p)                              \
	{                                      \
		t, offsetof(struct opts, p), 1 \
	}

static const struct fuse_opt opts_table[] = { OPT("cache=%s", cache),
					      OPT("ctl=%s", ctl),
					      OPT("uid=%s", uid),
					      OPT("gid=%s", gid),
					      OPT("mode=%s", mode),
					      OPT("powercut", powercut),
					      OPT("readahead=%s", readahead),
					      OPT("feed_ms=%s", feed_ms),
					      FUSE_OPT_END };

void opts_help(const char *prog)
{
	printf("usage: %s [options] SOURCE MOUNTPOINT\n\n"
	       "SOURCE is the backend: %s\n"
	       "  (SIZE: bytes with an optional K, M, G or T suffix; mem: alone\n"
	       "   allows half of the machine's memory)\n\n"
	       "sigbusfs options:\n"
	       "    -o cache=strict        keep cached pages until an event drops them\n"
	       "                           (default; no automatic invalidation)\n"
	       "    -o cache=auto          libfuse's defaults, for comparison\n"
	       "    -o cache=none          direct I/O (MAP_SHARED fails with ENODEV\n"
	       "                           before libfuse 3.17)\n"
	       "    -o ctl=PATH            control socket for sigbusctl\n"
	       "                           (default: $XDG_RUNTIME_DIR/sigbusfs/PID.sock,\n"
	       "                            else /run/sigbusfs/PID.sock for root,\n"
	       "                            /tmp/sigbusfs-UID/PID.sock for others)\n"
	       "    -o uid=N               owner of the root directory (default: the user\n"
	       "                           who mounts)\n"
	       "    -o gid=N               group of the root directory (default: that\n"
	       "                           user's group)\n"
	       "    -o mode=OCTAL          permissions of the root directory (default 0755)\n"
	       "    -o powercut            track what clients made durable (fsync), so that\n"
	       "                           sigbusctl powercut can lose the rest\n"
	       "    -o readahead=KB        the mount's read_ahead_kb, the largest READ a\n"
	       "                           sequential reader causes (default 1024, root\n"
	       "                           only; 0 leaves the kernel's 128)\n"
	       "    -o feed_ms=MS          backends that change by themselves (sqlite:,\n"
	       "                           dir:): gather their changes for MS ms before\n"
	       "                           telling the kernel; sqlite: polls every MS ms\n"
	       "                           (0 to 10000; default: dir: 0, sqlite: 20)\n\n",
	       prog, bk_sources());
	fuse_cmdline_help();
	fuse_lowlevel_help();
}

static int opts_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct opts *o = data;

	if (key != FUSE_OPT_KEY_NONOPT)
		return 1;
	o->nonopts++;
	if (o->nonopts == 1) {
		o->source = strdup(arg);
		return o->source ? 0 : -1;
	}
	/* the second one is the mount point: fuse_parse_cmdline() takes it from here */
	return 1;
}

static const char *const cache_names[CACHE_MODE_NR] = {
	[CACHE_STRICT] = "strict",
	[CACHE_AUTO] = "auto",
	[CACHE_NONE] = "none",
};

const char *cache_mode_name(enum cache_mode m)
{
	return cache_names[m];
}

static int check_cache(struct opts *o)
{
	if (!o->cache)
		return 0;
	for (unsigned i = 0; i < CACHE_MODE_NR; i++) {
		if (strcmp(o->cache, cache_names[i]) == 0) {
			o->cache_mode = (enum cache_mode)i;
			return 0;
		}
	}
	fprintf(stderr, "sigbusfs: bad option cache=%s: expected strict, auto or none\n", o->cache);
	return -EINVAL;
}

/* A user or group ID for option name=text, in decimal: 0 with *out, or -EINVAL after
 * saying what was expected. 4294967295 is no ID: chown(2) takes it as "leave as is". */
static int parse_id(const char *name, const char *text, unsigned *out)
{
	unsigned long v = 0;
	char *end = NULL;

	errno = 0;
	if (text[0] >= '0' && text[0] <= '9')
		v = strtoul(text, &end, 10);
	if (end && !*end && !errno && v < UINT32_MAX) {
		*out = (unsigned)v;
		return 0;
	}
	fprintf(stderr, "sigbusfs: bad option %s=%s: expected a decimal number from 0 to %u\n",
		name, text, UINT32_MAX - 1);
	return -EINVAL;
}

/* mode=text: permission bits in octal, as chmod(1) takes them; file type bits are not. */
static int parse_mode(const char *text, mode_t *out)
{
	unsigned long v = 0;
	char *end = NULL;

	errno = 0;
	if (text[0] >= '0' && text[0] <= '7')
		v = strtoul(text, &end, 8);
	if (end && !*end && !errno && v <= 07777) {
		*out = (mode_t)v;
		return 0;
	}
	fprintf(stderr,
		"sigbusfs: bad option mode=%s: expected permission bits in octal, "
		"from 0 to 7777 (e.g. 0755, 1777)\n",
		text);
	return -EINVAL;
}

/* -o name=text, a decimal number of unit from 0 to max, into *out. 0 or -EINVAL. */
static int parse_bounded(const char *name, const char *text, const char *unit, unsigned max,
			 unsigned *out)
{
	unsigned long v = 0;
	char *end = NULL;

	errno = 0;
	if (text[0] >= '0' && text[0] <= '9')
		v = strtoul(text, &end, 10);
	if (end && !*end && !errno && v <= max) {
		*out = (unsigned)v;
		return 0;
	}
	fprintf(stderr, "sigbusfs: bad option %s=%s: expected %s from 0 to %u\n", name, text, unit,
		max);
	return -EINVAL;
}

/* readahead=KB: 0 (the kernel's default) to 1 GiB, the kernel's own bound. */
static int check_readahead(struct opts *o)
{
	o->readahead_kb = OPTS_READAHEAD_KB;
	return o->readahead ? parse_bounded("readahead", o->readahead, "KiB", OPTS_READAHEAD_MAX_KB,
					    &o->readahead_kb)
			    : 0;
}

/* feed_ms=MS: 0 to 10 s. */
static int check_feed_ms(struct opts *o)
{
	unsigned ms;

	o->feed_window_ms = -1;
	if (!o->feed_ms)
		return 0;
	if (parse_bounded("feed_ms", o->feed_ms, "milliseconds", OPTS_FEED_MAX_MS, &ms) < 0)
		return -EINVAL;
	o->feed_window_ms = (int)ms;
	return 0;
}

static int check_root_attr(struct opts *o)
{
	int rc = 0;

	o->root_uid = geteuid();
	o->root_gid = getegid();
	o->root_mode = 0755;
	if (o->uid && parse_id("uid", o->uid, &o->root_uid) < 0)
		rc = -EINVAL;
	if (o->gid && parse_id("gid", o->gid, &o->root_gid) < 0)
		rc = -EINVAL;
	if (o->mode && parse_mode(o->mode, &o->root_mode) < 0)
		rc = -EINVAL;
	return rc;
}

static int check_mountpoint(const struct opts *o)
{
	struct stat st;

	if (!o->cmd.mountpoint) {
		fprintf(stderr, "sigbusfs: missing MOUNTPOINT (usage: sigbusfs [options] "
				"SOURCE MOUNTPOINT)\n");
		return -EINVAL;
	}
	if (stat(o->cmd.mountpoint, &st) < 0) {
		fprintf(stderr, "sigbusfs: bad MOUNTPOINT %s: %s\n", o->cmd.mountpoint,
			strerror(errno));
		return -EINVAL;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "sigbusfs: bad MOUNTPOINT %s: not a directory\n",
			o->cmd.mountpoint);
		return -EINVAL;
	}
	return 0;
}

static int check_source(struct opts *o)
{
	char err[512];

	if (!o->source) {
		fprintf(stderr, "sigbusfs: missing SOURCE: expected %s\n", bk_sources());
		return -EINVAL;
	}
	if (source_parse(o->source, &o->src, err, sizeof(err)) == 0)
		return 0;
	fprintf(stderr, "sigbusfs: %s\n", err);
	return -EINVAL;
}

static int check_outside(const struct opts *o)
{
	char err[PATH_MAX * 2 + 128];

	if (source_check_outside(&o->src, o->cmd.mountpoint, err, sizeof(err)) == 0)
		return 0;
	fprintf(stderr, "sigbusfs: %s\n", err);
	return -EINVAL;
}

/* Options every sigbusfs mount gets: the kernel checks permissions as on a local
 * filesystem, and mount tables name the source and the type fuse.sigbusfs; READs sized
 * for splicing where the backend reads from descriptors. */
static int add_defaults(struct fuse_args *args, const struct opts *o)
{
	char buf[4200];

	snprintf(buf, sizeof(buf), "-odefault_permissions,subtype=sigbusfs,fsname=%s",
		 o->source ? o->source : "sigbusfs");
	/* fsname may not contain a comma, which would split the option list */
	if (strchr(o->source ? o->source : "", ','))
		snprintf(buf, sizeof(buf), "-odefault_permissions,subtype=sigbusfs");
	if (o->src.ops && o->src.ops->read_fd)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), ",max_read=%u",
			 OPTS_SPLICE_READ_MAX);
	return fuse_opt_add_arg(args, buf) ? -ENOMEM : 0;
}

int opts_parse(struct fuse_args *args, struct opts *o)
{
	int rc = 0;

	memset(o, 0, sizeof(*o));
	if (fuse_opt_parse(args, o, opts_table, opts_proc) < 0)
		return -EINVAL;
	if (fuse_parse_cmdline(args, &o->cmd) < 0)
		return -EINVAL;
	if (o->cmd.show_help || o->cmd.show_version)
		return 0;
	if (check_source(o) < 0)
		rc = -EINVAL;
	if (check_mountpoint(o) < 0)
		rc = -EINVAL;
	if (rc == 0 && check_outside(o) < 0)
		rc = -EINVAL;
	if (check_cache(o) < 0)
		rc = -EINVAL;
	if (check_root_attr(o) < 0)
		rc = -EINVAL;
	if (check_readahead(o) < 0)
		rc = -EINVAL;
	if (check_feed_ms(o) < 0)
		rc = -EINVAL;
	if (o->nonopts > 2) {
		fprintf(stderr, "sigbusfs: too many arguments: expected SOURCE MOUNTPOINT\n");
		rc = -EINVAL;
	}
	if (rc == 0)
		rc = add_defaults(args, o);
	return rc;
}

void opts_free(struct opts *o)
{
	free(o->source);
	free(o->cache);
	free(o->ctl);
	free(o->uid);
	free(o->gid);
	free(o->mode);
	free(o->readahead);
	free(o->feed_ms);
	free(o->cmd.mountpoint);
}
