/* A service's console: the guest's bytes, made safe for a terminal and written out by line. */
#include "console.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

void vmm_console_init(struct vmm_console *c, int fd, const char *prefix)
{
	c->fd = fd;
	c->prefix = prefix;
	c->len = 0;
}

/* One line out, prefix first, retrying short writes. Console loss is not fatal to the VM. */
static void emit(struct vmm_console *c)
{
	char prefix[96];
	size_t plen = 0;
	if (c->prefix)
		plen = (size_t)snprintf(prefix, sizeof(prefix), "[%s] ", c->prefix);
	if (plen >= sizeof(prefix))
		plen = sizeof(prefix) - 1;
	struct iovec iov[2] = {{prefix, plen}, {c->line, c->len}};
	int n = 2, i = 0;
	while (i < n) {
		ssize_t w = writev(c->fd, iov + i, n - i);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		while (i < n && (size_t)w >= iov[i].iov_len)
			w -= (ssize_t)iov[i++].iov_len;
		if (i < n) {
			iov[i].iov_base = (char *)iov[i].iov_base + w;
			iov[i].iov_len -= (size_t)w;
		}
	}
	c->len = 0;
}

void vmm_console_write(struct vmm_console *c, const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)buf[i];
		if (ch != '\n' && ch != '\t' && (ch < 0x20 || ch == 0x7f))
			ch = '?';
		c->line[c->len++] = (char)ch;
		if (ch == '\n' || c->len == sizeof(c->line) - 1) {
			if (ch != '\n')
				c->line[c->len++] = '\n';
			emit(c);
		}
	}
}

void vmm_console_flush(struct vmm_console *c)
{
	if (c->len == 0)
		return;
	c->line[c->len++] = '\n';
	emit(c);
}
