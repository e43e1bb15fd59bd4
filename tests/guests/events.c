/* events: a test guest for the Denali scheduling model, one behaviour per first argument:
 * stop events, timers, virtual interrupts, guest time, and plain CPU burning. */
#include <denali.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS 1000000ull

static void on_stop(uint64_t events, void *arg)
{
	(void)events, (void)arg;
	printf("got stop\n");
	dn_loop_stop();
}

/* Exits 7 (or the status given after the command) as soon as DN_EV_STOP arrives. */
static int cmd_stop_exit(int argc, char **argv)
{
	dn_loop_on(DN_EV_STOP, on_stop, NULL);
	printf("waiting for stop\n");
	dn_loop_run();
	return argc > 2 ? atoi(argv[2]) : 7;
}

/* Idles forever and ignores every event, DN_EV_STOP included. */
static int cmd_stop_ignore(int argc, char **argv)
{
	(void)argc, (void)argv;
	printf("ignoring stop\n");
	for (;;)
		dn_idle(UINT64_MAX);
	return 0;
}

static struct {
	struct dn_timer timer;
	uint64_t period, deadline;
	unsigned fired, count;
	uint64_t late_us[1000];
} periodic;

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void sort_u64(uint64_t *v, unsigned n)
{
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j > 0 && cmp_u64(&v[j - 1], &v[j]) > 0; j--) {
			uint64_t t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
}

static void on_tick(void *arg)
{
	(void)arg;
	periodic.late_us[periodic.fired++] = (dn_time_ns() - periodic.deadline) / 1000;
	if (periodic.fired == periodic.count) {
		dn_loop_stop();
		return;
	}
	periodic.deadline += periodic.period;
	dn_timer_start(&periodic.timer, periodic.deadline, on_tick, NULL);
}

/* A periodic loop timer of argv[2] ms, argv[3] times; prints how late the firings were. */
static int cmd_timer(int argc, char **argv)
{
	periodic.period = (argc > 2 ? strtoul(argv[2], NULL, 10) : 10) * MS;
	periodic.count = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 20;
	if (periodic.count == 0 || periodic.count > 1000)
		return 2;
	periodic.deadline = dn_time_ns() + periodic.period;
	dn_timer_start(&periodic.timer, periodic.deadline, on_tick, NULL);
	dn_loop_run();
	sort_u64(periodic.late_us, periodic.fired);
	printf("timer: %u fired\n", periodic.fired);
	printf("lateness p50 %llu us p99 %llu us\n",
	       (unsigned long long)periodic.late_us[periodic.fired / 2],
	       (unsigned long long)periodic.late_us[periodic.fired * 99 / 100]);
	return periodic.fired == periodic.count ? 0 : 1;
}

static volatile uint64_t irq_events, irq_calls;

static void on_interrupt(uint64_t events)
{
	irq_calls++;
	if (events & DN_EV_TIMER) {
		irq_events++;
		dn_timer_set(dn_time_ns() + 2 * MS);
	}
}

/* Burns CPU for argv[2] ms with virtual interrupts on and a 2 ms timer re-armed by the
 * handler: timer events must arrive without the guest ever idling or polling. */
static int cmd_irq(int argc, char **argv)
{
	uint64_t run = (argc > 2 ? strtoul(argv[2], NULL, 10) : 200) * MS;
	dn_interrupts_enable(on_interrupt);
	uint64_t start = dn_time_ns();
	dn_timer_set(start + 2 * MS);
	volatile uint64_t spins = 0;
	double x = 1.0;
	while (dn_time_ns() - start < run) {
		spins++;
		x = x * 1.0000001 + 0.5; /* keeps SSE registers live across interrupts */
	}
	dn_interrupts_disable();
	unsigned long long deliveries = dn_vregs()->deliveries;
	printf("irq: %llu timer events in %llu handler calls, %llu deliveries, sse %s\n",
	       (unsigned long long)irq_events, (unsigned long long)irq_calls, deliveries,
	       x > 1.0 ? "ok" : "broken");
	return irq_events >= 5 && irq_calls == deliveries ? 0 : 1;
}

static volatile uint64_t batch_calls;

static void on_batch(uint64_t events)
{
	(void)events;
	batch_calls++;
}

/* Two timer events happen while virtual interrupts are off; enabling them delivers both in one
 * interrupt. */
static int cmd_batch(int argc, char **argv)
{
	(void)argc, (void)argv;
	dn_interrupts_enable(on_batch);
	dn_interrupts_disable();
	for (int i = 0; i < 2; i++) {
		uint64_t t = dn_time_ns();
		dn_timer_set(t + 1 * MS);
		while (dn_time_ns() < t + 20 * MS)
			;
	}
	uint64_t pending = dn_vregs()->pending;
	dn_interrupts_enable(on_batch);
	uint64_t t = dn_time_ns();
	while (batch_calls == 0 && dn_time_ns() < t + 2000 * MS)
		dn_timer_set(0); /* an exit that takes no events lets the monitor deliver */
	printf("batch: pending 0x%llx before enabling, %llu handler calls, %llu deliveries\n",
	       (unsigned long long)pending, (unsigned long long)batch_calls,
	       (unsigned long long)dn_vregs()->deliveries);
	return batch_calls == 1 ? 0 : 1;
}

/* Prints guest time every 100 ms for 1 s, busy-waiting on the TSC clock (no exits). */
static int cmd_time(int argc, char **argv)
{
	(void)argc, (void)argv;
	uint64_t next = dn_time_ns();
	for (int i = 0; i <= 10; i++) {
		while (dn_time_ns() < next)
			;
		printf("t=%llu\n", (unsigned long long)dn_time_ns());
		next += 100 * MS;
	}
	return 0;
}

/* Burns CPU for argv[2] ms of guest time; prints how much work it got done. */
static int cmd_cpu(int argc, char **argv)
{
	uint64_t run = (argc > 2 ? strtoul(argv[2], NULL, 10) : 500) * MS;
	uint64_t start = dn_time_ns(), loops = 0;
	while (dn_time_ns() - start < run)
		loops++;
	printf("cpu: %s loops\n", loops > 1000 ? "many" : "few");
	return loops > 1000 ? 0 : 1;
}

/* A unit of timer-driven work every argv[2] ms, argv[3] times; between units it either idles
 * until the next deadline (argv[4] = "idle") or busy-yields (dn_idle(0) in a loop, "busy"). */
/* work PERIOD_MS COUNT [idle|busy|unbatched] [SPIN] [STREAMS]: STREAMS timer-driven streams
 * of work (phases spread over the period), COUNT units each, SPIN loop iterations per unit.
 * idle: with nothing due, idle until the next deadline, and handle every unit that is due at
 * each wake-up (the Denali way: events batch). busy: a busy-yield loop instead of idling.
 * unbatched: idle too, but go back to the monitor (a yield) after every unit, as if each
 * event needed its own delivery. */
static int cmd_work(int argc, char **argv)
{
	uint64_t period = (argc > 2 ? strtoul(argv[2], NULL, 10) : 10) * MS;
	unsigned long count = argc > 3 ? strtoul(argv[3], NULL, 10) : 50;
	const char *mode = argc > 4 ? argv[4] : "idle";
	int busy = strcmp(mode, "busy") == 0, unbatched = strcmp(mode, "unbatched") == 0;
	unsigned long spin = argc > 5 ? strtoul(argv[5], NULL, 10) : 20000;
	unsigned streams = argc > 6 ? (unsigned)strtoul(argv[6], NULL, 10) : 1;
	if (streams < 1 || streams > 64)
		return 2;
	uint64_t start = dn_time_ns(), next[64];
	unsigned long done[64] = {0}, total = 0;
	for (unsigned s = 0; s < streams; s++)
		next[s] = start + period + s * period / streams;
	volatile uint64_t sink = 0; /* volatile: the spin loop's work is not optimised away */
	(void)sink;
	while (total < count * streams) {
		uint64_t now = dn_time_ns(), earliest = UINT64_MAX;
		int ran = 0;
		for (unsigned s = 0; s < streams; s++) {
			if (done[s] < count && next[s] <= now && !(unbatched && ran)) {
				for (unsigned long i = 0; i < spin; i++)
					sink += i;
				done[s]++;
				total++;
				next[s] += period;
				ran = 1;
			}
			if (done[s] < count && next[s] < earliest)
				earliest = next[s];
		}
		if (unbatched && ran)
			dn_idle(0); /* one transition per event */
		else if (!ran)
			dn_idle(busy ? 0 : earliest);
	}
	printf("work: %lu units in %llu us\n", count * streams,
	       (unsigned long long)((dn_time_ns() - start) / 1000));
	return 0;
}

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
};

static const struct command commands[] = {
	{"stop-exit", cmd_stop_exit}, {"stop-ignore", cmd_stop_ignore},
	{"timer", cmd_timer},	      {"irq", cmd_irq},
	{"work", cmd_work},	      {"batch", cmd_batch},
	{"time", cmd_time},	      {"cpu", cmd_cpu},
};

int main(int argc, char **argv)
{
	for (size_t i = 0; argc > 1 && i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc, argv);
	printf("usage: events stop-exit|stop-ignore|timer|irq|time|cpu|work [ARGS]\n");
	return 1;
}
