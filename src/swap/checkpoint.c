/* Saving and loading a sleeping service's checkpoint. */
#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"

#define CHECKPOINT_MAGIC 0x3174706b636e6444ull /* "Ddnckpt1" */
#define CHECKPOINT_VERSION 2		       /* 2: the CPUID table's id */

/* What precedes the checkpoint in the file: which format, which host boot, which virtual CPU,
 * how long, and a checksum of everything after the header. */
struct checkpoint_header {
	uint64_t magic;
	uint32_t version;
	uint32_t header_size;
	uint64_t payload_size;
	uint64_t checksum;
	char boot_id[40];
	uint64_t cpuid_id; /* vcpu_cpuid_id() of the monitor that saved it */
};

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
	const uint8_t *p = data;
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

static char boot_id_cache[40]; /* checkpoint_boot_id_load */

/* The host's boot id: a checkpoint from another boot has a clock base that means nothing. */
static void read_boot_id(char out[40])
{
	if (boot_id_cache[0]) {
		memcpy(out, boot_id_cache, 40);
		return;
	}
	memset(out, 0, 40);
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
	if (!f)
		return;
	if (!fgets(out, 40, f))
		out[0] = '\0';
	fclose(f);
	out[strcspn(out, "\n")] = '\0';
}

void checkpoint_boot_id_load(void)
{
	if (!boot_id_cache[0])
		read_boot_id(boot_id_cache);
}

static size_t bitmap_bytes(uint64_t pages)
{
	return (size_t)((pages + 7) / 8);
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

int checkpoint_save(const char *dir, const struct checkpoint *c, const uint8_t *working_set,
		    char *err, size_t errlen)
{
	char tmp[4096], path[4096];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/state.new", dir) >= sizeof(tmp) ||
	    (size_t)snprintf(path, sizeof(path), "%s/state", dir) >= sizeof(path)) {
		snprintf(err, errlen, "checkpoint: path too long");
		return -1;
	}
	size_t wset = bitmap_bytes(c->working_set_pages);
	struct checkpoint_header h = {.magic = CHECKPOINT_MAGIC,
				      .version = CHECKPOINT_VERSION,
				      .header_size = sizeof(h),
				      .payload_size = sizeof(*c) + wset,
				      .cpuid_id = vcpu_cpuid_id()};
	h.checksum = fnv1a(fnv1a(0xcbf29ce484222325ull, c, sizeof(*c)), working_set, wset);
	read_boot_id(h.boot_id);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || write_all(fd, &h, sizeof(h)) != 0 || write_all(fd, c, sizeof(*c)) != 0 ||
	    write_all(fd, working_set, wset) != 0 || fsync(fd) != 0) {
		snprintf(err, errlen, "cannot write checkpoint %s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) != 0 || sync_dir(dir) != 0) {
		snprintf(err, errlen, "cannot put checkpoint %s in place: %s", path,
			 strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* What a later run takes from the checkpoint, checked or set as the monitor would: the file
 * may have been written by anyone who could write the state folder. */
static int check_contents(struct checkpoint *c, const char *path, char *err, size_t errlen)
{
	int64_t now = clock_mono_ns();
	char why[256];
	if (!c->tsc_hz)
		snprintf(why, sizeof(why), "its guest clock has a TSC rate of 0");
	else if (c->time_base_ns < 0 || c->time_base_ns > now)
		snprintf(why, sizeof(why),
			 "its guest clock started at a time this host has not seen");
	else if (c->has_disk != 0 && c->has_disk != 1)
		snprintf(why, sizeof(why), "its disk flag is %d", c->has_disk);
	else if (vcpu_state_sanitize(&c->vcpu, now, why, sizeof(why)) == 0)
		return 0;
	snprintf(err, errlen, "its checkpoint %s is refused: %s", path, why);
	return -1;
}

int checkpoint_load(const char *dir, struct checkpoint *c, uint8_t **working_set, char *err,
		    size_t errlen)
{
	*working_set = NULL;
	char path[4096];
	if ((size_t)snprintf(path, sizeof(path), "%s/state", dir) >= sizeof(path)) {
		snprintf(err, errlen, "checkpoint: path too long");
		return -1;
	}
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 0;
	struct checkpoint_header h;
	char boot[40];
	read_boot_id(boot);
	if (fd < 0 || read_all(fd, &h, sizeof(h)) != 0 || h.magic != CHECKPOINT_MAGIC ||
	    h.version != CHECKPOINT_VERSION || h.header_size != sizeof(h) ||
	    read_all(fd, c, sizeof(*c)) != 0) {
		snprintf(err, errlen, "its checkpoint %s is unreadable or of another version",
			 path);
		goto fail;
	}
	size_t wset = bitmap_bytes(c->working_set_pages);
	if (c->ram_size < DN_RAM_MIN || c->ram_size > DN_RAM_MAX || c->ram_size % DN_RAM_ALIGN ||
	    c->working_set_pages != c->ram_size / DN_PAGE_SIZE ||
	    h.payload_size != sizeof(*c) + wset || !(*working_set = calloc(wset ? wset : 1, 1)) ||
	    read_all(fd, *working_set, wset) != 0 ||
	    fnv1a(fnv1a(0xcbf29ce484222325ull, c, sizeof(*c)), *working_set, wset) != h.checksum) {
		snprintf(err, errlen, "its checkpoint %s is damaged", path);
		goto fail;
	}
	if (strncmp(h.boot_id, boot, sizeof(boot)) != 0) {
		snprintf(err, errlen,
			 "its checkpoint %s was saved before the host last booted (its clock "
			 "cannot go on)",
			 path);
		goto fail;
	}
	/* The guest may have read CPUID and chosen code by it: it goes on only on the same CPU. */
	if (h.cpuid_id != vcpu_cpuid_id()) {
		snprintf(err, errlen,
			 "its checkpoint %s was saved by a monitor with another virtual CPU (CPUID "
			 "table %016llx, this one's is %016llx)",
			 path, (unsigned long long)h.cpuid_id, (unsigned long long)vcpu_cpuid_id());
		goto fail;
	}
	if (check_contents(c, path, err, errlen) != 0)
		goto fail;
	close(fd);
	return 1;
fail:
	if (fd >= 0)
		close(fd);
	free(*working_set);
	*working_set = NULL;
	return -1;
}

int checkpoint_discard(const char *dir)
{
	char path[4096];
	if ((size_t)snprintf(path, sizeof(path), "%s/state", dir) >= sizeof(path))
		return -1;
	if (unlink(path) != 0 && errno != ENOENT)
		return -1;
	return sync_dir(dir);
}
