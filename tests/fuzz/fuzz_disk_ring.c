/* The disk ring: a disk device over a fake guest RAM and a real image (64 blocks, on
 * /dev/shm when there is one) with io_uring, driven as the cell's disk worker drives it. The
 * input is a script of what the guest does, one op at a time:
 *   0 a request: its fields (op, block, count, buffer: in RAM or any value, reserved), then
 *     sq_avail++          1 poke: any 32-bit value anywhere in the shared struct dn_disk
 *   2 the guest consumes completions (cq_used moves on, by what it says)
 *   3 the device takes what was published and completes it all (kick, reap)
 * After each input the device is closed; a device stopped for its guest's errors takes no
 * more. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "vdisk/vdisk_dev.h"

#define RAM (4u << 20)
#define BLOCKS 64u

static unsigned halted;

static void on_raise(void *ctx)
{
	(void)ctx;
}

static void on_halt(void *ctx, const char *reason)
{
	(void)ctx, (void)reason;
	halted++;
}

/* Kicks, then reaps until nothing is in flight: io_uring completes every request. */
static void serve(struct vdisk_dev *dev)
{
	vdisk_dev_kick(dev);
	for (unsigned i = 0; i < 10000 && (dev->inflight || vdisk_dev_unsubmitted(dev)); i++) {
		struct pollfd p = {.fd = dev->cq_fd, .events = POLLIN};
		poll(&p, 1, 10);
		vdisk_dev_reap(dev);
	}
	if (dev->inflight)
		abort(); /* a request io_uring never completed */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *ram;
	static char path[4200];
	if (!ram) {
		ram = mmap(NULL, RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (ram == MAP_FAILED)
			abort();
		snprintf(path, sizeof(path), "%s/disk.img", fuzz_tmpdir());
	}
	memset(ram + DN_GPA_IOWIN, 0, DN_IOWIN_SIZE);
	struct dn_disk *shared = (struct dn_disk *)(ram + DN_GPA_IOWIN + DN_IOWIN_DISK);
	struct vdisk_dev dev;
	struct vdisk_dev_hooks hooks = {NULL, on_raise, on_halt, "fuzz"};
	char err[512];
	struct fuzz_in in = {data, size};
	int readonly = fuzz_u8(&in) & 1;
	if (!readonly)
		unlink(path); /* made again, zeroed, of BLOCKS blocks */
	if (vdisk_dev_open(&dev, path, readonly ? 0 : BLOCKS * DN_DISK_BLOCK, readonly, shared, ram,
			   RAM, -1, &hooks, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz: %s\n", err);
		abort();
	}
	halted = 0;
	while (in.n) {
		uint8_t op = fuzz_u8(&in);
		switch (op & 3) {
		case 0: {
			struct dn_disk_req r;
			r.id = fuzz_u8(&in);
			r.op = fuzz_u8(&in) % 5;
			r.block = fuzz_u8(&in);
			if (r.block >= 0x80)
				r.block = fuzz_take(&in, 8);
			r.count = fuzz_u16(&in) % 300;
			uint16_t where = fuzz_u16(&in);
			r.buf = where == 0xffff ? fuzz_take(&in, 8) : (uint64_t)where * 64;
			r.reserved = op & 0x80 ? 1 : 0;
			uint32_t avail = shared->sq_avail;
			shared->sq[avail % DN_DISK_RING_SIZE] = r;
			shared->sq_avail = avail + 1;
			break;
		}
		case 1: {
			uint32_t at = fuzz_u16(&in) * 4u % sizeof(*shared);
			uint32_t value = fuzz_u32(&in);
			memcpy((uint8_t *)shared + at, &value, 4);
			break;
		}
		case 2: shared->cq_used += fuzz_u8(&in) % 8; break;
		case 3: serve(&dev); break;
		}
	}
	serve(&dev);
	if (halted > 1 || (halted && !dev.halted))
		abort(); /* stopped once, and then it takes nothing */
	vdisk_dev_close(&dev);
	return 0;
}
