/* The guest network stack: Ethernet, ARP, IPv4, ICMP echo, UDP and TCP, with no allocation. */
#ifndef NET_H
#define NET_H

/* Only headers that exist both freestanding and in a hosted libc: the stack is also built on the
 * host for unit tests. */
#include <stddef.h>
#include <stdint.h>

/* ---- Limits (compile-time; every pool lives inside struct net_stack) ---- */
#define NET_MTU 1500
#define NET_FRAME_MAX 1514 /* Ethernet header + MTU, no FCS */
#define NET_ARP_ENTRIES 32
#define NET_ARP_QUEUE 8		      /* frames waiting for an ARP reply, shared by all addresses */
#define NET_ARP_TTL_NS 60000000000ull /* a resolved entry is trusted for 60 s */
#define NET_ARP_RETRY_NS 1000000000ull /* a request is repeated every second ... */
#define NET_ARP_TRIES 3		       /* ... three times, then the waiting frames are dropped */
#define NET_UDP_SOCKETS 16
#define NET_TCP_CONNS 64 /* listeners and connections share this pool */
/* Half-open connections per listener: half the pool, so that a burst of clients connecting at
 * once is not dropped into SYN retries, and a SYN flood still leaves room for the rest. */
#define NET_TCP_BACKLOG 32
#define NET_TCP_SNDBUF 32768
#define NET_TCP_RCVBUF 32768
#define NET_TCP_MSS 1460
#define NET_TCP_MSL_NS 1000000000ull /* 1 s: TIME_WAIT lasts 2 * MSL = 2 s */
#define NET_TCP_RTO_INIT_NS 1000000000ull
#define NET_TCP_RTO_MIN_NS 200000000ull
#define NET_TCP_RTO_MAX_NS 60000000000ull
#define NET_TCP_DELACK_NS 40000000ull
#define NET_TCP_OOW_ACK_GAP_NS                                                                     \
	100000000ull			    /* at most one challenge/out-of-window ACK per 100 ms  \
					     */
#define NET_TCP_FIN_WAIT2_NS 60000000000ull /* a closed connection whose peer never FINs */
#define NET_TCP_RETRIES 8		    /* retransmissions of one segment before a reset */
#define NET_TCP_SYN_RETRIES 5

/* ---- Configuration and the driver ---- */
struct net_config {
	uint8_t mac[6];
	uint32_t ip;	  /* host byte order */
	uint8_t prefix;	  /* netmask length, 0-32 */
	uint32_t gateway; /* host byte order; 0 = no gateway: off-link destinations are dropped */
	uint64_t secret;  /* seeds the TCP ISN and ephemeral port generator; make it random */
};

struct net_driver {
	/* Queues one Ethernet frame (no FCS). Returns 0, or < 0 if there is no room: the stack then
	 * treats the frame as lost on the wire. The frame is only valid during the call. */
	int (*tx)(void *ctx, const void *frame, size_t len);
	/* Monotonic nanoseconds. */
	uint64_t (*now_ns)(void *ctx);
	void *ctx;
};

/* ---- Counters ---- */
struct net_stats {
	uint64_t rx_frames, tx_frames, tx_dropped; /* tx_dropped: the driver had no room */
	uint64_t drop_truncated;		   /* shorter than its headers say */
	uint64_t drop_bad_header; /* IP version/IHL, ARP formats, TCP offset, ... */
	uint64_t drop_bad_checksum;
	uint64_t drop_fragment;	      /* IPv4 fragments: no reassembly */
	uint64_t drop_not_for_us;     /* other MAC or IP, bad source address */
	uint64_t drop_unknown_proto;  /* ethertype, IP protocol, ICMP type */
	uint64_t drop_no_socket;      /* UDP to an unbound port, TCP to a closed one (RST sent) */
	uint64_t drop_no_route;	      /* off-link destination without a gateway */
	uint64_t drop_arp_unresolved; /* queue full, or no reply after NET_ARP_TRIES */
	uint64_t arp_requests_sent, arp_replies_sent;
	uint64_t icmp_echo_replies_sent;
	uint64_t udp_rx, udp_tx;
	uint64_t tcp_rx, tcp_tx; /* segments */
	uint64_t tcp_rst_sent;
	uint64_t tcp_syn_dropped;    /* listener backlog or connection pool full */
	uint64_t tcp_retransmits;    /* timeouts and fast retransmits (go-back-N rounds) */
	uint64_t tcp_timeouts;	     /* connections reset after too many retransmissions */
	uint64_t tcp_out_of_order;   /* segments beyond rcv_nxt: dropped, duplicate ACK sent */
	uint64_t tcp_out_of_window;  /* unacceptable segments: ACKed and dropped */
	uint64_t tcp_persist_probes; /* zero-window probes */
	uint64_t tcp_acks_limited;   /* challenge/out-of-window ACKs not sent (rate limit) */
	uint64_t tcp_tw_recycled;    /* TIME_WAITs given up for new connections (pool full) */
	uint64_t tcp_tw_reopened;    /* TIME_WAITs ended by a new SYN for the same ports */
};

/* ---- UDP ---- */
struct net_udp;
typedef void (*net_udp_recv_fn)(struct net_udp *sock, uint32_t src_ip, uint16_t src_port,
				const void *data, size_t len, void *arg);

struct net_udp {
	struct net_stack *st;
	uint16_t port; /* 0 = free slot */
	net_udp_recv_fn recv;
	void *arg;
};

/* ---- TCP ---- */
enum net_tcp_state {
	NET_TCPS_FREE, /* unused slot */
	NET_TCPS_CLOSED,
	NET_TCPS_LISTEN,
	NET_TCPS_SYN_SENT,
	NET_TCPS_SYN_RCVD,
	NET_TCPS_ESTABLISHED,
	NET_TCPS_FIN_WAIT_1,
	NET_TCPS_FIN_WAIT_2,
	NET_TCPS_CLOSING,
	NET_TCPS_TIME_WAIT,
	NET_TCPS_CLOSE_WAIT,
	NET_TCPS_LAST_ACK,
};

/* Event bits passed to the connection callback. */
#define NET_TCP_CONNECTED 0x01	 /* an active open completed */
#define NET_TCP_READABLE 0x02	 /* new bytes in the receive buffer */
#define NET_TCP_WRITABLE 0x04	 /* the peer acknowledged data: send space was freed */
#define NET_TCP_PEER_CLOSED 0x08 /* the peer sent FIN: reads return the rest, then 0 */
#define NET_TCP_CLOSED 0x10	 /* the connection is gone; see net_tcp_error; call net_tcp_close */

/* Errors reported by net_tcp_error after NET_TCP_CLOSED. */
#define NET_TCP_ERR_NONE 0
#define NET_TCP_ERR_RESET 1   /* the peer reset the connection */
#define NET_TCP_ERR_REFUSED 2 /* RST answered our SYN */
#define NET_TCP_ERR_TIMEOUT 3 /* retransmissions exhausted; we sent RST */

struct net_tcp;
typedef void (*net_tcp_event_fn)(struct net_tcp *conn, unsigned events, void *arg);
typedef void (*net_tcp_accept_fn)(struct net_tcp *listener, struct net_tcp *conn, void *arg);

/* One listener or connection. Its fields are the stack's: use the functions below. */
struct net_tcp {
	struct net_stack *st;
	uint8_t state, error;
	uint8_t owned;	 /* the application holds the handle (until net_tcp_close/abort) */
	uint8_t in_cb;	 /* inside a callback: freeing is deferred */
	uint8_t free_me; /* free when the callback returns */
	uint8_t fin_queued, fin_acked, ack_now, rtt_active, rtt_valid, dupacks, unacked_segs;
	uint16_t lport, rport;
	uint32_t rip;
	uint16_t mss; /* the peer's, capped at NET_TCP_MSS */
	/* Send sequence space: sndbuf holds [snd_una, snd_una + snd_len). */
	uint32_t iss, snd_una, snd_nxt, snd_max, snd_wnd, snd_wl1, snd_wl2;
	uint32_t snd_head, snd_len;
	/* Receive sequence space: rcvbuf holds rcv_len bytes before rcv_nxt. */
	uint32_t irs, rcv_nxt, rcv_adv; /* rcv_adv: right edge of the last window we advertised */
	uint32_t rcv_head, rcv_len;
	uint32_t rtt_seq;
	uint64_t rtt_start, srtt, rttvar, rto; /* ns; srtt == 0: no sample yet */
	unsigned retries;
	uint64_t rexmt_at, persist_at, delack_at, close_at; /* deadlines, 0 = off */
	uint64_t last_oow_ack;				    /* rate limit, see tcp_input.c */
	uint64_t persist_backoff;
	struct net_tcp *parent; /* the listener of a connection not yet accepted */
	unsigned backlog;	/* listener: half-open children */
	net_tcp_event_fn on_event;
	net_tcp_accept_fn on_accept;
	void *arg;
	/* Last, kept when a connection is reset: its buffers in the stack's tcp_buf. */
	uint8_t *sndbuf; /* NET_TCP_SNDBUF bytes */
	uint8_t *rcvbuf; /* NET_TCP_RCVBUF bytes */
};

/* A connection's buffers, apart from the connections: a connection never used never touches
 * (so never dirties) its buffers' pages, and the connections' state fits in a few pages. */
struct net_tcp_buffers {
	uint8_t snd[NET_TCP_SNDBUF];
	uint8_t rcv[NET_TCP_RCVBUF];
};

/* ---- The stack: the caller allocates it (static storage is fine; it is large) ---- */
struct net_arp_entry {
	uint32_t ip; /* 0 = free */
	uint8_t mac[6];
	uint8_t resolved, tries;
	uint64_t expires; /* resolved: when it goes stale; resolving: when to ask again */
};

struct net_arp_pending {
	uint32_t next_hop; /* 0 = free */
	uint16_t len;
	uint8_t frame[NET_FRAME_MAX];
};

typedef void (*net_echo_fn)(uint32_t src_ip, uint16_t id, uint16_t seq, const void *data,
			    size_t len, void *arg);

struct net_stack {
	struct net_config cfg;
	struct net_driver drv;
	uint32_t netmask;
	uint16_t ip_id, next_port;
	struct net_stats stats;
	net_echo_fn on_echo;
	void *echo_arg;
	struct net_arp_entry arp[NET_ARP_ENTRIES];
	struct net_arp_pending arp_queue[NET_ARP_QUEUE];
	struct net_udp udp[NET_UDP_SOCKETS];
	struct net_tcp tcp[NET_TCP_CONNS];
	struct net_tcp_buffers tcp_buf[NET_TCP_CONNS];
	uint8_t tx[NET_FRAME_MAX]; /* scratch for the frame being built */
};

/* ---- Core ---- */

/* Initialises st for cfg (its TCP buffers are left as they are), sending through drv. Both are
 * copied. */
void net_init(struct net_stack *st, const struct net_config *cfg, const struct net_driver *drv);

/* Processes one received Ethernet frame (no FCS). Any bytes at all are safe. Callbacks run from
 * here. */
void net_input(struct net_stack *st, const void *frame, size_t len);

/* Runs the timers that are due: retransmissions, persist probes, delayed ACKs, TIME_WAIT, ARP
 * retries and expiry. Callbacks run from here. */
void net_poll(struct net_stack *st);

/* The earliest timer deadline (now_ns scale), UINT64_MAX if none: idle until then. */
uint64_t net_next_deadline(const struct net_stack *st);

/* The counters. */
const struct net_stats *net_stats(const struct net_stack *st);

/* Parses "a.b.c.d" into a host-order address. Returns 0, or -1 if malformed. */
int net_parse_ip(const char *s, uint32_t *ip);

/* ---- UDP ---- */

/* Binds port (non-zero, not already bound); recv(sock, ...) runs for each datagram. Returns
 * NULL if the port is taken or all NET_UDP_SOCKETS are in use. */
struct net_udp *net_udp_bind(struct net_stack *st, uint16_t port, net_udp_recv_fn recv, void *arg);

/* Sends one datagram (at most 1472 bytes) from the socket's port. Returns 0, or -1 if too long,
 * unroutable or dropped (an unresolved destination queues it: that counts as sent). */
int net_udp_sendto(struct net_udp *sock, uint32_t ip, uint16_t port, const void *data, size_t len);

/* Frees the socket. */
void net_udp_close(struct net_udp *sock);

/* ---- ICMP echo (requests to us are answered automatically) ---- */

/* Sends an echo request (at most 1472 bytes of data). Returns 0 or -1 as net_udp_sendto. */
int net_ping(struct net_stack *st, uint32_t ip, uint16_t id, uint16_t seq, const void *data,
	     size_t len);

/* Calls fn for every echo reply received (NULL: none). */
void net_on_echo_reply(struct net_stack *st, net_echo_fn fn, void *arg);

/* ---- TCP: non-blocking, callbacks from net_input and net_poll ---- */

/* Listens on port. accept(listener, conn, arg) runs when a connection is established; the
 * application then owns conn (set its callbacks there; net_tcp_close it eventually). Returns
 * NULL if the port is in use or the pool is full. */
struct net_tcp *net_tcp_listen(struct net_stack *st, uint16_t port, net_tcp_accept_fn accept,
			       void *arg);

/* Starts an active open to ip:port from an ephemeral port; NET_TCP_CONNECTED or NET_TCP_CLOSED
 * follows. Returns NULL if the pool is full or the destination is unroutable. */
struct net_tcp *net_tcp_connect(struct net_stack *st, uint32_t ip, uint16_t port);

/* Sets the event callback (events: NET_TCP_* bits). Safe to call at any time. */
void net_tcp_set_callbacks(struct net_tcp *conn, net_tcp_event_fn fn, void *arg);

/* Copies up to len received bytes out. Returns the count, 0 if none (see net_tcp_state for
 * end of stream). Reading may send a window update. */
size_t net_tcp_read(struct net_tcp *conn, void *buf, size_t len);

/* Bytes readable now. */
size_t net_tcp_readable(const struct net_tcp *conn);

/* Appends up to len bytes to the send buffer and sends what the window allows. Returns the
 * count accepted (may be < len; 0 if the buffer is full or the connection cannot send). */
size_t net_tcp_write(struct net_tcp *conn, const void *buf, size_t len);

/* Free space in the send buffer (0 if the connection cannot send). */
size_t net_tcp_writable(const struct net_tcp *conn);

/* Graceful close: FIN after the buffered data; the handle must not be used afterwards, no more
 * callbacks run, and the stack finishes the close (TIME_WAIT etc.) on its own. Also releases a
 * connection that reported NET_TCP_CLOSED, and closes a listener. Returns 0. */
int net_tcp_close(struct net_tcp *conn);

/* Abortive close: sends RST if synchronised and frees the connection at once. */
void net_tcp_abort(struct net_tcp *conn);

/* The connection's state (enum net_tcp_state) and error (NET_TCP_ERR_*). */
int net_tcp_state(const struct net_tcp *conn);
int net_tcp_error(const struct net_tcp *conn);

/* Peer address and port of a connection. */
uint32_t net_tcp_peer_ip(const struct net_tcp *conn);
uint16_t net_tcp_peer_port(const struct net_tcp *conn);

/* Number of pool slots in use (listeners, connections, TIME_WAIT). */
unsigned net_tcp_active(const struct net_stack *st);

#endif
