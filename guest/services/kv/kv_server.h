/* kv's server: the line protocol of kv_proto.h over the stack's TCP, answered by the store. */
#ifndef KV_SERVER_H
#define KV_SERVER_H

#include <stdint.h>

#include "kv_store.h"
#include "net.h"

#define KV_SERVER_CONNS 16 /* clients at once; more are told so and closed */
/* Idle limit of a connection waiting for its peer (never while the store works for it). */
#define KV_SERVER_IDLE_NS (60ull * 1000 * 1000 * 1000)

/* Listens on port of st and serves every connection from the stack's callbacks and the store's
 * completions, with a dn_timer per connection for the idle limit. store must be mounted.
 * Returns 0, or -1 if the port cannot be listened on. Call once. */
int kv_server_start(struct net_stack *st, uint16_t port, struct kv_store *store);

#endif
