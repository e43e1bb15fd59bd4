/* One service: its guest RAM, its VM and vcpu, its console, its events and timer, and how it
 * ended. */
#include "service.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "clock.h"
#include "sandbox.h"

static void fill_boot_info(struct vmm_service *svc, const struct vmm_image *img)
{
	struct dn_boot_info bi;
	memset(&bi, 0, sizeof(bi));
	bi.magic = DN_BOOT_MAGIC;
	bi.abi_version = DN_ABI_VERSION;
	bi.ram_size = svc->mem.size;
	bi.heap_start = img->end;
	bi.stack_top = svc->mem.size;
	bi.vregs = vcpu_sysarea_vregs_gpa();
	const struct vmm_net_config *net = &svc->cfg->net;
	if (net->enabled) {
		bi.nic = DN_GPA_IOWIN + DN_IOWIN_NIC;
		memcpy(bi.mac, net->mac, sizeof(bi.mac));
		bi.prefix = net->prefix;
		bi.ip = net->ip;
		bi.gateway = net->gateway;
		bi.dns = net->uplink == VNET_UPLINK_USER ? VNET_LAN_DNS : 0;
	}
	if (svc->disk)
		bi.disk = DN_GPA_IOWIN + DN_IOWIN_DISK;
	snprintf(bi.name, sizeof(bi.name), "%s", svc->cfg->name);
	/* The config bounded argc and the total length, so this cannot overflow args. */
	size_t off = 0;
	for (uint32_t i = 0; i < svc->cfg->argc; i++) {
		size_t n = strlen(svc->cfg->args[i]) + 1;
		memcpy(bi.args + off, svc->cfg->args[i], n);
		off += n;
	}
	bi.argc = svc->cfg->argc;
	bi.args_len = (uint32_t)off;
	memcpy(svc->mem.host + vcpu_sysarea_boot_info_gpa(), &bi, sizeof(bi));
}

static void fill_vregs(struct vmm_service *svc)
{
	svc->vregs = (struct dn_vregs *)(svc->mem.host + vcpu_sysarea_vregs_gpa());
	memset(svc->vregs, 0, sizeof(*svc->vregs));
	svc->vregs->tsc_hz = svc->vcpu.tsc_hz;
	svc->vregs->tsc_base = svc->vcpu.tsc_base;
	svc->vregs->tsc_mul = (uint64_t)(((unsigned __int128)1000000000u << 32) / svc->vcpu.tsc_hz);
}

struct load_args {
	struct vmm_service *svc;
	const struct vmm_image *img;
};

/* Writes the system area and the image: the first touches of the memory file. Also backs the
 * virtual-register page, which the monitor writes from now on: a full filesystem is found
 * here, not as a SIGBUS later. */
static void load_ram(void *arg)
{
	struct load_args *l = arg;
	vcpu_sysarea_build(l->svc->mem.host, l->svc->mem.size);
	vmm_image_copy(l->img, l->svc->mem.host);
	memset(l->svc->mem.host + vcpu_sysarea_vregs_gpa(), 0, sizeof(struct dn_vregs));
}

/* Has KVM signal fd when the guest writes the 32-bit port (again for each new VM). */
static int port_register(struct vmm_service *svc, uint16_t port, int fd, char *err, size_t errlen)
{
	struct kvm_ioeventfd io = {
		.addr = port,
		.len = 4,
		.fd = fd,
		.flags = KVM_IOEVENTFD_FLAG_PIO,
	};
	if (ioctl(svc->vcpu.vm_fd, KVM_IOEVENTFD, &io) != 0) {
		snprintf(err, errlen, "KVM_IOEVENTFD: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Registers a new eventfd that KVM signals when the guest writes the 32-bit port. */
static int port_eventfd(struct vmm_service *svc, uint16_t port, int *fd, char *err, size_t errlen)
{
	*fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (*fd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		return -1;
	}
	return port_register(svc, port, *fd, err, errlen);
}

/* Backs guest RAM pages that another thread or process writes: fallocate, or zeros written
 * where the filesystem has no fallocate (9p). 0, or -1 with errno. */
static int reserve_pages(struct vmm_service *svc, off_t offset, off_t len)
{
	if (fallocate(svc->mem.fd, 0, offset, len) == 0)
		return 0;
	if (errno != EOPNOTSUPP)
		return -1;
	static const uint8_t zeros[DN_PAGE_SIZE];
	for (off_t done = 0; done < len; done += DN_PAGE_SIZE)
		if (pwrite(svc->mem.fd, zeros, DN_PAGE_SIZE, offset + done) != DN_PAGE_SIZE)
			return -1;
	return 0;
}

/* The NIC's two eventfds; the kick is signalled by KVM itself when the guest writes the kick
 * port, with no exit to the monitor. */
static int nic_create(struct vmm_service *svc, int waking, char *err, size_t errlen)
{
	svc->nic = (struct dn_nic *)(svc->mem.host + DN_GPA_IOWIN + DN_IOWIN_NIC);
	/* The switch writes the NIC page from the supervisor: back it now, so that a full
	 * filesystem is this service's start-up error and never a SIGBUS there. (At wake it
	 * is backed, and holds the rings.) */
	if (!waking && reserve_pages(svc, DN_GPA_IOWIN + DN_IOWIN_NIC, DN_PAGE_SIZE) != 0) {
		snprintf(err, errlen, "cannot reserve the NIC's page in %s: %s", svc->mem.path,
			 strerror(errno));
		return -1;
	}
	svc->nic_wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (svc->nic_wake_fd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		return -1;
	}
	return port_eventfd(svc, DN_NIC_KICK_PORT, &svc->nic_kick_fd, err, errlen);
}

static void disk_raise(void *ctx)
{
	vmm_service_raise(ctx, DN_EV_DISK);
}

static void disk_halt(void *ctx, const char *reason)
{
	vmm_service_request_halt(ctx, reason);
}

/* The disk: its rings in the I/O window, its kick port, its image and io_uring, handed to the
 * cell's disk worker. */
static int disk_create(struct vmm_service *svc, struct vdisk_worker *worker, int waking, char *err,
		       size_t errlen)
{
	const struct vmm_disk_config *dc = &svc->cfg->disk;
	if (!worker) {
		snprintf(err, errlen, "its cell has no disk worker");
		return -1;
	}
	/* The worker writes the ring pages: back them now, so that a full filesystem is this
	 * service's start-up error and never a SIGBUS there. */
	off_t ring_bytes =
		(off_t)((sizeof(struct dn_disk) + DN_PAGE_SIZE - 1) & ~(DN_PAGE_SIZE - 1));
	if (!waking && reserve_pages(svc, DN_GPA_IOWIN + DN_IOWIN_DISK, ring_bytes) != 0) {
		snprintf(err, errlen, "cannot reserve the disk's pages in %s: %s", svc->mem.path,
			 strerror(errno));
		return -1;
	}
	if (port_eventfd(svc, DN_DISK_KICK_PORT, &svc->disk_kick_fd, err, errlen) != 0)
		return -1;
	svc->disk = calloc(1, sizeof(*svc->disk));
	if (!svc->disk) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	struct vdisk_dev_hooks hooks = {
		.ctx = svc, .raise = disk_raise, .halt = disk_halt, .name = svc->cfg->name};
	struct dn_disk *shared = (struct dn_disk *)(svc->mem.host + DN_GPA_IOWIN + DN_IOWIN_DISK);
	int flags = dc->readonly ? VDISK_OPEN_READONLY : 0;
	/* At wake, the same image and its ring counters as before; the supervisor held its lock. */
	int rc =
		waking ? vdisk_dev_reopen(svc->disk, dc->path, flags, shared, svc->mem.host,
					  svc->mem.size, svc->disk_kick_fd, &hooks,
					  &svc->disk_saved, err, errlen)
		       : vdisk_dev_open(svc->disk, dc->path, dc->size, flags, shared, svc->mem.host,
					svc->mem.size, svc->disk_kick_fd, &hooks, err, errlen);
	if (rc != 0) {
		free(svc->disk);
		svc->disk = NULL;
		return -1;
	}
	vdisk_dev_set_limit(svc->disk, &dc->limit);
	svc->stats.disk_present = 1;
	return 0;
}

/* Hands the disk to the worker: from here on it may raise events in the vregs. */
static int disk_attach(struct vmm_service *svc, char *err, size_t errlen)
{
	svc->disk_port = vdisk_worker_attach(svc->disk_worker, svc->disk, err, errlen);
	return svc->disk_port ? 0 : -1;
}

int vmm_service_start(struct vmm_service *svc, const struct vmm_service_config *cfg,
		      const struct vmm_image *img, const struct vcpu_kvm *kvm,
		      const char *state_dir, const char *console_prefix,
		      struct vdisk_worker *disk_worker, char *err, size_t errlen)
{
	memset(svc, 0, sizeof(*svc));
	svc->cfg = cfg;
	svc->kvm = kvm;
	svc->disk_worker = disk_worker;
	/* A service swapped out only for the memory budget prefetches its working set. */
	svc->swap.prefetch = cfg->swap.enabled ? cfg->swap.prefetch : 1;
	svc->vcpu.fd = svc->vcpu.vm_fd = -1;
	svc->nic_kick_fd = svc->nic_wake_fd = svc->disk_kick_fd = svc->held_disk_fd = -1;
	vmm_console_init(&svc->console, 1, console_prefix);
	svc->console.cancel = &svc->vcpu.stop_requested;
	if (guestmem_open(&svc->mem, state_dir, cfg->name, cfg->ram_size, err, errlen) != 0)
		return -1;
	struct load_args load = {svc, img};
	if (guestmem_protected(load_ram, &load) != 0) {
		snprintf(err, errlen, "cannot write guest memory to %s (is its filesystem full?)",
			 svc->mem.path);
		vmm_service_destroy(svc, 0);
		return -1;
	}
	if (vcpu_create(&svc->vcpu, kvm, NULL, svc->mem.host, svc->mem.size, err, errlen) != 0 ||
	    vcpu_boot(&svc->vcpu, img->entry, svc->mem.size, vcpu_sysarea_boot_info_gpa(), err,
		      errlen) != 0 ||
	    (cfg->net.enabled && nic_create(svc, 0, err, errlen) != 0) ||
	    (cfg->disk.enabled && disk_create(svc, disk_worker, 0, err, errlen) != 0)) {
		vmm_service_destroy(svc, 0);
		return -1;
	}
	fill_boot_info(svc, img);
	fill_vregs(svc);
	/* Last: from here on the disk worker may raise events in the vregs. */
	if (svc->disk && disk_attach(svc, err, errlen) != 0) {
		vmm_service_destroy(svc, 0);
		return -1;
	}
	svc->started_ns = clock_mono_ns();
	return 0;
}

int64_t vmm_service_host_time(const struct vmm_service *svc, uint64_t guest_ns)
{
	int64_t base = svc->vcpu.time_base_ns;
	uint64_t room = (uint64_t)(INT64_MAX - base);
	return guest_ns > room ? INT64_MAX : base + (int64_t)guest_ns;
}

void vmm_service_raise(struct vmm_service *svc, uint64_t events)
{
	uint64_t was = __atomic_fetch_or(&svc->vregs->pending, events, __ATOMIC_SEQ_CST);
	/* Every occurrence counts, also of an event already pending: the guest then takes several
	 * in one delivery (batching). */
	__atomic_fetch_add(&svc->stats.events_raised, (uint64_t)__builtin_popcountll(events),
			   __ATOMIC_RELAXED);
	/* An event already pending was kicked for when it was raised, and the guest has not
	 * taken it yet: it will see this one with it. Unless it has virtual interrupts on: then
	 * the kick that came while its handler ran (vif 0) delivered nothing, and this one must. */
	int fresh = (events & ~was) || __atomic_load_n(&svc->vregs->vif, __ATOMIC_RELAXED);
	if (fresh && !pthread_equal(svc->vcpu.thread, pthread_self()))
		vcpu_kick(&svc->vcpu);
}

/* The POSIX timer signals the vcpu thread itself, so a running guest leaves KVM_RUN and an
 * idle one wakes; the timer is then polled on that thread. */
static int timer_create_for_thread(struct vmm_service *svc)
{
	struct sigevent sev;
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = VCPU_KICK_SIGNAL;
	sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
	if (timer_create(CLOCK_MONOTONIC, &sev, &svc->timer) != 0)
		return -1;
	svc->timer_created = 1;
	return 0;
}

void vmm_service_timer_set(struct vmm_service *svc, uint64_t deadline_ns)
{
	svc->timer_deadline_ns = deadline_ns;
	if (!svc->timer_created)
		return;
	struct itimerspec its;
	memset(&its, 0, sizeof(its));
	if (deadline_ns) {
		int64_t host = vmm_service_host_time(svc, deadline_ns);
		its.it_value = clock_timespec(host);
		if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
			its.it_value.tv_nsec = 1;
	}
	timer_settime(svc->timer, TIMER_ABSTIME, &its, NULL);
}

int64_t vmm_service_timer_poll(struct vmm_service *svc)
{
	if (!svc->timer_deadline_ns)
		return INT64_MAX;
	int64_t due = vmm_service_host_time(svc, svc->timer_deadline_ns);
	if (clock_mono_ns() < due)
		return due;
	svc->timer_deadline_ns = 0;
	vmm_service_raise(svc, DN_EV_TIMER);
	return INT64_MAX;
}

/* Delivers a virtual interrupt if events are pending and the guest enabled them. The guest
 * owns vregs, so its fields are read once and the handler is checked like any guest pointer. */
static enum vcpu_action deliver_interrupt(struct vmm_service *svc)
{
	struct dn_vregs *vr = svc->vregs;
	if (!__atomic_load_n(&vr->pending, __ATOMIC_ACQUIRE) ||
	    !__atomic_load_n(&vr->vif, __ATOMIC_ACQUIRE))
		return VCPU_CONTINUE;
	uint64_t handler = __atomic_load_n(&vr->handler, __ATOMIC_RELAXED);
	if (!handler)
		return VCPU_CONTINUE;
	if (!guestmem_user_ptr(&svc->mem, handler, 1, 1))
		return vmm_service_halt(
			svc, VMM_OUTCOME_STOPPED, 0,
			"virtual interrupt handler 0x%llx lies outside the guest's RAM",
			(unsigned long long)handler);
	uint64_t rip, rsp, rflags;
	if (vcpu_divert(&svc->vcpu, handler, &rip, &rsp, &rflags) != 0)
		return vmm_service_halt(svc, VMM_OUTCOME_HOST_ERROR, 0, "KVM_SET_REGS: %s",
					strerror(errno));
	vr->saved_rip = rip;
	vr->saved_rsp = rsp;
	vr->saved_rflags = rflags;
	__atomic_store_n(&vr->vif, 0, __ATOMIC_RELEASE);
	vr->deliveries = ++svc->stats.interrupts;
	return VCPU_CONTINUE;
}

static enum vcpu_action before_entry(void *ctx)
{
	struct vmm_service *svc = ctx;
	if (svc->quota.quota_ns) {
		vcpu_quota_enforce(&svc->quota, &svc->vcpu.stop_requested);
		__atomic_store_n(&svc->stats.cpu_throttled_ns, svc->quota.throttled_ns,
				 __ATOMIC_RELAXED);
	}
	vmm_service_timer_poll(svc);
	return deliver_interrupt(svc);
}

static enum vcpu_action hypercall(void *ctx, unsigned nr, uint32_t arg)
{
	return vmm_hypercall_dispatch(ctx, nr, arg);
}

static const struct vcpu_ops service_vcpu_ops = {
	.hypercall = hypercall,
	.before_entry = before_entry,
};

void vmm_service_run(struct vmm_service *svc)
{
	vcpu_bind_thread(&svc->vcpu);
	uint64_t cpu0 = clock_ns_of(CLOCK_THREAD_CPUTIME_ID);
	svc->run_cpu0 = cpu0;
	if (timer_create_for_thread(svc) != 0) {
		svc->outcome.kind = VMM_OUTCOME_HOST_ERROR;
		snprintf(svc->outcome.reason, sizeof(svc->outcome.reason), "timer_create: %s",
			 strerror(errno));
		return;
	}
	if (svc->timer_deadline_ns) /* armed before it slept: on this thread now */
		vmm_service_timer_set(svc, svc->timer_deadline_ns);
	if (vcpu_quota_start(&svc->quota, svc->cfg->cpu_limit.percent,
			     svc->cfg->cpu_limit.period_ms, VCPU_KICK_SIGNAL) != 0) {
		svc->outcome.kind = VMM_OUTCOME_HOST_ERROR;
		snprintf(svc->outcome.reason, sizeof(svc->outcome.reason),
			 "timer_create (cpu_limit): %s", strerror(errno));
		return;
	}
	/* Its VM is built or woken: sealed before the first guest instruction (and before
	 * vmm_hypercall_idle_resume reads its memory). Privileges and Landlock (src/sandbox) come
	 * just before this, with the cell's. Once sealed, the thread never builds a VM again. */
	if (!sandbox_thread_sealed()) {
		sandbox_set_service(svc->cfg->name);
		sandbox_seal_or_exit(SANDBOX_VCPU);
	}
	struct vcpu_stop stop;
	memset(&stop, 0, sizeof(stop));
	enum vcpu_action woke = svc->idle_arg ? vmm_hypercall_idle_resume(svc) : VCPU_CONTINUE;
	if (woke == VCPU_CONTINUE)
		vcpu_run(&svc->vcpu, &service_vcpu_ops, svc, &stop);
	else
		stop.kind = woke == VCPU_HALT ? VCPU_STOP_HANDLER : VCPU_STOP_SUSPENDED;
	svc->stats.cpu_ns += clock_ns_of(CLOCK_THREAD_CPUTIME_ID) - cpu0;
	vcpu_quota_stop(&svc->quota);
	svc->stats.cpu_throttled_ns = svc->quota.throttled_ns;
	if (stop.kind == VCPU_STOP_SUSPENDED) {
		svc->asleep = 1; /* the caller releases it */
		return;
	}
	/* The guest is still: let its last disk requests finish, so the counters are final. */
	if (svc->disk_port) {
		vdisk_worker_detach(svc->disk_port);
		svc->disk_port = NULL;
		svc->stats.disk = svc->disk->stats;
	}
	struct vmm_outcome *o = &svc->outcome;
	switch (stop.kind) {
	case VCPU_STOP_HANDLER: break; /* the handler filled the outcome */
	case VCPU_STOP_REQUESTED:
		o->kind = (enum vmm_outcome_kind)svc->stop_kind;
		o->status = svc->stop_signal;
		o->has_rip = 1;
		o->rip = stop.rip;
		if (o->kind == VMM_OUTCOME_STOPPED)
			snprintf(o->reason, sizeof(o->reason), "%s", svc->stop_reason);
		break;
	case VCPU_STOP_SUSPENDED: /* returned above */
	case VCPU_STOP_FAULT:
	case VCPU_STOP_HOST:
		o->kind =
			stop.kind == VCPU_STOP_FAULT ? VMM_OUTCOME_STOPPED : VMM_OUTCOME_HOST_ERROR;
		o->has_rip = stop.kind == VCPU_STOP_FAULT;
		o->rip = stop.rip;
		snprintf(o->reason, sizeof(o->reason), "%s", stop.reason);
		break;
	}
	vmm_console_flush(&svc->console);
	memcpy(svc->stats.exits, svc->vcpu.exits, sizeof(svc->stats.exits));
	svc->stats.wall_ns = (uint64_t)(clock_mono_ns() - svc->started_ns);
	/* What it holds, as the memory budget counts it: the pages this process has mapped. */
	svc->stats.resident_peak_bytes =
		swap_count_mapped(svc->mem.host, svc->mem.size) * DN_PAGE_SIZE;
	swap_count_faults(&svc->swap);
	svc->stats.swap = svc->swap.stats;
}

/* Records why the service stops, if nothing has yet: the first request wins, whichever thread
 * (or signal handler) makes it. Returns 1 for the winner. */
static int claim_stop(struct vmm_service *svc, enum vmm_outcome_kind kind, int signo)
{
	sig_atomic_t none = VMM_OUTCOME_NONE;
	if (!__atomic_compare_exchange_n(&svc->stop_kind, &none, (sig_atomic_t)kind, 0,
					 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		return 0;
	svc->stop_signal = signo;
	return 1;
}

void vmm_service_request_stop(struct vmm_service *svc, enum vmm_outcome_kind kind, int signo)
{
	claim_stop(svc, kind, signo);
	vcpu_request_stop(&svc->vcpu);
}

enum vcpu_action vmm_service_halt(struct vmm_service *svc, enum vmm_outcome_kind kind, int status,
				  const char *fmt, ...)
{
	struct vmm_outcome *o = &svc->outcome;
	o->kind = kind;
	o->status = status;
	o->has_rip = 1;
	o->rip = vcpu_rip(&svc->vcpu);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(o->reason, sizeof(o->reason), fmt, ap);
	va_end(ap);
	return VCPU_HALT;
}

void vmm_service_request_halt(struct vmm_service *svc, const char *reason)
{
	/* The reason is written only by the request that won, before the vcpu is told. */
	if (claim_stop(svc, VMM_OUTCOME_STOPPED, 0))
		snprintf(svc->stop_reason, sizeof(svc->stop_reason), "%s", reason);
	vcpu_request_stop(&svc->vcpu);
}

void vmm_service_nic_flush(struct vmm_service *svc)
{
	if (!svc->nic)
		return;
	uint32_t avail = __atomic_load_n(&svc->nic->tx.avail, __ATOMIC_ACQUIRE);
	if (avail == __atomic_load_n(&svc->nic->tx.used, __ATOMIC_ACQUIRE))
		return;
	uint64_t one = 1;
	if (write(svc->nic_kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		perror("denali-run: nic kick");
}

/* Saves what a later run needs to bring the sleeping service back; its memory is on disk. */
static void save_checkpoint(struct vmm_service *svc)
{
	struct checkpoint c;
	memset(&c, 0, sizeof(c)); /* padding included: the file is checksummed */
	c.ram_size = svc->mem.size;
	c.vcpu = svc->swap.vcpu;
	c.tsc_hz = svc->vcpu.tsc_hz;
	c.tsc_base = svc->vcpu.tsc_base;
	c.time_base_ns = svc->vcpu.time_base_ns;
	c.timer_deadline_ns = svc->timer_deadline_ns;
	c.wake_events = svc->wake_events;
	c.idle_call = svc->idle_call;
	c.idle_arg = svc->idle_arg;
	c.has_disk = svc->cfg->disk.enabled;
	c.disk = svc->disk_saved;
	c.working_set_pages = svc->swap.pages;
	char err[512];
	if (checkpoint_save(svc->mem.dir, &c, svc->swap.working_set, err, sizeof(err)) == 0 ||
	    svc->checkpoint_failed++)
		return;
	fprintf(stderr, "denali-run: %s: %s; --resume will not find it\n", svc->cfg->name, err);
}

/* Gives the disk back to the worker and the NIC back to the switch after a sleep that did not
 * happen. */
static void undo_sleep(struct vmm_service *svc, int nic_slept)
{
	char err[256];
	if (svc->disk && !svc->disk_port && disk_attach(svc, err, sizeof(err)) != 0)
		vmm_service_request_halt(svc, err);
	if (nic_slept && svc->host->nic_attach(svc->host->ctx, svc) != 0)
		vmm_service_request_halt(svc, "cannot hand its NIC back to the switch");
}

int vmm_service_sleep(struct vmm_service *svc, char *err, size_t errlen)
{
	if (!svc->locks_held) {
		snprintf(err, errlen, "the supervisor does not hold its files' locks");
		return -1;
	}
	/* Disk requests in flight write its RAM: only a quiet disk lets it sleep. */
	if (svc->disk_port) {
		vdisk_worker_detach(svc->disk_port);
		svc->disk_port = NULL;
		if (!vdisk_dev_quiet(svc->disk, &svc->disk_saved)) {
			undo_sleep(svc, 0);
			return 0;
		}
	}
	/* The switch drains its TX ring, lets go of its window and holds new frames. */
	if (svc->nic && svc->host->nic_sleep(svc->host->ctx, svc) != 0) {
		undo_sleep(svc, 0);
		snprintf(err, errlen, "the switch did not let go of its NIC");
		return -1;
	}
	/* A frame or a completion that came meanwhile: it has work. */
	if (__atomic_load_n(&svc->vregs->pending, __ATOMIC_SEQ_CST) || svc->vcpu.stop_requested) {
		undo_sleep(svc, svc->nic != NULL);
		return 0;
	}
	if (swap_out(&svc->swap, &svc->mem, &svc->vcpu, err, errlen) != 0) {
		undo_sleep(svc, svc->nic != NULL);
		return -1;
	}
	if (svc->persist)
		save_checkpoint(svc);
	return 1;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void vmm_service_release(struct vmm_service *svc)
{
	/* Here, not at sleep: live stats read the disk's counters while it runs. */
	if (svc->disk) {
		vdisk_dev_close(svc->disk);
		free(svc->disk);
		svc->disk = NULL;
	}
	vmm_console_release(&svc->console);
	if (svc->timer_created)
		timer_delete(svc->timer);
	svc->timer_created = 0;
	close_fd(&svc->disk_kick_fd);
	close_fd(&svc->nic_kick_fd);
	close_fd(&svc->nic_wake_fd);
	svc->nic = NULL;
	svc->vregs = NULL;
	guestmem_unmap(&svc->mem);
	svc->vcpu.ram = NULL;
}

int vmm_service_wake(struct vmm_service *svc, char *err, size_t errlen)
{
	err[0] = '\0';
	if (guestmem_remap(&svc->mem, err, errlen) != 0)
		return -1;
	/* Its memory changes from now on: the checkpoint must go first, durably. */
	if (svc->persist && checkpoint_discard(svc->mem.dir) != 0) {
		snprintf(err, errlen, "cannot remove its checkpoint in %s: %s", svc->mem.dir,
			 strerror(errno));
		return -1;
	}
	svc->vcpu.ram = svc->mem.host;
	/* The memory file lay in the state folder while it slept: its page tables, GDT, IDT, TSS
	 * and fault stub are written again as at boot, never taken as found. */
	vcpu_sysarea_rebuild(svc->mem.host, svc->mem.size);
	struct vcpu_shell spare;
	int spared = svc->host->take_spare && svc->host->take_spare(svc->host->ctx, &spare) == 0;
	if (swap_in(&svc->swap, &svc->mem, &svc->vcpu, svc->kvm, spared ? &spare : NULL, err,
		    errlen) != 0)
		return -1;
	svc->vregs = (struct dn_vregs *)(svc->mem.host + vcpu_sysarea_vregs_gpa());
	__atomic_fetch_or(&svc->vregs->pending, svc->wake_events, __ATOMIC_SEQ_CST);
	svc->wake_events = 0;
	/* The kick ports belong to the VM: the new one needs them again. */
	if (svc->cfg->net.enabled &&
	    (nic_create(svc, 1, err, errlen) != 0 || svc->host->nic_attach(svc->host->ctx, svc))) {
		if (!err[0])
			snprintf(err, errlen, "cannot hand its NIC to the switch");
		return -1;
	}
	if (svc->cfg->disk.enabled && (disk_create(svc, svc->disk_worker, 1, err, errlen) != 0 ||
				       disk_attach(svc, err, errlen) != 0))
		return -1;
	return 0;
}

/* Takes the locks of a restored service's files: its memory (locked by guestmem) and its disk
 * image, whose identity the disk record then holds. */
static int restore_files(struct vmm_service *svc, const struct checkpoint *c, char *err,
			 size_t errlen)
{
	if (c->ram_size != svc->cfg->ram_size) {
		snprintf(err, errlen, "its memory is %llu bytes now, but %llu when it was saved",
			 (unsigned long long)svc->cfg->ram_size, (unsigned long long)c->ram_size);
		return -1;
	}
	if (c->has_disk != svc->cfg->disk.enabled) {
		snprintf(err, errlen, "it had %s disk when it was saved", c->has_disk ? "a" : "no");
		return -1;
	}
	if (!svc->cfg->disk.enabled)
		return 0;
	const struct vmm_disk_config *dc = &svc->cfg->disk;
	/* Opened (and locked) here only to be handed to the supervisor with the memory file. */
	struct vdisk_file image;
	if (vdisk_file_open(&image, dc->path, 0, dc->readonly ? VDISK_OPEN_READONLY : 0, NULL, err,
			    errlen) != 0)
		return -1;
	svc->held_disk_fd = image.fd;
	svc->disk_saved = c->disk;
	svc->disk_saved.file_dev = image.dev;
	svc->disk_saved.file_ino = image.ino;
	svc->stats.disk_present = 1;
	return 0;
}

int vmm_service_restore(struct vmm_service *svc, const struct vmm_service_config *cfg,
			const struct vcpu_kvm *kvm, const char *state_dir,
			const char *console_prefix, struct vdisk_worker *disk_worker, char *err,
			size_t errlen)
{
	memset(svc, 0, sizeof(*svc));
	svc->cfg = cfg;
	svc->kvm = kvm;
	svc->disk_worker = disk_worker;
	svc->persist = 1;
	svc->swap.prefetch = cfg->swap.enabled ? cfg->swap.prefetch : 1;
	svc->vcpu.fd = svc->vcpu.vm_fd = -1;
	svc->nic_kick_fd = svc->nic_wake_fd = svc->disk_kick_fd = svc->held_disk_fd = -1;
	vmm_console_init(&svc->console, 1, console_prefix);
	svc->console.cancel = &svc->vcpu.stop_requested;
	char why[512];
	int saved = guestmem_open_saved(&svc->mem, state_dir, cfg->name, cfg->ram_size, why,
					sizeof(why));
	if (saved == 0)
		return 0;
	struct checkpoint c;
	uint8_t *working_set = NULL;
	int loaded =
		saved < 0 ? -1 : checkpoint_load(svc->mem.dir, &c, &working_set, why, sizeof(why));
	if (loaded <= 0 || restore_files(svc, &c, why, sizeof(why)) != 0) {
		if (loaded == 0) /* a memory file without a checkpoint: it was running */
			snprintf(err, errlen,
				 "no checkpoint to resume (lost when the last run was "
				 "killed while it ran)");
		else
			snprintf(err, errlen, "cannot resume it: %s", why);
		free(working_set);
		if (svc->mem.dir)
			checkpoint_discard(svc->mem.dir);
		vmm_service_destroy(svc, 0); /* lost: its files go */
		return -1;
	}
	svc->mem.size = c.ram_size;
	svc->vcpu.ram_size = c.ram_size;
	svc->vcpu.tsc_hz = c.tsc_hz;
	svc->vcpu.tsc_base = c.tsc_base;
	svc->vcpu.time_base_ns = c.time_base_ns;
	svc->vcpu.parked_rip = c.vcpu.regs.rip;
	svc->swap.vcpu = c.vcpu;
	svc->swap.working_set = working_set;
	svc->swap.pages = c.working_set_pages;
	svc->timer_deadline_ns = c.timer_deadline_ns;
	svc->wake_events = c.wake_events;
	svc->idle_call = c.idle_call;
	svc->idle_arg = c.idle_arg;
	svc->asleep = 1;
	svc->started_ns = clock_mono_ns();
	return 1;
}

void vmm_service_restored(struct vmm_service *svc)
{
	guestmem_unmap(&svc->mem);
	close_fd(&svc->held_disk_fd);
}

void vmm_service_ran(struct vmm_service *svc)
{
	if (svc->budget)
		__atomic_store_n(&svc->budget->last_run_ns, clock_mono_ns(), __ATOMIC_RELAXED);
}

void vmm_service_raise_asleep(struct vmm_service *svc, uint64_t events)
{
	svc->wake_events |= events;
	svc->stats.events_raised += (uint64_t)__builtin_popcountll(events);
}

void vmm_service_end_asleep(struct vmm_service *svc, enum vmm_outcome_kind kind, int status,
			    const char *reason)
{
	struct vmm_outcome *o = &svc->outcome;
	o->kind = kind;
	o->status = status;
	o->has_rip = 1;
	o->rip = svc->vcpu.parked_rip;
	snprintf(o->reason, sizeof(o->reason), "%s", reason ? reason : "");
	memcpy(svc->stats.exits, svc->vcpu.exits, sizeof(svc->stats.exits));
	svc->stats.wall_ns = (uint64_t)(clock_mono_ns() - svc->started_ns);
	svc->stats.swap = svc->swap.stats;
	if (svc->stats.disk_present)
		svc->stats.disk = svc->disk_saved.stats;
}

void vmm_service_stats_now(const struct vmm_service *svc, int running, uint64_t thread_cpu_ns,
			   struct vmm_service_stats *out)
{
	*out = svc->stats;
	memcpy(out->exits, svc->vcpu.exits, sizeof(out->exits));
	if (svc->started_ns)
		out->wall_ns = (uint64_t)(clock_mono_ns() - svc->started_ns);
	out->swap = svc->swap.stats;
	if (running && thread_cpu_ns > svc->run_cpu0)
		out->cpu_ns += thread_cpu_ns - svc->run_cpu0;
	if (out->disk_present)
		out->disk = running && svc->disk ? svc->disk->stats : svc->disk_saved.stats;
	if (svc->budget)
		out->resident_peak_bytes =
			__atomic_load_n(&svc->budget->resident_pages, __ATOMIC_RELAXED) *
			DN_PAGE_SIZE;
}

void vmm_service_disk_flush(struct vmm_service *svc)
{
	if (!svc->disk)
		return;
	struct dn_disk *shared = svc->disk->shared;
	if (__atomic_load_n(&shared->sq_avail, __ATOMIC_ACQUIRE) ==
	    __atomic_load_n(&shared->sq_used, __ATOMIC_ACQUIRE))
		return;
	uint64_t one = 1;
	if (write(svc->disk_kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		perror("denali-run: disk kick");
}

void vmm_service_destroy(struct vmm_service *svc, int keep_state)
{
	vmm_console_release(&svc->console);
	close_fd(&svc->held_disk_fd);
	/* In-flight disk requests write guest RAM: they finish before it is unmapped. */
	if (svc->disk_port)
		vdisk_worker_detach(svc->disk_port);
	svc->disk_port = NULL;
	if (svc->disk) {
		vdisk_dev_close(svc->disk);
		free(svc->disk);
		svc->disk = NULL;
	}
	if (svc->disk_kick_fd >= 0)
		close(svc->disk_kick_fd);
	svc->disk_kick_fd = -1;
	if (svc->nic_kick_fd >= 0)
		close(svc->nic_kick_fd);
	if (svc->nic_wake_fd >= 0)
		close(svc->nic_wake_fd);
	svc->nic_kick_fd = svc->nic_wake_fd = -1;
	svc->nic = NULL;
	if (svc->timer_created)
		timer_delete(svc->timer);
	svc->timer_created = 0;
	vcpu_destroy(&svc->vcpu);
	swap_free(&svc->swap);
	guestmem_close(&svc->mem, keep_state);
}
