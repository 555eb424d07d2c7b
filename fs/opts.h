/* Command-line options: sigbusfs's own (-o cache=, ctl=, uid=, gid=, mode=, powercut,
 * readahead=, feed_ms=) and the two positional arguments, parsed before libfuse sees the
 * rest. */
#ifndef SIGBUSFS_OPTS_H
#define SIGBUSFS_OPTS_H

#include <fuse_lowlevel.h>

#include "source.h"

enum cache_mode { CACHE_STRICT, CACHE_AUTO, CACHE_NONE, CACHE_MODE_NR };

struct opts {
	char *source;	   /* SOURCE as given: "mem:", "mem:512M" */
	struct source src; /* SOURCE parsed; borrows from source */
	char *cache;	   /* -o cache=: as given, checked by opts_validate() */
	char *ctl;	   /* -o ctl=: control socket path, or NULL for the default */
	int powercut;	   /* -o powercut: track what is durable (durable.h) */
	enum cache_mode cache_mode;
	int nonopts;		      /* positional arguments seen */
	struct fuse_cmdline_opts cmd; /* libfuse's: mountpoint, foreground, debug, ... */

	/* The root directory: -o uid=, gid=, mode= as given, and what opts_parse() made of
	 * them with the defaults: the user who mounts owns it, as with tmpfs, mode 0755. */
	char *uid, *gid, *mode;
	uid_t root_uid;
	gid_t root_gid;
	mode_t root_mode; /* permission bits only */

	char *readahead;       /* -o readahead=: as given */
	unsigned readahead_kb; /* what it says, OPTS_READAHEAD_KB if not given; 0: leave it */

	char *feed_ms;	    /* -o feed_ms=: as given */
	int feed_window_ms; /* what it says, or -1: the backend's (feed.h) */
};

#define OPTS_READAHEAD_KB 1024u /* one READ of the 1 MiB the INIT reply allows */
/* READs of a backend that reads from descriptors (read_fd) are at most this long, so
 * that libfuse can splice the reply: its pipe holds 1 MiB, which a 1 MiB READ and its
 * header overflow, and libfuse then copies every reply through a buffer of its own
 * (measured over tmpfs: 0.3 GB/s, against 3.3 GB/s spliced in 512 KiB READs). */
#define OPTS_SPLICE_READ_MAX  (512u * 1024)
#define OPTS_READAHEAD_MAX_KB (1u << 20)
#define OPTS_FEED_MAX_MS      10000u

/* Parses argv into o, leaving in args what fuse_session_new() must see, with sigbusfs's
 * defaults added (default_permissions, fsname, subtype). 0, or -EINVAL after printing
 * every problem found. The caller frees with opts_free(). */
int opts_parse(struct fuse_args *args, struct opts *o);
void opts_free(struct opts *o);
/* Prints the usage text, sigbusfs's options, then libfuse's. */
void opts_help(const char *prog);
/* The name of a cache mode, as -o cache= takes it: "strict", "auto", "none". */
const char *cache_mode_name(enum cache_mode m);

#endif
