/* sigbus-probe's modules: sample.c maps the file and takes one sample of every page
 * (mincore, /proc/self/pagemap, /proc/kpageflags, the touch); render.c turns a sample into
 * the page map, per-page lines or JSON; main.c parses options and runs the probe loops. */
#ifndef SIGBUS_PROBE_H
#define SIGBUS_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

enum probe_touch {
	PROBE_UNTOUCHED, /* --no-touch */
	PROBE_OK,	 /* the page read without a fault and holds a nonzero byte */
	PROBE_ZERO,	 /* the page read without a fault and is all zeros */
	PROBE_SIGBUS,	 /* reading the page raised SIGBUS */
};

/* What the kernel says about one page at one moment. */
struct probe_pte {
	bool is_resident;   /* mincore: in the page cache (or an anonymous COW copy) */
	bool is_present;    /* pagemap bit 63: mapped by this process's page tables */
	bool is_swapped;    /* pagemap bit 62 */
	bool is_file;	    /* pagemap bit 61: a file page or shared anonymous */
	bool is_exclusive;  /* pagemap bit 56: mapped by this process only */
	bool is_soft_dirty; /* pagemap bit 55 */
	bool has_pfn;	    /* pfn is real: present, and PFNs are visible to us */
	bool has_kflags;    /* kflags was read from /proc/kpageflags */
	uint64_t pfn;	    /* pagemap bits 0-54, when has_pfn */
	uint64_t kflags;    /* KPF_* bits, when has_kflags */
};

struct probe_page {
	struct probe_pte before; /* read before the touch */
	struct probe_pte after;	 /* read after the touch; unset with --no-touch */
	enum probe_touch touch;
	unsigned char head[8]; /* the first bytes, when touch is PROBE_OK */
};

/* The mapping and the /proc files of one probe run. */
struct probe_map {
	const char *path;    /* borrowed from argv */
	unsigned char *base; /* the mapping, pages * page_size bytes */
	size_t page_size;    /* bytes */
	size_t pages;	     /* pages mapped */
	off_t offset;	     /* bytes into the file, a multiple of page_size */
	bool is_private;     /* MAP_PRIVATE */
	int fd;		     /* the file */
	int pagemap_fd;	     /* /proc/self/pagemap, or -1 */
	int kpageflags_fd;   /* /proc/kpageflags, or -1 */
	bool has_pfns;	     /* pagemap shows PFNs (we had CAP_SYS_ADMIN when we opened it) */
	int pagemap_err;     /* errno of opening or reading pagemap, or 0 */
	int kpageflags_err;  /* errno of opening or reading kpageflags, or 0 */
};

struct probe_counts {
	size_t pages, resident, present, ok, zero, sigbus; /* resident, present: before */
	size_t after_present, after_resident;		   /* after the touch */
};

/* One sample of every page of a mapping. */
struct probe_sample {
	struct probe_page *page; /* map->pages entries, owned */
	struct probe_counts counts;
	bool is_touched;   /* the touch ran (not --no-touch) */
	unsigned long seq; /* 1 for the first sample of a run */
	double elapsed;	   /* seconds since the run started */
};

/* ---- sample.c ---- */

/* Opens path, maps pages pages (0: to the end of the file) from offset and opens the /proc
 * files, noting in map why one could not be used. 0 or -errno; on failure *map holds
 * nothing to close. */
int probe_map_open(const char *path, off_t offset, size_t pages, bool is_private,
		   struct probe_map *map);

/* Unmaps and closes all that probe_map_open() opened. */
void probe_map_close(struct probe_map *map);

/* Reads every page's state, then touches every page (if is_touch) and reads the state
 * again, into *s, whose page array is allocated on first use and reused. 0 or -errno. */
int probe_sample(struct probe_map *map, bool is_touch, struct probe_sample *s);

/* Frees what probe_sample() allocated. */
void probe_sample_free(struct probe_sample *s);

/* The name of KPF_ bit n ("UPTODATE"), or NULL for a bit this tool does not know. */
const char *probe_kflag_name(unsigned n);

/* ---- render.c ---- */

/* The map character of one page; see the legend. */
char probe_page_char(const struct probe_page *p, bool is_touched);

/* Writes the page map: a header, 64 pages per line with offsets, the legend, the counts and
 * the notes about PFNs and flags. */
void probe_render_map(FILE *f, const struct probe_map *map, const struct probe_sample *s);

/* Writes one "page N: ..." line per page; with is_verbose the PFN and flags too. */
void probe_render_lines(FILE *f, const struct probe_map *map, const struct probe_sample *s,
			bool is_verbose);

/* Writes the sample as one JSON object on one line (is_pretty: indented). 0 or -ENOMEM. */
int probe_render_json(FILE *f, const struct probe_map *map, const struct probe_sample *s,
		      bool is_pretty);

#endif
