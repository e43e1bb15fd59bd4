/* A vcpu thread's CPU quota, measured on its own CPU clock and enforced before guest entry. */
#include "vcpu_quota.h"

#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "clock.h"

int vcpu_quota_start(struct vcpu_quota *q, unsigned percent, unsigned period_ms, int signo)
{
	uint64_t throttled_ns = q->throttled_ns, throttles = q->throttles; /* across sleeps */
	memset(q, 0, sizeof(*q));
	q->throttled_ns = throttled_ns;
	q->throttles = throttles;
	if (percent == 0 || percent >= 100)
		return 0;
	q->period_ns = (uint64_t)period_ms * 1000000ull;
	q->quota_ns = q->period_ns * percent / 100;
	struct sigevent sev;
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = signo;
	sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
	if (timer_create(CLOCK_THREAD_CPUTIME_ID, &sev, &q->timer) != 0) {
		q->quota_ns = 0;
		return -1;
	}
	q->timer_created = 1;
	q->period_start = clock_ns_of(CLOCK_MONOTONIC);
	q->cpu_at_start = clock_ns_of(CLOCK_THREAD_CPUTIME_ID);
	return 0;
}

void vcpu_quota_enforce(struct vcpu_quota *q, const volatile sig_atomic_t *stop)
{
	if (!q->quota_ns)
		return;
	uint64_t now = clock_ns_of(CLOCK_MONOTONIC), cpu = clock_ns_of(CLOCK_THREAD_CPUTIME_ID);
	if (now - q->period_start >= q->period_ns) {
		q->period_start = now;
		q->cpu_at_start = cpu;
	} else if (cpu - q->cpu_at_start >= q->quota_ns) {
		/* Used up: the rest of the period is the others'. A signal (the guest's timer, a
		 * stop) cuts the sleep short; only a stop ends it. */
		q->throttles++;
		uint64_t end = q->period_start + q->period_ns;
		struct timespec until = clock_timespec((int64_t)end);
		while (!*stop &&
		       clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
			;
		uint64_t woke = clock_ns_of(CLOCK_MONOTONIC);
		q->throttled_ns += woke - now;
		q->period_start = woke > end ? woke : end;
		q->cpu_at_start = clock_ns_of(CLOCK_THREAD_CPUTIME_ID);
	}
	/* The kick when this period's quota is used: on the thread's CPU clock, absolute. */
	struct itimerspec its = {.it_value =
					 clock_timespec((int64_t)(q->cpu_at_start + q->quota_ns))};
	timer_settime(q->timer, TIMER_ABSTIME, &its, NULL);
}

void vcpu_quota_stop(struct vcpu_quota *q)
{
	if (q->timer_created)
		timer_delete(q->timer);
	q->timer_created = 0;
	q->quota_ns = 0;
}
