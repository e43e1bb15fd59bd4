/* A service's console: the guest's bytes, made safe for a terminal and written out by line. */
#ifndef VMM_CONSOLE_H
#define VMM_CONSOLE_H

#include <stddef.h>

#define VMM_CONSOLE_LINE_MAX 4096

struct vmm_console {
	int fd;		    /* where lines go (stdout) */
	const char *prefix; /* put before every line, or NULL */
	size_t len;
	char line[VMM_CONSOLE_LINE_MAX];
};

void vmm_console_init(struct vmm_console *c, int fd, const char *prefix);

/* Appends guest bytes; complete lines (and over-long ones, in pieces) are written at once.
 * Control characters other than tab become '?', so a guest cannot drive the terminal. */
void vmm_console_write(struct vmm_console *c, const char *buf, size_t len);

/* Writes a pending partial line, with a newline. */
void vmm_console_flush(struct vmm_console *c);

#endif
