/* The fleet's resident-memory budget: which services to swap out when the guest pages resident
 * in all cells pass it. The least recently run go first, and only those awake (a running one is
 * swapped at its next idle). The table lives in memory shared by the supervisor (which reads
 * it and decides) and the cells (which write their services' rows). */
#ifndef SWAP_BUDGET_H
#define SWAP_BUDGET_H

#include <stddef.h>
#include <stdint.h>

struct budget_entry {
	int64_t last_run_ns;	 /* host clock when it last ran (left an idle, woke, started) */
	uint64_t resident_pages; /* guest pages resident, measured by its cell while awake */
	uint32_t awake;		 /* it has a VM and its memory mapped */
	uint32_t state;		 /* its cell slot's state (cell.c: starting, running, ...) */
	int64_t started_ns;	 /* host clock when it first ran, 0 before (control: uptime) */
	uint64_t swapped_pages;	 /* asleep: its working set, on disk (control: list) */
	int64_t woke_ns;	 /* host clock when it last came to run (started or woken) */
};

/* A table of n rows in memory shared with processes forked later; NULL on failure. */
struct budget_entry *budget_table_create(unsigned n);
void budget_table_free(struct budget_entry *t, unsigned n);

/* Guest pages resident in the services awake. */
uint64_t budget_resident(const struct budget_entry *t, unsigned n);

/* When the resident pages pass budget_pages, picks the services to swap out to bring them down
 * to budget_pages less the largest awake service (room for one wake): awake ones, least
 * recently run first; those asked since not_before (asked_at[i] is when service i was last
 * asked) count as gone and are not asked again; those woken after woke_after are not picked
 * (a minimum residency: a service just woken for a frame must take it and run before it may
 * go again). Writes at most max of them to out, and returns how many. */
unsigned budget_pick(const struct budget_entry *t, unsigned n, uint64_t budget_pages,
		     const int64_t *asked_at, int64_t not_before, int64_t woke_after, unsigned *out,
		     unsigned max);

#endif
