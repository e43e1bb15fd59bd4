/* What the network needs to know, in its own terms: the virtual LAN's address plan, the host
 * forwards, and one port's configuration. The service file's parser (src/vmm/config_net.c)
 * fills these; the network never sees a service file or a run plan. */
#ifndef VNET_CONFIG_H
#define VNET_CONFIG_H

#include <stdint.h>

#include "denali/abi.h"
#include "token_bucket.h"

/* The virtual LAN of the `user` uplink: one NAT for every service on it. */
#define VNET_LAN_NET 0x0a000000u     /* 10.0.0.0 */
#define VNET_LAN_PREFIX 16u	     /* 10.0.0.0/16 */
#define VNET_LAN_GATEWAY 0x0a000001u /* 10.0.0.1: the NAT, and the host as seen from guests */
#define VNET_LAN_DNS 0x0a000003u     /* 10.0.0.3: the NAT's DNS relay */
#define VNET_LAN_FIRST 0x0a000010u   /* 10.0.0.16: the first address given out by default */
#define VNET_LAN_LAST 0x0a00fefeu    /* 10.0.254.254: the last one */

#define VNET_FORWARDS_MAX 8
#define VNET_IFNAMSIZ 16 /* the kernel's IFNAMSIZ: a name and its NUL */

enum vnet_uplink_kind {
	VNET_UPLINK_USER = 0, /* libslirp NAT, no root */
	VNET_UPLINK_TAP,      /* a host TAP device (root) */
	VNET_UPLINK_NONE,     /* other services only */
};

/* "tcp:8080:80": host 127.0.0.1:8080 reaches the service's port 80. */
struct vnet_forward {
	uint8_t udp;
	uint32_t host_addr; /* IPv4 as a number; default 127.0.0.1 */
	uint16_t host_port;
	uint16_t guest_port;
};

/* One service's port on the switch: copied by vnet_add_port, except source. */
struct vnet_port_config {
	char name[DN_NAME_MAX]; /* the service's name, for messages */
	const char *source;	/* its service file, for messages: read during vnet_add_port only */
	uint8_t mac[6];		/* the only source MAC its frames may carry */
	uint32_t ip;		/* the only source IPv4 address they may carry */
	enum vnet_uplink_kind uplink;
	char tap[VNET_IFNAMSIZ]; /* interface name for VNET_UPLINK_TAP */
	unsigned nforward;
	struct vnet_forward forward[VNET_FORWARDS_MAX];
	struct ratelimit_config rx_limit, tx_limit;
};

#endif
