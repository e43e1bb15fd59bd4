/* The host's clocks, read in one place. */
#include "clock.h"

int64_t clock_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

int64_t clock_mono_ms(void)
{
	return clock_mono_ns() / NSEC_PER_MSEC;
}

uint64_t clock_ns_of(clockid_t clock)
{
	struct timespec ts;
	if (clock_gettime(clock, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * (uint64_t)NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

struct timespec clock_timespec(int64_t ns)
{
	return (struct timespec){.tv_sec = (time_t)(ns / NSEC_PER_SEC),
				 .tv_nsec = (long)(ns % NSEC_PER_SEC)};
}
