/* sigbus-repro-folio-dirty: on a sigbusfs mount, makes a write fault dirty a page-cache
 * folio that is not uptodate (the WARNING at mm/page-writeback.c in __folio_mark_dirty,
 * seen on 6.18.44) and shows what clients observe. The sequence, per round:
 *   1. one page of 'A' is cached and mapped MAP_SHARED; a read fault maps it read-only;
 *   2. a write rule makes FUSE_WRITE fail; pwrite("XXXX") at offset 100 returns EIO, but
 *      the kernel copied XXXX into the cached page first and then only cleared uptodate
 *      (fs/fuse/file.c, fuse_send_write_pages), leaving the page mapped;
 *   3. the rule is cleared; a store through the mapping write-faults the read-only PTE:
 *      fuse_page_mkwrite checks the mapping, not uptodate, and the folio is dirtied;
 *   4a. msync: the page goes back to the daemon with XXXX in it, the bytes whose write
 *      failed; or
 *   4b. pread: the folio is not uptodate, so it is read again from the daemon over the
 *      dirty data, and the store of step 3 is lost although msync then returns 0.
 * The kernel warns once per boot; dirtycount.c counts every occurrence with BPF. */
#include <errno.h>
#include <stdbool.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <fcntl.h>
#include <unistd.h>

#include "ctl_client.h"
#include "dirtycount.h"
#include "kmsg.h"

#define PG	   4096
#define REJECT_OFF 100
#define REJECTED   "XXXX"

struct repro {
	const char *mnt;
	char rel[64], path[4096];
	struct ctl_client *c;
	int fd;
	char *p; /* the file's page, MAP_SHARED */
};

struct tally {
	unsigned rounds, eio, shown, leak_rounds, leaked, lost_rounds, lost, msync_ok;
	bool is_rejected; /* this round's pwrite failed with EIO */
	bool is_control;  /* --control: no write rule, so the pwrite succeeds */
};

/* Sends one control request; 0, or -errno with the reason printed. */
static int ctl(struct repro *x, const char *line)
{
	struct ctl_result res = { 0 };
	int rc = ctl_client_request(x->c, line, strlen(line), &res);

	if (rc == 0 && !res.is_ok)
		rc = res.error ? -res.error : -EIO;
	if (rc < 0)
		fprintf(stderr, "folio-dirty: sigbusctl %s: %s\n", line,
			res.text && *res.text ? res.text : strerror(-rc));
	ctl_result_free(&res);
	return rc;
}

static int ctlf(struct repro *x, const char *cmd, const char *args)
{
	char line[256];

	snprintf(line, sizeof(line), "%s %s%s%s", cmd, x->rel, *args ? " " : "", args);
	return ctl(x, line);
}

/* Step 1: a fresh page of 'A' in the page cache and the daemon, mapped read-only. */
static int fresh_page(struct repro *x)
{
	char page[PG];

	memset(page, 'A', sizeof(page));
	if (pwrite(x->fd, page, PG, 0) != PG)
		return -errno;
	return *(volatile char *)x->p == 'A' ? 0 : -EIO;
}

/* Step 2: the failing pwrite; counts EIO and whether the mapping shows its bytes. */
static int failed_write(struct repro *x, struct tally *t)
{
	int rc = t->is_control ? 0 : ctlf(x, "fail", "--op write --errno EIO");

	if (rc < 0)
		return rc;
	t->is_rejected = pwrite(x->fd, REJECTED, 4, REJECT_OFF) < 0 && errno == EIO;
	t->eio += t->is_rejected;
	if (t->is_rejected && memcmp(x->p + REJECT_OFF, REJECTED, 4) == 0)
		t->shown++;
	return t->is_control ? 0 : ctl(x, "clear");
}

/* Step 4a: does the daemon get the rejected bytes through the store's writeback? */
static int writeback_leaks(struct repro *x, struct tally *t)
{
	char buf[4];

	t->leak_rounds++;
	if (msync(x->p, PG, MS_SYNC) == 0)
		t->msync_ok++;
	if (ctlf(x, "inval", "") < 0 || pread(x->fd, buf, 4, REJECT_OFF) != 4)
		return -EIO;
	if (t->is_rejected && memcmp(buf, REJECTED, 4) == 0)
		t->leaked++;
	return 0;
}

/* Step 4b: does a pread discard the store? */
static int read_loses_store(struct repro *x, struct tally *t)
{
	char c;

	t->lost_rounds++;
	if (pread(x->fd, &c, 1, 0) != 1)
		return -errno;
	if (*(volatile char *)x->p != 'W')
		t->lost++;
	if (msync(x->p, PG, MS_SYNC) == 0)
		t->msync_ok++;
	return 0;
}

static int round_once(struct repro *x, unsigned i, struct tally *t)
{
	int rc = fresh_page(x);

	if (rc == 0)
		rc = failed_write(x, t);
	if (rc < 0)
		return rc;
	*(volatile char *)x->p = 'W'; /* step 3: the write fault */
	t->rounds++;
	return i % 2 ? read_loses_store(x, t) : writeback_leaks(x, t);
}

static int connect_ctl(struct repro *x, const char *sock)
{
	char path[4096], err[256];
	int rc;

	if (!sock) {
		rc = ctl_client_socket_of(x->mnt, path, sizeof(path));
		if (rc < 0) {
			fprintf(stderr,
				"folio-dirty: %s: no control socket (%s): not a sigbusfs "
				"mount?\n",
				x->mnt, strerror(-rc));
			return rc;
		}
		sock = path;
	}
	if (ctl_client_connect(sock, &x->c, err, sizeof(err)) < 0) {
		fprintf(stderr, "folio-dirty: %s\n", err);
		return -ECONNREFUSED;
	}
	return 0;
}

static int open_file(struct repro *x)
{
	snprintf(x->rel, sizeof(x->rel), "folio-dirty.%d", (int)getpid());
	snprintf(x->path, sizeof(x->path), "%s/%s", x->mnt, x->rel);
	x->fd = open(x->path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (x->fd < 0 || ftruncate(x->fd, PG) < 0) {
		fprintf(stderr, "folio-dirty: %s: %s\n", x->path, strerror(errno));
		return -errno;
	}
	x->p = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, x->fd, 0);
	if (x->p == MAP_FAILED) {
		fprintf(stderr, "folio-dirty: mmap %s: %s\n", x->path, strerror(errno));
		x->p = NULL;
		return -errno;
	}
	return 0;
}

static long warn_count(void)
{
	long n = -1;
	FILE *f = fopen("/sys/kernel/warn_count", "re");

	if (f) {
		if (fscanf(f, "%ld", &n) != 1)
			n = -1;
		fclose(f);
	}
	return n;
}

/* The kernel's reports since the start, printed; how many were WARNINGs of this kind. */
static unsigned print_kmsg(struct kmsg *k)
{
	unsigned n = 0;

	kmsg_poll(k);
	kmsg_flush(k);
	for (size_t i = 0; i < kmsg_count(k); i++) {
		const struct kmsg_report *r = kmsg_report(k, i);

		printf("  kernel: %s\n", r->lines[0]);
		n += strstr(r->lines[0], "__folio_mark_dirty") != NULL;
	}
	return n;
}

static void print_row(const char *label, unsigned n, unsigned of)
{
	printf("  %-62s %u/%u\n", label, n, of);
}

/* Prints what was seen; 1 if the bug showed, else 0. */
static int summary(const struct tally *t, struct dirtycount *d, struct kmsg *k, long warn0)
{
	uint64_t all = 0, mine = 0;
	unsigned warns = k ? print_kmsg(k) : 0;

	print_row("pwrite failed with EIO", t->eio, t->rounds);
	print_row("the mapping showed the bytes of that failed pwrite", t->shown, t->rounds);
	print_row("msync returned 0", t->msync_ok, t->rounds);
	print_row("after the store and msync, the daemon held the rejected bytes", t->leaked,
		  t->leak_rounds);
	print_row("after the store, a pread discarded it (store lost)", t->lost, t->lost_rounds);
	if (d && dirtycount_read(d, &all, &mine) == 0)
		printf("  %-62s %llu (all processes: %llu)\n",
		       "folios dirtied while not uptodate, by this process (BPF)",
		       (unsigned long long)mine, (unsigned long long)all);
	printf("  %-62s %u (WARN_ON_ONCE: once per boot)\n", "__folio_mark_dirty WARNINGs printed",
	       warns);
	printf("  %-62s %ld -> %ld\n", "/sys/kernel/warn_count", warn0, warn_count());
	return mine > 0 || warns > 0 || t->leaked > 0 || t->lost > 0;
}

static int run(struct repro *x, unsigned rounds, bool is_control, const char *sock)
{
	struct tally t = { .is_control = is_control };
	struct dirtycount *d = NULL;
	struct kmsg *k = NULL;
	char err[512];
	long warn0 = warn_count();
	int rc = kmsg_open(NULL, true, &k);

	if (rc < 0)
		printf("  kernel log: cannot read /dev/kmsg (%s); not watched\n", strerror(-rc));
	if (dirtycount_open(getpid(), &d, err, sizeof(err)) < 0)
		printf("  BPF counter unavailable: %s\n", err);
	rc = connect_ctl(x, sock);
	if (rc == 0)
		rc = open_file(x);
	for (unsigned i = 0; rc == 0 && i < rounds; i++)
		rc = round_once(x, i, &t);
	if (rc == 0)
		rc = summary(&t, d, k, warn0) ? 1 : 0;
	else
		rc = 2;
	dirtycount_close(d);
	kmsg_close(k);
	return rc;
}

static void cleanup(struct repro *x)
{
	if (x->p)
		munmap(x->p, PG);
	if (x->fd >= 0) {
		close(x->fd);
		unlink(x->path);
	}
	if (x->c)
		ctl_client_close(x->c);
}

/* --watch: counts every process's not-uptodate dirtyings for secs seconds. */
static int watch(unsigned secs)
{
	struct dirtycount *d;
	uint64_t all = 0, mine = 0;
	char err[512];

	if (dirtycount_open(0, &d, err, sizeof(err)) < 0) {
		fprintf(stderr, "folio-dirty: %s\n", err);
		return 2;
	}
	sleep(secs);
	dirtycount_read(d, &all, &mine);
	printf("folios dirtied while not uptodate in %u s, all processes: %llu\n", secs,
	       (unsigned long long)all);
	dirtycount_close(d);
	return all > 0;
}

static const char usage[] =
	"usage: sigbus-repro-folio-dirty [-S SOCKET] [--rounds N] [--control] MOUNTPOINT\n"
	"Makes a write fault dirty a page-cache folio that is not uptodate on a sigbusfs\n"
	"mount (a failed pwrite on a mapped page, then a store through the mapping) and\n"
	"reports what clients observe, the kernel's WARNING and a BPF count of every\n"
	"occurrence. --control runs the same steps with the pwrite succeeding.\n"
	"       sigbus-repro-folio-dirty --watch SECONDS\n"
	"only counts, with BPF, the folios any process dirties while not uptodate.\n"
	"Exit status: 0 not reproduced, 1 reproduced, 2 setup error.\n";

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "rounds", required_argument, NULL, 'r' },
					      { "control", no_argument, NULL, 'c' },
					      { "watch", required_argument, NULL, 'w' },
					      { "socket", required_argument, NULL, 'S' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	struct repro x = { .fd = -1 };
	unsigned rounds = 20;
	const char *sock = NULL;
	bool is_control = false;
	struct utsname u;
	int c, rc;

	while ((c = getopt_long(argc, argv, "S:h", opts, NULL)) != -1) {
		if (c == 'r')
			rounds = (unsigned)strtoul(optarg, NULL, 10);
		else if (c == 'S')
			sock = optarg;
		else if (c == 'c')
			is_control = true;
		else if (c == 'w')
			return watch((unsigned)strtoul(optarg, NULL, 10));
		else {
			fputs(usage, c == 'h' ? stdout : stderr);
			return c == 'h' ? 0 : 2;
		}
	}
	if (optind != argc - 1 || rounds == 0) {
		fputs(usage, stderr);
		return 2;
	}
	x.mnt = argv[optind];
	uname(&u);
	printf("folio-dirty: Linux %s, %u rounds on %s%s\n", u.release, rounds, x.mnt,
	       is_control ? " (control: the pwrite succeeds)" : "");
	rc = run(&x, rounds, is_control, sock);
	cleanup(&x);
	printf("result: %s\n", rc == 1 ? "REPRODUCED" : rc == 0 ? "not reproduced" : "setup error");
	return rc;
}
