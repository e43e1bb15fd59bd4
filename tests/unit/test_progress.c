/* The progress line: its text, and that it stays quiet off a terminal. */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "progress.h"
#include "unit.h"

START_TEST(test_format)
{
	char line[160];
	progress_format(line, sizeof(line), "starting", 120, 0, 1000, 2.0);
	ck_assert_str_eq(line, "denali-run: starting 120/1000 services (60.0/s)");
	progress_format(line, sizeof(line), "resuming", 7, 3, 10, 0.5);
	ck_assert_str_eq(line, "denali-run: resuming 7/10 services (20.0/s), 3 failed");
	progress_format(line, sizeof(line), "starting", 0, 0, 10, 0);
	ck_assert_str_eq(line, "denali-run: starting 0/10 services (0.0/s)");
	progress_format(line, 20, "starting", 5, 1, 10, 1); /* cut, never overrun */
	ck_assert_uint_eq(strlen(line), 19);
}
END_TEST

/* Captures what the line writes to stderr while f runs. */
static size_t stderr_bytes(void (*f)(int on_terminal, unsigned total), int on_terminal,
			   unsigned total, char *out, size_t len)
{
	FILE *tmp = tmpfile();
	ck_assert_ptr_nonnull(tmp);
	int saved = dup(STDERR_FILENO);
	dup2(fileno(tmp), STDERR_FILENO);
	f(on_terminal, total);
	dup2(saved, STDERR_FILENO);
	close(saved);
	lseek(fileno(tmp), 0, SEEK_SET);
	ssize_t got = read(fileno(tmp), out, len - 1);
	if (got < 0)
		got = 0;
	out[got] = '\0';
	fclose(tmp);
	return (size_t)got;
}

static void start_fleet(int on_terminal, unsigned total)
{
	struct progress p;
	progress_init(&p, "starting", total, on_terminal, 0);
	progress_update(&p, 1, 0, 1000);	       /* drawn: the first */
	progress_update(&p, 2, 0, 2000);	       /* too soon: not drawn */
	progress_update(&p, total - 1, 1, 1000000000); /* all accounted for: the last, ended */
	progress_update(&p, total - 1, 1, 2000000000); /* finished: nothing more */
	progress_finish(&p);
}

START_TEST(test_drawn_on_terminal)
{
	char out[1024];
	stderr_bytes(start_fleet, 1, 20, out, sizeof(out));
	ck_assert_str_eq(out, "\rdenali-run: starting 1/20 services (1000000.0/s)"
			      "\rdenali-run: starting 19/20 services (20.0/s), 1 failed\n");
}
END_TEST

START_TEST(test_quiet_off_terminal_or_small)
{
	char out[1024];
	ck_assert_uint_eq(stderr_bytes(start_fleet, 0, 20, out, sizeof(out)), 0);
	ck_assert_uint_eq(stderr_bytes(start_fleet, 1, PROGRESS_MIN_SERVICES, out, sizeof(out)), 0);
}
END_TEST

Suite *progress_suite(void)
{
	Suite *s = suite_create("progress");
	TCase *tc = tcase_create("line");
	tcase_add_test(tc, test_format);
	tcase_add_test(tc, test_drawn_on_terminal);
	tcase_add_test(tc, test_quiet_off_terminal_or_small);
	suite_add_tcase(s, tc);
	return s;
}
