/* Events from the backend's change feed: what another mount of the same storage changed,
 * told to the kernel through the same calls as the control commands (kern.c, events.c):
 * a DATA change as `sigbusctl write` tells its bytes, a SIZE change as `truncate`, names
 * as the kernel's dentries need. The backend has already changed, so a shrink cannot
 * tell the kernel first (kern_shrink()): if a client's short READ taught the kernel the
 * new size before the feed did, forcing it truncates nothing, so the pages from the new
 * end on are then dropped as well, which unmaps them from every shared mapping (a
 * MAP_PRIVATE copy made in that window keeps its page). Changes to inodes and directories
 * the kernel does not hold have nothing to drop and are neither applied nor logged. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "events.h"
#include "kern.h"
#include "path.h"

static const char *const feed_cmd[] = {
	[BK_CH_DATA] = "feed-write",	  [BK_CH_SIZE] = "feed-truncate",
	[BK_CH_ATTR] = "feed-attr",	  [BK_CH_NAME_ADD] = "feed-create",
	[BK_CH_NAME_DEL] = "feed-unlink", [BK_CH_RENAME] = "feed-rename",
	[BK_CH_GONE] = "feed-gone",	  [BK_CH_NAMES] = "feed-names",
};

/* Whether the kernel holds ino (the root it holds without a lookup). */
static bool feed_holds(struct sfs *fs, uint64_t ino)
{
	return ino == BK_ROOT_INO || inode_is_known(fs->itab, ino);
}

/* Whether the kernel holds what ch concerns: the live inode, or a directory named. */
static bool feed_concerns(struct sfs *fs, const struct bk_change *ch)
{
	int err;
	uint64_t at;

	if (atomic_load(&fs->plug) != PLUG_ON)
		return false;
	if (ch->kind == BK_CH_NAMES)
		return true;
	if (ch->kind == BK_CH_NAME_ADD || ch->kind == BK_CH_NAME_DEL || ch->kind == BK_CH_RENAME)
		return feed_holds(fs, ch->parent) ||
		       (ch->kind == BK_CH_RENAME && feed_holds(fs, ch->new_parent));
	return inode_is_known(fs->itab, ch->ino) &&
	       inode_state(fs->itab, ch->ino, &err, &at) == INODE_LIVE;
}

/* The bytes: dropped; the size too when the change reached the end of the file. */
static int feed_data(struct ev *e, const char *rel, const struct bk_change *ch)
{
	bool at_end = ch->off + ch->len >= ch->size;

	ev_note(e, "off", "%llu", (unsigned long long)ch->off);
	ev_note(e, "len", "%llu", (unsigned long long)ch->len);
	ev_note(e, "size", "%llu", (unsigned long long)ch->size);
	return ev_publish(e->fs, rel, ch->ino, ch->off, ch->len, at_end && rel != NULL);
}

static int feed_size(struct ev *e, const char *rel, const struct bk_change *ch)
{
	struct sfs *fs = e->fs;
	int rc = rel ? kern_sync_size(fs, rel, ch->ino, KERN_SIZE_BACKEND) : 0;

	ev_note(e, "size", "%llu", (unsigned long long)ch->size);
	if (rc == 0)
		rc = kern_inval(fs, ch->ino, (off_t)ev_page_down(fs, ch->size), 0);
	return rc;
}

/* A name came or went: the kernel's dentry (positive or negative) and the directory's
 * attributes go; for a name gone, the inode's attributes (nlink) too. */
static int feed_name(struct ev *e, uint64_t parent, const char *name, uint64_t ino)
{
	struct sfs *fs = e->fs;
	int rc = name ? kern_inval_entry(fs, parent, name) : 0;

	if (rc == 0)
		rc = kern_inval(fs, parent, -1, 0);
	if (rc == 0 && ino && inode_is_known(fs->itab, ino))
		rc = kern_inval(fs, ino, -1, 0);
	return rc;
}

static int feed_apply(struct ev *e, const char *rel, const struct bk_change *ch)
{
	switch (ch->kind) {
	case BK_CH_DATA:
		return feed_data(e, rel, ch);
	case BK_CH_SIZE:
		return feed_size(e, rel, ch);
	case BK_CH_NAME_ADD:
		return feed_name(e, ch->parent, ch->name, 0);
	case BK_CH_NAME_DEL:
		return feed_name(e, ch->parent, ch->name, ch->ino);
	case BK_CH_RENAME: {
		int rc = feed_name(e, ch->parent, ch->name, ch->ino);

		return rc ? rc : feed_name(e, ch->new_parent, ch->new_name, 0);
	}
	case BK_CH_ATTR:
	case BK_CH_GONE:
		return kern_inval(e->fs, ch->ino, -1, 0);
	case BK_CH_NAMES:
		return ev_drop_names(e, false);
	}
	return -EINVAL;
}

int ev_feed(struct sfs *fs, const struct bk_change *ch)
{
	struct ev_result res = { 0 };
	char rel[PATH_MAX], target[PATH_MAX];
	bool has_path = false, walked = false;
	struct ev e;
	int rc;

	if (ch->kind < BK_CH_DATA || ch->kind > BK_CH_NAMES || !feed_concerns(fs, ch))
		return 0;
	if (ch->kind == BK_CH_DATA || ch->kind == BK_CH_SIZE)
		has_path = path_find(fs, ch->ino, rel, sizeof(rel), &walked) == 0;
	if (has_path)
		snprintf(target, sizeof(target), "%s", rel);
	else if (ch->name || ch->kind == BK_CH_NAMES)
		snprintf(target, sizeof(target), "%s", ch->name ? ch->name : "/");
	else
		snprintf(target, sizeof(target), "#%llu", (unsigned long long)ch->ino);
	ev_begin(&e, fs, &res, feed_cmd[ch->kind], target);
	ev_note(&e, "ino", "%llu", (unsigned long long)ch->ino);
	if (ch->kind == BK_CH_DATA || ch->kind == BK_CH_SIZE)
		ev_note(&e, "path", "%s", !has_path ? "none" : walked ? "walk" : "names");
	rc = ev_end(&e, feed_apply(&e, has_path ? rel : NULL, ch));
	ev_result_free(&res);
	return rc;
}
