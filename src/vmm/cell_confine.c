/* A cell's Landlock ruleset, built from the plan before its first guest runs. */
#include "cell_confine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "landlock.h"
#include "swap.h"
#include "vdisk_file.h"

/* A writable disk that does not exist is made now, as vdisk_file_open makes it, so that the
 * ruleset can name the file itself rather than its folder. Whatever goes wrong is left for
 * the service's own open to report. */
static void make_missing_disk(const struct vmm_disk_config *dc)
{
	struct stat st;
	if (dc->readonly || dc->size == 0 || stat(dc->path, &st) == 0 || errno != ENOENT)
		return;
	struct vdisk_file f;
	char err[256];
	if (vdisk_file_open(&f, dc->path, dc->size, 0, NULL, err, sizeof(err)) == 0)
		vdisk_file_close(&f);
}

int cell_confine(const struct vmm_plan *plan, unsigned first, unsigned count, char *err,
		 size_t errlen)
{
	struct landlock_rules r;
	if (landlock_rules_init(&r, err, errlen) != 0)
		return -1;
	if (r.fd < 0)
		return 0;
	if (landlock_allow(&r, plan->state_dir, LANDLOCK_READ | LANDLOCK_WRITE, "state folder", err,
			   errlen) != 0 ||
	    (landlock_allow(&r, "/dev/kvm", LANDLOCK_READ | LANDLOCK_WRITE | LANDLOCK_DEVICE, "KVM",
			    err, errlen) != 0 &&
	     errno != ENOENT)) /* no KVM here (a unit test): nothing to open */
		goto fail;
	/* What it reads of /proc is read now: a /proc file's inode is made anew at each lookup,
	 * so no rule could name it for later. */
	swap_pagemap_open();
	checkpoint_boot_id_load();
	for (unsigned i = first; i < first + count && i < plan->count; i++) {
		const struct vmm_disk_config *dc = &plan->services[i].cfg.disk;
		if (!dc->enabled)
			continue;
		make_missing_disk(dc);
		unsigned uses = LANDLOCK_READ | (dc->readonly ? 0 : LANDLOCK_WRITE);
		/* A missing disk stays missing: its service's open says so. */
		if (landlock_allow(&r, dc->path, uses, "disk", err, errlen) != 0 && errno != ENOENT)
			goto fail;
	}
	return landlock_enforce(&r, err, errlen);
fail:
	landlock_rules_free(&r);
	return -1;
}

void cell_confine_probe(void)
{
	const char *path = getenv(CELL_PROBE_ENV);
	if (!path || !*path)
		return;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	int e = errno;
	if (fd >= 0)
		close(fd);
	fprintf(stderr, "denali-run: cell: sandbox probe: open %s: %s\n", path,
		fd >= 0 ? "allowed" : strerror(e));
}
