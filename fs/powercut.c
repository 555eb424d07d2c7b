/* The power cut and the checkpoint (events.h): what clients had not made durable is lost
 * as the device goes away, and sync makes everything durable now. The undo copies are
 * durable.c's. */
#include <errno.h>
#include <string.h>

#include "durable.h"
#include "events.h"

/* 0, or -EOPNOTSUPP with a message when the mount tracks nothing. */
static int need_tracking(struct ev *e)
{
	if (e->fs->durable)
		return 0;
	ev_result_text(e->res, EV_ERRMSG,
		       "this mount does not track durability: mount it with -o powercut");
	return -EOPNOTSUPP;
}

static void note_count(struct ev *e, struct durable_count c)
{
	ev_note(e, "files", "%llu", (unsigned long long)c.files);
	ev_note(e, "bytes", "%llu", (unsigned long long)c.bytes);
}

/* The power cut in event e: of rel, or of the whole mount (is_flipped: a trigger set it
 * unplugging, or rel revoking, already). */
static int powercut(struct ev *e, const char *rel, bool is_flipped)
{
	struct durable_count lost;
	struct bk_attr a = { 0 };
	int rc = need_tracking(e), err;

	if (rc == 0 && rel)
		rc = ev_file(e, rel, &a);
	/* first no client may reach the files, so the dirty pages in the kernel are lost */
	if (rc == 0)
		rc = rel ? ev_revoke_in(e, rel, EIO, is_flipped)
			 : ev_unplug_in(e, false, is_flipped);
	if (rc < 0)
		return rc;
	lost = durable_revert(e->fs->durable, e->fs->bk, rel ? a.ino : 0, &err);
	note_count(e, lost);
	if (err < 0)
		ev_result_text(e->res, EV_ERRMSG, "reverting the backend: %s", strerror(-err));
	return err;
}

int ev_powercut(struct sfs *fs, struct ev_result *res, const char *rel)
{
	struct ev e;

	ev_begin(&e, fs, res, "powercut", rel);
	return ev_end(&e, powercut(&e, rel, false));
}

int ev_powercut_fired(struct sfs *fs, struct ev_result *res, const char *rel, const char *cause)
{
	struct ev e;

	ev_begin(&e, fs, res, "powercut", rel);
	ev_note(&e, "cause", "%s", cause);
	return ev_end(&e, powercut(&e, rel, true));
}

int ev_sync(struct sfs *fs, struct ev_result *res, const char *rel)
{
	struct bk_attr a = { 0 };
	struct ev e;
	int rc;

	ev_begin(&e, fs, res, "sync", rel);
	rc = need_tracking(&e);
	if (rc == 0 && rel)
		rc = ev_file(&e, rel, &a);
	if (rc < 0)
		return ev_end(&e, rc);
	note_count(&e, durable_pending(fs->durable, fs->bk, rel ? a.ino : 0));
	durable_sync(fs->durable, rel ? a.ino : 0);
	return ev_end(&e, 0);
}
