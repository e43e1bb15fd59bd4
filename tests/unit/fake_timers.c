/* Fake event-loop timers on the test wire's clock (see fake_timers.h). */
#include "fake_timers.h"

#include <stdint.h>

#include "denali.h"

static struct wire *clock_wire;
static struct dn_timer *fake_timers;

void fake_timers_use(struct wire *w)
{
	clock_wire = w;
	fake_timers = NULL;
}

uint64_t dn_time_ns(void)
{
	return clock_wire->now;
}

void dn_timer_cancel(struct dn_timer *t)
{
	for (struct dn_timer **p = &fake_timers; *p; p = &(*p)->next)
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
	t->next = fake_timers;
	fake_timers = t;
}

int fake_timers_fire(void)
{
	int ran = 0;
	for (int again = 1; again;) {
		again = 0;
		for (struct dn_timer *t = fake_timers; t; t = t->next)
			if (t->deadline_ns <= clock_wire->now) {
				dn_timer_cancel(t);
				t->fn(t->arg);
				ran++;
				again = 1;
				break;
			}
	}
	return ran;
}
