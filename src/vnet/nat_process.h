/* The NAT process's work (denali-nat): libslirp behind one socket to the supervisor. Frames
 * and forward requests come in over the socket (nat_proto.h), frames toward the LAN go out
 * over it, in batches; libslirp's own sockets reach the outside. */
#ifndef VNET_NAT_PROCESS_H
#define VNET_NAT_PROCESS_H

#include <stddef.h>

struct nat_process;

/* Makes libslirp ready to serve the supervisor on sock (a SOCK_SEQPACKET socket, made
 * non-blocking here). Opens nothing of the outside yet. NULL with err set. */
struct nat_process *nat_process_setup(int sock, char *err, size_t errlen);

/* Serves until the supervisor closes its end (returns 0) or something fails beyond repair
 * (a one-line message on stderr, returns 1). A message that breaks the format is said on
 * stderr (at most once a second) and dropped. */
int nat_process_run(struct nat_process *p);

#endif
