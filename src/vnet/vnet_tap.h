/* The `tap:NAME` uplink: frames to and from a host TAP device (existing, or created; needs
 * CAP_NET_ADMIN). */
#ifndef VNET_TAP_H
#define VNET_TAP_H

#include <stddef.h>
#include <stdint.h>

/* Opens (creating if needed) TAP device name, non-blocking. Returns its fd or -1 with err. */
int vnet_tap_open(const char *name, char *err, size_t errlen);

/* The switch's uplink send: ctx is the fd cast with (void *)(intptr_t). Returns 0 or -1. */
int vnet_tap_send(void *ctx, const uint8_t *frame, size_t len);

#endif
