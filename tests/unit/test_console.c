/* The console: line buffering, prefixes, and sanitizing of hostile bytes. */
#include <string.h>
#include <unistd.h>

#include "console.h"
#include "unit.h"

static struct vmm_console c;

static const char *drain(int fd)
{
	static char buf[16384];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

START_TEST(test_lines)
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	vmm_console_init(&c, p[1], NULL);
	vmm_console_write(&c, "hel", 3);
	vmm_console_write(&c, "lo\nwor", 6);
	ck_assert_str_eq(drain(p[0]), "hello\n"); /* only the complete line so far */
	vmm_console_write(&c, "ld\x1b[2J\a\r\t\x7f\n", 11);
	ck_assert_str_eq(drain(p[0]), "world?[2J??\t?\n");
	/* C1 controls: CSI as UTF-8 (C2 9B) and raw; other UTF-8 passes. */
	vmm_console_write(&c,
			  "a\xc2\x9b"
			  "7m\x9b\xc3\xa9\n",
			  9);
	ck_assert_str_eq(drain(p[0]), "a?7m?\xc3\xa9\n");
	vmm_console_write(&c, "tail", 4);
	vmm_console_flush(&c);
	ck_assert_str_eq(drain(p[0]), "tail\n");
	vmm_console_flush(&c); /* nothing pending: nothing written */
	/* Released (a service asleep keeps no buffer), it writes on as before. */
	vmm_console_write(&c, "part", 4);
	vmm_console_release(&c);
	ck_assert_ptr_null(c.line);
	ck_assert_str_eq(drain(p[0]), "part\n");
	vmm_console_write(&c, "again\n", 6);
	ck_assert_str_eq(drain(p[0]), "again\n");
	vmm_console_release(&c);
	vmm_console_init(&c, p[1], "web");
	vmm_console_write(&c, "a\nb\n", 4);
	ck_assert_str_eq(drain(p[0]), "[web] a\n[web] b\n");
	vmm_console_release(&c);
	close(p[0]);
	close(p[1]);
}
END_TEST

START_TEST(test_long_line)
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	vmm_console_init(&c, p[1], NULL);
	static char big[VMM_CONSOLE_LINE_MAX + 10];
	memset(big, 'x', sizeof(big));
	vmm_console_write(&c, big, sizeof(big));
	vmm_console_flush(&c);
	const char *out = drain(p[0]);
	/* Split into pieces of at most a line buffer, each ending in a newline. */
	ck_assert_uint_eq(strlen(out), sizeof(big) + 2);
	ck_assert_int_eq(out[VMM_CONSOLE_LINE_MAX - 1], '\n');
	vmm_console_release(&c);
	close(p[0]);
	close(p[1]);
}
END_TEST

/* The reviewer's case: a line cut between a C2 lead and its continuation 9B (a C1 CSI) must
 * not pass a bare 9B at the start of the next line; a valid sequence cut there stays whole. */
START_TEST(test_cut_in_sequence)
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	vmm_console_init(&c, p[1], NULL);
	static char big[VMM_CONSOLE_LINE_MAX - 2 + 6];
	memset(big, 'x', VMM_CONSOLE_LINE_MAX - 2);
	memcpy(big + VMM_CONSOLE_LINE_MAX - 2, "\xc2\x9b[31m", 6);
	vmm_console_write(&c, big, sizeof(big));
	vmm_console_flush(&c);
	const char *out = drain(p[0]);
	ck_assert_ptr_null(memchr(out, 0x9b, strlen(out)));
	ck_assert_str_eq(out + VMM_CONSOLE_LINE_MAX - 2, "\n?[31m\n");
	/* A valid two-byte character at the cut moves whole to the next line. */
	memcpy(big + VMM_CONSOLE_LINE_MAX - 2, "\xc3\xa9z\n", 4);
	vmm_console_write(&c, big, VMM_CONSOLE_LINE_MAX + 2);
	out = drain(p[0]);
	ck_assert_str_eq(out + VMM_CONSOLE_LINE_MAX - 2, "\n\xc3\xa9z\n");
	/* A flush in the middle of a sequence: its lead becomes '?', so does its continuation. */
	vmm_console_write(&c, "a\xc2", 2);
	vmm_console_flush(&c);
	vmm_console_write(&c,
			  "\x9b"
			  "b\n",
			  3);
	ck_assert_str_eq(drain(p[0]), "a?\n?b\n");
	vmm_console_release(&c);
	close(p[0]);
	close(p[1]);
}
END_TEST

Suite *console_suite(void)
{
	Suite *s = suite_create("console");
	TCase *tc = tcase_create("console");
	tcase_add_test(tc, test_lines);
	tcase_add_test(tc, test_long_line);
	tcase_add_test(tc, test_cut_in_sequence);
	suite_add_tcase(s, tc);
	return s;
}
