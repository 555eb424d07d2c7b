/* Path resolution and subtree walks over the backend. A walk lists one directory fully
 * before descending, so no backend lock is held across the callback. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

static void listing_free(struct listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
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
	listing_free(&l);
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

int path_find(struct sfs *fs, uint64_t ino, char *rel, size_t size)
{
	struct finding f = { .ino = ino, .rel = rel, .size = size };
	int rc = path_walk(fs, "", match, &f);

	return rc == 1 ? 0 : rc < 0 ? rc : -ENOENT;
}
