/* A sparse map from 64-bit indexes to pointers: a radix tree of 64-ary nodes whose height
 * grows with the largest index stored, so a huge sparse range costs only the nodes on the
 * paths to its present entries. The mem backend keeps file pages and its inode table in
 * it. Not thread-safe: the caller locks. */
#ifndef SIGBUSFS_PAGEMAP_H
#define SIGBUSFS_PAGEMAP_H

#include <stdint.h>

#define PAGEMAP_NONE	  UINT64_MAX	   /* next_present: nothing at or after the index */
#define PAGEMAP_INDEX_MAX (UINT64_MAX - 1) /* largest index an entry can have */

struct pm_node;

struct pagemap {
	struct pm_node *root; /* NULL when empty */
	unsigned height;      /* levels of nodes, root included; 0 when empty */
	uint64_t count;	      /* entries present */
	uint64_t nodes;	      /* nodes allocated */
};

/* Frees one entry on behalf of pagemap_destroy() / pagemap_remove_range(). */
typedef void (*pagemap_free_fn)(void *item, void *ctx);

void pagemap_init(struct pagemap *pm);
/* Calls free_fn (may be NULL) on every entry, then frees the nodes; pm is left empty. */
void pagemap_destroy(struct pagemap *pm, pagemap_free_fn free_fn, void *ctx);

/* Bytes of memory the map's nodes take (not counting the entries). */
uint64_t pagemap_bytes(const struct pagemap *pm);

/* The entry at idx, or NULL. */
void *pagemap_lookup(const struct pagemap *pm, uint64_t idx);
/* Stores item (non-NULL, borrowed: the map never frees it by itself) at idx <=
 * PAGEMAP_INDEX_MAX. 0, -EEXIST if idx is taken, or -ENOMEM (the map is unchanged). */
int pagemap_insert(struct pagemap *pm, uint64_t idx, void *item);
/* Takes the entry at idx out of the map and returns it, or NULL if there was none. */
void *pagemap_remove(struct pagemap *pm, uint64_t idx);
/* The smallest index >= idx holding an entry, or PAGEMAP_NONE. */
uint64_t pagemap_next_present(const struct pagemap *pm, uint64_t idx);
/* Removes every entry with an index in [first, last], calling free_fn (may be NULL) on
 * each, and returns how many there were. Costs O(entries removed + height), whatever the
 * width of the range. */
uint64_t pagemap_remove_range(struct pagemap *pm, uint64_t first, uint64_t last,
			      pagemap_free_fn free_fn, void *ctx);

#endif
