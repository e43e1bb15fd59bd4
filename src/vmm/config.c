/* service.json: the strict parser that turns one service file into a validated config. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "size.h"
#include "vcpu_quota.h"

int vmm_config_fail(char *err, size_t errlen, const char *path, const char *section,
		    const char *key, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (section || key)
		snprintf(err, errlen, "%s: key \"%s%s%s\": %s", path, section ? section : "",
			 section && key ? "." : "", key ? key : "", msg);
	else
		snprintf(err, errlen, "%s: %s", path, msg);
	return -1;
}

#define fail(err, errlen, path, key, ...) vmm_config_fail(err, errlen, path, NULL, key, __VA_ARGS__)

const char *vmm_json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "an unknown value";
}

int vmm_config_name_valid(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len >= DN_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		int alnum =
			(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '-' && c != '_' && c != '.')))
			return 0;
	}
	return 1;
}

/* The default name: the file's base name without ".json". */
static void name_from_path(const char *path, char *out, size_t outlen)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	size_t len = strlen(base);
	if (len > 5 && strcmp(base + len - 5, ".json") == 0)
		len -= 5;
	if (len >= outlen)
		len = outlen - 1;
	memcpy(out, base, len);
	out[len] = '\0';
}

char *vmm_config_resolve(const char *json_path, const char *rel)
{
	if (rel[0] == '/')
		return strdup(rel);
	const char *slash = strrchr(json_path, '/');
	if (!slash)
		return strdup(rel);
	size_t dirlen = (size_t)(slash - json_path) + 1;
	size_t rellen = strlen(rel);
	char *out = malloc(dirlen + rellen + 1);
	if (!out)
		return NULL;
	memcpy(out, json_path, dirlen);
	memcpy(out + dirlen, rel, rellen + 1);
	return out;
}

static int parse_name(const char *path, json_t *v, struct vmm_service_config *cfg, char *err,
		      size_t errlen)
{
	if (!v) {
		name_from_path(path, cfg->name, sizeof(cfg->name));
		if (!vmm_config_name_valid(cfg->name))
			return fail(err, errlen, path, "name",
				    "missing, and the file name \"%s\" is not a valid service name "
				    "(1-63 of A-Z a-z 0-9 _ . -, starting with a letter or digit)",
				    cfg->name);
		return 0;
	}
	if (!json_is_string(v))
		return fail(err, errlen, path, "name", "expected a string, got %s",
			    vmm_json_type_name(v));
	const char *name = json_string_value(v);
	if (!vmm_config_name_valid(name))
		return fail(err, errlen, path, "name",
			    "\"%.80s\" is not a valid service name (1-63 of A-Z a-z 0-9 _ . -, "
			    "starting with a letter or digit)",
			    name);
	snprintf(cfg->name, sizeof(cfg->name), "%s", name);
	return 0;
}

static int parse_image(const char *path, json_t *v, struct vmm_service_config *cfg, char *err,
		       size_t errlen)
{
	if (!v)
		return fail(err, errlen, path, "image",
			    "missing (the path of the guest ELF image)");
	if (!json_is_string(v))
		return fail(err, errlen, path, "image", "expected a string, got %s",
			    vmm_json_type_name(v));
	const char *rel = json_string_value(v);
	if (rel[0] == '\0')
		return fail(err, errlen, path, "image", "is empty");
	cfg->image = vmm_config_resolve(path, rel);
	if (!cfg->image)
		return fail(err, errlen, path, "image", "out of memory");
	return 0;
}

static int parse_memory(const char *path, json_t *v, const struct vmm_config_limits *limits,
			struct vmm_service_config *cfg, char *err, size_t errlen)
{
	uint64_t bytes = VMM_CONFIG_DEFAULT_RAM;
	if (json_is_string(v)) {
		if (vmm_size_parse(json_string_value(v), &bytes) != 0)
			return fail(err, errlen, path, "memory",
				    "invalid size \"%.40s\" (expected digits with an optional K, "
				    "M, G or T "
				    "suffix, e.g. \"16M\")",
				    json_string_value(v));
	} else if (json_is_integer(v)) {
		if (json_integer_value(v) < 0)
			return fail(err, errlen, path, "memory", "must not be negative");
		bytes = (uint64_t)json_integer_value(v);
	} else if (v) {
		return fail(err, errlen, path, "memory",
			    "expected a size string like \"16M\" or an integer, got %s",
			    vmm_json_type_name(v));
	}
	if (bytes < DN_RAM_MIN)
		return fail(err, errlen, path, "memory",
			    "%" PRIu64 " bytes is below the minimum of %uM", bytes,
			    DN_RAM_MIN >> 20);
	if (bytes % DN_RAM_ALIGN != 0)
		return fail(err, errlen, path, "memory",
			    "%" PRIu64 " bytes is not a multiple of 2M", bytes);
	if (bytes > limits->ram_max)
		return fail(err, errlen, path, "memory",
			    "%" PRIu64 "M is more than this host allows (%" PRIu64 "M)",
			    bytes >> 20, limits->ram_max >> 20);
	cfg->ram_size = bytes;
	return 0;
}

static int parse_args(const char *path, json_t *v, struct vmm_service_config *cfg, char *err,
		      size_t errlen)
{
	if (!v)
		return 0;
	if (!json_is_array(v))
		return fail(err, errlen, path, "args", "expected an array of strings, got %s",
			    vmm_json_type_name(v));
	size_t n = json_array_size(v);
	if (n > DN_BOOT_ARGC_MAX)
		return fail(err, errlen, path, "args", "%zu arguments, at most %u are allowed", n,
			    DN_BOOT_ARGC_MAX);
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *a = json_array_get(v, i);
		if (!json_is_string(a))
			return fail(err, errlen, path, "args",
				    "element %zu: expected a string, got %s", i,
				    vmm_json_type_name(a));
		total += json_string_length(a) + 1;
	}
	/* The service name travels as argv[0] in its own field; args must fit the boot page. */
	if (total > DN_BOOT_ARGS_MAX)
		return fail(err, errlen, path, "args", "%zu bytes in all, at most %u are allowed",
			    total, DN_BOOT_ARGS_MAX);
	cfg->args = calloc(n ? n : 1, sizeof(char *));
	if (!cfg->args)
		return fail(err, errlen, path, "args", "out of memory");
	for (size_t i = 0; i < n; i++) {
		cfg->args[i] = strdup(json_string_value(json_array_get(v, i)));
		if (!cfg->args[i])
			return fail(err, errlen, path, "args", "out of memory");
		cfg->argc = (uint32_t)i + 1;
	}
	return 0;
}

static int parse_swap(const char *path, json_t *v, struct vmm_service_config *cfg, char *err,
		      size_t errlen)
{
	if (!v)
		return 0;
	if (!json_is_object(v))
		return vmm_config_fail(err, errlen, path, "swap", NULL,
				       "expected an object, got %s", vmm_json_type_name(v));
	const char *key;
	json_t *value;
	json_object_foreach (v, key, value) {
		if (strcmp(key, "idle_after") != 0 && strcmp(key, "prefetch") != 0)
			return vmm_config_fail(err, errlen, path, "swap", key,
					       "unknown key (known keys: idle_after, prefetch)");
	}
	json_t *idle = json_object_get(v, "idle_after");
	if (!idle)
		return vmm_config_fail(err, errlen, path, "swap", "idle_after",
				       "missing (seconds of idling before a swap-out)");
	/* A floor: each swap-out and swap-in rebuilds a VM and writes memory back, and a guest
	 * must not be able to ask for that thousands of times a second. */
	if (!json_is_number(idle) || json_number_value(idle) < 0.01 ||
	    json_number_value(idle) > 1e6)
		return vmm_config_fail(err, errlen, path, "swap", "idle_after",
				       "expected seconds from 0.01 to 1000000");
	json_t *prefetch = json_object_get(v, "prefetch");
	if (prefetch && !json_is_boolean(prefetch))
		return vmm_config_fail(err, errlen, path, "swap", "prefetch",
				       "expected true or false, got %s",
				       vmm_json_type_name(prefetch));
	cfg->swap.prefetch = !prefetch || json_is_true(prefetch);
	cfg->swap.enabled = 1;
	cfg->swap.idle_after_ns = (uint64_t)(json_number_value(idle) * 1e9);
	return 0;
}

/* "cpu_limit": {"percent": P, "period_ms": T}: the vcpu thread's share of one host CPU. */
static int parse_cpu_limit(const char *path, json_t *v, struct vmm_service_config *cfg, char *err,
			   size_t errlen)
{
	if (!v)
		return 0;
	if (!json_is_object(v))
		return vmm_config_fail(err, errlen, path, "cpu_limit", NULL,
				       "expected an object like {\"percent\": 25}, got %s",
				       vmm_json_type_name(v));
	const char *key;
	json_t *value;
	json_object_foreach (v, key, value) {
		if (strcmp(key, "percent") != 0 && strcmp(key, "period_ms") != 0)
			return vmm_config_fail(err, errlen, path, "cpu_limit", key,
					       "unknown key (known keys: percent, period_ms)");
	}
	json_t *pc = json_object_get(v, "percent"), *pm = json_object_get(v, "period_ms");
	if (!pc)
		return vmm_config_fail(err, errlen, path, "cpu_limit", "percent",
				       "missing (the share of one host CPU, 1 to 100)");
	if (!json_is_integer(pc) || json_integer_value(pc) < 1 || json_integer_value(pc) > 100)
		return vmm_config_fail(err, errlen, path, "cpu_limit", "percent",
				       "expected an integer from 1 to 100");
	if (pm && (!json_is_integer(pm) || json_integer_value(pm) < VCPU_QUOTA_PERIOD_MS_MIN ||
		   json_integer_value(pm) > VCPU_QUOTA_PERIOD_MS_MAX))
		return vmm_config_fail(err, errlen, path, "cpu_limit", "period_ms",
				       "expected an integer from %u to %u",
				       VCPU_QUOTA_PERIOD_MS_MIN, VCPU_QUOTA_PERIOD_MS_MAX);
	/* 100 percent of one CPU is what a vcpu thread can use anyway: no limit. */
	cfg->cpu_limit.percent =
		json_integer_value(pc) == 100 ? 0 : (unsigned)json_integer_value(pc);
	cfg->cpu_limit.period_ms =
		pm ? (unsigned)json_integer_value(pm) : VCPU_QUOTA_PERIOD_MS_DEFAULT;
	return 0;
}

static const char *const known_keys[] = {"name", "image", "memory", "args",
					 "net",	 "disk",  "swap",   "cpu_limit"};

static int check_unknown_keys(const char *path, json_t *root, char *err, size_t errlen)
{
	const char *key;
	json_t *value;
	json_object_foreach (root, key, value) {
		int known = 0;
		for (size_t i = 0; i < sizeof(known_keys) / sizeof(known_keys[0]); i++)
			known |= strcmp(key, known_keys[i]) == 0;
		if (!known)
			return fail(err, errlen, path, key,
				    "unknown key (known keys: name, image, memory, args, net, "
				    "disk, swap, cpu_limit)");
	}
	return 0;
}

int vmm_config_load(const char *path, const struct vmm_config_limits *limits,
		    struct vmm_service_config *cfg, char *err, size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	json_error_t jerr;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		if (jerr.line < 1)
			return fail(err, errlen, path, NULL, "%s", jerr.text);
		snprintf(err, errlen, "%s:%d:%d: invalid JSON: %s", path, jerr.line, jerr.column,
			 jerr.text);
		return -1;
	}
	int rc = -1;
	if (!json_is_object(root)) {
		fail(err, errlen, path, NULL, "expected a JSON object at the top level, got %s",
		     vmm_json_type_name(root));
		goto out;
	}
	cfg->source = strdup(path);
	if (!cfg->source) {
		fail(err, errlen, path, NULL, "out of memory");
		goto out;
	}
	if (check_unknown_keys(path, root, err, errlen) ||
	    parse_name(path, json_object_get(root, "name"), cfg, err, errlen) ||
	    parse_image(path, json_object_get(root, "image"), cfg, err, errlen) ||
	    parse_memory(path, json_object_get(root, "memory"), limits, cfg, err, errlen) ||
	    parse_args(path, json_object_get(root, "args"), cfg, err, errlen) ||
	    vmm_config_net_parse(path, json_object_get(root, "net"), &cfg->net, err, errlen) ||
	    vmm_config_disk_parse(path, json_object_get(root, "disk"), &cfg->disk, err, errlen) ||
	    parse_swap(path, json_object_get(root, "swap"), cfg, err, errlen) ||
	    parse_cpu_limit(path, json_object_get(root, "cpu_limit"), cfg, err, errlen))
		goto out;
	rc = 0;
out:
	json_decref(root);
	if (rc != 0)
		vmm_config_free(cfg);
	return rc;
}

void vmm_config_free(struct vmm_service_config *cfg)
{
	if (cfg->args) {
		for (uint32_t i = 0; i < cfg->argc; i++)
			free(cfg->args[i]);
		free(cfg->args);
	}
	vmm_config_disk_free(&cfg->disk);
	free(cfg->image);
	free(cfg->source);
	memset(cfg, 0, sizeof(*cfg));
}

struct vmm_config_limits vmm_config_host_limits(void)
{
	struct vmm_config_limits limits = {.ram_max = DN_RAM_MAX};
	long pages = sysconf(_SC_PHYS_PAGES);
	long page_size = sysconf(_SC_PAGESIZE);
	if (pages > 0 && page_size > 0) {
		uint64_t phys = (uint64_t)pages * (uint64_t)page_size;
		phys -= phys % DN_RAM_ALIGN;
		if (phys < limits.ram_max)
			limits.ram_max = phys;
	}
	return limits;
}
