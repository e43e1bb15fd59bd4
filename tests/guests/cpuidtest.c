/* cpuidtest: prints what CPUID says, a line per query, for the test that compares it with the
 * table in docs/abi.md: every basic leaf up to the highest (leaf 0's EAX), every extended leaf
 * up to the highest (0x80000000's EAX), then leaves beyond both, the hypervisor range and other
 * subleaves. At most LEAVES_MAX of each range, whatever the CPU says.
 *   cpuidtest                   the table once
 *   cpuidtest ROUNDS IDLE_MS    the table, then ROUNDS times: idle IDLE_MS (long enough to be
 *                               swapped out), "round N", the table again
 * Exit status 0. */
#include <denali.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define LEAVES_MAX 64u

static void query(uint32_t leaf, uint32_t subleaf, uint32_t *r)
{
	__asm__ volatile("cpuid"
			 : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
			 : "a"(leaf), "c"(subleaf));
}

static uint32_t show(uint32_t leaf, uint32_t subleaf)
{
	uint32_t r[4];
	query(leaf, subleaf, r);
	printf("cpuid %08x %x: %08x %08x %08x %08x\n", leaf, subleaf, r[0], r[1], r[2], r[3]);
	return r[0];
}

static void table(void)
{
	uint32_t max = show(0, 0);
	for (uint32_t leaf = 1; leaf <= max && leaf < LEAVES_MAX; leaf++)
		show(leaf, 0);
	uint32_t ext = show(0x80000000u, 0);
	for (uint32_t leaf = 0x80000001u; leaf <= ext && leaf - 0x80000000u < LEAVES_MAX; leaf++)
		show(leaf, 0);
	/* Beyond the highest leaves, and in ranges the table leaves out. */
	static const uint32_t beyond[][2] = {
		{2, 0},		  {7, 0},	   {0xb, 0},	    {0xd, 0},
		{0xd, 1},	  {0x40000000, 0}, {0x40000001, 0}, {0x80000009, 0},
		{0x8000001f, 0},  {0xc0000000, 0}, {0xffffffff, 0}, {0, 1},
		{1, 0xffffffffu}, {0x80000008, 3},
	};
	for (unsigned i = 0; i < sizeof(beyond) / sizeof(beyond[0]); i++)
		show(beyond[i][0], beyond[i][1]);
}

int main(int argc, char **argv)
{
	table();
	unsigned rounds = argc > 2 ? (unsigned)atoi(argv[1]) : 0;
	uint64_t idle_ns = argc > 2 ? (uint64_t)atoi(argv[2]) * 1000000u : 0;
	for (unsigned r = 1; r <= rounds; r++) {
		dn_idle(dn_time_ns() + idle_ns);
		printf("round %u\n", r);
		table();
	}
	return 0;
}
