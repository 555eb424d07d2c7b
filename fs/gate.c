/* Gate decisions and file handles. Design note: a handle stores the event sequence number
 * current when it was opened. It is dead once an unplug or a revocation of its inode
 * started after that, even when the inode is live again after replug: old descriptors never
 * come back. A handle holds its inode's table entry, so requests that carry one (READ and
 * WRITE above all) read the inode's state without the table lock. All state read here is
 * atomic or taken under short locks that no notification is ever sent under. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "gate.h"
#include "trigger.h"

/* While a revocation truncates the kernel's cache: the forced stat (no handle) learns size
 * 0, but read(2) on an open descriptor, which asks for attributes with its handle before
 * reading past the cached size, must fail, not see end of file. */
static int revoking(enum gate_op op, int err, uint64_t fh)
{
	if (op == GATE_ATTR && fh != GATE_NO_HANDLE)
		return -err;
	if (op == GATE_ATTR)
		return GATE_SIZE_ZERO;
	if (op == GATE_LOOKUP || op == GATE_DIR)
		return 0;
	return -err;
}

static int plug_verdict(struct sfs *fs, uint64_t ino, enum gate_op op, uint64_t fh)
{
	int plug = atomic_load(&fs->plug);
	bool is_root = ino == BK_ROOT_INO;

	if (plug == PLUG_ON)
		return 0;
	/* the mount point itself stays a directory one can stat */
	if (is_root && op == GATE_ATTR)
		return 0;
	if (plug == PLUG_GOING)
		return revoking(op, EIO, fh);
	if (plug == PLUG_VANISHED && is_root && op == GATE_DIR)
		return GATE_EMPTY;
	/* names are gone (unplug dropped them from the kernel's cache, so every path is
	 * looked up again); an inode reached through an old descriptor fails as a dead
	 * device would: fstat's GETATTR carries no handle, so attributes say EIO too */
	if (plug == PLUG_VANISHED && op != GATE_ATTR && op <= GATE_OPEN)
		return -ENOENT;
	return -EIO;
}

struct gate_handle {
	uint64_t opened;     /* event seq when opened */
	struct inode *inode; /* held until released */
	bool is_writer;	     /* opened for writing */
};

static struct gate_handle *handle_of(uint64_t fh)
{
	return (struct gate_handle *)(uintptr_t)fh;
}

static int inode_verdict(struct sfs *fs, uint64_t ino, enum gate_op op, uint64_t fh)
{
	struct gate_handle *h = handle_of(fh);
	uint64_t revoked_at = 0;
	int err = EIO;
	enum inode_state s = h ? inode_state_of(h->inode, &err, &revoked_at)
			       : inode_state(fs->itab, ino, &err, &revoked_at);

	if (s == INODE_REVOKING)
		return revoking(op, err, fh);
	if (s == INODE_REVOKED)
		return -err;
	/* without a handle, only the kernel's old inode can name a stale one; a lookup
	 * gives it the new generation (the kernel's old inode goes bad) */
	if (s == INODE_STALE && !h && op != GATE_LOOKUP)
		return -EIO;
	if (!h)
		return 0;
	if (h->opened < atomic_load(&fs->unplugged_at) || h->opened < revoked_at)
		return -EIO;
	return 0;
}

/* The fault rules and triggers, and torn rules when torn is not NULL. *is_fired says a
 * trigger turned the mount's state. */
static int rule_verdict(struct sfs *fs, uint64_t ino, enum gate_op op, uint64_t off, uint64_t len,
			bool *is_fired, struct rule *torn)
{
	static const int rule_of[] = {
		[GATE_OPEN] = RULE_OPEN,
		[GATE_READ] = RULE_READ,
		[GATE_WRITE] = RULE_WRITE,
		[GATE_FSYNC] = RULE_FSYNC,
	};
	unsigned delay_ms = 0;
	struct rule fired;
	int rc;

	if (op < GATE_OPEN)
		return 0;
	rc = rules_match(fs->rules, ino, (enum rule_op)rule_of[op], off, len, &delay_ms, &fired,
			 torn);
	if (fired.id) {
		const struct trigger_cause c = { ino, (enum rule_op)rule_of[op], off, len };
		/* a write a fail rule refuses is not torn */
		int armed = trigger_fire(fs, &fired, &c, &delay_ms, rc == 0 ? torn : NULL);

		rc = rc < 0 ? rc : armed;
		*is_fired = fired.then != THEN_RULE;
	}
	if (delay_ms > 0) {
		struct timespec ts = { delay_ms / 1000, (long)(delay_ms % 1000) * 1000000L };

		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
	return rc;
}

/* The plug state and the inode's; a refused write is data lost. */
static int state_verdict(struct sfs *fs, uint64_t ino, enum gate_op op, uint64_t fh, uint64_t len)
{
	int rc = plug_verdict(fs, ino, op, fh);

	if (rc == 0)
		rc = inode_verdict(fs, ino, op, fh);
	if (rc < 0 && op == GATE_WRITE) {
		/* dirty data the kernel tried to write back to a revoked file is gone */
		atomic_fetch_add(&fs->stats.lost_bytes, len);
		gate_count(fs, ino, fh, IC_LOST_BYTES, len);
	}
	return rc;
}

static int gate_torn(struct sfs *fs, uint64_t ino, enum gate_op op, uint64_t fh, uint64_t off,
		     uint64_t len, struct rule *torn)
{
	bool is_fired = false;
	int rc = state_verdict(fs, ino, op, fh, len);

	if (rc == 0)
		rc = rule_verdict(fs, ino, op, off, len, &is_fired, torn);
	/* the request that fired an unplug or a power cut meets it */
	if (rc == 0 && is_fired)
		rc = state_verdict(fs, ino, op, fh, len);
	if (rc < 0) {
		atomic_fetch_add(&fs->stats.errors, 1);
		gate_count(fs, ino, fh, IC_ERRORS, 1);
	}
	return rc;
}

int gate(struct sfs *fs, uint64_t ino, enum gate_op op, uint64_t fh, uint64_t off, uint64_t len)
{
	return gate_torn(fs, ino, op, fh, off, len, NULL);
}

int gate_write(struct sfs *fs, uint64_t ino, uint64_t fh, uint64_t off, uint64_t len,
	       struct rule *torn)
{
	torn->id = 0;
	return gate_torn(fs, ino, GATE_WRITE, fh, off, len, torn);
}

int gate_open(struct sfs *fs, uint64_t ino, bool is_writer, uint64_t *fh_out)
{
	struct gate_handle *h = malloc(sizeof(*h));
	uint64_t finished;
	int rc;

	*fh_out = GATE_NO_HANDLE;
	if (!h)
		return -ENOMEM;
	h->is_writer = is_writer;
	rc = inode_hold(fs->itab, ino, is_writer, &h->inode);
	if (rc < 0) {
		free(h);
		return rc;
	}
	evlog_seqs(fs->evlog, &h->opened, &finished);
	*fh_out = (uint64_t)(uintptr_t)h;
	return 0;
}

void gate_release(struct sfs *fs, uint64_t fh)
{
	struct gate_handle *h = handle_of(fh);

	inode_unhold(fs->itab, h->inode, h->is_writer);
	free(h);
}

void gate_count(struct sfs *fs, uint64_t ino, uint64_t fh, enum inode_counter c, uint64_t n)
{
	if (fh != GATE_NO_HANDLE)
		inode_count_of(handle_of(fh)->inode, c, n);
	else
		inode_count(fs->itab, ino, c, n);
}
