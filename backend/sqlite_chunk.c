/* File data of the sqlite backend: chunk rows (ino, idx, pages, data), where a missing
 * row is a hole, a blob shorter than the chunk reads as zeros past its end, and pages has
 * a bit per 4 KiB page that is present; plus the chunk cache that saves a partial write
 * from reading its chunk back. Inode rows (size, blocks) are the caller's business.
 *
 * Invariants: bytes of absent pages are zero in data; a row has at least one present
 * page; a cache entry equals its row in the writer's transaction and is zero past len. */
#include "sqlite.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SQ_CHUNK_MASK (SQ_CHUNK_SIZE - 1)
#define SQ_IDX_MAX    ((UINT64_C(1) << (63 - SQ_CHUNK_SHIFT)) - 1) /* last chunk of a file */
#define SQ_CACHE_MAX  32					   /* chunks in the cache */
#define SQ_ALL_PAGES \
	(SQ_PAGES_PER_CHUNK == 64 ? UINT64_MAX : (UINT64_C(1) << SQ_PAGES_PER_CHUNK) - 1)

struct sqlite_chunk_entry {
	struct sqlite_chunk_entry *next; /* less recently used */
	uint64_t ino, idx;
	uint64_t pages;
	uint32_t len; /* bytes of data in the row */
	char data[SQ_CHUNK_SIZE];
};

static uint64_t chunk_min(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* The page bits of bytes [from, to) of a chunk, 0 <= from < to <= SQ_CHUNK_SIZE; with
 * is_whole, only pages wholly inside the range. */
static uint64_t chunk_bits(uint64_t from, uint64_t to, bool is_whole)
{
	uint64_t first =
		is_whole ? (from + SQ_PAGE_SIZE - 1) >> SQ_PAGE_SHIFT : from >> SQ_PAGE_SHIFT;
	uint64_t stop = is_whole ? to >> SQ_PAGE_SHIFT : (to + SQ_PAGE_SIZE - 1) >> SQ_PAGE_SHIFT;
	uint64_t below_stop = stop >= 64 ? UINT64_MAX : (UINT64_C(1) << stop) - 1;
	uint64_t below_first = first >= 64 ? UINT64_MAX : (UINT64_C(1) << first) - 1;

	return first >= stop ? 0 : below_stop & ~below_first;
}

static int chunk_count(uint64_t pages)
{
	return __builtin_popcountll(pages);
}

static struct sqlite_chunk_entry **cache_link(struct sqlite_cache *cache, uint64_t ino,
					      uint64_t idx)
{
	struct sqlite_chunk_entry **link = &cache->head;

	while (*link && ((*link)->ino != ino || (*link)->idx != idx))
		link = &(*link)->next;
	return link;
}

void sqlite_cache_drop(struct sqlite_cache *cache, uint64_t ino)
{
	struct sqlite_chunk_entry **link = &cache->head;

	while (*link) {
		struct sqlite_chunk_entry *e = *link;

		if (e->ino != ino) {
			link = &e->next;
			continue;
		}
		*link = e->next;
		free(e);
		cache->count--;
	}
}

void sqlite_cache_clear(struct sqlite_cache *cache)
{
	while (cache->head) {
		struct sqlite_chunk_entry *e = cache->head;

		cache->head = e->next;
		free(e);
	}
	cache->count = 0;
}

static void cache_drop_one(struct sqlite_cache *cache, uint64_t ino, uint64_t idx)
{
	struct sqlite_chunk_entry **link = cache_link(cache, ino, idx);
	struct sqlite_chunk_entry *e = *link;

	if (e) {
		*link = e->next;
		free(e);
		cache->count--;
	}
}

/* An entry to fill: a new one, or the least recently used once the cache is full; it
 * is taken out of the list. NULL without memory. */
static struct sqlite_chunk_entry *cache_slot(struct sqlite_cache *cache)
{
	struct sqlite_chunk_entry **link = &cache->head, *e;

	if (cache->count < SQ_CACHE_MAX) {
		e = malloc(sizeof(*e));
		cache->count += e != NULL;
		return e;
	}
	while ((*link)->next)
		link = &(*link)->next;
	e = *link;
	*link = NULL;
	return e;
}

/* Reads the row (ino, idx) into e: no row is an empty chunk. */
static int chunk_load(struct sqlite_conn *c, struct sqlite_chunk_entry *e)
{
	sqlite3_stmt *st;
	int rc = sqlite_stmt(c, SQ_CHUNK_GET, &st);

	e->pages = 0;
	e->len = 0;
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, (int64_t)e->ino);
	sqlite3_bind_int64(st, 2, (int64_t)e->idx);
	rc = sqlite_step(c, st, "read chunk");
	if (rc == SQLITE_ROW) {
		const void *data = sqlite3_column_blob(st, 1);

		e->pages = (uint64_t)sqlite3_column_int64(st, 0);
		e->len = (uint32_t)chunk_min((uint64_t)sqlite3_column_bytes(st, 1), SQ_CHUNK_SIZE);
		if (e->len)
			memcpy(e->data, data, e->len);
	}
	sqlite3_reset(st);
	memset(e->data + e->len, 0, SQ_CHUNK_SIZE - e->len);
	return rc < 0 ? rc : 0;
}

/* The cached chunk (ino, idx), loaded if need be, now the most recently used. */
static int cache_get(struct sqlite_bk *s, struct sqlite_conn *c, uint64_t ino, uint64_t idx,
		     struct sqlite_chunk_entry **out)
{
	struct sqlite_cache *cache = &s->w.cache;
	struct sqlite_chunk_entry **link = cache_link(cache, ino, idx), *e = *link;
	int rc = 0;

	if (e) {
		*link = e->next;
	} else {
		e = cache_slot(cache);
		if (!e)
			return -ENOMEM;
		e->ino = ino;
		e->idx = idx;
		rc = chunk_load(c, e);
	}
	if (rc < 0) {
		free(e);
		cache->count--;
		return rc;
	}
	e->next = cache->head;
	cache->head = e;
	*out = e;
	return 0;
}

/* Writes row (ino, idx); a chunk with no page present is deleted instead. */
static int chunk_store(struct sqlite_conn *c, uint64_t ino, uint64_t idx, uint64_t pages,
		       const char *data, uint32_t len)
{
	sqlite3_stmt *st;
	int rc;

	if (pages == 0)
		return sqlite_exec(c, SQ_CHUNK_DEL_RANGE,
				   SQ_ARGS((int64_t)ino, (int64_t)idx, (int64_t)idx));
	rc = sqlite_stmt(c, SQ_CHUNK_PUT, &st);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	sqlite3_bind_int64(st, 2, (int64_t)idx);
	sqlite3_bind_int64(st, 3, (int64_t)pages);
	if (len)
		sqlite3_bind_blob(st, 4, data, (int)len, SQLITE_STATIC);
	else
		sqlite3_bind_zeroblob(st, 4, 0);
	rc = sqlite_step(c, st, "write chunk");
	sqlite3_reset(st);
	return rc < 0 ? rc : 0;
}

/* The pages bits of row (ino, idx), 0 if there is none. */
static int chunk_pages(struct sqlite_conn *c, uint64_t ino, uint64_t idx, uint64_t *out)
{
	sqlite3_stmt *st;
	int rc = sqlite_stmt(c, SQ_CHUNK_PAGES, &st);

	*out = 0;
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	sqlite3_bind_int64(st, 2, (int64_t)idx);
	sqlite3_bind_int64(st, 3, (int64_t)idx);
	rc = sqlite_step(c, st, "read chunk pages");
	if (rc == SQLITE_ROW)
		*out = (uint64_t)sqlite3_column_int64(st, 1);
	sqlite3_reset(st);
	return rc < 0 ? rc : 0;
}

/* Copies the part of one row's data that falls in [*pos, end) into buf (which holds
 * [off, end)), zeros around it, and advances *pos past the chunk. */
static void chunk_copy_row(sqlite3_stmt *st, char *buf, uint64_t off, uint64_t end, uint64_t *pos)
{
	const char *data = sqlite3_column_blob(st, 1);
	uint64_t start = (uint64_t)sqlite3_column_int64(st, 0) << SQ_CHUNK_SHIFT;
	uint64_t blen = (uint64_t)sqlite3_column_bytes(st, 1);
	uint64_t stop = chunk_min(end, start + SQ_CHUNK_SIZE), n;

	if (start > *pos) {
		memset(buf + (*pos - off), 0, start - *pos);
		*pos = start;
	}
	n = blen > *pos - start ? chunk_min(blen - (*pos - start), stop - *pos) : 0;
	if (n) {
		memcpy(buf + (*pos - off), data + (*pos - start), n);
		*pos += n;
	}
	memset(buf + (*pos - off), 0, stop - *pos);
	*pos = stop;
}

int sqlite_chunk_read(struct sqlite_conn *c, uint64_t ino, char *buf, uint64_t len, uint64_t off)
{
	uint64_t end = off + len, pos = off;
	sqlite3_stmt *st;
	int rc;

	if (len == 0)
		return 0;
	rc = sqlite_stmt(c, SQ_CHUNK_READ, &st);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	sqlite3_bind_int64(st, 2, (int64_t)(off >> SQ_CHUNK_SHIFT));
	sqlite3_bind_int64(st, 3, (int64_t)((end - 1) >> SQ_CHUNK_SHIFT));
	while ((rc = sqlite_step(c, st, "read data")) == SQLITE_ROW)
		chunk_copy_row(st, buf, off, end, &pos);
	sqlite3_reset(st);
	if (rc < 0)
		return rc;
	memset(buf + (pos - off), 0, end - pos);
	return 0;
}

/* A whole chunk: its old bytes do not matter, so it bypasses the cache. */
static int64_t chunk_write_whole(struct sqlite_bk *s, struct sqlite_conn *c, uint64_t ino,
				 uint64_t idx, const char *buf)
{
	uint64_t old;
	int rc = chunk_pages(c, ino, idx, &old);

	cache_drop_one(&s->w.cache, ino, idx);
	if (rc == 0)
		rc = chunk_store(c, ino, idx, SQ_ALL_PAGES, buf, SQ_CHUNK_SIZE);
	return rc < 0 ? rc : (int64_t)SQ_PAGES_PER_CHUNK - chunk_count(old);
}

/* Bytes [o, o + n) of chunk idx, through the cache. */
static int64_t chunk_write_part(struct sqlite_bk *s, struct sqlite_conn *c, uint64_t ino,
				uint64_t idx, const char *buf, uint64_t o, uint64_t n)
{
	struct sqlite_chunk_entry *e;
	uint64_t old;
	int rc = cache_get(s, c, ino, idx, &e);

	if (rc < 0)
		return rc;
	old = e->pages;
	memcpy(e->data + o, buf, n);
	if (o + n > e->len)
		e->len = (uint32_t)(o + n);
	e->pages |= chunk_bits(o, o + n, false);
	rc = chunk_store(c, ino, idx, e->pages, e->data, e->len);
	return rc < 0 ? rc : chunk_count(e->pages) - chunk_count(old);
}

int64_t sqlite_chunk_write(struct sqlite_bk *s, struct sqlite_conn *c, uint64_t ino,
			   const char *buf, uint64_t len, uint64_t off)
{
	int64_t added = 0;

	while (len > 0) {
		uint64_t idx = off >> SQ_CHUNK_SHIFT, o = off & SQ_CHUNK_MASK;
		uint64_t n = chunk_min(len, SQ_CHUNK_SIZE - o);
		int64_t rc = n == SQ_CHUNK_SIZE ? chunk_write_whole(s, c, ino, idx, buf)
						: chunk_write_part(s, c, ino, idx, buf, o, n);

		if (rc < 0)
			return rc;
		added += rc;
		buf += n;
		off += n;
		len -= n;
	}
	return added;
}

int64_t sqlite_chunk_missing(struct sqlite_conn *c, uint64_t ino, uint64_t off, uint64_t end)
{
	uint64_t first = off >> SQ_PAGE_SHIFT, last = (end - 1) >> SQ_PAGE_SHIFT;
	int64_t missing = (int64_t)(last - first + 1);
	sqlite3_stmt *st;
	int rc = sqlite_stmt(c, SQ_CHUNK_PAGES, &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	sqlite3_bind_int64(st, 2, (int64_t)(off >> SQ_CHUNK_SHIFT));
	sqlite3_bind_int64(st, 3, (int64_t)((end - 1) >> SQ_CHUNK_SHIFT));
	while ((rc = sqlite_step(c, st, "read chunk pages")) == SQLITE_ROW) {
		uint64_t start = (uint64_t)sqlite3_column_int64(st, 0) << SQ_CHUNK_SHIFT;
		uint64_t from = off > start ? off - start : 0;
		uint64_t to = chunk_min(end - start, SQ_CHUNK_SIZE);
		uint64_t pages = (uint64_t)sqlite3_column_int64(st, 1);

		missing -= chunk_count(pages & chunk_bits(from, to, false));
	}
	sqlite3_reset(st);
	return rc < 0 ? rc : missing;
}

/* Marks the pages of bytes [from, to) of chunk idx present: pages added. */
static int64_t chunk_alloc_one(struct sqlite_conn *c, uint64_t ino, uint64_t idx, uint64_t from,
			       uint64_t to)
{
	uint64_t want = chunk_bits(from, to, false), old;
	int rc = chunk_pages(c, ino, idx, &old);

	if (rc < 0 || (old & want) == want)
		return rc;
	if (old)
		rc = sqlite_exec(c, SQ_CHUNK_SET_PAGES,
				 SQ_ARGS((int64_t)ino, (int64_t)idx, (int64_t)(old | want)));
	else
		rc = chunk_store(c, ino, idx, want, NULL, 0);
	return rc < 0 ? rc : chunk_count(old | want) - chunk_count(old);
}

int64_t sqlite_chunk_alloc(struct sqlite_bk *s, struct sqlite_conn *c, uint64_t ino, uint64_t off,
			   uint64_t end)
{
	int64_t added = 0;

	sqlite_cache_drop(&s->w.cache, ino);
	while (off < end) {
		uint64_t idx = off >> SQ_CHUNK_SHIFT, from = off & SQ_CHUNK_MASK;
		uint64_t to = chunk_min(end - (idx << SQ_CHUNK_SHIFT), SQ_CHUNK_SIZE);
		int64_t rc = chunk_alloc_one(c, ino, idx, from, to);

		if (rc < 0)
			return rc;
		added += rc;
		off = (idx << SQ_CHUNK_SHIFT) + to;
	}
	return added;
}

/* Zeroes bytes [from, to) of chunk idx: pages wholly inside are freed. Pages freed. */
static int64_t chunk_zero_part(struct sqlite_conn *c, uint64_t ino, uint64_t idx, uint64_t from,
			       uint64_t to)
{
	struct sqlite_chunk_entry *e = malloc(sizeof(*e));
	int64_t freed;
	uint64_t old;
	int rc;

	if (!e)
		return -ENOMEM;
	e->ino = ino;
	e->idx = idx;
	rc = chunk_load(c, e);
	old = e->pages;
	e->pages &= ~chunk_bits(from, to, true);
	if (to >= e->len)
		e->len = (uint32_t)chunk_min(e->len, from);
	else if (from < e->len)
		memset(e->data + from, 0, to - from);
	if (rc == 0 && old != 0)
		rc = chunk_store(c, ino, idx, e->pages, e->data, e->len);
	freed = chunk_count(old) - chunk_count(e->pages);
	free(e);
	return rc < 0 ? rc : freed;
}

/* Deletes the rows of chunks first..last: pages freed. */
static int64_t chunk_delete(struct sqlite_conn *c, uint64_t ino, uint64_t first, uint64_t last)
{
	int64_t freed = 0;
	sqlite3_stmt *st;
	int rc = sqlite_stmt(c, SQ_CHUNK_PAGES, &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	sqlite3_bind_int64(st, 2, (int64_t)first);
	sqlite3_bind_int64(st, 3, (int64_t)last);
	while ((rc = sqlite_step(c, st, "read chunk pages")) == SQLITE_ROW)
		freed += chunk_count((uint64_t)sqlite3_column_int64(st, 1));
	sqlite3_reset(st);
	if (rc >= 0)
		rc = sqlite_exec(c, SQ_CHUNK_DEL_RANGE,
				 SQ_ARGS((int64_t)ino, (int64_t)first, (int64_t)last));
	return rc < 0 ? rc : freed;
}

int64_t sqlite_chunk_zero(struct sqlite_bk *s, struct sqlite_conn *c, uint64_t ino, uint64_t off,
			  uint64_t end)
{
	uint64_t first = off >> SQ_CHUNK_SHIFT, last = (end - 1) >> SQ_CHUNK_SHIFT;
	int64_t freed = 0, rc = 0;

	sqlite_cache_drop(&s->w.cache, ino);
	if ((off & SQ_CHUNK_MASK) || end - (first << SQ_CHUNK_SHIFT) < SQ_CHUNK_SIZE) {
		rc = chunk_zero_part(c, ino, first, off & SQ_CHUNK_MASK,
				     chunk_min(end - (first << SQ_CHUNK_SHIFT), SQ_CHUNK_SIZE));
		freed += rc;
		first++;
	}
	if (rc >= 0 && first <= last && (end & SQ_CHUNK_MASK)) {
		rc = chunk_zero_part(c, ino, last, 0, end & SQ_CHUNK_MASK);
		freed += rc;
		last--;
	}
	if (rc >= 0 && first <= last && last != UINT64_MAX) {
		rc = chunk_delete(c, ino, first, last);
		freed += rc;
	}
	return rc < 0 ? rc : freed;
}

/* The first present (is_present) or absent page at or after page p; UINT64_MAX when no
 * page is present. */
static int chunk_next_page(struct sqlite_conn *c, uint64_t ino, uint64_t p, bool is_present,
			   uint64_t *out)
{
	uint64_t idx0 = p >> (SQ_CHUNK_SHIFT - SQ_PAGE_SHIFT);
	sqlite3_stmt *st;
	int rc = sqlite_stmt(c, SQ_CHUNK_PAGES, &st);

	*out = is_present ? UINT64_MAX : p;
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	sqlite3_bind_int64(st, 2, (int64_t)idx0);
	sqlite3_bind_int64(st, 3, (int64_t)SQ_IDX_MAX);
	while ((rc = sqlite_step(c, st, "read chunk pages")) == SQLITE_ROW) {
		uint64_t idx = (uint64_t)sqlite3_column_int64(st, 0);
		uint64_t base = idx * SQ_PAGES_PER_CHUNK,
			 pages = (uint64_t)sqlite3_column_int64(st, 1);
		uint64_t want = is_present ? pages : ~pages & SQ_ALL_PAGES;

		if (!is_present && base > *out)
			break; /* a missing chunk before this one: the hole is at *out */
		if (p > base)
			want &= ~chunk_bits(0, (p - base) << SQ_PAGE_SHIFT, false);
		if (want) {
			*out = base + (uint64_t)__builtin_ctzll(want);
			break;
		}
		if (!is_present)
			*out = base + SQ_PAGES_PER_CHUNK;
	}
	sqlite3_reset(st);
	return rc < 0 ? rc : 0;
}

off_t sqlite_chunk_seek(struct sqlite_conn *c, uint64_t ino, uint64_t off, uint64_t size,
			int whence)
{
	uint64_t page, pos;
	int rc = chunk_next_page(c, ino, off >> SQ_PAGE_SHIFT, whence == SEEK_DATA, &page);

	if (rc < 0)
		return rc;
	if (page == UINT64_MAX)
		return -ENXIO;
	pos = page << SQ_PAGE_SHIFT > off ? page << SQ_PAGE_SHIFT : off;
	if (whence == SEEK_DATA)
		return pos < size ? (off_t)pos : -ENXIO;
	return (off_t)chunk_min(pos, size);
}

int sqlite_chunk_drop(struct sqlite_bk *s, struct sqlite_conn *c, uint64_t ino)
{
	sqlite_cache_drop(&s->w.cache, ino);
	return sqlite_exec(c, SQ_CHUNK_DROP, SQ_ARGS((int64_t)ino));
}
