/* hcloop: makes argv[1] no-op hypercalls (an empty console write), then exits. */
#include <denali.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 0;
	static struct dn_hc_console hc;
	for (unsigned long i = 0; i < n; i++) {
		hc.buf = (uint64_t)(uintptr_t)&hc;
		hc.len = 0;
		dn_hypercall(DN_HC_CONSOLE, &hc);
	}
	return 0;
}
