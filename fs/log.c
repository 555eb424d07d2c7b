/* The log sink. The sink and level are set once in main() before any worker thread
 * starts and only read afterwards, so they need no lock. */
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

#include <fuse_log.h>

#include "log.h"

static struct {
	enum log_level max;
	bool to_syslog;
} sink = { LOG_LVL_INFO, false };

static const int syslog_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

static void log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
{
	if (lvl > sink.max)
		return;
	if (sink.to_syslog) {
		vsyslog(syslog_prio[lvl], fmt, ap);
		return;
	}
	fputs("sigbusfs: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(lvl, fmt, ap);
	va_end(ap);
}

static void log_from_fuse(enum fuse_log_level level, const char *fmt, va_list ap)
{
	enum log_level lvl = LOG_LVL_DEBUG;

	if (level <= FUSE_LOG_ERR)
		lvl = LOG_LVL_ERR;
	else if (level == FUSE_LOG_WARNING)
		lvl = LOG_LVL_WARN;
	else if (level <= FUSE_LOG_INFO)
		lvl = LOG_LVL_INFO;
	if (lvl > sink.max)
		return;
	if (sink.to_syslog) {
		vsyslog(syslog_prio[lvl], fmt, ap);
		return;
	}
	/* libfuse messages carry their own "fuse: " prefix and newline */
	vfprintf(stderr, fmt, ap);
}

void log_init(enum log_level max)
{
	sink.max = max;
	fuse_set_log_func(log_from_fuse);
}

void log_use_syslog(void)
{
	openlog("sigbusfs", LOG_PID, LOG_DAEMON);
	sink.to_syslog = true;
}
