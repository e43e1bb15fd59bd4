/* Parsing of human-written sizes ("16M", "64MiB", "4096") for service files and options. */
#ifndef VMM_SIZE_H
#define VMM_SIZE_H

#include <stdint.h>

/* Parses a byte count: decimal digits, then optionally one of K, M, G, T (binary multiples,
 * 1K = 1024) with an optional "iB" or "B" after it. No sign, no spaces, no fractions.
 * Returns 0 and sets *out, or -1 on any malformed or overflowing input. */
int vmm_size_parse(const char *text, uint64_t *out);

#endif
