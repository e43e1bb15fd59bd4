/* Swapping one service out of memory and back in. Out: note its working set (the guest pages
 * resident now), write its dirty pages back to its memory file, save its vcpu and destroy its
 * VM, and drop its pages from the mapping and the page cache. In: a new VM over the same file,
 * the vcpu restored, the working set prefetched in one pass. Both run on the service's own
 * vcpu thread while the guest is idle. */
#ifndef SWAP_H
#define SWAP_H

#include <stddef.h>
#include <stdint.h>

#include "guestmem.h"
#include "vcpu.h"

struct swap_stats {
	uint64_t outs, ins;
	uint64_t out_ns, in_ns;		 /* time spent swapping, in all */
	uint64_t prefetched_pages;	 /* pages brought back by prefetch, in all */
	uint64_t spare_ins;		 /* swap-ins into a spare VM, made ahead */
	uint64_t working_set_pages;	 /* at the last swap-out */
	uint64_t resident_after_out_max; /* pages still resident right after a swap-out */
	uint64_t faults_after_in;	 /* page faults of the vcpu thread while swapped in */
};

struct swap_state {
	struct vcpu_state vcpu;
	uint8_t *working_set; /* one bit per guest page: resident at the last swap-out */
	size_t pages;
	int prefetch;	       /* bring the working set back at swap-in */
	uint64_t faults_at_in; /* the vcpu thread's page faults at the last swap-in */
	int out;	       /* swapped out now */
	int disabled;	       /* a swap-out failed: the service stays in memory */
	struct swap_stats stats;
};

/* Swaps the service out. 0, or -1 with err (the service then still runs as it was). */
int swap_out(struct swap_state *s, struct guestmem *mem, struct vcpu *v, char *err, size_t errlen);

/* Swaps it back in: into spare, a VM made ahead, if it is not NULL (swap_in then owns it),
 * else into a new one. 0, or -1 with err (the service cannot run on). */
int swap_in(struct swap_state *s, struct guestmem *mem, struct vcpu *v, const struct vcpu_kvm *kvm,
	    struct vcpu_shell *spare, char *err, size_t errlen);

/* Adds the page faults since the last swap-in to the stats (at swap-out, and at the end). */
void swap_count_faults(struct swap_state *s);

/* Guest pages resident in memory now (mincore over the mapping). */
uint64_t swap_resident_pages(const struct guestmem *mem);

/* Guest pages of [host, host + size) mapped in this process (its resident set, from
 * /proc/self/pagemap): what the memory budget counts. A range unmapped while it is counted
 * gives a wrong count, never a fault: callers measuring another thread's service check
 * afterwards that the mapping was still theirs. */
uint64_t swap_count_mapped(const void *host, size_t size);

/* Opens this process's /proc/self/pagemap once and keeps it (a cell confined by Landlock can
 * open no /proc file later); until then, and in another process, each count opens its own.
 * Call before any thread starts. 0, or -1 (counts fall back to mincore, as without it). */
int swap_pagemap_open(void);

/* Refuses a state directory on tmpfs for services that swap: their memory would stay in RAM.
 * 0, or -1 with err. */
int swap_check_state_dir(const char *dir, char *err, size_t errlen);

void swap_free(struct swap_state *s);

#endif
