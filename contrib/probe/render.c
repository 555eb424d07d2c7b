/* sigbus-probe's output: the page map with its legend and counts for a person, the
 * "page N: ..." lines of --hold and --list, and the JSON of --json. Everything here reads
 * a finished sample; taking it is sample.c's business. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <string.h>

#include "probe.h"

#define MAP_ROW	  64 /* pages per line of the map */
#define MAP_GROUP 16 /* a space after every this many pages */
#define KFLAG_MAX 64

static const char *const touch_names[] = {
	[PROBE_UNTOUCHED] = "untouched",
	[PROBE_OK] = "ok",
	[PROBE_ZERO] = "zero",
	[PROBE_SIGBUS] = "sigbus",
};

char probe_page_char(const struct probe_page *p, bool is_touched)
{
	bool was_resident = p->before.is_resident;

	if (!is_touched) {
		if (p->before.is_swapped)
			return 'S';
		if (!was_resident)
			return '.';
		return p->before.is_present ? 'M' : 'R';
	}
	switch (p->touch) {
	case PROBE_OK:
		return was_resident ? 'D' : 'd';
	case PROBE_ZERO:
		return was_resident ? 'Z' : 'z';
	case PROBE_SIGBUS:
		return was_resident ? 'B' : 'b';
	default:
		return '?';
	}
}

/* The state that describes the page: after the touch if there was one. */
static const struct probe_pte *final_pte(const struct probe_page *p, bool is_touched)
{
	return is_touched ? &p->after : &p->before;
}

static void render_rows(FILE *f, const struct probe_map *map, const struct probe_sample *s)
{
	for (size_t i = 0; i < map->pages; i++) {
		if (i % MAP_ROW == 0)
			fprintf(f, "%s0x%08jx ", i ? "\n" : "",
				(uintmax_t)map->offset + i * map->page_size);
		else if (i % MAP_GROUP == 0)
			fputc(' ', f);
		fputc(probe_page_char(&s->page[i], s->is_touched), f);
	}
	fputc('\n', f);
}

static void render_legend(FILE *f, bool is_touched)
{
	if (is_touched)
		fprintf(f, "legend: D data, Z all zeros, B SIGBUS when touched; upper case: "
			   "resident before the touch\n");
	else
		fprintf(f, "legend: M resident and mapped here, R resident, S swapped, "
			   ". not resident (not touched)\n");
}

static void render_counts(FILE *f, const struct probe_sample *s)
{
	const struct probe_counts *c = &s->counts;

	fprintf(f, "pages %zu: before the touch %zu resident, %zu mapped", c->pages, c->resident,
		c->present);
	if (s->is_touched)
		fprintf(f,
			"; touch: %zu data, %zu zeros, %zu SIGBUS; after it %zu resident, "
			"%zu mapped",
			c->ok, c->zero, c->sigbus, c->after_resident, c->after_present);
	fputc('\n', f);
}

/* The flags of the mapped pages, each with how many pages have it. */
static void render_kflags(FILE *f, const struct probe_map *map, const struct probe_sample *s)
{
	size_t n[KFLAG_MAX] = { 0 }, with = 0, pfns = 0;
	uint64_t lo = UINT64_MAX, hi = 0;

	for (size_t i = 0; i < map->pages; i++) {
		const struct probe_pte *p = final_pte(&s->page[i], s->is_touched);

		pfns += p->has_pfn;
		lo = p->has_pfn && p->pfn < lo ? p->pfn : lo;
		hi = p->has_pfn && p->pfn > hi ? p->pfn : hi;
		with += p->has_kflags;
		for (unsigned b = 0; p->has_kflags && b < KFLAG_MAX; b++)
			n[b] += (p->kflags >> b) & 1;
	}
	if (pfns)
		fprintf(f,
			"pfns of the %zu mapped pages: %#" PRIx64 "..%#" PRIx64
			" (--list or --json for each)\n",
			pfns, lo, hi);
	if (!with)
		return;
	fprintf(f, "flags of the %zu mapped pages:", with);
	for (unsigned b = 0; b < KFLAG_MAX; b++) {
		const char *name = probe_kflag_name(b);

		if (!n[b])
			continue;
		if (name)
			fprintf(f, " %s %zu", name, n[b]);
		else
			fprintf(f, " BIT_%u %zu", b, n[b]);
	}
	fputc('\n', f);
}

/* Why PFNs or flags are missing, in words: never zeros that look like data. */
static const char *pfn_note(const struct probe_map *map)
{
	static char buf[128];

	if (map->pagemap_fd < 0 || map->pagemap_err) {
		snprintf(buf, sizeof(buf), "/proc/self/pagemap unreadable: %s",
			 strerror(map->pagemap_err));
		return buf;
	}
	if (!map->has_pfns)
		return "PFNs hidden: needs CAP_SYS_ADMIN (pagemap reads them as 0)";
	return NULL;
}

static const char *kflags_note(const struct probe_map *map)
{
	static char buf[128];

	if (!map->has_pfns)
		return "page flags unavailable: they are looked up by PFN";
	if (map->kpageflags_err) {
		snprintf(buf, sizeof(buf), "page flags unavailable: /proc/kpageflags: %s",
			 strerror(map->kpageflags_err));
		return buf;
	}
	return NULL;
}

void probe_render_map(FILE *f, const struct probe_map *map, const struct probe_sample *s)
{
	const char *note;

	fprintf(f, "%s: %zu pages of %zu bytes from offset %jd, %s, probe %lu at %.3fs\n",
		map->path, map->pages, map->page_size, (intmax_t)map->offset,
		map->is_private ? "MAP_PRIVATE" : "MAP_SHARED", s->seq, s->elapsed);
	render_rows(f, map, s);
	render_legend(f, s->is_touched);
	render_counts(f, s);
	note = pfn_note(map);
	if (note)
		fprintf(f, "%s\n", note);
	note = note ? NULL : kflags_note(map);
	if (note)
		fprintf(f, "%s\n", note);
	render_kflags(f, map, s);
}

static void render_flag_list(FILE *f, uint64_t kflags)
{
	const char *sep = " ";

	for (unsigned b = 0; b < KFLAG_MAX; b++) {
		const char *name = probe_kflag_name(b);

		if (!((kflags >> b) & 1))
			continue;
		if (name)
			fprintf(f, "%s%s", sep, name);
		else
			fprintf(f, "%sBIT_%u", sep, b);
		sep = ",";
	}
}

static void render_line_detail(FILE *f, const struct probe_map *map, const struct probe_pte *p)
{
	if (!p->is_present) {
		fprintf(f, "; %s", p->is_swapped ? "swapped" : "not mapped");
		return;
	}
	if (!p->has_pfn) {
		fprintf(f, "; mapped, pfn hidden");
		return;
	}
	fprintf(f, "; pfn %#" PRIx64, p->pfn);
	if (p->has_kflags)
		render_flag_list(f, p->kflags);
}

void probe_render_lines(FILE *f, const struct probe_map *map, const struct probe_sample *s,
			bool is_verbose)
{
	for (size_t i = 0; i < map->pages; i++) {
		const struct probe_page *p = &s->page[i];

		fprintf(f, "page %zu: ", i);
		if (p->touch == PROBE_SIGBUS)
			fprintf(f, "SIGBUS");
		else if (p->touch == PROBE_ZERO)
			fprintf(f, "zeros");
		else if (p->touch == PROBE_OK)
			fprintf(f, "data \"%.8s\"", (const char *)p->head);
		else
			fprintf(f, "not touched");
		fprintf(f, ", %s", p->before.is_resident ? "resident" : "not resident");
		if (is_verbose)
			render_line_detail(f, map, final_pte(p, s->is_touched));
		fputc('\n', f);
	}
}

static json_object *json_flags(uint64_t kflags)
{
	json_object *a = json_object_new_array();
	char buf[16];

	for (unsigned b = 0; a && b < KFLAG_MAX; b++) {
		const char *name = probe_kflag_name(b);

		if (!((kflags >> b) & 1))
			continue;
		if (!name) {
			snprintf(buf, sizeof(buf), "BIT_%u", b);
			name = buf;
		}
		json_object_array_add(a, json_object_new_string(name));
	}
	return a;
}

static json_object *json_pte(const struct probe_pte *p)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "resident", json_object_new_boolean(p->is_resident));
	json_object_object_add(o, "present", json_object_new_boolean(p->is_present));
	json_object_object_add(o, "swapped", json_object_new_boolean(p->is_swapped));
	json_object_object_add(o, "file", json_object_new_boolean(p->is_file));
	json_object_object_add(o, "exclusive", json_object_new_boolean(p->is_exclusive));
	json_object_object_add(o, "soft_dirty", json_object_new_boolean(p->is_soft_dirty));
	json_object_object_add(o, "pfn", p->has_pfn ? json_object_new_uint64(p->pfn) : NULL);
	json_object_object_add(o, "kflags",
			       p->has_kflags ? json_object_new_uint64(p->kflags) : NULL);
	json_object_object_add(o, "flags", p->has_kflags ? json_flags(p->kflags) : NULL);
	return o;
}

/* The first bytes of a data page as a string, non-printable bytes as '.'. */
static json_object *json_head(const struct probe_page *p)
{
	char buf[sizeof(p->head) + 1];

	for (size_t i = 0; i < sizeof(p->head); i++)
		buf[i] = isprint(p->head[i]) ? (char)p->head[i] : '.';
	buf[sizeof(p->head)] = '\0';
	return json_object_new_string(buf);
}

static json_object *json_page(const struct probe_map *map, const struct probe_sample *s, size_t i)
{
	const struct probe_page *p = &s->page[i];
	json_object *o = json_object_new_object();
	char c[2] = { probe_page_char(p, s->is_touched), '\0' };

	json_object_object_add(o, "page", json_object_new_uint64(i));
	json_object_object_add(o, "offset",
			       json_object_new_uint64((uint64_t)map->offset + i * map->page_size));
	json_object_object_add(o, "map", json_object_new_string(c));
	json_object_object_add(
		o, "touch", s->is_touched ? json_object_new_string(touch_names[p->touch]) : NULL);
	json_object_object_add(o, "head", p->touch == PROBE_OK ? json_head(p) : NULL);
	json_object_object_add(o, "before", json_pte(&p->before));
	json_object_object_add(o, "after", s->is_touched ? json_pte(&p->after) : NULL);
	return o;
}

static json_object *json_summary(const struct probe_map *map, const struct probe_sample *s)
{
	const struct probe_counts *c = &s->counts;
	json_object *o = json_object_new_object();
	const char *note = pfn_note(map);

	json_object_object_add(o, "pages", json_object_new_uint64(c->pages));
	json_object_object_add(o, "resident", json_object_new_uint64(c->resident));
	json_object_object_add(o, "present", json_object_new_uint64(c->present));
	json_object_object_add(o, "ok", json_object_new_uint64(c->ok));
	json_object_object_add(o, "zero", json_object_new_uint64(c->zero));
	json_object_object_add(o, "sigbus", json_object_new_uint64(c->sigbus));
	json_object_object_add(o, "resident_after", json_object_new_uint64(c->after_resident));
	json_object_object_add(o, "present_after", json_object_new_uint64(c->after_present));
	json_object_object_add(o, "pfns_visible", json_object_new_boolean(note == NULL));
	json_object_object_add(o, "pfns_note", note ? json_object_new_string(note) : NULL);
	note = kflags_note(map);
	json_object_object_add(o, "flags_visible", json_object_new_boolean(note == NULL));
	json_object_object_add(o, "flags_note", note ? json_object_new_string(note) : NULL);
	return o;
}

static json_object *json_sample(const struct probe_map *map, const struct probe_sample *s)
{
	json_object *o = json_object_new_object();
	json_object *pages = json_object_new_array_ext((int)map->pages);
	char t[32];

	json_object_object_add(o, "file", json_object_new_string(map->path));
	json_object_object_add(o, "offset", json_object_new_int64(map->offset));
	json_object_object_add(o, "page_size", json_object_new_uint64(map->page_size));
	json_object_object_add(o, "mapping",
			       json_object_new_string(map->is_private ? "private" : "shared"));
	json_object_object_add(o, "touched", json_object_new_boolean(s->is_touched));
	json_object_object_add(o, "probe", json_object_new_uint64(s->seq));
	snprintf(t, sizeof(t), "%.3f", s->elapsed);
	json_object_object_add(o, "elapsed", json_object_new_double_s(s->elapsed, t));
	for (size_t i = 0; i < map->pages; i++)
		json_object_array_add(pages, json_page(map, s, i));
	json_object_object_add(o, "pages", pages);
	json_object_object_add(o, "summary", json_summary(map, s));
	return o;
}

int probe_render_json(FILE *f, const struct probe_map *map, const struct probe_sample *s,
		      bool is_pretty)
{
	int flags = JSON_C_TO_STRING_NOSLASHESCAPE |
		    (is_pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED
			       : JSON_C_TO_STRING_PLAIN);
	json_object *o = json_sample(map, s);
	const char *text = o ? json_object_to_json_string_ext(o, flags) : NULL;
	int rc = text ? 0 : -ENOMEM;

	if (text)
		fprintf(f, "%s\n", text);
	json_object_put(o);
	return rc;
}
