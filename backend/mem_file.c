/* The mem backend's file data: sparse MEM_PAGE_SIZE pages in a pagemap per regular file,
 * and the read, read_direct, write, fallocate and lseek slots plus truncation for setattr.
 *
 * Bytes past a file's size are always zero: truncation zeroes the tail of the new last
 * page and frees every page past it, so a file that grows again never shows old data.
 * Pages are charged against the byte limit before they are allocated, all at once, so an
 * operation that does not fit fails with -ENOSPC before it changes anything; the index
 * nodes they need are charged after (mem.h, "Memory"). Pages come from m->store, which
 * hands them out zero-filled and gives their memory back to the kernel once freed. */
#include "mem.h"
#include "common.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MEM_PAGE_MASK (MEM_PAGE_SIZE - 1)
/* pieces a direct read describes without malloc(): 1 MiB at any offset */
#define MEM_DIRECT_IOVS ((1u << 20) / MEM_PAGE_SIZE + 2)

/* What a direct read points holes at. */
static const char mem_zero_page[MEM_PAGE_SIZE] __attribute__((aligned(MEM_PAGE_SIZE)));

static uint64_t mem_min(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t mem_max(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static uint64_t mem_page_round_up(uint64_t off)
{
	return (off + MEM_PAGE_MASK) & ~MEM_PAGE_MASK;
}

/* pagemap_free_fn: ctx is the struct pagestore_batch that gives the pages back. */
static void mem_page_free(void *page, void *ctx)
{
	pagestore_batch_add(ctx, page);
}

void mem_file_release(struct mem_bk *m, struct mem_inode *in)
{
	uint64_t n = in->pages.count, index = pagemap_bytes(&in->pages);
	struct pagestore_batch b;

	pagestore_batch_init(&b, &m->store);
	pagemap_destroy(&in->pages, mem_page_free, &b);
	pagestore_batch_flush(&b);
	mem_uncharge(m, n * MEM_PAGE_SIZE);
	mem_meta_uncharge(m, index);
}

static void mem_pages_free(struct mem_bk *m, struct mem_inode *in, uint64_t first, uint64_t last)
{
	uint64_t n, index = pagemap_bytes(&in->pages);
	struct pagestore_batch b;

	pagestore_batch_init(&b, &m->store);
	n = pagemap_remove_range(&in->pages, first, last, mem_page_free, &b);
	pagestore_batch_flush(&b);
	mem_uncharge(m, n * MEM_PAGE_SIZE);
	mem_meta_resize(m, index, pagemap_bytes(&in->pages));
}

/* Pages present in [first, last]: costs one step per present page, not per index. */
static uint64_t mem_pages_present(const struct mem_inode *in, uint64_t first, uint64_t last)
{
	uint64_t n = 0;

	for (uint64_t i = pagemap_next_present(&in->pages, first); i <= last;
	     i = pagemap_next_present(&in->pages, i + 1))
		n++;
	return n;
}

#define MEM_PREFAULT 64 /* pages made resident at once (pagestore_prefault()) */

static int mem_page_add(struct mem_bk *m, struct mem_inode *in, uint64_t idx, void **out)
{
	int rc = pagestore_alloc(&m->store, out);

	if (rc < 0)
		return rc;
	rc = pagemap_insert(&in->pages, idx, *out);
	if (rc < 0)
		pagestore_free(&m->store, *out);
	return rc;
}

/* Allocates the missing pages in [first, last] as zero pages: 0, -ENOSPC with nothing
 * changed, or -ENOMEM, where the zero pages added so far stay (they read as the holes
 * they replace). */
static int mem_pages_alloc(struct mem_bk *m, struct mem_inode *in, uint64_t first, uint64_t last)
{
	uint64_t missing = last - first + 1 - mem_pages_present(in, first, last);
	uint64_t added = 0, index = pagemap_bytes(&in->pages);
	void *fresh[MEM_PREFAULT];
	int rc = mem_charge(m, missing * MEM_PAGE_SIZE);

	if (rc < 0)
		return rc;
	for (uint64_t idx = first; added < missing; idx++) {
		if (pagemap_lookup(&in->pages, idx))
			continue;
		rc = mem_page_add(m, in, idx, &fresh[added % MEM_PREFAULT]);
		if (rc < 0)
			break;
		if (++added % MEM_PREFAULT == 0)
			pagestore_prefault(fresh, MEM_PREFAULT);
	}
	pagestore_prefault(fresh, added % MEM_PREFAULT);
	mem_uncharge(m, (missing - added) * MEM_PAGE_SIZE);
	mem_meta_resize(m, index, pagemap_bytes(&in->pages));
	return rc;
}

/* Zeroes bytes [from, to) in the pages that are present; holes are zero already. */
static void mem_zero_bytes(struct mem_inode *in, uint64_t from, uint64_t to)
{
	while (from < to) {
		uint64_t pgoff = from & MEM_PAGE_MASK;
		uint64_t chunk = mem_min(to - from, MEM_PAGE_SIZE - pgoff);
		char *page = pagemap_lookup(&in->pages, from >> MEM_PAGE_SHIFT);

		if (page)
			memset(page + pgoff, 0, chunk);
		from += chunk;
	}
}

/* Zeroes [off, end): whole pages are freed, partial ones zeroed in place. */
static void mem_zero_range(struct mem_bk *m, struct mem_inode *in, uint64_t off, uint64_t end)
{
	uint64_t first = mem_page_round_up(off), stop = end & ~MEM_PAGE_MASK;

	if (first >= stop) {
		mem_zero_bytes(in, off, end);
		return;
	}
	mem_zero_bytes(in, off, first);
	mem_pages_free(m, in, first >> MEM_PAGE_SHIFT, (stop >> MEM_PAGE_SHIFT) - 1);
	mem_zero_bytes(in, stop, end);
}

bool mem_file_truncate(struct mem_bk *m, struct mem_inode *in, uint64_t size)
{
	uint64_t old = in->size;

	if (size < old) {
		mem_pages_free(m, in, mem_page_round_up(size) >> MEM_PAGE_SHIFT, PAGEMAP_INDEX_MAX);
		mem_zero_bytes(in, size, mem_page_round_up(size));
	}
	in->size = size;
	return size != old;
}

static void mem_copy_out(const struct mem_inode *in, char *buf, uint64_t len, uint64_t off)
{
	while (len > 0) {
		uint64_t pgoff = off & MEM_PAGE_MASK;
		uint64_t chunk = mem_min(len, MEM_PAGE_SIZE - pgoff);
		const char *page = pagemap_lookup(&in->pages, off >> MEM_PAGE_SHIFT);

		if (page)
			memcpy(buf, page + pgoff, chunk);
		else
			memset(buf, 0, chunk);
		buf += chunk;
		off += chunk;
		len -= chunk;
	}
}

/* The pages under [off, off + len) must be present. */
static void mem_copy_in(struct mem_inode *in, const char *buf, uint64_t len, uint64_t off)
{
	uint64_t end = off + len;

	while (len > 0) {
		uint64_t pgoff = off & MEM_PAGE_MASK;
		uint64_t chunk = mem_min(len, MEM_PAGE_SIZE - pgoff);
		char *page = pagemap_lookup(&in->pages, off >> MEM_PAGE_SHIFT);

		memcpy(page + pgoff, buf, chunk);
		buf += chunk;
		off += chunk;
		len -= chunk;
	}
	in->size = mem_max(in->size, end);
	mem_now(&in->mtime);
	in->ctime = in->mtime;
}

static int mem_data_check(const struct mem_inode *in)
{
	if (S_ISDIR(in->mode))
		return -EISDIR;
	return S_ISREG(in->mode) ? 0 : -EINVAL;
}

ssize_t mem_read(struct bk *b, uint64_t ino, uint64_t fh, void *buf, size_t len, off_t off)
{
	struct mem_inode *in;
	ssize_t rc;

	if (off < 0)
		return -EINVAL;
	rc = mem_inode_lock(mem_of(b), ino, false, &in);
	if (rc < 0)
		return rc;
	rc = mem_data_check(in);
	if (rc == 0 && (uint64_t)off < in->size) {
		len = mem_min(mem_min(len, SSIZE_MAX), in->size - (uint64_t)off);
		mem_copy_out(in, buf, len, (uint64_t)off);
		rc = (ssize_t)len;
	}
	mem_inode_unlock(mem_of(b), in);
	return rc;
}

/* Describes bytes [off, off + len) of in's pages in iov, which has room for
 * len / MEM_PAGE_SIZE + 2 pieces; pieces that touch in memory become one. The count. */
static int mem_describe(const struct mem_inode *in, struct iovec *iov, uint64_t len, uint64_t off)
{
	int n = 0;

	while (len > 0) {
		uint64_t pgoff = off & MEM_PAGE_MASK;
		uint64_t chunk = mem_min(len, MEM_PAGE_SIZE - pgoff);
		const char *page = pagemap_lookup(&in->pages, off >> MEM_PAGE_SHIFT);
		char *base = (char *)(page ? page : mem_zero_page) + pgoff;

		if (n > 0 && (char *)iov[n - 1].iov_base + iov[n - 1].iov_len == base)
			iov[n - 1].iov_len += chunk;
		else
			iov[n++] = (struct iovec){ .iov_base = base, .iov_len = chunk };
		off += chunk;
		len -= chunk;
	}
	return n;
}

/* Caller holds in->lock, which keeps the pages from changing until reply returns. */
static ssize_t mem_reply_locked(const struct mem_inode *in, uint64_t len, uint64_t off,
				bk_reply_fn reply, void *ctx)
{
	struct iovec stack[MEM_DIRECT_IOVS], *iov = stack;
	uint64_t pieces = len / MEM_PAGE_SIZE + 2;
	ssize_t rc;
	int n;

	if (pieces > MEM_DIRECT_IOVS)
		iov = pieces <= INT_MAX ? malloc(pieces * sizeof(*iov)) : NULL;
	if (!iov)
		return -ENOMEM;
	n = mem_describe(in, iov, len, off);
	rc = reply(ctx, n > 0 ? iov : NULL, n);
	if (iov != stack)
		free(iov);
	return rc < 0 ? rc : (ssize_t)len;
}

ssize_t mem_read_direct(struct bk *b, uint64_t ino, uint64_t fh, size_t len, off_t off,
			bk_reply_fn reply, void *ctx)
{
	struct mem_inode *in;
	ssize_t rc;

	if (off < 0)
		return -EINVAL;
	rc = mem_inode_lock(mem_of(b), ino, false, &in);
	if (rc < 0)
		return rc;
	rc = mem_data_check(in);
	if (rc == 0 && (uint64_t)off >= in->size)
		len = 0;
	else if (rc == 0)
		len = mem_min(mem_min(len, SSIZE_MAX), in->size - (uint64_t)off);
	if (rc == 0)
		rc = mem_reply_locked(in, len, (uint64_t)off, reply, ctx);
	mem_inode_unlock(mem_of(b), in);
	return rc;
}

ssize_t mem_write(struct bk *b, uint64_t ino, uint64_t fh, const void *buf, size_t len, off_t off)
{
	struct mem_bk *m = mem_of(b);
	struct mem_inode *in;
	ssize_t rc = bk_write_check(off, len, MEM_FILE_MAX);

	if (rc == 0)
		rc = mem_inode_lock(m, ino, true, &in);
	if (rc < 0)
		return rc;
	rc = mem_data_check(in);
	if (rc == 0 && len > 0)
		rc = mem_pages_alloc(m, in, (uint64_t)off >> MEM_PAGE_SHIFT,
				     ((uint64_t)off + len - 1) >> MEM_PAGE_SHIFT);
	if (rc == 0 && len > 0) {
		mem_copy_in(in, buf, len, (uint64_t)off);
		rc = (ssize_t)len;
	}
	mem_inode_unlock(m, in);
	return rc;
}

/* Caller holds in->lock for writing; mode and range passed bk_falloc_check(). */
static int mem_falloc_locked(struct mem_bk *m, struct mem_inode *in, int mode, uint64_t off,
			     uint64_t end)
{
	bool is_zeroing = mode & (BK_FALLOC_PUNCH_HOLE | BK_FALLOC_ZERO_RANGE);
	int rc = 0;

	if (is_zeroing)
		mem_zero_range(m, in, off, end);
	else
		rc = mem_pages_alloc(m, in, off >> MEM_PAGE_SHIFT, (end - 1) >> MEM_PAGE_SHIFT);
	if (rc < 0)
		return rc;
	mem_now(&in->ctime);
	if (!(mode & BK_FALLOC_KEEP_SIZE) && end > in->size) {
		in->size = end;
		is_zeroing = true;
	}
	if (is_zeroing)
		in->mtime = in->ctime;
	return 0;
}

int mem_fallocate(struct bk *b, uint64_t ino, uint64_t fh, int mode, off_t off, off_t len)
{
	struct mem_bk *m = mem_of(b);
	struct mem_inode *in;
	int rc = bk_falloc_check(mode, off, len, MEM_FILE_MAX);

	if (rc == 0)
		rc = mem_inode_lock(m, ino, true, &in);
	if (rc < 0)
		return rc;
	if (S_ISDIR(in->mode))
		rc = -EISDIR;
	else if (!S_ISREG(in->mode))
		rc = -ENODEV;
	else
		rc = mem_falloc_locked(m, in, mode, (uint64_t)off, (uint64_t)(off + len));
	mem_inode_unlock(m, in);
	return rc;
}

static off_t mem_seek_data(const struct mem_inode *in, uint64_t off)
{
	uint64_t idx = pagemap_next_present(&in->pages, off >> MEM_PAGE_SHIFT);
	uint64_t pos;

	if (idx == PAGEMAP_NONE)
		return -ENXIO;
	pos = mem_max(off, idx << MEM_PAGE_SHIFT);
	return pos < in->size ? (off_t)pos : -ENXIO;
}

/* The implicit hole at the end of the file counts, so the answer is at most the size. */
static off_t mem_seek_hole(const struct mem_inode *in, uint64_t off)
{
	uint64_t idx = off >> MEM_PAGE_SHIFT;

	while (pagemap_next_present(&in->pages, idx) == idx)
		idx++;
	return (off_t)mem_min(mem_max(off, idx << MEM_PAGE_SHIFT), in->size);
}

off_t mem_lseek(struct bk *b, uint64_t ino, off_t off, int whence)
{
	struct mem_inode *in;
	off_t rc;

	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	rc = mem_inode_lock(mem_of(b), ino, false, &in);
	if (rc < 0)
		return rc;
	rc = S_ISREG(in->mode) ? 0 : -EINVAL;
	if (rc == 0 && (off < 0 || (uint64_t)off >= in->size))
		rc = -ENXIO;
	else if (rc == 0 && whence == SEEK_DATA)
		rc = mem_seek_data(in, (uint64_t)off);
	else if (rc == 0)
		rc = mem_seek_hole(in, (uint64_t)off);
	mem_inode_unlock(mem_of(b), in);
	return rc;
}
