/* One service's virtual disk device: the guest's request and completion rings in its I/O
 * window, its disk image, and an io_uring that reads and writes guest RAM in place. Every call
 * but open and close comes from one thread, the cell's disk worker (vdisk_worker.h). */
#ifndef VDISK_DEV_H
#define VDISK_DEV_H

#include <liburing.h>
#include <stdint.h>

#include "denali/abi.h"
#include "token_bucket.h"
#include "vdisk_file.h"
#include "vdisk_req.h"

/* How the device reaches its service, from the worker thread. */
struct vdisk_dev_hooks {
	void *ctx;
	void (*raise)(void *ctx);		     /* raise DN_EV_DISK */
	void (*halt)(void *ctx, const char *reason); /* stop the service: its ring is hostile */
	const char *name;			     /* the service, for log lines */
};

/* Counters, also read by the cell when the service ends. */
struct vdisk_dev_stats {
	uint64_t reads, writes, flushes; /* completed with DN_DISK_OK */
	uint64_t bytes_read, bytes_written;
	uint64_t failed;    /* requests completed with an error status */
	uint64_t io_errors; /* of which the host's I/O failed (DN_DISK_E_IO) */
	uint64_t errors;    /* guest errors: malformed requests (DN_DISK_E_INVAL) and counters */
	uint64_t batches;   /* io_uring submissions */
	uint64_t throttled, throttled_ns; /* requests its rate limit held back, time they waited */
};

struct vdisk_dev {
	struct vdisk_file file;
	struct io_uring ring;
	int ring_ready;
	int kick_fd;		/* the guest's kick (KVM_IOEVENTFD on DN_DISK_KICK_PORT) */
	int cq_fd;		/* io_uring signals completions here */
	struct dn_disk *shared; /* in the guest's I/O window: every guest field is read once */
	uint8_t *ram;
	uint64_t ram_size;
	struct vdisk_dev_hooks hooks;
	uint32_t sq_used;			/* requests taken */
	uint32_t cq_avail;			/* completions published */
	unsigned inflight;			/* requests in the io_uring */
	struct vdisk_io ops[DN_DISK_RING_SIZE]; /* in flight, by slot (the io_uring user data) */
	int op_busy[DN_DISK_RING_SIZE];
	struct dn_disk_cpl backlog[DN_DISK_RING_SIZE]; /* finished, waiting for room in cq */
	unsigned backlog_len;
	int halted; /* too many guest errors: take no more requests */
	unsigned io_errors_logged;
	struct vdisk_dev_stats stats;
	/* Its rate limit: a request it has no tokens for stays in the guest's ring (not taken,
	 * never failed) until ready_at, when the worker kicks the device again. */
	struct ratelimit limit;
	uint64_t ready_at;	 /* 0: no request waits for the limit */
	uint64_t (*clock)(void); /* monotonic ns: ratelimit_now, or a test's */
};

/* Opens the disk image (vdisk_file_open's rules) and the io_uring, and fills the shared
 * struct's size and flags. shared lies in guest RAM (ram, ram_size), in pages the caller has
 * backed. kick_fd stays the caller's. Returns 0, or -1 with err. */
int vdisk_dev_open(struct vdisk_dev *dev, const char *path, uint64_t size, int flags,
		   struct dn_disk *shared, uint8_t *ram, uint64_t ram_size, int kick_fd,
		   const struct vdisk_dev_hooks *hooks, char *err, size_t errlen);

/* What a device must carry over when it is closed while its service sleeps (swapped out) and
 * opened again at wake: the guest's ring counters continue where they were. */
struct vdisk_dev_saved {
	uint32_t cq_avail;
	uint32_t cq_used; /* the guest's, as it was: open clears the shared counters */
	uint64_t errors_logged;
	struct vdisk_dev_stats stats;
	dev_t file_dev; /* its image, to open the same one again */
	ino_t file_ino;
};

/* 1 if the device is quiet (nothing in flight, waiting to be published or to be taken) and
 * fills saved; 0 if the service has disk work going on. From the worker or after detach. */
int vdisk_dev_quiet(const struct vdisk_dev *dev, struct vdisk_dev_saved *saved);

/* Opens again (VDISK_OPEN_HELD: the run holds the image's lock) a device that was closed quiet,
 * and continues from saved. Arguments as vdisk_dev_open's. */
int vdisk_dev_reopen(struct vdisk_dev *dev, const char *path, int flags, struct dn_disk *shared,
		     uint8_t *ram, uint64_t ram_size, int kick_fd,
		     const struct vdisk_dev_hooks *hooks, const struct vdisk_dev_saved *saved,
		     char *err, size_t errlen);

/* Gives the device its rate limit (NULL: none), full buckets from now. After open or reopen:
 * a service woken from a sleep starts with full buckets. */
void vdisk_dev_set_limit(struct vdisk_dev *dev, const struct ratelimit_config *c);

/* Takes the requests the guest published and submits them in one batch, as far as its rate
 * limit lets (each request one operation, and its bytes; a flush none). */
void vdisk_dev_kick(struct vdisk_dev *dev);

/* Publishes every completion io_uring has (one DN_EV_DISK for the lot). */
void vdisk_dev_reap(struct vdisk_dev *dev);

/* Submits what a failed io_uring_submit left prepared; 1 if some is still waiting (the
 * worker then tries again soon). */
int vdisk_dev_unsubmitted(struct vdisk_dev *dev);

/* Waits for the requests in flight (they write guest RAM) and closes everything. */
void vdisk_dev_close(struct vdisk_dev *dev);

#endif
