/* sigbusfs: argv -> options -> backend -> FUSE session -> loop. Everything that can be
 * wrong with the command line is reported before anything is mounted. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ctl_cmds.h"
#include "daemon.h"
#include "feed.h"
#include "inode.h"
#include "ll.h"
#include "log.h"
#include "notify.h"
#include "opts.h"
#include "readahead.h"
#include "sfs.h"
#include "tmpfile.h"

#define EXIT_USAGE 2

static int run_loop(struct fuse_session *se, const struct fuse_cmdline_opts *cmd)
{
	struct fuse_loop_config *cfg;
	int rc;

	if (cmd->singlethread)
		return fuse_session_loop(se);
	cfg = fuse_loop_cfg_create();
	if (!cfg)
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(cfg, (unsigned)cmd->clone_fd);
	/* UINT_MAX means "not given": libfuse warns if it is passed on as a limit */
	if (cmd->max_idle_threads != UINT_MAX)
		fuse_loop_cfg_set_idle_threads(cfg, cmd->max_idle_threads);
	fuse_loop_cfg_set_max_threads(cfg, cmd->max_threads);
	rc = fuse_session_loop_mt(se, cfg);
	fuse_loop_cfg_destroy(cfg);
	return rc;
}

/* Mounts, serves until unmounted or signalled, unmounts. ready_fd: daemon_fork()'s, or
 * -1 in the foreground. 0 or -errno. */
static int serve(struct sfs *fs, const struct opts *o, int ready_fd)
{
	struct ctl_server *ctl;
	struct feed *feed;
	int rc;

	if (fuse_set_signal_handlers(fs->se) != 0)
		return -EIO;
	rc = fuse_session_mount(fs->se, o->cmd.mountpoint);
	if (rc != 0) {
		rc = -EIO;
		goto out_signals;
	}
	rc = tmpfile_install(fs);
	if (rc < 0)
		goto out_unmount;
	/* before INIT is answered: the kernel applies its max_readahead as a cap */
	rc = o->readahead_kb ? readahead_set(fs->mountpoint, o->readahead_kb) : 0;
	/* only root may: a user's daemon says so when asked for it */
	if (rc < 0 && o->readahead)
		log_warn("readahead %u KiB: %s (the kernel's default stays)", o->readahead_kb,
			 strerror(-rc));
	if (ready_fd >= 0) {
		daemon_ready(ready_fd);
		log_use_syslog();
	} else {
		fuse_daemonize(true);
	}
	/* in the daemon, before the threads that serve */
	rc = selfstat_start(fs->mountpoint, o->cmd.singlethread ? 1 : SELFSTAT_MAX, &fs->self);
	if (rc < 0)
		goto out_unmount;
	rc = ctl_cmds_start(fs, o->ctl, &ctl);
	if (rc < 0)
		goto out_selfstat;
	rc = feed_start(fs, o->feed_window_ms, &feed);
	if (rc < 0) {
		log_err("starting the change feed: %s", strerror(-rc));
		goto out_ctl;
	}
	log_info("serving %s on %s, control socket %s", o->source, fs->mountpoint, fs->ctl_path);
	rc = run_loop(fs->se, &o->cmd);
	/* libfuse's loop returns the number of the signal that ended it: a stop asked for */
	if (rc > 0) {
		log_info("stopping on %s", strsignal(rc));
		rc = 0;
	}
	feed_stop(feed);
out_ctl:
	ctl_stop(ctl);
out_selfstat:
	selfstat_stop(fs->self);
	fs->self = NULL;
out_unmount:
	/* after "sigbusctl abort" the mount stays, as a crashed daemon leaves it */
	if (!fs->aborted)
		fuse_session_unmount(fs->se);
out_signals:
	fuse_remove_signal_handlers(fs->se);
	return rc;
}

static void print_version(void)
{
	printf("sigbusfs version %s\n", SIGBUSFS_VERSION);
	printf("libfuse version %s\n", fuse_pkgversion());
	fuse_lowlevel_version();
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct sfs fs;
	struct opts o;
	int status = EXIT_USAGE, ready_fd = -1;

	log_init(LOG_LVL_INFO);
	if (opts_parse(&args, &o) < 0) {
		fprintf(stderr, "sigbusfs: see 'sigbusfs --help'\n");
		goto out_free;
	}
	status = EXIT_SUCCESS;
	if (o.cmd.show_help || o.cmd.show_version) {
		if (o.cmd.show_help)
			opts_help(argv[0]);
		else
			print_version();
		goto out_free;
	}
	if (o.cmd.debug)
		log_init(LOG_LVL_DEBUG);
	status = EXIT_FAILURE;
	if (!o.cmd.foreground && (ready_fd = daemon_fork()) < 0) {
		fprintf(stderr, "sigbusfs: cannot start in the background: %s\n",
			strerror(-ready_fd));
		goto out_free;
	}
	status = EXIT_USAGE;
	if (sfs_init(&fs, &o) < 0 || notify_new(&args, &fs.notify) < 0)
		goto out_teardown;
	fs.se = fuse_session_new(&args, &sfs_ll_ops, sizeof(sfs_ll_ops), &fs);
	if (!fs.se) {
		fprintf(stderr, "sigbusfs: see 'sigbusfs --help' for the accepted options\n");
		goto out_teardown;
	}
	status = serve(&fs, &o, ready_fd) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
out_teardown:
	sfs_destroy(&fs);
out_free:
	opts_free(&o);
	fuse_opt_free_args(&args);
	return status;
}
