/* The Denali guest API: console, exit, abort, time and idle, over the hypercalls of abi.h. */
#ifndef DENALI_H
#define DENALI_H

#include <stddef.h>
#include <stdint.h>

#include "denali/abi.h"

/* Issues hypercall nr with args, the GPA (== address) of its argument struct. */
static inline void dn_hypercall(unsigned nr, void *args)
{
	uint32_t gpa = (uint32_t)(uintptr_t)args;
	__asm__ volatile("outl %0, %w1"
			 :
			 : "a"(gpa), "Nd"((uint16_t)(DN_HC_PORT_BASE + nr))
			 : "memory");
}

/* The boot info the monitor left for this service. */
const struct dn_boot_info *dn_boot_info(void);

/* Writes bytes to the console. Returns DN_OK or a negative dn_status. */
int dn_console_write(const char *buf, size_t len);

/* Ends the service with status (0-DN_EXIT_STATUS_MAX); pending printf output is flushed. */
__attribute__((noreturn)) void dn_exit(int status);

/* Ends the service with a message that the monitor reports. */
__attribute__((noreturn)) void dn_abort(const char *msg);

/* Nanoseconds since boot, from the TSC: no exit. */
uint64_t dn_time_ns(void);

/* Blocks until deadline_ns (dn_time_ns scale) or an event; returns the pending events.
 * A deadline in the past is a yield. */
uint64_t dn_idle(uint64_t deadline_ns);

/* Reads the TSC. */
static inline uint64_t dn_rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

#endif
