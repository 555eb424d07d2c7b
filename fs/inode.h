/* The inode table: which node IDs the kernel holds and how many lookups it holds on each,
 * plus what the event engine attaches to an inode: its revocation state and its counters.
 * Node IDs are the backend's inode numbers, which a backend never reuses. */
#ifndef SIGBUSFS_INODE_H
#define SIGBUSFS_INODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct itab;
struct inode; /* one inode's entry in the table */

enum inode_state {
	INODE_LIVE,
	INODE_REVOKING, /* getattr answers size 0, data requests fail */
	INODE_REVOKED,	/* every request fails */
	INODE_STALE,	/* revived, but the kernel may hold it only under its old generation:
			 * requests without a handle fail until an entry reply names it again */
};

enum inode_counter {
	IC_READS,
	IC_WRITES,
	IC_INVALS,
	IC_ERRORS,     /* requests answered with an error by an event or rule */
	IC_LOST_BYTES, /* dirty bytes refused because their file was revoked */
	IC_NR
};

struct inode_info {
	uint64_t nlookup;
	enum inode_state state;
	int err;	     /* positive errno answered while revoked */
	uint64_t revoked_at; /* event sequence number of the revocation, 0 if never */
	uint64_t gen;	     /* generation of entry replies; bumped when revived */
	uint64_t count[IC_NR];
};

/* 0 or -ENOMEM */
int itab_new(struct itab **out);
/* Frees the table; the kernel's references die with the session. */
void itab_free(struct itab *t);

/* The kernel got one more reference to ino (an entry reply, which carries the current
 * generation: a stale inode is live again). 0 or -ENOMEM. */
int inode_ref(struct itab *t, uint64_t ino);
/* inode_ref() from an entry reply for name in directory parent: that name is kept, the
 * last one given, for inode_name(). 0 or -ENOMEM. */
int inode_ref_named(struct itab *t, uint64_t ino, uint64_t parent, const char *name);
/* The last name an entry reply gave ino, into name and *parent: a hint, which a rename
 * or unlink since may have made wrong. 0, -ENOENT if none, -ENAMETOOLONG. */
int inode_name(struct itab *t, uint64_t ino, uint64_t *parent, char *name, size_t size);
/* The kernel dropped n references. Returns the references left; 0 means the kernel no
 * longer knows ino and the backend may be told (bk_forget). A revoked inode's entry stays,
 * so it stays revoked when looked up again. */
uint64_t inode_forget(struct itab *t, uint64_t ino, uint64_t n);
/* An open file's hold on the entry of ino (created if missing): the entry stays in the
 * table until inode_unhold(), so that inode_state_of() and inode_count_of() reach it
 * without the table lock. is_writer: the file was opened for writing (unhold says the
 * same). 0 or -ENOMEM. */
int inode_hold(struct itab *t, uint64_t ino, bool is_writer, struct inode **out);
void inode_unhold(struct itab *t, struct inode *n, bool is_writer);
/* Whether the kernel holds at least one reference to ino. */
bool inode_is_known(struct itab *t, uint64_t ino);
/* Whether a file open for writing holds ino: only then can the kernel hold dirty pages of
 * it (the mapping that dirties them keeps its file open, and its munmap writes them back;
 * the daemon gives no writeback cache). */
bool inode_is_written(struct itab *t, uint64_t ino);
/* Number of node IDs tracked (held by the kernel, or revoked). */
uint64_t itab_count(struct itab *t);

/* A copy of what the table holds for ino; -ENOENT if nothing. */
int inode_info(struct itab *t, uint64_t ino, struct inode_info *out);
/* The state of ino (INODE_LIVE if unknown), and its errno and revocation seq if not live. */
enum inode_state inode_state(struct itab *t, uint64_t ino, int *err, uint64_t *revoked_at);
/* The same for a held entry, without the table lock. */
enum inode_state inode_state_of(struct inode *n, int *err, uint64_t *revoked_at);
/* Sets the state, creating the entry if needed. 0 or -ENOMEM. */
int inode_set_state(struct itab *t, uint64_t ino, enum inode_state s, int err, uint64_t seq);
/* Adds n to a counter of ino if the table holds ino. Counting a READ or a WRITE also notes
 * that the kernel may now cache pages of ino (itab_take_cached()). */
void inode_count(struct itab *t, uint64_t ino, enum inode_counter c, uint64_t n);
/* The same for a held entry, without the table lock. */
void inode_count_of(struct inode *e, enum inode_counter c, uint64_t n);
/* Notes that the kernel may now cache pages of ino, if the table holds ino. */
void inode_note_cached(struct itab *t, uint64_t ino);
/* Whether the kernel may cache pages of ino, and forgets it: the caller is about to drop
 * them. A READ or WRITE counted after this notes it again. */
bool inode_take_cached(struct itab *t, uint64_t ino);
/* The generation entry replies for ino carry (0 for an inode never revived). */
uint64_t inode_gen(struct itab *t, uint64_t ino);
/* Brings inodes back: all of them, or only the revoked ones. A revived inode the kernel
 * still holds gets a new generation and is INODE_STALE until an entry reply carries it, so
 * the kernel's old inode goes bad at the next lookup and fails until then; one it no
 * longer holds is dropped. Returns how many were revived. */
uint64_t itab_revive(struct itab *t, bool all);
/* The node IDs the kernel holds, in a malloc()ed array the caller frees. 0 or -ENOMEM. */
int itab_known(struct itab *t, uint64_t **ids_out, size_t *n_out);
/* The same for those whose pages the kernel may cache, forgetting it for each, as
 * inode_take_cached() does. */
int itab_take_cached(struct itab *t, uint64_t **ids_out, size_t *n_out);

#endif
