/* The few Check assertions tests/unit/net_wire.c and wire_echo.c use, for the fuzz targets
 * that link them outside a Check test run (where Check's own would exit): a failure aborts,
 * which libFuzzer reports as a crash with the input that caused it. */
#ifndef FUZZ_CHECK_SHIM_H
#define FUZZ_CHECK_SHIM_H

#include <stdio.h>
#include <stdlib.h>

#define ck_assert_msg(cond, ...)                                                                   \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                            \
			fprintf(stderr, __VA_ARGS__);                                              \
			fprintf(stderr, "\n");                                                     \
			abort();                                                                   \
		}                                                                                  \
	} while (0)
#define ck_assert(cond) ck_assert_msg(cond, "%s", #cond)
#define ck_assert_ptr_nonnull(p) ck_assert((p) != NULL)
#define ck_assert_uint_le(a, b) ck_assert((a) <= (b))
#define ck_assert_uint_ge(a, b) ck_assert((a) >= (b))
#define ck_assert_uint_lt(a, b) ck_assert((a) < (b))
#define ck_assert_uint_eq(a, b) ck_assert((a) == (b))
#define ck_assert_int_eq(a, b) ck_assert((a) == (b))

#endif
