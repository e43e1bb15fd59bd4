/* disktest: tests and benchmarks of the virtual disk, one behaviour per argument:
 *   write FIRST COUNT SEED   write a pattern to blocks [FIRST, FIRST+COUNT) in batches, FLUSH,
 *                            print "flushed"
 *   verify FIRST COUNT SEED  read those blocks back and check the pattern
 *   write-hold FIRST COUNT SEED  write and FLUSH as write, then idle until DN_EV_STOP (or
 *                            until a test kills the cell)
 *   hostile                  every kind of bad request, by hand on the raw ring: each must
 *                            complete with its error status; then a good READ still works
 *   readonly SEED            on a read-only disk: verify blocks 0-15, WRITE is refused, FLUSH
 *                            is a no-op
 *   fill                     write block after block until the host fails one; print where
 *   corrupt                  publish a request counter far ahead, again and again, until
 *                            stopped
 *   bench MODE BATCH SECONDS MODE randread|randwrite|seqread|seqwrite: keep BATCH requests of
 *                            4K (seq: 128K) in flight; print ops and bytes per second
 *   bench-flush COUNT        COUNT times: WRITE one block, FLUSH, each waited for; print the
 *                            mean time of a write+flush
 * Exit status 0 when every check held. */
#include <denali.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_BLOCKS 64u
static uint8_t buf[BATCH_BLOCKS * DN_DISK_BLOCK] __attribute__((aligned(4096)));

static uint32_t pattern_word(uint64_t block, unsigned word, uint32_t seed)
{
	uint32_t x = (uint32_t)block * 2654435761u ^ word * 40503u ^ seed;
	x ^= x >> 15;
	x *= 2246822519u;
	return x ^ (x >> 13);
}

static void fill_block(uint8_t *b, uint64_t block, uint32_t seed)
{
	uint32_t *w = (uint32_t *)b;
	for (unsigned i = 0; i < DN_DISK_BLOCK / 4; i++)
		w[i] = pattern_word(block, i, seed);
}

static int check_block(const uint8_t *b, uint64_t block, uint32_t seed)
{
	const uint32_t *w = (const uint32_t *)b;
	for (unsigned i = 0; i < DN_DISK_BLOCK / 4; i++)
		if (w[i] != pattern_word(block, i, seed))
			return -1;
	return 0;
}

static void need_disk(void)
{
	if (dn_disk_init() != DN_OK) {
		printf("disktest: no disk\n");
		dn_exit(2);
	}
}

static int cmd_write(uint64_t first, uint64_t count, uint32_t seed)
{
	for (uint64_t b = first; b < first + count; b += BATCH_BLOCKS) {
		uint32_t n = (uint32_t)(first + count - b < BATCH_BLOCKS ? first + count - b
									 : BATCH_BLOCKS);
		for (uint32_t i = 0; i < n; i++)
			fill_block(buf + i * DN_DISK_BLOCK, b + i, seed);
		int st = dn_disk_write(b, n, buf);
		if (st != DN_DISK_OK) {
			printf("disktest: WRITE at block %llu: status %d\n", (unsigned long long)b,
			       st);
			return 1;
		}
	}
	int st = dn_disk_flush();
	if (st != DN_DISK_OK) {
		printf("disktest: FLUSH: status %d\n", st);
		return 1;
	}
	printf("flushed %llu blocks\n", (unsigned long long)count);
	return 0;
}

static int cmd_verify(uint64_t first, uint64_t count, uint32_t seed)
{
	for (uint64_t b = first; b < first + count; b += BATCH_BLOCKS) {
		uint32_t n = (uint32_t)(first + count - b < BATCH_BLOCKS ? first + count - b
									 : BATCH_BLOCKS);
		int st = dn_disk_read(b, n, buf);
		if (st != DN_DISK_OK) {
			printf("disktest: READ at block %llu: status %d\n", (unsigned long long)b,
			       st);
			return 1;
		}
		for (uint32_t i = 0; i < n; i++)
			if (check_block(buf + i * DN_DISK_BLOCK, b + i, seed) != 0) {
				printf("disktest: block %llu does not hold the pattern\n",
				       (unsigned long long)(b + i));
				return 1;
			}
	}
	printf("verified %llu blocks\n", (unsigned long long)count);
	return 0;
}

/* ---- Raw ring access, for requests the library would never make ---- */
static struct dn_disk *raw;

static int raw_request(uint16_t op, uint64_t block, uint32_t count, uint64_t gpa, uint16_t reserved)
{
	uint32_t avail = raw->sq_avail;
	struct dn_disk_req *r = &raw->sq[avail % DN_DISK_RING_SIZE];
	r->id = 0x5eed0000u + avail;
	r->op = op;
	r->block = block;
	r->count = count;
	r->buf = gpa;
	r->reserved = reserved;
	__atomic_store_n(&raw->sq_avail, avail + 1, __ATOMIC_RELEASE);
	__asm__ volatile("outl %0, %w1" : : "a"(0), "Nd"((uint16_t)DN_DISK_KICK_PORT) : "memory");
	uint32_t seen = raw->cq_used;
	while (__atomic_load_n(&raw->cq_avail, __ATOMIC_ACQUIRE) == seen)
		dn_idle(dn_time_ns() + 100000000ull);
	struct dn_disk_cpl c = raw->cq[seen % DN_DISK_RING_SIZE];
	__atomic_store_n(&raw->cq_used, seen + 1, __ATOMIC_RELEASE);
	if (c.id != 0x5eed0000u + avail) {
		printf("disktest: completion id %llx, expected %x\n", (unsigned long long)c.id,
		       0x5eed0000u + avail);
		dn_exit(1);
	}
	return c.status;
}

static int expect(const char *what, int got, int want)
{
	printf("%s: status %d%s\n", what, got, got == want ? "" : " (WRONG)");
	return got == want ? 0 : 1;
}

static void raw_init(void)
{
	raw = (struct dn_disk *)(uintptr_t)dn_boot_info()->disk;
	if (!raw) {
		printf("disktest: no disk\n");
		dn_exit(2);
	}
}

static int cmd_hostile(void)
{
	raw_init();
	uint64_t blocks = raw->blocks, ram = dn_boot_info()->ram_size;
	uint64_t good = (uint64_t)(uintptr_t)buf;
	int bad = 0;
	bad |= expect("block out of range", raw_request(DN_DISK_READ, blocks, 1, good, 0),
		      DN_DISK_E_RANGE);
	bad |= expect("count past the end", raw_request(DN_DISK_READ, blocks - 1, 2, good, 0),
		      DN_DISK_E_RANGE);
	bad |= expect("block wraps", raw_request(DN_DISK_WRITE, UINT64_MAX, 2, good, 0),
		      DN_DISK_E_RANGE);
	bad |= expect("count 0", raw_request(DN_DISK_READ, 0, 0, good, 0), DN_DISK_E_INVAL);
	bad |= expect("count too large", raw_request(DN_DISK_READ, 0, 257, good, 0),
		      DN_DISK_E_INVAL);
	bad |= expect("count overflows", raw_request(DN_DISK_READ, 0, 0x80000000u, good, 0),
		      DN_DISK_E_INVAL);
	bad |= expect("buffer in the system area", raw_request(DN_DISK_READ, 0, 1, 0x1000, 0),
		      DN_DISK_E_FAULT);
	bad |= expect("buffer in the I/O window",
		      raw_request(DN_DISK_READ, 0, 1, DN_GPA_IOWIN + DN_IOWIN_DISK, 0),
		      DN_DISK_E_FAULT);
	bad |= expect("buffer past the end of RAM",
		      raw_request(DN_DISK_READ, 0, 2, ram - DN_DISK_BLOCK, 0), DN_DISK_E_FAULT);
	bad |= expect("buffer wraps", raw_request(DN_DISK_WRITE, 0, 1, UINT64_MAX - 100, 0),
		      DN_DISK_E_FAULT);
	bad |= expect("unknown op", raw_request(9, 0, 1, good, 0), DN_DISK_E_INVAL);
	bad |= expect("op 0", raw_request(0, 0, 1, good, 0), DN_DISK_E_INVAL);
	bad |= expect("reserved set", raw_request(DN_DISK_READ, 0, 1, good, 1), DN_DISK_E_INVAL);
	bad |= expect("FLUSH with a count", raw_request(DN_DISK_FLUSH, 0, 1, 0, 0),
		      DN_DISK_E_INVAL);
	/* The monitor went on: good requests still work, on the same ring. */
	fill_block(buf, 7, 42);
	bad |= expect("good WRITE", raw_request(DN_DISK_WRITE, 3, 1, good, 0), DN_DISK_OK);
	memset(buf, 0, DN_DISK_BLOCK);
	bad |= expect("good READ", raw_request(DN_DISK_READ, 3, 1, good, 0), DN_DISK_OK);
	bad |= expect("good FLUSH", raw_request(DN_DISK_FLUSH, 0, 0, 0, 0), DN_DISK_OK);
	if (check_block(buf, 7, 42) != 0) {
		printf("disktest: the good READ did not return what was written\n");
		bad = 1;
	}
	printf("errors counted: %llu, failed: %llu\n", (unsigned long long)raw->errors,
	       (unsigned long long)raw->failed);
	return bad;
}

static int cmd_readonly(uint32_t seed)
{
	need_disk();
	int bad = !dn_disk_readonly();
	if (bad)
		printf("disktest: the disk does not say it is read-only\n");
	bad |= cmd_verify(0, 16, seed);
	bad |= expect("WRITE", dn_disk_write(0, 1, buf), DN_DISK_E_READONLY);
	bad |= expect("FLUSH", dn_disk_flush(), DN_DISK_OK);
	bad |= cmd_verify(0, 16, seed);
	return bad;
}

static int cmd_fill(void)
{
	need_disk();
	memset(buf, 0xa5, sizeof(buf));
	uint64_t blocks = dn_disk_blocks();
	for (uint64_t b = 0; b < blocks; b += BATCH_BLOCKS) {
		uint32_t n = (uint32_t)(blocks - b < BATCH_BLOCKS ? blocks - b : BATCH_BLOCKS);
		int st = dn_disk_write(b, n, buf);
		if (st == DN_DISK_OK)
			continue;
		printf("WRITE at block %llu: status %d\n", (unsigned long long)b, st);
		/* The device is still there: a FLUSH answers, reads of what was written work. */
		printf("FLUSH: status %d\n", dn_disk_flush());
		printf("READ: status %d\n", dn_disk_read(0, 1, buf));
		return st == DN_DISK_E_IO ? 0 : 1;
	}
	printf("filled all %llu blocks: no error\n", (unsigned long long)blocks);
	return 1;
}

__attribute__((noreturn)) static void cmd_corrupt(void)
{
	raw_init();
	for (;;) {
		__atomic_store_n(&raw->sq_avail, raw->sq_used + 100000u, __ATOMIC_RELEASE);
		__asm__ volatile("outl %0, %w1"
				 :
				 : "a"(0), "Nd"((uint16_t)DN_DISK_KICK_PORT)
				 : "memory");
		dn_idle(dn_time_ns() + 1000000ull);
	}
}

/* ---- bench ---- */
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
};

static void bench_done(int status, void *arg);

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
	void *p =
		buf + (slot % (BATCH_BLOCKS / b->blocks_per_op)) * b->blocks_per_op * DN_DISK_BLOCK;
	dn_disk_submit(b->write ? DN_DISK_WRITE : DN_DISK_READ, block, b->blocks_per_op, p,
		       bench_done, (void *)(uintptr_t)slot);
}

static struct bench bench;
static int bench_stopping;

static void bench_done(int status, void *arg)
{
	if (status != DN_DISK_OK)
		bench.errors++;
	bench.ops++;
	if (!bench_stopping)
		bench_submit(&bench, (unsigned)(uintptr_t)arg);
}

static int cmd_bench(const char *mode, unsigned batch, unsigned seconds)
{
	need_disk();
	bench.write = strstr(mode, "write") != NULL;
	bench.random = strncmp(mode, "rand", 4) == 0;
	bench.blocks_per_op = bench.random ? 1 : 32;
	bench.disk_blocks = dn_disk_blocks();
	if (batch == 0 || batch > DN_DISK_RING_SIZE)
		batch = 1;
	memset(buf, 0x3c, sizeof(buf));
	uint64_t start = dn_time_ns(), end = start + (uint64_t)seconds * 1000000000ull;
	for (unsigned i = 0; i < batch; i++)
		bench_submit(&bench, i);
	while (dn_time_ns() < end) {
		dn_disk_kick();
		if (!dn_disk_poll())
			dn_idle(end);
	}
	bench_stopping = 1;
	dn_disk_drain();
	uint64_t ns = dn_time_ns() - start;
	uint64_t bytes = bench.ops * bench.blocks_per_op * DN_DISK_BLOCK;
	printf("bench %s batch %u: %llu ops in %llu ms: %llu ops/s, %llu KB/s, %llu errors, "
	       "%llu kicks\n",
	       mode, batch, (unsigned long long)bench.ops, (unsigned long long)(ns / 1000000),
	       (unsigned long long)(bench.ops * 1000000000ull / ns),
	       (unsigned long long)(bytes * 1000000ull / ns), (unsigned long long)bench.errors,
	       (unsigned long long)dn_disk_stats()->kicks);
	return bench.errors != 0;
}

static int cmd_bench_flush(uint64_t count)
{
	need_disk();
	memset(buf, 0x3c, DN_DISK_BLOCK);
	uint64_t blocks = dn_disk_blocks(), errors = 0, start = dn_time_ns();
	for (uint64_t i = 0; i < count; i++) {
		errors += dn_disk_write(i % blocks, 1, buf) != DN_DISK_OK;
		errors += dn_disk_flush() != DN_DISK_OK;
	}
	uint64_t ns = dn_time_ns() - start, per = count ? ns / count : 0;
	printf("bench-flush: %llu write+flush in %llu ms: %llu.%03llu us each, %llu errors, "
	       "%llu kicks\n",
	       (unsigned long long)count, (unsigned long long)(ns / 1000000),
	       (unsigned long long)(per / 1000), (unsigned long long)(per % 1000),
	       (unsigned long long)errors, (unsigned long long)dn_disk_stats()->kicks);
	return errors != 0;
}

static uint64_t arg_u64(int argc, char **argv, int i)
{
	if (i >= argc) {
		printf("disktest: missing argument %d\n", i);
		dn_exit(2);
	}
	return strtoul(argv[i], NULL, 0);
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	if (!strcmp(cmd, "write") || !strcmp(cmd, "verify") || !strcmp(cmd, "write-hold")) {
		need_disk();
		uint64_t first = arg_u64(argc, argv, 2), count = arg_u64(argc, argv, 3);
		uint32_t seed = (uint32_t)arg_u64(argc, argv, 4);
		if (!strcmp(cmd, "verify"))
			return cmd_verify(first, count, seed);
		int rc = cmd_write(first, count, seed);
		if (rc || strcmp(cmd, "write-hold"))
			return rc;
		fflush(stdout);
		while (!(dn_idle(UINT64_MAX) & DN_EV_STOP))
			continue;
		return 0;
	}
	if (!strcmp(cmd, "hostile"))
		return cmd_hostile();
	if (!strcmp(cmd, "readonly"))
		return cmd_readonly((uint32_t)arg_u64(argc, argv, 2));
	if (!strcmp(cmd, "fill"))
		return cmd_fill();
	if (!strcmp(cmd, "corrupt"))
		cmd_corrupt();
	if (!strcmp(cmd, "bench"))
		return cmd_bench(argc > 2 ? argv[2] : "randread", (unsigned)arg_u64(argc, argv, 3),
				 (unsigned)arg_u64(argc, argv, 4));
	if (!strcmp(cmd, "bench-flush"))
		return cmd_bench_flush(arg_u64(argc, argv, 2));
	printf("disktest: unknown command \"%s\"\n", cmd);
	return 2;
}
