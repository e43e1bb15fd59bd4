/* The fleet-wide half of the network configuration: defaults and uniqueness across a plan. */
#include "plan_net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_net.h"

struct keyed {
	uint64_t key;
	unsigned index;
};

static int by_key(const void *a, const void *b)
{
	const struct keyed *x = a, *y = b;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* Sorts n keys and returns the first duplicate pair, or 0 if all differ. */
static int find_duplicate(struct keyed *k, size_t n, unsigned *first, unsigned *second)
{
	qsort(k, n, sizeof(*k), by_key);
	for (size_t i = 1; i < n; i++)
		if (k[i].key == k[i - 1].key) {
			*first = k[i - 1].index;
			*second = k[i].index;
			return 1;
		}
	return 0;
}

static uint64_t mac_key(const uint8_t mac[6])
{
	uint64_t k = 0;
	for (int i = 0; i < 6; i++)
		k = k << 8 | mac[i];
	return k;
}

int vmm_plan_has_net(const struct vmm_plan *plan)
{
	for (unsigned i = 0; i < plan->count; i++)
		if (plan->services[i].cfg.net.enabled)
			return 1;
	return 0;
}

/* Explicit addresses first, so that a default never takes one a service asked for. */
void vmm_plan_net_port(const struct vmm_plan *plan, unsigned i, struct vnet_port_config *out)
{
	const struct vmm_service_config *cfg = &plan->services[i].cfg;
	const struct vmm_net_config *net = &cfg->net;
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", cfg->name);
	out->source = cfg->source;
	memcpy(out->mac, net->mac, sizeof(out->mac));
	out->ip = net->ip;
	out->uplink = net->uplink;
	memcpy(out->tap, net->tap, sizeof(out->tap));
	out->nforward = net->nforward;
	memcpy(out->forward, net->forward, sizeof(out->forward));
	out->rx_limit = net->rx_limit;
	out->tx_limit = net->tx_limit;
}

static int assign_addresses(struct vmm_plan *plan, struct keyed *keys, char *err, size_t errlen)
{
	size_t n = 0;
	for (unsigned i = 0; i < plan->count; i++) {
		const struct vmm_net_config *net = &plan->services[i].cfg.net;
		if (net->enabled && net->ip)
			keys[n++] = (struct keyed){net->ip, i};
	}
	qsort(keys, n, sizeof(*keys), by_key);
	uint32_t next = VNET_LAN_FIRST;
	size_t taken = 0;
	for (unsigned i = 0; i < plan->count; i++) {
		struct vmm_service_config *cfg = &plan->services[i].cfg;
		struct vmm_net_config *net = &cfg->net;
		if (!net->enabled || net->ip)
			continue;
		if (net->uplink == VNET_UPLINK_TAP) {
			snprintf(err, errlen, "%s: key \"net.ip\": needed with a tap uplink",
				 cfg->source);
			return -1;
		}
		while (taken < n && keys[taken].key < next)
			taken++;
		while (taken < n && keys[taken].key == next) {
			next++;
			taken++;
		}
		if (next > VNET_LAN_LAST) {
			snprintf(err, errlen,
				 "%s: key \"net.ip\": the virtual LAN has no address left for "
				 "\"%s\"",
				 cfg->source, cfg->name);
			return -1;
		}
		net->ip = next++;
	}
	return 0;
}

int vmm_plan_net_finish(struct vmm_plan *plan, char *err, size_t errlen)
{
	struct keyed *keys =
		calloc(plan->count ? plan->count * VNET_FORWARDS_MAX : 1, sizeof(*keys));
	if (!keys) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int rc = -1;
	if (assign_addresses(plan, keys, err, errlen) != 0)
		goto out;
	size_t nmac = 0, nip = 0, nfwd = 0;
	for (unsigned i = 0; i < plan->count; i++) {
		struct vmm_service_config *cfg = &plan->services[i].cfg;
		struct vmm_net_config *net = &cfg->net;
		if (!net->enabled)
			continue;
		if (!net->mac_set)
			vmm_net_mac_from_name(cfg->name, net->mac);
		if (!net->prefix)
			net->prefix = net->uplink == VNET_UPLINK_TAP ? 24 : VNET_LAN_PREFIX;
		if (!net->gateway_set && net->uplink == VNET_UPLINK_USER)
			net->gateway = VNET_LAN_GATEWAY;
		keys[nmac++] = (struct keyed){mac_key(net->mac), i};
	}
	unsigned a, b;
	if (find_duplicate(keys, nmac, &a, &b)) {
		snprintf(err, errlen,
			 "%s and %s: key \"net.mac\": services \"%s\" and \"%s\" have the same MAC",
			 plan->services[a].cfg.source, plan->services[b].cfg.source,
			 plan->services[a].cfg.name, plan->services[b].cfg.name);
		goto out;
	}
	for (unsigned i = 0; i < plan->count; i++)
		if (plan->services[i].cfg.net.enabled)
			keys[nip++] = (struct keyed){plan->services[i].cfg.net.ip, i};
	if (find_duplicate(keys, nip, &a, &b)) {
		char ip[16];
		snprintf(
			err, errlen,
			"%s and %s: key \"net.ip\": services \"%s\" and \"%s\" both use address %s",
			plan->services[a].cfg.source, plan->services[b].cfg.source,
			plan->services[a].cfg.name, plan->services[b].cfg.name,
			vmm_ip_str(plan->services[a].cfg.net.ip, ip));
		goto out;
	}
	for (unsigned i = 0; i < plan->count; i++) {
		const struct vmm_net_config *net = &plan->services[i].cfg.net;
		for (unsigned f = 0; net->enabled && f < net->nforward; f++) {
			const struct vnet_forward *fw = &net->forward[f];
			keys[nfwd++] = (struct keyed){(uint64_t)fw->udp << 48 |
							      (uint64_t)fw->host_addr << 16 |
							      fw->host_port,
						      i};
		}
	}
	if (find_duplicate(keys, nfwd, &a, &b)) {
		snprintf(err, errlen,
			 "%s and %s: key \"net.forward\": services \"%s\" and \"%s\" forward the "
			 "same host port",
			 plan->services[a].cfg.source, plan->services[b].cfg.source,
			 plan->services[a].cfg.name, plan->services[b].cfg.name);
		goto out;
	}
	rc = 0;
out:
	free(keys);
	return rc;
}
