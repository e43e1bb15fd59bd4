/* One service: its guest RAM, its VM and vcpu, its console, and how it ended. */
#include "service.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void fill_boot_info(struct vmm_service *svc, const struct vmm_image *img)
{
	struct dn_boot_info bi;
	memset(&bi, 0, sizeof(bi));
	bi.magic = DN_BOOT_MAGIC;
	bi.abi_version = DN_ABI_VERSION;
	bi.ram_size = svc->mem.size;
	bi.heap_start = img->end;
	bi.stack_top = svc->mem.size;
	bi.tsc_hz = svc->vcpu.tsc_hz;
	bi.tsc_base = svc->vcpu.tsc_base;
	bi.tsc_mul = (uint64_t)(((unsigned __int128)1000000000u << 32) / svc->vcpu.tsc_hz);
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

int vmm_service_start(struct vmm_service *svc, const struct vmm_service_config *cfg,
		      const struct vmm_image *img, const struct vcpu_kvm *kvm,
		      const char *state_dir, const char *console_prefix, char *err, size_t errlen)
{
	memset(svc, 0, sizeof(*svc));
	svc->cfg = cfg;
	svc->vcpu.fd = svc->vcpu.vm_fd = -1;
	vmm_console_init(&svc->console, 1, console_prefix);
	if (guestmem_open(&svc->mem, state_dir, cfg->name, cfg->ram_size, err, errlen) != 0)
		return -1;
	vcpu_sysarea_build(svc->mem.host, svc->mem.size);
	vmm_image_copy(img, svc->mem.host);
	if (vcpu_create(&svc->vcpu, kvm, svc->mem.host, svc->mem.size, err, errlen) != 0 ||
	    vcpu_boot(&svc->vcpu, img->entry, svc->mem.size, vcpu_sysarea_boot_info_gpa(), err,
		      errlen) != 0) {
		vmm_service_destroy(svc, 0);
		return -1;
	}
	fill_boot_info(svc, img);
	svc->started_ns = vcpu_clock_ns();
	return 0;
}

static enum vcpu_action hypercall(void *ctx, unsigned nr, uint32_t arg)
{
	return vmm_hypercall_dispatch(ctx, nr, arg);
}

static const struct vcpu_ops service_vcpu_ops = {.hypercall = hypercall};

void vmm_service_run(struct vmm_service *svc)
{
	struct vcpu_stop stop;
	vcpu_run(&svc->vcpu, &service_vcpu_ops, svc, &stop);
	struct vmm_outcome *o = &svc->outcome;
	switch (stop.kind) {
	case VCPU_STOP_HANDLER: break; /* the handler filled the outcome */
	case VCPU_STOP_REQUESTED:
		o->kind = (enum vmm_outcome_kind)svc->stop_kind;
		o->status = svc->stop_signal;
		o->has_rip = 1;
		o->rip = stop.rip;
		break;
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
}

void vmm_service_request_stop(struct vmm_service *svc, enum vmm_outcome_kind kind, int signo)
{
	if (svc->stop_kind == VMM_OUTCOME_NONE) {
		svc->stop_kind = kind;
		svc->stop_signal = signo;
	}
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

void vmm_service_destroy(struct vmm_service *svc, int keep_state)
{
	vcpu_destroy(&svc->vcpu);
	guestmem_close(&svc->mem, keep_state);
}
