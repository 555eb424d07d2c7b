/* sigbus-probe: maps a file and shows what touching each page gives (data, zeros or
 * SIGBUS) and whether the page is resident in the page cache. With --hold it keeps the
 * same mapping and probes again for every line read from stdin, so a person or a script
 * can watch one mapping across events. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE 4096

struct probe_opts {
	bool touch;	  /* fault pages in; otherwise only residency */
	bool private_map; /* MAP_PRIVATE instead of MAP_SHARED */
	bool hold;	  /* probe again for every line on stdin */
	size_t pages;	  /* 0: the file's size at start */
};

static sigjmp_buf probe_jmp;

static void on_sigbus(int sig)
{
	siglongjmp(probe_jmp, sig);
}

/* 'B': SIGBUS, '0': the page reads all zeros, 'd': data */
static char touch_page(const volatile unsigned char *p)
{
	unsigned char any = 0;

	if (sigsetjmp(probe_jmp, 1) != 0)
		return 'B';
	for (size_t i = 0; i < PAGE; i++)
		any |= p[i];
	return any ? 'd' : '0';
}

static void describe(size_t idx, char outcome, bool resident, const unsigned char *p)
{
	printf("page %zu: ", idx);
	if (outcome == 'B')
		printf("SIGBUS");
	else if (outcome == '0')
		printf("zeros");
	else if (outcome == 'd')
		printf("data \"%.8s\"", (const char *)p);
	else
		printf("not touched");
	printf(", %s\n", resident ? "resident" : "not resident");
}

static void probe(unsigned char *map, size_t pages, const struct probe_opts *o)
{
	unsigned char *vec = calloc(pages, 1);
	unsigned char first[9];

	if (vec && mincore(map, pages * PAGE, vec) < 0)
		memset(vec, 0, pages);
	for (size_t i = 0; i < pages; i++) {
		char outcome = o->touch ? touch_page(map + i * PAGE) : '-';

		memset(first, 0, sizeof(first));
		if (outcome == 'd')
			memcpy(first, map + i * PAGE, 8);
		describe(i, outcome, vec && (vec[i] & 1), first);
	}
	fflush(stdout);
	free(vec);
}

static int parse(int argc, char **argv, struct probe_opts *o)
{
	static const struct option longs[] = {
		{ "no-touch", no_argument, NULL, 'n' }, { "private", no_argument, NULL, 'p' },
		{ "hold", no_argument, NULL, 'H' },	{ "pages", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },	{ NULL, 0, NULL, 0 },
	};
	int c;

	*o = (struct probe_opts){ .touch = true };
	while ((c = getopt_long(argc, argv, "nph", longs, NULL)) != -1) {
		if (c == 'n')
			o->touch = false;
		else if (c == 'p')
			o->private_map = true;
		else if (c == 'H')
			o->hold = true;
		else if (c == 'P')
			o->pages = strtoul(optarg, NULL, 10);
		else
			return -1;
	}
	return optind == argc - 1 ? optind : -1;
}

static void usage(void)
{
	fprintf(stderr, "usage: sigbus-probe [--no-touch] [--private] [--pages N] [--hold] FILE\n"
			"  Maps FILE (MAP_SHARED, or MAP_PRIVATE) and prints, for every page,\n"
			"  what touching it gives (data, zeros, SIGBUS) and whether it is\n"
			"  resident. --hold probes the same mapping again for each line on stdin.\n");
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_sigbus };
	struct probe_opts o;
	struct stat st;
	unsigned char *map;
	char line[256];
	int fd, idx = parse(argc, argv, &o);

	if (idx < 0) {
		usage();
		return 2;
	}
	fd = open(argv[idx], O_RDWR);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "sigbus-probe: %s: %s\n", argv[idx], strerror(errno));
		return 1;
	}
	if (!o.pages)
		o.pages = ((size_t)st.st_size + PAGE - 1) / PAGE;
	map = mmap(NULL, o.pages * PAGE, PROT_READ | PROT_WRITE,
		   o.private_map ? MAP_PRIVATE : MAP_SHARED, fd, 0);
	if (o.pages == 0 || map == MAP_FAILED) {
		fprintf(stderr, "sigbus-probe: mmap %s: %s\n", argv[idx],
			o.pages ? strerror(errno) : "empty file");
		return 1;
	}
	sigaction(SIGBUS, &sa, NULL);
	probe(map, o.pages, &o);
	while (o.hold && fgets(line, sizeof(line), stdin))
		probe(map, o.pages, &o);
	return 0;
}
