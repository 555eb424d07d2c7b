/* Notifications, forced GETATTRs, store/retrieve and abort. Design note: the kernel
 * learns a server-side size change only from an attribute reply (README, "Kernel notes"):
 * a page fault never asks. So a size change invalidates the attributes and
 * then has a selfstat helper stat() the file through the mount (never a thread of the
 * daemon: selfstat.h says why); the GETATTR it causes is answered by a FUSE worker, and
 * the kernel truncates its page cache to the new size in the helper, before its stat()
 * returns (sizesync.h keeps clients' GETATTRs from applying it
 * first). The stat is repeated until the kernel holds the size: a concurrent client write
 * makes it discard the reply. A shrink tells the kernel before the backend changes
 * (kern_shrink()): a client READ cut short by a smaller backend would set the kernel's
 * size itself, without truncating anything, and the GETATTR would then change nothing. */
#include <errno.h>
#include <limits.h>
#include <linux/fuse.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kern.h"
#include "notify.h"
#include "path.h"
#include "selfstat.h"

#define SYNC_TRIES	   20
#define RETRIEVE_TIMEOUT_S 5
/* enum fuse_notify_code in the kernel's fuse.h (protocol 7.44); libfuse 3.14 has no call */
#define NOTIFY_INC_EPOCH 8

struct retrieval {
	pthread_mutex_t lock;
	pthread_cond_t done_cond;
	bool done;     /* guarded by lock */
	bool orphaned; /* guarded by lock: the waiter gave up; the reply frees */
	size_t len, got;
	char buf[]; /* len bytes */
};

/* ENOENT: the kernel has no inode for that node ID, so nothing is cached. ENOTCONN,
 * EBADF, ENODEV: the session is going away; there is nothing left to invalidate. */
static int quiet_errors(int rc)
{
	if (rc == -ENOENT || rc == -ENOTCONN || rc == -EBADF || rc == -ENODEV)
		return 0;
	return rc;
}

int kern_inval(struct sfs *fs, uint64_t ino, off_t off, off_t len)
{
	int rc = notify_inval_inode(fs->notify, fs->se, ino, off, len);

	atomic_fetch_add(&fs->stats.invals, 1);
	atomic_fetch_add(&fs->stats.notifications[SFS_N_INVAL_INODE], 1);
	inode_count(fs->itab, ino, IC_INVALS, 1);
	return quiet_errors(rc);
}

static int want_size(struct sfs *fs, uint64_t ino, uint64_t want, uint64_t *out)
{
	struct bk_attr a;
	int rc;

	if (want != KERN_SIZE_BACKEND) {
		*out = want;
		return 0;
	}
	rc = bk_getattr(fs->bk, ino, &a);
	*out = a.size;
	return rc;
}

/* Calls once(fs, arg) until it returns 0 (the kernel holds every size) or -errno, at most
 * SYNC_TRIES times, pausing longer each time: the kernel discards a GETATTR reply that
 * raced a client's write. 0, -errno, or -EAGAIN if a size never held. */
static int retry(struct sfs *fs, int (*once)(struct sfs *fs, void *arg), void *arg)
{
	int rc = 0;

	for (int i = 0; i < SYNC_TRIES; i++) {
		rc = once(fs, arg);
		if (rc <= 0)
			break;
		usleep(1000u << (i < 6 ? i : 6));
	}
	return rc < 0 ? rc : rc ? -EAGAIN : 0;
}

/* Holds other clients' GETATTRs and LOOKUPs of the n inodes while the selfstat helpers
 * make the kernel learn size (sizesync.h). */
static void hold(struct sfs *fs, const uint64_t *inos, size_t n, uint64_t size)
{
	pid_t pids[SELFSTAT_MAX];
	size_t npids = selfstat_pids(fs->self, pids);

	sizesync_begin(&fs->sizesync, inos, n, size, pids, npids);
}

struct sync_one {
	const char *path;
	uint64_t ino, want;
};

/* One try: invalidate the attributes, stat (the GETATTR the kernel applies), and read
 * back what the kernel kept. stat(2) alone is not proof: it reports the reply even when
 * the kernel discarded it for racing a client's write. 0 when the kernel holds the size,
 * 1 if not yet. */
static int sync_once(struct sfs *fs, void *arg)
{
	const struct sync_one *o = arg;
	uint64_t size = 0, held = 0;
	int rc = kern_inval(fs, o->ino, -1, 0);

	if (rc == 0)
		rc = want_size(fs, o->ino, o->want, &size);
	if (rc == 0)
		rc = selfstat_force(fs->self, o->path, &held);
	return rc < 0 ? rc : held != size;
}

/* Forces want (or the backend's size) into the kernel, then runs apply (if any) before
 * other clients are answered; see kern_shrink(). */
static int force_size(struct sfs *fs, const char *rel, uint64_t ino, uint64_t want,
		      int (*apply)(void *arg), void *arg)
{
	char path[PATH_MAX];
	int rc = path_in_mount(fs, rel, path, sizeof(path)), applied = 0;

	if (rc < 0) {
		if (apply)
			apply(arg);
		return rc;
	}
	hold(fs, &ino, 1, want);
	rc = retry(fs, sync_once, &(struct sync_one){ .path = path, .ino = ino, .want = want });
	if (apply)
		applied = apply(arg);
	sizesync_end(&fs->sizesync);
	if (applied < 0) /* the backend kept its size: take back what the kernel was told */
		rc = kern_sync_size(fs, rel, ino, KERN_SIZE_BACKEND);
	return rc;
}

int kern_sync_size(struct sfs *fs, const char *rel, uint64_t ino, uint64_t want)
{
	return force_size(fs, rel, ino, want, NULL, NULL);
}

int kern_shrink(struct sfs *fs, const char *rel, uint64_t ino, uint64_t size,
		int (*apply)(void *arg), void *arg)
{
	return force_size(fs, rel, ino, size, apply, arg);
}

int kern_zero_add(struct sfs *fs, struct kern_zero *z, const char *rel, uint64_t parent,
		  uint64_t ino)
{
	char path[PATH_MAX], *slash;

	z->paths[z->n] = NULL;
	z->names[z->n] = NULL;
	if (path_in_mount(fs, rel, path, sizeof(path)) == 0) {
		z->paths[z->n] = strdup(path);
		if (!z->paths[z->n])
			return -ENOMEM;
		slash = strrchr(z->paths[z->n], '/'); /* the path is absolute */
		z->names[z->n] = slash + 1;
	}
	z->parents[z->n] = parent;
	z->inos[z->n++] = ino;
	return 0;
}

struct sync_zero {
	const struct kern_zero *z;
	bool is_left[KERN_ZERO_MAX]; /* the kernel does not hold size 0 yet */
	bool is_retry;		     /* the attributes need invalidating again */
};

/* One try for the files left: their attributes invalidated (the first time, dropping
 * their pages did it), then their stats in one request. A file whose stat fails is given
 * up. The number of files left, or -errno. */
static int zero_once(struct sfs *fs, void *arg)
{
	struct sync_zero *t = arg;
	char *paths[KERN_ZERO_MAX] = { 0 };
	size_t at[KERN_ZERO_MAX], n = 0;
	uint64_t held[KERN_ZERO_MAX];
	int errs[KERN_ZERO_MAX], left = 0, rc;

	for (size_t i = 0; i < t->z->n; i++) {
		if (!t->is_left[i])
			continue;
		if (t->is_retry)
			kern_inval(fs, t->z->inos[i], -1, 0);
		paths[n] = t->z->paths[i];
		at[n++] = i;
	}
	rc = selfstat_force_many(fs->self, paths, n, errs, held);
	for (size_t j = 0; rc == 0 && j < n; j++) {
		t->is_left[at[j]] = errs[j] == 0 && held[j] != 0;
		left += t->is_left[at[j]];
	}
	t->is_retry = true;
	return rc < 0 ? rc : left;
}

/* A directory is listed when the batch holds this many of its files: a listing costs
 * three round trips (open, READDIRPLUS, release), a stat one. */
#define KERN_LIST_MIN 4

struct by_parent {
	uint64_t parent;
	size_t i; /* in the batch */
};

static int parent_cmp(const void *a, const void *b)
{
	const struct by_parent *x = a, *y = b;

	if (x->parent != y->parent)
		return (x->parent > y->parent) - (x->parent < y->parent);
	return (x->i > y->i) - (x->i < y->i);
}

/* The files to size by listings, those whose directory holds at least KERN_LIST_MIN of
 * them, into order (their indices in z, grouped by directory; their count into *m), the
 * names the listings offer into offer (NULL for the others), and the helper whose listing
 * holds each into listers: the one that is handed its path. */
static void zero_order(struct sfs *fs, const struct kern_zero *z, size_t *order, size_t *m,
		       char **offer, pid_t *listers)
{
	struct by_parent o[KERN_ZERO_MAX];
	size_t named = 0;

	*m = 0;
	for (size_t i = 0; i < z->n; i++) {
		offer[i] = NULL;
		listers[i] = 0;
		if (z->names[i])
			o[named++] = (struct by_parent){ z->parents[i], i };
	}
	qsort(o, named, sizeof(o[0]), parent_cmp);
	for (size_t a = 0, b; a < named; a = b) {
		for (b = a; b < named && o[b].parent == o[a].parent; b++)
			;
		for (size_t k = a; b - a >= KERN_LIST_MIN && k < b; k++)
			order[(*m)++] = o[k].i;
	}
	for (size_t k = 0; k < *m; k++) {
		offer[order[k]] = z->names[order[k]];
		listers[order[k]] = selfstat_pid_of(fs->self, k, *m);
	}
}

/* The sizes of the files in directories worth a listing, through those listings; files
 * whose size 0 held are no longer left. 0 or -errno; a directory that cannot be listed
 * leaves its files for their stats. */
static int zero_listed(struct sfs *fs, struct sync_zero *t)
{
	const struct kern_zero *z = t->z;
	char *offer[KERN_ZERO_MAX], *paths[KERN_ZERO_MAX];
	pid_t listers[KERN_ZERO_MAX];
	size_t order[KERN_ZERO_MAX], m;
	uint64_t held[KERN_ZERO_MAX];
	int errs[KERN_ZERO_MAX], rc;

	zero_order(fs, z, order, &m, offer, listers);
	if (m == 0)
		return 0;
	sizesync_offer(&fs->sizesync, z->inos, z->parents, offer, listers, z->n);
	for (size_t k = 0; k < m; k++)
		paths[k] = z->paths[order[k]];
	rc = selfstat_list_many(fs->self, paths, m, errs, held);
	for (size_t k = 0; rc == 0 && k < m; k++)
		t->is_left[order[k]] = errs[k] != 0 || held[k] != 0;
	return rc;
}

/* Files of t not sized yet. */
static size_t count_left(const struct sync_zero *t)
{
	size_t n = 0;

	for (size_t i = 0; i < t->z->n; i++)
		n += t->is_left[i];
	return n;
}

int kern_zero_sync(struct sfs *fs, struct kern_zero *z)
{
	struct sync_zero t = { .z = z };
	size_t named;
	int rc;

	/* held first: no client's GETATTR may bring back the attributes the page
	 * invalidation drops, or answer with a size, before the helpers' listings and stats */
	hold(fs, z->inos, z->n, 0);
	for (size_t i = 0; i < z->n; i++) {
		/* dirty pages go through writeback first (the gate refuses them: lost); the
		 * size 0 would drop them unseen. No name: the pages at least. */
		if (!z->names[i] || inode_is_written(fs->itab, z->inos[i]))
			kern_inval(fs, z->inos[i], 0, 0);
		t.is_left[i] = z->paths[i] != NULL;
	}
	named = count_left(&t);
	rc = zero_listed(fs, &t);
	z->stated += count_left(&t);
	z->listed += named - count_left(&t);
	/* the stats need the attributes gone: a listing, or nothing, left them trusted */
	t.is_retry = true;
	if (rc == 0)
		rc = retry(fs, zero_once, &t);
	sizesync_end(&fs->sizesync);
	return rc;
}

void kern_zero_reset(struct kern_zero *z)
{
	for (size_t i = 0; i < z->n; i++)
		free(z->paths[i]);
	z->n = 0;
}

int kern_inval_entry(struct sfs *fs, uint64_t parent, const char *name)
{
	atomic_fetch_add(&fs->stats.notifications[SFS_N_INVAL_ENTRY], 1);
	return quiet_errors(fuse_lowlevel_notify_inval_entry(fs->se, parent, name, strlen(name)));
}

int kern_inc_epoch(struct sfs *fs)
{
	struct fuse_out_header h = { .len = sizeof(h), .error = NOTIFY_INC_EPOCH };
	ssize_t n = write(fuse_session_fd(fs->se), &h, sizeof(h));

	atomic_fetch_add(&fs->stats.notifications[SFS_N_INC_EPOCH], 1);
	if (n < 0)
		return -errno;
	return n == sizeof(h) ? 0 : -EIO;
}

int kern_store(struct sfs *fs, uint64_t ino, off_t off, const void *buf, size_t len)
{
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(len);

	bv.buf[0].mem = (void *)buf;
	inode_note_cached(fs->itab, ino);
	atomic_fetch_add(&fs->stats.notifications[SFS_N_STORE], 1);
	return fuse_lowlevel_notify_store(fs->se, ino, off, &bv, 0);
}

static void retrieval_free(struct retrieval *t)
{
	pthread_cond_destroy(&t->done_cond);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

void ll_retrieve_reply(fuse_req_t req, void *cookie, fuse_ino_t ino, off_t offset,
		       struct fuse_bufvec *bufv)
{
	struct retrieval *t = cookie;
	struct fuse_bufvec dst = FUSE_BUFVEC_INIT(t->len);
	ssize_t n;
	bool orphaned;

	dst.buf[0].mem = t->buf;
	n = fuse_buf_copy(&dst, bufv, 0);
	pthread_mutex_lock(&t->lock);
	t->got = n > 0 ? (size_t)n : 0;
	t->done = true;
	orphaned = t->orphaned;
	pthread_cond_signal(&t->done_cond);
	pthread_mutex_unlock(&t->lock);
	if (orphaned)
		retrieval_free(t);
	fuse_reply_none(req);
}

/* Waits for the reply; on timeout hands the retrieval over to the reply, if one comes. */
static int wait_retrieve(struct retrieval *t)
{
	struct timespec until;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += RETRIEVE_TIMEOUT_S;
	pthread_mutex_lock(&t->lock);
	while (!t->done && rc == 0)
		rc = pthread_cond_timedwait(&t->done_cond, &t->lock, &until);
	t->orphaned = !t->done;
	pthread_mutex_unlock(&t->lock);
	return t->orphaned ? -ETIMEDOUT : 0;
}

ssize_t kern_retrieve(struct sfs *fs, uint64_t ino, off_t off, void *buf, size_t len)
{
	struct retrieval *t = calloc(1, sizeof(*t) + len);
	int rc;

	if (!t)
		return -ENOMEM;
	t->len = len;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->done_cond, NULL);
	atomic_fetch_add(&fs->stats.notifications[SFS_N_RETRIEVE], 1);
	rc = fuse_lowlevel_notify_retrieve(fs->se, ino, len, off, t);
	if (rc == 0)
		rc = wait_retrieve(t);
	else if (rc == -ENOENT)
		rc = 0; /* the kernel holds no inode: nothing cached */
	if (rc == -ETIMEDOUT)
		return rc; /* t now belongs to the reply, if it ever comes */
	memcpy(buf, t->buf, t->got);
	len = t->got;
	retrieval_free(t);
	return rc < 0 ? rc : (ssize_t)len;
}

int kern_abort(struct sfs *fs)
{
	return selfstat_abort(fs->self);
}
