/* The `user` uplink's insides, run in the NAT process (nat_process.c): one libslirp NAT for the
 * whole virtual LAN (10.0.0.0/16, the gateway at 10.0.0.1, DNS at 10.0.0.3), and the host port
 * forwards into services. No root needed. */
#ifndef VNET_SLIRP_H
#define VNET_SLIRP_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "vnet_config.h"

struct vnet_slirp;

/* Frames slirp sends toward the LAN are queued (bounded) until vnet_slirp_take_frame. */
struct vnet_slirp *vnet_slirp_create(char *err, size_t errlen);
void vnet_slirp_destroy(struct vnet_slirp *s);

/* Publishes f->host_addr:host_port on the host, forwarded to guest_ip:guest_port. Returns 0 or
 * -1 with err set (the port is taken, or the address is not local). */
int vnet_slirp_add_forward(struct vnet_slirp *s, const struct vnet_forward *f, uint32_t guest_ip,
			   char *err, size_t errlen);

/* Stops publishing a forward that vnet_slirp_add_forward published. */
void vnet_slirp_remove_forward(struct vnet_slirp *s, const struct vnet_forward *f);

/* A frame from the LAN to the NAT (in the NAT process; vnet_sanitize.c has passed it in the
 * supervisor). Returns 0, or -1 for a length outside the LAN's frame sizes. */
int vnet_slirp_input(void *ctx, const uint8_t *frame, size_t len);

/* Oldest queued frame toward the LAN: copies it into buf and returns its length, or 0. */
size_t vnet_slirp_take_frame(struct vnet_slirp *s, uint8_t *buf, size_t cap);

/* The queue without copies: how many frames wait, the i-th oldest (NULL past the end), and
 * dropping the n oldest once sent. */
unsigned vnet_slirp_queued(const struct vnet_slirp *s);
const uint8_t *vnet_slirp_peek(const struct vnet_slirp *s, unsigned i, size_t *len);
void vnet_slirp_pop(struct vnet_slirp *s, unsigned n);

/* Poll integration: adds slirp's fds to fds[*n..max) and lowers *timeout_ms to its next
 * timer; then, after poll, handles what became ready and the timers that are due (fds: the
 * array polled, with slirp's entries where fill put them; it may have been moved meanwhile).
 * Returns -1 if some fds did not fit (they are not polled this turn: give it more room), else 0. */
int vnet_slirp_fill(struct vnet_slirp *s, struct pollfd *fds, unsigned *n, unsigned max,
		    int *timeout_ms);
void vnet_slirp_dispatch(struct vnet_slirp *s, const struct pollfd *fds, int poll_failed);

#endif
