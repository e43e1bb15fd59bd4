/* A disk's io_uring, restricted before it is enabled: io_uring operations are not system
 * calls, so no seccomp filter sees them; the ring's own restrictions are their allowlist. */
#include "vdisk_ring.h"

#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* liburing 2.3 (Debian 12) declares io_uring_register_restrictions and io_uring_enable_rings
 * but does not export them: the system call itself. 0, or a negative errno. */
static int ring_register(struct io_uring *ring, unsigned op, const void *arg, unsigned n)
{
	return syscall(__NR_io_uring_register, ring->ring_fd, op, arg, n) < 0 ? -errno : 0;
}

int vdisk_ring_setup(struct io_uring *ring, unsigned entries, int fd, int cq_fd)
{
	struct io_uring_params params;
	memset(&params, 0, sizeof(params));
	params.flags = IORING_SETUP_R_DISABLED;
	int rc = io_uring_queue_init_params(entries, ring, &params);
	if (rc < 0)
		return rc;
	/* Registrations first: once enabled, the restrictions allow none (no other file, no
	 * buffers, no personality). */
	struct io_uring_restriction res[6];
	memset(res, 0, sizeof(res));
	res[0].opcode = IORING_RESTRICTION_SQE_OP;
	res[0].sqe_op = IORING_OP_READ;
	res[1].opcode = IORING_RESTRICTION_SQE_OP;
	res[1].sqe_op = IORING_OP_WRITE;
	res[2].opcode = IORING_RESTRICTION_SQE_OP;
	res[2].sqe_op = IORING_OP_FSYNC;
	res[3].opcode = IORING_RESTRICTION_SQE_FLAGS_REQUIRED;
	res[3].sqe_flags = IOSQE_FIXED_FILE;
	res[4].opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED;
	res[4].sqe_flags = IOSQE_FIXED_FILE | IOSQE_IO_DRAIN;
	/* vdisk_ring_close lets go of the image at once: a ring's teardown is asynchronous,
	 * and the image's lock (one writer) would outlive the close. */
	res[5].opcode = IORING_RESTRICTION_REGISTER_OP;
	res[5].register_op = IORING_UNREGISTER_FILES;
	if ((rc = io_uring_register_files(ring, &fd, 1)) < 0 ||
	    (rc = io_uring_register_eventfd(ring, cq_fd)) < 0 ||
	    (rc = ring_register(ring, IORING_REGISTER_RESTRICTIONS, res, 6)) < 0 ||
	    (rc = ring_register(ring, IORING_REGISTER_ENABLE_RINGS, NULL, 0)) < 0) {
		io_uring_queue_exit(ring);
		return rc;
	}
	return 0;
}

void vdisk_ring_close(struct io_uring *ring)
{
	io_uring_unregister_files(ring);
	io_uring_queue_exit(ring);
}
