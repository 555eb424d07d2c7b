/* sigbus-stress: the types shared by its modules. Controller and clients are forked
 * processes; everything they share lives in one anonymous MAP_SHARED region (struct shm)
 * laid out by shm_create() in main.c. Options are in opts.c, page stamps in stamp.c, the
 * oracle in oracle.c, events in controller.c, the workload in client.c, output in report.c,
 * the kernel log in kwatch.c. */
#ifndef SIGBUS_STRESS_H
#define SIGBUS_STRESS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PG		4096u
#define HIST_MAX	48  /* history entries kept per page (a ring) */
#define REVOKE_MAX	64  /* revocations remembered per file (a ring) */
#define EVLOG_MAX	256 /* events remembered for reports (a ring) */
#define EVTEXT_MAX	120
#define REPORT_MAX	8192
#define WRITE_PAGES	4  /* most pages one event writes, punches or fails */
#define MIN_TAIL	64 /* shortest stamp prefix a truncation leaves in the EOF page */
#define MAX_FILES	64
#define MAX_PROCS	64
#define MAX_FILE_SIZE	(64u << 20)
#define PATH_MAX_STRESS 4096

/* ---- options (opts.c) ---- */

enum ev_kind {
	EV_WRITE,
	EV_NONOTIFY,
	EV_INVAL,
	EV_TRUNCATE,
	EV_PUNCH,
	EV_REVOKE,
	EV_FAIL,
	EV_UNPLUG,
	EV_NR
};

struct sc_event {
	uint64_t t_ms; /* since the start of the run */
	enum ev_kind kind;
	unsigned file;
	uint64_t a, b; /* write/punch/fail/inval: first page, pages; truncate: size */
	bool has_range;
};

/* --kernel-warnings: whether a kernel report (WARNING, BUG...) during the run fails it */
enum kw_mode { KW_FAIL, KW_REPORT };

struct opts {
	double duration; /* seconds */
	unsigned procs, files;
	uint64_t size;	      /* bytes per file, a multiple of PG */
	double rate;	      /* events per second */
	unsigned mix[EV_NR];  /* weights */
	uint64_t seed;	      /* printed at start */
	unsigned hold_ms;     /* how long revoke, unplug and fail last before replug, clear */
	const char *socket;   /* -S; NULL: the mount root's xattr */
	const char *scenario; /* --scenario FILE */
	struct sc_event *sc;  /* parsed scenario, owned */
	size_t nsc;
	bool json, quiet;
	bool keep; /* --keep: leave the run's directory and files behind */
	enum kw_mode kernel_warnings;
	const char *kernel_log; /* --kernel-log; NULL: /dev/kmsg */
	const char *mountpoint;
};

/* Parses argv into *o (defaults first). 0, 1 after --help, or -EINVAL with the problems
 * printed to stderr. */
int opts_parse(int argc, char **argv, struct opts *o);
void opts_free(struct opts *o);
const char *ev_kind_name(enum ev_kind k);

/* ---- shared state ---- */

/* What one page of the file holds at one point of its history. */
#define PS_FAIL	   0x1 /* a read fault rule covers it */
#define PS_BARRIER 0x2 /* the event that made it dropped the page from the kernel's cache */
#define PS_CLIENT  0x4 /* a client wrote it through the page cache (readers may see a mix) */
struct pstate {
	uint32_t version; /* 0: zeros (a hole) */
	uint16_t len;	  /* bytes of stamp, then zeros; 0 for a hole */
	uint16_t eof;	  /* bytes of the page inside the file; 0: past EOF */
	uint8_t flags;	  /* PS_* */
};

struct hent {
	uint64_t seq; /* the per-file event that made this state */
	struct pstate st;
};

struct phist {
	uint32_t n; /* entries ever appended; ring index n % HIST_MAX */
	struct hent e[HIST_MAX];
};

struct fmodel {
	pthread_mutex_t lock; /* process-shared, robust: held across every change of the file */
	_Atomic uint64_t started, done; /* per-file event sequence: last started, last finished */
	_Atomic uint32_t hseq;	  /* seqcount over hist[] and revoke_seq[]: odd while written */
	_Atomic uint32_t revokes; /* revocations started */
	uint64_t revoke_seq[REVOKE_MAX]; /* seq of the revoke command; its replug is seq + 1 */
	uint64_t size;			 /* bytes; guarded by lock */
	uint64_t dseq_last;		 /* the daemon's seq of the last event on this file */
	struct phist *hist;		 /* pages of the file, inside the shm region */
};

enum ctr {
	C_ACCESS,
	C_SIGBUS_OK,
	C_EIO_OK,
	C_SIGBUS_BAD,
	C_SIGBUS_MISSING,
	C_STALE,
	C_TORN,
	C_ERRNO,
	C_SHORT,
	C_UNDECIDED,
	C_MIXED_OK,
	C_EOF_OK,
	C_WRITES,
	C_NR
};

struct cstats {
	_Atomic uint64_t c[C_NR];
	_Atomic uint64_t busy_ns; /* time inside accesses to the mount */
	_Atomic uint64_t wall_ns;
};

struct evrec {
	uint64_t t_us;
	unsigned file;
	uint64_t seq, dseq; /* per-file seq, the daemon's seq */
	char text[EVTEXT_MAX];
};

struct shm {
	_Atomic int stop;
	_Atomic int violated; /* the first client to set it writes report[] */
	_Atomic uint32_t next_version;
	_Atomic uint64_t events, event_errors;
	char report[REPORT_MAX];
	unsigned vfile; /* file of the violation */
	uint64_t vseq;	/* per-file seq at the violation */
	_Atomic uint64_t evlog_n;
	struct evrec evlog[EVLOG_MAX];
	char dir[64]; /* the run's directory, relative to the mount root; "" until made */
	struct cstats cs[MAX_PROCS];
	struct fmodel f[MAX_FILES];
};

struct run {
	struct opts *o;
	struct shm *shm;
	unsigned npages; /* pages per file */
	uint64_t t0_ns;
	struct kw *kw; /* kwatch.c's; the main process only */
};

/* A seeded generator (xorshift64*), so a seed repeats a run's event sequence. */
struct rng {
	uint64_t s;
};
static inline uint64_t rng_next(struct rng *g)
{
	g->s ^= g->s >> 12;
	g->s ^= g->s << 25;
	g->s ^= g->s >> 27;
	return g->s * 0x2545f4914f6cdd1dULL;
}
/* Uniform in [0, n); n > 0. */
static inline uint64_t rng_below(struct rng *g, uint64_t n)
{
	return rng_next(g) % n;
}

uint64_t now_ns(void);
uint32_t version_next(struct run *r);
/* "DIR/fN", relative to the mount root, and the same under the mount point. */
void file_rel(const struct run *r, unsigned f, char *buf, size_t size);
void file_abs(const struct run *r, unsigned f, char *buf, size_t size);
/* Locks f's model; recovers it if its holder died. */
void fmodel_lock(struct fmodel *m);
void fmodel_unlock(struct fmodel *m);

/* ---- stamps (stamp.c) ---- */

#define STAMP_HDR 48
/* Fills page with the stamp of (file, page, version): a header and a body of printable
 * bytes other than '"' and '\\' (so a write line needs no quoting), never NUL. */
void stamp_fill(char *page, unsigned file, unsigned pg, uint32_t version);

enum obs_kind { OBS_ZERO, OBS_STAMP, OBS_BAD };
struct obs {
	enum obs_kind kind;
	unsigned file, page; /* OBS_STAMP: what the header says */
	uint32_t version;
	unsigned len; /* bytes of stamp before the zeros */
	char why[96]; /* OBS_BAD: what is wrong */
};
/* Decodes a page (len bytes, the rest read as zeros). */
void stamp_decode(const char *page, unsigned len, struct obs *out);
/* The image of state st for (file, pg) as a mapping shows it. */
void stamp_image(char *page, unsigned file, unsigned pg, const struct pstate *st);

/* ---- the model and the oracle (oracle.c) ---- */

/* A change of a file: model_begin() (caller holds f->lock) gives its seq; push its states,
 * then model_started() before acting and model_done() after. */
uint64_t model_begin(struct fmodel *f);
void model_started(struct fmodel *f, uint64_t seq);
void model_done(struct fmodel *f, uint64_t seq);
/* Appends a state to page pg of f with seq; the caller holds f->lock. */
void model_push(struct fmodel *f, unsigned pg, uint64_t seq, const struct pstate *st);
/* The state page pg of f holds now; the caller holds f->lock. */
struct pstate model_cur(const struct fmodel *f, unsigned pg);
void model_revoke(struct fmodel *f, uint64_t seq);

/* The access window: events <= a had finished before the access, none > b had started. */
struct window {
	uint64_t a, b;
	uint32_t epoch; /* revocations the mapping or fd was opened after */
};

enum acc_kind { ACC_SHARED, ACC_PRIVATE, ACC_PREAD };

/* What an access saw. */
struct seen {
	enum acc_kind acc;
	bool is_sigbus; /* mappings */
	int err;	/* pread: positive errno, 0 */
	unsigned n;	/* pread: bytes returned; mappings: PG */
	const char *buf;
	/* the client's own COWed copy of the page, if any (ACC_PRIVATE) */
	bool has_cow;
	uint32_t cow_version;
	uint64_t cow_a, cow_b; /* the COW write's window */
};

enum verdict_kind {
	V_OK,
	V_SIGBUS_OK,
	V_EIO_OK,
	V_MIXED_OK,
	V_EOF_OK, /* pread saw end of file while a revocation was in flight */
	V_UNDECIDED,
	V_SIGBUS_BAD,
	V_SIGBUS_MISSING,
	V_STALE,
	V_TORN,
	V_ERRNO,
	V_SHORT
};

struct verdict {
	enum verdict_kind kind;
	bool is_cow_gone; /* ACC_PRIVATE: the COWed copy is no longer mapped */
	char expected[512], seen[256];
};

/* Judges an access to page pg of file f in window w. */
void oracle_judge(struct run *r, unsigned f, unsigned pg, const struct window *w,
		  const struct seen *s, struct verdict *out);
bool verdict_is_violation(enum verdict_kind k);
const char *verdict_name(enum verdict_kind k);

/* ---- controller (controller.c) and clients (client.c) ---- */

/* Runs the event timeline until the duration ends or a client reports a violation. 0, or
 * -errno when the daemon could not be driven. */
int controller_run(struct run *r, const char *sock);
/* Creates and stamps the files; 0 or -errno. */
int controller_setup(struct run *r);
/* Appends an event to the shared event log. */
void evlog_add(struct run *r, unsigned file, uint64_t seq, uint64_t dseq, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* The body of client process id: returns its exit code. */
int client_main(struct run *r, unsigned id);

/* ---- output (report.c) ---- */

void report_progress(struct run *r, bool is_final);
void report_summary(struct run *r, int rc);
/* Records the first violation (a client calls it) and asks everyone to stop. */
void report_violation(struct run *r, unsigned file, unsigned pg, unsigned client, enum acc_kind acc,
		      const struct window *w, const struct verdict *v);
/* Prints the recorded violation and the events around it (also the daemon's log, from sock). */
void report_print_violation(struct run *r, const char *sock);
/* Prints s as a JSON string. */
void report_json_str(const char *s);

/* ---- the kernel log (kwatch.c), in the main process only ---- */

/* Starts watching the kernel log (--kernel-log, or /dev/kmsg) from now. Where it cannot be
 * read (dmesg_restrict for a user, no /dev/kmsg) it says so once on stderr and the run
 * goes on unwatched. */
void kw_start(struct run *r);
/* Reads new kernel records. Each new report is kept with the events of the shared log
 * that finished in the second before it (or after it, while it was being printed); with
 * --kernel-warnings fail it also stops the run. Call often: the event log is a ring. */
void kw_poll(struct run *r);
/* The last kw_poll(), after which the open report counts as complete. */
void kw_finish(struct run *r);
/* Reports found, and whether they fail the run. */
size_t kw_count(const struct run *r);
bool kw_fails(const struct run *r);
/* The summary's line, its JSON members (each starting with a comma), and the reports
 * with their events, printed after the summary. */
void kw_summary_line(const struct run *r);
void kw_json(const struct run *r);
void kw_print(const struct run *r);
void kw_stop(struct run *r);

#endif
