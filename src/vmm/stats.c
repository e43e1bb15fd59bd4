/* --stats: every service's counters, written as JSON when the run ends. */
#include "stats.h"

#include <jansson.h>
#include <linux/kvm.h>
#include <stdio.h>

#include "exit_status.h"

static const char *outcome_name(enum vmm_outcome_kind kind)
{
	switch (kind) {
	case VMM_OUTCOME_EXITED: return "exited";
	case VMM_OUTCOME_STOPPED: return "stopped";
	case VMM_OUTCOME_TIMEOUT: return "timeout";
	case VMM_OUTCOME_SIGNALED: return "signaled";
	case VMM_OUTCOME_LOST: return "lost";
	case VMM_OUTCOME_SAVED: return "saved";
	case VMM_OUTCOME_NONE: return "running"; /* live stats: it has not ended */
	case VMM_OUTCOME_HOST_ERROR: break;
	}
	return "host-error";
}

int vmm_outcome_exit_status(const struct vmm_outcome *o)
{
	switch (o->kind) {
	case VMM_OUTCOME_EXITED: return o->status;
	case VMM_OUTCOME_STOPPED: return DENALI_EXIT_STOPPED;
	case VMM_OUTCOME_TIMEOUT: return DENALI_EXIT_TIMEOUT;
	case VMM_OUTCOME_SIGNALED: return 128 + o->status;
	case VMM_OUTCOME_SAVED:
	case VMM_OUTCOME_NONE: return 0;
	case VMM_OUTCOME_LOST:
	case VMM_OUTCOME_HOST_ERROR: break;
	}
	return DENALI_EXIT_HOST;
}

static const char *exit_name(unsigned reason)
{
	switch (reason) {
	case KVM_EXIT_IO: return "io";
	case KVM_EXIT_MMIO: return "mmio";
	case KVM_EXIT_HLT: return "hlt";
	case KVM_EXIT_SHUTDOWN: return "shutdown";
	case KVM_EXIT_INTR: return "intr";
	case KVM_EXIT_FAIL_ENTRY: return "fail_entry";
	case KVM_EXIT_INTERNAL_ERROR: return "internal_error";
	}
	return NULL;
}

json_t *vmm_stats_service_json(const struct vmm_plan_service *ps, int swappable,
			       const struct vmm_outcome *o, const struct vmm_service_stats *st)
{
	json_t *exits = json_object(), *hypercalls = json_object();
	uint64_t other = 0;
	for (unsigned r = 0; r < VCPU_EXIT_REASONS; r++) {
		const char *name = exit_name(r);
		if (name)
			json_object_set_new(exits, name, json_integer((json_int_t)st->exits[r]));
		else
			other += st->exits[r];
	}
	json_object_set_new(exits, "other", json_integer((json_int_t)other));
	for (unsigned nr = 0; nr < DN_HC_MAX; nr++)
		json_object_set_new(hypercalls, vmm_hypercall_name(nr),
				    json_integer((json_int_t)st->hypercalls[nr]));
	json_t *svc = json_pack("{s:s, s:s, s:i}", "name", ps->cfg.name, "outcome",
				outcome_name(o->kind), "status", vmm_outcome_exit_status(o));
	if (o->kind != VMM_OUTCOME_EXITED && o->kind != VMM_OUTCOME_NONE)
		json_object_set_new(svc, "reason", json_string(o->reason));
	json_object_set_new(svc, "exits", exits);
	json_object_set_new(svc, "hypercalls", hypercalls);
	json_object_set_new(svc, "events_raised", json_integer((json_int_t)st->events_raised));
	json_object_set_new(svc, "events_delivered",
			    json_integer((json_int_t)st->events_delivered));
	json_object_set_new(svc, "interrupts", json_integer((json_int_t)st->interrupts));
	json_object_set_new(svc, "idles", json_integer((json_int_t)st->idles));
	json_object_set_new(svc, "cpu_ns", json_integer((json_int_t)st->cpu_ns));
	json_object_set_new(svc, "cpu_throttled_ns",
			    json_integer((json_int_t)st->cpu_throttled_ns));
	json_object_set_new(svc, "wall_ns", json_integer((json_int_t)st->wall_ns));
	if (st->nic.present) {
		json_t *nic = json_pack(
			"{s:I, s:I, s:I, s:I, s:I, s:I}", "tx_frames",
			(json_int_t)st->nic.tx_frames, "tx_spoofed", (json_int_t)st->nic.tx_spoofed,
			"tx_dropped", (json_int_t)st->nic.tx_dropped, "rx_frames",
			(json_int_t)st->nic.rx_frames, "rx_dropped", (json_int_t)st->nic.rx_dropped,
			"ring_errors", (json_int_t)st->nic.ring_errors);
		json_object_set_new(nic, "held", json_integer((json_int_t)st->nic.held));
		json_object_set_new(nic, "held_dropped",
				    json_integer((json_int_t)st->nic.held_dropped));
		json_object_set_new(nic, "asleep_ignored",
				    json_integer((json_int_t)st->nic.asleep_ignored));
		json_object_set_new(nic, "tx_blocked",
				    json_integer((json_int_t)st->nic.tx_blocked));
		json_object_set_new(nic, "tx_throttled",
				    json_integer((json_int_t)st->nic.tx_throttled));
		json_object_set_new(nic, "tx_throttled_ns",
				    json_integer((json_int_t)st->nic.tx_throttled_ns));
		json_object_set_new(nic, "rx_throttled",
				    json_integer((json_int_t)st->nic.rx_throttled));
		json_object_set_new(svc, "nic", nic);
	}
	if (st->disk_present) {
		const struct vdisk_dev_stats *d = &st->disk;
		json_t *disk = json_pack(
			"{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "reads",
			(json_int_t)d->reads, "writes", (json_int_t)d->writes, "flushes",
			(json_int_t)d->flushes, "bytes_read", (json_int_t)d->bytes_read,
			"bytes_written", (json_int_t)d->bytes_written, "failed",
			(json_int_t)d->failed, "io_errors", (json_int_t)d->io_errors, "ring_errors",
			(json_int_t)d->errors, "batches", (json_int_t)d->batches);
		json_object_set_new(disk, "throttled", json_integer((json_int_t)d->throttled));
		json_object_set_new(disk, "throttled_ns",
				    json_integer((json_int_t)d->throttled_ns));
		json_object_set_new(svc, "disk", disk);
	}
	if (swappable) {
		const struct swap_stats *w = &st->swap;
		json_object_set_new(
			svc, "swap",
			json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
				  "faults_after_in", (json_int_t)w->faults_after_in, "outs",
				  (json_int_t)w->outs, "ins", (json_int_t)w->ins, "out_ns",
				  (json_int_t)w->out_ns, "in_ns", (json_int_t)w->in_ns,
				  "prefetched_pages", (json_int_t)w->prefetched_pages, "spare_ins",
				  (json_int_t)w->spare_ins, "working_set_pages",
				  (json_int_t)w->working_set_pages, "resident_after_out_max",
				  (json_int_t)w->resident_after_out_max));
	}
	json_object_set_new(svc, "resident_peak_bytes",
			    json_integer((json_int_t)st->resident_peak_bytes));
	return svc;
}

void vmm_stats_write(const struct vmm_plan *plan, const struct vmm_outcome *outcomes,
		     struct vmm_service_stats *const *stats)
{
	static const struct vmm_service_stats none;
	json_t *list = json_array();
	for (unsigned i = 0; i < plan->count; i++)
		json_array_append_new(
			list, vmm_stats_service_json(&plan->services[i],
						     plan->services[i].cfg.swap.enabled ||
							     plan->memory_budget != 0,
						     &outcomes[i], stats[i] ? stats[i] : &none));
	json_t *root = json_pack("{s:o}", "services", list);
	if (!root || json_dump_file(root, plan->stats_path, JSON_INDENT(2) | JSON_SORT_KEYS) != 0)
		fprintf(stderr, "denali-run: --stats: cannot write %s\n", plan->stats_path);
	json_decref(root);
}
