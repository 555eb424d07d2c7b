/* The daemon's own accesses to its mount, done from a process that dies with the
 * connection, and which cuts the connection if the daemon dies stuck in it.
 *
 * Design note: a FUSE request that the daemon has read waits for its answer
 * uninterruptibly, even in a task being killed, until it is answered or the connection
 * aborts; and the connection aborts only when the last /dev/fuse descriptor closes
 * (README, "Kernel notes"). If a thread of the daemon stat()ed through its own
 * mount and SIGKILL landed while that GETATTR was being served, the thread would wait for
 * an answer only its dead process could give; the process would keep /dev/fuse open, and
 * every client would hang for good. So every path the daemon walks into its mount is
 * walked by a helper process that holds no /dev/fuse descriptor: when the daemon dies, its
 * descriptors close, the kernel aborts the connection, the helper's request fails with
 * ENOTCONN, and the helper exits.
 * A notification can wait the same way, where no helper can stand in: INVAL_INODE waits
 * for the lock of each page it drops, and a page stays locked while its READ is in flight
 * (section 4). A daemon killed with a READ read but unanswered and a notification waiting
 * for that page would never exit. So the helper also watches the daemon: when the
 * daemon's main thread exits without having stopped the helper first (a death, since a
 * clean exit stops it), the helper aborts the connection through fusectl, which ends every
 * request in flight, and exits. It opens the connection's abort file when it starts, so
 * that it can neither fail to find it then nor abort another mount that took its number.
 * Each helper is one single-threaded process (so the kernel names it by its pid in the
 * requests it causes) answering one request at a time over a socket pair; a request names
 * many paths, and the daemon splits a batch among a few helpers, so that several FUSE
 * workers answer their GETATTRs at once. */
#ifndef SIGBUSFS_SELFSTAT_H
#define SIGBUSFS_SELFSTAT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct selfstat;

#define SELFSTAT_MAX 4 /* helper processes at most */

/* Forks the helpers for the FUSE mount at mountpoint (absolute), mounted already: as many
 * as there are CPUs, at most max and SELFSTAT_MAX, at least one (several keep several
 * FUSE workers busy; a single-threaded session wants one). Call from the main thread of
 * the process that will serve (after fuse_daemonize(), whose parent exits: a helper
 * watches the thread that forked it) before other threads start (a helper is a fork of
 * this one) and before the session loop (a helper reads the mount's device without a
 * request). A helper keeps stdin, stdout and stderr and its socket, and closes every other
 * descriptor it inherits, /dev/fuse included. If a helper cannot open the connection's
 * fusectl abort file (fusectl not mounted, and not root to mount it), it runs anyway, the
 * first says so in the log, and selfstat_abort() fails. 0 or -errno, with *out NULL on
 * failure. */
int selfstat_start(const char *mountpoint, size_t max, struct selfstat **out);
/* Ends the helpers (closes their sockets) and reaps them. Call when no request is in
 * flight, before the main thread exits. s may be NULL. */
void selfstat_stop(struct selfstat *s);
/* The helpers' process IDs into out (room for SELFSTAT_MAX); returns how many. Each is
 * also its helper's only thread's ID: what fuse_req_ctx()->pid says in the requests it
 * causes. */
size_t selfstat_pids(const struct selfstat *s, pid_t *out);

/* The calls below are thread-safe (callers take turns) and return -ECONNRESET, or the
 * -errno of the socket, if the helper is gone. */

/* In the helper: stat(path), so the kernel asks the daemon for attributes it does not
 * trust, then the size the kernel holds for path afterwards (statx AT_STATX_DONT_SYNC,
 * which sends no GETATTR) into *held_out. 0 or the -errno of either call. */
int selfstat_force(struct selfstat *s, const char *path, uint64_t *held_out);
/* selfstat_force() for each of the n paths, split among the helpers, which stat at once,
 * each with as few round trips as the paths' length allows (one for up to 1024 paths of
 * 64 bytes): each path's 0 or -errno in errs, and its size in held when that is 0. 0, or
 * -errno if a helper could not be reached (or -ENAMETOOLONG for a path longer than 64
 * KiB), and then errs and held are not all set. */
int selfstat_force_many(struct selfstat *s, char *const *paths, size_t n, int *errs,
			uint64_t *held);
/* For each of the n files of paths, in runs that share a directory: one getdents of the
 * directory (the kernel asks READDIRPLUS of up to 1 MiB for it, and sizesync_list() says
 * what the daemon answers), then the size the kernel holds for the file (statx
 * AT_STATX_DONT_SYNC, no request): 0 or -errno in errs, the size in held. The paths are
 * split among the helpers, which work at once: selfstat_pid_of() says which lists which.
 * 0 or -errno as selfstat_force_many(). */
int selfstat_list_many(struct selfstat *s, char *const *paths, size_t n, int *errs, uint64_t *held);
/* The helper that a request about n paths hands path k (k < n) to. */
pid_t selfstat_pid_of(const struct selfstat *s, size_t k, size_t n);
/* Aborts the mount's FUSE connection through fusectl, which is what a daemon's death does
 * to it: every request in flight fails. 0, or -errno (why the abort file could not be
 * opened, or written). */
int selfstat_abort(struct selfstat *s);

#endif
