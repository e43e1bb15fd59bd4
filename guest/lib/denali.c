/* The Denali guest API over the hypercalls of abi.h. */
#include <denali.h>
#include <stdio.h>
#include <string.h>

int dn_console_write(const char *buf, size_t len)
{
	while (len > 0) {
		size_t n = len < DN_CONSOLE_MAX ? len : DN_CONSOLE_MAX;
		struct dn_hc_console hc = {.buf = (uint64_t)(uintptr_t)buf, .len = (uint32_t)n};
		dn_hypercall(DN_HC_CONSOLE, &hc);
		if (hc.status != DN_OK)
			return hc.status;
		buf += n;
		len -= n;
	}
	return DN_OK;
}

__attribute__((noreturn)) void dn_exit(int status)
{
	fflush(stdout);
	struct dn_hc_exit hc = {.status = status};
	for (;;)
		dn_hypercall(DN_HC_EXIT, &hc);
}

__attribute__((noreturn)) void dn_abort(const char *msg)
{
	fflush(stdout);
	struct dn_hc_abort hc = {.msg = (uint64_t)(uintptr_t)msg, .len = (uint32_t)strlen(msg)};
	for (;;)
		dn_hypercall(DN_HC_ABORT, &hc);
}

struct dn_vregs *dn_vregs(void)
{
	return (struct dn_vregs *)(uintptr_t)dn_boot_info()->vregs;
}

uint64_t dn_time_ns(void)
{
	const struct dn_vregs *vr = dn_vregs();
	uint64_t ticks = dn_rdtsc() - vr->tsc_base;
	return (uint64_t)(((unsigned __int128)ticks * vr->tsc_mul) >> 32);
}

static uint64_t deferred; /* events taken by a blocking call and kept for the loop */

void dn_events_defer(uint64_t events)
{
	deferred |= events;
}

uint64_t dn_events_take(void)
{
	uint64_t ev = deferred;
	deferred = 0;
	return ev | __atomic_exchange_n(&dn_vregs()->pending, 0, __ATOMIC_SEQ_CST);
}

int dn_timer_set(uint64_t deadline_ns)
{
	struct dn_hc_timer_set hc = {.deadline_ns = deadline_ns};
	dn_hypercall(DN_HC_TIMER_SET, &hc);
	return hc.status;
}

uint64_t dn_idle_hypercall(uint64_t deadline_ns)
{
	struct dn_hc_idle hc = {.deadline_ns = deadline_ns};
	/* The monitor kicks the NIC and the disk for what was queued before an idle. */
	dn_nic_idle_flushes();
	dn_disk_idle_kicks();
	dn_hypercall(DN_HC_IDLE, &hc);
	return hc.events;
}

uint64_t dn_idle(uint64_t deadline_ns)
{
	if (deferred)
		return dn_events_take();
	return dn_idle_hypercall(deadline_ns);
}
