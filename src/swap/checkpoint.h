/* The saved state of a sleeping service, written beside its memory file so that a later run can
 * bring it back (--resume). A checkpoint is valid only while the service sleeps: it is written
 * (atomically, after the memory file is on disk) when the service goes to sleep and removed
 * before it runs again, so a checkpoint never meets memory newer than itself. */
#ifndef SWAP_CHECKPOINT_H
#define SWAP_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "denali/abi.h"
#include "vcpu.h"
#include "vdisk_dev.h"

struct checkpoint {
	uint64_t ram_size;
	struct vcpu_state vcpu;
	uint64_t tsc_hz, tsc_base; /* the guest's clock: TSC rate and TSC at guest time 0 */
	int64_t time_base_ns;	   /* host CLOCK_MONOTONIC at guest time 0 */
	uint64_t timer_deadline_ns;
	uint64_t wake_events;	     /* events pending for it */
	struct dn_hc_idle idle_call; /* the idle it sleeps in, and its argument */
	uint32_t idle_arg;
	int has_disk;
	struct vdisk_dev_saved disk;
	uint64_t working_set_pages; /* bits that follow, one per guest page */
};

/* Writes dir/state: the checkpoint and the working set (one bit per page of ram_size). The
 * memory file must already be on disk. Atomic: a temporary file, fsync, rename, fsync of dir.
 * 0, or -1 with err. */
int checkpoint_save(const char *dir, const struct checkpoint *c, const uint8_t *working_set,
		    char *err, size_t errlen);

/* Reads dir/state into c and a new working-set bitmap (*working_set, the caller frees). It must
 * have been written on this boot of the host (the guest's clock rests on its monotonic clock)
 * and be whole; its contents are trusted no more than the guest: the vcpu state is sanitized
 * (vcpu_state_sanitize: what the monitor owns is set as at boot) and the rest checked. 1: loaded;
 * 0: there is none; -1 with err: there is one, unusable (err names the bad field). */
int checkpoint_load(const char *dir, struct checkpoint *c, uint8_t **working_set, char *err,
		    size_t errlen);

/* Removes dir/state durably: the service is about to run, and its memory to change. 0, or -1. */
int checkpoint_discard(const char *dir);

/* Reads the host's boot id once and keeps it for every later save and load (a cell confined
 * by Landlock can open no /proc file). Call before any thread starts. */
void checkpoint_boot_id_load(void);

#endif
