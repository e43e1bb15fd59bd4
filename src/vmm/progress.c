/* The progress line (see progress.h). */
#include "progress.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

void progress_format(char *buf, size_t len, const char *verb, unsigned up, unsigned failed,
		     unsigned total, double seconds)
{
	double rate = seconds > 0 ? (double)(up + failed) / seconds : 0;
	int n = snprintf(buf, len, "denali-run: %s %u/%u services (%.1f/s)", verb, up, total, rate);
	if (failed && n >= 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, ", %u failed", failed);
}

void progress_init(struct progress *p, const char *verb, unsigned total, int on_terminal,
		   int64_t now_ns)
{
	memset(p, 0, sizeof(*p));
	p->enabled = on_terminal && total > PROGRESS_MIN_SERVICES;
	p->verb = verb;
	p->total = total;
	p->started_ns = now_ns;
}

static void draw(struct progress *p, unsigned up, unsigned failed, int64_t now_ns, int last)
{
	char line[160];
	progress_format(line, sizeof(line), p->verb, up, failed, p->total,
			(double)(now_ns - p->started_ns) / 1e9);
	size_t len = strlen(line);
	/* Blanks what a longer line left; one write, so that it is not torn by others. */
	char out[sizeof(line) + 2 * 80 + 4];
	size_t pad = p->drawn_len > len ? p->drawn_len - len : 0;
	if (pad > 80)
		pad = 80;
	int n = snprintf(out, sizeof(out), "\r%s%*s%s", line, (int)pad, "", last ? "\n" : "");
	if (n > 0 && write(STDERR_FILENO, out, (size_t)n) < 0)
		p->enabled = 0; /* a terminal gone: nothing more to draw */
	p->drawn_len = len;
	p->drawn_ns = now_ns;
}

void progress_update(struct progress *p, unsigned up, unsigned failed, int64_t now_ns)
{
	if (!p->enabled || p->finished)
		return;
	int last = up + failed >= p->total;
	if (!last && p->drawn_len && now_ns - p->drawn_ns < PROGRESS_REDRAW_NS)
		return;
	draw(p, up, failed, now_ns, last);
	p->finished = last;
}

void progress_finish(struct progress *p)
{
	if (p->enabled && !p->finished && p->drawn_len && write(STDERR_FILENO, "\n", 1) < 0)
		p->enabled = 0;
	p->finished = 1;
}
