/* How a client finds a mount's daemon: the daemon answers this extended attribute of the
 * mount's root with the path of its control socket (fs/ll_attr.c), and clients read it
 * (ctl_client_socket_of(), sigbusctl -m). A header of its own, so that the daemon's FUSE
 * side includes nothing of the protocol. */
#ifndef SIGBUSFS_CTL_XATTR_H
#define SIGBUSFS_CTL_XATTR_H

#define CTL_XATTR "user.sigbusfs.ctl"

#endif
