/* A service's console: the guest's bytes, made safe for a terminal and written out by line. */
#include "console.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

void vmm_console_init(struct vmm_console *c, int fd, const char *prefix)
{
	c->fd = fd;
	c->prefix = prefix;
	c->len = 0;
	c->cancel = NULL;
	c->prev = 0;
	c->utf8_left = 0;
	c->utf8_have = 0;
	c->line = NULL;
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
		if (w < 0 && errno == EINTR && !(c->cancel && *c->cancel))
			continue; /* a kick; a stop request abandons the line instead */
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

/* Maps one guest byte to what the terminal sees, tracking UTF-8 sequences: C0 controls but
 * tab and newline, DEL, C1 controls (raw, or UTF-8 encoded as C2 80-9F) and stray bytes >= 0x80
 * become '?'. Returns -1 when the byte is dropped (it replaced its lead byte). */
static int sanitize(struct vmm_console *c, unsigned char ch)
{
	if (c->utf8_left && ch >= 0x80 && ch <= 0xbf) {
		c->utf8_left--;
		c->utf8_have++;
		if (c->prev == 0xc2 && ch <= 0x9f) {
			/* U+0080-U+009F: a C1 control. Its lead is on this line (a cut carries
			 * an unfinished sequence over), so the pair becomes one '?'. */
			c->line[c->len - 1] = '?';
			c->prev = ch;
			c->utf8_left = c->utf8_have = 0;
			return -1;
		}
		c->prev = ch;
		if (!c->utf8_left)
			c->utf8_have = 0;
		return ch;
	}
	c->utf8_left = c->utf8_have = 0;
	c->prev = ch;
	if (ch < 0x80)
		return (ch < 0x20 && ch != '\n' && ch != '\t') || ch == 0x7f ? '?' : ch;
	if (ch >= 0xc2 && ch <= 0xdf)
		c->utf8_left = 1;
	else if (ch >= 0xe0 && ch <= 0xef)
		c->utf8_left = 2;
	else if (ch >= 0xf0 && ch <= 0xf4)
		c->utf8_left = 3;
	else
		return '?';
	c->utf8_have = 1;
	return ch;
}

/* A line cut for length: an unfinished UTF-8 sequence at its end (at most 3 bytes) moves to
 * the next line, so its continuation is still checked against its lead (a cut between C2 and
 * 9B must not let a bare 9B through). */
static void cut_line(struct vmm_console *c)
{
	char carry[4];
	size_t keep = c->utf8_left ? c->utf8_have : 0;
	c->len -= keep;
	memcpy(carry, c->line + c->len, keep);
	c->line[c->len++] = '\n';
	emit(c);
	memcpy(c->line, carry, keep);
	c->len = keep;
}

void vmm_console_write(struct vmm_console *c, const char *buf, size_t len)
{
	if (!c->line && len && !(c->line = malloc(VMM_CONSOLE_LINE_MAX)))
		return; /* out of memory: console output is not worth stopping the guest */
	for (size_t i = 0; i < len; i++) {
		int ch = sanitize(c, (unsigned char)buf[i]);
		if (ch < 0)
			continue;
		c->line[c->len++] = (char)ch;
		if (ch == '\n')
			emit(c);
		else if (c->len == VMM_CONSOLE_LINE_MAX - 1)
			cut_line(c);
	}
}

void vmm_console_flush(struct vmm_console *c)
{
	if (c->len == 0)
		return;
	/* An unfinished sequence ends here: its bytes become '?', and what follows it is
	 * judged alone (a stray continuation byte is a '?'). */
	for (size_t i = c->len - (c->utf8_left ? c->utf8_have : 0); i < c->len; i++)
		c->line[i] = '?';
	c->utf8_left = c->utf8_have = 0;
	c->line[c->len++] = '\n';
	emit(c);
}

void vmm_console_release(struct vmm_console *c)
{
	vmm_console_flush(c);
	free(c->line);
	c->line = NULL;
}
