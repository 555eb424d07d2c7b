/* A row of the semantics matrix (README), as check_events_*.c run it: a 4-page test file
 * in a directory of its own, a forked client that maps and reads it before the event
 * (shared, clean and COWed private pages, old descriptors) and observes it in steps, and
 * the test's side, which runs the event through the control client library. */
#ifndef SIGBUSFS_TEST_MATRIX_H
#define SIGBUSFS_TEST_MATRIX_H

#include <check.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "client.h"
#include "ctlreq.h"
#include "fixture.h"

#define MX_PG	  4096
#define MX_NPG	  4
#define MX_FSIZE  (MX_NPG * MX_PG)	 /* the test file: page i is filled with 'A' + i */
#define MX_MAPMAX ((MX_NPG + 1) * MX_PG) /* what a client maps: a page past the end of the file */

extern struct mnt mx_mnt;	 /* the mount of the running TCase */
extern char mx_path[PATH_MAX];	 /* the test file, in its own directory for each test */
extern char mx_rel[64];		 /* the same, relative to the mount root (for commands) */
extern char mx_orig[MX_MAPMAX];	 /* the file's bytes before any event, zeros past it */
extern struct ctl_result mx_res; /* the reply to the last MX_CTL_OK() or MX_CTL_ERR() */

/* ---- the test's side; failures fail the test ---- */

/* A control command that must succeed, or fail with errno err; the reply is in mx_res. */
#define MX_CTL_OK(...)	     fx_ctl_ok(&mx_mnt, &mx_res, __VA_ARGS__, (char *)NULL)
#define MX_CTL_ERR(err, ...) fx_ctl_err(&mx_mnt, &mx_res, (err), __VA_ARGS__, (char *)NULL)
/* The number key of mx_res, -1 if absent. */
long long mx_val(const char *key);
/* Whether one of the values of key in mx_res is record ("stale: off=4096 len=4096"). */
bool mx_record_has(const char *key, const char *record);
/* Installs a fault rule (the words of fail or delay) and returns its id. */
#define MX_RULE_ADD(...) (MX_CTL_OK(__VA_ARGS__), mx_rule_id())
long long mx_rule_id(void);
/* Whether `rules` lists rule id on the test file. */
bool mx_rule_listed(long long id);

/* ---- checks run in client processes: each returns 0 or FX_FAIL(...) ---- */

/* mx_orig with n bytes at off replaced by bytes (zeros if NULL), in a static buffer that
 * the next call overwrites. */
char *mx_image(size_t off, const char *bytes, size_t n);
/* The descriptor reads want[0, size) and then end of file. */
int mx_expect_pread(const char *what, int fd, const char *want, size_t size);
/* A pread of a page at off fails with err. */
int mx_expect_pread_errno(int fd, size_t off, int err);
/* A new open maps the file and reads want[0, MX_FSIZE) through both kinds of mapping. */
int mx_new_mapping_reads(const char *want);

struct mx_client;
typedef int (*mx_step_fn)(struct mx_client *c);

/* What a row's client does, and what its checks need to know of the event. */
struct mx_row {
	int cow;	    /* the private page the client writes 'z' into before the event */
	size_t off, len;    /* the event's range, for the checks */
	int err;	    /* the errno of a fault rule */
	mx_step_fn step[2]; /* run one per fx_peer_step() of the test; NULL: no more steps */
};
#define MX_ROW(cow, off, len, err, s0, s1)  \
	{                                   \
		(cow), (off), (len), (err), \
		{                           \
			(s0), (s1)          \
		}                           \
	}

struct mx_client {
	const struct mx_row *row;
	int fd;		    /* O_RDWR, opened before the event */
	int dfd;	    /* O_RDONLY | O_DIRECT, opened before the event */
	volatile char *sh;  /* MAP_SHARED of fd, MX_MAPMAX bytes */
	volatile char *pv;  /* MAP_PRIVATE of fd, MX_MAPMAX bytes, page row->cow COWed */
	struct stat before; /* fstat before the event */
};

/* Bit i set: page i overlaps the row's range. */
unsigned mx_range_mask(const struct mx_row *row);
/* The COWed private page still holds the client's copy: 'z', then the original bytes. */
int mx_expect_cow_kept(struct mx_client *c);
/* The client's whole view is want[0, size): the shared mapping and the clean private pages
 * up to the end of the last page, the COWed page its own copy, the old descriptor. */
int mx_expect_view(struct mx_client *c, const char *want, size_t size);
/* The view is the original file. */
int mx_healthy_seen(struct mx_client *c);
enum mx_mtime { MX_MT_ANY, MX_MT_SAME, MX_MT_NEWER };
/* stat of the path, fstat of the old descriptor and of a new open give size and mt. */
int mx_expect_stat(struct mx_client *c, off_t size, enum mx_mtime mt);
/* Page i of the shared mapping is in the page cache exactly when bit i of mask is set. */
int mx_expect_cached(struct mx_client *c, unsigned mask);
/* The client: maps and reads the file, COWs a page, then runs the row's steps. An
 * fx_peer_fn whose arg is the struct mx_row. */
int mx_client_main(int sock, const void *arg);

/* ---- running a row ---- */

/* Starts row's client, runs event (a statement) from the test's side, and lets rest() take
 * the client through its steps to its end. */
#define MX_ROW_WITH(row, event, rest)                      \
	do {                                               \
		struct fx_peer p_;                         \
		fx_peer_start(&p_, mx_client_main, (row)); \
		event;                                     \
		rest(&p_);                                 \
	} while (0)
/* rest(): one step, the end; or a step, `clear`, the last step. */
void mx_last_step(struct fx_peer *p);
void mx_clear_between_steps(struct fx_peer *p);
/* `inval` of the test file, so that the client sees the backend's bytes, then its last
 * step. */
void mx_inval_last_step(struct fx_peer *p);
/* A one-step row: the client maps, the test runs the command (its reply stays in mx_res),
 * the client observes. */
#define MX_ROW_RUN(row, ...) MX_ROW_WITH((row), MX_CTL_OK(__VA_ARGS__), mx_last_step)
/* A fault rule (the words of fail), the client's first step, `clear`, its second step. */
#define MX_RULE_THEN_CLEAR(row, ...) \
	MX_ROW_WITH((row), MX_RULE_ADD(__VA_ARGS__), mx_clear_between_steps)

/* ---- the suite ---- */

struct mx_tcase {
	const char *name;
	const TTest *tests[4]; /* NULL-terminated */
};
/* main() of a check_events_*.c: a TCase per entry of tcs, each on its own mount, each test
 * with a fresh test file. Returns main()'s exit code. */
int mx_run(const char *suite, const struct mx_tcase *tcs, size_t n);

#endif
