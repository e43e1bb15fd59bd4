/* A service's disk image on the host: checked, created sparse, locked. */
#include "vdisk_file.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Creates a missing writable disk; 0 with *created set, or -1 (EEXIST: lost a race, reopen). */
static int create(struct vdisk_file *d, uint64_t size, int *created, char *err, size_t errlen)
{
	*created = 0;
	if (d->readonly || size == 0) {
		snprintf(err, errlen, "disk %s does not exist%s", d->path,
			 d->readonly ? " (a read-only disk must exist)"
				     : " (give a size to create it)");
		return -1;
	}
	int fd = open(d->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno != EEXIST)
			snprintf(err, errlen, "cannot create disk %s: %s", d->path,
				 strerror(errno));
		return -1;
	}
	d->fd = fd;
	*created = 1;
	return 0;
}

/* Makes a new image and its name durable, so that a FLUSH of its data never outlives the
 * file itself across a host crash. */
static int sync_new_file(const struct vdisk_file *d)
{
	if (fsync(d->fd) != 0)
		return -1;
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", d->path);
	int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	int rc = fsync(dfd);
	close(dfd);
	return rc;
}

int vdisk_file_open(struct vdisk_file *d, const char *path, uint64_t size, int flags,
		    const struct vdisk_file *held, char *err, size_t errlen)
{
	int readonly = flags & VDISK_OPEN_READONLY;
	memset(d, 0, sizeof(*d));
	d->fd = -1;
	d->readonly = readonly;
	if ((size_t)snprintf(d->path, sizeof(d->path), "%s", path) >= sizeof(d->path)) {
		snprintf(err, errlen, "disk path too long: %.80s...", path);
		return -1;
	}
	if (size % VDISK_BLOCK != 0) {
		snprintf(err, errlen, "disk %s: size %" PRIu64 " is not a multiple of 4K", path,
			 size);
		return -1;
	}
	int created = 0;
	d->fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK);
	if (d->fd < 0 && errno == ENOENT && create(d, size, &created, err, errlen) != 0 &&
	    errno != EEXIST)
		return -1;
	if (d->fd < 0 && !created)
		d->fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK);
	if (d->fd < 0) {
		snprintf(err, errlen, "cannot open disk %s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(d->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "disk %s is not a regular file", path);
		goto fail;
	}
	/* O_NONBLOCK only kept the open from hanging on a FIFO; io_uring would answer EAGAIN. */
	if (fcntl(d->fd, F_SETFL, 0) != 0) {
		snprintf(err, errlen, "disk %s: fcntl: %s", path, strerror(errno));
		goto fail;
	}
	d->dev = st.st_dev;
	d->ino = st.st_ino;
	if (flags & VDISK_OPEN_HELD) {
		if (!held || held->dev != d->dev || held->ino != d->ino) {
			snprintf(err, errlen, "disk %s was replaced while its service slept", path);
			goto fail;
		}
	} else if (flock(d->fd, (readonly ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
		snprintf(err, errlen, "disk %s is in use: %s", path,
			 readonly ? "another service or run has it open for writing"
				  : "a writable disk belongs to one service, and another service "
				    "or run has it open");
		goto fail;
	}
	if (created && (ftruncate(d->fd, (off_t)size) != 0 || sync_new_file(d) != 0)) {
		snprintf(err, errlen, "cannot size disk %s: %s", path, strerror(errno));
		goto fail;
	}
	uint64_t actual = created ? size : (uint64_t)st.st_size;
	if (actual == 0 || actual % VDISK_BLOCK != 0) {
		snprintf(err, errlen, "disk %s is %" PRIu64 " bytes: not a non-zero multiple of 4K",
			 path, actual);
		goto fail;
	}
	if (size && actual != size) {
		snprintf(err, errlen,
			 "disk %s is %" PRIu64 " bytes, but its size is given as %" PRIu64, path,
			 actual, size);
		goto fail;
	}
	d->size = actual;
	d->blocks = actual / VDISK_BLOCK;
	return 0;
fail:
	close(d->fd);
	d->fd = -1;
	if (created)
		unlink(path); /* ours, and never used */
	return -1;
}

void vdisk_file_close(struct vdisk_file *d)
{
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
}
