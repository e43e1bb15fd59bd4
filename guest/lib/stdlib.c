/* Guest libc: process end, assert, and number conversion. */
#include <assert.h>
#include <denali.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

__attribute__((noreturn)) void exit(int status)
{
	dn_exit(status);
}

__attribute__((noreturn)) void abort(void)
{
	dn_abort("abort() called");
}

__attribute__((noreturn)) void __dn_assert_fail(const char *expr, const char *file, int line)
{
	char msg[256];
	snprintf(msg, sizeof(msg), "assertion failed: %s (%s:%d)", expr, file, line);
	dn_abort(msg);
}

unsigned long strtoul(const char *restrict s, char **restrict end, int base)
{
	const char *p = s;
	while (*p == ' ' || *p == '\t')
		p++;
	int neg = 0;
	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	if ((base == 0 || base == 16) && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		p += 2;
		base = 16;
	} else if (base == 0) {
		base = p[0] == '0' ? 8 : 10;
	}
	unsigned long v = 0;
	const char *digits_start = p;
	for (;; p++) {
		int d;
		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'z')
			d = *p - 'a' + 10;
		else if (*p >= 'A' && *p <= 'Z')
			d = *p - 'A' + 10;
		else
			break;
		if (d >= base)
			break;
		v = v * (unsigned long)base + (unsigned long)d;
	}
	if (end)
		*end = (char *)(uintptr_t)(p == digits_start ? s : p);
	return neg ? (unsigned long)0 - v : v;
}

long strtol(const char *restrict s, char **restrict end, int base)
{
	return (long)strtoul(s, end, base);
}

int atoi(const char *s)
{
	return (int)strtol(s, NULL, 10);
}
