/* What a cell may open once it runs guests: its state folder, /dev/kvm and its services' disk
 * images, through Landlock (docs/security.md#rights). */
#ifndef VMM_CELL_CONFINE_H
#define VMM_CELL_CONFINE_H

#include <stddef.h>

#include "plan.h"

/* The test hook: a cell, once confined, tries to open this path for reading and says what
 * happened on stderr (docs/security.md#rights). */
#define CELL_PROBE_ENV "DENALI_SANDBOX_PROBE_OPEN"

/* Confines the calling thread (a cell's, before it starts any other) and all it starts to the
 * files services [first, first+count) of plan need: read-write beneath the state folder (the
 * services' folders, memory files, checkpoints), /dev/kvm, each disk image (read-only for a
 * read-only disk), and for reading its own /proc/self/pagemap and the kernel's boot id. A
 * writable disk that does not exist yet is made first (nothing could make it after). Needs
 * PR_SET_NO_NEW_PRIVS. 1 when confined, 0 when the kernel has no Landlock (main warned), -1
 * with a one-line err. */
int cell_confine(const struct vmm_plan *plan, unsigned first, unsigned count, char *err,
		 size_t errlen);

/* With CELL_PROBE_ENV set, opens that path for reading and writes one line to stderr:
 * "denali-run: cell: sandbox probe: open PATH: allowed" or ": <strerror>". */
void cell_confine_probe(void);

#endif
