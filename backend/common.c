/* What every backend checks and does the same way (common.h). */
#include "common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int bk_name_check(const char *name)
{
	size_t len = strnlen(name, BK_NAME_MAX + 1);

	if (len > BK_NAME_MAX)
		return -ENAMETOOLONG;
	if (len == 0 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -EINVAL;
	return 0;
}

int bk_mknod_type_check(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
	case S_IFDIR:
	case S_IFCHR:
	case S_IFBLK:
	case S_IFIFO:
	case S_IFSOCK:
		return 0;
	default:
		return -EINVAL;
	}
}

int bk_write_check(off_t off, size_t len, uint64_t max_size)
{
	if (off < 0)
		return -EINVAL;
	return (uint64_t)off > max_size || len > max_size - (uint64_t)off ? -EFBIG : 0;
}

int bk_setattr_check(mode_t mode, const struct bk_setattr *s, uint64_t max_size)
{
	if (!(s->valid & BK_SET_SIZE))
		return 0;
	if (S_ISDIR(mode))
		return -EISDIR;
	if (!S_ISREG(mode))
		return -EINVAL;
	return s->size > max_size ? -EFBIG : 0;
}

void bk_setattr_apply(const struct bk_setattr *s, const struct timespec *now, bool is_resized,
		      const struct bk_inode_fields *f)
{
	if (s->valid & BK_SET_MODE)
		*f->mode = (*f->mode & S_IFMT) | (s->mode & 07777);
	if (s->valid & BK_SET_UID)
		*f->uid = s->uid;
	if (s->valid & BK_SET_GID)
		*f->gid = s->gid;
	if (s->valid & (BK_SET_ATIME | BK_SET_ATIME_NOW))
		*f->atime = s->valid & BK_SET_ATIME_NOW ? *now : s->atime;
	if (s->valid & (BK_SET_MTIME | BK_SET_MTIME_NOW))
		*f->mtime = s->valid & BK_SET_MTIME_NOW ? *now : s->mtime;
	else if (is_resized)
		*f->mtime = *now;
	if (s->valid & BK_SET_CTIME)
		*f->ctime = s->ctime;
	else if (s->valid)
		*f->ctime = *now;
}

int bk_falloc_check(int mode, off_t off, off_t len, uint64_t max_size)
{
	switch (mode) {
	case 0:
	case BK_FALLOC_KEEP_SIZE:
	case BK_FALLOC_PUNCH_HOLE | BK_FALLOC_KEEP_SIZE:
	case BK_FALLOC_ZERO_RANGE:
	case BK_FALLOC_ZERO_RANGE | BK_FALLOC_KEEP_SIZE:
		break;
	default:
		return -EOPNOTSUPP;
	}
	if (off < 0 || len <= 0)
		return -EINVAL;
	return (uint64_t)len > max_size || (uint64_t)off > max_size - (uint64_t)len ? -EFBIG : 0;
}

int bk_readdir_batched(struct bk *b, uint64_t dir, uint64_t cookie, size_t max,
		       bk_dir_batch_fn fetch, bk_emit_fn emit, void *ctx)
{
	struct bk_dirent *batch = malloc(max * sizeof(*batch));
	bool is_stopped = false;
	size_t n = 0;
	int rc;

	if (!batch)
		return -ENOMEM;
	do {
		rc = fetch(b, dir, cookie, batch, max, &n);
		for (size_t i = 0; rc == 0 && i < n; i++) {
			is_stopped = emit(ctx, batch[i].name, &batch[i].attr, batch[i].seq) != 0;
			cookie = batch[i].seq;
			if (is_stopped)
				break;
		}
	} while (rc == 0 && !is_stopped && n == max);
	free(batch);
	return rc;
}
