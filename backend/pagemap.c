/* The radix tree behind struct pagemap: node allocation, growth and shrinking of the
 * height, lookups and range removal. Callers own the entries and the locking.
 *
 * Invariants: a node at level L (leaves are level 1) covers 6 * L index bits; its present
 * bitmap has bit s set exactly when slot[s] is non-NULL; no empty node stays in the tree
 * after an operation returns, so a set bit always leads to at least one entry. */
#include "pagemap.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#define PM_BITS	      6
#define PM_FANOUT     (1u << PM_BITS)
#define PM_MASK	      (PM_FANOUT - 1)
#define PM_HEIGHT_MAX 11 /* 11 * 6 bits >= 64 */

struct pm_node {
	uint64_t present; /* bit s set when slot[s] is non-NULL */
	void *slot[PM_FANOUT];
};

struct pm_free {
	struct pagemap *pm; /* whose node count drops as nodes are freed */
	pagemap_free_fn fn;
	void *ctx;
};

static unsigned pm_shift(unsigned level)
{
	return (level - 1) * PM_BITS;
}

static unsigned pm_slot(uint64_t idx, unsigned level)
{
	return (idx >> pm_shift(level)) & PM_MASK;
}

static uint64_t pm_bit(unsigned slot)
{
	return UINT64_C(1) << slot;
}

/* The index bits a subtree at level covers, as a mask (level 0: a single entry). */
static uint64_t pm_span_mask(unsigned level)
{
	unsigned bits = level * PM_BITS;

	return bits >= 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;
}

static bool pm_covers(const struct pagemap *pm, uint64_t idx)
{
	return pm->root && idx <= pm_span_mask(pm->height);
}

void pagemap_init(struct pagemap *pm)
{
	pm->root = NULL;
	pm->height = 0;
	pm->count = 0;
	pm->nodes = 0;
}

uint64_t pagemap_bytes(const struct pagemap *pm)
{
	return pm->nodes * sizeof(struct pm_node);
}

static struct pm_node *pm_node_new(struct pagemap *pm)
{
	struct pm_node *n = calloc(1, sizeof(*n));

	if (n)
		pm->nodes++;
	return n;
}

static void pm_node_free(struct pagemap *pm, struct pm_node *n)
{
	pm->nodes--;
	free(n);
}

static uint64_t pm_free_subtree(void *p, unsigned level, const struct pm_free *f)
{
	struct pm_node *n = p;
	uint64_t freed = 0;

	if (level == 0) {
		if (f->fn)
			f->fn(p, f->ctx);
		return 1;
	}
	for (uint64_t bits = n->present; bits; bits &= bits - 1)
		freed += pm_free_subtree(n->slot[__builtin_ctzll(bits)], level - 1, f);
	pm_node_free(f->pm, n);
	return freed;
}

void pagemap_destroy(struct pagemap *pm, pagemap_free_fn free_fn, void *ctx)
{
	struct pm_free f = { pm, free_fn, ctx };

	if (pm->root)
		pm_free_subtree(pm->root, pm->height, &f);
	pagemap_init(pm);
}

void *pagemap_lookup(const struct pagemap *pm, uint64_t idx)
{
	void *p = pm->root;

	if (!pm_covers(pm, idx))
		return NULL;
	for (unsigned level = pm->height; level > 0 && p; level--)
		p = ((struct pm_node *)p)->slot[pm_slot(idx, level)];
	return p;
}

/* Drops root nodes whose only child is slot 0: they add height and cover nothing else. */
static void pm_shrink(struct pagemap *pm)
{
	while (pm->height > 1 && pm->root->present == 1) {
		struct pm_node *old = pm->root;

		pm->root = old->slot[0];
		pm->height--;
		pm_node_free(pm, old);
	}
}

/* Records the nodes on idx's path, root first; returns how many exist. */
static unsigned pm_path(const struct pagemap *pm, uint64_t idx, struct pm_node **path)
{
	struct pm_node *n = pm->root;
	unsigned depth = 0;

	if (!pm_covers(pm, idx))
		return 0;
	for (unsigned level = pm->height; n; level--) {
		path[depth++] = n;
		if (level == 1)
			break;
		n = n->slot[pm_slot(idx, level)];
	}
	return depth;
}

/* Frees the empty nodes at the bottom of a path from pm_path(), then shrinks the root. */
static void pm_prune(struct pagemap *pm, uint64_t idx, struct pm_node **path, unsigned depth)
{
	while (depth > 0 && path[depth - 1]->present == 0) {
		pm_node_free(pm, path[--depth]);
		if (depth == 0) {
			pagemap_init(pm);
			return;
		}
		unsigned s = pm_slot(idx, pm->height - (depth - 1));

		path[depth - 1]->slot[s] = NULL;
		path[depth - 1]->present &= ~pm_bit(s);
	}
	pm_shrink(pm);
}

/* Allocates the root of an empty tree, or adds levels on top, until the tree covers idx. */
static int pm_grow(struct pagemap *pm, uint64_t idx)
{
	if (!pm->root) {
		pm->root = pm_node_new(pm);
		if (!pm->root)
			return -ENOMEM;
		pm->height = 1;
		while (idx > pm_span_mask(pm->height))
			pm->height++;
		return 0;
	}
	while (idx > pm_span_mask(pm->height)) {
		struct pm_node *n = pm_node_new(pm);

		if (!n)
			return -ENOMEM;
		n->slot[0] = pm->root;
		n->present = 1;
		pm->root = n;
		pm->height++;
	}
	return 0;
}

/* Frees what a failed insert of idx allocated: empty nodes on its path, extra levels. */
static void pm_undo_insert(struct pagemap *pm, uint64_t idx)
{
	struct pm_node *path[PM_HEIGHT_MAX];
	unsigned depth = pm_path(pm, idx, path);

	if (depth > 0) {
		pm_prune(pm, idx, path, depth);
	} else if (pm->root && pm->root->present == 0) {
		pm_node_free(pm, pm->root);
		pagemap_init(pm);
	} else if (pm->root) {
		pm_shrink(pm);
	}
}

int pagemap_insert(struct pagemap *pm, uint64_t idx, void *item)
{
	struct pm_node *n;
	unsigned level, s;

	assert(item && idx <= PAGEMAP_INDEX_MAX);
	if (pm_grow(pm, idx) < 0)
		goto out_undo;
	n = pm->root;
	for (level = pm->height; level > 1; level--) {
		s = pm_slot(idx, level);
		if (!n->slot[s]) {
			n->slot[s] = pm_node_new(pm);
			if (!n->slot[s])
				goto out_undo;
			n->present |= pm_bit(s);
		}
		n = n->slot[s];
	}
	s = pm_slot(idx, 1);
	if (n->slot[s])
		return -EEXIST;
	n->slot[s] = item;
	n->present |= pm_bit(s);
	pm->count++;
	return 0;

out_undo:
	pm_undo_insert(pm, idx);
	return -ENOMEM;
}

void *pagemap_remove(struct pagemap *pm, uint64_t idx)
{
	struct pm_node *path[PM_HEIGHT_MAX];
	unsigned depth = pm_path(pm, idx, path);
	unsigned s = pm_slot(idx, 1);
	void *item;

	if (depth == 0 || depth < pm->height || !path[depth - 1]->slot[s])
		return NULL;
	item = path[depth - 1]->slot[s];
	path[depth - 1]->slot[s] = NULL;
	path[depth - 1]->present &= ~pm_bit(s);
	pm->count--;
	pm_prune(pm, idx, path, depth);
	return item;
}

/* The smallest index in the (non-empty) subtree n at level whose indexes start at base. */
static uint64_t pm_first(const struct pm_node *n, unsigned level, uint64_t base)
{
	for (;; level--) {
		unsigned s = __builtin_ctzll(n->present);

		base |= (uint64_t)s << pm_shift(level);
		if (level == 1)
			return base;
		n = n->slot[s];
	}
}

static uint64_t pm_next(const struct pm_node *n, unsigned level, uint64_t idx)
{
	unsigned s = pm_slot(idx, level);
	uint64_t later, base = idx & ~pm_span_mask(level);

	if (n->present & pm_bit(s)) {
		uint64_t found = level == 1 ? idx : pm_next(n->slot[s], level - 1, idx);

		if (found != PAGEMAP_NONE)
			return found;
	}
	later = s == PM_MASK ? 0 : n->present & (UINT64_MAX << (s + 1));
	if (!later)
		return PAGEMAP_NONE;
	s = __builtin_ctzll(later);
	base |= (uint64_t)s << pm_shift(level);
	return level == 1 ? base : pm_first(n->slot[s], level - 1, base);
}

uint64_t pagemap_next_present(const struct pagemap *pm, uint64_t idx)
{
	if (!pm_covers(pm, idx))
		return PAGEMAP_NONE;
	return pm_next(pm->root, pm->height, idx);
}

/* Removes the entries in [first, last] from subtree n at level, whose indexes start at
 * base; returns how many. Slots wholly inside the range are freed without a descent
 * through the range, and empty slots are never visited. */
static uint64_t pm_clear(struct pm_node *n, unsigned level, uint64_t base, uint64_t first,
			 uint64_t last, const struct pm_free *f)
{
	uint64_t removed = 0;

	for (uint64_t bits = n->present; bits; bits &= bits - 1) {
		unsigned s = __builtin_ctzll(bits);
		uint64_t lo = base | ((uint64_t)s << pm_shift(level));
		uint64_t hi = lo | pm_span_mask(level - 1);
		struct pm_node *child = n->slot[s];

		if (hi < first || lo > last)
			continue;
		if (lo >= first && hi <= last) {
			removed += pm_free_subtree(child, level - 1, f);
		} else {
			removed += pm_clear(child, level - 1, lo, first, last, f);
			if (child->present != 0)
				continue;
			pm_node_free(f->pm, child);
		}
		n->slot[s] = NULL;
		n->present &= ~pm_bit(s);
	}
	return removed;
}

uint64_t pagemap_remove_range(struct pagemap *pm, uint64_t first, uint64_t last,
			      pagemap_free_fn free_fn, void *ctx)
{
	struct pm_free f = { pm, free_fn, ctx };
	uint64_t removed;

	if (first > last || !pm_covers(pm, first))
		return 0;
	removed = pm_clear(pm->root, pm->height, 0, first, last, &f);
	pm->count -= removed;
	if (pm->root->present == 0) {
		pm_node_free(pm, pm->root);
		pagemap_init(pm);
	} else {
		pm_shrink(pm);
	}
	return removed;
}
