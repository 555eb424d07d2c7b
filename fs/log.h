/* Logging: one sink for the daemon and for libfuse's own messages: stderr while in the
 * foreground, syslog once daemonised. */
#ifndef SIGBUSFS_LOG_H
#define SIGBUSFS_LOG_H

#include <stdbool.h>

enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Installs the sink for libfuse too. Messages above max are dropped. */
void log_init(enum log_level max);
/* Switches the sink to syslog (ident "sigbusfs"); call after fuse_daemonize(). */
void log_use_syslog(void);

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_err(...)   log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
