/* An echo service between the two test stacks on the wire (net_wire.h), for the tests that
 * throw hostile frames at a stack (the net_fuzz unit suite and the guest TCP/IP fuzz target):
 * b echoes TCP on port 80 and UDP on port 7, a connects and counts the pings b answers, and
 * afterwards b must keep the stack's invariants and still serve. */
#ifndef WIRE_ECHO_H
#define WIRE_ECHO_H

#include "net.h"
#include "net_wire.h"

struct wire_echo {
	struct wire *w;
	struct net_tcp *client; /* a's latest connection to b:80 */
	int connected, accepted, pings;
};

/* b listens on TCP port 80 and echoes what it reads; a counts the echo replies it gets. */
void wire_echo_listen(struct wire_echo *e);
/* wire_echo_listen, and b echoes UDP datagrams on port 7 too. */
void wire_echo_serve(struct wire_echo *e);
/* a connects to b:80 and the wire runs until the connection is up (asserted). */
void wire_echo_connect(struct wire_echo *e);
/* The stack's own invariants, which hostile input must never break (asserted). */
void wire_echo_check_invariants(const struct net_stack *st);
/* After the hostile input: a clean wire, ten minutes pass, then both stacks keep their
 * invariants and b answers a ping and accepts, and echoes on, a new connection (asserted). */
void wire_echo_check_alive(struct wire_echo *e);

#endif
