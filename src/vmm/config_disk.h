/* service.json "disk": the virtual disk of one service, and the fleet-wide check that a
 * writable disk image belongs to one service only. */
#ifndef VMM_CONFIG_DISK_H
#define VMM_CONFIG_DISK_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "token_bucket.h"

struct vmm_disk_config {
	int enabled;   /* the service has a disk ("disk" is present) */
	char *path;    /* the image, resolved against the service file's folder */
	uint64_t size; /* bytes, a multiple of 4K; 0 = the existing image's size */
	int readonly;
	struct ratelimit_config limit; /* "rate_limiter" */
};

/* Parses the "disk" object v of the service file path (a relative image path is taken from
 * the service file's folder).
 * Returns 0, or -1 with err set to "<path>: key \"disk.<key>\": <problem>". */
int vmm_config_disk_parse(const char *path, json_t *v, struct vmm_disk_config *disk, char *err,
			  size_t errlen);

void vmm_config_disk_free(struct vmm_disk_config *disk);

struct vmm_plan_service;

/* Refuses a plan in which a writable disk image is also another service's disk (writable or
 * read-only). Returns 0, or -1 with err naming both services. */
int vmm_plan_disk_check(const struct vmm_plan_service *services, unsigned count, char *err,
			size_t errlen);

#endif
