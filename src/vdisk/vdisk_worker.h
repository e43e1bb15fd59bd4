/* A cell's disk worker: one thread that serves the virtual disks of every service in the
 * cell. It waits on their kick and completion eventfds, so that no vcpu thread ever waits for
 * the disk and one service's slow disk never holds up another's. */
#ifndef VDISK_WORKER_H
#define VDISK_WORKER_H

#include <pthread.h>

#include "vdisk_dev.h"

struct vdisk_port;

struct vdisk_worker {
	pthread_t thread;
	int started;
	int epoll_fd;
	int ctl_fd; /* eventfd: a detach or the stop is asked for */
	pthread_mutex_t lock;
	pthread_cond_t detached;
	struct vdisk_port *ports; /* attached devices */
	int stopping;
};

/* Starts the thread. Returns 0, or -1 with err. */
int vdisk_worker_start(struct vdisk_worker *w, char *err, size_t errlen);

/* Stops the thread; every device must have been detached. */
void vdisk_worker_stop(struct vdisk_worker *w);

/* Hands an open device to the worker; from then on only the worker touches it. Returns its
 * port, or NULL with err. Any thread. */
struct vdisk_port *vdisk_worker_attach(struct vdisk_worker *w, struct vdisk_dev *dev, char *err,
				       size_t errlen);

/* Takes the device back: no request is taken after this begins, and it returns once every
 * request in flight has finished. The port is freed. Any thread but the worker. */
void vdisk_worker_detach(struct vdisk_port *port);

#endif
