/* A service's console: the guest's bytes, made safe for a terminal and written out by line. */
#ifndef VMM_CONSOLE_H
#define VMM_CONSOLE_H

#include <signal.h>
#include <stddef.h>

#define VMM_CONSOLE_LINE_MAX 4096

struct vmm_console {
	int fd;				     /* where lines go (stdout) */
	const volatile sig_atomic_t *cancel; /* if set and nonzero, a blocked write gives up */
	unsigned char prev; /* the previous byte, to catch UTF-8 encoded C1 controls */
	unsigned utf8_left; /* continuation bytes still expected */
	unsigned utf8_have; /* bytes of that sequence already in line (lead included) */
	const char *prefix; /* put before every line, or NULL */
	size_t len;
	char *line; /* VMM_CONSOLE_LINE_MAX bytes, allocated at the first output */
};

void vmm_console_init(struct vmm_console *c, int fd, const char *prefix);

/* Appends guest bytes; complete lines (and over-long ones, in pieces) are written at once.
 * Control characters other than tab, C0 and C1 (raw, or UTF-8 encoded as U+0080-U+009F),
 * become '?', so a guest cannot drive the terminal. */
void vmm_console_write(struct vmm_console *c, const char *buf, size_t len);

/* Writes a pending partial line, with a newline. */
void vmm_console_flush(struct vmm_console *c);

/* Flushes and frees the line buffer (a sleeping service keeps none); writing again is fine. */
void vmm_console_release(struct vmm_console *c);

#endif
