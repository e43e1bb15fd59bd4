/* bench/swap_native: the baseline for bench/swap, the bare memory work of a swap-out and a
 * swap-in done by a host process on a file, with no VM. Usage:
 *   swap_native DIR MIB ROUNDS
 * Makes a file of MIB MiB in DIR (removed at the end; left behind on an error), maps it MAP_SHARED
 * and, ROUNDS times: writes every page (the working set), then times drop:     msync(MS_SYNC) +
 * madvise(MADV_DONTNEED) + posix_fadvise(POSIX_FADV_DONTNEED) populate:
 * madvise(MADV_POPULATE_WRITE) over the range (MADV_WILLNEED where the kernel has no
 * POPULATE_WRITE), as the monitor's prefetch does demand:   after writing every page again and
 * dropping them, one byte written per page Prints one line: swap_native: MIB MiB, PAGES pages,
 * ROUNDS rounds: drop D us, populate P us, demand T us (populate by madvise|willneed) with the mean
 * of each operation (drop is timed twice per round). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define PAGE 4096u

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "swap_native: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Dirties every page, as the guest's fill does (one byte per page is enough to dirty it). */
static void write_pages(uint8_t *p, size_t len, unsigned round)
{
	for (size_t i = 0; i < len; i += PAGE)
		p[i] = (uint8_t)(i >> 12) ^ (uint8_t)round;
}

/* The swap-out's memory half: write back, then out of the mapping and the page cache. */
static uint64_t drop(int fd, uint8_t *p, size_t len)
{
	uint64_t t0 = now_ns();
	if (msync(p, len, MS_SYNC) != 0)
		die("msync");
	if (madvise(p, len, MADV_DONTNEED) != 0)
		die("madvise(MADV_DONTNEED)");
	int rc = posix_fadvise(fd, 0, (off_t)len, POSIX_FADV_DONTNEED);
	if (rc != 0) {
		errno = rc;
		die("posix_fadvise(POSIX_FADV_DONTNEED)");
	}
	return now_ns() - t0;
}

static int willneed; /* the kernel has no MADV_POPULATE_WRITE */

/* The prefetch: the whole range in one call. */
static uint64_t populate(uint8_t *p, size_t len)
{
	uint64_t t0 = now_ns();
	if (!willneed && madvise(p, len, MADV_POPULATE_WRITE) != 0) {
		if (errno != EINVAL)
			die("madvise(MADV_POPULATE_WRITE)");
		willneed = 1;
	}
	if (willneed && madvise(p, len, MADV_WILLNEED) != 0)
		die("madvise(MADV_WILLNEED)");
	return now_ns() - t0;
}

/* Demand faulting: one write per page, each a fault that reads the page back. */
static uint64_t demand(volatile uint8_t *p, size_t len)
{
	uint64_t t0 = now_ns();
	for (size_t i = 0; i < len; i += PAGE)
		p[i] = (uint8_t)(p[i] + 1);
	return now_ns() - t0;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: swap_native DIR MIB ROUNDS\n");
		return 2;
	}
	unsigned mib = (unsigned)strtoul(argv[2], NULL, 0);
	unsigned rounds = (unsigned)strtoul(argv[3], NULL, 0);
	if (mib == 0 || rounds == 0) {
		fprintf(stderr, "swap_native: MIB and ROUNDS must be positive\n");
		return 2;
	}
	size_t len = (size_t)mib << 20;
	char path[4096];
	snprintf(path, sizeof(path), "%s/swap-native-XXXXXX", argv[1]);
	int fd = mkstemp(path);
	if (fd < 0)
		die(path);
	/* Removed at the end, not now: on 9p an unlinked file cannot be resized. */
	if (ftruncate(fd, (off_t)len) != 0)
		die("ftruncate");
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		die("mmap");
	/* The file's blocks exist before the first timing, as the guest's memory file's do. */
	write_pages(p, len, 0xff);
	drop(fd, p, len);

	uint64_t t_drop = 0, t_pop = 0, t_demand = 0;
	for (unsigned r = 0; r < rounds; r++) {
		write_pages(p, len, r);
		t_drop += drop(fd, p, len);
		t_pop += populate(p, len);
		write_pages(p, len, r + 1);
		t_drop += drop(fd, p, len);
		t_demand += demand(p, len);
	}
	munmap(p, len);
	close(fd);
	unlink(path);
	printf("swap_native: %u MiB, %zu pages, %u rounds: drop %.1f us, populate %.1f us, "
	       "demand %.1f us (populate by %s)\n",
	       mib, len / PAGE, rounds, (double)t_drop / (2.0 * rounds) / 1000.0,
	       (double)t_pop / rounds / 1000.0, (double)t_demand / rounds / 1000.0,
	       willneed ? "willneed" : "madvise");
	return 0;
}
