/* sigbus-probe's sampling: the mapping, the touch of every page (through touch.h, which
 * turns a fault into a result), and one sample of every page from mincore(),
 * /proc/self/pagemap (format in the kernel's Documentation/admin-guide/mm/pagemap.rst) and
 * /proc/kpageflags. How samples are shown is render.c's business. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kernel-page-flags.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "probe.h"
#include "touch.h"

#define PM_ENTRY	 8 /* bytes per pagemap and kpageflags entry */
#define PM_PFN_MASK	 ((1ULL << 55) - 1)
#define PM_SOFT_DIRTY	 (1ULL << 55)
#define PM_EXCLUSIVE	 (1ULL << 56)
#define PM_FILE		 (1ULL << 61)
#define PM_SWAPPED	 (1ULL << 62)
#define PM_PRESENT	 (1ULL << 63)
#define PROBE_KFLAG_BITS 64

/* KPF_ names: 0-26 from include/uapi/linux/kernel-page-flags.h, 32-41 the "kernel hacking"
 * bits of include/linux/kernel-page-flags.h. */
static const char *const kflag_names[PROBE_KFLAG_BITS] = {
	[KPF_LOCKED] = "LOCKED",
	[KPF_ERROR] = "ERROR",
	[KPF_REFERENCED] = "REFERENCED",
	[KPF_UPTODATE] = "UPTODATE",
	[KPF_DIRTY] = "DIRTY",
	[KPF_LRU] = "LRU",
	[KPF_ACTIVE] = "ACTIVE",
	[KPF_SLAB] = "SLAB",
	[KPF_WRITEBACK] = "WRITEBACK",
	[KPF_RECLAIM] = "RECLAIM",
	[KPF_BUDDY] = "BUDDY",
	[KPF_MMAP] = "MMAP",
	[KPF_ANON] = "ANON",
	[KPF_SWAPCACHE] = "SWAPCACHE",
	[KPF_SWAPBACKED] = "SWAPBACKED",
	[KPF_COMPOUND_HEAD] = "COMPOUND_HEAD",
	[KPF_COMPOUND_TAIL] = "COMPOUND_TAIL",
	[KPF_HUGE] = "HUGE",
	[KPF_UNEVICTABLE] = "UNEVICTABLE",
	[KPF_HWPOISON] = "HWPOISON",
	[KPF_NOPAGE] = "NOPAGE",
	[KPF_KSM] = "KSM",
	[KPF_THP] = "THP",
	[23] = "OFFLINE",
	[24] = "ZERO_PAGE",
	[25] = "IDLE",
	[26] = "PGTABLE",
	[32] = "RESERVED",
	[33] = "MLOCKED",
	[34] = "OWNER_2",
	[35] = "PRIVATE",
	[36] = "PRIVATE_2",
	[37] = "OWNER_PRIVATE",
	[38] = "ARCH",
	[39] = "UNCACHED",
	[40] = "SOFTDIRTY",
	[41] = "ARCH_2",
};

const char *probe_kflag_name(unsigned n)
{
	return n < PROBE_KFLAG_BITS ? kflag_names[n] : NULL;
}

/* Reads the whole page into buf and says what that gave in *out: 0, or -errno if the
 * SIGBUS guard could not be set up. */
static int touch_page(const unsigned char *page, unsigned char *buf, size_t size,
		      enum probe_touch *out)
{
	int rc = touch_copy(buf, page, size, NULL);

	*out = rc == TOUCH_SIGBUS ? PROBE_SIGBUS : PROBE_ZERO;
	for (size_t i = 0; rc == 0 && i < size && *out == PROBE_ZERO; i++) {
		if (buf[i])
			*out = PROBE_OK;
	}
	return rc < 0 ? rc : 0;
}

/* The pagemap entry of addr, or 0 if it cannot be read. */
static uint64_t pagemap_entry(int fd, const void *addr, size_t page_size)
{
	uint64_t e = 0;
	off_t at = (off_t)((uintptr_t)addr / page_size * PM_ENTRY);

	if (pread(fd, &e, sizeof(e), at) != (ssize_t)sizeof(e))
		return 0;
	return e;
}

/* The kernel decides at open() whether this pagemap file shows PFNs (CAP_SYS_ADMIN in the
 * initial user namespace), so ask it: a page of our stack we just wrote is present, and
 * its PFN reads 0 exactly when PFNs are hidden. */
static bool pagemap_shows_pfns(int fd, size_t page_size)
{
	volatile char here = 1;
	uint64_t e = pagemap_entry(fd, (const void *)&here, page_size);

	return (e & PM_PRESENT) && (e & PM_PFN_MASK) != 0;
}

static void open_proc(struct probe_map *map)
{
	map->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	map->kpageflags_fd = -1;
	if (map->pagemap_fd < 0) {
		map->pagemap_err = errno;
		return;
	}
	map->has_pfns = pagemap_shows_pfns(map->pagemap_fd, map->page_size);
	if (!map->has_pfns)
		return;
	map->kpageflags_fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	if (map->kpageflags_fd < 0)
		map->kpageflags_err = errno;
}

static int map_file(struct probe_map *map, size_t pages)
{
	struct stat st;

	if (fstat(map->fd, &st) < 0)
		return -errno;
	if (pages == 0 && st.st_size > map->offset)
		pages = ((size_t)(st.st_size - map->offset) + map->page_size - 1) / map->page_size;
	if (pages == 0)
		return -ENODATA;
	map->base = mmap(NULL, pages * map->page_size, PROT_READ,
			 map->is_private ? MAP_PRIVATE : MAP_SHARED, map->fd, map->offset);
	if (map->base == MAP_FAILED) {
		map->base = NULL;
		return -errno;
	}
	map->pages = pages;
	return 0;
}

int probe_map_open(const char *path, off_t offset, size_t pages, bool is_private,
		   struct probe_map *map)
{
	int rc;

	*map = (struct probe_map){ .path = path,
				   .offset = offset,
				   .is_private = is_private,
				   .page_size = (size_t)sysconf(_SC_PAGESIZE) };
	if (offset < 0 || (size_t)offset % map->page_size != 0)
		return -EINVAL;
	map->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (map->fd < 0)
		return -errno;
	rc = map_file(map, pages);
	if (rc < 0)
		goto out_close;
	open_proc(map);
	return 0;

out_close:
	close(map->fd);
	return rc;
}

void probe_map_close(struct probe_map *map)
{
	if (map->kpageflags_fd >= 0)
		close(map->kpageflags_fd);
	if (map->pagemap_fd >= 0)
		close(map->pagemap_fd);
	munmap(map->base, map->pages * map->page_size);
	close(map->fd);
}

static void decode_entry(struct probe_map *map, uint64_t e, struct probe_pte *out)
{
	uint64_t kf = 0;
	ssize_t n;

	out->is_present = e & PM_PRESENT;
	out->is_swapped = e & PM_SWAPPED;
	out->is_file = e & PM_FILE;
	out->is_exclusive = e & PM_EXCLUSIVE;
	out->is_soft_dirty = e & PM_SOFT_DIRTY;
	out->has_pfn = out->is_present && map->has_pfns && (e & PM_PFN_MASK) != 0;
	if (!out->has_pfn)
		return;
	out->pfn = e & PM_PFN_MASK;
	if (map->kpageflags_fd < 0)
		return;
	n = pread(map->kpageflags_fd, &kf, sizeof(kf), (off_t)(out->pfn * PM_ENTRY));
	if (n != (ssize_t)sizeof(kf)) {
		map->kpageflags_err = n < 0 ? errno : EIO;
		return;
	}
	out->has_kflags = true;
	out->kflags = kf;
}

/* Fills before or after (which) of every page: residency, then the page-table entries. */
static int read_state(struct probe_map *map, struct probe_sample *s, bool is_after)
{
	size_t n = map->pages;
	unsigned char *vec = calloc(n, 1);
	uint64_t *pm = calloc(n, sizeof(*pm));
	off_t at = (off_t)((uintptr_t)map->base / map->page_size * PM_ENTRY);
	ssize_t got;
	int rc = 0;

	if (!vec || !pm) {
		rc = -ENOMEM;
		goto out_free;
	}
	if (mincore(map->base, n * map->page_size, vec) < 0) {
		rc = -errno;
		goto out_free;
	}
	got = map->pagemap_fd >= 0 ? pread(map->pagemap_fd, pm, n * sizeof(*pm), at) : 0;
	if (map->pagemap_fd >= 0 && got != (ssize_t)(n * sizeof(*pm)))
		map->pagemap_err = got < 0 ? errno : EIO;
	for (size_t i = 0; i < n; i++) {
		struct probe_pte *pte = is_after ? &s->page[i].after : &s->page[i].before;

		*pte = (struct probe_pte){ .is_resident = vec[i] & 1 };
		decode_entry(map, pm[i], pte);
	}
out_free:
	free(pm);
	free(vec);
	return rc;
}

static int touch_all(const struct probe_map *map, struct probe_sample *s)
{
	unsigned char *buf = malloc(map->page_size);
	int rc = buf ? 0 : -ENOMEM;

	for (size_t i = 0; rc == 0 && i < map->pages; i++) {
		struct probe_page *pg = &s->page[i];

		rc = touch_page(map->base + i * map->page_size, buf, map->page_size, &pg->touch);
		if (pg->touch == PROBE_OK)
			memcpy(pg->head, buf, sizeof(pg->head));
	}
	free(buf);
	return rc;
}

static void count(const struct probe_map *map, struct probe_sample *s)
{
	struct probe_counts *c = &s->counts;

	*c = (struct probe_counts){ .pages = map->pages };
	for (size_t i = 0; i < map->pages; i++) {
		const struct probe_page *p = &s->page[i];

		c->resident += p->before.is_resident;
		c->present += p->before.is_present;
		c->after_resident += p->after.is_resident;
		c->after_present += p->after.is_present;
		c->ok += p->touch == PROBE_OK;
		c->zero += p->touch == PROBE_ZERO;
		c->sigbus += p->touch == PROBE_SIGBUS;
	}
}

int probe_sample(struct probe_map *map, bool is_touch, struct probe_sample *s)
{
	int rc;

	if (!s->page) {
		s->page = calloc(map->pages, sizeof(*s->page));
		if (!s->page)
			return -ENOMEM;
	}
	memset(s->page, 0, map->pages * sizeof(*s->page));
	s->is_touched = is_touch;
	s->seq++;
	/* Before the touch: touching faults pages in, which is what the state would show. */
	rc = read_state(map, s, false);
	if (rc < 0 || !is_touch)
		goto out;
	rc = touch_all(map, s);
	if (rc == 0)
		rc = read_state(map, s, true);
out:
	count(map, s);
	return rc;
}

void probe_sample_free(struct probe_sample *s)
{
	free(s->page);
	s->page = NULL;
}
