/* service.json: the strict parser that turns one service file into a validated config. */
#ifndef VMM_CONFIG_H
#define VMM_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "config_disk.h"
#include "config_net.h"
#include "denali/abi.h"

/* What the host allows; passed in so that tests can choose it. */
struct vmm_config_limits {
	uint64_t ram_max; /* largest "memory" accepted, bytes */
};

struct vmm_service_config {
	char *source;		/* the service file's path, as given */
	char name[DN_NAME_MAX]; /* validated service name */
	char *image;		/* guest ELF path, resolved against the file's folder */
	uint64_t ram_size;	/* bytes, a multiple of DN_RAM_ALIGN */
	uint32_t argc;		/* strings in args */
	char **args;		/* argc strings (argv[1..] of the guest) */
	struct vmm_net_config net;
	struct vmm_disk_config disk;
	struct {
		int enabled;		/* "swap" is present */
		uint64_t idle_after_ns; /* swapped out after idling this long */
		int prefetch;		/* bring the working set back at swap-in (default) */
	} swap;
	struct {
		unsigned percent;   /* of one host CPU for its vcpu, 1..99; 0 = no limit */
		unsigned period_ms; /* the window the share is measured over */
	} cpu_limit;		    /* "cpu_limit" */
};

#define VMM_CONFIG_DEFAULT_RAM (16u * 1024 * 1024)

/* Reads and validates the service file at path. Every problem is an error: unknown keys, wrong
 * types, missing required keys, bad sizes. Returns 0 and fills *cfg, or -1 with a message in
 * err of the form "<path>: <key>: <problem>" and *cfg left empty. */
int vmm_config_load(const char *path, const struct vmm_config_limits *limits,
		    struct vmm_service_config *cfg, char *err, size_t errlen);

/* Frees what vmm_config_load allocated; safe on a zeroed or already freed config. */
void vmm_config_free(struct vmm_service_config *cfg);

/* Writes "<path>: key \"<section>.<key>\": <problem>" into err (section and key may each be
 * NULL; with neither, "<path>: <problem>") and returns -1: every config error names the file
 * and the key. */
int vmm_config_fail(char *err, size_t errlen, const char *path, const char *section,
		    const char *key, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* "an object", "a string", ...: a JSON value's type, for messages. */
const char *vmm_json_type_name(const json_t *v);

/* rel resolved against the folder of the service file json_path (absolute paths stay);
 * malloc'd, NULL when out of memory. */
char *vmm_config_resolve(const char *json_path, const char *rel);

/* The limits of this host: RAM no larger than DN_RAM_MAX nor the machine's physical memory. */
struct vmm_config_limits vmm_config_host_limits(void);

/* 1 if name is a valid service name: 1-63 of [A-Za-z0-9_.-], starting with a letter or digit. */
int vmm_config_name_valid(const char *name);

#endif
