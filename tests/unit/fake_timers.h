/* The event loop's clock and timers (dn_time_ns, dn_timer_start, dn_timer_cancel), faked for
 * servers run on the test wire: time is the wire's, and due timers run only when the test
 * fires them. */
#ifndef FAKE_TIMERS_H
#define FAKE_TIMERS_H

#include "net_wire.h"

/* Takes the time from w and forgets every timer. */
void fake_timers_use(struct wire *w);

/* Runs the due timers; returns how many ran. */
int fake_timers_fire(void);

#endif
