/* One service's virtual disk device over io_uring. */
#include "vdisk_dev.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vdisk_ring.h"

#define IO_ERRORS_LOGGED 8 /* per device; after that they are only counted */

int vdisk_dev_open(struct vdisk_dev *dev, const char *path, uint64_t size, int flags,
		   struct dn_disk *shared, uint8_t *ram, uint64_t ram_size, int kick_fd,
		   const struct vdisk_dev_hooks *hooks, char *err, size_t errlen)
{
	int readonly = flags & VDISK_OPEN_READONLY;
	struct vdisk_file held; /* for VDISK_OPEN_HELD: the file it had */
	if (flags & VDISK_OPEN_HELD)
		held = dev->file;
	memset(dev, 0, sizeof(*dev));
	dev->clock = ratelimit_now; /* unlimited until vdisk_dev_set_limit */
	dev->cq_fd = -1;
	dev->kick_fd = kick_fd;
	dev->shared = shared;
	dev->ram = ram;
	dev->ram_size = ram_size;
	dev->hooks = *hooks;
	if (vdisk_file_open(&dev->file, path, size, flags, flags & VDISK_OPEN_HELD ? &held : NULL,
			    err, errlen) != 0)
		return -1;
	dev->cq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (dev->cq_fd < 0) {
		snprintf(err, errlen, "disk %s: cannot make its completion eventfd: %s", path,
			 strerror(errno));
		vdisk_file_close(&dev->file);
		return -1;
	}
	int rc = vdisk_ring_setup(&dev->ring, DN_DISK_RING_SIZE, dev->file.fd, dev->cq_fd);
	if (rc < 0) {
		snprintf(err, errlen, "disk %s: cannot set up a restricted io_uring: %s%s", path,
			 strerror(-rc),
			 rc == -ENOSYS || rc == -EPERM ? " (is io_uring disabled on this host?)"
			 : rc == -EINVAL	       ? " (Linux 5.10 or later is needed)"
						       : "");
		close(dev->cq_fd);
		dev->cq_fd = -1;
		vdisk_file_close(&dev->file);
		return -1;
	}
	dev->ring_ready = 1;
	shared->blocks = dev->file.blocks;
	shared->flags = readonly ? DN_DISK_F_READONLY : 0;
	dev->sq_used = __atomic_load_n(&shared->sq_avail, __ATOMIC_ACQUIRE);
	shared->sq_used = dev->sq_used;
	dev->cq_avail = shared->cq_avail = shared->cq_used = 0;
	return 0;
}

int vdisk_dev_quiet(const struct vdisk_dev *dev, struct vdisk_dev_saved *saved)
{
	if (dev->inflight || dev->backlog_len ||
	    __atomic_load_n(&dev->shared->sq_avail, __ATOMIC_ACQUIRE) != dev->sq_used)
		return 0;
	saved->cq_avail = dev->cq_avail;
	saved->cq_used = __atomic_load_n(&dev->shared->cq_used, __ATOMIC_ACQUIRE);
	saved->errors_logged = dev->io_errors_logged;
	saved->stats = dev->stats;
	saved->file_dev = dev->file.dev;
	saved->file_ino = dev->file.ino;
	return 1;
}

int vdisk_dev_reopen(struct vdisk_dev *dev, const char *path, int flags, struct dn_disk *shared,
		     uint8_t *ram, uint64_t ram_size, int kick_fd,
		     const struct vdisk_dev_hooks *hooks, const struct vdisk_dev_saved *saved,
		     char *err, size_t errlen)
{
	memset(dev, 0, sizeof(*dev));
	dev->clock = ratelimit_now; /* unlimited until vdisk_dev_set_limit */
	dev->file.dev = saved->file_dev;
	dev->file.ino = saved->file_ino;
	if (vdisk_dev_open(dev, path, 0, flags | VDISK_OPEN_HELD, shared, ram, ram_size, kick_fd,
			   hooks, err, errlen) != 0)
		return -1;
	/* Our own copy, not the guest's view of it: the guest may have written the page. */
	dev->cq_avail = saved->cq_avail;
	__atomic_store_n(&dev->shared->cq_avail, dev->cq_avail, __ATOMIC_RELEASE);
	__atomic_store_n(&dev->shared->cq_used, saved->cq_used, __ATOMIC_RELEASE);
	dev->io_errors_logged = (unsigned)saved->errors_logged;
	dev->stats = saved->stats;
	__atomic_store_n(&dev->shared->errors, dev->stats.errors, __ATOMIC_RELAXED);
	return 0;
}

/* Counts a guest error (a malformed request or a counter out of range); enough of them stop
 * the service (once). */
static void guest_error(struct vdisk_dev *dev, const char *what)
{
	dev->stats.errors++;
	__atomic_store_n(&dev->shared->errors, dev->stats.errors, __ATOMIC_RELAXED);
	if (dev->stats.errors < DN_DISK_ERRORS_MAX || dev->halted)
		return;
	dev->halted = 1;
	char reason[256];
	snprintf(reason, sizeof(reason), "virtual disk: %u ring errors, the last: %s",
		 DN_DISK_ERRORS_MAX, what);
	dev->hooks.halt(dev->hooks.ctx, reason);
}

/* The guest's completion counter, read once; -1 (and an error) if it is not within a ring of
 * what was published. */
static int64_t guest_cq_used(struct vdisk_dev *dev)
{
	uint32_t used = __atomic_load_n(&dev->shared->cq_used, __ATOMIC_ACQUIRE);
	if (dev->cq_avail - used > DN_DISK_RING_SIZE) {
		guest_error(dev, "completion counter cq_used out of range");
		return -1;
	}
	return used;
}

static void count_completion(struct vdisk_dev *dev, const struct vdisk_io *io, int status)
{
	struct vdisk_dev_stats *st = &dev->stats;
	if (status != DN_DISK_OK) {
		st->failed++;
		__atomic_store_n(&dev->shared->failed, st->failed, __ATOMIC_RELAXED);
		return;
	}
	switch (io->op) {
	case DN_DISK_READ:
		st->reads++;
		st->bytes_read += io->len;
		__atomic_store_n(&dev->shared->reads, st->reads, __ATOMIC_RELAXED);
		break;
	case DN_DISK_WRITE:
		st->writes++;
		st->bytes_written += io->len;
		__atomic_store_n(&dev->shared->writes, st->writes, __ATOMIC_RELAXED);
		break;
	default:
		st->flushes++;
		__atomic_store_n(&dev->shared->flushes, st->flushes, __ATOMIC_RELAXED);
		break;
	}
}

/* Publishes what the completion ring has room for; returns how many were published. */
static unsigned publish_backlog(struct vdisk_dev *dev)
{
	if (!dev->backlog_len)
		return 0;
	int64_t used = guest_cq_used(dev);
	if (used < 0)
		return 0;
	unsigned room = DN_DISK_RING_SIZE - (dev->cq_avail - (uint32_t)used);
	unsigned n = dev->backlog_len < room ? dev->backlog_len : room;
	for (unsigned i = 0; i < n; i++)
		dev->shared->cq[(dev->cq_avail + i) % DN_DISK_RING_SIZE] = dev->backlog[i];
	dev->cq_avail += n;
	__atomic_store_n(&dev->shared->cq_avail, dev->cq_avail, __ATOMIC_RELEASE);
	memmove(dev->backlog, dev->backlog + n, (dev->backlog_len - n) * sizeof(dev->backlog[0]));
	dev->backlog_len -= n;
	return n;
}

/* Queues a completion for publishing. The device keeps at most a ring of requests between
 * taking and publishing, so the backlog cannot overflow. */
static void complete(struct vdisk_dev *dev, const struct vdisk_io *io, int status)
{
	count_completion(dev, io, status);
	dev->backlog[dev->backlog_len++] = (struct dn_disk_cpl){.id = io->id, .status = status};
}

static void log_io_error(struct vdisk_dev *dev, const struct vdisk_io *io, const char *what)
{
	dev->stats.io_errors++;
	if (dev->io_errors_logged >= IO_ERRORS_LOGGED)
		return;
	dev->io_errors_logged++;
	char opbuf[16];
	fprintf(stderr,
		"denali-run: %s: disk %s: %s of %u bytes at offset %" PRIu64 " failed: %s%s\n",
		dev->hooks.name, dev->file.path, vdisk_op_name(io->op, opbuf, sizeof(opbuf)),
		io->len, io->offset, what,
		dev->io_errors_logged == IO_ERRORS_LOGGED
			? " (further disk errors are only counted)"
			: "");
}

/* Hands the kernel every prepared SQE. A transient failure (EAGAIN, ENOMEM) leaves them in the
 * ring: the next pass, or the worker's retry, submits them again. */
static void submit(struct vdisk_dev *dev)
{
	if (!io_uring_sq_ready(&dev->ring))
		return;
	dev->stats.batches++;
	int rc = io_uring_submit(&dev->ring);
	if (rc < 0 && rc != -EAGAIN && rc != -EBUSY && rc != -ENOMEM && rc != -EINTR)
		fprintf(stderr, "denali-run: %s: disk %s: io_uring_submit: %s\n", dev->hooks.name,
			dev->file.path, strerror(-rc));
}

int vdisk_dev_unsubmitted(struct vdisk_dev *dev)
{
	submit(dev);
	return io_uring_sq_ready(&dev->ring) > 0;
}

static int free_slot(const struct vdisk_dev *dev)
{
	for (unsigned i = 0; i < DN_DISK_RING_SIZE; i++)
		if (!dev->op_busy[i])
			return (int)i;
	return -1;
}

/* Starts io on the io_uring; 0, or -1 if no SQE could be had (the request fails). */
static int start_io(struct vdisk_dev *dev, const struct vdisk_io *io)
{
	/* The slot first: an SQE taken and left unfilled would still be submitted. */
	int slot = free_slot(dev);
	if (slot < 0)
		return -1;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&dev->ring);
	if (!sqe) {
		submit(dev);
		sqe = io_uring_get_sqe(&dev->ring);
	}
	if (!sqe)
		return -1;
	void *host = dev->ram + io->gpa; /* checked against ram_size by vdisk_req_check */
	/* The image by its registered index: the ring's restrictions require it. */
	switch (io->op) {
	case DN_DISK_READ:
		io_uring_prep_read(sqe, VDISK_RING_FILE, host, io->len, io->offset);
		break;
	case DN_DISK_WRITE:
		io_uring_prep_write(sqe, VDISK_RING_FILE, host, io->len, io->offset);
		break;
	default:
		io_uring_prep_fsync(sqe, VDISK_RING_FILE, IORING_FSYNC_DATASYNC);
		/* Starts after every request before it completed; later ones wait for it. */
		sqe->flags |= IOSQE_IO_DRAIN;
		break;
	}
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data64(sqe, (uint64_t)slot);
	dev->ops[slot] = *io;
	dev->op_busy[slot] = 1;
	dev->inflight++;
	return 0;
}

void vdisk_dev_set_limit(struct vdisk_dev *dev, const struct ratelimit_config *c)
{
	static const struct ratelimit_config none;
	if (!dev->clock)
		dev->clock = ratelimit_now;
	ratelimit_init(&dev->limit, c ? c : &none, dev->clock());
	dev->ready_at = 0;
}

void vdisk_dev_kick(struct vdisk_dev *dev)
{
	unsigned published = publish_backlog(dev);
	uint32_t avail = __atomic_load_n(&dev->shared->sq_avail, __ATOMIC_ACQUIRE);
	if (avail - dev->sq_used > DN_DISK_RING_SIZE) {
		guest_error(dev, "request counter sq_avail out of range");
		avail = dev->sq_used;
	}
	int64_t cq_used = guest_cq_used(dev);
	dev->ready_at = 0;
	while (!dev->halted && cq_used >= 0 && dev->sq_used != avail &&
	       dev->sq_used - (uint32_t)cq_used < DN_DISK_RING_SIZE &&
	       dev->inflight + dev->backlog_len < DN_DISK_RING_SIZE) {
		/* One copy of the guest's request; the barrier keeps the compiler from reading the
		 * shared slot again where the copy is used. */
		struct dn_disk_req req;
		memcpy(&req, &dev->shared->sq[dev->sq_used % DN_DISK_RING_SIZE], sizeof(req));
		__asm__ volatile("" ::: "memory");
		struct vdisk_io io;
		const char *why;
		int status = vdisk_req_check(&req, dev->file.blocks, dev->file.readonly,
					     dev->ram_size, &io, &why);
		uint64_t at;
		/* A request that will fail costs nothing: it does no I/O. One that has no tokens
		 * is left in the ring, to be read afresh when they are back. */
		if (status == DN_DISK_OK && dev->limit.limited &&
		    !ratelimit_take(&dev->limit, io.op == DN_DISK_FLUSH ? 0 : io.len, dev->clock(),
				    &at)) {
			dev->ready_at = at;
			break;
		}
		dev->sq_used++;
		if (status != DN_DISK_OK) {
			/* A malformed request is ring corruption; a well-formed one that asks for
			 * what it may not have (range, buffer, read-only) only fails. */
			if (status == DN_DISK_E_INVAL) {
				char msg[160], opbuf[16];
				snprintf(msg, sizeof(msg), "request %u (%s): %s", dev->sq_used - 1,
					 vdisk_op_name(req.op, opbuf, sizeof(opbuf)), why);
				guest_error(dev, msg);
			}
			complete(dev, &io, status);
		} else if (io.op == DN_DISK_FLUSH && dev->file.readonly) {
			complete(dev, &io, DN_DISK_OK); /* nothing was ever written */
		} else if (start_io(dev, &io) != 0) {
			log_io_error(dev, &io, "no io_uring entry free");
			complete(dev, &io, DN_DISK_E_IO);
		}
	}
	dev->stats.throttled = dev->limit.throttled;
	dev->stats.throttled_ns = dev->limit.throttled_ns;
	__atomic_store_n(&dev->shared->sq_used, dev->sq_used, __ATOMIC_RELEASE);
	submit(dev); /* the batch, and anything a failed submit left behind */
	published += publish_backlog(dev);
	if (published)
		dev->hooks.raise(dev->hooks.ctx);
}

/* The status of a finished io_uring request; logs host failures. */
static int io_status(struct vdisk_dev *dev, const struct vdisk_io *io, int res)
{
	if (res < 0) {
		log_io_error(dev, io, strerror(-res));
		return DN_DISK_E_IO;
	}
	if ((uint32_t)res != io->len) {
		/* Only an error cuts a regular file's read or write short: a full filesystem, or
		 * an image someone truncated. */
		char what[96];
		snprintf(what, sizeof(what),
			 "only %d bytes moved (is the filesystem full, or the image truncated?)",
			 res);
		log_io_error(dev, io, what);
		return DN_DISK_E_IO;
	}
	return DN_DISK_OK;
}

void vdisk_dev_reap(struct vdisk_dev *dev)
{
	uint64_t count;
	if (read(dev->cq_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		perror("denali-run: disk eventfd");
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0;
	io_uring_for_each_cqe(&dev->ring, head, cqe)
	{
		uint64_t slot = io_uring_cqe_get_data64(cqe);
		seen++;
		if (slot >= DN_DISK_RING_SIZE || !dev->op_busy[slot])
			continue; /* not ours: cannot happen */
		const struct vdisk_io *io = &dev->ops[slot];
		complete(dev, io, io_status(dev, io, cqe->res));
		dev->op_busy[slot] = 0;
		dev->inflight--;
	}
	io_uring_cq_advance(&dev->ring, seen);
	/* Room was made: take what waited for it, and publish. */
	vdisk_dev_kick(dev);
}

void vdisk_dev_close(struct vdisk_dev *dev)
{
	if (dev->ring_ready) {
		/* In-flight requests write guest RAM: wait for them before it goes away. */
		while (dev->inflight > 0) {
			struct io_uring_cqe *cqe;
			if (io_uring_submit_and_wait(&dev->ring, 1) < 0 ||
			    io_uring_peek_cqe(&dev->ring, &cqe) != 0)
				break;
			uint64_t slot = io_uring_cqe_get_data64(cqe);
			if (slot < DN_DISK_RING_SIZE && dev->op_busy[slot]) {
				dev->op_busy[slot] = 0;
				dev->inflight--;
			}
			io_uring_cqe_seen(&dev->ring, cqe);
		}
		vdisk_ring_close(&dev->ring);
		dev->ring_ready = 0;
	}
	if (dev->cq_fd >= 0)
		close(dev->cq_fd);
	dev->cq_fd = -1;
	vdisk_file_close(&dev->file);
}
