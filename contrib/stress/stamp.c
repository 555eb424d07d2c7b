/* Page stamps: every page sigbus-stress writes names its file, page index and version in
 * a header with a checksum of its body, and the body is a pseudo-random function of the
 * three, so a page that is torn, misplaced or from another version is recognised. */
#include <stdio.h>
#include <string.h>

#include "stress.h"

#define STAMP_MAGIC "SBS1:"

/* The printable bytes a stamp uses: '#'..'~' without '\\' (and so no space, '"' or NUL). */
static char body_byte(uint64_t x)
{
	unsigned c = 0x23 + (unsigned)(x % 91);

	return (char)(c >= 0x5c ? c + 1 : c);
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static void body_fill(char *body, size_t n, unsigned file, unsigned pg, uint32_t version)
{
	uint64_t s = mix64(((uint64_t)file << 52) ^ ((uint64_t)pg << 32) ^ version);

	for (size_t i = 0; i < n; i++) {
		if (i % 8 == 0)
			s = mix64(s + i);
		body[i] = body_byte(s >> (8 * (i % 8)));
	}
}

static uint32_t fnv1a(const char *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 16777619u;
	return h;
}

static void header_fill(char *hdr, unsigned file, unsigned pg, uint32_t version, uint32_t sum)
{
	char tmp[STAMP_HDR + 1];
	int n = snprintf(tmp, sizeof(tmp), STAMP_MAGIC "f=%04x:p=%06x:v=%08x:c=%08x:", file, pg,
			 version, sum);

	memset(tmp + n, '.', STAMP_HDR - (size_t)n);
	memcpy(hdr, tmp, STAMP_HDR);
}

void stamp_fill(char *page, unsigned file, unsigned pg, uint32_t version)
{
	body_fill(page + STAMP_HDR, PG - STAMP_HDR, file, pg, version);
	header_fill(page, file, pg, version, fnv1a(page + STAMP_HDR, PG - STAMP_HDR));
}

void stamp_image(char *page, unsigned file, unsigned pg, const struct pstate *st)
{
	memset(page, 0, PG);
	if (st->version == 0 || st->eof == 0)
		return;
	stamp_fill(page, file, pg, st->version);
	memset(page + st->len, 0, PG - st->len);
}

/* The length of the stamp in page: bytes before the first NUL. */
static unsigned stamp_len(const char *page, unsigned len)
{
	const char *z = memchr(page, 0, len);

	return z ? (unsigned)(z - page) : len;
}

static bool is_zero(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i])
			return false;
	}
	return true;
}

static unsigned first_nonzero(const char *p, unsigned n)
{
	unsigned i = 0;

	while (i < n && !p[i])
		i++;
	return i;
}

static int bad(struct obs *out, const char *why, unsigned at)
{
	out->kind = OBS_BAD;
	snprintf(out->why, sizeof(out->why), "%s at byte %u", why, at);
	return 0;
}

/* Checks the body against the generator: the first differing byte, or n. */
static unsigned body_check(const char *page, unsigned n, const struct obs *o)
{
	char want[PG];

	body_fill(want, n - STAMP_HDR, o->file, o->page, o->version);
	for (unsigned i = STAMP_HDR; i < n; i++) {
		if (page[i] != want[i - STAMP_HDR])
			return i;
	}
	return n;
}

static int decode_stamp(const char *page, unsigned len, unsigned n, struct obs *out)
{
	unsigned f, p, v, c, at;
	char want[STAMP_HDR];

	if (n < STAMP_HDR ||
	    sscanf(page, STAMP_MAGIC "f=%4x:p=%6x:v=%8x:c=%8x:", &f, &p, &v, &c) != 4)
		return bad(out, "no stamp header", 0);
	header_fill(want, f, p, v, c);
	if (memcmp(want, page, STAMP_HDR) != 0)
		return bad(out, "malformed stamp header", 0);
	*out = (struct obs){ .kind = OBS_STAMP, .file = f, .page = p, .version = v, .len = n };
	at = body_check(page, n, out);
	if (at < n)
		return bad(out, "body differs from the header's version", at);
	if (n == PG && fnv1a(page + STAMP_HDR, PG - STAMP_HDR) != c)
		return bad(out, "checksum mismatch", STAMP_HDR);
	if (n < MIN_TAIL)
		return bad(out, "stamp cut too short", n);
	if (!is_zero(page + n, len - n))
		return bad(out, "bytes after the zeros", n);
	return 0;
}

void stamp_decode(const char *page, unsigned len, struct obs *out)
{
	unsigned n = stamp_len(page, len);

	memset(out, 0, sizeof(*out));
	if (n == 0 && is_zero(page, len)) {
		out->kind = OBS_ZERO;
		return;
	}
	if (n == 0)
		bad(out, "zeros, then data", first_nonzero(page, len));
	else
		decode_stamp(page, len, n, out);
}
