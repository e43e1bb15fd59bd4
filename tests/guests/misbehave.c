/* misbehave: a test guest that does one thing, good or hostile, chosen by its first argument.
 * The integration tests run it and check what the monitor reports. */
#include <assert.h>
#include <denali.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmd_exit(int argc, char **argv)
{
	return argc > 2 ? atoi(argv[2]) : 0;
}

static int cmd_abort(int argc, char **argv)
{
	dn_abort(argc > 2 ? argv[2] : "no reason given");
}

static int cmd_assert(int argc, char **argv)
{
	(void)argv;
	assert(argc == 42);
	return 0;
}

static int cmd_null_write(int argc, char **argv)
{
	(void)argc, (void)argv;
	*(volatile int *)(uintptr_t)0 = 1;
	return 0;
}

static int cmd_div_zero(int argc, char **argv)
{
	(void)argv;
	volatile int zero = argc - argc;
	return 10 / zero;
}

static int cmd_page_table_write(int argc, char **argv)
{
	(void)argc, (void)argv;
	/* The page tables start at 0x1000: map GPA 0 and win. The guest must not get there. */
	*(volatile uint64_t *)(uintptr_t)0x1000 = 0x87;
	return 0;
}

static int cmd_bad_port(int argc, char **argv)
{
	(void)argc, (void)argv;
	__asm__ volatile("outb %%al, $0x80" : : "a"(0));
	return 0;
}

static int cmd_privileged(int argc, char **argv)
{
	(void)argc, (void)argv;
	__asm__ volatile("hlt");
	return 0;
}

static int cmd_high_port(int argc, char **argv)
{
	(void)argc, (void)argv;
	__asm__ volatile("outb %%al, %%dx" : : "a"(0), "d"(0x1234));
	return 0;
}

static int cmd_fault_port(int argc, char **argv)
{
	(void)argc, (void)argv;
	__asm__ volatile("outl %%eax, %%dx" : : "a"(0), "d"(0x4f0));
	return 0;
}

static int cmd_jump_null(int argc, char **argv)
{
	(void)argc, (void)argv;
	void (*volatile fn)(void) = 0;
	fn();
	return 0;
}

static int cmd_hc_outside(int argc, char **argv)
{
	(void)argc, (void)argv;
	/* A console buffer beyond the end of RAM. */
	static struct dn_hc_console hc;
	hc.buf = dn_boot_info()->ram_size - 8;
	hc.len = 64;
	dn_hypercall(DN_HC_CONSOLE, &hc);
	return 0;
}

static int cmd_hc_struct_outside(int argc, char **argv)
{
	(void)argc, (void)argv;
	/* The argument struct itself in the monitor's system area. */
	dn_hypercall(DN_HC_CONSOLE, (void *)(uintptr_t)0x8000);
	return 0;
}

static int cmd_hc_wrap(int argc, char **argv)
{
	(void)argc, (void)argv;
	static struct dn_hc_console hc;
	hc.buf = UINT64_MAX - 16;
	hc.len = 64;
	dn_hypercall(DN_HC_CONSOLE, &hc);
	return 0;
}

static int cmd_hc_misaligned(int argc, char **argv)
{
	(void)argc, (void)argv;
	static uint8_t raw[64] __attribute__((aligned(8)));
	dn_hypercall(DN_HC_CONSOLE, raw + 4);
	return 0;
}

static int cmd_hc_unknown(int argc, char **argv)
{
	(void)argc, (void)argv;
	static struct dn_hc_console hc;
	__asm__ volatile("outl %0, %w1"
			 :
			 : "a"((uint32_t)(uintptr_t)&hc),
			   "Nd"((uint16_t)(DN_HC_PORT_BASE + DN_HC_MAX)));
	return 0;
}

static int cmd_console_too_long(int argc, char **argv)
{
	(void)argc, (void)argv;
	static struct dn_hc_console hc;
	static char big[DN_CONSOLE_MAX + 1];
	hc.buf = (uint64_t)(uintptr_t)big;
	hc.len = sizeof(big);
	dn_hypercall(DN_HC_CONSOLE, &hc);
	printf("console status %d\n", hc.status);
	return hc.status == DN_E_INVAL ? 0 : 1;
}

static int cmd_spin(int argc, char **argv)
{
	(void)argc, (void)argv;
	static volatile uint64_t spins;
	printf("spinning\n");
	while (spins != UINT64_MAX)
		spins++;
	return 0;
}

/* Sleeps argv[2] ms with idle and checks that guest time advanced by at least that much. */
static int cmd_idle(int argc, char **argv)
{
	uint64_t ms = argc > 2 ? strtoul(argv[2], NULL, 10) : 10;
	uint64_t start = dn_time_ns();
	dn_idle(start + ms * 1000000);
	uint64_t slept = dn_time_ns() - start;
	dn_idle(0); /* a yield returns at once */
	printf("idle ok: %s\n", slept >= ms * 1000000 ? "slept long enough" : "woke early");
	return slept >= ms * 1000000 ? 0 : 1;
}

/* Writes every page of 1 MiB of its BSS (untouched until now: RAM starts zeroed): on a memory
 * file whose filesystem is full, the monitor must stop it with a clear error. */
static uint8_t untouched[1u << 20];

static int cmd_fill_memory(int argc, char **argv)
{
	(void)argc, (void)argv;
	for (size_t i = 0; i < sizeof(untouched); i += 4096)
		((volatile uint8_t *)untouched)[i] = 1;
	printf("filled\n");
	return 0;
}

static int cmd_printf(int argc, char **argv)
{
	(void)argc, (void)argv;
	char buf[16];
	int n = snprintf(buf, sizeof(buf), "%s-%d", "truncated-string", 12345);
	printf("[%d|%5d|%-5d|%05d|%+d|%x|%#X|%o|%c|%s|%.3s|%8s|%-4s|%p|%%]\n", -42, 42, 42, 42, 42,
	       255u, 255u, 8u, 'z', "str", "abcdef", "right", "l", (void *)(uintptr_t)0x1000);
	printf("[%lu|%lld|%zu|%hhu|%llx]\n", 18446744073709551615ul, -9223372036854775807ll - 1,
	       (size_t)7, (unsigned char)300, 0xdeadbeefcafeull);
	printf("[%s|%d]\n", buf, n);
	/* Flags that C ignores for unsigned conversions (the compiler would reject a literal). */
	const char *volatile flags = "[%+u|% u|%#o|%#.3o|%#o]\n";
	printf(flags, 5u, 5u, 8u, 8u, 0u);
	char *end;
	printf("[%lu|%ld|%ld|%lu|%ld]\n", strtoul("99999999999999999999999", NULL, 10),
	       strtol("-99999999999999999999", NULL, 10), strtol(" \n -0x1f", NULL, 0),
	       strtoul("0777", NULL, 0), strtol("0xg", &end, 16));
	printf("[%s]\n", end);
	return 0;
}

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
};

static const struct command commands[] = {
	{"exit", cmd_exit},
	{"abort", cmd_abort},
	{"assert", cmd_assert},
	{"null-write", cmd_null_write},
	{"div-zero", cmd_div_zero},
	{"page-table-write", cmd_page_table_write},
	{"bad-port", cmd_bad_port},
	{"privileged", cmd_privileged},
	{"high-port", cmd_high_port},
	{"fault-port", cmd_fault_port},
	{"jump-null", cmd_jump_null},
	{"hc-outside", cmd_hc_outside},
	{"hc-struct-outside", cmd_hc_struct_outside},
	{"hc-wrap", cmd_hc_wrap},
	{"hc-misaligned", cmd_hc_misaligned},
	{"hc-unknown", cmd_hc_unknown},
	{"console-too-long", cmd_console_too_long},
	{"spin", cmd_spin},
	{"idle", cmd_idle},
	{"printf", cmd_printf},
	{"fill-memory", cmd_fill_memory},
};

int main(int argc, char **argv)
{
	if (argc < 2) {
		printf("usage: misbehave COMMAND [ARG]\n");
		return 1;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc, argv);
	printf("unknown command %s\n", argv[1]);
	return 1;
}
