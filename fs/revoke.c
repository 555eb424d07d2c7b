/* Revocation, hot unplug and replug (README, "Kernel notes"). A revocation runs
 * in phases over the inodes it covers:
 *   1. REVOKING: getattr answers size 0, data requests fail (dirty pages the kernel tries
 *      to write back are refused and counted as lost);
 *   2. each regular file the kernel holds: drop its pages, then stat it through the mount
 *      so the size-0 GETATTR makes the kernel truncate its page cache, private copies
 *      included: every mapped page now raises SIGBUS;
 *   3. REVOKED: every request fails;
 *   4. invalidate the attributes again, or the kernel would trust its cached size 0 and
 *      answer read(2) with end of file instead of the error.
 * Phase 2 runs for batches of up to KERN_ZERO_MAX files (the selfstat helper stats a
 * batch in one round trip); phases 3 and 4 run for each file of a batch right after its
 * phase 2, and once more for the whole subtree. Between a file's forced GETATTR and its
 * phase 4 (the rest of its batch's stats, about a millisecond; the kernel trusts even a
 * zero-timeout size for up to a clock tick) read(2) on an open descriptor can still see
 * end of file: an outcome of the revocation in flight, never after it.
 * Replug revives inodes with a new generation after dropping their names from the
 * kernel's cache, then looks each name up again through the mount (from the selfstat
 * helper, as every stat of the mount; selfstat.h says why): the new generation
 * makes the kernel mark its old inode bad, so old descriptors and mappings stay dead
 * (even fstat, whose GETATTR carries no handle to tell old from new) while new opens see
 * the backend's data. */
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

/* Phase 2 for the files queued, then phases 3 and 4 at once for each: until its
 * attributes are dropped, the kernel trusts the size 0 and read(2) on a descriptor
 * returns end of file instead of the error. A stat that fails (a path the daemon may not
 * search) leaves only COWed private pages behind; the revocation itself goes on. */
static void finish_batch(struct revocation *v)
{
	struct kern_zero *z = &v->batch;

	kern_zero_sync(v->fs, z);
	for (size_t i = 0; i < z->n; i++) {
		if (v->state == INODE_REVOKING)
			inode_set_state(v->fs->itab, z->inos[i], INODE_REVOKED, v->err, v->seq);
		kern_inval(v->fs, z->inos[i], -1, 0);
	}
	kern_zero_reset(z);
}

/* Phase 2 for one inode, queued: the stats of a batch of files cost one round trip to
 * the selfstat helper. A file the kernel does not hold has nothing cached. */
static int truncate_cache(void *ctx, const char *rel, uint64_t parent, const char *name,
			  const struct bk_attr *a)
{
	struct revocation *v = ctx;
	int rc;

	if (!S_ISREG(a->mode) || !inode_is_known(v->fs->itab, a->ino))
		return 0;
	rc = kern_zero_add(v->fs, &v->batch, rel, a->ino);
	if (rc == 0 && v->batch.n == KERN_ZERO_MAX)
		finish_batch(v);
	return rc;
}

/* Phase 4, and the pages of unlinked files no walk can reach: everything the kernel holds. */
static int inval_known(struct sfs *fs, off_t off)
{
	uint64_t *ids;
	size_t n;
	int rc = itab_known(fs->itab, &ids, &n);

	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = kern_inval(fs, ids[i], off, 0);
	free(ids);
	return rc;
}

int ev_revoke_in(struct ev *e, const char *rel, int err)
{
	struct sfs *fs = e->fs;
	struct ev_result *res = e->res;
	struct revocation v = { .fs = fs, .err = err, .state = INODE_REVOKING, .seq = e->seq };
	uint64_t parent, lost = atomic_load(&fs->stats.lost_bytes);
	int junk, rc;
	struct bk_attr a;

	rc = path_resolve(fs, rel, &parent, &a);
	if (rc == 0 && a.ino == BK_ROOT_INO)
		rc = -EINVAL; /* the whole backend: that is unplug */
	if (rc == 0 && inode_state(fs->itab, a.ino, &junk, &parent) != INODE_LIVE)
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
	ev_note(e, "lost_bytes", "%llu",
		(unsigned long long)(atomic_load(&fs->stats.lost_bytes) - lost));
	return rc;
}

int ev_revoke(struct sfs *fs, struct ev_result *res, const char *rel, int err)
{
	struct ev e;

	ev_begin(&e, fs, res, "revoke", rel);
	return ev_end(&e, ev_revoke_in(&e, rel, err));
}

/* Drops a name from the kernel's cache if the kernel holds its inode. */
static int drop_name(struct sfs *fs, uint64_t parent, const char *name, uint64_t ino)
{
	if (!*name || !inode_is_known(fs->itab, ino))
		return 0;
	return kern_inval_entry(fs, parent, name);
}

static int vanish_name(void *ctx, const char *rel, uint64_t parent, const char *name,
		       const struct bk_attr *a)
{
	return drop_name(ctx, parent, name, a->ino);
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
		rc = path_walk(fs, "", vanish_name, fs);
	if (rc == 0)
		rc = inval_known(fs, -1);
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

struct replug {
	struct sfs *fs;
	bool all;
	char **paths; /* paths in the mount of the names dropped, looked up once revived */
	size_t n;
	size_t dropped; /* names dropped: n, and those whose path was too long to look up */
};

/* Drops a name from the kernel's cache if its inode is to be revived. */
static int forget_name(void *ctx, const char *rel, uint64_t parent, const char *name,
		       const struct bk_attr *a)
{
	struct replug *p = ctx;
	char path[PATH_MAX];
	int err;
	uint64_t at;

	if (!*name || !inode_is_known(p->fs->itab, a->ino))
		return 0;
	if (!p->all && inode_state(p->fs->itab, a->ino, &err, &at) == INODE_LIVE)
		return 0;
	/* vanished names were dropped already; they come back through the lookup below */
	if (p->n % 64 == 0) {
		char **v = realloc(p->paths, (p->n + 64) * sizeof(*v));

		if (!v)
			return -ENOMEM;
		p->paths = v;
	}
	if (path_in_mount(p->fs, rel, path, sizeof(path)) == 0) {
		p->paths[p->n] = strdup(path);
		if (!p->paths[p->n])
			return -ENOMEM;
		p->n++;
	}
	p->dropped++;
	return drop_name(p->fs, parent, name, a->ino);
}

/* Looks the dropped names up again; frees the list. */
static void relookup(struct replug *p)
{
	selfstat_lookup(p->fs->self, p->paths, p->n);
	for (size_t i = 0; i < p->n; i++)
		free(p->paths[i]);
	free(p->paths);
}

int ev_replug(struct sfs *fs, struct ev_result *res)
{
	struct replug p = { .fs = fs };
	uint64_t revived;
	struct ev e;
	int rc;

	trigger_drain(fs); /* an unplug a trigger fired comes first */
	p.all = atomic_load(&fs->plug) != PLUG_ON;
	ev_begin(&e, fs, res, "replug", NULL);
	rc = path_walk(fs, "", forget_name, &p);
	revived = itab_revive(fs->itab, p.all);
	atomic_store(&fs->plug, PLUG_ON);
	ev_note(&e, "revived", "%llu", (unsigned long long)revived);
	ev_note(&e, "names_dropped", "%zu", p.dropped);
	relookup(&p);
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
