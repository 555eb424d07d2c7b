/* Lookup counting. Design note: every entry reply (lookup, create, mknod, mkdir, symlink,
 * link, readdirplus) counts one reference before the reply is sent and uncounts it if the
 * reply could not be delivered; FORGET subtracts what the kernel says it dropped. When the
 * count reaches zero the entry is removed (unless the inode is revoked: that must outlive
 * the kernel's references), and only then may the backend free an inode that has no links
 * left. The root is never counted: the kernel never forgets it.
 *
 * An open file holds its entry (inode_hold) so that its requests reach the entry's state
 * without the table lock: an entry stays in the table while held, so every state change
 * lands in the one entry the holders see. State, errno, revocation seq and counters are
 * atomics written under the lock; the state is stored last and loaded first. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inode.h"

struct inode {
	uint64_t ino;
	uint64_t nlookup;  /* guarded by itab->lock */
	uint64_t holds;	   /* open files holding the entry; guarded by itab->lock */
	uint64_t writers;  /* of those, open for writing; guarded by itab->lock */
	uint64_t gen;	   /* guarded by itab->lock */
	_Atomic int state; /* enum inode_state; written under itab->lock */
	_Atomic int err;
	_Atomic uint64_t revoked_at;
	_Atomic uint64_t count[IC_NR];
	_Atomic bool is_cached; /* the kernel may cache pages: a READ or WRITE since taken */
	uint64_t parent;	/* the last entry reply's name: guarded by itab->lock */
	char *name;		/* malloc()ed, or NULL */
	struct inode *next;	/* guarded by itab->lock */
};

static void entry_free(struct inode *n)
{
	if (n)
		free(n->name);
	free(n);
}

struct itab {
	pthread_mutex_t lock;
	struct inode **buckets; /* guarded by lock; nbuckets is a power of two */
	uint64_t nbuckets;
	uint64_t count;
};

#define ITAB_MIN_BUCKETS 1024

static uint64_t ino_hash(uint64_t ino)
{
	ino ^= ino >> 33;
	ino *= 0xff51afd7ed558ccdULL;
	ino ^= ino >> 33;
	return ino;
}

int itab_new(struct itab **out)
{
	struct itab *t = calloc(1, sizeof(*t));

	*out = NULL;
	if (!t)
		return -ENOMEM;
	t->nbuckets = ITAB_MIN_BUCKETS;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	if (!t->buckets) {
		free(t);
		return -ENOMEM;
	}
	pthread_mutex_init(&t->lock, NULL);
	*out = t;
	return 0;
}

void itab_free(struct itab *t)
{
	if (!t)
		return;
	for (uint64_t i = 0; i < t->nbuckets; i++) {
		struct inode *n = t->buckets[i];

		while (n) {
			struct inode *next = n->next;

			entry_free(n);
			n = next;
		}
	}
	pthread_mutex_destroy(&t->lock);
	free(t->buckets);
	free(t);
}

static struct inode **slot_of(struct itab *t, uint64_t ino)
{
	struct inode **p = &t->buckets[ino_hash(ino) & (t->nbuckets - 1)];

	while (*p && (*p)->ino != ino)
		p = &(*p)->next;
	return p;
}

/* Doubles the bucket array when the load passes 1; on ENOMEM the table stays as it is. */
static void itab_grow(struct itab *t)
{
	uint64_t n = t->nbuckets * 2;
	struct inode **b = calloc(n, sizeof(*b));

	if (!b)
		return;
	for (uint64_t i = 0; i < t->nbuckets; i++) {
		struct inode *e = t->buckets[i];

		while (e) {
			struct inode *next = e->next;
			uint64_t h = ino_hash(e->ino) & (n - 1);

			e->next = b[h];
			b[h] = e;
			e = next;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = n;
}

/* The entry of ino, created if missing; NULL on ENOMEM. Called with t->lock held. */
static struct inode *get_locked(struct itab *t, uint64_t ino)
{
	struct inode **p = slot_of(t, ino);

	if (*p)
		return *p;
	*p = calloc(1, sizeof(**p));
	if (!*p)
		return NULL;
	(*p)->ino = ino;
	if (++t->count > t->nbuckets)
		itab_grow(t);
	return *slot_of(t, ino);
}

/* Called with t->lock held: n's name is name in parent, unless memory is short (it is a
 * hint: the old one, or none, stays). */
static void name_locked(struct inode *n, uint64_t parent, const char *name)
{
	char *copy;

	if (n->name && n->parent == parent && strcmp(n->name, name) == 0)
		return;
	copy = strdup(name);
	if (!copy)
		return;
	free(n->name);
	n->name = copy;
	n->parent = parent;
}

int inode_ref_named(struct itab *t, uint64_t ino, uint64_t parent, const char *name)
{
	struct inode *n;

	pthread_mutex_lock(&t->lock);
	n = get_locked(t, ino);
	if (n)
		n->nlookup++;
	if (n && atomic_load(&n->state) == INODE_STALE)
		atomic_store(&n->state, INODE_LIVE);
	if (n && name)
		name_locked(n, parent, name);
	pthread_mutex_unlock(&t->lock);
	return n ? 0 : -ENOMEM;
}

int inode_ref(struct itab *t, uint64_t ino)
{
	return inode_ref_named(t, ino, 0, NULL);
}

int inode_name(struct itab *t, uint64_t ino, uint64_t *parent, char *name, size_t size)
{
	struct inode **p;
	int rc = -ENOENT;

	pthread_mutex_lock(&t->lock);
	p = slot_of(t, ino);
	if (*p && (*p)->name) {
		*parent = (*p)->parent;
		rc = snprintf(name, size, "%s", (*p)->name) < (int)size ? 0 : -ENAMETOOLONG;
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

/* Whether the entry at *p has nothing left to keep; called with t->lock held. */
static bool is_unused(struct inode **p)
{
	enum inode_state s = atomic_load(&(*p)->state);

	return (*p)->nlookup == 0 && (*p)->holds == 0 && (s == INODE_LIVE || s == INODE_STALE);
}

/* Takes the entry at *p out of the table; called with t->lock held. Returns it. */
static struct inode *unlink_locked(struct itab *t, struct inode **p)
{
	struct inode *n = *p;

	*p = n->next;
	t->count--;
	return n;
}

uint64_t inode_forget(struct itab *t, uint64_t ino, uint64_t n)
{
	struct inode **p, *dead = NULL;
	uint64_t left = 0;

	pthread_mutex_lock(&t->lock);
	p = slot_of(t, ino);
	if (!*p)
		goto out_unlock;
	left = (*p)->nlookup > n ? (*p)->nlookup - n : 0;
	(*p)->nlookup = left;
	if (is_unused(p))
		dead = unlink_locked(t, p);
out_unlock:
	pthread_mutex_unlock(&t->lock);
	entry_free(dead);
	return left;
}

int inode_hold(struct itab *t, uint64_t ino, bool is_writer, struct inode **out)
{
	pthread_mutex_lock(&t->lock);
	*out = get_locked(t, ino);
	if (*out) {
		(*out)->holds++;
		(*out)->writers += is_writer;
	}
	pthread_mutex_unlock(&t->lock);
	return *out ? 0 : -ENOMEM;
}

void inode_unhold(struct itab *t, struct inode *n, bool is_writer)
{
	struct inode **p, *dead = NULL;

	pthread_mutex_lock(&t->lock);
	n->holds--;
	n->writers -= is_writer;
	p = slot_of(t, n->ino);
	if (is_unused(p))
		dead = unlink_locked(t, p);
	pthread_mutex_unlock(&t->lock);
	entry_free(dead);
}

/* ino's entry's lookups and writers, read under the lock; 0 for an inode not in the
 * table. */
static void counts_of(struct itab *t, uint64_t ino, uint64_t *nlookup, uint64_t *writers)
{
	struct inode *n;

	pthread_mutex_lock(&t->lock);
	n = *slot_of(t, ino);
	*nlookup = n ? n->nlookup : 0;
	*writers = n ? n->writers : 0;
	pthread_mutex_unlock(&t->lock);
}

bool inode_is_written(struct itab *t, uint64_t ino)
{
	uint64_t nlookup, writers;

	counts_of(t, ino, &nlookup, &writers);
	return writers > 0;
}

bool inode_is_known(struct itab *t, uint64_t ino)
{
	uint64_t nlookup, writers;

	counts_of(t, ino, &nlookup, &writers);
	return nlookup > 0;
}

uint64_t itab_count(struct itab *t)
{
	uint64_t n;

	pthread_mutex_lock(&t->lock);
	n = t->count;
	pthread_mutex_unlock(&t->lock);
	return n;
}

int inode_info(struct itab *t, uint64_t ino, struct inode_info *out)
{
	struct inode *n;

	pthread_mutex_lock(&t->lock);
	n = *slot_of(t, ino);
	if (n) {
		out->nlookup = n->nlookup;
		out->gen = n->gen;
		out->state = inode_state_of(n, &out->err, &out->revoked_at);
		for (int c = 0; c < IC_NR; c++)
			out->count[c] = atomic_load(&n->count[c]);
	}
	pthread_mutex_unlock(&t->lock);
	return n ? 0 : -ENOENT;
}

enum inode_state inode_state_of(struct inode *n, int *err, uint64_t *revoked_at)
{
	enum inode_state s = atomic_load(&n->state);

	*err = atomic_load(&n->err);
	*revoked_at = atomic_load(&n->revoked_at);
	return s;
}

enum inode_state inode_state(struct itab *t, uint64_t ino, int *err, uint64_t *revoked_at)
{
	enum inode_state s = INODE_LIVE;
	struct inode *n;

	pthread_mutex_lock(&t->lock);
	n = *slot_of(t, ino);
	if (n)
		s = inode_state_of(n, err, revoked_at);
	pthread_mutex_unlock(&t->lock);
	return s;
}

int inode_set_state(struct itab *t, uint64_t ino, enum inode_state s, int err, uint64_t seq)
{
	struct inode *n;

	pthread_mutex_lock(&t->lock);
	n = get_locked(t, ino);
	if (n) {
		atomic_store(&n->err, err);
		atomic_store(&n->revoked_at, seq);
		atomic_store(&n->state, s);
	}
	pthread_mutex_unlock(&t->lock);
	return n ? 0 : -ENOMEM;
}

void inode_count(struct itab *t, uint64_t ino, enum inode_counter c, uint64_t n)
{
	struct inode *e;

	pthread_mutex_lock(&t->lock);
	e = *slot_of(t, ino);
	if (e)
		inode_count_of(e, c, n);
	pthread_mutex_unlock(&t->lock);
}

void inode_count_of(struct inode *e, enum inode_counter c, uint64_t n)
{
	atomic_fetch_add_explicit(&e->count[c], n, memory_order_relaxed);
	if ((c == IC_READS || c == IC_WRITES) && !atomic_load(&e->is_cached))
		atomic_store(&e->is_cached, true);
}

void inode_note_cached(struct itab *t, uint64_t ino)
{
	struct inode *e;

	pthread_mutex_lock(&t->lock);
	e = *slot_of(t, ino);
	if (e)
		atomic_store(&e->is_cached, true);
	pthread_mutex_unlock(&t->lock);
}

bool inode_take_cached(struct itab *t, uint64_t ino)
{
	struct inode *e;
	bool was = false;

	pthread_mutex_lock(&t->lock);
	e = *slot_of(t, ino);
	if (e)
		was = atomic_exchange(&e->is_cached, false);
	pthread_mutex_unlock(&t->lock);
	return was;
}

uint64_t inode_gen(struct itab *t, uint64_t ino)
{
	struct inode *n;
	uint64_t gen = 0;

	pthread_mutex_lock(&t->lock);
	n = *slot_of(t, ino);
	if (n)
		gen = n->gen;
	pthread_mutex_unlock(&t->lock);
	return gen;
}

/* Revives *p; returns whether it was revived. Called with t->lock held. */
static bool revive_locked(struct itab *t, struct inode **p, bool all)
{
	struct inode *n = *p;
	enum inode_state s = atomic_load(&n->state);

	if ((s == INODE_LIVE || s == INODE_STALE) && !all)
		return false;
	if (n->nlookup > 0 || n->holds > 0) {
		n->gen++;
		atomic_store(&n->state, INODE_STALE);
		return true;
	}
	entry_free(unlink_locked(t, p));
	return true;
}

uint64_t itab_revive(struct itab *t, bool all)
{
	uint64_t revived = 0;

	pthread_mutex_lock(&t->lock);
	for (uint64_t i = 0; i < t->nbuckets; i++) {
		struct inode **p = &t->buckets[i];

		while (*p) {
			struct inode *n = *p;

			revived += revive_locked(t, p, all);
			if (*p == n)
				p = &n->next;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return revived;
}

/* The node IDs the kernel holds, those whose pages it may cache only (forgetting that)
 * if is_cached_only. */
static int collect(struct itab *t, bool is_cached_only, uint64_t **ids_out, size_t *n_out)
{
	uint64_t *ids;
	size_t n = 0;

	pthread_mutex_lock(&t->lock);
	ids = malloc((t->count + 1) * sizeof(*ids));
	for (uint64_t i = 0; ids && i < t->nbuckets; i++)
		for (struct inode *e = t->buckets[i]; e; e = e->next)
			if (e->nlookup > 0 &&
			    (!is_cached_only || atomic_exchange(&e->is_cached, false)))
				ids[n++] = e->ino;
	pthread_mutex_unlock(&t->lock);
	*ids_out = ids;
	*n_out = n;
	return ids ? 0 : -ENOMEM;
}

int itab_known(struct itab *t, uint64_t **ids_out, size_t *n_out)
{
	return collect(t, false, ids_out, n_out);
}

int itab_take_cached(struct itab *t, uint64_t **ids_out, size_t *n_out)
{
	return collect(t, true, ids_out, n_out);
}
