/* service.json "disk": the strict parser of one service's virtual disk, and the plan's check
 * that a writable image has one owner. */
#include "config_disk.h"

#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "config_ratelimit.h"
#include "plan.h"
#include "size.h"

#define DISK_SIZE_MAX (1ull << 44) /* 16 TiB: ext4's largest file */

/* Errors name the key as "disk.<key>". */
#define fail(err, errlen, path, key, ...)                                                          \
	vmm_config_fail(err, errlen, path, "disk", key, __VA_ARGS__)

static int parse_size(const char *path, json_t *v, uint64_t *size, char *err, size_t errlen)
{
	uint64_t bytes = 0;
	if (json_is_string(v)) {
		if (vmm_size_parse(json_string_value(v), &bytes) != 0)
			return fail(
				err, errlen, path, "size",
				"invalid size \"%.40s\" (expected digits with an optional K, M, "
				"G or T suffix, e.g. \"64M\")",
				json_string_value(v));
	} else if (json_is_integer(v)) {
		if (json_integer_value(v) <= 0)
			return fail(err, errlen, path, "size", "must be positive");
		bytes = (uint64_t)json_integer_value(v);
	} else if (v) {
		return fail(err, errlen, path, "size",
			    "expected a size string like \"64M\" or an integer, got %s",
			    vmm_json_type_name(v));
	} else {
		return 0;
	}
	if (bytes == 0 || bytes % DN_DISK_BLOCK != 0)
		return fail(err, errlen, path, "size",
			    "%" PRIu64 " bytes is not a positive multiple of 4K", bytes);
	if (bytes > DISK_SIZE_MAX)
		return fail(err, errlen, path, "size", "%" PRIu64 " bytes is more than 16T", bytes);
	*size = bytes;
	return 0;
}

/* The image as the service's start will find it, checked now so that a run that cannot start
 * it is refused before anything starts (the start checks again: the file may change). */
static int check_image(const char *path, const struct vmm_disk_config *disk, char *err,
		       size_t errlen)
{
	struct stat st;
	if (stat(disk->path, &st) != 0) {
		if (errno != ENOENT)
			return fail(err, errlen, path, "path", "cannot open disk %s: %s",
				    disk->path, strerror(errno));
		if (disk->readonly)
			return fail(err, errlen, path, "path",
				    "disk %s does not exist (a read-only disk must exist)",
				    disk->path);
		if (!disk->size)
			return fail(err, errlen, path, "path",
				    "disk %s does not exist (give a size to create it)",
				    disk->path);
		return 0; /* made at start, of that size */
	}
	if (!S_ISREG(st.st_mode))
		return fail(err, errlen, path, "path", "disk %s is not a regular file", disk->path);
	uint64_t actual = (uint64_t)st.st_size;
	if (actual == 0 || actual % DN_DISK_BLOCK != 0)
		return fail(err, errlen, path, "path",
			    "disk %s is %" PRIu64 " bytes: not a non-zero multiple of 4K",
			    disk->path, actual);
	if (disk->size && actual != disk->size)
		return fail(err, errlen, path, "size",
			    "disk %s is %" PRIu64 " bytes, but its size is given as %" PRIu64,
			    disk->path, actual, disk->size);
	return 0;
}

int vmm_config_disk_parse(const char *path, json_t *v, struct vmm_disk_config *disk, char *err,
			  size_t errlen)
{
	memset(disk, 0, sizeof(*disk));
	if (!v)
		return 0;
	if (!json_is_object(v))
		return fail(err, errlen, path, NULL, "expected an object, got %s",
			    vmm_json_type_name(v));
	const char *key;
	json_t *value;
	json_object_foreach (v, key, value) {
		if (strcmp(key, "path") && strcmp(key, "size") && strcmp(key, "readonly") &&
		    strcmp(key, "rate_limiter"))
			return fail(err, errlen, path, key,
				    "unknown key (known keys: path, size, readonly, rate_limiter)");
	}
	json_t *p = json_object_get(v, "path");
	if (!p)
		return fail(err, errlen, path, "path", "missing (the disk image's file)");
	if (!json_is_string(p) || json_string_length(p) == 0)
		return fail(err, errlen, path, "path", "expected a non-empty string");
	json_t *ro = json_object_get(v, "readonly");
	if (ro && !json_is_boolean(ro))
		return fail(err, errlen, path, "readonly", "expected true or false, got %s",
			    vmm_json_type_name(ro));
	disk->readonly = ro && json_is_true(ro);
	if (parse_size(path, json_object_get(v, "size"), &disk->size, err, errlen) != 0 ||
	    vmm_config_ratelimit_parse(path, "disk.rate_limiter",
				       json_object_get(v, "rate_limiter"), &disk->limit, err,
				       errlen) != 0)
		return -1;
	disk->path = vmm_config_resolve(path, json_string_value(p));
	if (!disk->path)
		return fail(err, errlen, path, "path", "out of memory");
	disk->enabled = 1;
	return check_image(path, disk, err, errlen);
}

void vmm_config_disk_free(struct vmm_disk_config *disk)
{
	free(disk->path);
	memset(disk, 0, sizeof(*disk));
}

/* A name for the image that two paths share exactly when they are the same file: its inode
 * if it exists, else its path with the folder made canonical. */
static void image_key(const char *path, char *key, size_t keylen)
{
	struct stat st;
	if (stat(path, &st) == 0) {
		snprintf(key, keylen, "inode %ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
		return;
	}
	char dir[PATH_MAX], base[PATH_MAX], canon[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	snprintf(base, sizeof(base), "%s", path);
	if (realpath(dirname(dir), canon))
		snprintf(key, keylen, "path %s/%s", canon, basename(base));
	else
		snprintf(key, keylen, "path %s", path);
}

struct disk_user {
	char key[PATH_MAX + 16];
	unsigned service;
};

static int by_key(const void *a, const void *b)
{
	const struct disk_user *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	return c ? c : (x->service > y->service) - (x->service < y->service);
}

int vmm_plan_disk_check(const struct vmm_plan_service *services, unsigned count, char *err,
			size_t errlen)
{
	struct disk_user *users = calloc(count ? count : 1, sizeof(*users));
	if (!users) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	unsigned n = 0;
	for (unsigned i = 0; i < count; i++)
		if (services[i].cfg.disk.enabled) {
			image_key(services[i].cfg.disk.path, users[n].key, sizeof(users[n].key));
			users[n++].service = i;
		}
	qsort(users, n, sizeof(*users), by_key);
	int rc = 0;
	/* Within a run of users of one image, any writer is a conflict with any other user. */
	for (unsigned first = 0; first < n && rc == 0;) {
		unsigned end = first + 1;
		while (end < n && strcmp(users[end].key, users[first].key) == 0)
			end++;
		for (unsigned k = first; k < end && end - first > 1; k++) {
			const struct vmm_plan_service *w = &services[users[k].service];
			if (w->cfg.disk.readonly)
				continue;
			const struct vmm_plan_service *other =
				&services[users[k == first ? first + 1 : first].service];
			snprintf(err, errlen,
				 "%s and %s: both use the disk %s, and a writable disk belongs to "
				 "one service only (give both \"readonly\": true to share it)",
				 w->cfg.name, other->cfg.name, w->cfg.disk.path);
			rc = -1;
			break;
		}
		first = end;
	}
	free(users);
	return rc;
}
