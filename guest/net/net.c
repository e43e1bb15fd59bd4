/* The stack's entry points that span layers: set-up, timers, counters. */
#include <stddef.h>
#include <string.h>

#include "net_internal.h"

void net_init(struct net_stack *st, const struct net_config *cfg, const struct net_driver *drv)
{
	/* Everything but the TCP buffers, which are written before they are read: zeroing them
	 * would dirty 4 MiB of guest memory that a swap-out must then write back. */
	memset(st, 0, offsetof(struct net_stack, tcp_buf));
	memset(st->tx, 0, sizeof(st->tx));
	st->cfg = *cfg;
	st->drv = *drv;
	if (st->cfg.prefix > 32)
		st->cfg.prefix = 32;
	st->netmask = st->cfg.prefix ? ~0u << (32 - st->cfg.prefix) : 0;
	/* Spread ephemeral ports and IP ids by the secret so restarts do not reuse them. */
	uint64_t s = cfg->secret ^ net_now(st);
	st->next_port = (uint16_t)(49152 + (s % 16384));
	st->ip_id = (uint16_t)(s >> 16);
	for (int i = 0; i < NET_TCP_CONNS; i++) {
		st->tcp[i].st = st;
		st->tcp[i].sndbuf = st->tcp_buf[i].snd;
		st->tcp[i].rcvbuf = st->tcp_buf[i].rcv;
	}
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
