/* The HTTP/1.1 server of httpd: serves content.c's resources over the stack's TCP. */
#ifndef HTTP_SERVER_H
#define HTTP_SERVER_H

#include <stdint.h>

#include "net.h"

/* Idle limit of a connection: between requests, for a head to arrive, for the peer to drain. */
#define HTTP_SERVER_IDLE_NS (30ull * 1000 * 1000 * 1000)

/* Listens on port of st and serves every connection from the stack's callbacks, with a dn_timer
 * per connection for the idle limit. content_init must have run. Returns 0, or -1 if the port
 * cannot be listened on. Call once. */
int http_server_start(struct net_stack *st, uint16_t port);

#endif
