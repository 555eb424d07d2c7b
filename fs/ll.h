/* The FUSE low-level handlers, grouped by object in ll_entry.c, ll_attr.c, ll_dir.c and
 * ll_file.c, and the reply helpers they share (ll.c). Each handler replies exactly once,
 * at its end; none sends kernel notifications. */
#ifndef SIGBUSFS_LL_H
#define SIGBUSFS_LL_H

#include "gate.h"
#include "opts.h"
#include "sfs.h"

/* The handlers, each counted by operation in fs->stats (ll_count.c). */
extern const struct fuse_lowlevel_ops sfs_ll_ops;

/* Counts an error reply to the request the calling thread serves (reply_err() calls it). */
void ll_count_error(fuse_req_t req);

static inline struct sfs *ll_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* What the daemon keeps for one open regular file; fi->fh points at it (0 for
 * directories, which have none). */
struct ll_handle {
	uint64_t gate_fh; /* gate_open()'s handle: the gate's value for this handle */
	uint64_t bk_fh;	  /* the backend's handle (bk_fopen()), 0 if it keeps none */
	uint64_t ino;
	struct ll_handle *prev, *next; /* in sfs.handles, under handles_lock */
};

static inline const struct ll_handle *ll_handle_of(const struct fuse_file_info *fi)
{
	return fi && fi->fh ? (const struct ll_handle *)(uintptr_t)fi->fh : NULL;
}

/* The handle value of fi for the gate (gate.h), GATE_NO_HANDLE when there is none. */
static inline uint64_t ll_fh(const struct fuse_file_info *fi)
{
	return ll_handle_of(fi) ? ll_handle_of(fi)->gate_fh : GATE_NO_HANDLE;
}

/* The backend's handle of fi for the data slots, 0 when there is none. */
static inline uint64_t ll_bk_fh(const struct fuse_file_info *fi)
{
	return ll_handle_of(fi) ? ll_handle_of(fi)->bk_fh : 0;
}

/* rc is 0 or -errno */
void reply_err(fuse_req_t req, int rc);
void attr_to_stat(const struct bk_attr *a, struct stat *st);
/* Counts the kernel's new reference to a->ino, then replies; uncounts if undelivered. */
void reply_entry(fuse_req_t req, uint64_t parent, const char *name, const struct bk_attr *a);
/* timeout: how long the kernel may trust the attributes, seconds */
void reply_attr(fuse_req_t req, const struct bk_attr *a, double timeout);
void fill_entry(struct sfs *fs, const struct bk_attr *a, struct fuse_entry_param *e);
/* The kernel dropped n references to ino; the backend is told once none is left. */
void forget_inode(struct sfs *fs, uint64_t ino, uint64_t n);
/* Ownership and mode of a new inode in parent, as POSIX and setgid directories say, for
 * the caller ctx describes (uid, gid). 0 or -errno. */
int new_inode_as(struct sfs *fs, const struct fuse_ctx *ctx, fuse_ino_t parent, mode_t mode,
		 dev_t rdev, struct bk_new *out);
/* new_inode_as() for the caller of req. */
int new_inode(fuse_req_t req, fuse_ino_t parent, mode_t mode, dev_t rdev, struct bk_new *out);
/* create and tmpfile (tmpfile.h): a regular file in parent, named name or, if name is NULL,
 * nameless (nlink 0), for the caller ctx describes; counted as the kernel's reference and
 * opened. Fills e and fi's handle and flags. 0 or -errno (nothing counted). The caller
 * replies, and calls create_undo() if the reply was not delivered. */
int create_file(struct sfs *fs, const struct fuse_ctx *ctx, fuse_ino_t parent, const char *name,
		mode_t mode, struct fuse_file_info *fi, struct fuse_entry_param *e);
/* Closes the handle and drops the reference create_file() made. */
void create_undo(struct sfs *fs, uint64_t ino, struct fuse_file_info *fi);

void ll_init(void *userdata, struct fuse_conn_info *conn);
/* The session ends: releases the handles of files still open (no RELEASE will come). */
void ll_destroy(void *userdata);

void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets);
void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void ll_readlink(fuse_req_t req, fuse_ino_t ino);
void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
	       const char *newname, unsigned int flags);

void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		struct fuse_file_info *fi);
void ll_statfs(fuse_req_t req, fuse_ino_t ino);
void ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
		 int flags);
void ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

void ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi);
void ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ll_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);

void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi);
void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
	      struct fuse_file_info *fi);
void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void ll_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
		  struct fuse_file_info *fi);
void ll_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi);

#endif
