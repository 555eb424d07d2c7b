/* What every backend checks and does the same way, for backend authors: the argument
 * checks of setattr and fallocate, applying a setattr to an inode's fields, and readdir
 * in batches copied out under the backend's own lock. Nothing here holds state. */
#ifndef SIGBUSFS_BACKEND_COMMON_H
#define SIGBUSFS_BACKEND_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "backend.h"

/* A name a directory entry may have: -ENAMETOOLONG past BK_NAME_MAX bytes, -EINVAL for
 * "", "." and "..". */
int bk_name_check(const char *name);

/* A file type mknod creates: regular, directory, device, FIFO or socket; else -EINVAL. */
int bk_mknod_type_check(mode_t mode);

/* A write of len bytes at off: -EINVAL for a negative off, -EFBIG past max_size. */
int bk_write_check(off_t off, size_t len, uint64_t max_size);

/* setattr's check for an inode of type mode: a size change needs a regular file
 * (-EISDIR for a directory, -EINVAL otherwise) and a size up to max_size (-EFBIG). */
int bk_setattr_check(mode_t mode, const struct bk_setattr *s, uint64_t max_size);

/* The fields of an inode that setattr changes besides the size. */
struct bk_inode_fields {
	mode_t *mode;
	uid_t *uid;
	gid_t *gid;
	struct timespec *atime, *mtime, *ctime;
};

/* Applies s's mode, owner and times to f, as of now; is_resized says that the size
 * changed, which sets mtime unless s sets it. Any change sets ctime unless s does. */
void bk_setattr_apply(const struct bk_setattr *s, const struct timespec *now, bool is_resized,
		      const struct bk_inode_fields *f);

/* fallocate's check: a mode the backends implement (-EOPNOTSUPP), off >= 0 and len > 0
 * (-EINVAL), off + len up to max_size (-EFBIG). */
int bk_falloc_check(int mode, off_t off, off_t len, uint64_t max_size);

/* One directory entry of a batch; seq is its cookie. */
struct bk_dirent {
	uint64_t seq;
	struct bk_attr attr;
	char name[BK_NAME_MAX + 1];
};

/* Copies up to max entries of dir after cookie into batch (*n_out: how many), under
 * whatever lock the backend needs. 0 or -errno. */
typedef int (*bk_dir_batch_fn)(struct bk *b, uint64_t dir, uint64_t cookie, struct bk_dirent *batch,
			       size_t max, size_t *n_out);

/* readdir from batches of max entries fetched by fetch: emit runs with nothing held, so
 * it may call back into the backend. The readdir slot's contract. */
int bk_readdir_batched(struct bk *b, uint64_t dir, uint64_t cookie, size_t max,
		       bk_dir_batch_fn fetch, bk_emit_fn emit, void *ctx);

#endif
