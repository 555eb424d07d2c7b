/* The daemon's resident memory follows the data of a mem:64M mount: filling the mount
 * (by write, by a MAP_SHARED client, by fallocate) never takes the daemon's peak RSS
 * (VmHWM) above the limit plus the documented overhead, and deleting the files (or
 * punching them out) brings its RSS back down to a small bound; three rounds each, so
 * memory kept from one round and not reused in the next shows. The fill also checks that
 * the limit still ends writes with ENOSPC. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client.h"

#define MIB	     (1024 * 1024)
#define LIMIT_MIB    64
#define FILE_MIB     8
#define NFILES_MAX   (LIMIT_MIB / FILE_MIB + 1)
#define MAPPED_FILES 7 /* a MAP_SHARED client cannot see ENOSPC: it stays below the limit */
#define ROUNDS	     3
/* Deletes reach the daemon as FORGETs, a little later, and freed pages stay resident for
 * up to 2 s, for reuse: 10 s is plenty. */
#define SETTLE_MS 10000

/* The bounds README's "Memory" note documents: data and metadata take at most LIMIT_MIB
 * plus LIMIT_MIB/64 (metadata up to that much is not counted in the limit), slab headers
 * 4 KiB per 2 MiB of pages, and the daemon's own overhead (about 2 MiB, and libfuse's
 * 1 MiB request buffer per worker thread, 10 at most: 13 MiB measured) stays below
 * FIXED_MIB. Once the data is gone only the fixed part is left. */
#define FIXED_MIB 20
#define PEAK_KIB  (LIMIT_MIB * (1024L + 1024 / 64 + 1024 / 512) + FIXED_MIB * 1024L)
#define IDLE_KIB  (FIXED_MIB * 1024L)

/* ASan's quarantine and shadow memory put the daemon's RSS beyond any useful absolute
 * bound, so an ASan build checks only that the deletes give the data's memory back. */
#if defined(__SANITIZE_ADDRESS__)
#define HAS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAS_ASAN 1
#endif
#endif
#ifndef HAS_ASAN
#define HAS_ASAN 0
#endif

static struct mnt mnt;

static void setup(void)
{
	fx_mount_or_fail(&mnt, "mem:64M", NULL);
}

static void teardown(void)
{
	fx_teardown(&mnt);
}

/* A field of the daemon's /proc/PID/status, in KiB. */
static long daemon_kib(const char *field)
{
	char path[64], line[256];
	size_t len = strlen(field);
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)mnt.pid);
	f = fopen(path, "r");
	ck_assert_msg(f, "open %s: %s", path, strerror(errno));
	while (kib < 0 && fgets(line, sizeof(line), f)) {
		if (strncmp(line, field, len) == 0 && line[len] == ':')
			kib = strtol(line + len + 1, NULL, 10);
	}
	fclose(f);
	ck_assert_msg(kib >= 0, "no %s in %s", field, path);
	return kib;
}

static const char *file_path(int i)
{
	char name[16];

	snprintf(name, sizeof(name), "f%d", i);
	return fx_work_path(name);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* The daemon's peak so far stays within the limit plus the overhead. */
static void expect_peak_bounded(int round)
{
	long hwm = daemon_kib("VmHWM");

	if (!HAS_ASAN)
		ck_assert_msg(
			hwm <= PEAK_KIB,
			"round %d: daemon peak RSS %ld KiB, above %ld KiB (mem:%dM + overhead)",
			round, hwm, PEAK_KIB, LIMIT_MIB);
}

/* After the data is gone, the daemon's RSS falls to IDLE_KIB within SETTLE_MS (ASan: from
 * full_kib, what it was when full, by three quarters of the data's data_kib at least). */
static void expect_rss_falls(int round, long full_kib, long data_kib)
{
	long want = HAS_ASAN ? full_kib - data_kib * 3 / 4 : IDLE_KIB, rss;

	for (int waited = 0;; waited += 50) {
		rss = daemon_kib("VmRSS");
		if (rss <= want || waited >= SETTLE_MS)
			break;
		sleep_ms(50);
	}
	ck_assert_msg(rss <= want,
		      "round %d: daemon RSS %ld KiB %d s after freeing %ld KiB of data (%ld KiB "
		      "when full), above %ld KiB",
		      round, rss, SETTLE_MS / 1000, data_kib, full_kib, want);
}

static void delete_files(int n)
{
	for (int i = 0; i < n; i++)
		ck_assert_msg(unlink(file_path(i)) == 0, "unlink f%d: %s", i, strerror(errno));
}

/* Writes FILE_MIB files of 1 MiB writes until the mount is full; the write that does not
 * fit must fail with ENOSPC. Returns the number of files (the last one partial). */
static int fill_by_write(long *bytes_out)
{
	static char buf[MIB];
	ssize_t n = 0;
	int i;

	memset(buf, 0x5a, sizeof(buf));
	*bytes_out = 0;
	for (i = 0; n >= 0 && i < NFILES_MAX; i++) {
		int fd = open(file_path(i), O_WRONLY | O_CREAT | O_TRUNC, 0644);

		ck_assert_msg(fd >= 0, "create f%d: %s", i, strerror(errno));
		for (int j = 0; j < FILE_MIB && n >= 0; j++) {
			n = write(fd, buf, sizeof(buf));
			if (n > 0)
				*bytes_out += n;
		}
		ck_assert_msg(n >= 0 || errno == ENOSPC, "write f%d: %s", i, strerror(errno));
		close(fd);
	}
	ck_assert_msg(n < 0, "mem:%dM took %d files of %d MiB", LIMIT_MIB, i, FILE_MIB);
	return i;
}

START_TEST(test_write_delete)
{
	for (int round = 0; round < ROUNDS; round++) {
		long bytes, full;
		int n = fill_by_write(&bytes);

		ck_assert_msg(bytes >= (LIMIT_MIB - 1) * (long)MIB,
			      "ENOSPC after %ld bytes of a mem:%dM mount", bytes, LIMIT_MIB);
		expect_peak_bounded(round);
		full = daemon_kib("VmRSS");
		delete_files(n);
		expect_rss_falls(round, full, bytes / 1024);
	}
}
END_TEST

/* The client: maps each file MAP_SHARED, fills it through the mapping and msyncs. */
static int fill_by_mmap(void *arg)
{
	(void)arg;
	for (int i = 0; i < MAPPED_FILES; i++) {
		size_t len = (size_t)FILE_MIB * MIB;
		int fd = open(file_path(i), O_RDWR | O_CREAT | O_TRUNC, 0644);
		char *p;

		if (fd < 0 || ftruncate(fd, (off_t)len) < 0)
			return FX_FAIL("create f%d: %s", i, strerror(errno));
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		close(fd);
		if (p == MAP_FAILED)
			return FX_FAIL("mmap f%d: %s", i, strerror(errno));
		memset(p, 'a' + i, len);
		if (msync(p, len, MS_SYNC) < 0)
			return FX_FAIL("msync f%d: %s", i, strerror(errno));
		munmap(p, len);
	}
	return 0;
}

START_TEST(test_mmap_delete)
{
	for (int round = 0; round < ROUNDS; round++) {
		long full;

		fx_run_child(fill_by_mmap, NULL);
		fx_expect_range(file_path(MAPPED_FILES - 1), 0, 4096, 'a' + MAPPED_FILES - 1);
		expect_peak_bounded(round);
		full = daemon_kib("VmRSS");
		delete_files(MAPPED_FILES);
		expect_rss_falls(round, full, MAPPED_FILES * FILE_MIB * 1024L);
	}
}
END_TEST

/* fallocate()s FILE_MIB files until ENOSPC, then writes every allocated byte. Returns the
 * number of files; *bytes_out the bytes allocated. */
static int fill_by_fallocate(long *bytes_out)
{
	static char buf[MIB];
	int i, rc = 0;

	memset(buf, 0x3c, sizeof(buf));
	*bytes_out = 0;
	for (i = 0; rc == 0 && i < NFILES_MAX; i++) {
		int fd = open(file_path(i), O_WRONLY | O_CREAT | O_TRUNC, 0644);

		ck_assert_msg(fd >= 0, "create f%d: %s", i, strerror(errno));
		for (int j = 0; j < FILE_MIB && rc == 0; j++) {
			rc = fallocate(fd, 0, (off_t)j * MIB, MIB);
			if (rc == 0 && pwrite(fd, buf, MIB, (off_t)j * MIB) != MIB)
				ck_abort_msg("pwrite f%d after fallocate: %s", i, strerror(errno));
			if (rc == 0)
				*bytes_out += MIB;
		}
		ck_assert_msg(rc == 0 || errno == ENOSPC, "fallocate f%d: %s", i, strerror(errno));
		close(fd);
	}
	ck_assert_msg(rc < 0, "mem:%dM took %d files of %d MiB", LIMIT_MIB, i, FILE_MIB);
	return i;
}

static void punch_files(int n)
{
	for (int i = 0; i < n; i++) {
		int fd = open(file_path(i), O_WRONLY);

		ck_assert_msg(fd >= 0, "open f%d: %s", i, strerror(errno));
		ck_assert_msg(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
					(off_t)FILE_MIB * MIB) == 0,
			      "punch f%d: %s", i, strerror(errno));
		close(fd);
	}
}

/* Punching the data out gives the memory back while the files still exist. */
START_TEST(test_fallocate_punch)
{
	for (int round = 0; round < ROUNDS; round++) {
		long bytes, full;
		int n = fill_by_fallocate(&bytes);

		ck_assert_msg(bytes >= (LIMIT_MIB - 1) * (long)MIB,
			      "ENOSPC after %ld bytes of a mem:%dM mount", bytes, LIMIT_MIB);
		expect_peak_bounded(round);
		full = daemon_kib("VmRSS");
		punch_files(n);
		expect_rss_falls(round, full, bytes / 1024);
		delete_files(n);
	}
}
END_TEST

static Suite *memory_suite(void)
{
	Suite *s = suite_create("memory");
	struct {
		const char *name;
		const TTest *test;
	} cases[] = {
		{ "write_delete", test_write_delete },
		{ "mmap_delete", test_mmap_delete },
		{ "fallocate_punch", test_fallocate_punch },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TCase *tc = fx_tcase(s, cases[i].name, 120, setup, teardown, fx_enter_workdir);

		tcase_add_test(tc, cases[i].test);
	}
	return s;
}

int main(void)
{
	fx_require_fuse();
	if (!fx_test_has_limit()) {
		fprintf(stderr,
			"the %s backend has no byte limit to hold its memory to: skipping\n",
			fx_test_backend());
		return 77;
	}
	return fx_run_suite(memory_suite());
}
