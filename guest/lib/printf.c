/* Guest libc: printf and friends. One formatter feeds either a bounded buffer or stdout, which
 * is line-buffered and written to the console with one hypercall per line. */
#include <denali.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct dn_stream {
	size_t len;
	char buf[1024];
};

static struct dn_stream stdout_stream;
FILE *const stdout = &stdout_stream;

int fflush(FILE *stream)
{
	if (stream->len) {
		dn_console_write(stream->buf, stream->len);
		stream->len = 0;
	}
	return 0;
}

static void stream_put(FILE *stream, char c)
{
	stream->buf[stream->len++] = c;
	if (c == '\n' || stream->len == sizeof(stream->buf))
		fflush(stream);
}

struct sink {
	char *buf; /* NULL: stdout */
	size_t size;
	size_t count; /* characters produced, even those that did not fit */
};

static void put(struct sink *s, char c)
{
	if (!s->buf)
		stream_put(stdout, c);
	else if (s->count + 1 < s->size)
		s->buf[s->count] = c;
	s->count++;
}

static void put_repeat(struct sink *s, char c, int n)
{
	while (n-- > 0)
		put(s, c);
}

struct spec {
	int left, zero, plus, space, alt;
	int width, precision; /* precision < 0: none */
};

static void put_padded(struct sink *s, const struct spec *sp, const char *prefix, const char *body,
		       size_t body_len, int min_digits)
{
	int plen = (int)strlen(prefix);
	int zeros = min_digits > (int)body_len ? min_digits - (int)body_len : 0;
	int total = plen + zeros + (int)body_len;
	int pad = sp->width > total ? sp->width - total : 0;
	if (!sp->left && !(sp->zero && sp->precision < 0))
		put_repeat(s, ' ', pad);
	for (int i = 0; i < plen; i++)
		put(s, prefix[i]);
	if (!sp->left && sp->zero && sp->precision < 0)
		put_repeat(s, '0', pad);
	put_repeat(s, '0', zeros);
	for (size_t i = 0; i < body_len; i++)
		put(s, body[i]);
	if (sp->left)
		put_repeat(s, ' ', pad);
}

static void put_integer(struct sink *s, const struct spec *sp, uint64_t value, int negative,
			int is_signed, unsigned base, int upper, int is_pointer)
{
	char digits[24];
	size_t n = 0;
	const char *set = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	do {
		digits[sizeof(digits) - 1 - n++] = set[value % base];
		value /= base;
	} while (value);
	const char *body = digits + sizeof(digits) - n;
	/* "%.0d" of zero prints nothing, as in C. */
	if (sp->precision == 0 && n == 1 && body[0] == '0' && !is_pointer)
		n = 0;
	char prefix[3] = "";
	if (negative)
		strcpy(prefix, "-");
	else if (sp->plus && is_signed)
		strcpy(prefix, "+");
	else if (sp->space && is_signed)
		strcpy(prefix, " ");
	if ((sp->alt || is_pointer) && base == 16 &&
	    (n > 1 || (n == 1 && body[0] != '0') || is_pointer))
		strcpy(prefix, upper ? "0X" : "0x");
	int min_digits = sp->precision;
	/* "%#o" makes the first digit a zero by raising the precision, as C does. */
	if (sp->alt && base == 8 && (n == 0 || body[0] != '0') && min_digits < (int)n + 1)
		min_digits = (int)n + 1;
	put_padded(s, sp, prefix, body, n, min_digits);
}

static int parse_number(const char **fmt)
{
	int v = 0;
	while (**fmt >= '0' && **fmt <= '9') {
		if (v < 100000)
			v = v * 10 + (**fmt - '0');
		(*fmt)++;
	}
	return v;
}

static void format(struct sink *s, const char *fmt, va_list ap)
{
	while (*fmt) {
		if (*fmt != '%') {
			put(s, *fmt++);
			continue;
		}
		fmt++;
		struct spec sp = {.precision = -1};
		for (;; fmt++) {
			if (*fmt == '-')
				sp.left = 1;
			else if (*fmt == '0')
				sp.zero = 1;
			else if (*fmt == '+')
				sp.plus = 1;
			else if (*fmt == ' ')
				sp.space = 1;
			else if (*fmt == '#')
				sp.alt = 1;
			else
				break;
		}
		if (*fmt == '*') {
			sp.width = va_arg(ap, int);
			if (sp.width < 0) {
				sp.left = 1;
				sp.width = -sp.width;
			}
			fmt++;
		} else {
			sp.width = parse_number(&fmt);
		}
		if (*fmt == '.') {
			fmt++;
			if (*fmt == '*') {
				sp.precision = va_arg(ap, int);
				fmt++;
			} else {
				sp.precision = parse_number(&fmt);
			}
		}
		int size = 0; /* -2 hh, -1 h, 0 int, 1 long, 2 long long / size_t / intmax */
		for (;; fmt++) {
			if (*fmt == 'h')
				size--;
			else if (*fmt == 'l')
				size++;
			else if (*fmt == 'z' || *fmt == 'j' || *fmt == 't')
				size = 2;
			else
				break;
		}
		char conv = *fmt ? *fmt++ : '\0';
		switch (conv) {
		case 'd':
		case 'i': {
			int64_t v = size >= 1 ? va_arg(ap, long long) : va_arg(ap, int);
			if (size == -1)
				v = (short)v;
			if (size == -2)
				v = (signed char)v;
			uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
			put_integer(s, &sp, mag, v < 0, 1, 10, 0, 0);
			break;
		}
		case 'u':
		case 'x':
		case 'X':
		case 'o': {
			uint64_t v =
				size >= 1 ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned);
			if (size == -1)
				v = (unsigned short)v;
			if (size == -2)
				v = (unsigned char)v;
			unsigned base = conv == 'u' ? 10 : conv == 'o' ? 8 : 16;
			put_integer(s, &sp, v, 0, 0, base, conv == 'X', 0);
			break;
		}
		case 'p':
			put_integer(s, &sp, (uint64_t)(uintptr_t)va_arg(ap, void *), 0, 0, 16, 0,
				    1);
			break;
		case 'c': {
			char c = (char)va_arg(ap, int);
			sp.precision = -1;
			put_padded(s, &sp, "", &c, 1, 0);
			break;
		}
		case 's': {
			const char *str = va_arg(ap, const char *);
			if (!str)
				str = "(null)";
			size_t len = sp.precision >= 0 ? strnlen(str, (size_t)sp.precision)
						       : strlen(str);
			sp.precision = -1;
			sp.zero = 0;
			put_padded(s, &sp, "", str, len, 0);
			break;
		}
		case '%': put(s, '%'); break;
		default: /* unknown conversion: print it as written */
			put(s, '%');
			if (conv)
				put(s, conv);
			break;
		}
	}
}

int vsnprintf(char *restrict buf, size_t size, const char *restrict fmt, va_list ap)
{
	char dummy;
	struct sink s = {.buf = size ? buf : &dummy, .size = size ? size : 1};
	format(&s, fmt, ap);
	s.buf[s.count < s.size ? s.count : s.size - 1] = '\0';
	return (int)s.count;
}

int snprintf(char *restrict buf, size_t size, const char *restrict fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

int vprintf(const char *restrict fmt, va_list ap)
{
	struct sink s = {0};
	format(&s, fmt, ap);
	return (int)s.count;
}

int printf(const char *restrict fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vprintf(fmt, ap);
	va_end(ap);
	return n;
}

int putchar(int c)
{
	stream_put(stdout, (char)c);
	return (unsigned char)c;
}

int puts(const char *s)
{
	while (*s)
		stream_put(stdout, *s++);
	stream_put(stdout, '\n');
	return 0;
}
