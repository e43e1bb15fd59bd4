/* The hypercall table: every hypercall the monitor answers, registered in one place, and the
 * dispatcher that copies each argument struct in once and back out once. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "service.h"
#include "stats.h"

/* A service that could not sleep yet (disk work, an event) tries again this much later. */
#define SLEEP_RETRY_NS 10000000

typedef enum vcpu_action (*vmm_hypercall_fn)(struct vmm_service *svc, void *args);

struct vmm_hypercall {
	const char *name;
	size_t arg_size;
	vmm_hypercall_fn handle;
};

/* Copies text from the guest into out (NUL-terminated), making it printable. */
static void copy_printable(char *out, size_t outlen, const uint8_t *src, size_t len)
{
	if (len >= outlen)
		len = outlen - 1;
	for (size_t i = 0; i < len; i++)
		out[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? (char)src[i] : '?';
	out[len] = '\0';
}

static enum vcpu_action bad_buffer(struct vmm_service *svc, const char *call, const char *what,
				   uint64_t gpa, uint64_t len)
{
	enum guestmem_check c = guestmem_range_check(svc->mem.size, gpa, len, 1);
	return vmm_service_halt(
		svc, VMM_OUTCOME_STOPPED, 0, "hypercall %s: %s [0x%llx, +0x%llx) %s", call, what,
		(unsigned long long)gpa, (unsigned long long)len, guestmem_check_str(c));
}

/* The memory file could not back a guest page the monitor touched. */
static enum vcpu_action unbacked(struct vmm_service *svc, uint64_t gpa)
{
	return vmm_service_halt(
		svc, VMM_OUTCOME_HOST_ERROR, 0,
		"guest memory near 0x%llx cannot be backed by %s (is its filesystem "
		"full?)",
		(unsigned long long)gpa, svc->mem.path);
}

static enum vcpu_action hc_console(struct vmm_service *svc, void *args)
{
	struct dn_hc_console *a = args;
	if (a->len > DN_CONSOLE_MAX) {
		a->status = DN_E_INVAL;
		return VCPU_CONTINUE;
	}
	const char *buf = guestmem_user_ptr(&svc->mem, a->buf, a->len, 1);
	if (!buf)
		return bad_buffer(svc, "console", "buffer", a->buf, a->len);
	char text[DN_CONSOLE_MAX];
	if (guestmem_copy(text, buf, a->len) != 0)
		return unbacked(svc, a->buf);
	if (a->len && !svc->first_console_ns)
		svc->first_console_ns = clock_mono_ns();
	vmm_console_write(&svc->console, text, a->len);
	a->status = DN_OK;
	return VCPU_CONTINUE;
}

static enum vcpu_action hc_exit(struct vmm_service *svc, void *args)
{
	const struct dn_hc_exit *a = args;
	if (a->status < 0 || a->status > DN_EXIT_STATUS_MAX)
		return vmm_service_halt(svc, VMM_OUTCOME_STOPPED, 0,
					"exit status %d is outside 0-%d", a->status,
					DN_EXIT_STATUS_MAX);
	return vmm_service_halt(svc, VMM_OUTCOME_EXITED, a->status, "exited with status %d",
				a->status);
}

static enum vcpu_action hc_abort(struct vmm_service *svc, void *args)
{
	const struct dn_hc_abort *a = args;
	uint32_t len = a->len < DN_ABORT_MSG_MAX ? a->len : DN_ABORT_MSG_MAX;
	const uint8_t *msg = guestmem_user_ptr(&svc->mem, a->msg, len, 1);
	if (!msg)
		return bad_buffer(svc, "abort", "message", a->msg, len);
	uint8_t raw[DN_ABORT_MSG_MAX];
	if (guestmem_copy(raw, msg, len) != 0)
		return unbacked(svc, a->msg);
	char text[DN_ABORT_MSG_MAX + 1];
	copy_printable(text, sizeof(text), raw, len);
	return vmm_service_halt(svc, VMM_OUTCOME_STOPPED, 0, "aborted: %s", text);
}

/* Takes every pending event for the guest. */
static uint64_t take_events(struct vmm_service *svc)
{
	uint64_t ev = __atomic_exchange_n(&svc->vregs->pending, 0, __ATOMIC_SEQ_CST);
	svc->stats.events_delivered += (uint64_t)__builtin_popcountll(ev);
	return ev;
}

/* Waits for an event, a stop request or the deadline. The kick signal stays blocked except
 * inside ppoll, so a kick between the last check and the wait cannot be lost. A service that
 * swaps goes to sleep (swapped out, holding nothing) once it has idled for its idle_after, or
 * when the memory budget asks: then *asleep is set, and the idle is finished at wake. */
static uint64_t idle_wait(struct vmm_service *svc, int64_t deadline, int *asleep)
{
	sigset_t kick, unblocked;
	sigemptyset(&kick);
	sigaddset(&kick, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &kick, &unblocked);
	sigdelset(&unblocked, VCPU_KICK_SIGNAL);
	uint64_t ev = 0;
	__atomic_add_fetch(&svc->idle_seq, 1, __ATOMIC_RELEASE);
	const int64_t idle_after = (int64_t)svc->cfg->swap.idle_after_ns;
	int64_t swap_at = svc->cfg->swap.enabled ? clock_mono_ns() + idle_after : INT64_MAX;
	int64_t retry_at = INT64_MIN; /* a sleep that was put off (busy): not tried before this */
	for (;;) {
		int64_t timer = vmm_service_timer_poll(svc);
		ev = take_events(svc);
		if (ev || svc->vcpu.stop_requested)
			break;
		int64_t now = clock_mono_ns();
		if (now >= deadline)
			break;
		int64_t next = timer < deadline ? timer : deadline;
		int asked = __atomic_load_n(&svc->swap_asked, __ATOMIC_ACQUIRE) ||
			    __atomic_load_n(&svc->save_asked, __ATOMIC_ACQUIRE);
		if ((now >= swap_at || asked) && now >= retry_at && !svc->swap.disabled) {
			if (!asked && next - now < idle_after) {
				/* It wakes again soon: a swap now would be undone at once. */
				swap_at = INT64_MAX;
				continue;
			}
			char why[256];
			int slept = vmm_service_sleep(svc, why, sizeof(why));
			if (slept == 1) {
				/* Asked once, done: awake again, it stays until asked again. */
				__atomic_store_n(&svc->swap_asked, 0, __ATOMIC_RELEASE);
				__atomic_store_n(&svc->save_asked, 0, __ATOMIC_RELEASE);
				*asleep = 1;
				break;
			}
			if (slept < 0) {
				/* It runs on in memory, and is not swapped again (one message). */
				fprintf(stderr, "denali-run: %s: %s; it stays in memory\n",
					svc->cfg->name, why);
				svc->swap.disabled = 1;
			}
			/* Busy (disk work, an event): look again a little later. The budget asks
			 * again if it still needs to; a save stays asked, at a later idle if this
			 * one ends first (a stop under --resume waits for it until --grace ends).
			 */
			__atomic_store_n(&svc->swap_asked, 0, __ATOMIC_RELEASE);
			if (slept < 0)
				__atomic_store_n(&svc->save_asked, 0, __ATOMIC_RELEASE);
			swap_at = slept == 0 && (asked || swap_at != INT64_MAX)
					  ? now + SLEEP_RETRY_NS
					  : INT64_MAX;
			retry_at = now + SLEEP_RETRY_NS;
			continue;
		}
		int64_t wake = next;
		if (!svc->swap.disabled) {
			int64_t due = asked ? now : swap_at;
			due = due > retry_at ? due : retry_at;
			wake = due < wake ? due : wake;
		}
		struct timespec ts = clock_timespec(wake - now);
		/* The switch writes the wake eventfd when it raises DN_EV_NET. */
		struct pollfd nic = {.fd = svc->nic_wake_fd, .events = POLLIN};
		if (ppoll(&nic, svc->nic ? 1 : 0, &ts, &unblocked) > 0) {
			uint64_t count;
			if (read(svc->nic_wake_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
				break;
		}
	}
	__atomic_add_fetch(&svc->idle_seq, 1, __ATOMIC_RELEASE);
	pthread_sigmask(SIG_SETMASK, &unblocked, NULL);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);
	vcpu_take_kicks(&svc->vcpu); /* the kicks that woke us are handled */
	return ev;
}

/* Parks the idle call of a service that went to sleep; it is finished at wake. */
static enum vcpu_action suspend_idle(struct vmm_service *svc, const struct dn_hc_idle *a)
{
	svc->idle_call = *a;
	svc->idle_arg = svc->hc_arg;
	return VCPU_SUSPEND;
}

static enum vcpu_action hc_idle(struct vmm_service *svc, void *args)
{
	struct dn_hc_idle *a = args;
	a->events = 0;
	if (a->reserved != 0) {
		a->status = DN_E_INVAL;
		return VCPU_CONTINUE;
	}
	a->status = DN_OK;
	/* Frames and disk requests queued before an idle need no kick of their own. */
	vmm_service_nic_flush(svc);
	vmm_service_disk_flush(svc);
	int64_t deadline = vmm_service_host_time(svc, a->deadline_ns);
	if (deadline <= clock_mono_ns()) {
		vmm_service_timer_poll(svc); /* idle_wait polls it itself */
		a->events = take_events(svc);
		if (!a->events)
			sched_yield();
		return VCPU_CONTINUE;
	}
	svc->stats.idles++;
	int asleep = 0;
	a->events = idle_wait(svc, deadline, &asleep);
	if (asleep)
		return suspend_idle(svc, a);
	vmm_service_ran(svc);
	return VCPU_CONTINUE;
}

enum vcpu_action vmm_hypercall_idle_resume(struct vmm_service *svc)
{
	struct dn_hc_idle a = svc->idle_call;
	uint32_t arg = svc->idle_arg;
	svc->idle_arg = 0;
	int asleep = 0;
	a.events = idle_wait(svc, vmm_service_host_time(svc, a.deadline_ns), &asleep);
	if (asleep)
		return suspend_idle(svc, &a);
	vmm_service_ran(svc);
	/* The struct was checked when the call came in; the guest cannot move its RAM. */
	void *guest = guestmem_user_ptr(&svc->mem, arg, sizeof(a), 8);
	if (!guest || guestmem_copy(guest, &a, sizeof(a)) != 0)
		return unbacked(svc, arg);
	return VCPU_CONTINUE;
}

static enum vcpu_action hc_timer_set(struct vmm_service *svc, void *args)
{
	struct dn_hc_timer_set *a = args;
	if (a->reserved != 0) {
		a->status = DN_E_INVAL;
		return VCPU_CONTINUE;
	}
	vmm_service_timer_set(svc, a->deadline_ns);
	a->status = DN_OK;
	return VCPU_CONTINUE;
}

/* Every hypercall, by number. A duplicate entry is a compile error (-Woverride-init). */
static const struct vmm_hypercall hypercalls[DN_HC_MAX] = {
	[DN_HC_CONSOLE] = {"console", sizeof(struct dn_hc_console), hc_console},
	[DN_HC_EXIT] = {"exit", sizeof(struct dn_hc_exit), hc_exit},
	[DN_HC_ABORT] = {"abort", sizeof(struct dn_hc_abort), hc_abort},
	[DN_HC_IDLE] = {"idle", sizeof(struct dn_hc_idle), hc_idle},
	[DN_HC_TIMER_SET] = {"timer_set", sizeof(struct dn_hc_timer_set), hc_timer_set},
};

const char *vmm_hypercall_name(unsigned nr)
{
	return nr < DN_HC_MAX ? hypercalls[nr].name : NULL;
}

#define HC_ARGS_MAX 64
_Static_assert(sizeof(struct dn_hc_console) <= HC_ARGS_MAX, "args buffer");
_Static_assert(sizeof(struct dn_hc_exit) <= HC_ARGS_MAX, "args buffer");
_Static_assert(sizeof(struct dn_hc_abort) <= HC_ARGS_MAX, "args buffer");
_Static_assert(sizeof(struct dn_hc_idle) <= HC_ARGS_MAX, "args buffer");
_Static_assert(sizeof(struct dn_hc_timer_set) <= HC_ARGS_MAX, "args buffer");

enum vcpu_action vmm_hypercall_dispatch(struct vmm_service *svc, unsigned nr, uint32_t arg)
{
	const struct vmm_hypercall *hc = nr < DN_HC_MAX ? &hypercalls[nr] : NULL;
	if (!hc || !hc->handle)
		return vmm_service_halt(svc, VMM_OUTCOME_STOPPED, 0, "unknown hypercall %u", nr);
	void *guest = guestmem_user_ptr(&svc->mem, arg, hc->arg_size, 8);
	if (!guest)
		return vmm_service_halt(svc, VMM_OUTCOME_STOPPED, 0,
					"hypercall %s: argument struct at 0x%x %s", hc->name, arg,
					guestmem_check_str(guestmem_range_check(svc->mem.size, arg,
										hc->arg_size, 8)));
	/* One copy in: the handler validates and acts on this copy only, never on guest memory
	 * that could change under it. */
	uint64_t copy[HC_ARGS_MAX / 8];
	if (guestmem_copy(copy, guest, hc->arg_size) != 0)
		return unbacked(svc, arg);
	svc->stats.hypercalls[nr]++;
	svc->hc_arg = arg;
	enum vcpu_action action = hc->handle(svc, copy);
	if (action == VCPU_CONTINUE && guestmem_copy(guest, copy, hc->arg_size) != 0)
		return unbacked(svc, arg);
	return action;
}
