/* Guest libc: formatted output to the console. stdout is line-buffered. */
#ifndef DN_STDIO_H
#define DN_STDIO_H

#include <stdarg.h>
#include <stddef.h>

#define EOF (-1)

typedef struct dn_stream FILE;
extern FILE *const stdout;

int vsnprintf(char *restrict buf, size_t size, const char *restrict fmt, va_list ap);
int snprintf(char *restrict buf, size_t size, const char *restrict fmt, ...)
	__attribute__((format(printf, 3, 4)));
int vprintf(const char *restrict fmt, va_list ap);
int printf(const char *restrict fmt, ...) __attribute__((format(printf, 1, 2)));
int puts(const char *s);
int putchar(int c);
int fflush(FILE *stream);

#endif
