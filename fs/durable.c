/* The undo copies of the power cut (durable.h): a map from inode to the file's durable
 * size and its saved pages, under one lock, taken only on mounts with -o powercut. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "durable.h"
#include "pagemap.h"

/* A page as the last sync left it: len bytes (short at the end of the file). */
struct dur_page {
	uint32_t len;
	bool is_zero; /* all zeros: given back as a hole */
	char data[];
};

/* Bytes of a torn write that never reached storage: what the file held there before
 * that write. Every fsync keeps them as they were, until a later change rewrites them. */
struct dur_tail {
	struct dur_tail *next;
	uint64_t off, len; /* bytes */
	char data[];
};

/* A file changed since its last sync. Its durable image: size, the saved pages, and for
 * pages not saved the backend's bytes below size. */
struct dur_file {
	uint64_t ino;
	uint64_t size;		/* at the last sync */
	struct pagemap pages;	/* page index -> struct dur_page */
	struct dur_tail *tails; /* NULL unless a torn write left some */
};

struct durable {
	pthread_mutex_t lock;
	uint64_t page_size;
	struct pagemap files; /* ino -> struct dur_file */
};

int durable_new(uint64_t page_size, struct durable **out)
{
	struct durable *d = calloc(1, sizeof(*d));

	*out = d;
	if (!d)
		return -ENOMEM;
	pthread_mutex_init(&d->lock, NULL);
	d->page_size = page_size;
	pagemap_init(&d->files);
	return 0;
}

static void page_free(void *item, void *ctx)
{
	free(item);
}

static void tails_free(struct dur_file *f)
{
	while (f->tails) {
		struct dur_tail *t = f->tails;

		f->tails = t->next;
		free(t);
	}
}

static void file_free(void *item, void *ctx)
{
	struct dur_file *f = item;

	pagemap_destroy(&f->pages, page_free, NULL);
	tails_free(f);
	free(f);
}

void durable_free(struct durable *d)
{
	if (!d)
		return;
	pagemap_destroy(&d->files, file_free, NULL);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

/* Caller holds the lock. ino's record, made with the present size on first use; NULL
 * with *rc 0 for what is not a regular file (nothing to undo), or -errno. */
static struct dur_file *file_get(struct durable *d, struct bk *b, uint64_t ino, int *rc)
{
	struct dur_file *f = pagemap_lookup(&d->files, ino);
	struct bk_attr a;

	*rc = 0;
	if (f)
		return f;
	*rc = bk_getattr(b, ino, &a);
	if (*rc < 0 || !S_ISREG(a.mode))
		return NULL;
	f = calloc(1, sizeof(*f));
	if (!f) {
		*rc = -ENOMEM;
		return NULL;
	}
	f->ino = ino;
	f->size = a.size;
	pagemap_init(&f->pages);
	*rc = pagemap_insert(&d->files, ino, f);
	if (*rc < 0) {
		free(f);
		return NULL;
	}
	return f;
}

static bool is_all_zero(const char *p, size_t len)
{
	return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

/* Caller holds the lock. Saves page idx of f as the backend has it now. */
static int page_save(struct durable *d, struct bk *b, struct dur_file *f, uint64_t idx)
{
	uint64_t off = idx * d->page_size, len = f->size - off; /* off < f->size */
	struct dur_page *p = malloc(sizeof(*p) + d->page_size);
	ssize_t n;
	int rc;

	/* not past the durable size: bytes appended since are not durable */
	len = len < d->page_size ? len : d->page_size;
	n = p ? bk_read(b, f->ino, 0, p->data, len, (off_t)off) : -ENOMEM;
	rc = n < 0 ? (int)n : 0;

	if (rc == 0) {
		p->len = (uint32_t)n;
		p->is_zero = is_all_zero(p->data, (size_t)n);
		rc = pagemap_insert(&f->pages, idx, p);
	}
	if (rc < 0)
		free(p);
	return rc;
}

/* Caller holds the lock. Page idx of f's durable image, saved first if it was not. */
static int page_get(struct durable *d, struct bk *b, struct dur_file *f, uint64_t idx,
		    struct dur_page **out)
{
	int rc = 0;

	*out = pagemap_lookup(&f->pages, idx);
	if (*out)
		return 0;
	if (idx * d->page_size < f->size) {
		rc = page_save(d, b, f, idx);
		*out = pagemap_lookup(&f->pages, idx);
		return rc;
	}
	*out = malloc(sizeof(**out) + d->page_size);
	if (!*out)
		return -ENOMEM;
	(*out)->len = 0;
	(*out)->is_zero = true;
	rc = pagemap_insert(&f->pages, idx, *out);
	if (rc < 0)
		free(*out);
	return rc;
}

/* Caller holds the lock. Cuts [off, off + len) out of f's torn tails: those bytes were
 * changed again. 0 or -ENOMEM (a tail split in two). */
static int tails_trim(struct dur_file *f, uint64_t off, uint64_t len)
{
	uint64_t end = len > UINT64_MAX - off ? UINT64_MAX : off + len;

	for (struct dur_tail **p = &f->tails, *t; (t = *p);) {
		uint64_t t_end = t->off + t->len;
		uint64_t left = off > t->off ? off - t->off : 0,
			 right = t_end > end ? t_end - end : 0;

		if (off >= t_end || end <= t->off) {
			p = &t->next;
			continue;
		}
		if (left && right) {
			struct dur_tail *r = malloc(sizeof(*r) + right);

			if (!r)
				return -ENOMEM;
			*r = (struct dur_tail){ t->next, end, right };
			memcpy(r->data, t->data + (end - t->off), right);
			t->next = r;
		} else if (right) {
			memmove(t->data, t->data + (end - t->off), right);
			t->off = end;
			t->len = right;
		} else if (!left) {
			*p = t->next;
			free(t);
			continue;
		}
		t->len = left ? left : t->len;
		p = &t->next;
	}
	return 0;
}

/* Caller holds the lock: durable_before_change() of f. */
static int change_locked(struct durable *d, struct bk *b, struct dur_file *f, uint64_t off,
			 uint64_t len)
{
	uint64_t end = len > f->size || off > f->size - len ? f->size : off + len;
	int rc = f->tails ? tails_trim(f, off, len) : 0;

	for (uint64_t idx = off / d->page_size; rc == 0 && idx * d->page_size < end; idx++) {
		if (!pagemap_lookup(&f->pages, idx))
			rc = page_save(d, b, f, idx);
	}
	return rc;
}

/* Takes d->lock and saves what [off, off + len) of ino holds before a change. The file's
 * record, or NULL: not a regular file (*rc 0), or *rc is -errno. */
static struct dur_file *change_begin(struct durable *d, struct bk *b, uint64_t ino, uint64_t off,
				     uint64_t len, int *rc)
{
	struct dur_file *f;

	pthread_mutex_lock(&d->lock);
	f = file_get(d, b, ino, rc);
	if (f)
		*rc = change_locked(d, b, f, off, len);
	return f;
}

int durable_before_change(struct durable *d, struct bk *b, uint64_t ino, uint64_t off, uint64_t len)
{
	int rc;

	change_begin(d, b, ino, off, len, &rc);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

/* Caller holds the lock. Copies out [off, off + len) of f's durable image. */
static int image_read(struct durable *d, struct bk *b, struct dur_file *f, uint64_t off,
		      uint64_t len, char *out)
{
	struct dur_page *p;
	int rc = 0;

	memset(out, 0, len);
	for (uint64_t pos = off; rc == 0 && pos < off + len && pos < f->size;) {
		uint64_t in = pos % d->page_size, n = d->page_size - in;

		n = n < off + len - pos ? n : off + len - pos;
		rc = page_get(d, b, f, pos / d->page_size, &p);
		if (rc == 0 && in < p->len)
			memcpy(out + (pos - off), p->data + in, n < p->len - in ? n : p->len - in);
		pos += n;
	}
	return rc;
}

/* Caller holds the lock. f's durable size grows to size: the bytes between read as 0. */
static int image_extend(struct durable *d, struct bk *b, struct dur_file *f, uint64_t size)
{
	struct dur_page *p;
	int rc = 0;

	if (size <= f->size)
		return 0;
	for (uint64_t idx = f->size / d->page_size; rc == 0 && idx * d->page_size < size; idx++) {
		uint64_t len = size - idx * d->page_size;

		rc = page_get(d, b, f, idx, &p);
		len = len < d->page_size ? len : d->page_size;
		if (rc == 0 && len > p->len) {
			memset(p->data + p->len, 0, len - p->len);
			p->len = (uint32_t)len;
		}
	}
	if (rc == 0)
		f->size = size;
	return rc;
}

/* Caller holds the lock. Writes data into f's durable image at [off, off + len), which
 * lies below its durable size. */
static int image_write(struct durable *d, struct bk *b, struct dur_file *f, uint64_t off,
		       const char *data, uint64_t len)
{
	struct dur_page *p;
	int rc = 0;

	for (uint64_t pos = off; rc == 0 && pos < off + len;) {
		uint64_t in = pos % d->page_size, n = d->page_size - in;

		n = n < off + len - pos ? n : off + len - pos;
		rc = page_get(d, b, f, pos / d->page_size, &p);
		if (rc == 0) {
			memcpy(p->data + in, data + (pos - off), n);
			p->is_zero = is_all_zero(p->data, p->len);
		}
		pos += n;
	}
	return rc;
}

/* Caller holds the lock. Keeps what f's durable image holds at [off, off + len) as a
 * torn tail. */
static int tail_add(struct durable *d, struct bk *b, struct dur_file *f, uint64_t off, uint64_t len)
{
	struct dur_tail *t = malloc(sizeof(*t) + len);
	int rc = t ? image_read(d, b, f, off, len, t->data) : -ENOMEM;

	if (rc < 0) {
		free(t);
		return rc;
	}
	*t = (struct dur_tail){ f->tails, off, len };
	f->tails = t;
	return 0;
}

int durable_torn_write(struct durable *d, struct bk *b, uint64_t ino, uint64_t off,
		       const void *data, uint64_t len, uint64_t keep)
{
	int rc;
	struct dur_file *f = change_begin(d, b, ino, off, len, &rc);

	if (f && rc == 0 && keep < len)
		rc = tail_add(d, b, f, off + keep, len - keep);
	if (f && rc == 0 && keep > 0)
		rc = image_extend(d, b, f, off + keep);
	if (f && rc == 0)
		rc = image_write(d, b, f, off, data, keep);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

void durable_sync(struct durable *d, uint64_t ino)
{
	pthread_mutex_lock(&d->lock);
	if (ino == 0)
		pagemap_remove_range(&d->files, 0, PAGEMAP_INDEX_MAX, file_free, NULL);
	else
		pagemap_remove_range(&d->files, ino, ino, file_free, NULL);
	pthread_mutex_unlock(&d->lock);
}

/* Caller holds the lock. f's present state in b becomes its durable image, but for its
 * torn tails, which keep the bytes from before their writes. */
static int file_fsync(struct durable *d, struct bk *b, struct dur_file *f)
{
	struct bk_attr a;
	int rc = bk_getattr(b, f->ino, &a);

	if (rc < 0)
		return rc;
	pagemap_destroy(&f->pages, page_free, NULL);
	pagemap_init(&f->pages);
	f->size = a.size;
	for (struct dur_tail *t = f->tails; t && rc == 0; t = t->next) {
		if (t->off < f->size)
			rc = image_write(d, b, f, t->off, t->data,
					 t->len < f->size - t->off ? t->len : f->size - t->off);
	}
	return rc;
}

int durable_fsync(struct durable *d, struct bk *b, uint64_t ino)
{
	struct dur_file *f;
	int rc = 0;

	pthread_mutex_lock(&d->lock);
	f = pagemap_lookup(&d->files, ino);
	if (f && f->tails)
		rc = file_fsync(d, b, f);
	else if (f)
		file_free(pagemap_remove(&d->files, ino), NULL);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

/* Caller holds the lock. What f changed: its saved pages, and what it grew by. */
static uint64_t file_pending_bytes(struct durable *d, struct bk *b, const struct dur_file *f)
{
	struct bk_attr a;
	uint64_t grown = bk_getattr(b, f->ino, &a) == 0 && a.size > f->size ? a.size - f->size : 0;

	return f->pages.count * d->page_size + grown;
}

struct durable_count durable_pending(struct durable *d, struct bk *b, uint64_t ino)
{
	struct durable_count c = { 0 };
	uint64_t first = ino ? ino : 0, last = ino ? ino : PAGEMAP_INDEX_MAX;

	pthread_mutex_lock(&d->lock);
	for (uint64_t i = pagemap_next_present(&d->files, first); i <= last && i != PAGEMAP_NONE;
	     i = i == PAGEMAP_INDEX_MAX ? PAGEMAP_NONE : pagemap_next_present(&d->files, i + 1)) {
		c.files++;
		c.bytes += file_pending_bytes(d, b, pagemap_lookup(&d->files, i));
	}
	pthread_mutex_unlock(&d->lock);
	return c;
}

/* Writes f's saved state back: the size of its last sync, then its pages. 0, or -errno
 * of the backend (-ENOENT: the file is gone, nothing to undo). */
static int file_revert(struct durable *d, struct bk *b, struct dur_file *f)
{
	const struct bk_setattr size = { .valid = BK_SET_SIZE, .size = f->size };
	struct bk_attr a;
	int rc = bk_setattr(b, f->ino, &size, &a);

	for (uint64_t i = pagemap_next_present(&f->pages, 0); rc == 0 && i != PAGEMAP_NONE;
	     i = pagemap_next_present(&f->pages, i + 1)) {
		const struct dur_page *p = pagemap_lookup(&f->pages, i);
		off_t off = (off_t)(i * d->page_size);
		ssize_t n = 0;

		if (p->is_zero && p->len)
			n = bk_fallocate(b, f->ino, 0, BK_FALLOC_PUNCH_HOLE | BK_FALLOC_KEEP_SIZE,
					 off, p->len);
		else if (p->len)
			n = bk_write(b, f->ino, 0, p->data, p->len, off);
		rc = n < 0 ? (int)n : 0;
	}
	return rc;
}

struct durable_count durable_revert(struct durable *d, struct bk *b, uint64_t ino, int *err)
{
	struct durable_count c = { 0 };
	uint64_t i = ino ? ino : 0, last = ino ? ino : PAGEMAP_INDEX_MAX;
	struct dur_file *f;

	*err = 0;
	pthread_mutex_lock(&d->lock);
	while ((i = pagemap_next_present(&d->files, i)) != PAGEMAP_NONE && i <= last) {
		int rc;

		f = pagemap_remove(&d->files, i);
		rc = file_revert(d, b, f);
		if (rc == 0) {
			c.files++;
			c.bytes += f->pages.count * d->page_size;
		} else if (rc != -ENOENT && *err == 0) {
			*err = rc;
		}
		file_free(f, NULL);
		if (i == PAGEMAP_INDEX_MAX)
			break;
		i++;
	}
	pthread_mutex_unlock(&d->lock);
	return c;
}
