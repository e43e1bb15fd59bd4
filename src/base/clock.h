/* The host's clocks, read in one place: monotonic time in ns and ms, any clock in ns, and ns as a
 * struct timespec for absolute timers and timeouts. */
#ifndef BASE_CLOCK_H
#define BASE_CLOCK_H

#include <stdint.h>
#include <time.h>

#define NSEC_PER_SEC 1000000000ll
#define NSEC_PER_MSEC 1000000ll

/* Host CLOCK_MONOTONIC in ns. */
int64_t clock_mono_ns(void);

/* Host CLOCK_MONOTONIC in ms: for poll's timeouts. */
int64_t clock_mono_ms(void);

/* The clock clock (a thread's CPU clock, say) in ns; 0 if it cannot be read. */
uint64_t clock_ns_of(clockid_t clock);

/* ns (at least 0) as a timespec. */
struct timespec clock_timespec(int64_t ns);

#endif
