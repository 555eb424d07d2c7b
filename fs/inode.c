/* Lookup counting. Design note: every entry reply (lookup, create, mknod, mkdir, symlink,
 * link, readdirplus) counts one reference before the reply is sent and uncounts it if the
 * reply could not be delivered; FORGET subtracts what the kernel says it dropped. When the
 * count reaches zero the entry is removed (unless the inode is revoked: that must outlive
 * the kernel's references), and only then may the backend free an inode that has no links
 * left. The root is never counted: the kernel never forgets it. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "inode.h"

struct inode {
	uint64_t ino;
	struct inode_info info; /* guarded by itab->lock */
	struct inode *next;
};

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

			free(n);
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

int inode_ref(struct itab *t, uint64_t ino)
{
	struct inode *n;

	pthread_mutex_lock(&t->lock);
	n = get_locked(t, ino);
	if (n)
		n->info.nlookup++;
	pthread_mutex_unlock(&t->lock);
	return n ? 0 : -ENOMEM;
}

uint64_t inode_forget(struct itab *t, uint64_t ino, uint64_t n)
{
	struct inode **p, *dead = NULL;
	uint64_t left = 0;

	pthread_mutex_lock(&t->lock);
	p = slot_of(t, ino);
	if (!*p)
		goto out_unlock;
	left = (*p)->info.nlookup > n ? (*p)->info.nlookup - n : 0;
	(*p)->info.nlookup = left;
	if (left == 0 && (*p)->info.state == INODE_LIVE) {
		dead = *p;
		*p = dead->next;
		t->count--;
	}
out_unlock:
	pthread_mutex_unlock(&t->lock);
	free(dead);
	return left;
}

bool inode_is_known(struct itab *t, uint64_t ino)
{
	struct inode *n;
	bool known;

	pthread_mutex_lock(&t->lock);
	n = *slot_of(t, ino);
	known = n && n->info.nlookup > 0;
	pthread_mutex_unlock(&t->lock);
	return known;
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
	if (n)
		*out = n->info;
	pthread_mutex_unlock(&t->lock);
	return n ? 0 : -ENOENT;
}

enum inode_state inode_state(struct itab *t, uint64_t ino, int *err, uint64_t *revoked_at)
{
	enum inode_state s = INODE_LIVE;
	struct inode *n;

	pthread_mutex_lock(&t->lock);
	n = *slot_of(t, ino);
	if (n) {
		s = n->info.state;
		*err = n->info.err;
		*revoked_at = n->info.revoked_at;
	}
	pthread_mutex_unlock(&t->lock);
	return s;
}

int inode_set_state(struct itab *t, uint64_t ino, enum inode_state s, int err, uint64_t seq)
{
	struct inode *n;

	pthread_mutex_lock(&t->lock);
	n = get_locked(t, ino);
	if (n) {
		n->info.state = s;
		n->info.err = err;
		n->info.revoked_at = seq;
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
		e->info.count[c] += n;
	pthread_mutex_unlock(&t->lock);
}

uint64_t inode_gen(struct itab *t, uint64_t ino)
{
	struct inode *n;
	uint64_t gen = 0;

	pthread_mutex_lock(&t->lock);
	n = *slot_of(t, ino);
	if (n)
		gen = n->info.gen;
	pthread_mutex_unlock(&t->lock);
	return gen;
}

/* Revives *p; returns whether it was revived. Called with t->lock held. */
static bool revive_locked(struct itab *t, struct inode **p, bool all)
{
	struct inode *n = *p;

	if (n->info.state == INODE_LIVE && !all)
		return false;
	n->info.state = INODE_LIVE;
	if (n->info.nlookup > 0) {
		n->info.gen++;
		return true;
	}
	*p = n->next;
	t->count--;
	free(n);
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

int itab_known(struct itab *t, uint64_t **ids_out, size_t *n_out)
{
	uint64_t *ids;
	size_t n = 0;

	pthread_mutex_lock(&t->lock);
	ids = malloc((t->count + 1) * sizeof(*ids));
	for (uint64_t i = 0; ids && i < t->nbuckets; i++)
		for (struct inode *e = t->buckets[i]; e; e = e->next)
			if (e->info.nlookup > 0)
				ids[n++] = e->ino;
	pthread_mutex_unlock(&t->lock);
	*ids_out = ids;
	*n_out = n;
	return ids ? 0 : -ENOMEM;
}
