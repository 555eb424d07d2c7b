/* Running in the background (no -f). The process forks first, before the backend is
 * opened, so that every thread a backend starts (the sqlite backend's flusher and
 * checkpointer) belongs to the daemon; the parent waits until the daemon is serving, or
 * has exited, and exits with its status, so that every error of the start still reaches
 * the terminal and the exit status. libfuse's fuse_daemonize() forks once everything is
 * open, which leaves such threads behind in the parent that exits. */
#ifndef SIGBUSFS_DAEMON_H
#define SIGBUSFS_DAEMON_H

/* In the parent, never returns. In the daemon, returns the descriptor that
 * daemon_ready() tells the parent through, or -errno (nothing forked). */
int daemon_fork(void);
/* The daemon serves: it leaves the terminal (a session of its own, the working directory
 * /, stdin, stdout and stderr on /dev/null) and lets the parent exit 0. */
void daemon_ready(int fd);

#endif
