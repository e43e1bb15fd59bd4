/* bench/disk_native: the baseline for bench/disk, disktest's access patterns from a host process
 * on an image file through io_uring, as the monitor does it (buffered I/O, a 128-entry ring, no
 * SQPOLL). Usage:
 *   disk_native IMAGE bench MODE BATCH SECONDS  MODE randread|randwrite|seqread|seqwrite: keep
 *       BATCH requests of 4K (seq: 128K) in flight, refilled as each completes; the same block
 *       sequence as disktest (xorshift64 % blocks; seq wraps before the end)
 *   disk_native IMAGE bench-flush COUNT  COUNT times: write one block, wait, fdatasync, wait
 * Prints disktest's lines; "kicks" are io_uring_enter calls that submitted requests. */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096u	 /* DN_DISK_BLOCK */
#define RING_SIZE 128u	 /* DN_DISK_RING_SIZE: the monitor's io_uring and the queue depth cap */
#define BATCH_BLOCKS 64u /* disktest's buffer: 64 blocks, shared out among the slots */
static uint8_t buf[BATCH_BLOCKS * BLOCK] __attribute__((aligned(4096)));

static struct io_uring ring;
static int fd;
static uint64_t kicks;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Submits what is queued and waits for at least `wait` completions. */
static void kick(unsigned wait)
{
	int rc;
	do
		rc = io_uring_submit_and_wait(&ring, wait);
	while (rc == -EINTR);
	if (rc < 0) {
		fprintf(stderr, "disk_native: io_uring_submit_and_wait: %s\n", strerror(-rc));
		exit(1);
	}
	kicks++;
}

/* ---- bench: disktest's bench, request for request ---- */
static uint64_t rng = 88172645463325252ull;
static uint64_t next_random(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

struct bench {
	int write, random;
	uint32_t blocks_per_op;
	uint64_t next_block, disk_blocks;
	uint64_t ops, errors;
	unsigned inflight;
};

static void bench_submit(struct bench *b, unsigned slot)
{
	uint64_t block;
	if (b->random) {
		block = next_random() % b->disk_blocks;
	} else {
		if (b->next_block + b->blocks_per_op > b->disk_blocks)
			b->next_block = 0;
		block = b->next_block;
		b->next_block += b->blocks_per_op;
	}
	void *p = buf + (slot % (BATCH_BLOCKS / b->blocks_per_op)) * b->blocks_per_op * BLOCK;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
	if (!sqe) { /* cannot happen: at most RING_SIZE in flight */
		fprintf(stderr, "disk_native: no free SQE\n");
		exit(1);
	}
	unsigned len = b->blocks_per_op * BLOCK;
	if (b->write)
		io_uring_prep_write(sqe, fd, p, len, block * BLOCK);
	else
		io_uring_prep_read(sqe, fd, p, len, block * BLOCK);
	io_uring_sqe_set_data64(sqe, slot);
	b->inflight++;
}

/* Takes every completion there is; refills each slot unless stopping. */
static void bench_reap(struct bench *b, int stopping)
{
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0;
	io_uring_for_each_cqe(&ring, head, cqe)
	{
		seen++;
		if (cqe->res != (int)(b->blocks_per_op * BLOCK))
			b->errors++;
		b->ops++;
		b->inflight--;
		if (!stopping)
			bench_submit(b, (unsigned)io_uring_cqe_get_data64(cqe));
	}
	io_uring_cq_advance(&ring, seen);
}

static int cmd_bench(const char *mode, unsigned batch, unsigned seconds, uint64_t blocks)
{
	struct bench b = {0};
	b.write = strstr(mode, "write") != NULL;
	b.random = strncmp(mode, "rand", 4) == 0;
	b.blocks_per_op = b.random ? 1 : 32;
	b.disk_blocks = blocks;
	if (batch == 0 || batch > RING_SIZE)
		batch = 1;
	memset(buf, 0x3c, sizeof(buf));
	uint64_t start = now_ns(), end = start + (uint64_t)seconds * 1000000000ull;
	for (unsigned i = 0; i < batch; i++)
		bench_submit(&b, i);
	while (now_ns() < end) {
		kick(1);
		bench_reap(&b, 0);
	}
	while (b.inflight) {
		kick(1);
		bench_reap(&b, 1);
	}
	uint64_t ns = now_ns() - start;
	uint64_t bytes = b.ops * b.blocks_per_op * BLOCK;
	printf("bench %s batch %u: %llu ops in %llu ms: %llu ops/s, %llu KB/s, %llu errors, "
	       "%llu kicks\n",
	       mode, batch, (unsigned long long)b.ops, (unsigned long long)(ns / 1000000),
	       (unsigned long long)(b.ops * 1000000000ull / ns),
	       (unsigned long long)(bytes * 1000000ull / ns), (unsigned long long)b.errors,
	       (unsigned long long)kicks);
	return b.errors != 0;
}

/* ---- bench-flush: a durable write's latency ---- */

/* Submits the one request queued and waits for it; its result (res, or -errno). */
static int wait_one(void)
{
	kick(1);
	struct io_uring_cqe *cqe;
	int rc = io_uring_peek_cqe(&ring, &cqe);
	if (rc != 0)
		return rc;
	int res = cqe->res;
	io_uring_cqe_seen(&ring, cqe);
	return res;
}

static int cmd_bench_flush(uint64_t count, uint64_t blocks)
{
	memset(buf, 0x3c, BLOCK);
	uint64_t errors = 0, start = now_ns();
	for (uint64_t i = 0; i < count; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		io_uring_prep_write(sqe, fd, buf, BLOCK, (i % blocks) * BLOCK);
		if (wait_one() != (int)BLOCK)
			errors++;
		sqe = io_uring_get_sqe(&ring);
		io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
		if (wait_one() != 0)
			errors++;
	}
	uint64_t ns = now_ns() - start, per = count ? ns / count : 0;
	printf("bench-flush: %llu write+flush in %llu ms: %llu.%03llu us each, %llu errors, "
	       "%llu kicks\n",
	       (unsigned long long)count, (unsigned long long)(ns / 1000000),
	       (unsigned long long)(per / 1000), (unsigned long long)(per % 1000),
	       (unsigned long long)errors, (unsigned long long)kicks);
	return errors != 0;
}

int main(int argc, char **argv)
{
	int flush = argc == 4 && !strcmp(argv[2], "bench-flush");
	if (!flush && (argc != 6 || strcmp(argv[2], "bench"))) {
		fprintf(stderr, "usage: disk_native IMAGE bench MODE BATCH SECONDS\n"
				"       disk_native IMAGE bench-flush COUNT\n");
		return 2;
	}
	fd = open(argv[1], O_RDWR | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		fprintf(stderr, "disk_native: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	uint64_t blocks = (uint64_t)st.st_size / BLOCK;
	if (blocks == 0) {
		fprintf(stderr, "disk_native: %s is smaller than a block\n", argv[1]);
		return 1;
	}
	int rc = io_uring_queue_init(RING_SIZE, &ring, 0);
	if (rc < 0) {
		fprintf(stderr, "disk_native: io_uring_queue_init: %s\n", strerror(-rc));
		return 1;
	}
	if (flush)
		rc = cmd_bench_flush(strtoull(argv[3], NULL, 0), blocks);
	else
		rc = cmd_bench(argv[3], (unsigned)strtoul(argv[4], NULL, 0),
			       (unsigned)strtoul(argv[5], NULL, 0), blocks);
	io_uring_queue_exit(&ring);
	close(fd);
	return rc;
}
