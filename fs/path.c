/* Paths of control commands: their one normalisation (path_normalize()), resolution and
 * subtree walks over the backend. A walk lists one directory fully before descending, so
 * no backend lock is held across the callback. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "inode.h"
#include "path.h"

int path_resolve(struct sfs *fs, const char *rel, uint64_t *parent_out, struct bk_attr *out)
{
	char buf[PATH_MAX], *save = NULL, *name;
	uint64_t parent = BK_ROOT_INO;
	int rc;

	if (snprintf(buf, sizeof(buf), "%s", rel) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	rc = bk_getattr(fs->bk, BK_ROOT_INO, out);
	for (name = strtok_r(buf, "/", &save); name && rc == 0; name = strtok_r(NULL, "/", &save)) {
		if (strcmp(name, ".") == 0)
			continue;
		if (strcmp(name, "..") == 0)
			return -EINVAL;
		parent = out->ino;
		rc = bk_lookup(fs->bk, parent, name, out);
	}
	*parent_out = parent;
	return rc;
}

/* path_normalize()'s walk: buf is the canonical path so far, a its inode. */
struct norm {
	struct sfs *fs;
	char buf[PATH_MAX];
	size_t len;
	struct bk_attr a;
};

/* Applies the component name[0..n) (n == 0 for an empty one, between two "/"). */
static int norm_step(struct norm *w, const char *name, size_t n)
{
	uint64_t parent;
	char *slash;

	if (!S_ISDIR(w->a.mode))
		return -ENOTDIR;
	if (n == 0 || (n == 1 && name[0] == '.'))
		return 0;
	if (n == 2 && !memcmp(name, "..", 2)) {
		if (w->len == 0)
			return -EXDEV;
		slash = strrchr(w->buf, '/');
		w->len = slash ? (size_t)(slash - w->buf) : 0;
		w->buf[w->len] = '\0';
		return path_resolve(w->fs, w->buf, &parent, &w->a);
	}
	if (w->len + 1 + n >= sizeof(w->buf))
		return -ENAMETOOLONG;
	if (w->len)
		w->buf[w->len++] = '/';
	memcpy(w->buf + w->len, name, n);
	w->len += n;
	w->buf[w->len] = '\0';
	return bk_lookup(w->fs->bk, w->a.ino, w->buf + w->len - n, &w->a);
}

static int norm_error(const struct norm *w, const char *given, int rc, char *err, size_t size)
{
	if (rc == -EXDEV)
		snprintf(err, size, "%s: '..' climbs above the mount's root", given);
	else if (rc == -ENOTDIR)
		snprintf(err, size, "%s: %s is not a directory", given, w->buf);
	else if (strcmp(given, w->buf))
		snprintf(err, size, "%s: %s: %s", given, w->buf, strerror(-rc));
	else
		snprintf(err, size, "%s: %s", given, strerror(-rc));
	return rc == -EXDEV ? -EINVAL : rc;
}

int path_normalize(struct sfs *fs, const char *given, char **out, char *err, size_t errsize)
{
	struct norm *w;
	const char *p = given, *end;
	int rc;

	*out = NULL;
	if (!*given) {
		snprintf(err, errsize, "PATH is empty (the mount's root is \"/\")");
		return -ENOENT;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		snprintf(err, errsize, "%s: %s", given, strerror(ENOMEM));
		return -ENOMEM;
	}
	w->fs = fs;
	rc = bk_getattr(fs->bk, BK_ROOT_INO, &w->a);
	for (; rc == 0 && *p; p = *end ? end + 1 : end) {
		end = strchrnul(p, '/');
		rc = norm_step(w, p, (size_t)(end - p));
	}
	/* a trailing "/" names a directory */
	if (rc == 0 && p > given && p[-1] == '/')
		rc = norm_step(w, p, 0);
	if (rc == 0) {
		*out = strdup(w->buf);
		rc = *out ? 0 : -ENOMEM;
	}
	if (rc < 0)
		rc = norm_error(w, given, rc, err, errsize);
	free(w);
	return rc;
}

int path_in_mount(struct sfs *fs, const char *rel, char *buf, size_t size)
{
	while (*rel == '/')
		rel++;
	if ((size_t)snprintf(buf, size, "%s/%s", fs->mountpoint, rel) >= size)
		return -ENAMETOOLONG;
	return 0;
}

struct listing {
	struct entry {
		char *name;
		struct bk_attr a;
	} * v;
	size_t n, cap;
	int err;
};

static int collect(void *ctx, const char *name, const struct bk_attr *a, uint64_t cookie)
{
	struct listing *l = ctx;

	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return 0; /* BK_F_DOTS */
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct entry *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			goto out_nomem;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n].name = strdup(name);
	if (!l->v[l->n].name)
		goto out_nomem;
	l->v[l->n++].a = *a;
	return 0;
out_nomem:
	l->err = -ENOMEM;
	return 1;
}

/* Gives a listed inode back to the backend unless the kernel holds it (BK_F_LIST_HOLDS:
 * else a walk of the whole tree, as unplug's, would pin every object in it). */
static void let_go(struct sfs *fs, uint64_t ino)
{
	if (!(fs->bk->ops->flags & BK_F_LIST_HOLDS) || inode_ref(fs->itab, ino) < 0)
		return;
	if (inode_forget(fs->itab, ino, 1) == 0)
		bk_forget(fs->bk, ino);
}

static void listing_free(struct sfs *fs, struct listing *l)
{
	for (size_t i = 0; i < l->n; i++) {
		let_go(fs, l->v[i].a.ino);
		free(l->v[i].name);
	}
	free(l->v);
}

static int walk_dir(struct sfs *fs, const char *rel, uint64_t dir, path_walk_fn fn, void *ctx)
{
	struct listing l = { 0 };
	char child[PATH_MAX];
	int rc = bk_readdir(fs->bk, dir, 0, collect, &l);

	if (rc == 0)
		rc = l.err;
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		const struct entry *e = &l.v[i];

		if (snprintf(child, sizeof(child), "%s%s%s", rel, *rel ? "/" : "", e->name) >=
		    (int)sizeof(child)) {
			rc = -ENAMETOOLONG;
			break;
		}
		rc = fn(ctx, child, dir, e->name, &e->a);
		if (rc == 0 && S_ISDIR(e->a.mode))
			rc = walk_dir(fs, child, e->a.ino, fn, ctx);
	}
	listing_free(fs, &l);
	return rc;
}

int path_walk(struct sfs *fs, const char *rel, path_walk_fn fn, void *ctx)
{
	struct bk_attr a;
	uint64_t parent;
	const char *name;
	int rc;

	while (*rel == '/')
		rel++;
	rc = path_resolve(fs, rel, &parent, &a);
	if (rc < 0)
		return rc;
	name = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
	rc = fn(ctx, rel, parent, a.ino == BK_ROOT_INO ? "" : name, &a);
	if (rc == 0 && S_ISDIR(a.mode))
		rc = walk_dir(fs, rel, a.ino, fn, ctx);
	return rc;
}

struct finding {
	uint64_t ino;
	char *rel;
	size_t size;
};

static int match(void *ctx, const char *rel, uint64_t parent, const char *name,
		 const struct bk_attr *a)
{
	struct finding *f = ctx;

	if (a->ino != f->ino)
		return 0;
	return snprintf(f->rel, f->size, "%s", rel) < (int)f->size ? 1 : -ENAMETOOLONG;
}

/* The path the names of entry replies give ino and its parents (inode_name()), built
 * from the end of buf. 0 and *rel in buf, or -ENOENT where a name is missing. */
static int path_of_names(struct sfs *fs, uint64_t ino, char *buf, size_t size, char **rel)
{
	char name[NAME_MAX + 1];
	size_t pos = size - 1;
	uint64_t parent;

	buf[pos] = '\0';
	/* a hint may point in a circle after renames: no path is deeper than PATH_MAX / 2 */
	for (int depth = 0; ino != BK_ROOT_INO; depth++) {
		size_t n;
		int rc = depth < PATH_MAX / 2
				 ? inode_name(fs->itab, ino, &parent, name, sizeof(name))
				 : -ELOOP;

		if (rc < 0)
			return rc;
		n = strlen(name);
		if (n + (parent != BK_ROOT_INO) > pos)
			return -ENAMETOOLONG;
		pos -= n;
		memcpy(buf + pos, name, n);
		if (parent != BK_ROOT_INO)
			buf[--pos] = '/';
		ino = parent;
	}
	*rel = buf + pos;
	return 0;
}

int path_find(struct sfs *fs, uint64_t ino, char *rel, size_t size, bool *walked)
{
	struct finding f = { .ino = ino, .rel = rel, .size = size };
	char buf[PATH_MAX], *names;
	struct bk_attr a;
	uint64_t parent;
	int rc;

	/* the names still lead to ino unless a rename or unlink since has moved it */
	*walked = false;
	if (path_of_names(fs, ino, buf, sizeof(buf), &names) == 0 &&
	    path_resolve(fs, names, &parent, &a) == 0 && a.ino == ino)
		return snprintf(rel, size, "%s", names) < (int)size ? 0 : -ENAMETOOLONG;
	*walked = true;
	rc = path_walk(fs, "", match, &f);
	return rc == 1 ? 0 : rc < 0 ? rc : -ENOENT;
}
