/* Checkpoint files: the input is a checkpoint (the struct's bytes, then edits to the file),
 * written as a sleeping service's state is, optionally damaged, and loaded as --resume does.
 * The first byte picks what is made plausible first (sizes, clock) so that the input reaches
 * the vcpu state's checks rather than stopping at the checksum; the edits then reach the
 * header and checksum checks. A loaded checkpoint is trusted no more than its guest. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "fuzz.h"
#include "swap/checkpoint.h"

#define WSET_BYTES_MAX (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	unsigned mode = fuzz_u8(&in);
	struct checkpoint c;
	memset(&c, 0, sizeof(c));
	size_t got;
	const uint8_t *raw = fuzz_bytes(&in, sizeof(c), &got);
	memcpy(&c, raw, got);
	if (mode & 1) { /* a RAM size and working set that pass */
		c.ram_size = DN_RAM_MIN + (c.ram_size % 64) * DN_RAM_ALIGN;
		c.working_set_pages = c.ram_size / DN_PAGE_SIZE;
	}
	if (mode & 2) { /* a clock this host has seen */
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
		c.time_base_ns = (int64_t)((uint64_t)c.time_base_ns % (uint64_t)now);
		c.tsc_hz |= 1;
	}
	if ((c.working_set_pages + 7) / 8 > WSET_BYTES_MAX)
		c.working_set_pages %= 8ull * WSET_BYTES_MAX;
	static uint8_t wset[WSET_BYTES_MAX];
	memset(wset, (int)mode, (c.working_set_pages + 7) / 8);

	const char *dir = fuzz_tmpdir();
	char err[512], path[4200];
	if (checkpoint_save(dir, &c, wset, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz: %s\n", err);
		abort();
	}
	snprintf(path, sizeof(path), "%s/state", dir);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	off_t file_size = fd >= 0 ? lseek(fd, 0, SEEK_END) : -1;
	if (file_size <= 0)
		abort();
	while (in.n >= 3) { /* damage: a byte here and there, or a cut */
		uint16_t at = fuzz_u16(&in);
		uint8_t value = fuzz_u8(&in);
		if (at == 0xffff) {
			if (ftruncate(fd, value * (file_size / 256)) != 0)
				abort();
			continue;
		}
		if (pwrite(fd, &value, 1, at % file_size) != 1)
			abort();
	}
	close(fd);

	struct checkpoint back;
	uint8_t *working_set = NULL;
	int rc = checkpoint_load(dir, &back, &working_set, err, sizeof(err));
	if (rc == 1 && (!working_set || back.working_set_pages != back.ram_size / DN_PAGE_SIZE))
		abort();
	if (rc != 1 && working_set)
		abort(); /* a refusal hands nothing out */
	if (rc == -1 && !err[0])
		abort();
	free(working_set);
	checkpoint_discard(dir);
	return 0;
}
