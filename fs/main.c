/* sigbusfs: argv -> options -> backend -> FUSE session -> loop. Everything that can be
 * wrong with the command line is reported before anything is mounted. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "inode.h"
#include "ll.h"
#include "log.h"
#include "opts.h"
#include "sfs.h"

#define EXIT_USAGE 2
#define STRICT_TIMEOUT 86400.0 /* seconds: the kernel's view changes only on events */

static const double cache_timeouts[] = {
	[CACHE_STRICT] = STRICT_TIMEOUT,
	[CACHE_AUTO] = 1.0,
	[CACHE_NONE] = 0.0,
};

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
	fuse_loop_cfg_set_idle_threads(cfg, cmd->max_idle_threads);
	fuse_loop_cfg_set_max_threads(cfg, cmd->max_threads);
	rc = fuse_session_loop_mt(se, cfg);
	fuse_loop_cfg_destroy(cfg);
	return rc;
}

/* Mounts, serves until unmounted or signalled, unmounts. 0 or -errno. */
static int serve(struct sfs *fs, const struct opts *o)
{
	int rc;

	if (fuse_set_signal_handlers(fs->se) != 0)
		return -EIO;
	rc = fuse_session_mount(fs->se, o->cmd.mountpoint);
	if (rc != 0) {
		rc = -EIO;
		goto out_signals;
	}
	fuse_daemonize(o->cmd.foreground);
	if (!o->cmd.foreground)
		log_use_syslog();
	log_info("serving %s on %s", o->source, o->cmd.mountpoint);
	rc = run_loop(fs->se, &o->cmd);
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

static int setup(struct sfs *fs, const struct opts *o)
{
	int rc = bk_open(o->source, &fs->bk);

	if (rc < 0)
		return rc;
	rc = itab_new(&fs->itab);
	if (rc < 0)
		return rc;
	fs->cache_mode = o->cache_mode;
	fs->timeout = cache_timeouts[o->cache_mode];
	return 0;
}

static void teardown(struct sfs *fs)
{
	if (fs->se)
		fuse_session_destroy(fs->se);
	itab_free(fs->itab);
	if (fs->bk)
		bk_close(fs->bk);
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct sfs fs = { 0 };
	struct opts o;
	int status = EXIT_USAGE;

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
	status = EXIT_USAGE;
	if (setup(&fs, &o) < 0)
		goto out_teardown;
	fs.se = fuse_session_new(&args, &sfs_ll_ops, sizeof(sfs_ll_ops), &fs);
	if (!fs.se) {
		fprintf(stderr, "sigbusfs: see 'sigbusfs --help' for the accepted options\n");
		goto out_teardown;
	}
	status = serve(&fs, &o) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
out_teardown:
	teardown(&fs);
out_free:
	opts_free(&o);
	fuse_opt_free_args(&args);
	return status;
}
