/* A TCP client on side 0 of the in-memory wire (net_wire.h), for server tests: it sends its
 * bytes as the connection takes them and keeps what comes back. */
#ifndef WIRE_CLIENT_H
#define WIRE_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "net.h"
#include "net_wire.h"

struct wire_client {
	struct net_tcp *tcp;
	const char *tx; /* sends tx[tx_off, tx_len) */
	size_t tx_len, tx_off;
	char *rx; /* received: rx[0, rx_len) of rx_cap */
	size_t rx_len, rx_cap, want;
	int peer_closed, closed;
};

/* A client connected from side 0 to side 1's port: it will send tx[0, len), keeps up to
 * rx_cap bytes of what comes back, and is done once want bytes came (0: once closed). */
struct wire_client *wire_client_connect(struct wire *w, uint16_t port, const char *tx, size_t len,
					size_t want, size_t rx_cap);

/* Aborts the connection if still open and frees the client. */
void wire_client_free(struct wire_client *c);

/* Sends what the connection takes of what is left of tx. */
void wire_client_write(struct wire_client *c);

/* The TCP callback: arg is the client. */
void wire_client_event(struct net_tcp *tcp, unsigned events, void *arg);

/* 1 once the peer closed, the connection closed, or want bytes came back (for wire_run). */
int wire_client_done(void *arg);

/* The server (on fake timers, fake_timers.h) closes c once it has been idle for idle_ns: its
 * timer fires then and not 3 s before (asserted). */
void wire_client_expect_idle_close(struct wire *w, struct wire_client *c, uint64_t idle_ns);

#endif
