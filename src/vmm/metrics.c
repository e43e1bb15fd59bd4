/* The Prometheus text exposition of the fleet's counters: one table of metrics, each read from
 * the per-service stats objects, which are treated as untrusted. */
#include "metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum metric_kind {
	METRIC_VALUE,  /* one sample per service: group.key */
	METRIC_BY_KEY, /* one sample per key of the object at key, labelled by it */
	METRIC_STATE,  /* 1, labelled with the service's "state" */
};

enum metric_unit {
	UNIT_ONE,
	UNIT_NS_AS_S, /* nanoseconds exported as seconds */
};

struct metric {
	const char *name, *type, *help;
	enum metric_kind kind;
	const char *group; /* the sub-object holding key ("nic", ...), or NULL */
	const char *key;
	enum metric_unit unit;
	const char *label; /* METRIC_BY_KEY: the label the keys go in */
};

#define COUNTER(n, g, k, u, h)                                                                     \
	{                                                                                          \
		"denali_" n, "counter", h, METRIC_VALUE, g, k, u, NULL                             \
	}
#define GAUGE(n, g, k, u, h)                                                                       \
	{                                                                                          \
		"denali_" n, "gauge", h, METRIC_VALUE, g, k, u, NULL                               \
	}

/* Every per-service metric, in the order they are written; docs/control.md lists them. */
static const struct metric metrics[] = {
	{"denali_service_up", "gauge", "1 for the service's current state.", METRIC_STATE, NULL,
	 "state", UNIT_ONE, "state"},
	{"denali_exits_total", "counter", "VM exits by reason.", METRIC_BY_KEY, NULL, "exits",
	 UNIT_ONE, "reason"},
	{"denali_hypercalls_total", "counter", "Hypercalls by call.", METRIC_BY_KEY, NULL,
	 "hypercalls", UNIT_ONE, "call"},
	COUNTER("events_raised_total", NULL, "events_raised", UNIT_ONE,
		"Events raised for the service, every occurrence."),
	COUNTER("events_delivered_total", NULL, "events_delivered", UNIT_ONE,
		"Events delivered to the service."),
	COUNTER("interrupts_total", NULL, "interrupts", UNIT_ONE, "Virtual interrupts delivered."),
	COUNTER("idles_total", NULL, "idles", UNIT_ONE, "Idle hypercalls that waited."),
	COUNTER("cpu_seconds_total", NULL, "cpu_ns", UNIT_NS_AS_S,
		"CPU time of the service's vcpu thread."),
	COUNTER("cpu_throttled_seconds_total", NULL, "cpu_throttled_ns", UNIT_NS_AS_S,
		"Time the vcpu slept for its cpu_limit."),
	GAUGE("wall_seconds", NULL, "wall_ns", UNIT_NS_AS_S,
	      "Time from the service's start (to its end, once ended)."),
	GAUGE("resident_pages", NULL, "resident_pages", UNIT_ONE,
	      "Guest memory pages resident now."),
	GAUGE("resident_peak_bytes", NULL, "resident_peak_bytes", UNIT_ONE,
	      "Guest memory resident (at the end: the peak while mapped)."),
	COUNTER("nic_tx_frames_total", "nic", "tx_frames", UNIT_ONE, "Frames sent."),
	COUNTER("nic_tx_spoofed_total", "nic", "tx_spoofed", UNIT_ONE,
		"Frames dropped for a source address not the service's own."),
	COUNTER("nic_tx_dropped_total", "nic", "tx_dropped", UNIT_ONE,
		"Frames sent but delivered nowhere."),
	COUNTER("nic_rx_frames_total", "nic", "rx_frames", UNIT_ONE, "Frames received."),
	COUNTER("nic_rx_dropped_total", "nic", "rx_dropped", UNIT_ONE,
		"Frames dropped for want of an RX buffer."),
	COUNTER("nic_ring_errors_total", "nic", "ring_errors", UNIT_ONE, "NIC ring errors."),
	COUNTER("nic_held_total", "nic", "held", UNIT_ONE,
		"Frames held while the service slept, delivered when it woke."),
	COUNTER("nic_held_dropped_total", "nic", "held_dropped", UNIT_ONE,
		"Frames dropped while the service slept, its queue full."),
	COUNTER("nic_asleep_ignored_total", "nic", "asleep_ignored", UNIT_ONE,
		"Broadcasts not given to the service while it slept."),
	COUNTER("nic_tx_blocked_total", "nic", "tx_blocked", UNIT_ONE,
		"Times its sends waited for a sleeping peer's hold to have room."),
	COUNTER("nic_tx_throttled_total", "nic", "tx_throttled", UNIT_ONE,
		"Frames held back in the TX ring by the service's TX rate limit."),
	COUNTER("nic_tx_throttled_seconds_total", "nic", "tx_throttled_ns", UNIT_NS_AS_S,
		"Time frames waited for the service's TX rate limit."),
	COUNTER("nic_rx_throttled_total", "nic", "rx_throttled", UNIT_ONE,
		"Frames for the service dropped by its RX rate limit."),
	COUNTER("disk_reads_total", "disk", "reads", UNIT_ONE, "Disk reads completed."),
	COUNTER("disk_writes_total", "disk", "writes", UNIT_ONE, "Disk writes completed."),
	COUNTER("disk_flushes_total", "disk", "flushes", UNIT_ONE, "Disk flushes completed."),
	COUNTER("disk_read_bytes_total", "disk", "bytes_read", UNIT_ONE, "Bytes read from disk."),
	COUNTER("disk_written_bytes_total", "disk", "bytes_written", UNIT_ONE,
		"Bytes written to disk."),
	COUNTER("disk_failed_total", "disk", "failed", UNIT_ONE, "Disk requests failed."),
	COUNTER("disk_io_errors_total", "disk", "io_errors", UNIT_ONE,
		"Disk requests failed by the host's I/O."),
	COUNTER("disk_ring_errors_total", "disk", "ring_errors", UNIT_ONE, "Disk ring errors."),
	COUNTER("disk_batches_total", "disk", "batches", UNIT_ONE, "io_uring submissions."),
	COUNTER("disk_throttled_total", "disk", "throttled", UNIT_ONE,
		"Requests held back in the ring by the service's disk rate limit."),
	COUNTER("disk_throttled_seconds_total", "disk", "throttled_ns", UNIT_NS_AS_S,
		"Time requests waited for the service's disk rate limit."),
	COUNTER("swap_outs_total", "swap", "outs", UNIT_ONE, "Swap-outs."),
	COUNTER("swap_ins_total", "swap", "ins", UNIT_ONE, "Swap-ins."),
	COUNTER("swap_out_seconds_total", "swap", "out_ns", UNIT_NS_AS_S,
		"Time spent swapping out."),
	COUNTER("swap_in_seconds_total", "swap", "in_ns", UNIT_NS_AS_S, "Time spent swapping in."),
	COUNTER("swap_faults_after_in_total", "swap", "faults_after_in", UNIT_ONE,
		"Page faults of the vcpu thread while swapped in."),
	COUNTER("swap_prefetched_pages_total", "swap", "prefetched_pages", UNIT_ONE,
		"Pages prefetched at swap-in."),
	COUNTER("swap_spare_ins_total", "swap", "spare_ins", UNIT_ONE,
		"Swap-ins into a spare VM made ahead."),
	GAUGE("swap_working_set_pages", "swap", "working_set_pages", UNIT_ONE,
	      "Working set noted at the last swap-out."),
	GAUGE("swap_resident_after_out_max_pages", "swap", "resident_after_out_max", UNIT_ONE,
	      "Most pages still resident right after a swap-out."),
};

#define NMETRICS (sizeof(metrics) / sizeof(metrics[0]))

/* A service that gets samples: an object with a string name, not seen before. */
struct metric_service {
	const json_t *obj;
	const char *name;
};

static void write_header(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value, escaped as the format requires: backslash, double quote, newline. */
static void write_label_value(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '"')
			fputs("\\\"", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

/* A non-negative integer value, or -1. */
static int read_value(const json_t *v, uint64_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

/* Writes v, or v nanoseconds as seconds with no trailing zeros (exact, no rounding). */
static void write_value(FILE *f, uint64_t v, enum metric_unit unit)
{
	if (unit == UNIT_ONE) {
		fprintf(f, "%" PRIu64 "\n", v);
		return;
	}
	uint64_t s = v / 1000000000u, ns = v % 1000000000u;
	if (!ns) {
		fprintf(f, "%" PRIu64 "\n", s);
		return;
	}
	char frac[16];
	snprintf(frac, sizeof(frac), "%09" PRIu64, ns);
	size_t len = strlen(frac);
	while (len && frac[len - 1] == '0')
		frac[--len] = '\0';
	fprintf(f, "%" PRIu64 ".%s\n", s, frac);
}

static void write_sample(FILE *f, const struct metric *m, const char *service,
			 const char *label_value, uint64_t v)
{
	fprintf(f, "%s{service=\"", m->name);
	write_label_value(f, service);
	if (m->label) {
		fprintf(f, "\",%s=\"", m->label);
		write_label_value(f, label_value ? label_value : "");
	}
	fputs("\"} ", f);
	write_value(f, v, m->unit);
}

static void write_metric(FILE *f, const struct metric *m, const struct metric_service *svcs,
			 size_t n)
{
	write_header(f, m->name, m->type, m->help);
	for (size_t i = 0; i < n; i++) {
		const json_t *obj = svcs[i].obj;
		if (m->group)
			obj = json_object_get(obj, m->group);
		const json_t *v = json_object_get(obj, m->key);
		uint64_t value;
		if (m->kind == METRIC_STATE) {
			if (json_is_string(v))
				write_sample(f, m, svcs[i].name, json_string_value(v), 1);
		} else if (m->kind == METRIC_BY_KEY) {
			const char *key;
			const json_t *each;
			json_object_foreach ((json_t *)(uintptr_t)v, key, each)
				if (read_value(each, &value) == 0)
					write_sample(f, m, svcs[i].name, key, value);
		} else if (read_value(v, &value) == 0) {
			write_sample(f, m, svcs[i].name, NULL, value);
		}
	}
}

/* A double as the format writes it: NaN, +Inf, -Inf, or the shortest faithful decimal. */
static void write_double(FILE *f, double v)
{
	if (isnan(v))
		fputs("NaN\n", f);
	else if (isinf(v))
		fputs(v > 0 ? "+Inf\n" : "-Inf\n", f);
	else
		fprintf(f, "%.15g\n", v);
}

/* The services that get samples: objects with a string name, the first of each name. */
static struct metric_service *pick_services(const json_t *services, size_t *count)
{
	size_t total = json_is_array(services) ? json_array_size(services) : 0;
	struct metric_service *svcs = calloc(total ? total : 1, sizeof(*svcs));
	json_t *seen = json_object();
	size_t n = 0;
	if (!svcs || !seen) {
		free(svcs);
		json_decref(seen);
		return NULL;
	}
	for (size_t i = 0; i < total; i++) {
		const json_t *obj = json_array_get(services, i);
		const char *name = json_string_value(json_object_get(obj, "name"));
		if (!name || json_object_get(seen, name))
			continue;
		json_object_set_new(seen, name, json_true());
		svcs[n++] = (struct metric_service){.obj = obj, .name = name};
	}
	json_decref(seen);
	*count = n;
	return svcs;
}

char *metrics_text(const json_t *services, double uptime_s, uint64_t budget_bytes,
		   const struct metrics_nat *nat)
{
	size_t n;
	struct metric_service *svcs = pick_services(services, &n);
	char *text = NULL;
	size_t len = 0;
	FILE *f = svcs ? open_memstream(&text, &len) : NULL;
	if (!f) {
		free(svcs);
		return NULL;
	}
	write_header(f, "denali_services", "gauge", "Services in the fleet.");
	fprintf(f, "denali_services %zu\n", n);
	write_header(f, "denali_uptime_seconds", "gauge", "Time since the fleet started.");
	fputs("denali_uptime_seconds ", f);
	write_double(f, uptime_s);
	write_header(f, "denali_memory_budget_bytes", "gauge",
		     "The fleet's memory budget, 0 for none.");
	fprintf(f, "denali_memory_budget_bytes %" PRIu64 "\n", budget_bytes);
	write_header(f, "denali_nat_up", "gauge",
		     "1 while the user uplink's NAT process runs, 0 while it is being replaced.");
	if (nat)
		fprintf(f, "denali_nat_up %d\n", nat->up ? 1 : 0);
	write_header(f, "denali_nat_restarts_total", "counter",
		     "NAT processes started after the first one died.");
	if (nat)
		fprintf(f, "denali_nat_restarts_total %" PRIu64 "\n", nat->restarts);
	for (size_t i = 0; i < NMETRICS; i++)
		write_metric(f, &metrics[i], svcs, n);
	int failed = ferror(f);
	free(svcs);
	if (fclose(f) != 0 || failed) {
		free(text);
		return NULL;
	}
	return text;
}
