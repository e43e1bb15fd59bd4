/* The stack's entry points that span layers: set-up, timers, counters. */
#include <string.h>

#include "net_internal.h"

void net_init(struct net_stack *st, const struct net_config *cfg, const struct net_driver *drv)
{
	memset(st, 0, sizeof(*st));
	st->cfg = *cfg;
	st->drv = *drv;
	if (st->cfg.prefix > 32)
		st->cfg.prefix = 32;
	st->netmask = st->cfg.prefix ? ~0u << (32 - st->cfg.prefix) : 0;
	/* Spread ephemeral ports and IP ids by the secret so restarts do not reuse them. */
	uint64_t s = cfg->secret ^ net_now(st);
	st->next_port = (uint16_t)(49152 + (s % 16384));
	st->ip_id = (uint16_t)(s >> 16);
	for (int i = 0; i < NET_TCP_CONNS; i++)
		st->tcp[i].st = st;
	for (int i = 0; i < NET_UDP_SOCKETS; i++)
		st->udp[i].st = st;
}

uint64_t net_now(const struct net_stack *st)
{
	return st->drv.now_ns(st->drv.ctx);
}

void net_poll(struct net_stack *st)
{
	uint64_t now = net_now(st);
	net_arp_poll(st, now);
	net_tcp_poll(st, now);
}

uint64_t net_next_deadline(const struct net_stack *st)
{
	uint64_t a = net_arp_deadline(st), t = net_tcp_deadline(st);
	return a < t ? a : t;
}

const struct net_stats *net_stats(const struct net_stack *st)
{
	return &st->stats;
}

int net_parse_ip(const char *s, uint32_t *ip)
{
	uint32_t v = 0;
	for (int part = 0; part < 4; part++) {
		unsigned n = 0, digits = 0;
		while (*s >= '0' && *s <= '9' && digits < 4) {
			n = n * 10 + (unsigned)(*s++ - '0');
			digits++;
		}
		if (!digits || digits > 3 || n > 255)
			return -1;
		v = v << 8 | n;
		if (part < 3 && *s++ != '.')
			return -1;
	}
	if (*s)
		return -1;
	*ip = v;
	return 0;
}
