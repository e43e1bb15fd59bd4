/* A disk's io_uring, restricted to what the device submits: reads, writes and fdatasync of
 * one registered file (docs/security.md, "io_uring"). */
#ifndef VDISK_VDISK_RING_H
#define VDISK_VDISK_RING_H

#include <liburing.h>

/* The image's index among the ring's registered files: every SQE names it with
 * IOSQE_FIXED_FILE. */
#define VDISK_RING_FILE 0

/* Makes ring with entries, created disabled; registers fd as its only file and cq_fd as its
 * completion eventfd; restricts it to IORING_OP_READ, IORING_OP_WRITE and IORING_OP_FSYNC,
 * with IOSQE_FIXED_FILE required and only IOSQE_IO_DRAIN allowed besides, and to no
 * registration but IORING_UNREGISTER_FILES; then enables it. 0, or a negative errno (the ring
 * is freed). */
int vdisk_ring_setup(struct io_uring *ring, unsigned entries, int fd, int cq_fd);

/* Frees the ring, and its reference to the file before the close returns. */
void vdisk_ring_close(struct io_uring *ring);

#endif
