/* service.json "net": the virtual NIC of one service, and the fleet-wide checks that give every
 * NIC its defaults (MAC from the name, an address on the virtual LAN) and keep them unique. */
#ifndef VMM_CONFIG_NET_H
#define VMM_CONFIG_NET_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "ratelimit/token_bucket.h"

/* The virtual LAN of the `user` uplink: one NAT for every service on it. */
#define VMM_LAN_NET 0x0a000000u	    /* 10.0.0.0 */
#define VMM_LAN_PREFIX 16u	    /* 10.0.0.0/16 */
#define VMM_LAN_GATEWAY 0x0a000001u /* 10.0.0.1: the NAT, and the host as seen from guests */
#define VMM_LAN_DNS 0x0a000003u	    /* 10.0.0.3: the NAT's DNS relay */
#define VMM_LAN_FIRST 0x0a000010u   /* 10.0.0.16: the first address given out by default */
#define VMM_LAN_LAST 0x0a00fefeu    /* 10.0.254.254: the last one */

#define VMM_FORWARDS_MAX 8
#define VMM_IFNAMSIZ 16 /* the kernel's IFNAMSIZ: a name and its NUL */

enum vmm_uplink_kind {
	VMM_UPLINK_USER = 0, /* libslirp NAT, no root */
	VMM_UPLINK_TAP,	     /* a host TAP device (root) */
	VMM_UPLINK_NONE,     /* other services only */
};

/* "tcp:8080:80": host 127.0.0.1:8080 reaches the service's port 80. */
struct vmm_forward {
	uint8_t udp;
	uint32_t host_addr; /* IPv4 as a number; default 127.0.0.1 */
	uint16_t host_port;
	uint16_t guest_port;
};

struct vmm_net_config {
	int enabled; /* the service has a NIC ("net" is present) */
	uint8_t mac[6];
	int mac_set;
	uint32_t ip; /* IPv4 as a number, 0 = give one out */
	uint8_t prefix;
	uint32_t gateway;
	int gateway_set;
	enum vmm_uplink_kind uplink;
	char tap[VMM_IFNAMSIZ]; /* interface name for VMM_UPLINK_TAP */
	unsigned nforward;
	struct vmm_forward forward[VMM_FORWARDS_MAX];
	struct ratelimit_config rx_limit, tx_limit; /* "rx_rate_limiter", "tx_rate_limiter" */
};

/* Parses the "net" object v of the service file path into net. Returns 0, or -1 with err set
 * to "<path>: key \"net.<key>\": <problem>". */
int vmm_config_net_parse(const char *path, json_t *v, struct vmm_net_config *net, char *err,
			 size_t errlen);

/* Whether the len bytes at name (NUL-terminated after them) make a network interface name the
 * kernel accepts (its dev_valid_name): 1 to IFNAMSIZ-1 bytes, no NUL, not "." or "..", no
 * '/', ':' or whitespace. Pure. */
int vmm_ifname_valid(const char *name, size_t len);

/* The locally administered MAC derived from a service name. */
void vmm_net_mac_from_name(const char *name, uint8_t mac[6]);

/* Formats an IPv4 number as dotted quad; out must hold 16 bytes. */
const char *vmm_ip_str(uint32_t ip, char out[16]);

#endif
