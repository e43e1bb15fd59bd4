/* A vcpu thread's CPU quota: at most `quota` of CPU time in each `period` of wall time. The
 * thread measures its own CPU time (CLOCK_THREAD_CPUTIME_ID: guest time in KVM_RUN included),
 * and a CPU-time timer kicks it out of KVM_RUN when it has used its share, so that a guest that
 * never exits is held to it too; before it enters the guest again it sleeps to the end of the
 * period. Works wherever the monitor runs: no cgroup, no privilege. */
#ifndef VCPU_QUOTA_H
#define VCPU_QUOTA_H

#include <signal.h>
#include <stdint.h>
#include <time.h>

#define VCPU_QUOTA_PERIOD_MS_MIN 10u
#define VCPU_QUOTA_PERIOD_MS_MAX 1000u
#define VCPU_QUOTA_PERIOD_MS_DEFAULT 100u

struct vcpu_quota {
	uint64_t quota_ns, period_ns; /* quota_ns 0: no quota */
	uint64_t period_start;	      /* monotonic ns */
	uint64_t cpu_at_start;	      /* the thread's CPU time then */
	timer_t timer;		      /* on the thread's CPU clock: the kick at the quota */
	int timer_created;
	uint64_t throttled_ns; /* time slept for the quota */
	uint64_t throttles;    /* periods in which it used its quota and slept */
};

/* On the thread to be limited: percent (1..100) of one CPU in each period_ms; percent 0 or
 * 100: no quota (nothing is created). signo is sent to this thread when it has used its
 * quota (the vcpu's kick signal). Returns 0, or -1 with errno (timer_create). */
int vcpu_quota_start(struct vcpu_quota *q, unsigned percent, unsigned period_ms, int signo);

/* Before guest code runs again, on the limited thread: if this period's quota is used up,
 * sleeps until the period ends, unless *stop is set (checked again after each signal); then
 * arms the kick for when the new period's quota will be used. */
void vcpu_quota_enforce(struct vcpu_quota *q, const volatile sig_atomic_t *stop);

/* Deletes the timer (on any thread); the counters stay. */
void vcpu_quota_stop(struct vcpu_quota *q);

#endif
