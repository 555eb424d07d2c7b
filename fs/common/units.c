/* See units.h. Strict on purpose: what a person mistyped is refused, not half-read. */
#include <errno.h>
#include <string.h>

#include "units.h"

static int parse_digits(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

int units_parse_u64(const char *s, uint64_t *out)
{
	return parse_digits(s, strlen(s), out);
}

int units_parse_size(const char *s, uint64_t *out)
{
	static const char suffixes[] = "KMGTkmgt";
	size_t n = strlen(s);
	const char *suf = n > 1 ? strchr(suffixes, s[n - 1]) : NULL;
	unsigned shift = 0;
	uint64_t v;
	int rc;

	if (suf) {
		shift = 10 * (unsigned)((suf - suffixes) % 4 + 1);
		n--;
	}
	rc = parse_digits(s, n, &v);
	if (rc)
		return rc;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = v << shift;
	return 0;
}
