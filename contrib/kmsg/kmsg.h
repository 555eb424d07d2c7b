/* The kernel-log watcher: reads /dev/kmsg (or a file of records in its format) without
 * blocking and collects the kernel's own reports (WARNING, BUG, Oops, lockdep, KASAN,
 * UBSAN, hung task, soft lockup) with the records that continue them (registers, Call
 * Trace). A small library with no dependency on the daemon; its users are sigbus-stress,
 * the integration fixture and sigbus-kmsg (contrib/check). */
#ifndef SIGBUS_KMSG_H
#define SIGBUS_KMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KMSG_DEFAULT_PATH "/dev/kmsg"
#define KMSG_REPORT_LINES 80	  /* lines kept per report; later ones are only counted */
#define KMSG_GAP_US	  1000000 /* a record this long after its predecessor ends a report */

/* One report: the line that matched and the kernel records that followed it, up to an
 * end marker ("---[ end trace"), a gap of KMSG_GAP_US, a record from user space or the
 * next report's first line. Times are printk's clock: microseconds since boot, which
 * tracks CLOCK_MONOTONIC (within about a millisecond on x86, measured on 6.18). */
struct kmsg_report {
	uint64_t seq;	  /* the kernel's sequence number of the first line */
	uint64_t ts_us;	  /* printk time of the first line */
	uint64_t last_us; /* printk time of the last line taken */
	const char *kind; /* the pattern that matched, e.g. "WARNING:" (static storage) */
	char **lines;	  /* nlines lines, text only (no prefix), the first line first */
	unsigned nlines;  /* at most KMSG_REPORT_LINES */
	unsigned dropped; /* continuation lines past KMSG_REPORT_LINES */
	bool is_closed;	  /* nothing more will be added to it */
};

struct kmsg;

/* Opens path (NULL: /dev/kmsg) for non-blocking reads. With from_end, the records already
 * there are skipped (SEEK_END): the watch starts now; otherwise it starts with the oldest
 * record the kernel still keeps. 0 or -errno: -EPERM or -EACCES where the kernel log is
 * not readable (dmesg_restrict=1 for an unprivileged user), -ENOENT where it is absent.
 * A regular file or FIFO is read as lines in /dev/kmsg's format (for tests and replays). */
int kmsg_open(const char *path, bool from_end, struct kmsg **out);

/* A watcher with no source: records come only from kmsg_feed(). 0 or -ENOMEM. */
int kmsg_new(struct kmsg **out);

/* Reads every record available now and feeds each one. Returns the number of records
 * read (0 when nothing was new), or -errno on a read error other than EAGAIN. Records the
 * kernel overwrote before we read them (EPIPE) are counted in kmsg_lost(). A source
 * without a file (kmsg_new) reads nothing and returns 0. */
int kmsg_poll(struct kmsg *k);

/* Matches one record "PRIO,SEQ,TS_US,FLAGS;TEXT" (len bytes, no trailing newline needed;
 * dictionary lines after a newline are ignored). 0, -EINVAL for a malformed record (not
 * counted), -ENOMEM. Only kernel records (facility 0) count: the first line of a report
 * must also have level KERN_WARNING or more severe. */
int kmsg_feed(struct kmsg *k, const char *rec, size_t len);

/* Closes the open report, if any: call at the end of a run so it counts as complete. */
void kmsg_flush(struct kmsg *k);

/* The reports found so far, oldest first; valid until the next poll, feed or close. */
size_t kmsg_count(const struct kmsg *k);
const struct kmsg_report *kmsg_report(const struct kmsg *k, size_t i);

/* Records lost to the kernel's ring buffer wrapping before they were read. */
uint64_t kmsg_lost(const struct kmsg *k);

/* The first-line pattern text matches (e.g. "WARNING:", "BUG:", "soft lockup"), or NULL.
 * The checkers' own phrases match at the start of any word ("watchdog: BUG: soft
 * lockup"); the generic words WARNING:, BUG:, Oops and the like only at the start of the
 * text. */
const char *kmsg_match(const char *text);

/* Frees everything; NULL is a no-op. */
void kmsg_close(struct kmsg *k);

#endif
