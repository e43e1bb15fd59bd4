/* Guest libc: process end, assert, and number conversion. */
#include <assert.h>
#include <denali.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define ULONG_MAX_VALUE 0xffffffffffffffffUL
#define LONG_MAX_VALUE 0x7fffffffffffffffL

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

static int is_space(char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

/* C11 7.22.1.4 for unsigned long, with the sign and overflow reported to the caller. */
static unsigned long parse_ulong(const char *s, char **end, int base, int *neg, int *overflow)
{
	const char *p = s;
	*neg = 0;
	*overflow = 0;
	if (end)
		*end = (char *)(uintptr_t)s;
	if (base < 0 || base == 1 || base > 36)
		return 0;
	while (is_space(*p))
		p++;
	if (*p == '+' || *p == '-')
		*neg = *p++ == '-';
	const char *after_sign = p;
	if ((base == 0 || base == 16) && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		p += 2;
		base = 16;
	} else if (base == 0) {
		base = p[0] == '0' ? 8 : 10;
	}
	unsigned long v = 0;
	const char *digits = p;
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
		if (v > (ULONG_MAX_VALUE - (unsigned long)d) / (unsigned long)base)
			*overflow = 1;
		else
			v = v * (unsigned long)base + (unsigned long)d;
	}
	if (end) {
		if (p != digits)
			*end = (char *)(uintptr_t)p;
		else if (digits != after_sign) /* "0x" with no hex digit: the "0" was the number */
			*end = (char *)(uintptr_t)(after_sign + 1);
	}
	return v;
}

unsigned long strtoul(const char *restrict s, char **restrict end, int base)
{
	int neg, overflow;
	unsigned long v = parse_ulong(s, end, base, &neg, &overflow);
	if (overflow)
		return ULONG_MAX_VALUE;
	return neg ? (unsigned long)0 - v : v;
}

long strtol(const char *restrict s, char **restrict end, int base)
{
	int neg, overflow;
	unsigned long v = parse_ulong(s, end, base, &neg, &overflow);
	if (neg)
		return overflow || v > (unsigned long)LONG_MAX_VALUE + 1 ? -LONG_MAX_VALUE - 1
									 : (long)(0 - v);
	return overflow || v > (unsigned long)LONG_MAX_VALUE ? LONG_MAX_VALUE : (long)v;
}

int atoi(const char *s)
{
	return (int)strtol(s, NULL, 10);
}
