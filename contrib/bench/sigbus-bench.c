/* sigbus-bench: runs one benchmark in a mounted directory (sigbusfs or tmpfs) a few times
 * and prints the best run as "NAME VALUE UNIT" on stdout, every run on stderr. With -S it
 * drives the sigbusfs daemon through its control socket: cache drops before cold runs and
 * the timed revoke, unplug and replug. run-bench compares the two mounts. */
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

#define PAGE	     4096
#define MIB	     (1024 * 1024)
#define IO_SIZE	     MIB	 /* bytes per read(2) and write(2) */
#define DATA_NAME    "bench.dat" /* the file of the read and mmap tests */
#define DATA_BYTES   (256ull * MIB)
#define WRITE_NAME   "bench-write.dat"
#define SMALL_DIR    "small"
#define SMALL_FILES  2000
#define FILES_DIR    "files"
#define MAPPED_NAME  "mapped.dat"
#define DEFAULT_REPS 3
#define CMD_MAX	     512

struct bench {
	const char *dir; /* the mount's root */
	int dirfd;
	const char *sock;	/* NULL: no daemon to drive (tmpfs) */
	struct ctl_client *ctl; /* connected when sock is set */
	int reps;
	int rep;	/* the current run, from 0 */
	long arg;	/* -n: files, pages or reads; 0 means the test's default */
	char *buf;	/* IO_SIZE bytes of a non-zero pattern, page aligned */
	uint32_t *perm; /* random test: page numbers in a random order */
	char note[160]; /* what a run adds to its stderr line */
};

struct test {
	const char *name;
	const char *unit;
	const char *help;
	bool is_latency; /* the best run is the lowest, not the highest */
	bool needs_ctl;
	long def_arg;			 /* the default of -n */
	int (*prepare)(struct bench *b); /* may be NULL */
	int (*run)(struct bench *b, double *out);
	void (*cleanup)(struct bench *b); /* may be NULL */
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double mib_per_s(uint64_t bytes, double secs)
{
	return (double)bytes / MIB / secs;
}

static size_t data_pages(void)
{
	return DATA_BYTES / PAGE;
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

/* Cold runs need the file's pages out of the page cache. tmpfs has no cold state: there
 * the run is warm, and run-bench says so. */
static int cache_drop(struct bench *b, const char *name)
{
	return b->ctl ? ctl_cmd(b, NULL, "inval %s", name) : 0;
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

/* Writes size bytes of the pattern with IO_SIZE writes. */
static int write_pattern(int fd, const char *buf, uint64_t size)
{
	int rc = 0;

	for (uint64_t off = 0; rc == 0 && off < size; off += IO_SIZE)
		rc = write_full(fd, buf, size - off < IO_SIZE ? size - off : IO_SIZE);
	return rc;
}

/* Creates name with size bytes of the pattern, unless it has that size already. */
static int file_make(struct bench *b, const char *name, uint64_t size)
{
	struct stat st;
	int fd, rc;

	if (fstatat(b->dirfd, name, &st, 0) == 0 && (uint64_t)st.st_size == size)
		return 0;
	fd = openat(b->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	rc = write_pattern(fd, b->buf, size);
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

/* Reads the whole file with IO_SIZE reads; *bytes_out counts what was read. */
static int file_read(struct bench *b, const char *name, uint64_t *bytes_out)
{
	int fd = openat(b->dirfd, name, O_RDONLY | O_CLOEXEC);
	uint64_t total = 0;
	ssize_t n;
	int rc = 0;

	*bytes_out = 0;
	if (fd < 0)
		return -errno;
	while ((n = read(fd, b->buf, IO_SIZE)) > 0)
		total += (uint64_t)n;
	if (n < 0)
		rc = -errno;
	close(fd);
	*bytes_out = total;
	return rc;
}

static int data_make(struct bench *b)
{
	return file_make(b, DATA_NAME, DATA_BYTES);
}

/* Makes the data file and reads it once, so that its pages are cached. */
static int data_warm(struct bench *b)
{
	uint64_t bytes;
	int rc = data_make(b);

	return rc < 0 ? rc : file_read(b, DATA_NAME, &bytes);
}

static int seq_read(struct bench *b, bool is_cold, double *out)
{
	uint64_t bytes;
	double t;
	int rc = is_cold ? cache_drop(b, DATA_NAME) : 0;

	if (rc < 0)
		return rc;
	t = now();
	rc = file_read(b, DATA_NAME, &bytes);
	*out = mib_per_s(bytes, now() - t);
	if (rc == 0 && bytes != DATA_BYTES)
		rc = -EIO;
	return rc;
}

static int seq_read_cold(struct bench *b, double *out)
{
	return seq_read(b, true, out);
}

static int seq_read_warm(struct bench *b, double *out)
{
	return seq_read(b, false, out);
}

/* xorshift64: the same order in every run and on both mounts. */
static uint64_t next_random(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

/* Fills b->perm with every page number of the data file, shuffled (Fisher-Yates). */
static int perm_make(struct bench *b)
{
	uint64_t state = 0x9e3779b97f4a7c15ULL;
	size_t n = data_pages();

	b->perm = malloc(n * sizeof(*b->perm));
	if (!b->perm)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		b->perm[i] = (uint32_t)i;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = (size_t)(next_random(&state) % (i + 1));
		uint32_t tmp = b->perm[i];

		b->perm[i] = b->perm[j];
		b->perm[j] = tmp;
	}
	return 0;
}

static int random_prepare_cold(struct bench *b)
{
	int rc = data_make(b);

	return rc < 0 ? rc : perm_make(b);
}

static int random_prepare_warm(struct bench *b)
{
	int rc = data_warm(b);

	return rc < 0 ? rc : perm_make(b);
}

static void random_cleanup(struct bench *b)
{
	free(b->perm);
	b->perm = NULL;
}

/* b->arg distinct pages, 4 KiB each, in the shuffled order. */
static int random_reads(struct bench *b, bool is_cold, double *out)
{
	size_t count = (size_t)b->arg < data_pages() ? (size_t)b->arg : data_pages();
	int fd, rc = is_cold ? cache_drop(b, DATA_NAME) : 0;
	double t;

	if (rc < 0)
		return rc;
	fd = openat(b->dirfd, DATA_NAME, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	t = now();
	for (size_t i = 0; rc == 0 && i < count; i++) {
		ssize_t n = pread(fd, b->buf, PAGE, (off_t)b->perm[i] * PAGE);

		if (n != PAGE)
			rc = n < 0 ? -errno : -EIO;
	}
	*out = (double)count / (now() - t);
	close(fd);
	return rc;
}

static int random_read_cold(struct bench *b, double *out)
{
	return random_reads(b, true, out);
}

static int random_read_warm(struct bench *b, double *out)
{
	return random_reads(b, false, out);
}

static long faults_now(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt + ru.ru_majflt;
}

/* Touches one byte of every page: reads it, or writes it (a copy-on-write fault in a
 * private mapping). */
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

/* First touch of every page of the cold data file through a new mapping. */
static int map_touch(struct bench *b, int flags, double *out)
{
	bool is_private = flags == MAP_PRIVATE;
	int prot = is_private ? PROT_READ | PROT_WRITE : PROT_READ;
	int fd, rc = cache_drop(b, DATA_NAME);
	unsigned char *map;
	double t;
	long faults;

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
	pages_touch(map, data_pages(), is_private);
	*out = (double)data_pages() / (now() - t);
	note_add(b, "%ld faults", faults_now() - faults);
	munmap(map, DATA_BYTES);
out_close:
	close(fd);
	return rc;
}

static int map_shared(struct bench *b, double *out)
{
	return map_touch(b, MAP_SHARED, out);
}

static int map_private(struct bench *b, double *out)
{
	return map_touch(b, MAP_PRIVATE, out);
}

/* A new 256 MiB file with 1 MiB writes, open to close. */
static int seq_write(struct bench *b, double *out)
{
	int fd, rc = unlink_quiet(b, WRITE_NAME, 0);
	double t;

	if (rc < 0)
		return rc;
	t = now();
	fd = openat(b->dirfd, WRITE_NAME, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	rc = write_pattern(fd, b->buf, DATA_BYTES);
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	*out = mib_per_s(DATA_BYTES, now() - t);
	if (rc == 0)
		rc = unlink_quiet(b, WRITE_NAME, 0);
	return rc;
}

/* Creates dir/f0 .. dir/f(n-1), PAGE bytes each; *made_out counts those made. */
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

/* Removes dir/f0 .. dir/f(n-1) and dir. */
static int files_remove(struct bench *b, const char *dir, long n)
{
	char name[CMD_MAX];
	int rc = 0;

	for (long i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s/f%ld", dir, i);
		if (rc == 0)
			rc = unlink_quiet(b, name, 0);
	}
	return rc == 0 ? unlink_quiet(b, dir, AT_REMOVEDIR) : rc;
}

/* Creates, writes 4 KiB to and closes b->arg new files; removing them is not timed. */
static int small_files(struct bench *b, double *out)
{
	long made;
	double t = now();
	int rc = files_make(b, SMALL_DIR, b->arg, &made), rm;

	*out = (double)made / (now() - t);
	rm = files_remove(b, SMALL_DIR, made);
	return rc < 0 ? rc : rm;
}

static int files_prepare(struct bench *b)
{
	long made;
	int rc = files_make(b, FILES_DIR, b->arg, &made);

	fprintf(stderr, "    made %ld files of %d bytes in %s/\n", made, PAGE, FILES_DIR);
	return rc;
}

static void files_cleanup(struct bench *b)
{
	int rc = files_remove(b, FILES_DIR, b->arg);

	if (rc < 0)
		fprintf(stderr, "sigbus-bench: cannot remove %s/: %s\n", FILES_DIR, strerror(-rc));
}

/* The number of inodes the kernel holds, as the daemon counts them; -1 if unknown. */
static long long ctl_inodes(struct bench *b)
{
	struct ctl_result r;
	long long n = -1;

	if (ctl_client_request(b->ctl, "stats", 5, &r) == 0 && r.is_ok) {
		for (size_t i = 0; i < r.nkv; i++)
			if (strcmp(r.kv[i].key, "inodes") == 0)
				n = atoll(r.kv[i].value);
	}
	ctl_result_free(&r);
	return n;
}

/* Looks every file up, so that the kernel holds them all before the event (an unplug
 * makes it forget them), and notes how many inodes the daemon counts. */
static int files_hold(struct bench *b)
{
	char name[CMD_MAX];
	struct stat st;

	for (long i = 0; i < b->arg; i++) {
		snprintf(name, sizeof(name), "%s/f%ld", FILES_DIR, i);
		if (fstatat(b->dirfd, name, &st, 0) < 0)
			return -errno;
	}
	note_add(b, "kernel holds %lld inodes", ctl_inodes(b));
	return 0;
}

/* Revokes one file among b->arg (a different one each run), then replugs, untimed, to
 * revive it. */
static int revoke_one(struct bench *b, double *out)
{
	double secs = 0;
	int rc = files_hold(b);

	if (rc == 0)
		rc = ctl_cmd(b, &secs, "revoke %s/f%d", FILES_DIR, b->rep % (int)b->arg);
	*out = secs * 1e3;
	if (rc == 0)
		rc = ctl_cmd(b, NULL, "replug");
	return rc;
}

/* The whole backend goes and comes back; *out is the sum of both commands. */
static int unplug_replug(struct bench *b, double *out)
{
	double down = 0, up = 0;
	int rc = ctl_cmd(b, &down, "unplug");

	if (rc == 0)
		rc = ctl_cmd(b, &up, "replug");
	*out = (down + up) * 1e3;
	note_add(b, "unplug %.3f ms + replug %.3f ms", down * 1e3, up * 1e3);
	return rc;
}

static int unplug_files(struct bench *b, double *out)
{
	int rc = files_hold(b);

	return rc < 0 ? rc : unplug_replug(b, out);
}

/* Maps the whole file MAP_SHARED and reads every page, so that b->arg pages are resident
 * and mapped; then times event and notes whether the pages went. */
static int mapped_event(struct bench *b, int (*event)(struct bench *, int, double *), double *out)
{
	size_t pages = (size_t)b->arg, before, after;
	int fd = openat(b->dirfd, MAPPED_NAME, O_RDWR | O_CLOEXEC);
	unsigned char *map;
	int rc;

	if (fd < 0)
		return -errno;
	map = mmap(NULL, pages * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		rc = -errno;
		goto out_close;
	}
	pages_touch(map, pages, false);
	before = pages_resident(map, pages);
	rc = event(b, fd, out);
	after = pages_resident(map, pages);
	note_add(b, "resident pages %zu before, %zu after", before, after);
	munmap(map, pages * PAGE);
out_close:
	close(fd);
	return rc;
}

/* On tmpfs, which cannot revoke, the kernel's own cost of dropping the mapped pages: a
 * truncation to 0. */
static int revoke_mapped_event(struct bench *b, int fd, double *out)
{
	double secs = 0, t = now();
	int rc = 0;

	if (b->ctl)
		rc = ctl_cmd(b, &secs, "revoke %s", MAPPED_NAME);
	else if (ftruncate(fd, 0) < 0)
		rc = -errno;
	else
		secs = now() - t;
	*out = secs * 1e3;
	return rc;
}

static int unplug_mapped_event(struct bench *b, int fd, double *out)
{
	(void)fd; /* the unplug covers every file */
	return unplug_replug(b, out);
}

/* The file is made again where a run truncated it (tmpfs); revoked, it is revived. */
static int revoke_mapped(struct bench *b, double *out)
{
	int rc = file_make(b, MAPPED_NAME, (uint64_t)b->arg * PAGE);

	if (rc == 0)
		rc = mapped_event(b, revoke_mapped_event, out);
	if (rc == 0 && b->ctl)
		rc = ctl_cmd(b, NULL, "replug");
	return rc;
}

static int unplug_mapped(struct bench *b, double *out)
{
	int rc = file_make(b, MAPPED_NAME, (uint64_t)b->arg * PAGE);

	return rc < 0 ? rc : mapped_event(b, unplug_mapped_event, out);
}

static void mapped_cleanup(struct bench *b)
{
	int rc = unlink_quiet(b, MAPPED_NAME, 0);

	if (rc < 0)
		fprintf(stderr, "sigbus-bench: cannot remove %s: %s\n", MAPPED_NAME, strerror(-rc));
}

static const struct test tests[] = {
	{ "seqread-cold", "MiB/s", "sequential read of a 256 MiB file, cache dropped first", false,
	  false, 0, data_make, seq_read_cold, NULL },
	{ "seqread-warm", "MiB/s", "sequential read of a 256 MiB file, cached", false, false, 0,
	  data_warm, seq_read_warm, NULL },
	{ "randread-cold", "IOPS", "N random 4 KiB preads of distinct pages, cache dropped first",
	  false, false, 16384, random_prepare_cold, random_read_cold, random_cleanup },
	{ "randread-warm", "IOPS", "N random 4 KiB preads of distinct pages, cached", false, false,
	  65536, random_prepare_warm, random_read_warm, random_cleanup },
	{ "mmap-shared", "pages/s", "first read of every page, MAP_SHARED, cache dropped first",
	  false, false, 0, data_make, map_shared, NULL },
	{ "mmap-private", "pages/s", "first write of every page, MAP_PRIVATE, cache dropped first",
	  false, false, 0, data_make, map_private, NULL },
	{ "seqwrite", "MiB/s", "a new 256 MiB file in 1 MiB writes, open to close", false, false, 0,
	  NULL, seq_write, NULL },
	{ "smallfiles", "files/s", "N times create, write 4 KiB, close", false, false, SMALL_FILES,
	  NULL, small_files, NULL },
	{ "revoke-files", "ms", "revoke one file among N unmapped files (then replug, untimed)",
	  true, true, 1000, files_prepare, revoke_one, files_cleanup },
	{ "unplug-files", "ms", "unplug + replug with N unmapped files", true, true, 1000,
	  files_prepare, unplug_files, files_cleanup },
	{ "revoke-pages", "ms",
	  "revoke a file mapped with N resident pages (without -S: truncate it to 0)", true, false,
	  1000, NULL, revoke_mapped, mapped_cleanup },
	{ "unplug-pages", "ms", "unplug + replug, a file mapped with N resident pages", true, true,
	  1000, NULL, unplug_mapped, mapped_cleanup },
};

#define NTESTS (sizeof(tests) / sizeof(tests[0]))

static bool is_better(const struct test *t, double v, double best)
{
	return t->is_latency ? v < best : v > best;
}

/* Prepares, runs b->reps times, prints each run and the best one, cleans up. */
static int bench_run(struct bench *b, const struct test *t)
{
	double v = 0, best = 0;
	int rc = t->prepare ? t->prepare(b) : 0;

	for (b->rep = 0; rc == 0 && b->rep < b->reps; b->rep++) {
		b->note[0] = '\0';
		rc = t->run(b, &v);
		if (rc < 0)
			break;
		fprintf(stderr, "    run %d: %.3f %s%s%s\n", b->rep + 1, v, t->unit,
			*b->note ? ", " : "", b->note);
		if (b->rep == 0 || is_better(t, v, best))
			best = v;
	}
	if (t->cleanup)
		t->cleanup(b);
	if (rc == 0)
		printf("%s %.3f %s\n", t->name, best, t->unit);
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
	fprintf(f,
		"Usage: sigbus-bench [-S SOCKET] [-r REPS] [-n N] TEST DIR\n\n"
		"Runs TEST in DIR, the root of a mount, REPS times (default %d), and prints the\n"
		"best run as \"TEST VALUE UNIT\". -S SOCKET is the sigbusfs daemon's control\n"
		"socket: cold tests drop the cache through it (without it they run warm), and\n"
		"the revoke and unplug tests need it.\n\nTests:\n",
		DEFAULT_REPS);
	for (size_t i = 0; i < NTESTS; i++)
		fprintf(f, "  %-14s %s%s (%s)\n", tests[i].name, tests[i].help,
			tests[i].needs_ctl ? "; needs -S" : "", tests[i].unit);
}

static const struct test *test_find(const char *name)
{
	for (size_t i = 0; i < NTESTS; i++)
		if (strcmp(tests[i].name, name) == 0)
			return &tests[i];
	return NULL;
}

/* Fills b and *test_out from argv; 0, or -EINVAL after a message. */
static int parse_args(int argc, char **argv, struct bench *b, const struct test **test_out)
{
	int c;

	while ((c = getopt(argc, argv, "S:r:n:h")) != -1) {
		if (c == 'S')
			b->sock = optarg;
		else if (c == 'r')
			b->reps = atoi(optarg);
		else if (c == 'n')
			b->arg = atol(optarg);
		else if (c == 'h')
			return 1; /* help: main prints it */
		else
			return -EINVAL;
	}
	if (argc - optind != 2 || b->reps < 1 || b->arg < 0)
		return -EINVAL;
	*test_out = test_find(argv[optind]);
	b->dir = argv[optind + 1];
	if (!*test_out)
		fprintf(stderr, "sigbus-bench: no test %s\n", argv[optind]);
	else if ((*test_out)->needs_ctl && !b->sock)
		fprintf(stderr, "sigbus-bench: %s needs -S SOCKET\n", argv[optind]);
	else
		return 0;
	return -EINVAL;
}

int main(int argc, char **argv)
{
	struct bench b = { .dirfd = -1, .reps = DEFAULT_REPS };
	const struct test *t = NULL;
	int rc = parse_args(argc, argv, &b, &t);

	if (rc != 0) {
		usage(rc < 0 ? stderr : stdout);
		return rc < 0 ? 2 : 0;
	}
	if (b.arg == 0)
		b.arg = t->def_arg;
	rc = bench_open(&b);
	if (rc == 0)
		rc = bench_run(&b, t);
	if (rc < 0)
		fprintf(stderr, "sigbus-bench: %s in %s: %s\n", t->name, b.dir, strerror(-rc));
	bench_close(&b);
	return rc < 0 ? 1 : 0;
}
