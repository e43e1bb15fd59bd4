/* ARP: a small cache with expiry, answers for our address, and a bounded queue of frames that
 * wait for a resolution (requests are retried; frames are dropped and counted on failure). */
#include <string.h>

#include "net_internal.h"

#define ARP_LEN 28
#define ARP_REQUEST 1
#define ARP_REPLY 2

static const uint8_t broadcast_mac[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static struct net_arp_entry *arp_find(struct net_stack *st, uint32_t ip)
{
	for (int i = 0; i < NET_ARP_ENTRIES; i++)
		if (st->arp[i].ip == ip)
			return &st->arp[i];
	return NULL;
}

/* A free entry, else the resolved one that expires first (never one still resolving, whose
 * frames wait for it, unless all are). */
static struct net_arp_entry *arp_slot(struct net_stack *st)
{
	struct net_arp_entry *victim = NULL;
	for (int i = 0; i < NET_ARP_ENTRIES; i++) {
		struct net_arp_entry *e = &st->arp[i];
		if (!e->ip)
			return e;
		if (e->resolved && (!victim || e->expires < victim->expires))
			victim = e;
	}
	return victim ? victim : &st->arp[0];
}

static void arp_send(struct net_stack *st, uint16_t op, const uint8_t *tha, uint32_t tip)
{
	uint8_t *f = st->tx, *a = f + ETH_HLEN;
	st16(a, 1); /* Ethernet */
	st16(a + 2, ETH_TYPE_IPV4);
	a[4] = 6;
	a[5] = 4;
	st16(a + 6, op);
	memcpy(a + 8, st->cfg.mac, 6);
	st32(a + 14, st->cfg.ip);
	memcpy(a + 18, op == ARP_REQUEST ? (const uint8_t[6]){0} : tha, 6);
	st32(a + 24, tip);
	/* Pad to the Ethernet minimum (60 bytes without FCS). */
	memset(a + ARP_LEN, 0, 60 - ETH_HLEN - ARP_LEN);
	if (op == ARP_REQUEST)
		st->stats.arp_requests_sent++;
	else
		st->stats.arp_replies_sent++;
	net_eth_send(st, f, 60, op == ARP_REQUEST ? broadcast_mac : tha, ETH_TYPE_ARP);
}

/* Sends (or, on failure, drops) every frame waiting for ip. */
static void arp_flush(struct net_stack *st, uint32_t ip, const uint8_t *mac)
{
	for (int i = 0; i < NET_ARP_QUEUE; i++) {
		struct net_arp_pending *p = &st->arp_queue[i];
		if (p->next_hop != ip)
			continue;
		if (mac)
			net_eth_send(st, p->frame, p->len, mac, ETH_TYPE_IPV4);
		else
			st->stats.drop_arp_unresolved++;
		p->next_hop = 0;
	}
}

void net_arp_input(struct net_stack *st, const uint8_t *a, size_t len)
{
	if (len < ARP_LEN) {
		st->stats.drop_truncated++;
		return;
	}
	if (ld16(a) != 1 || ld16(a + 2) != ETH_TYPE_IPV4 || a[4] != 6 || a[5] != 4) {
		st->stats.drop_bad_header++;
		return;
	}
	uint16_t op = ld16(a + 6);
	uint32_t sip = ld32(a + 14), tip = ld32(a + 24);
	const uint8_t *sha = a + 8;
	if ((op != ARP_REQUEST && op != ARP_REPLY) || (sha[0] & 1)) {
		st->stats.drop_bad_header++;
		return;
	}
	/* RFC 826: refresh a known sender; learn it if the packet is for us. Probes (sender 0)
	 * and our own address teach nothing. */
	int for_us = tip == st->cfg.ip && st->cfg.ip;
	if (sip && sip != st->cfg.ip && sip != 0xffffffffu) {
		struct net_arp_entry *e = arp_find(st, sip);
		if (!e && for_us) {
			e = arp_slot(st);
			if (e->ip && !e->resolved)
				arp_flush(st, e->ip, NULL);
			e->ip = sip;
		}
		if (e) {
			memcpy(e->mac, sha, 6);
			e->resolved = 1;
			e->tries = 0;
			e->expires = net_now(st) + NET_ARP_TTL_NS;
			arp_flush(st, sip, e->mac);
		}
	}
	if (!for_us) {
		st->stats.drop_not_for_us++;
		return;
	}
	if (op == ARP_REQUEST) {
		uint8_t mac[6];
		memcpy(mac, sha, 6);
		arp_send(st, ARP_REPLY, mac, sip);
	}
}

int net_arp_output(struct net_stack *st, uint32_t next_hop, uint8_t *frame, size_t len)
{
	uint32_t bcast = st->cfg.ip | ~st->netmask;
	if (next_hop == 0xffffffffu || (st->netmask != 0xffffffffu && next_hop == bcast)) {
		net_eth_send(st, frame, len, broadcast_mac, ETH_TYPE_IPV4);
		return 0;
	}
	uint64_t now = net_now(st);
	struct net_arp_entry *e = arp_find(st, next_hop);
	if (e && e->resolved && now < e->expires) {
		net_eth_send(st, frame, len, e->mac, ETH_TYPE_IPV4);
		return 0;
	}
	struct net_arp_pending *slot = NULL;
	for (int i = 0; i < NET_ARP_QUEUE && !slot; i++)
		if (!st->arp_queue[i].next_hop)
			slot = &st->arp_queue[i];
	if (!slot) {
		st->stats.drop_arp_unresolved++;
		return -1;
	}
	/* Copy first: the request below is built in st->tx, which may be frame. */
	memcpy(slot->frame, frame, len);
	slot->len = (uint16_t)len;
	slot->next_hop = next_hop;
	if (!e || e->resolved) {
		/* New, or stale: resolve again (a stale entry keeps its slot). */
		if (!e) {
			e = arp_slot(st);
			if (e->ip && !e->resolved)
				arp_flush(st, e->ip, NULL);
		}
		e->ip = next_hop;
		e->resolved = 0;
		e->tries = 1;
		e->expires = now + NET_ARP_RETRY_NS;
		arp_send(st, ARP_REQUEST, NULL, next_hop);
	}
	return 0;
}

void net_arp_poll(struct net_stack *st, uint64_t now)
{
	for (int i = 0; i < NET_ARP_ENTRIES; i++) {
		struct net_arp_entry *e = &st->arp[i];
		if (!e->ip || now < e->expires)
			continue;
		if (e->resolved) {
			e->ip = 0; /* expired */
		} else if (e->tries >= NET_ARP_TRIES) {
			arp_flush(st, e->ip, NULL);
			e->ip = 0;
		} else {
			e->tries++;
			e->expires = now + NET_ARP_RETRY_NS;
			arp_send(st, ARP_REQUEST, NULL, e->ip);
		}
	}
}

uint64_t net_arp_deadline(const struct net_stack *st)
{
	/* Only resolutions need waking for; resolved entries expire lazily. */
	uint64_t d = UINT64_MAX;
	for (int i = 0; i < NET_ARP_ENTRIES; i++)
		if (st->arp[i].ip && !st->arp[i].resolved && st->arp[i].expires < d)
			d = st->arp[i].expires;
	return d;
}
