/* sigbusctl's two halves: main.c reads the arguments and talks to the daemon, output.c
 * prints help and replies. */
#ifndef SIGBUSFS_SIGBUSCTL_H
#define SIGBUSFS_SIGBUSCTL_H

#include <stdbool.h>
#include <stdio.h>

#include "ctl_client.h"

#define USAGE_HEAD "sigbusctl [-m MOUNTPOINT | -S SOCKET] [--json] "

/* sigbusctl --help: the options and the list of commands. */
void output_help_all(FILE *f);
/* sigbusctl COMMAND --help: the command's usage, help and example. */
void output_help_cmd(FILE *f, const struct ctl_cmd_desc *d);
/* sigbusctl help --markdown: the command reference for the README. */
void output_help_markdown(FILE *f);

/* Prints a reply to command d: one JSON object on stdout, or text (an err on stderr).
 * The values of d->records are records: objects in an array (empty when none came) in
 * JSON, unquoted lines in text (bare for a streaming command, as its stream prints them;
 * "key: record" otherwise). */
void output_reply(const struct ctl_result *r, const struct ctl_cmd_desc *d, bool is_json);
/* Prints a streamed line (log --follow): as it came, or as a JSON object of its
 * key=value words. */
void output_stream_line(const char *line, size_t len, bool is_json);

#endif
