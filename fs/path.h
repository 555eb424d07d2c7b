/* Paths named in control commands: relative to the mount's root, resolved in the backend,
 * and walked for commands that act on a whole subtree. */
#ifndef SIGBUSFS_PATH_H
#define SIGBUSFS_PATH_H

#include <stddef.h>
#include <stdint.h>

#include "sfs.h"

/* The one normalisation of a PATH given in a control command: relative to the mount's
 * root (a leading "/" too), "." and empty components dropped, ".." resolved against the
 * backend's directories, as the kernel would without symlinks. Every component before
 * the last, and the last when followed by "/", "." or "..", must be a directory; every
 * component must exist. Sets *out to the canonical form, malloc'ed: no leading, trailing
 * or double "/", no "." or "..", "" for the root. 0, or -errno with a one-line message
 * naming given in err: -ENOENT for "" or a missing component, -ENOTDIR, -EINVAL for a
 * ".." above the root, -ENAMETOOLONG, -ENOMEM, or the backend's -errno. */
int path_normalize(struct sfs *fs, const char *given, char **out, char *err, size_t errsize);
/* Resolves rel, a canonical path ("" is the root; "." and a leading "/" are ignored), to
 * its inode and its parent directory (the root's parent is itself). 0 or -errno
 * (-ENOENT, -ENOTDIR, -EINVAL for a ".." component). */
int path_resolve(struct sfs *fs, const char *rel, uint64_t *parent_out, struct bk_attr *out);
/* The absolute path of rel inside the mount. 0 or -ENAMETOOLONG. */
int path_in_mount(struct sfs *fs, const char *rel, char *buf, size_t size);

/* A path (relative to the root) of ino: 0, -ENOENT if no name leads to it (unlinked), or
 * -errno. First the names the kernel was given for it and its parents (a lookup per
 * component); if they no longer lead to ino (a rename since), a walk of the whole tree (a
 * readdir of every directory), and *walked says so. */
int path_find(struct sfs *fs, uint64_t ino, char *rel, size_t size, bool *walked);

/* Called for each inode of a subtree, the top first: rel is its path, parent and name its
 * entry (name "" for the top of a walk started at the root). Nonzero stops the walk. */
typedef int (*path_walk_fn)(void *ctx, const char *rel, uint64_t parent, const char *name,
			    const struct bk_attr *a);
/* Walks the subtree at rel. Returns 0, fn's nonzero value, or -errno. */
int path_walk(struct sfs *fs, const char *rel, path_walk_fn fn, void *ctx);

#endif
