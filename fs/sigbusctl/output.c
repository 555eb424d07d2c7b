/* sigbusctl's output: the help texts, made from the protocol's command table, and the
 * daemon's replies as text or as JSON. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sigbusctl.h"

/* Prints text wrapped at 78 columns, each line indented by indent spaces. */
static void wrap(FILE *f, const char *text, int indent)
{
	size_t width = (size_t)(78 - indent), n;
	const char *p = text;

	while (*p) {
		n = strlen(p);
		if (n > width) {
			n = width;
			while (n > 0 && p[n] != ' ')
				n--;
			if (n == 0)
				n = (size_t)(strchrnul(p + width, ' ') - p);
		}
		fprintf(f, "%*s%.*s\n", indent, "", (int)n, p);
		p += n;
		while (*p == ' ')
			p++;
	}
}

void output_help_all(FILE *f)
{
	fputs("Usage: " USAGE_HEAD "COMMAND [ARGS]\n"
	      "       sigbusctl help [COMMAND]\n\n"
	      "Drives a sigbusfs daemon through its control socket: each command returns\n"
	      "once the backend has changed and the kernel has been told.\n\n"
	      "Options:\n"
	      "  -m MOUNTPOINT  the daemon of this mount (its socket is the user.sigbusfs.ctl\n"
	      "                 attribute of the mount's root); absolute PATHs starting with\n"
	      "                 it work\n"
	      "  -S SOCKET      the control socket itself (wins over -m)\n"
	      "  --json         print the reply as one JSON object (one per line with --follow)\n"
	      "  -h, --help     this help; 'sigbusctl COMMAND --help' for a command's\n"
	      "  -V, --version  print the version\n"
	      "Without -m and -S, the socket is $SIGBUSCTL_SOCKET.\n\nCommands:\n",
	      f);
	for (int i = 0; i < CTL_CMD_COUNT; i++)
		fprintf(f, "  %-10s %s\n", ctl_cmd_get(i)->name, ctl_cmd_get(i)->brief);
	fputs("\nPATH is relative to the mount root. OFF, LEN, SIZE, --len and --bytes take a K, "
	      "M,\n"
	      "G or T suffix (binary: 4K = 4096). E is an errno name (EIO) or number.\n"
	      "Exit status: 0 ok, 1 the daemon answered err or could not be reached, 2 usage.\n",
	      f);
}

void output_help_cmd(FILE *f, const struct ctl_cmd_desc *d)
{
	fprintf(f, "Usage: " USAGE_HEAD "%s\n\n", d->usage);
	wrap(f, d->help, 0);
	fprintf(f, "\nExample:\n  %s\n", d->example);
}

void output_help_markdown(FILE *f)
{
	for (int i = 0; i < CTL_CMD_COUNT; i++) {
		const struct ctl_cmd_desc *d = ctl_cmd_get(i);

		fprintf(f, "### `%s`\n\n", d->usage);
		wrap(f, d->help, 0);
		fprintf(f, "\n    %s\n\n", d->example);
	}
}

/* "0", "42", "-7": no sign but '-', no leading zero, nothing else. */
static bool is_decimal(const char *v)
{
	const char *d = v + (v[0] == '-');
	size_t n = strspn(d, "0123456789");

	return n && !d[n] && (n == 1 || d[0] != '0');
}

/* "12.000345678": decimal digits, one '.', more digits (the log's times). */
static bool is_fraction(const char *v)
{
	size_t n = strspn(v, "0123456789");

	return n && v[n] == '.' && strspn(v + n + 1, "0123456789") == strlen(v + n + 1) && v[n + 1];
}

/* A decimal integer value becomes a JSON number, and so does a decimal fraction (written
 * as it came, every digit kept); anything else a string. */
static json_object *json_value(const struct ctl_kv *kv)
{
	const char *v = kv->value;
	bool is_int = is_decimal(v);
	char *end;

	if (is_fraction(v))
		return json_object_new_double_s(strtod(v, NULL), v);
	errno = 0;
	if (is_int && v[0] == '-') {
		long long x = strtoll(v, &end, 10);

		if (!errno)
			return json_object_new_int64(x);
	} else if (is_int) {
		unsigned long long x = strtoull(v, &end, 10);

		if (!errno)
			return json_object_new_uint64(x);
	}
	return json_object_new_string_len(v, (int)kv->value_len);
}

static json_object *json_data(const struct ctl_kv *kv, size_t n, const char *records);

/* A record ("off=0 len=4096") as an object; a value that is not one, as a string. */
static json_object *json_record(const struct ctl_kv *kv)
{
	struct ctl_kv *fields;
	json_object *o;
	size_t n;

	if (ctl_kv_split(kv->value, kv->value_len, &fields, &n) < 0)
		return json_object_new_string_len(kv->value, (int)kv->value_len);
	o = json_data(fields, n, NULL);
	ctl_kv_free(fields, n);
	return o;
}

/* {key: value}; a key that repeats gets an array of its values, in order; the key
 * records (may be NULL) an array of objects, empty when it is absent. */
static json_object *json_data(const struct ctl_kv *kv, size_t n, const char *records)
{
	json_object *data = json_object_new_object(), *old, *arr;

	if (records)
		json_object_object_add(data, records, json_object_new_array());
	for (size_t i = 0; i < n; i++) {
		bool is_record = records && !strcmp(kv[i].key, records);

		if (!json_object_object_get_ex(data, kv[i].key, &old)) {
			json_object_object_add(data, kv[i].key, json_value(&kv[i]));
			continue;
		}
		if (is_record) {
			json_object_array_add(old, json_record(&kv[i]));
			continue;
		}
		if (!json_object_is_type(old, json_type_array)) {
			arr = json_object_new_array();
			json_object_array_add(arr, json_object_get(old));
			json_object_object_add(data, kv[i].key, arr);
			old = arr;
		}
		json_object_array_add(old, json_value(&kv[i]));
	}
	return data;
}

static void json_print(json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	fflush(stdout);
}

/* {"ok": ..., "summary" or "errno" and "message", "data": {...}} */
static void print_json(const struct ctl_result *r, const char *records)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "ok", json_object_new_boolean(r->is_ok));
	if (r->is_ok) {
		json_object_object_add(o, "summary",
				       *r->text ? json_object_new_string(r->text) : NULL);
	} else {
		json_object_object_add(o, "errno", json_object_new_string(r->errname));
		json_object_object_add(o, "message", json_object_new_string(r->text));
	}
	if (r->is_ok || r->nkv)
		json_object_object_add(o, "data",
				       json_data(r->kv, r->nkv, r->is_ok ? records : NULL));
	json_print(o);
}

/* The message without a leading "CMD: ", which the error line already has. */
static const char *own_message(const char *msg, const char *cmd)
{
	size_t n = strlen(cmd);

	return !strncmp(msg, cmd, n) && !strncmp(msg + n, ": ", 2) ? msg + n + 2 : msg;
}

/* The summary, then "key: value" lines, records as output_reply() says; an err and its
 * lines go to stderr. */
static void print_text(const struct ctl_result *r, const struct ctl_cmd_desc *d)
{
	FILE *f = r->is_ok ? stdout : stderr;
	const struct ctl_kv *kv;

	if (!r->is_ok)
		fprintf(stderr, "sigbusctl: %s: %s: %s\n", d->name, r->errname,
			*r->text ? own_message(r->text, d->name) : "failed");
	else if (*r->text)
		printf("%s\n", r->text);
	for (size_t i = 0; i < r->nkv; i++) {
		kv = &r->kv[i];
		if (!d->records || strcmp(kv->key, d->records))
			fprintf(f, "%s: %s\n", kv->key, kv->raw);
		else if (d->flags & CTL_F_STREAM)
			fprintf(f, "%s\n", kv->value);
		else
			fprintf(f, "%s: %s\n", kv->key, kv->value);
	}
	fflush(f);
}

void output_reply(const struct ctl_result *r, const struct ctl_cmd_desc *d, bool is_json)
{
	if (is_json)
		print_json(r, d->records);
	else
		print_text(r, d);
}

void output_stream_line(const char *line, size_t len, bool is_json)
{
	struct ctl_kv *kv;
	size_t n;
	json_object *o;

	if (!is_json) {
		printf("%s\n", line);
		fflush(stdout);
		return;
	}
	if (ctl_kv_split(line, len, &kv, &n) == 0) {
		json_print(json_data(kv, n, NULL));
		ctl_kv_free(kv, n);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "line", json_object_new_string_len(line, (int)len));
	json_print(o);
}
