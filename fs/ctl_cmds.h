/* The daemon's side of the control protocol: the handler for each command. */
#ifndef SIGBUSFS_CTL_CMDS_H
#define SIGBUSFS_CTL_CMDS_H

#include "ctl.h"
#include "sfs.h"

/* Starts the control server on path (NULL: the default path, whose directory is then
 * cleared of dead daemons' sockets) with the daemon's command table and records the path
 * in fs->ctl_path. 0 or -errno (logged). */
int ctl_cmds_start(struct sfs *fs, const char *path, struct ctl_server **out);
/* The server's log sink: the daemon's log. */
void ctl_cmds_log(void *ctx, const char *msg);

#endif
