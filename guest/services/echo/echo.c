/* echo: the RFC 862 echo service on UDP and TCP port 7 (or argv[1]): every datagram goes back
 * to its sender, every byte of a connection back to its peer. */
#include <denali.h>
#include <net.h>
#include <stdio.h>
#include <stdlib.h>

static void on_datagram(struct net_udp *sock, uint32_t ip, uint16_t port, const void *data,
			size_t len, void *arg)
{
	(void)arg;
	net_udp_sendto(sock, ip, port, data, len);
}

/* Copies what the peer sent back to it, as far as the send buffer takes it; the rest stays in
 * the receive buffer (closing our window) until WRITABLE says there is room again. */
static void pump(struct net_tcp *c)
{
	uint8_t buf[4096];
	for (;;) {
		size_t room = net_tcp_writable(c);
		size_t want = room < sizeof(buf) ? room : sizeof(buf);
		if (want == 0)
			return;
		size_t n = net_tcp_read(c, buf, want);
		if (n == 0)
			return;
		net_tcp_write(c, buf, n); /* fits: no more than writable */
	}
}

static void on_conn(struct net_tcp *c, unsigned events, void *arg)
{
	(void)arg;
	if (events & NET_TCP_CLOSED) {
		net_tcp_close(c);
		return;
	}
	pump(c);
	/* The peer is done sending: close once everything it sent has been echoed. */
	if (net_tcp_state(c) == NET_TCPS_CLOSE_WAIT && net_tcp_readable(c) == 0)
		net_tcp_close(c);
}

static void on_accept(struct net_tcp *listener, struct net_tcp *c, void *arg)
{
	(void)listener, (void)arg;
	net_tcp_set_callbacks(c, on_conn, NULL);
}

static void on_stop(uint64_t events, void *arg)
{
	(void)events, (void)arg;
	dn_loop_stop();
}

int main(int argc, char **argv)
{
	uint16_t port = argc > 1 ? (uint16_t)atoi(argv[1]) : 7;
	struct net_stack *st = dn_net_start();
	if (!st) {
		printf("echo: this service has no NIC (add \"net\" to its service file)\n");
		return 1;
	}
	if (!net_udp_bind(st, port, on_datagram, NULL) ||
	    !net_tcp_listen(st, port, on_accept, NULL)) {
		printf("echo: cannot listen on port %u\n", port);
		return 1;
	}
	printf("echo: listening on UDP and TCP port %u\n", port);
	dn_loop_on(DN_EV_STOP, on_stop, NULL);
	dn_loop_run();
	return 0;
}
