/* Events on file contents and sizes: inval, write, truncate, punch, store and audit.
 * Each changes the backend first and tells the kernel second, so that a fault racing
 * with the event reads either the old state from the cache or the new one from the
 * backend, never a mix the backend never held. A shrink is the exception: the kernel
 * learns the size first (kern_shrink() says why). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "events.h"
#include "kern.h"
#include "path.h"

#define AUDIT_CHUNK (64 * 1024) /* a multiple of every page size */

uint64_t ev_page_down(const struct sfs *fs, uint64_t off)
{
	return off & ~(fs->page_size - 1);
}

int ev_inval(struct sfs *fs, struct ev_result *res, const char *rel, uint64_t off, uint64_t len)
{
	struct bk_attr a;
	struct ev e;
	int rc;

	ev_begin(&e, fs, res, "inval", rel);
	rc = ev_file(&e, rel, &a);
	if (rc == 0) {
		ev_note(&e, "off", "%llu", (unsigned long long)off);
		ev_note(&e, "len", "%llu", (unsigned long long)len);
		rc = kern_inval(fs, a.ino, (off_t)off, (off_t)len);
	}
	return ev_end(&e, rc);
}

int ev_publish(struct sfs *fs, const char *rel, uint64_t ino, uint64_t off, uint64_t len,
	       bool size_changed)
{
	int rc = kern_inval(fs, ino, (off_t)ev_page_down(fs, off),
			    (off_t)len + (off_t)(off % fs->page_size));

	if (rc == 0 && size_changed)
		rc = kern_sync_size(fs, rel, ino, KERN_SIZE_BACKEND);
	return rc;
}

int ev_write(struct sfs *fs, struct ev_result *res, const char *rel, uint64_t off, const void *data,
	     size_t len, bool notify)
{
	struct bk_attr a;
	struct ev e;
	ssize_t n;
	int rc;

	ev_begin(&e, fs, res, notify ? "write" : "write-no-notify", rel);
	rc = ev_file_changing(&e, rel, &a);
	if (rc < 0)
		return ev_end(&e, rc);
	n = len ? bk_write(fs->bk, a.ino, 0, data, len, (off_t)off) : 0;
	if (n < 0) {
		ev_result_text(res, EV_ERRMSG, "%s: backend write: %s", rel, strerror((int)-n));
		return ev_end(&e, (int)n);
	}
	ev_note(&e, "off", "%llu", (unsigned long long)off);
	ev_note(&e, "bytes", "%zd", n);
	ev_note(&e, "size", "%llu", (unsigned long long)(off + len > a.size ? off + len : a.size));
	if (notify && n > 0)
		rc = ev_publish(fs, rel, a.ino, off, len, off + len > a.size);
	return ev_end(&e, rc);
}

struct shrink {
	struct sfs *fs;
	uint64_t ino;
	struct bk_setattr s;
	struct bk_attr after;
	int rc;
};

static int resize_backend(void *arg)
{
	struct shrink *k = arg;

	k->rc = bk_setattr(k->fs->bk, k->ino, &k->s, &k->after);
	return k->rc;
}

int ev_truncate(struct sfs *fs, struct ev_result *res, const char *rel, uint64_t size)
{
	struct shrink k = { .fs = fs,
			    .s = { .valid = BK_SET_SIZE | BK_SET_MTIME_NOW, .size = size } };
	struct bk_attr a;
	struct ev e;
	int rc, sync = 0;

	ev_begin(&e, fs, res, "truncate", rel);
	rc = ev_file_changing(&e, rel, &a);
	if (rc == 0)
		k.ino = a.ino;
	/* a shrink truncates the kernel's page cache past the new end, private copies
	 * included, through the GETATTR that tells it the size, before the backend changes */
	if (rc == 0 && size < a.size)
		sync = kern_shrink(fs, rel, a.ino, size, resize_backend, &k);
	else if (rc == 0 && resize_backend(&k) == 0)
		sync = kern_sync_size(fs, rel, a.ino, KERN_SIZE_BACKEND);
	if (rc == 0 && k.rc < 0) {
		ev_result_text(res, EV_ERRMSG, "%s: truncate to %llu: %s", rel,
			       (unsigned long long)size, strerror(-k.rc));
		rc = k.rc;
	}
	if (rc < 0)
		return ev_end(&e, rc);
	ev_note(&e, "old_size", "%llu", (unsigned long long)a.size);
	ev_note(&e, "size", "%llu", (unsigned long long)size);
	/* then the page holding the old or new end is read again */
	rc = sync;
	if (rc == 0)
		rc = kern_inval(fs, a.ino, (off_t)ev_page_down(fs, size < a.size ? size : a.size),
				0);
	return ev_end(&e, rc);
}

int ev_punch(struct sfs *fs, struct ev_result *res, const char *rel, uint64_t off, uint64_t len)
{
	struct bk_attr a;
	struct ev e;
	int rc;

	ev_begin(&e, fs, res, "punch", rel);
	rc = ev_file_changing(&e, rel, &a);
	if (rc == 0)
		rc = bk_fallocate(fs->bk, a.ino, 0, BK_FALLOC_PUNCH_HOLE | BK_FALLOC_KEEP_SIZE,
				  (off_t)off, (off_t)len);
	if (rc < 0) {
		ev_result_text(res, EV_ERRMSG, "%s: punch: %s", rel, strerror(-rc));
		return ev_end(&e, rc);
	}
	ev_note(&e, "off", "%llu", (unsigned long long)off);
	ev_note(&e, "len", "%llu", (unsigned long long)len);
	rc = ev_publish(fs, rel, a.ino, off, len, false);
	return ev_end(&e, rc);
}

/* The kernel marks only whole pages uptodate from a store, so the store covers whole
 * pages: the backend's bytes around the stored ones fill them. */
static int store_pages(struct sfs *fs, uint64_t ino, uint64_t size, uint64_t off, const void *data,
		       size_t len)
{
	uint64_t start = ev_page_down(fs, off),
		 end = ev_page_down(fs, off + len + fs->page_size - 1);
	char *buf;
	ssize_t n;
	int rc;

	if (end > size)
		end = size;
	buf = calloc(1, end - start);
	if (!buf)
		return -ENOMEM;
	n = bk_read(fs->bk, ino, 0, buf, end - start, (off_t)start);
	rc = n < 0 ? (int)n : 0;
	if (rc == 0) {
		memcpy(buf + (off - start), data, len);
		rc = kern_store(fs, ino, (off_t)start, buf, end - start);
	}
	free(buf);
	return rc;
}

int ev_store(struct sfs *fs, struct ev_result *res, const char *rel, uint64_t off, const void *data,
	     size_t len)
{
	struct bk_attr a;
	struct ev e;
	int rc;

	ev_begin(&e, fs, res, "store", rel);
	rc = ev_file(&e, rel, &a);
	if (rc == 0 && (off > a.size || len > a.size - off)) {
		ev_result_text(res, EV_ERRMSG, "%s: store must lie inside the file (size %llu)",
			       rel, (unsigned long long)a.size);
		rc = -EINVAL;
	}
	if (rc == 0 && len > 0)
		rc = store_pages(fs, a.ino, a.size, off, data, len);
	if (rc == -ENOENT)
		ev_result_text(res, EV_ERRMSG,
			       "%s: the kernel holds no inode for it (not looked up)", rel);
	if (rc == 0) {
		ev_note(&e, "off", "%llu", (unsigned long long)off);
		ev_note(&e, "bytes", "%zu", len);
	}
	return ev_end(&e, rc);
}

/* What audit found, in bytes: the stale ranges, neighbours merged, all of them. */
struct audit_result {
	uint64_t cached, stale;
	struct audit_range {
		uint64_t off, len;
	} * v;
	size_t n, cap;
};

static int audit_stale(struct audit_result *res, uint64_t off, uint64_t len)
{
	struct audit_range *last = res->n ? &res->v[res->n - 1] : NULL, *v;

	res->stale += len;
	if (last && last->off + last->len == off) {
		last->len += len;
		return 0;
	}
	if (res->n == res->cap) {
		v = realloc(res->v, (res->cap ? res->cap * 2 : 16) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		res->v = v;
		res->cap = res->cap ? res->cap * 2 : 16;
	}
	res->v[res->n++] = (struct audit_range){ off, len };
	return 0;
}

static int audit_compare(struct audit_result *res, size_t page, uint64_t off, const char *cache,
			 const char *backend, size_t n)
{
	int rc = 0;

	for (size_t done = 0; done < n && rc == 0; done += page) {
		size_t len = n - done < page ? n - done : page;

		res->cached += len;
		if (memcmp(cache + done, backend + done, len) != 0)
			rc = audit_stale(res, off + done, len);
	}
	return rc;
}

static int audit_file(struct sfs *fs, const struct bk_attr *a, struct audit_result *res)
{
	char *cache = malloc(AUDIT_CHUNK), *backend = malloc(AUDIT_CHUNK);
	uint64_t off = 0;
	int rc = cache && backend ? 0 : -ENOMEM;

	while (rc == 0 && off < a->size) {
		ssize_t n = kern_retrieve(fs, a->ino, (off_t)off, cache, AUDIT_CHUNK);
		ssize_t m = n > 0 ? bk_read(fs->bk, a->ino, 0, backend, (size_t)n, (off_t)off) : 0;

		if (n < 0 || m < 0) {
			rc = n < 0 ? (int)n : (int)m;
			break;
		}
		rc = audit_compare(res, fs->page_size, off, cache, backend, (size_t)m);
		/* a short answer stops before a page that is not cached: skip that page */
		off += (uint64_t)n == AUDIT_CHUNK ? AUDIT_CHUNK
						  : ev_page_down(fs, (uint64_t)n) + fs->page_size;
	}
	free(cache);
	free(backend);
	return rc;
}

int ev_audit(struct sfs *fs, struct ev_result *res, const char *rel)
{
	struct audit_result found = { 0 };
	struct bk_attr a;
	uint64_t parent;
	int rc = path_resolve(fs, rel, &parent, &a);

	if (rc == 0 && !S_ISREG(a.mode))
		rc = -EINVAL;
	if (rc == 0)
		rc = audit_file(fs, &a, &found);
	if (rc < 0) {
		ev_result_text(res, EV_ERRMSG, "%s: audit: %s", rel, strerror(-rc));
		goto out_free;
	}
	ev_result_text(res, EV_SUMMARY, "%llu bytes cached, %llu of them differ from the backend",
		       (unsigned long long)found.cached, (unsigned long long)found.stale);
	ev_result_note(res, "size", "%llu", (unsigned long long)a.size);
	ev_result_note(res, "cached_bytes", "%llu", (unsigned long long)found.cached);
	ev_result_note(res, "stale_bytes", "%llu", (unsigned long long)found.stale);
	for (size_t i = 0; i < found.n; i++)
		ev_result_note(res, "stale", "off=%llu len=%llu",
			       (unsigned long long)found.v[i].off,
			       (unsigned long long)found.v[i].len);
out_free:
	free(found.v);
	return rc;
}
