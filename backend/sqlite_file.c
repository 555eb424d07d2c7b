/* The sqlite backend's data slots: read, write, fallocate, lseek and fsync, plus
 * truncation for setattr. They keep the inode row (size, blocks, times) and the change
 * log in step with the chunks, which sqlite_chunk.c stores.
 *
 * Bytes past a file's size are always zero: truncation frees every page past the new
 * end and zeroes the tail of the last one, so a file that grows again never shows old
 * data. There is no byte limit of our own: fallocate refuses what the filesystem that
 * holds the database could not store, and a write that fills it fails with -ENOSPC. */
#include "sqlite.h"
#include "common.h"

#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define SQ_SIZE_INFINITY ((uint64_t)SQ_FILE_MAX + 1) /* an end past every file */

static int file_data_check(const struct sqlite_inode *in)
{
	if (S_ISDIR(in->mode))
		return -EISDIR;
	return S_ISREG(in->mode) ? 0 : -EINVAL;
}

int sqlite_file_truncate(struct sqlite_bk *s, struct sqlite_conn *c, struct sqlite_inode *in,
			 uint64_t size)
{
	int64_t freed = 0;

	if (size < in->size)
		freed = sqlite_chunk_zero(c, in->ino, size, SQ_SIZE_INFINITY);
	if (freed < 0)
		return (int)freed;
	in->blocks -= (uint64_t)freed;
	in->size = size;
	return 0;
}

ssize_t sqlite_read(struct bk *b, uint64_t ino, uint64_t fh, void *buf, size_t len, off_t off)
{
	struct sqlite_bk *s = sqlite_of(b);
	struct sqlite_inode in;
	struct sqlite_conn *c;
	ssize_t rc;

	if (off < 0)
		return -EINVAL;
	rc = sqlite_read_begin(s, &c);
	if (rc < 0)
		return rc;
	rc = sqlite_inode_get(c, ino, &in);
	if (rc == 0)
		rc = file_data_check(&in);
	if (rc == 0 && (uint64_t)off < in.size) {
		len = (size_t)((uint64_t)len < in.size - (uint64_t)off ? len
								       : in.size - (uint64_t)off);
		len = len > SSIZE_MAX ? SSIZE_MAX : len;
		rc = sqlite_chunk_read(c, ino, buf, len, (uint64_t)off);
		rc = rc < 0 ? rc : (ssize_t)len;
	}
	sqlite_read_end(s, c);
	return rc;
}

static int file_write_locked(struct sqlite_bk *s, struct sqlite_conn *c, uint64_t ino,
			     const void *buf, size_t len, uint64_t off)
{
	struct sqlite_change ch = { .kind = SQ_CH_DATA, .ino = ino, .off = off, .len = len };
	struct sqlite_inode in;
	int64_t added;
	int rc = sqlite_inode_get(c, ino, &in);

	if (rc == 0)
		rc = file_data_check(&in);
	if (rc < 0 || len == 0)
		return rc;
	added = sqlite_chunk_write(c, ino, buf, len, off);
	if (added < 0)
		return (int)added;
	in.blocks += (uint64_t)added;
	in.size = off + len > in.size ? off + len : in.size;
	sqlite_now(&in.mtime);
	in.ctime = in.mtime;
	rc = sqlite_inode_put(c, &in);
	ch.size = in.size;
	if (rc == 0)
		rc = sqlite_change_add(s, c, &ch);
	sqlite_write_account(s, len);
	return rc;
}

ssize_t sqlite_write(struct bk *b, uint64_t ino, uint64_t fh, const void *buf, size_t len,
		     off_t off)
{
	struct sqlite_bk *s = sqlite_of(b);
	struct sqlite_conn *c;
	int rc = bk_write_check(off, len, SQ_FILE_MAX);

	if (rc == 0)
		rc = sqlite_write_begin(s, &c);
	if (rc < 0)
		return rc;
	rc = file_write_locked(s, c, ino, buf, len, (uint64_t)off);
	rc = sqlite_write_end(s, c, rc);
	return rc < 0 ? rc : (ssize_t)len;
}

/* Allocates the missing pages of [off, end) if the filesystem could hold them. */
static int64_t file_alloc(struct sqlite_bk *s, struct sqlite_conn *c, uint64_t ino, uint64_t off,
			  uint64_t end)
{
	int64_t missing = sqlite_chunk_missing(c, ino, off, end);
	struct statvfs host;

	if (missing <= 0)
		return missing;
	if (statvfs(s->dir, &host) < 0)
		return -errno;
	if ((uint64_t)missing > (uint64_t)host.f_bavail * host.f_frsize / SQ_PAGE_SIZE)
		return -ENOSPC;
	return sqlite_chunk_alloc(c, ino, off, end);
}

static int file_falloc_locked(struct sqlite_bk *s, struct sqlite_conn *c, uint64_t ino, int mode,
			      uint64_t off, uint64_t end)
{
	bool is_zeroing = mode & (BK_FALLOC_PUNCH_HOLE | BK_FALLOC_ZERO_RANGE);
	struct sqlite_change ch = { .kind = SQ_CH_DATA, .ino = ino, .off = off, .len = end - off };
	struct sqlite_inode in;
	int64_t n;
	int rc = sqlite_inode_get(c, ino, &in);

	if (rc == 0 && !S_ISREG(in.mode))
		rc = S_ISDIR(in.mode) ? -EISDIR : -ENODEV;
	if (rc < 0)
		return rc;
	n = is_zeroing ? sqlite_chunk_zero(c, ino, off, end) : file_alloc(s, c, ino, off, end);
	if (n < 0)
		return (int)n;
	in.blocks = is_zeroing ? in.blocks - (uint64_t)n : in.blocks + (uint64_t)n;
	sqlite_now(&in.ctime);
	if (!(mode & BK_FALLOC_KEEP_SIZE) && end > in.size) {
		in.size = end;
		is_zeroing = true;
	}
	if (is_zeroing)
		in.mtime = in.ctime;
	rc = sqlite_inode_put(c, &in);
	ch.size = in.size;
	return rc == 0 ? sqlite_change_add(s, c, &ch) : rc;
}

int sqlite_fallocate(struct bk *b, uint64_t ino, uint64_t fh, int mode, off_t off, off_t len)
{
	struct sqlite_bk *s = sqlite_of(b);
	struct sqlite_conn *c;
	int rc = bk_falloc_check(mode, off, len, SQ_FILE_MAX);

	if (rc == 0)
		rc = sqlite_write_begin(s, &c);
	if (rc < 0)
		return rc;
	rc = file_falloc_locked(s, c, ino, mode, (uint64_t)off, (uint64_t)(off + len));
	return sqlite_write_end(s, c, rc);
}

off_t sqlite_lseek(struct bk *b, uint64_t ino, off_t off, int whence)
{
	struct sqlite_bk *s = sqlite_of(b);
	struct sqlite_inode in;
	struct sqlite_conn *c;
	off_t rc;

	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	rc = sqlite_read_begin(s, &c);
	if (rc < 0)
		return rc;
	rc = sqlite_inode_get(c, ino, &in);
	if (rc == 0 && !S_ISREG(in.mode))
		rc = -EINVAL;
	if (rc == 0 && (off < 0 || (uint64_t)off >= in.size))
		rc = -ENXIO;
	else if (rc == 0)
		rc = sqlite_chunk_seek(c, ino, (uint64_t)off, in.size, whence);
	sqlite_read_end(s, c);
	return rc;
}

/* The whole database is made durable, not only ino: there is one WAL. */
int sqlite_fopen(struct bk *b, uint64_t ino, int flags, uint64_t *fh_out)
{
	struct sqlite_bk *s = sqlite_of(b);
	struct sqlite_conn *c;
	int rc = sqlite_write_begin(s, &c);

	if (rc < 0)
		return rc;
	/* committed at once: another mount may unlink it and forget it any moment */
	rc = sqlite_write_end_now(s, c, sqlite_orphan_add(s, c, ino));
	*fh_out = ino;
	return rc;
}

int sqlite_fsync(struct bk *b, uint64_t ino, uint64_t fh, bool datasync)
{
	return sqlite_sync(sqlite_of(b));
}
