/* Revocation, hot unplug and replug (README, "Kernel notes"). A revocation runs
 * in phases over the inodes it covers:
 *   1. REVOKING: getattr answers size 0, data requests fail (dirty pages the kernel tries
 *      to write back are refused and counted as lost);
 *   2. each regular file whose pages the kernel may cache (the inode table notes every
 *      READ and WRITE): the kernel learns size 0 and truncates its page cache, private
 *      copies included, so every mapped page now raises SIGBUS (kern_zero_sync(): a
 *      listing of the file's directory tells it, or else a stat; dirty pages of a file
 *      open for writing are written back first, and refused: lost);
 *   3. REVOKED: every request fails;
 *   4. invalidate the attributes again, or the kernel could trust its cached size 0 and
 *      answer read(2) with end of file instead of the error.
 * Phase 2 runs for batches of up to KERN_ZERO_MAX files, one listing per directory of a
 * batch; phase 3 runs for each file of a batch right after its phase 2, and phases 3 and
 * 4 once more for the whole subtree. Until a file's phase 4, read(2) on an open descriptor
 * may see end of file: an outcome of the revocation in flight, never after it. A file
 * with nothing cached costs only its phase 4: its descriptors' READs reach the gate.
 * Replug revives inodes with a new generation (INODE_STALE until looked up again), then
 * has the kernel drop every name it caches, in one notification where the kernel has it:
 * the next lookup of a name carries the new generation, which makes the kernel mark its
 * old inode bad, so old descriptors and mappings stay dead while new opens see the
 * backend's data; until then the gate fails the old inode's requests (fstat's GETATTR
 * carries no handle to tell old from new). Neither walks the files the kernel holds. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "events.h"
#include "kern.h"
#include "path.h"
#include "selfstat.h"
#include "trigger.h"

struct revocation {
	struct sfs *fs;
	uint64_t seq;
	int err;
	enum inode_state state; /* what mark() sets */
	uint64_t files, dirs;
	struct kern_zero batch; /* files queued for phase 2 */
};

static int mark(void *ctx, const char *rel, uint64_t parent, const char *name,
		const struct bk_attr *a)
{
	struct revocation *v = ctx;
	int rc = inode_set_state(v->fs->itab, a->ino, v->state, v->err, v->seq);

	if (v->state == INODE_REVOKING && S_ISDIR(a->mode))
		v->dirs++;
	else if (v->state == INODE_REVOKING)
		v->files++;
	/* phase 4 for this inode: the cost follows the subtree, not all the kernel holds */
	if (rc == 0 && v->state == INODE_REVOKED && inode_is_known(v->fs->itab, a->ino))
		rc = kern_inval(v->fs, a->ino, -1, 0);
	return rc;
}

/* Phase 2 for the files queued, then phase 3 for each. A file whose size could not be
 * told (a path the daemon may not search) keeps only COWed private pages; the revocation
 * itself goes on. */
static void finish_batch(struct revocation *v)
{
	struct kern_zero *z = &v->batch;

	kern_zero_sync(v->fs, z);
	for (size_t i = 0; v->state == INODE_REVOKING && i < z->n; i++)
		inode_set_state(v->fs->itab, z->inos[i], INODE_REVOKED, v->err, v->seq);
	kern_zero_reset(z);
}

/* Phase 2 for one inode, queued: the stats of a batch of files cost one round trip to
 * the selfstat helper. A file the kernel does not hold, or that had no READ or WRITE since
 * its pages were last dropped, has nothing cached. */
static int truncate_cache(void *ctx, const char *rel, uint64_t parent, const char *name,
			  const struct bk_attr *a)
{
	struct revocation *v = ctx;
	int rc;

	if (!S_ISREG(a->mode) || !inode_is_known(v->fs->itab, a->ino) ||
	    !inode_take_cached(v->fs->itab, a->ino))
		return 0;
	rc = kern_zero_add(v->fs, &v->batch, rel, parent, a->ino);
	if (rc == 0 && v->batch.n == KERN_ZERO_MAX)
		finish_batch(v);
	return rc;
}

/* Phase 4 (off -1) for everything the kernel holds; or (off 0) the pages of what it may
 * still cache: unlinked files no walk can reach, and READs that raced the walk. */
static int inval_known(struct sfs *fs, off_t off)
{
	uint64_t *ids;
	size_t n;
	int rc = off < 0 ? itab_known(fs->itab, &ids, &n) : itab_take_cached(fs->itab, &ids, &n);

	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = kern_inval(fs, ids[i], off, 0);
	free(ids);
	return rc;
}

/* How phase 2 told the kernel the sizes: files sized by a listing, by a stat. */
static void note_sized(struct ev *e, const struct revocation *v)
{
	ev_note(e, "listed", "%llu", (unsigned long long)v->batch.listed);
	ev_note(e, "stated", "%llu", (unsigned long long)v->batch.stated);
}

static bool is_revoked(struct sfs *fs, uint64_t ino)
{
	uint64_t at;
	int err;
	enum inode_state s = inode_state(fs->itab, ino, &err, &at);

	return s == INODE_REVOKING || s == INODE_REVOKED;
}

int ev_revoke_mark(struct sfs *fs, const char *rel, int err)
{
	struct revocation v = { .fs = fs, .err = err, .state = INODE_REVOKING };
	uint64_t finished;

	evlog_seqs(fs->evlog, &v.seq, &finished);
	return path_walk(fs, rel, mark, &v);
}

int ev_revoke_in(struct ev *e, const char *rel, int err, bool is_marked)
{
	struct sfs *fs = e->fs;
	struct ev_result *res = e->res;
	struct revocation v = { .fs = fs, .err = err, .state = INODE_REVOKING, .seq = e->seq };
	uint64_t parent, lost = atomic_load(&fs->stats.lost_bytes);
	struct bk_attr a;
	int rc;

	rc = path_resolve(fs, rel, &parent, &a);
	if (rc == 0 && a.ino == BK_ROOT_INO)
		rc = -EINVAL; /* the whole backend: that is unplug */
	if (rc == 0 && !is_marked && is_revoked(fs, a.ino))
		rc = -EALREADY;
	if (rc < 0) {
		ev_result_text(res, EV_ERRMSG, "%s: %s", rel,
			       rc == -EINVAL	 ? "the root cannot be revoked; use unplug"
			       : rc == -EALREADY ? "already revoked"
						 : strerror(-rc));
		return rc;
	}
	rc = path_walk(fs, rel, mark, &v);
	if (rc == 0)
		rc = path_walk(fs, rel, truncate_cache, &v);
	finish_batch(&v);
	v.state = INODE_REVOKED;
	if (rc == 0)
		rc = path_walk(fs, rel, mark, &v);
	ev_note(e, "errno", "%s", strerrorname_np(err));
	ev_note(e, "files", "%llu", (unsigned long long)v.files);
	ev_note(e, "dirs", "%llu", (unsigned long long)v.dirs);
	note_sized(e, &v);
	ev_note(e, "lost_bytes", "%llu",
		(unsigned long long)(atomic_load(&fs->stats.lost_bytes) - lost));
	return rc;
}

int ev_revoke(struct sfs *fs, struct ev_result *res, const char *rel, int err)
{
	struct ev e;

	ev_begin(&e, fs, res, "revoke", rel);
	return ev_end(&e, ev_revoke_in(&e, rel, err, false));
}

int ev_revoke_fired(struct sfs *fs, struct ev_result *res, const char *rel, int err,
		    const char *cause)
{
	struct ev e;

	ev_begin(&e, fs, res, "revoke", rel);
	ev_note(&e, "cause", "%s", cause);
	return ev_end(&e, ev_revoke_in(&e, rel, err, true));
}

struct names {
	struct sfs *fs;
	bool is_stale_only; /* only the names of revived inodes */
};

/* Drops a name from the kernel's cache if the kernel holds its inode. */
static int drop_name(void *ctx, const char *rel, uint64_t parent, const char *name,
		     const struct bk_attr *a)
{
	struct names *d = ctx;
	uint64_t at;
	int err;

	if (!*name || !inode_is_known(d->fs->itab, a->ino))
		return 0;
	if (d->is_stale_only && inode_state(d->fs->itab, a->ino, &err, &at) != INODE_STALE)
		return 0;
	return kern_inval_entry(d->fs, parent, name);
}

/* Revived inodes' names go one by one, so that a revoke's replug costs the other files no
 * new lookup. */
int ev_drop_names(struct ev *e, bool is_stale_only)
{
	struct names d = { .fs = e->fs, .is_stale_only = is_stale_only };
	bool is_epoch = !is_stale_only && kern_inc_epoch(e->fs) == 0;

	ev_note(e, "names", "%s", is_epoch ? "all" : is_stale_only ? "revived" : "each");
	return is_epoch ? 0 : path_walk(e->fs, "", drop_name, &d);
}

int ev_unplug_in(struct ev *e, bool vanish, bool is_flipped)
{
	struct sfs *fs = e->fs;
	struct revocation v = { .fs = fs, .err = EIO };
	uint64_t lost = atomic_load(&fs->stats.lost_bytes);
	int on = PLUG_ON, rc = 0;

	/* a trigger turned the state already, in the request that fired it */
	if (!is_flipped && !atomic_compare_exchange_strong(&fs->plug, &on, PLUG_GOING)) {
		ev_result_text(e->res, EV_ERRMSG, "the backend is already unplugged");
		return -EALREADY;
	}
	atomic_store(&fs->unplugged_at, e->seq);
	rc = path_walk(fs, "", truncate_cache, &v);
	finish_batch(&v);
	if (rc == 0)
		rc = inval_known(fs, 0);
	atomic_store(&fs->plug, vanish ? PLUG_VANISHED : PLUG_OFF);
	if (rc == 0 && vanish)
		rc = ev_drop_names(e, false);
	if (rc == 0)
		rc = inval_known(fs, -1);
	note_sized(e, &v);
	ev_note(e, "lost_bytes", "%llu",
		(unsigned long long)(atomic_load(&fs->stats.lost_bytes) - lost));
	return rc;
}

int ev_unplug(struct sfs *fs, struct ev_result *res, bool vanish)
{
	struct ev e;

	ev_begin(&e, fs, res, vanish ? "unplug-vanish" : "unplug", NULL);
	return ev_end(&e, ev_unplug_in(&e, vanish, false));
}

int ev_unplug_fired(struct sfs *fs, struct ev_result *res, bool vanish, const char *cause)
{
	struct ev e;

	ev_begin(&e, fs, res, vanish ? "unplug-vanish" : "unplug", NULL);
	ev_note(&e, "cause", "%s", cause);
	return ev_end(&e, ev_unplug_in(&e, vanish, true));
}

int ev_replug(struct sfs *fs, struct ev_result *res)
{
	uint64_t revived;
	struct ev e;
	bool all;
	int rc;

	trigger_drain(fs); /* an unplug a trigger fired comes first */
	all = atomic_load(&fs->plug) != PLUG_ON;
	ev_begin(&e, fs, res, "replug", NULL);
	/* revived first: a lookup from now on carries the new generation */
	revived = itab_revive(fs->itab, all);
	atomic_store(&fs->plug, PLUG_ON);
	ev_note(&e, "revived", "%llu", (unsigned long long)revived);
	rc = ev_drop_names(&e, !all);
	return ev_end(&e, rc);
}

int ev_abort(struct sfs *fs, struct ev_result *res)
{
	struct ev e;
	int rc;

	ev_begin(&e, fs, res, "abort", NULL);
	fs->aborted = true;
	rc = kern_abort(fs);
	if (rc < 0) {
		fs->aborted = false;
		ev_result_text(res, EV_ERRMSG, "cannot abort the connection through fusectl: %s",
			       strerror(-rc));
	}
	return ev_end(&e, rc);
}
