/* What clients have made durable, for the power cut (-o powercut). Before a client's
 * write, truncate or fallocate changes a file, the bytes it changes are saved as they were
 * at the file's last fsync (an undo copy, a page at a time, once per page between syncs),
 * with the size of that moment; fsync and fdatasync (msync(MS_SYNC) sends fsync) forget
 * them: the file's present state is durable. A power cut writes the saved state back into
 * the backend, so the file reads as it was at its last sync.
 *
 * Names are durable when their operation returns (create, link, rename, unlink), as on a
 * filesystem mounted dirsync; a file created and written but never synced survives with
 * size 0, as ext4 with data=ordered leaves it after a crash. Memory: a page for every
 * page of durable data changed since its file's last sync.
 *
 * A torn write (durable_torn_write()) reaches storage only in part: its prefix is durable
 * at once, its tail is lost, and stays lost through every fsync (as on a device that
 * dropped it) until the power cut, a sync command or an out-of-band event on the file
 * (durable_sync()), or a later change of those bytes. Thread-safe. */
#ifndef SIGBUSFS_DURABLE_H
#define SIGBUSFS_DURABLE_H

#include <stdint.h>

#include "backend.h"

struct durable;

/* The tracker of one mount, pages of page_size bytes. 0, -ENOMEM. */
int durable_new(uint64_t page_size, struct durable **out);
void durable_free(struct durable *d);

/* Before a client changes ino in b: the bytes [off, off + len) (len UINT64_MAX: to the
 * end of the file, for a shrink or a punch past it) are saved as they are now, where the
 * file's last sync left them. 0, or -errno from the backend or -ENOMEM: then the change
 * must not be made (the undo copy would be incomplete). */
int durable_before_change(struct durable *d, struct bk *b, uint64_t ino, uint64_t off,
			  uint64_t len);

/* A torn write of data to ino at [off, off + len), before it is made: as
 * durable_before_change(), then its first keep bytes (<= len) are durable now (the
 * durable size grows to cover them), and the rest of the range keeps, for every later
 * power cut, the bytes it had at the last sync. 0 or -errno, as durable_before_change(). */
int durable_torn_write(struct durable *d, struct bk *b, uint64_t ino, uint64_t off,
		       const void *data, uint64_t len, uint64_t keep);

/* A client's fsync of ino: its present state in b is durable, but for the tails of torn
 * writes. 0, or -errno from the backend or -ENOMEM. */
int durable_fsync(struct durable *d, struct bk *b, uint64_t ino);

/* ino's present state is durable, torn tails included (the sync command, an out-of-band
 * event); 0: every file's. */
void durable_sync(struct durable *d, uint64_t ino);

/* Files with changes not yet durable, and the bytes of the pages they changed; ino 0:
 * the whole mount. */
struct durable_count {
	uint64_t files;
	uint64_t bytes;
};
struct durable_count durable_pending(struct durable *d, struct bk *b, uint64_t ino);

/* The power cut: writes ino's (0: every file's) saved state back into b and forgets it.
 * A file the backend no longer has is skipped. Returns what was undone; *err gets the
 * first error of the backend (0 if none): files it hit are left as they were. */
struct durable_count durable_revert(struct durable *d, struct bk *b, uint64_t ino, int *err);

#endif
