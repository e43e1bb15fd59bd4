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
	while (!stopping) {
		uint64_t ev = dn_events_take(); /* no exit: events raised while we ran */
		if (ev) {
			dispatch(ev);
			dn_nic_flush(); /* going round without an idle: send what was queued */
			continue;
		}
		if (run_timers()) {
			dn_nic_flush();
			continue;
		}
		uint64_t deadline = timers ? timers->deadline_ns : UINT64_MAX;
		dispatch(dn_idle(deadline));
	}
}
