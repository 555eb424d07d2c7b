/* SOURCE, the daemon's first argument: "scheme:arg" split at the first ':', the backend
 * found by its scheme, and arg parsed into the typed struct bk_source that the backend's
 * open() receives, as its source_form says (backend.h). Backends parse no text. */
#ifndef SIGBUSFS_SOURCE_H
#define SIGBUSFS_SOURCE_H

#include <stddef.h>

#include "backend.h"

struct source {
	const struct bk_ops *ops; /* the backend */
	struct bk_source bk;	  /* bk.arg points into the text that was parsed */
};

/* Parses text ("mem:512M") into *out. 0, or -EINVAL with a one-line message in err
 * ("unknown source 'x': expected mem:, mem:SIZE"). out->bk.arg borrows from text. */
int source_parse(const char *text, struct source *out, char *err, size_t errsize);
/* Parses arg, the text after "scheme:", as ops->source_form says. 0, or -EINVAL with a
 * message in err ("mem: size '12Q': not a number ..."). out->arg is arg. */
int source_parse_arg(const struct bk_ops *ops, const char *arg, struct bk_source *out, char *err,
		     size_t errsize);
/* A path source (BK_SOURCE_PATH) must lie outside the mount point: -EINVAL with a message
 * in err ("dir: /mnt/x: inside the mount point /mnt ..."), else 0 (also when a path does
 * not resolve: the backend reports that). */
int source_check_outside(const struct source *src, const char *mountpoint, char *err,
			 size_t errsize);

#endif
