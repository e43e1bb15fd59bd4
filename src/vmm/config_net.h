/* service.json "net": the virtual NIC of one service, and the fleet-wide checks that give every
 * NIC its defaults (MAC from the name, an address on the virtual LAN) and keep them unique. */
#ifndef VMM_CONFIG_NET_H
#define VMM_CONFIG_NET_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "vnet_config.h"

struct vmm_net_config {
	int enabled; /* the service has a NIC ("net" is present) */
	uint8_t mac[6];
	int mac_set;
	uint32_t ip; /* IPv4 as a number, 0 = give one out */
	uint8_t prefix;
	uint32_t gateway;
	int gateway_set;
	enum vnet_uplink_kind uplink;
	char tap[VNET_IFNAMSIZ]; /* interface name for VNET_UPLINK_TAP */
	unsigned nforward;
	struct vnet_forward forward[VNET_FORWARDS_MAX];
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
