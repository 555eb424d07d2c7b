/* Numbers as people type them on command lines and in requests: plain decimal counts and
 * byte sizes with a binary suffix. The one parser every program of the project uses. */
#ifndef SIGBUSFS_UNITS_H
#define SIGBUSFS_UNITS_H

#include <stdint.h>

/* Decimal digits only: no sign, no space, no suffix ("007" is 7). 0, -EINVAL (not a
 * number) or -ERANGE (past UINT64_MAX); *out is set only on success. */
int units_parse_u64(const char *s, uint64_t *out);
/* A byte count: decimal digits with an optional K, M, G or T suffix, either case, binary
 * (8K = 8192). 0, -EINVAL or -ERANGE as units_parse_u64(). */
int units_parse_size(const char *s, uint64_t *out);

#endif
