/* sigbus-bench: one run of one benchmark that fio cannot express, in a mounted directory
 * (sigbusfs, tmpfs or any other), printed as "METRIC VALUE UNIT" lines on stdout: page faults
 * through a new mapping, small files, and the latency of revoke, unplug and replug as open
 * files and mapped pages grow (with -S, the sigbusfs daemon's control socket). run-bench
 * repeats it in interleaved rounds and keeps every figure. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl_client.h"

#define PAGE		 4096
#define MIB		 (1024 * 1024)
#define IO_SIZE		 MIB	     /* bytes per write(2) when a file is made */
#define DATA_NAME	 "bench.dat" /* the file of the mmap tests, shared with fio's jobs */
#define DATA_BYTES	 (256ull * MIB)
#define SMALL_DIR	 "small"
#define SMALL_FILES	 10000
#define FILES_DIR	 "files"
#define MAPPED_NAME	 "mapped.dat"
#define FD_SPARE	 64 /* descriptors kept free beside the files held open */
#define CMD_MAX		 512
#define DROP_CACHES_PATH "/proc/sys/vm/drop_caches"

struct bench {
	const char *dir; /* the mount's root */
	int dirfd;
	const char *sock;	/* NULL: no daemon to drive (tmpfs, another filesystem) */
	struct ctl_client *ctl; /* connected when sock is set */
	long files;		/* -n: files (small files tests, held open by the event tests) */
	long pages;		/* -p: resident pages of the mapped file of the event tests */
	char *buf;		/* IO_SIZE bytes of a non-zero pattern, page aligned */
	int *fds;		/* the files held open, files entries; -1 where not open */
	int map_fd;		/* MAPPED_NAME, open while mapped */
	unsigned char *map;	/* pages * PAGE bytes of MAPPED_NAME, MAP_SHARED, or NULL */
	char note[200];		/* what the run adds to its stderr line */
};

struct test {
	const char *name;
	const char *help;
	long def_files;			  /* the default of -n */
	int (*prepare)(struct bench *b);  /* may be NULL */
	int (*run)(struct bench *b);	  /* prints its metrics */
	void (*cleanup)(struct bench *b); /* may be NULL; also after a failed prepare */
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void metric_print(const char *metric, double value, const char *unit)
{
	printf("%s %.3f %s\n", metric, value, unit);
}

/* Appends to what this run notes on its stderr line. */
static void note_add(struct bench *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note_add(struct bench *b, const char *fmt, ...)
{
	size_t len = strlen(b->note);
	va_list ap;

	if (len > 0 && len + 2 < sizeof(b->note)) {
		strcpy(b->note + len, "; ");
		len += 2;
	}
	va_start(ap, fmt);
	vsnprintf(b->note + len, sizeof(b->note) - len, fmt, ap);
	va_end(ap);
}

/* Sends one command line to the daemon, the one "sigbusctl -S SOCK LINE" sends, and stores
 * the seconds until its reply in *secs_out (may be NULL). 0, or -errno: the daemon's err
 * reply (reported on stderr) or a transport failure. */
static int ctl_cmd(struct bench *b, double *secs_out, const char *fmt, ...)
{
	char line[CMD_MAX];
	struct ctl_result r;
	va_list ap;
	double t;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -ENAMETOOLONG;
	fprintf(stderr, "    $ sigbusctl -S %s %s\n", b->sock, line);
	t = now();
	rc = ctl_client_request(b->ctl, line, (size_t)n, &r);
	if (secs_out)
		*secs_out = now() - t;
	if (rc == 0 && !r.is_ok) {
		fprintf(stderr, "sigbus-bench: %s: %s %s\n", line, r.errname, r.text);
		rc = r.error ? -r.error : -EIO;
	}
	ctl_result_free(&r);
	return rc;
}

/* Cold runs start from an empty page cache, as run-bench's cold fio jobs do: the mount's
 * dirty pages are written, then the kernel drops every clean page, dentry and inode it can.
 * Mapped pages stay; sigbusfs keeps its backend (memory), so only the kernel's cache is
 * cold. A filesystem without syncfs (EOPNOTSUPP) keeps its dirty pages, if any. */
static int cache_drop(struct bench *b)
{
	int fd, rc = 0;

	(void)syncfs(b->dirfd);
	fd = open(DROP_CACHES_PATH, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, "3\n", 2) != 2)
		rc = -errno;
	close(fd);
	return rc;
}

static int write_full(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Creates name with size bytes of the pattern (IO_SIZE writes), unless it has that size. */
static int file_make(struct bench *b, const char *name, uint64_t size)
{
	struct stat st;
	int fd, rc = 0;

	if (fstatat(b->dirfd, name, &st, 0) == 0 && (uint64_t)st.st_size == size)
		return 0;
	fd = openat(b->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	for (uint64_t off = 0; rc == 0 && off < size; off += IO_SIZE)
		rc = write_full(fd, b->buf, size - off < IO_SIZE ? size - off : IO_SIZE);
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	return rc;
}

static int unlink_quiet(struct bench *b, const char *name, int flags)
{
	if (unlinkat(b->dirfd, name, flags) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

static long faults_now(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt + ru.ru_majflt;
}

/* Touches one byte of every page in order: reads it, or writes it (a copy-on-write fault
 * in a private mapping). */
static void pages_touch(unsigned char *map, size_t pages, bool is_write)
{
	volatile unsigned char *p = map;

	for (size_t i = 0; i < pages; i++) {
		if (is_write)
			p[i * PAGE] = (unsigned char)i;
		else
			(void)p[i * PAGE];
	}
}

/* The pages of [map, map + pages * PAGE) that are resident. */
static size_t pages_resident(void *map, size_t pages)
{
	unsigned char *vec = malloc(pages);
	size_t n = 0;

	if (!vec || mincore(map, pages * PAGE, vec) < 0) {
		free(vec);
		return 0;
	}
	for (size_t i = 0; i < pages; i++)
		n += vec[i] & 1;
	free(vec);
	return n;
}

static int data_make(struct bench *b)
{
	return file_make(b, DATA_NAME, DATA_BYTES);
}

/* First touch of every page, in order, of the cold data file through a new mapping: the
 * kernel's read-around and fault-around serve most pages, so this is not a random-fault
 * rate (fio's mmap job is). Prints pages/s and the faults the touch took. */
static int map_touch(struct bench *b, const char *metric, int flags)
{
	bool is_private = flags == MAP_PRIVATE;
	int prot = is_private ? PROT_READ | PROT_WRITE : PROT_READ;
	size_t pages = DATA_BYTES / PAGE;
	char faults_metric[64];
	unsigned char *map;
	long faults;
	double t;
	int fd, rc = cache_drop(b);

	if (rc < 0)
		return rc;
	fd = openat(b->dirfd, DATA_NAME, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	map = mmap(NULL, DATA_BYTES, prot, flags, fd, 0);
	if (map == MAP_FAILED) {
		rc = -errno;
		goto out_close;
	}
	faults = faults_now();
	t = now();
	pages_touch(map, pages, is_private);
	t = now() - t;
	faults = faults_now() - faults;
	munmap(map, DATA_BYTES);
	metric_print(metric, (double)pages / t, "pages/s");
	snprintf(faults_metric, sizeof(faults_metric), "%s-faults", metric);
	metric_print(faults_metric, (double)faults, "faults");
out_close:
	close(fd);
	return rc;
}

static int map_seq_read(struct bench *b)
{
	return map_touch(b, "mmap-seq-read", MAP_SHARED);
}

static int map_seq_cow(struct bench *b)
{
	return map_touch(b, "mmap-seq-cow", MAP_PRIVATE);
}

/* Creates dir/f0 .. dir/f(n-1), PAGE bytes each, one open, write and close each;
 * *made_out counts those made. */
static int files_make(struct bench *b, const char *dir, long n, long *made_out)
{
	char name[CMD_MAX];
	int fd, rc = 0;

	*made_out = 0;
	if (mkdirat(b->dirfd, dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	for (long i = 0; rc == 0 && i < n; i++) {
		snprintf(name, sizeof(name), "%s/f%ld", dir, i);
		fd = openat(b->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			return -errno;
		rc = write_full(fd, b->buf, PAGE);
		if (close(fd) < 0 && rc == 0)
			rc = -errno;
		*made_out = i + 1;
	}
	return rc;
}

/* Removes dir/f0 .. dir/f(n-1) and dir; the first failure stops it. */
static int files_remove(struct bench *b, const char *dir, long n)
{
	char name[CMD_MAX];
	int rc = 0;

	for (long i = 0; rc == 0 && i < n; i++) {
		snprintf(name, sizeof(name), "%s/f%ld", dir, i);
		rc = unlink_quiet(b, name, 0);
	}
	return rc == 0 ? unlink_quiet(b, dir, AT_REMOVEDIR) : rc;
}

/* Creates, writes 4 KiB to and closes b->files new files, then unlinks them: both timed,
 * separately, in files/s. */
static int small_files(struct bench *b)
{
	long made;
	double t = now();
	int rc = files_make(b, SMALL_DIR, b->files, &made), rm;

	t = now() - t;
	if (rc == 0)
		metric_print("create", (double)made / t, "files/s");
	t = now();
	rm = files_remove(b, SMALL_DIR, made);
	t = now() - t;
	if (rc == 0 && rm == 0)
		metric_print("unlink", (double)made / t, "files/s");
	return rc < 0 ? rc : rm;
}

/* Lets this process hold b->files descriptors beside its own. */
static int fd_limit_raise(struct bench *b)
{
	rlim_t need = (rlim_t)b->files + FD_SPARE;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	if (rl.rlim_cur >= need)
		return 0;
	rl.rlim_cur = need;
	if (rl.rlim_max < need)
		rl.rlim_max = need; /* root may */
	return setrlimit(RLIMIT_NOFILE, &rl) < 0 ? -errno : 0;
}

/* Makes b->files files of 4 KiB in FILES_DIR and holds each open. */
static int files_open(struct bench *b)
{
	char name[CMD_MAX];
	long made;
	int rc = fd_limit_raise(b);

	if (rc == 0)
		rc = files_make(b, FILES_DIR, b->files, &made);
	for (long i = 0; rc == 0 && i < b->files; i++) {
		snprintf(name, sizeof(name), "%s/f%ld", FILES_DIR, i);
		b->fds[i] = openat(b->dirfd, name, O_RDONLY | O_CLOEXEC);
		if (b->fds[i] < 0)
			rc = -errno;
	}
	return rc;
}

/* Maps MAPPED_NAME (b->pages pages) MAP_SHARED and reads every page, so that all are
 * resident and mapped. */
static int map_arm(struct bench *b)
{
	size_t len = (size_t)b->pages * PAGE;
	int rc = file_make(b, MAPPED_NAME, len);

	if (rc < 0)
		return rc;
	b->map_fd = openat(b->dirfd, MAPPED_NAME, O_RDWR | O_CLOEXEC);
	if (b->map_fd < 0)
		return -errno;
	b->map = mmap(NULL, len, PROT_READ, MAP_SHARED, b->map_fd, 0);
	if (b->map == MAP_FAILED) {
		b->map = NULL;
		return -errno;
	}
	pages_touch(b->map, (size_t)b->pages, false);
	return 0;
}

static void map_disarm(struct bench *b)
{
	if (b->map)
		munmap(b->map, (size_t)b->pages * PAGE);
	if (b->map_fd >= 0)
		close(b->map_fd);
	b->map = NULL;
	b->map_fd = -1;
}

/* The event tests' state: b->files files held open, b->pages pages mapped and resident. */
static int events_prepare(struct bench *b)
{
	int rc = 0;

	b->fds = malloc((size_t)(b->files ? b->files : 1) * sizeof(*b->fds));
	if (!b->fds)
		return -ENOMEM;
	for (long i = 0; i < b->files; i++)
		b->fds[i] = -1;
	if (b->files > 0)
		rc = files_open(b);
	if (rc == 0 && b->pages > 0)
		rc = map_arm(b);
	note_add(b, "%ld files open, %zu of %ld pages resident", b->files,
		 b->map ? pages_resident(b->map, (size_t)b->pages) : 0, b->pages);
	return rc;
}

static void events_cleanup(struct bench *b)
{
	int rc = 0;

	map_disarm(b);
	for (long i = 0; b->fds && i < b->files; i++)
		if (b->fds[i] >= 0)
			close(b->fds[i]);
	free(b->fds);
	b->fds = NULL;
	if (b->files > 0)
		rc = files_remove(b, FILES_DIR, b->files);
	if (rc == 0 && b->pages > 0)
		rc = unlink_quiet(b, MAPPED_NAME, 0);
	if (rc < 0)
		fprintf(stderr, "sigbus-bench: cannot remove the event files: %s\n", strerror(-rc));
}

static void note_resident(struct bench *b, const char *when)
{
	if (b->map)
		note_add(b, "%zu pages resident %s", pages_resident(b->map, (size_t)b->pages),
			 when);
}

/* Revokes the mapped file, or the first open file when none is mapped, and replugs
 * (untimed) to revive it. Without a daemon, the kernel's own cost of dropping those pages:
 * ftruncate(fd, 0). */
static int revoke_one(struct bench *b)
{
	const char *target = b->map ? MAPPED_NAME : FILES_DIR "/f0";
	double secs = 0, t;
	int rc;

	if (!b->map && b->files == 0)
		return -EINVAL; /* nothing to revoke */
	if (b->ctl) {
		rc = ctl_cmd(b, &secs, "revoke %s", target);
	} else {
		t = now();
		rc = ftruncate(b->map ? b->map_fd : b->fds[0], 0) < 0 ? -errno : 0;
		secs = now() - t;
	}
	note_resident(b, "after the revoke");
	if (rc == 0)
		metric_print("revoke", secs * 1e3, "ms");
	if (rc == 0 && b->ctl)
		rc = ctl_cmd(b, NULL, "replug");
	return rc;
}

/* Descriptors and mappings of a revoked file stay dead after the replug: opens and maps
 * the revoked file again, so that every file is live before the unplug. */
static int revoked_reopen(struct bench *b)
{
	char name[CMD_MAX];

	if (b->map) {
		map_disarm(b);
		return map_arm(b);
	}
	snprintf(name, sizeof(name), "%s/f0", FILES_DIR);
	close(b->fds[0]);
	b->fds[0] = openat(b->dirfd, name, O_RDONLY | O_CLOEXEC);
	return b->fds[0] < 0 ? -errno : 0;
}

/* The whole backend goes and comes back, each command timed. */
static int unplug_replug(struct bench *b)
{
	double down = 0, up = 0;
	int rc = ctl_cmd(b, &down, "unplug");

	note_resident(b, "after the unplug");
	if (rc == 0)
		rc = ctl_cmd(b, &up, "replug");
	if (rc == 0) {
		metric_print("unplug", down * 1e3, "ms");
		metric_print("replug", up * 1e3, "ms");
	}
	return rc;
}

/* A revoke, then (with a daemon) an unplug and a replug, with the same files open and
 * pages mapped. */
static int events_run(struct bench *b)
{
	int rc = revoke_one(b);

	if (rc == 0 && b->ctl)
		rc = revoked_reopen(b);
	if (rc == 0 && b->ctl)
		rc = unplug_replug(b);
	return rc;
}

/* Help lines wrap to the column after the name. */
#define HELP_WRAP "\n                 "

static const struct test tests[] = {
	{ "mmap-seq-read",
	  "first read of every page in order through a new MAP_SHARED mapping" HELP_WRAP
	  "of " DATA_NAME " (256 MiB), cache dropped: read-around; pages/s, faults",
	  0, data_make, map_seq_read, NULL },
	{ "mmap-seq-cow",
	  "the same through MAP_PRIVATE, writing every page: read-around, then" HELP_WRAP
	  "a copy; pages/s, faults",
	  0, data_make, map_seq_cow, NULL },
	{ "smallfiles",
	  "create + write 4 KiB + close -n files (default 10000), then unlink" HELP_WRAP
	  "them; files/s each",
	  SMALL_FILES, NULL, small_files, NULL },
	{ "events",
	  "with -n files of 4 KiB open and a file of -p pages mapped and resident:" HELP_WRAP
	  "revoke the mapped file (else an open one), replug untimed, then unplug" HELP_WRAP
	  "and replug; ms each. Without -S, ftruncate(fd, 0) of that file stands" HELP_WRAP
	  "for the revoke, and nothing else runs",
	  0, events_prepare, events_run, events_cleanup },
};

#define NTESTS (sizeof(tests) / sizeof(tests[0]))

/* Prepares, runs once, cleans up; the run's note goes to stderr as "note: ...". */
static int bench_run(struct bench *b, const struct test *t)
{
	int rc = t->prepare ? t->prepare(b) : 0;

	if (rc == 0)
		rc = t->run(b);
	if (*b->note)
		fprintf(stderr, "note: %s\n", b->note);
	if (t->cleanup)
		t->cleanup(b);
	return rc;
}

static int bench_open(struct bench *b)
{
	char err[256];
	int rc;

	b->dirfd = open(b->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (b->dirfd < 0)
		return -errno;
	b->buf = aligned_alloc(PAGE, IO_SIZE);
	if (!b->buf)
		return -ENOMEM;
	for (size_t i = 0; i < IO_SIZE; i++)
		b->buf[i] = (char)('a' + i % 26);
	if (!b->sock)
		return 0;
	rc = ctl_client_connect(b->sock, &b->ctl, err, sizeof(err));
	if (rc < 0)
		fprintf(stderr, "sigbus-bench: %s\n", err);
	return rc;
}

static void bench_close(struct bench *b)
{
	if (b->ctl)
		ctl_client_close(b->ctl);
	free(b->buf);
	if (b->dirfd >= 0)
		close(b->dirfd);
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: sigbus-bench [-S SOCKET] [-n FILES] [-p PAGES] TEST DIR\n\n"
		   "Runs TEST once in DIR, the root of a mount, and prints \"METRIC VALUE UNIT\"\n"
		   "lines. -S SOCKET is the sigbusfs daemon's control socket, which drives the\n"
		   "events. Cold tests drop the page cache (as root). Tests:\n");
	for (size_t i = 0; i < NTESTS; i++)
		fprintf(f, "  %-14s %s\n", tests[i].name, tests[i].help);
}

static const struct test *test_find(const char *name)
{
	for (size_t i = 0; i < NTESTS; i++)
		if (strcmp(tests[i].name, name) == 0)
			return &tests[i];
	return NULL;
}

/* Fills b and *test_out from argv; 0, 1 for help, or -EINVAL after a message. */
static int parse_args(int argc, char **argv, struct bench *b, const struct test **test_out)
{
	int c;

	while ((c = getopt(argc, argv, "S:n:p:h")) != -1) {
		switch (c) {
		case 'S':
			b->sock = optarg;
			break;
		case 'n':
			b->files = atol(optarg);
			if (b->files < 0)
				return -EINVAL;
			break;
		case 'p':
			b->pages = atol(optarg);
			if (b->pages < 0)
				return -EINVAL;
			break;
		case 'h':
			return 1;
		default:
			return -EINVAL;
		}
	}
	if (argc - optind != 2)
		return -EINVAL;
	*test_out = test_find(argv[optind]);
	b->dir = argv[optind + 1];
	if (*test_out)
		return 0;
	fprintf(stderr, "sigbus-bench: no test %s\n", argv[optind]);
	return -EINVAL;
}

int main(int argc, char **argv)
{
	struct bench b = { .dirfd = -1, .files = -1, .map_fd = -1 };
	const struct test *t = NULL;
	int rc = parse_args(argc, argv, &b, &t);

	if (rc != 0) {
		usage(rc < 0 ? stderr : stdout);
		return rc < 0 ? 2 : 0;
	}
	if (b.files < 0)
		b.files = t->def_files;
	rc = bench_open(&b);
	if (rc == 0)
		rc = bench_run(&b, t);
	if (rc < 0)
		fprintf(stderr, "sigbus-bench: %s in %s: %s\n", t->name, b.dir, strerror(-rc));
	bench_close(&b);
	return rc < 0 ? 1 : 0;
}
