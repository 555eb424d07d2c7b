/* FUSE_TMPFILE, answered under libfuse: the read hook takes each request off the device as
 * libfuse would, answers a TMPFILE request itself (the reply is CREATE's: fuse_entry_out
 * and fuse_open_out) and reads on, so libfuse only ever sees the other requests. The
 * hook runs in whichever loop thread reads, on the descriptor that thread reads (a cloned
 * one with -o clone_fd), and the reply goes back on that descriptor. Everything after the
 * reply (FORGET, RELEASE, data requests on the new node ID) reaches the usual handlers. */
#include "tmpfile.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ll.h"
#include "log.h"

/* What libfuse does with a timeout in seconds: whole seconds and nanoseconds. */
static void split_timeout(double t, uint64_t *sec_out, uint32_t *nsec_out)
{
	*sec_out = (uint64_t)t;
	*nsec_out = (uint32_t)((t - (double)*sec_out) * 1.0e9);
}

static void stat_to_attr(const struct stat *st, struct fuse_attr *out)
{
	memset(out, 0, sizeof(*out));
	out->ino = st->st_ino;
	out->size = (uint64_t)st->st_size;
	out->blocks = (uint64_t)st->st_blocks;
	out->atime = (uint64_t)st->st_atim.tv_sec;
	out->mtime = (uint64_t)st->st_mtim.tv_sec;
	out->ctime = (uint64_t)st->st_ctim.tv_sec;
	out->atimensec = (uint32_t)st->st_atim.tv_nsec;
	out->mtimensec = (uint32_t)st->st_mtim.tv_nsec;
	out->ctimensec = (uint32_t)st->st_ctim.tv_nsec;
	out->mode = st->st_mode;
	out->nlink = (uint32_t)st->st_nlink;
	out->uid = st->st_uid;
	out->gid = st->st_gid;
	out->rdev = (uint32_t)st->st_rdev;
	out->blksize = (uint32_t)st->st_blksize;
}

static void entry_to_out(const struct fuse_entry_param *e, struct fuse_entry_out *out)
{
	memset(out, 0, sizeof(*out));
	out->nodeid = e->ino;
	out->generation = e->generation;
	split_timeout(e->entry_timeout, &out->entry_valid, &out->entry_valid_nsec);
	split_timeout(e->attr_timeout, &out->attr_valid, &out->attr_valid_nsec);
	stat_to_attr(&e->attr, &out->attr);
}

/* The open flags create_file() can set. */
static void open_to_out(const struct fuse_file_info *fi, struct fuse_open_out *out)
{
	memset(out, 0, sizeof(*out));
	out->fh = fi->fh;
	if (fi->direct_io)
		out->open_flags |= FOPEN_DIRECT_IO;
	if (fi->keep_cache)
		out->open_flags |= FOPEN_KEEP_CACHE;
}

/* The reply to request unique: rc < 0 an error, else the entry and open handle. 0, or
 * -errno if the kernel did not take it (ENOENT: it gave the request up). */
static int reply(int fd, uint64_t unique, int rc, const struct fuse_entry_out *entry,
		 const struct fuse_open_out *handle)
{
	struct fuse_out_header h = { .error = rc < 0 ? rc : 0, .unique = unique };
	struct iovec iov[] = {
		{ &h, sizeof(h) },
		{ (void *)entry, sizeof(*entry) },
		{ (void *)handle, sizeof(*handle) },
	};
	int n = rc < 0 ? 1 : 3;

	for (int i = 0; i < n; i++)
		h.len += (uint32_t)iov[i].iov_len;
	return writev(fd, iov, n) < 0 ? -errno : 0;
}

/* Serves one FUSE_TMPFILE request of len bytes at h; its arguments are CREATE's. */
static void serve(struct sfs *fs, int fd, const struct fuse_in_header *h, size_t len)
{
	const struct fuse_create_in *in = (const void *)(h + 1);
	struct fuse_file_info fi = { 0 };
	struct fuse_entry_param e;
	struct fuse_entry_out entry;
	struct fuse_open_out handle;
	struct fuse_ctx ctx = { .uid = h->uid, .gid = h->gid, .pid = (pid_t)h->pid };
	int rc = -EINVAL;

	if (len >= sizeof(*h) + sizeof(*in)) {
		fi.flags = (int)in->flags;
		ctx.umask = in->umask;
		rc = create_file(fs, &ctx, h->nodeid, NULL, in->mode, &fi, &e);
	}
	log_debug("tmpfile: in %llu for pid %u: %s", (unsigned long long)h->nodeid, h->pid,
		  rc < 0 ? strerror(-rc) : "made");
	if (rc == 0) {
		entry_to_out(&e, &entry);
		open_to_out(&fi, &handle);
	}
	if (reply(fd, h->unique, rc, &entry, &handle) < 0 && rc == 0)
		create_undo(fs, e.ino, &fi);
}

static bool is_tmpfile(const void *buf, ssize_t n)
{
	const struct fuse_in_header *h = buf;

	return n >= (ssize_t)sizeof(*h) && h->opcode == FUSE_TMPFILE;
}

/* libfuse's read of the device, minus the TMPFILE requests. A read that fails returns -1
 * with its errno, as read(2) would. */
static ssize_t tmpfile_read(int fd, void *buf, size_t size, void *userdata)
{
	struct sfs *fs = userdata;
	ssize_t n = read(fd, buf, size);

	while (is_tmpfile(buf, n)) {
		serve(fs, fd, buf, (size_t)n);
		/* libfuse checks for an exit after each read and would not read again */
		if (fuse_session_exited(fs->se))
			return n;
		n = read(fd, buf, size);
	}
	return n;
}

static ssize_t tmpfile_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	(void)userdata;
	return writev(fd, iov, count);
}

/* What libfuse does without a custom io: replies spliced from a backend's descriptor
 * (ll_file.c) need it, or libfuse copies them through a buffer. */
static ssize_t tmpfile_splice_send(int fdin, off_t *offin, int fdout, off_t *offout, size_t len,
				   unsigned int flags, void *userdata)
{
	(void)userdata;
	return splice(fdin, offin, fdout, offout, len, flags);
}

int tmpfile_install(struct sfs *fs)
{
	const struct fuse_custom_io io = { .read = tmpfile_read,
					   .writev = tmpfile_writev,
					   .splice_send = tmpfile_splice_send };

	return fuse_session_custom_io(fs->se, &io, fuse_session_fd(fs->se));
}
