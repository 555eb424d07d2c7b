/* File data of the sqlite backend. A file is a row per chunk in chunks (ino, idx, pages,
 * blob), where a missing row is a hole and pages has a bit per 4 KiB page that is present
 * (written or allocated); the bytes live in blobs (id, data), read and written in place
 * with SQLite's incremental blob I/O. A chunk with blob 0 has no bytes (allocated zeros),
 * and a blob shorter than the chunk reads as zeros past its end. Inode rows (size,
 * blocks) are the caller's business.
 *
 * Invariants: bytes of absent pages are zero; a chunk row has at least one present page. */
#include "sqlite.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SQ_CHUNK_MASK (SQ_CHUNK_SIZE - 1)
#define SQ_IDX_MAX    ((UINT64_C(1) << (63 - SQ_CHUNK_SHIFT)) - 1) /* last chunk of a file */
#define SQ_ALL_PAGES \
	(SQ_PAGES_PER_CHUNK == 64 ? UINT64_MAX : (UINT64_C(1) << SQ_PAGES_PER_CHUNK) - 1)

/* A row of chunks. */
struct sq_chunk {
	bool exists;
	uint64_t pages;
	int64_t blob; /* 0: no bytes */
};

static uint64_t chunk_min(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* The page bits of bytes [from, to) of a chunk, 0 <= from <= to <= SQ_CHUNK_SIZE; with
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

void sqlite_chunk_release(struct sqlite_conn *c)
{
	sqlite3_blob_close(c->blob);
	c->blob = NULL;
}

/* c's blob handle on blob id, for writing if is_rw. */
static int chunk_blob(struct sqlite_conn *c, int64_t id, bool is_rw, sqlite3_blob **out)
{
	int rc = SQLITE_ERROR;

	if (c->blob && (c->is_blob_rw || !is_rw))
		rc = sqlite3_blob_reopen(c->blob, id);
	if (rc != SQLITE_OK) {
		sqlite_chunk_release(c);
		rc = sqlite3_blob_open(c->db, "main", "blobs", "data", id, is_rw, &c->blob);
		c->is_blob_rw = is_rw;
	}
	if (rc != SQLITE_OK) {
		sqlite_chunk_release(c);
		return sqlite_err(c, rc, "open blob");
	}
	*out = c->blob;
	return 0;
}

static int chunk_get(struct sqlite_conn *c, uint64_t ino, uint64_t idx, struct sq_chunk *out)
{
	sqlite3_stmt *st;
	int rc = sqlite_stmt(c, SQ_CHUNK_GET, &st);

	*out = (struct sq_chunk){ 0 };
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, (int64_t)ino);
	sqlite3_bind_int64(st, 2, (int64_t)idx);
	rc = sqlite_step(c, st, "read chunk");
	if (rc == SQLITE_ROW)
		*out = (struct sq_chunk){ true, (uint64_t)sqlite3_column_int64(st, 0),
					  sqlite3_column_int64(st, 1) };
	sqlite3_reset(st);
	return rc < 0 ? rc : 0;
}

/* Writes row (ino, idx) as ch says: inserted, updated, or deleted with its blob when no
 * page is left. */
static int chunk_put(struct sqlite_conn *c, uint64_t ino, uint64_t idx, const struct sq_chunk *ch,
		     bool is_new)
{
	int rc = 0;

	if (ch->pages == 0 && ch->blob)
		rc = sqlite_exec(c, SQ_BLOB_DEL, SQ_ARGS(ch->blob));
	if (rc == 0 && ch->pages == 0)
		return sqlite_exec(c, SQ_CHUNK_DEL_RANGE,
				   SQ_ARGS((int64_t)ino, (int64_t)idx, (int64_t)idx));
	if (rc < 0)
		return rc;
	return sqlite_exec(c, is_new ? SQ_CHUNK_ADD : SQ_CHUNK_SET,
			   SQ_ARGS((int64_t)ino, (int64_t)idx, (int64_t)ch->pages, ch->blob));
}

/* Stores data (len bytes) in blob *id: a new row if *id is 0. */
static int blob_store(struct sqlite_conn *c, int64_t *id, const void *data, uint64_t len)
{
	sqlite3_stmt *st;
	int rc = sqlite_stmt(c, *id ? SQ_BLOB_SET : SQ_BLOB_ADD, &st);

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, *id);
	sqlite3_bind_blob(st, 2, data, (int)len, SQLITE_STATIC);
	rc = sqlite_step(c, st, "write blob");
	sqlite3_reset(st);
	if (rc >= 0 && *id == 0)
		*id = sqlite3_last_insert_rowid(c->db);
	return rc < 0 ? rc : 0;
}

/* Copies the bytes [pos, stop) of one chunk (its row at st) into buf, which holds
 * [off, ...): the blob's bytes where it has them, zeros elsewhere. */
static int chunk_copy_row(struct sqlite_conn *c, sqlite3_stmt *st, char *buf, uint64_t off,
			  uint64_t pos, uint64_t stop)
{
	uint64_t start = (uint64_t)sqlite3_column_int64(st, 0) << SQ_CHUNK_SHIFT;
	int64_t id = sqlite3_column_int64(st, 1);
	uint64_t blen = 0, n = 0;
	sqlite3_blob *h;
	int rc = id ? chunk_blob(c, id, false, &h) : 0;

	if (rc < 0)
		return rc;
	if (id)
		blen = (uint64_t)sqlite3_blob_bytes(h);
	if (blen > pos - start)
		n = chunk_min(blen - (pos - start), stop - pos);
	rc = n ? sqlite3_blob_read(h, buf + (pos - off), (int)n, (int)(pos - start)) : SQLITE_OK;
	if (rc != SQLITE_OK)
		return sqlite_err(c, rc, "read blob");
	memset(buf + (pos + n - off), 0, stop - pos - n);
	return 0;
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
	while ((rc = sqlite_step(c, st, "read data")) == SQLITE_ROW) {
		uint64_t start = (uint64_t)sqlite3_column_int64(st, 0) << SQ_CHUNK_SHIFT;
		uint64_t stop = chunk_min(end, start + SQ_CHUNK_SIZE);

		if (start > pos)
			memset(buf + (pos - off), 0, start - pos);
		pos = start > pos ? start : pos;
		rc = chunk_copy_row(c, st, buf, off, pos, stop);
		if (rc < 0)
			break;
		pos = stop;
	}
	sqlite3_reset(st);
	if (rc < 0)
		return rc;
	memset(buf + (pos - off), 0, end - pos);
	return 0;
}

/* A new blob for bytes [o, o + n) of a chunk: zeros before o. */
static int blob_create(struct sqlite_conn *c, int64_t *id, const char *buf, uint64_t o, uint64_t n)
{
	char *data;
	int rc;

	*id = 0;
	if (o == 0)
		return blob_store(c, id, buf, n);
	data = calloc(1, o + n);
	if (!data)
		return -ENOMEM;
	memcpy(data + o, buf, n);
	rc = blob_store(c, id, data, o + n);
	free(data);
	return rc;
}

/* Rewrites blob id (now blen bytes) longer, with bytes [o, o + n) from buf; it grows to
 * at least twice its length, so that a run of appends rewrites it a few times only. */
static int blob_grow(struct sqlite_conn *c, sqlite3_blob *h, int64_t id, uint64_t blen,
		     const char *buf, uint64_t o, uint64_t n)
{
	uint64_t len = o + n < SQ_CHUNK_SIZE
			       ? chunk_min(SQ_CHUNK_SIZE, o + n > 2 * blen ? o + n : 2 * blen)
			       : o + n;
	char *data;
	int rc;

	if (o == 0 && n == len)
		return blob_store(c, &id, buf, n);
	data = calloc(1, len);
	if (!data)
		return -ENOMEM;
	rc = sqlite3_blob_read(h, data, (int)chunk_min(blen, o), 0);
	rc = rc == SQLITE_OK ? 0 : sqlite_err(c, rc, "read blob");
	memcpy(data + o, buf, n);
	if (rc == 0)
		rc = blob_store(c, &id, data, len);
	free(data);
	return rc;
}

/* Bytes [o, o + n) of the chunk's existing blob: in place when the blob is long enough. */
static int blob_write(struct sqlite_conn *c, int64_t id, const char *buf, uint64_t o, uint64_t n)
{
	sqlite3_blob *h;
	uint64_t blen;
	int rc = chunk_blob(c, id, true, &h);

	if (rc < 0)
		return rc;
	blen = (uint64_t)sqlite3_blob_bytes(h);
	if (o + n > blen)
		return blob_grow(c, h, id, blen, buf, o, n);
	rc = sqlite3_blob_write(h, buf, (int)n, (int)o);
	return rc == SQLITE_OK ? 0 : sqlite_err(c, rc, "write blob");
}

/* Bytes [o, o + n) of chunk idx: the number of pages it added, or -errno. */
static int64_t chunk_write_one(struct sqlite_conn *c, uint64_t ino, uint64_t idx, const char *buf,
			       uint64_t o, uint64_t n)
{
	struct sq_chunk ch;
	int64_t old_blob;
	uint64_t old;
	int rc = chunk_get(c, ino, idx, &ch);

	if (rc < 0)
		return rc;
	old = ch.pages;
	old_blob = ch.blob;
	ch.pages |= chunk_bits(o, o + n, false);
	if (ch.blob)
		rc = blob_write(c, ch.blob, buf, o, n);
	else
		rc = blob_create(c, &ch.blob, buf, o, n);
	if (rc == 0 && (!ch.exists || ch.pages != old || ch.blob != old_blob))
		rc = chunk_put(c, ino, idx, &ch, !ch.exists);
	return rc < 0 ? rc : chunk_count(ch.pages) - chunk_count(old);
}

int64_t sqlite_chunk_write(struct sqlite_conn *c, uint64_t ino, const char *buf, uint64_t len,
			   uint64_t off)
{
	int64_t added = 0;

	while (len > 0) {
		uint64_t idx = off >> SQ_CHUNK_SHIFT, o = off & SQ_CHUNK_MASK;
		uint64_t n = chunk_min(len, SQ_CHUNK_SIZE - o);
		int64_t rc = chunk_write_one(c, ino, idx, buf, o, n);

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
	int64_t missing = (int64_t)(((end - 1) >> SQ_PAGE_SHIFT) - (off >> SQ_PAGE_SHIFT) + 1);
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
	struct sq_chunk ch;
	int rc = chunk_get(c, ino, idx, &ch);

	old = ch.pages;
	if (rc < 0 || (old & want) == want)
		return rc;
	ch.pages |= want;
	rc = chunk_put(c, ino, idx, &ch, !ch.exists);
	return rc < 0 ? rc : chunk_count(ch.pages) - chunk_count(old);
}

int64_t sqlite_chunk_alloc(struct sqlite_conn *c, uint64_t ino, uint64_t off, uint64_t end)
{
	int64_t added = 0;

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

/* Zeroes bytes [from, to) of blob id in place, or cuts it at from when they reach its
 * end. */
static int blob_zero(struct sqlite_conn *c, int64_t id, uint64_t from, uint64_t to)
{
	static const char zeros[SQ_PAGE_SIZE];
	sqlite3_blob *h;
	uint64_t blen;
	char *head;
	int rc = chunk_blob(c, id, true, &h);

	if (rc < 0)
		return rc;
	blen = (uint64_t)sqlite3_blob_bytes(h);
	for (uint64_t pos = from; rc == SQLITE_OK && to < blen && pos < to; pos += SQ_PAGE_SIZE)
		rc = sqlite3_blob_write(h, zeros, (int)chunk_min(to - pos, SQ_PAGE_SIZE), (int)pos);
	if (rc == SQLITE_OK && to >= blen && from < blen) {
		head = malloc(from ? from : 1);
		if (!head)
			return -ENOMEM;
		rc = sqlite3_blob_read(h, head, (int)from, 0);
		if (rc == SQLITE_OK)
			rc = blob_store(c, &id, head, from) == 0 ? SQLITE_OK : SQLITE_IOERR;
		free(head);
	}
	return rc == SQLITE_OK ? 0 : sqlite_err(c, rc, "zero blob");
}

/* Zeroes bytes [from, to) of chunk idx: pages wholly inside are freed. Pages freed. */
static int64_t chunk_zero_one(struct sqlite_conn *c, uint64_t ino, uint64_t idx, uint64_t from,
			      uint64_t to)
{
	struct sq_chunk ch;
	uint64_t old;
	int rc = chunk_get(c, ino, idx, &ch);

	if (rc < 0 || !ch.exists)
		return rc;
	old = ch.pages;
	ch.pages &= ~chunk_bits(from, to, true);
	if (ch.pages && ch.blob)
		rc = blob_zero(c, ch.blob, from, to);
	if (rc == 0)
		rc = chunk_put(c, ino, idx, &ch, false);
	return rc < 0 ? rc : chunk_count(old) - chunk_count(ch.pages);
}

/* Deletes the chunks first..last with their blobs: pages freed. */
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
		rc = sqlite_exec(c, SQ_BLOB_DEL_RANGE,
				 SQ_ARGS((int64_t)ino, (int64_t)first, (int64_t)last));
	if (rc >= 0)
		rc = sqlite_exec(c, SQ_CHUNK_DEL_RANGE,
				 SQ_ARGS((int64_t)ino, (int64_t)first, (int64_t)last));
	return rc < 0 ? rc : freed;
}

int64_t sqlite_chunk_zero(struct sqlite_conn *c, uint64_t ino, uint64_t off, uint64_t end)
{
	uint64_t first = off >> SQ_CHUNK_SHIFT, last = (end - 1) >> SQ_CHUNK_SHIFT;
	int64_t freed = 0, rc = 0;

	if ((off & SQ_CHUNK_MASK) || end - (first << SQ_CHUNK_SHIFT) < SQ_CHUNK_SIZE) {
		rc = chunk_zero_one(c, ino, first, off & SQ_CHUNK_MASK,
				    chunk_min(end - (first << SQ_CHUNK_SHIFT), SQ_CHUNK_SIZE));
		freed += rc;
		first++;
	}
	if (rc >= 0 && first <= last && (end & SQ_CHUNK_MASK)) {
		rc = chunk_zero_one(c, ino, last, 0, end & SQ_CHUNK_MASK);
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

int sqlite_chunk_drop(struct sqlite_conn *c, uint64_t ino)
{
	int rc = sqlite_exec(c, SQ_BLOB_DROP, SQ_ARGS((int64_t)ino));

	return rc == 0 ? sqlite_exec(c, SQ_CHUNK_DROP, SQ_ARGS((int64_t)ino)) : rc;
}
