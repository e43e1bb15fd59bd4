/* Shared by the stack's files: wire formats, byte order, and the layers' internal entry points. */
#ifndef NET_INTERNAL_H
#define NET_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "net.h"

#define ETH_HLEN 14
#define ETH_TYPE_IPV4 0x0800
#define ETH_TYPE_ARP 0x0806
#define IP_HLEN 20 /* we send no options */
#define IP_PROTO_ICMP 1
#define IP_PROTO_TCP 6
#define IP_PROTO_UDP 17
#define IP_TTL 64
#define UDP_HLEN 8
#define TCP_HLEN 20
#define ICMP_HLEN 8
/* Where the transport header starts in st->tx. */
#define NET_L4_OFF (ETH_HLEN + IP_HLEN)
#define NET_L4_MAX (NET_MTU - IP_HLEN)

/* Big-endian loads and stores by bytes: frames are unaligned and of either endianness. */
static inline uint16_t ld16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t ld32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void st16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void st32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Sequence-number comparisons modulo 2^32. */
static inline int seq_lt(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

static inline int seq_leq(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) <= 0;
}

/* checksum.c: the Internet checksum. net_csum_add sums len bytes (as 16-bit words in memory
 * order) into sum; chain calls only at even offsets. net_csum_fold returns the complemented
 * 16-bit result, to be stored with memcpy (memory order): 0 when verifying a correct packet. */
uint64_t net_csum_add(uint64_t sum, const void *data, size_t len);
uint16_t net_csum_fold(uint64_t sum);
/* The sum of the IPv4 pseudo-header for a transport checksum. */
uint64_t net_csum_pseudo(uint32_t src, uint32_t dst, uint8_t proto, uint16_t len);

/* net.c: the driver's clock. */
uint64_t net_now(const struct net_stack *st);

/* eth.c: sends frame (len bytes, Ethernet header included) after filling in the header. */
void net_eth_send(struct net_stack *st, uint8_t *frame, size_t len, const uint8_t dst[6],
		  uint16_t type);

/* arp.c */
/* Handles one ARP packet (the Ethernet payload). */
void net_arp_input(struct net_stack *st, const uint8_t *pkt, size_t len);
/* Sends frame (an IPv4 frame without its Ethernet header filled in) to next_hop, resolving it
 * first if needed (the frame then waits in the queue). Returns 0, or -1 if dropped. */
int net_arp_output(struct net_stack *st, uint32_t next_hop, uint8_t *frame, size_t len);
/* Repeats requests, gives up on silent addresses, expires old entries. */
void net_arp_poll(struct net_stack *st, uint64_t now);
/* The next request retry, UINT64_MAX if none (expiry needs no wake-up: it is checked on use). */
uint64_t net_arp_deadline(const struct net_stack *st);

/* ipv4.c */
/* Validates one IPv4 packet (the Ethernet payload, maybe padded) and passes it up. */
void net_ipv4_input(struct net_stack *st, const uint8_t *pkt, size_t len);
/* Sends st->tx, whose transport payload (len bytes at NET_L4_OFF) is written, to dst. */
int net_ipv4_output(struct net_stack *st, uint32_t dst, uint8_t proto, size_t len);
/* Whether dst can be reached (on-link or through a gateway). */
int net_ipv4_routable(const struct net_stack *st, uint32_t dst);

/* icmp.c, udp.c, tcp_input.c: data/len is the IP payload, src/dst host-order addresses. */
void net_icmp_input(struct net_stack *st, uint32_t src, uint32_t dst, const uint8_t *data,
		    size_t len);
void net_udp_input(struct net_stack *st, uint32_t src, uint32_t dst, const uint8_t *data,
		   size_t len);
void net_tcp_input(struct net_stack *st, uint32_t src, uint32_t dst, const uint8_t *data,
		   size_t len);

/* tcp_output.c */
#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10
/* Sends what the state, window and buffers allow, and a pure ACK if one is owed. */
void net_tcp_output(struct net_tcp *c);
/* Sends our SYN (SYN_SENT) or SYN-ACK (SYN_RCVD) at iss. */
void net_tcp_send_syn(struct net_tcp *c);
/* Sends a segment with no data. */
void net_tcp_send_ctl(struct net_tcp *c, uint32_t seq, uint8_t flags);
/* Sends a RST in answer to a segment for no connection (RFC 793 "reset generation"). */
void net_tcp_send_reset(struct net_stack *st, uint32_t src, uint32_t dst, uint16_t sport,
			uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags, size_t seglen);
/* The receive window to advertise now (never shrinks the advertised right edge). */
uint32_t net_tcp_rcv_window(const struct net_tcp *c);

/* tcp.c: connection life cycle shared by input, output and timers. */
/* A cleared slot in state CLOSED (not owned, no timers): a free one, else the oldest TIME_WAIT
 * one; NULL if every slot holds a live connection or listener. */
struct net_tcp *net_tcp_alloc(struct net_stack *st);
/* Marks the connection CLOSED: stops timers and frees it if the application does not hold it. */
void net_tcp_set_closed(struct net_tcp *c, uint8_t error);
/* Delivers events to the callback, then frees c if it was released meanwhile. Returns 0 if c
 * is gone (free or released CLOSED), 1 if it may still be used. */
int net_tcp_notify(struct net_tcp *c, unsigned events);
/* Enters (or restarts) TIME_WAIT: the slot is freed 2 * MSL from now. */
void net_tcp_enter_time_wait(struct net_tcp *c);
/* The initial sequence number for a connection to rip:rport from lport (RFC 6528). */
uint32_t net_tcp_isn(struct net_stack *st, uint32_t rip, uint16_t lport, uint16_t rport);

/* tcp_timer.c */
/* Folds one round-trip measurement (ns) into SRTT/RTTVAR and recomputes the RTO. */
void net_tcp_rtt_sample(struct net_tcp *c, uint64_t rtt);
/* (Re)starts the retransmission timer: one RTO from now. */
void net_tcp_arm_rexmt(struct net_tcp *c);
/* Runs every TCP timer due at now. */
void net_tcp_poll(struct net_stack *st, uint64_t now);
/* The earliest TCP timer, UINT64_MAX if none. */
uint64_t net_tcp_deadline(const struct net_stack *st);

#endif
