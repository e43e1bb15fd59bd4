/* The fleet's counters in the Prometheus text exposition format 0.0.4 (docs/control.md,
 * "Metrics"), made from the per-service objects of --stats and the control socket's "stats". */
#ifndef VMM_METRICS_H
#define VMM_METRICS_H

#include <jansson.h>
#include <stdint.h>

/* The exposition for services, a JSON array of the objects service_json (stats.c) makes,
 * each possibly with "state" (a string) and "resident_pages" (an integer); uptime_s is the
 * fleet's uptime, budget_bytes its memory budget (0: none). Every metric gets one # HELP and
 * one # TYPE line, then one sample per service that has the value; an entry that is not an
 * object with a string "name", and a value that is not a non-negative integer (or a key
 * missing), give no sample: the input may be anything. Returns a malloc'd string, or NULL
 * when out of memory. */
/* The NAT process of the user uplink (docs/control.md): whether it runs now, how often it was
 * replaced. */
struct metrics_nat {
	int up;
	uint64_t restarts;
};

/* nat: NULL for a run without the user uplink (its metrics then have no sample). */
char *metrics_text(const json_t *services, double uptime_s, uint64_t budget_bytes,
		   const struct metrics_nat *nat);

#endif
