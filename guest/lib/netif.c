/* Binds the network stack to the virtual NIC and the event loop: frames in from the RX ring,
 * out through the TX ring, and protocol timers as the loop's idle deadline. */
#include <denali.h>
#include <net.h>

static struct net_stack stack;

static int nic_tx(void *ctx, const void *frame, size_t len)
{
	(void)ctx;
	return dn_nic_send(frame, len) == DN_OK ? 0 : -1;
}

static uint64_t clock_now(void *ctx)
{
	(void)ctx;
	return dn_time_ns();
}

static void on_frame(const void *frame, size_t len, void *arg)
{
	net_input(arg, frame, len);
}

/* Each loop turn: take what arrived (bounded, so timers and other work still get their turn),
 * run due protocol timers, and ask to be woken for the next one. */
static uint64_t net_poller(void *arg)
{
	struct net_stack *st = arg;
	unsigned got = dn_nic_receive(on_frame, st, DN_NIC_RING_SIZE);
	net_poll(st);
	if (got == DN_NIC_RING_SIZE)
		return 0; /* more may be waiting: go round again without idling */
	return net_next_deadline(st);
}

static void on_net_event(uint64_t events, void *arg)
{
	(void)events, (void)arg; /* the poller drains the ring every turn */
}

struct net_stack *dn_net_start(void)
{
	if (dn_nic_init() != DN_OK)
		return NULL;
	const struct dn_boot_info *bi = dn_boot_info();
	struct net_config cfg = {
		.ip = bi->ip,
		.prefix = bi->prefix,
		.gateway = bi->gateway,
		/* Different on every boot: the TSC at start mixed with this NIC's address. */
		.secret = dn_rdtsc() * 0x9e3779b97f4a7c15ull,
	};
	for (int i = 0; i < 6; i++) {
		cfg.mac[i] = bi->mac[i];
		cfg.secret ^= (uint64_t)bi->mac[i] << (8 * i);
	}
	struct net_driver drv = {.tx = nic_tx, .now_ns = clock_now, .ctx = NULL};
	net_init(&stack, &cfg, &drv);
	dn_loop_on(DN_EV_NET, on_net_event, NULL);
	dn_loop_add_poller(net_poller, &stack);
	return &stack;
}
