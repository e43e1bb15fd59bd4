/* A service's disk image on the host: a regular file of whole 4 KiB blocks, created sparse
 * when missing, locked so that a writable disk has one user and a read-only one has only
 * readers. The first piece of the virtual disk (the request ring and io_uring come next). */
#ifndef VDISK_FILE_H
#define VDISK_FILE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VDISK_BLOCK 4096u

struct vdisk_file {
	int fd;
	int readonly;
	dev_t dev; /* which file it is, to find the same one when it is opened again */
	ino_t ino;
	uint64_t size;	 /* bytes, a multiple of VDISK_BLOCK */
	uint64_t blocks; /* size / VDISK_BLOCK */
	char path[PATH_MAX];
};

/* Opens the disk at path. A missing file is created sparse with size bytes (writable disks
 * only; size 0 means "must exist"). An existing file must be a regular file whose size is a
 * non-zero multiple of VDISK_BLOCK and, when size is not 0, equal to it. A writable disk is
 * locked exclusively, a read-only one shared: a second writer, or a writer and readers, are
 * refused whichever comes first, across processes and runs. Returns 0, or -1 with err. */
/* flags for vdisk_file_open and vdisk_dev_open */
#define VDISK_OPEN_READONLY 1
#define VDISK_OPEN_HELD                                                                            \
	2 /* open again a file whose lock the run holds (another fd of the first                   \
	   * open): no lock is taken, and it must still be the same file */

int vdisk_file_open(struct vdisk_file *d, const char *path, uint64_t size, int flags,
		    const struct vdisk_file *held, char *err, size_t errlen);

/* Closes the file (and so drops its lock). */
void vdisk_file_close(struct vdisk_file *d);

#endif
