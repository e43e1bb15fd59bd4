/* The guest event loop: event callbacks, timers, and idle with the earliest timer as the
 * deadline, so that a service with nothing to do costs the host nothing. */
#include <denali.h>
#include <stdint.h>

#define LOOP_HANDLERS 8

static struct {
	uint64_t mask;
	dn_event_fn fn;
	void *arg;
} handlers[LOOP_HANDLERS];
static unsigned nhandlers;
#define LOOP_POLLERS 4
static struct {
	dn_poll_fn fn;
	void *arg;
} pollers[LOOP_POLLERS];
static unsigned npollers;
static struct dn_timer *timers; /* sorted by deadline */
static int stopping;

void dn_timer_cancel(struct dn_timer *t)
{
	for (struct dn_timer **p = &timers; *p; p = &(*p)->next)
		if (*p == t) {
			*p = t->next;
			break;
		}
	t->armed = 0;
}

void dn_timer_start(struct dn_timer *t, uint64_t deadline_ns, dn_timer_fn fn, void *arg)
{
	if (t->armed)
		dn_timer_cancel(t);
	t->deadline_ns = deadline_ns;
	t->fn = fn;
	t->arg = arg;
	t->armed = 1;
	struct dn_timer **p = &timers;
	while (*p && (*p)->deadline_ns <= deadline_ns)
		p = &(*p)->next;
	t->next = *p;
	*p = t;
}

int dn_loop_on(uint64_t events, dn_event_fn fn, void *arg)
{
	if (nhandlers == LOOP_HANDLERS)
		return DN_E_INVAL;
	handlers[nhandlers].mask = events;
	handlers[nhandlers].fn = fn;
	handlers[nhandlers].arg = arg;
	nhandlers++;
	return DN_OK;
}

int dn_loop_add_poller(dn_poll_fn fn, void *arg)
{
	if (npollers == LOOP_POLLERS)
		return DN_E_INVAL;
	pollers[npollers].fn = fn;
	pollers[npollers].arg = arg;
	npollers++;
	return DN_OK;
}

/* Runs every poller; returns the earliest deadline they asked for. */
static uint64_t run_pollers(void)
{
	uint64_t deadline = UINT64_MAX;
	for (unsigned i = 0; i < npollers && !stopping; i++) {
		uint64_t d = pollers[i].fn(pollers[i].arg);
		if (d < deadline)
			deadline = d;
	}
	return deadline;
}

void dn_loop_stop(void)
{
	stopping = 1;
}

static void dispatch(uint64_t events)
{
	for (unsigned i = 0; i < nhandlers && events; i++)
		if (events & handlers[i].mask)
			handlers[i].fn(events & handlers[i].mask, handlers[i].arg);
}

/* Runs every due timer; returns 1 if any ran. */
static int run_timers(void)
{
	int ran = 0;
	uint64_t now = dn_time_ns();
	while (timers && timers->deadline_ns <= now && !stopping) {
		struct dn_timer *t = timers;
		timers = t->next;
		t->armed = 0;
		t->fn(t->arg);
		ran = 1;
	}
	return ran;
}

void dn_loop_run(void)
{
	stopping = 0;
	uint64_t ev = 0;
	while (!stopping) {
		ev |= dn_events_take(); /* no exit: events raised while we ran */
		if (ev)
			dispatch(ev);
		int ran = run_timers();
		uint64_t deadline = run_pollers();
		if (timers && timers->deadline_ns < deadline)
			deadline = timers->deadline_ns;
		if (stopping)
			break;
		if (ev || ran || deadline <= dn_time_ns()) {
			ev = 0;
			/* Going round without an idle: send what was queued. */
			dn_nic_flush();
			dn_disk_kick();
			continue;
		}
		ev = dn_idle(deadline);
	}
}
