/* The kernel's readahead for the mount: the read_ahead_kb of its backing device info
 * (bdi), which caps the READs a sequential reader causes (128 KiB by default). */
#ifndef SIGBUSFS_READAHEAD_H
#define SIGBUSFS_READAHEAD_H

/* Sets read_ahead_kb of the bdi of the newest mount on mountpoint (an absolute path, as
 * /proc/self/mountinfo shows it), found in mountinfo: the mount is never stat()ed. Call
 * after mounting and before answering INIT, whose max_readahead the kernel then takes as
 * a cap (ll_init() raises it to match). 0, -ENOENT (no such mount) or -errno of the
 * write (-EACCES when not root). */
int readahead_set(const char *mountpoint, unsigned kb);

#endif
