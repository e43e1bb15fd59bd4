/* The progress line: while a fleet of more than a handful of services starts (or resumes), a
 * terminal shows one line, redrawn in place, with how many are up, how fast, and how many
 * failed. Nothing is drawn when stderr is not a terminal (logs and pipes stay clean). */
#ifndef VMM_PROGRESS_H
#define VMM_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

#define PROGRESS_MIN_SERVICES 8	     /* fewer start too quickly to need a line */
#define PROGRESS_REDRAW_NS 100000000 /* at most ten redraws a second */

struct progress {
	int enabled, finished;
	const char *verb; /* "starting", "resuming" */
	unsigned total;
	int64_t started_ns, drawn_ns;
	size_t drawn_len; /* of the line on screen, to blank what a shorter one leaves */
};

/* Enabled only on a terminal and for more than PROGRESS_MIN_SERVICES services. */
void progress_init(struct progress *p, const char *verb, unsigned total, int on_terminal,
		   int64_t now_ns);

/* up services running, failed that could not start, at now_ns: redraws if it is time, and
 * ends the line once every service is accounted for. */
void progress_update(struct progress *p, unsigned up, unsigned failed, int64_t now_ns);

/* Ends the line if it is still drawn (the fleet stopped before all had started). */
void progress_finish(struct progress *p);

/* The line's text, without the leading carriage return (pure, for tests). */
void progress_format(char *buf, size_t len, const char *verb, unsigned up, unsigned failed,
		     unsigned total, double seconds);

#endif
