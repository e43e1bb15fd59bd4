/* The disk device without KVM: request checks, and the device over a fake guest RAM and a real
 * image with io_uring, driven as the worker drives it. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "plan.h"
#include "unit.h"
#include "vdisk/vdisk_dev.h"
#include "vdisk/vdisk_req.h"
#include "vdisk/vdisk_ring.h"

#define RAM (8u << 20)
#define BLOCKS 256u

/* ---- vdisk_req_check ---- */
static int check(uint16_t op, uint64_t block, uint32_t count, uint64_t buf, int readonly)
{
	struct dn_disk_req r = {.id = 9, .op = op, .block = block, .count = count, .buf = buf};
	struct vdisk_io io;
	const char *why;
	int st = vdisk_req_check(&r, BLOCKS, readonly, RAM, &io, &why);
	ck_assert_uint_eq(io.id, 9);
	ck_assert(st == DN_DISK_OK ? why == NULL : why != NULL);
	return st;
}

START_TEST(test_req_rules)
{
	const uint64_t good = DN_GPA_IMAGE_BASE;
	ck_assert_int_eq(check(DN_DISK_READ, 0, 1, good, 0), DN_DISK_OK);
	ck_assert_int_eq(check(DN_DISK_WRITE, BLOCKS - 256, 256, good, 0), DN_DISK_OK);
	ck_assert_int_eq(check(DN_DISK_READ, BLOCKS - 1, 1, RAM - DN_DISK_BLOCK, 0), DN_DISK_OK);
	ck_assert_int_eq(check(DN_DISK_FLUSH, 0, 0, 0, 0), DN_DISK_OK);
	ck_assert_int_eq(check(DN_DISK_FLUSH, 0, 0, 0, 1), DN_DISK_OK);
	/* Range, including the wrap of block + count. */
	ck_assert_int_eq(check(DN_DISK_READ, BLOCKS, 1, good, 0), DN_DISK_E_RANGE);
	ck_assert_int_eq(check(DN_DISK_READ, BLOCKS - 1, 2, good, 0), DN_DISK_E_RANGE);
	ck_assert_int_eq(check(DN_DISK_READ, UINT64_MAX, 2, good, 0), DN_DISK_E_RANGE);
	/* Counts, including one whose byte length would overflow 32 bits. */
	ck_assert_int_eq(check(DN_DISK_READ, 0, 0, good, 0), DN_DISK_E_INVAL);
	ck_assert_int_eq(check(DN_DISK_READ, 0, 257, good, 0), DN_DISK_E_INVAL);
	ck_assert_int_eq(check(DN_DISK_READ, 0, 1u << 20, good, 0), DN_DISK_E_INVAL);
	/* Buffers: system area, I/O window, past the end, wrapping. */
	ck_assert_int_eq(check(DN_DISK_READ, 0, 1, 0, 0), DN_DISK_E_FAULT);
	ck_assert_int_eq(check(DN_DISK_READ, 0, 1, DN_GPA_IOWIN, 0), DN_DISK_E_FAULT);
	ck_assert_int_eq(check(DN_DISK_READ, 0, 2, RAM - DN_DISK_BLOCK, 0), DN_DISK_E_FAULT);
	ck_assert_int_eq(check(DN_DISK_READ, 0, 1, UINT64_MAX - 10, 0), DN_DISK_E_FAULT);
	/* Ops and fields. */
	ck_assert_int_eq(check(0, 0, 1, good, 0), DN_DISK_E_INVAL);
	ck_assert_int_eq(check(4, 0, 1, good, 0), DN_DISK_E_INVAL);
	ck_assert_int_eq(check(DN_DISK_FLUSH, 1, 0, 0, 0), DN_DISK_E_INVAL);
	ck_assert_int_eq(check(DN_DISK_FLUSH, 0, 0, good, 0), DN_DISK_E_INVAL);
	ck_assert_int_eq(check(DN_DISK_WRITE, 0, 1, good, 1), DN_DISK_E_READONLY);
	ck_assert_int_eq(check(DN_DISK_READ, 0, 1, good, 1), DN_DISK_OK);
	struct dn_disk_req r = {.op = DN_DISK_READ, .count = 1, .buf = good, .reserved = 1};
	struct vdisk_io io;
	const char *why;
	ck_assert_int_eq(vdisk_req_check(&r, BLOCKS, 0, RAM, &io, &why), DN_DISK_E_INVAL);
}
END_TEST

/* ---- The device ---- */
struct fake_guest {
	uint8_t *ram;
	struct dn_disk *shared;
	struct vdisk_dev dev;
	int kick_fd;
	unsigned raised, halted;
	char reason[256];
	uint32_t cq_seen;
};

static void fake_raise(void *ctx)
{
	((struct fake_guest *)ctx)->raised++;
}

static void fake_halt(void *ctx, const char *reason)
{
	struct fake_guest *g = ctx;
	g->halted++;
	snprintf(g->reason, sizeof(g->reason), "%s", reason);
}

static void guest_open(struct fake_guest *g, const char *name, int readonly)
{
	memset(g, 0, sizeof(*g));
	g->ram = mmap(NULL, RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(g->ram, MAP_FAILED);
	g->shared = (struct dn_disk *)(g->ram + DN_GPA_IOWIN + DN_IOWIN_DISK);
	g->kick_fd = -1;
	char path[4096], err[512];
	snprintf(path, sizeof(path), "%s/%s", unit_tmpdir(), name);
	if (!readonly)
		unlink(path);
	struct vdisk_dev_hooks hooks = {g, fake_raise, fake_halt, "fake"};
	int rc = vdisk_dev_open(&g->dev, path, readonly ? 0 : BLOCKS * DN_DISK_BLOCK, readonly,
				g->shared, g->ram, RAM, g->kick_fd, &hooks, err, sizeof(err));
	ck_assert_msg(rc == 0, "%s", err);
	ck_assert_uint_eq(g->shared->blocks, BLOCKS);
	ck_assert_uint_eq(g->shared->flags, readonly ? DN_DISK_F_READONLY : 0);
}

static void guest_close(struct fake_guest *g)
{
	vdisk_dev_close(&g->dev);
	munmap(g->ram, RAM);
}

static void submit(struct fake_guest *g, uint64_t id, uint16_t op, uint64_t block, uint32_t count,
		   uint64_t gpa)
{
	uint32_t avail = g->shared->sq_avail;
	g->shared->sq[avail % DN_DISK_RING_SIZE] = (struct dn_disk_req){
		.id = id, .op = op, .block = block, .count = count, .buf = gpa};
	g->shared->sq_avail = avail + 1;
}

/* Runs the worker's side until n completions are published (or a second passes). */
static void serve_until(struct fake_guest *g, unsigned n)
{
	vdisk_dev_kick(&g->dev);
	for (int i = 0; i < 100 && g->shared->cq_avail - g->cq_seen < n; i++) {
		struct pollfd p = {.fd = g->dev.cq_fd, .events = POLLIN};
		if (poll(&p, 1, 10) > 0)
			vdisk_dev_reap(&g->dev);
	}
}

/* Takes the next completion (the guest's side). */
static struct dn_disk_cpl take(struct fake_guest *g)
{
	ck_assert_uint_ne(g->shared->cq_avail, g->cq_seen);
	struct dn_disk_cpl c = g->shared->cq[g->cq_seen % DN_DISK_RING_SIZE];
	g->shared->cq_used = ++g->cq_seen;
	return c;
}

START_TEST(test_dev_write_read_flush)
{
	struct fake_guest g;
	guest_open(&g, "dev.img", 0);
	uint8_t *a = g.ram + DN_GPA_IMAGE_BASE, *b = a + 64 * DN_DISK_BLOCK;
	for (unsigned i = 0; i < 4 * DN_DISK_BLOCK; i++)
		a[i] = (uint8_t)(i * 7 + 1);
	submit(&g, 1, DN_DISK_WRITE, 10, 4, DN_GPA_IMAGE_BASE);
	submit(&g, 2, DN_DISK_FLUSH, 0, 0, 0);
	serve_until(&g, 2);
	struct dn_disk_cpl c1 = take(&g), c2 = take(&g);
	/* The FLUSH drains: the write completes first. */
	ck_assert_uint_eq(c1.id, 1);
	ck_assert_uint_eq(c2.id, 2);
	ck_assert_int_eq(c1.status, DN_DISK_OK);
	ck_assert_int_eq(c2.status, DN_DISK_OK);
	submit(&g, 3, DN_DISK_READ, 10, 4, DN_GPA_IMAGE_BASE + 64 * DN_DISK_BLOCK);
	serve_until(&g, 1);
	ck_assert_int_eq(take(&g).status, DN_DISK_OK);
	ck_assert_int_eq(memcmp(a, b, 4 * DN_DISK_BLOCK), 0);
	ck_assert_uint_eq(g.shared->sq_used, 3);
	ck_assert_uint_eq(g.shared->writes, 1);
	ck_assert_uint_eq(g.shared->reads, 1);
	ck_assert_uint_eq(g.shared->flushes, 1);
	ck_assert_uint_eq(g.dev.stats.bytes_written, 4 * DN_DISK_BLOCK);
	ck_assert_uint_ge(g.raised, 1);
	/* The image holds the bytes, at block 10. */
	uint8_t back[DN_DISK_BLOCK];
	ck_assert_int_eq(pread(g.dev.file.fd, back, sizeof(back), 10 * DN_DISK_BLOCK),
			 DN_DISK_BLOCK);
	ck_assert_int_eq(memcmp(back, a, sizeof(back)), 0);
	guest_close(&g);
}
END_TEST

START_TEST(test_dev_bad_requests_and_halt)
{
	struct fake_guest g;
	guest_open(&g, "bad.img", 0);
	/* A well-formed request outside the disk, its buffer or its rights fails, and no more:
	 * many of them never stop the guest. */
	for (unsigned i = 0; i < 2 * DN_DISK_ERRORS_MAX; i++) {
		submit(&g, i, i % 2 ? DN_DISK_READ : DN_DISK_WRITE, BLOCKS, 1, DN_GPA_IMAGE_BASE);
		serve_until(&g, 1);
		ck_assert_int_eq(take(&g).status, DN_DISK_E_RANGE);
	}
	ck_assert_uint_eq(g.shared->errors, 0);
	ck_assert_uint_eq(g.shared->failed, 2 * DN_DISK_ERRORS_MAX);
	/* Each malformed request completes with its status and counts; the 64th stops the
	 * guest. */
	for (unsigned i = 0; i < DN_DISK_ERRORS_MAX - 1; i++) {
		submit(&g, i, DN_DISK_READ, 0, 0, DN_GPA_IMAGE_BASE);
		serve_until(&g, 1);
		struct dn_disk_cpl c = take(&g);
		ck_assert_uint_eq(c.id, i);
		ck_assert_int_eq(c.status, DN_DISK_E_INVAL);
	}
	ck_assert_uint_eq(g.halted, 0);
	ck_assert_uint_eq(g.shared->errors, DN_DISK_ERRORS_MAX - 1);
	submit(&g, 99, 7, 0, 1, DN_GPA_IMAGE_BASE);
	serve_until(&g, 1);
	ck_assert_int_eq(take(&g).status, DN_DISK_E_INVAL);
	ck_assert_uint_eq(g.halted, 1);
	ck_assert_str_eq(g.reason, "virtual disk: 64 ring errors, the last: request 191 (op 7): "
				   "unknown op");
	/* Halted: nothing more is taken, and it is not stopped twice. */
	submit(&g, 100, DN_DISK_READ, 0, 1, DN_GPA_IMAGE_BASE);
	serve_until(&g, 1);
	ck_assert_uint_eq(g.shared->sq_used, 3 * DN_DISK_ERRORS_MAX);
	ck_assert_uint_eq(g.halted, 1);
	guest_close(&g);
}
END_TEST

START_TEST(test_dev_bad_counters)
{
	struct fake_guest g;
	guest_open(&g, "counters.img", 0);
	g.shared->sq_avail = 1000; /* more than a ring ahead */
	vdisk_dev_kick(&g.dev);
	ck_assert_uint_eq(g.shared->sq_used, 0);
	ck_assert_uint_eq(g.shared->errors, 1);
	g.shared->sq_avail = 0;
	submit(&g, 5, DN_DISK_READ, 0, 1, DN_GPA_IMAGE_BASE);
	g.shared->cq_used = 77; /* ahead of what was published */
	vdisk_dev_kick(&g.dev);
	ck_assert_uint_eq(g.shared->sq_used, 0); /* not taken while cq_used is nonsense */
	ck_assert_uint_ge(g.shared->errors, 2);
	g.shared->cq_used = 0;
	serve_until(&g, 1);
	ck_assert_int_eq(take(&g).status, DN_DISK_OK);
	guest_close(&g);
}
END_TEST

START_TEST(test_dev_backpressure)
{
	struct fake_guest g;
	guest_open(&g, "full.img", 0);
	/* A guest that consumes no completion gets a ring of them, and no more is taken. */
	for (unsigned round = 0; round < 2; round++) {
		for (unsigned i = 0; i < DN_DISK_RING_SIZE; i++)
			submit(&g, round * 1000 + i, DN_DISK_READ, i % BLOCKS, 1,
			       DN_GPA_IMAGE_BASE + (uint64_t)(i % 64) * DN_DISK_BLOCK);
		serve_until(&g, DN_DISK_RING_SIZE);
		ck_assert_uint_eq(g.shared->cq_avail, DN_DISK_RING_SIZE);
		ck_assert_uint_eq(g.shared->sq_used, DN_DISK_RING_SIZE);
	}
	/* Consuming them lets the second round in. */
	for (unsigned i = 0; i < DN_DISK_RING_SIZE; i++)
		ck_assert_int_eq(take(&g).status, DN_DISK_OK);
	serve_until(&g, DN_DISK_RING_SIZE);
	ck_assert_uint_eq(g.shared->sq_used, 2 * DN_DISK_RING_SIZE);
	unsigned seen = 0;
	for (unsigned i = 0; i < DN_DISK_RING_SIZE; i++) {
		struct dn_disk_cpl c = take(&g);
		ck_assert_uint_ge(c.id, 1000);
		seen++;
	}
	ck_assert_uint_eq(seen, DN_DISK_RING_SIZE);
	ck_assert_uint_eq(g.shared->errors, 0);
	guest_close(&g);
}
END_TEST

/* A hostile guest on its own vcpu: keeps sq a ring ahead of sq_used with requests of op (and
 * count), and consumes every completion at once, so that the device never runs out of room,
 * until told to stop or HOSTILE_MAX are published. */
#define HOSTILE_MAX 2000000u
struct hostile_sq {
	struct dn_disk *shared;
	uint16_t op;
	uint32_t count;
	int stop;
	uint32_t published; /* atomic */
	uint32_t beats;	    /* atomic: turns of its loop, to see it run */
};

static void *hostile_sq_main(void *arg)
{
	struct hostile_sq *h = arg;
	struct dn_disk *d = h->shared;
	uint32_t avail = d->sq_avail;
	while (!__atomic_load_n(&h->stop, __ATOMIC_ACQUIRE) &&
	       __atomic_load_n(&h->published, __ATOMIC_RELAXED) < HOSTILE_MAX) {
		__atomic_add_fetch(&h->beats, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&d->cq_used, __atomic_load_n(&d->cq_avail, __ATOMIC_ACQUIRE),
				 __ATOMIC_RELEASE);
		/* A full ring: spin, as a vcpu would, to be on hand when the device moves. */
		if (avail - __atomic_load_n(&d->sq_used, __ATOMIC_ACQUIRE) >= DN_DISK_RING_SIZE)
			continue;
		/* Beyond the disk: well-formed, it only fails (no ring error, no io_uring). */
		d->sq[avail % DN_DISK_RING_SIZE] = (struct dn_disk_req){.id = avail,
									.op = h->op,
									.block = BLOCKS,
									.count = h->count,
									.buf = DN_GPA_IMAGE_BASE};
		__atomic_store_n(&d->sq_avail, ++avail, __ATOMIC_RELEASE);
		__atomic_add_fetch(&h->published, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

START_TEST(test_dev_kick_bounded_against_a_running_guest)
{
	/* The guest keeps publishing requests and consuming completions while the worker serves
	 * a kick: each kick takes at most one ring of requests and returns while the guest is
	 * still writing. */
	struct fake_guest g;
	guest_open(&g, "hostile.img", 0);
	struct hostile_sq h = {.shared = g.shared, .op = DN_DISK_READ, .count = 1};
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, hostile_sq_main, &h), 0);
	unit_cpus_apart(t);
	for (unsigned kick = 0; kick < 64; kick++) {
		while (__atomic_load_n(&g.shared->sq_avail, __ATOMIC_ACQUIRE) == g.dev.sq_used)
			sched_yield();
		unit_wait_running(&h.beats);
		uint32_t before = g.dev.sq_used;
		vdisk_dev_kick(&g.dev);
		ck_assert_uint_le(g.dev.sq_used - before, DN_DISK_RING_SIZE);
		ck_assert_uint_lt(__atomic_load_n(&h.published, __ATOMIC_RELAXED), HOSTILE_MAX);
	}
	__atomic_store_n(&h.stop, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	ck_assert_uint_eq(g.shared->errors, 0);
	ck_assert_uint_eq(g.halted, 0);
	guest_close(&g);
	/* Malformed requests (count 0): the error limit holds inside the kick that reaches it,
	 * and then nothing more is taken. */
	guest_open(&g, "hostile.img", 0);
	h = (struct hostile_sq){.shared = g.shared, .op = DN_DISK_READ, .count = 0};
	ck_assert_int_eq(pthread_create(&t, NULL, hostile_sq_main, &h), 0);
	unit_cpus_apart(t);
	for (unsigned kick = 0; kick < 8; kick++) {
		while (__atomic_load_n(&h.published, __ATOMIC_RELAXED) < DN_DISK_RING_SIZE)
			sched_yield();
		vdisk_dev_kick(&g.dev);
		ck_assert_uint_le(g.dev.sq_used, DN_DISK_ERRORS_MAX);
	}
	__atomic_store_n(&h.stop, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	ck_assert_uint_eq(g.halted, 1);
	ck_assert_uint_eq(g.shared->errors, DN_DISK_ERRORS_MAX);
	ck_assert_uint_eq(g.dev.sq_used, DN_DISK_ERRORS_MAX);
	guest_close(&g);
}
END_TEST

START_TEST(test_dev_readonly)
{
	struct fake_guest g;
	guest_open(&g, "dev.img", 0); /* create it */
	guest_close(&g);
	guest_open(&g, "dev.img", 1);
	submit(&g, 1, DN_DISK_WRITE, 0, 1, DN_GPA_IMAGE_BASE);
	submit(&g, 2, DN_DISK_FLUSH, 0, 0, 0);
	submit(&g, 3, DN_DISK_READ, 0, 1, DN_GPA_IMAGE_BASE);
	serve_until(&g, 3);
	int status[4] = {-1, -1, -1, -1};
	for (int i = 0; i < 3; i++) {
		struct dn_disk_cpl c = take(&g);
		ck_assert_uint_lt(c.id, 4);
		status[c.id] = c.status;
	}
	ck_assert_int_eq(status[1], DN_DISK_E_READONLY);
	ck_assert_int_eq(status[2], DN_DISK_OK);
	ck_assert_int_eq(status[3], DN_DISK_OK);
	guest_close(&g);
}
END_TEST

/* ---- The plan's disk check ---- */
static void plan_disk(struct vmm_plan_service *ps, const char *name, char *path, int readonly)
{
	memset(ps, 0, sizeof(*ps));
	snprintf(ps->cfg.name, sizeof(ps->cfg.name), "%s", name);
	ps->cfg.disk.enabled = 1;
	ps->cfg.disk.path = path;
	ps->cfg.disk.readonly = readonly;
}

START_TEST(test_plan_one_writer)
{
	char a[4096], a2[4096], b[4096], err[512];
	snprintf(a, sizeof(a), "%s/one.img", unit_tmpdir());
	snprintf(a2, sizeof(a2), "%s/./one.img", unit_tmpdir()); /* the same file, spelled apart */
	snprintf(b, sizeof(b), "%s/two.img", unit_tmpdir());
	struct vmm_plan_service s[3];
	plan_disk(&s[0], "r1", a, 1);
	plan_disk(&s[1], "r2", a2, 1);
	plan_disk(&s[2], "w", b, 0);
	ck_assert_int_eq(vmm_plan_disk_check(s, 3, err, sizeof(err)), 0);
	plan_disk(&s[2], "w", a2, 0);
	ck_assert_int_eq(vmm_plan_disk_check(s, 3, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "both use the disk"));
	ck_assert_ptr_nonnull(strstr(err, "w"));
	/* Once the file exists, the same inode is the same image, whatever the path. */
	FILE *f = fopen(a, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	plan_disk(&s[0], "w1", a, 0);
	plan_disk(&s[1], "x", b, 0);
	ck_assert_int_eq(vmm_plan_disk_check(s, 3, err, sizeof(err)), -1);
	unlink(a);
}
END_TEST

/* ---- The ring's restrictions ---- */

/* Submits one SQE and returns its CQE's result. */
static int ring_one(struct io_uring *ring)
{
	ck_assert_int_eq(io_uring_submit(ring), 1);
	struct io_uring_cqe *cqe;
	ck_assert_int_eq(io_uring_wait_cqe(ring, &cqe), 0);
	int res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return res;
}

START_TEST(test_ring_restricted)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/ring.img", unit_tmpdir());
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, "restricted", 10, 0), 10);
	ck_assert_int_eq(flock(fd, LOCK_EX | LOCK_NB), 0); /* as an image's writer holds it */
	int efd = eventfd(0, EFD_CLOEXEC);
	struct io_uring ring;
	ck_assert_int_eq(vdisk_ring_setup(&ring, 8, fd, efd), 0);
	char buf[16] = "";
	/* What the device submits: the image by its index. */
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
	io_uring_prep_read(sqe, VDISK_RING_FILE, buf, 10, 0);
	sqe->flags |= IOSQE_FIXED_FILE;
	ck_assert_int_eq(ring_one(&ring), 10);
	ck_assert_int_eq(memcmp(buf, "restricted", 10), 0);
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_fsync(sqe, VDISK_RING_FILE, IORING_FSYNC_DATASYNC);
	sqe->flags |= IOSQE_FIXED_FILE | IOSQE_IO_DRAIN;
	ck_assert_int_eq(ring_one(&ring), 0);
	/* An operation outside the list. */
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_openat(sqe, AT_FDCWD, path, O_RDONLY, 0);
	ck_assert_int_eq(ring_one(&ring), -EACCES);
	/* A read of a file by its number, not the registered one. */
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_read(sqe, fd, buf, 10, 0);
	ck_assert_int_eq(ring_one(&ring), -EACCES);
	/* A flag outside the list. */
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_read(sqe, VDISK_RING_FILE, buf, 10, 0);
	sqe->flags |= IOSQE_FIXED_FILE | IOSQE_ASYNC;
	ck_assert_int_eq(ring_one(&ring), -EACCES);
	/* No registration once enabled: no other file, no buffers. */
	ck_assert_int_eq(io_uring_register_files(&ring, &fd, 1), -EACCES);
	struct iovec iov = {buf, sizeof(buf)};
	ck_assert_int_eq(io_uring_register_buffers(&ring, &iov, 1), -EACCES);
	vdisk_ring_close(&ring);
	/* The close let go of the image at once: its lock is free. */
	close(fd);
	fd = open(path, O_RDWR);
	ck_assert_int_eq(flock(fd, LOCK_EX | LOCK_NB), 0);
	close(fd);
	close(efd);
	unlink(path);
}
END_TEST

Suite *vdisk_dev_suite(void)
{
	Suite *s = suite_create("vdisk_dev");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_req_rules);
	tcase_add_test(tc, test_dev_write_read_flush);
	tcase_add_test(tc, test_dev_bad_requests_and_halt);
	tcase_add_test(tc, test_dev_bad_counters);
	tcase_add_test(tc, test_dev_backpressure);
	tcase_add_test(tc, test_dev_kick_bounded_against_a_running_guest);
	tcase_add_test(tc, test_dev_readonly);
	tcase_add_test(tc, test_plan_one_writer);
	tcase_add_test(tc, test_ring_restricted);
	suite_add_tcase(s, tc);
	return s;
}
