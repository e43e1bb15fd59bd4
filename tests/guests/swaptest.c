/* swaptest: guest memory and time across swap-outs, one behaviour per argument:
 *   pattern MIB ROUNDS IDLE_MS  fill MIB of memory with a pattern; ROUNDS times: idle IDLE_MS
 *                               (long enough to be swapped out), then check every byte and
 *                               that the clock moved on by at least IDLE_MS and that it still
 *                               runs in ring 3; print each round
 *   timer ROUNDS IDLE_MS        ROUNDS times: arm the timer IDLE_MS ahead and idle with no
 *                               deadline; the timer's event must wake it, on time, in ring 3
 * Exit status 0 when every check held. */
#include <denali.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS 1000000ull

static uint8_t *area;

static uint8_t pattern(size_t i, unsigned round)
{
	return (uint8_t)((i * 2654435761u) >> 13) ^ (uint8_t)round;
}

/* The privilege level the guest runs at: 3, unless a monitor let a checkpoint say otherwise. */
static unsigned ring(void)
{
	uint16_t cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	return cs & 3u;
}

static int cmd_pattern(unsigned mib, unsigned rounds, unsigned idle_ms)
{
	size_t len = (size_t)mib << 20;
	area = (uint8_t *)(uintptr_t)((dn_boot_info()->heap_start + 4095) & ~4095ull);
	if ((uint64_t)(uintptr_t)area + len + (256u << 10) > dn_boot_info()->ram_size) {
		printf("swaptest: %u MiB does not fit\n", mib);
		return 2;
	}
	for (unsigned r = 0; r < rounds; r++) {
		for (size_t i = 0; i < len; i++)
			area[i] = pattern(i, r);
		uint64_t before = dn_time_ns();
		while (dn_time_ns() < before + idle_ms * MS)
			dn_idle(before + idle_ms * MS);
		uint64_t slept = dn_time_ns() - before;
		for (size_t i = 0; i < len; i++)
			if (area[i] != pattern(i, r)) {
				printf("swaptest: round %u: byte %zu is %u, not %u\n", r, i,
				       area[i], pattern(i, r));
				return 1;
			}
		if (ring() != 3) {
			printf("swaptest: round %u: woke in ring %u\n", r, ring());
			return 1;
		}
		if (slept > 10000 * MS) {
			printf("swaptest: round %u: the clock jumped %llu ms\n", r,
			       (unsigned long long)(slept / MS));
			return 1;
		}
		printf("round %u: %u MiB intact after %llu ms idle\n", r, mib,
		       (unsigned long long)(slept / MS));
	}
	return 0;
}

static int cmd_timer(unsigned rounds, unsigned idle_ms)
{
	for (unsigned r = 0; r < rounds; r++) {
		uint64_t due = dn_time_ns() + idle_ms * MS;
		dn_timer_set(due);
		uint64_t ev;
		while (!((ev = dn_idle(UINT64_MAX)) & DN_EV_TIMER))
			continue;
		if (ring() != 3) {
			printf("swaptest: round %u: woke in ring %u\n", r, ring());
			return 1;
		}
		uint64_t late = dn_time_ns() - due;
		printf("round %u: timer fired %llu us late\n", r,
		       (unsigned long long)(late / 1000));
		if (dn_time_ns() < due) {
			printf("swaptest: the timer fired early\n");
			return 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	if (!strcmp(cmd, "pattern") && argc == 5)
		return cmd_pattern((unsigned)atoi(argv[2]), (unsigned)atoi(argv[3]),
				   (unsigned)atoi(argv[4]));
	if (!strcmp(cmd, "timer") && argc == 4)
		return cmd_timer((unsigned)atoi(argv[2]), (unsigned)atoi(argv[3]));
	printf("swaptest: usage: pattern MIB ROUNDS IDLE_MS | timer ROUNDS IDLE_MS\n");
	return 2;
}
