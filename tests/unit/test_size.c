/* Size parsing: "16M" and friends. */
#include <stdint.h>

#include "size.h"
#include "unit.h"

static const struct {
	const char *text;
	uint64_t value;
} good[] = {
	{"0", 0},
	{"4096", 4096},
	{"16M", 16ull << 20},
	{"16m", 16ull << 20},
	{"16MiB", 16ull << 20},
	{"16MB", 16ull << 20},
	{"64K", 64ull << 10},
	{"1G", 1ull << 30},
	{"2T", 2ull << 40},
	{"7B", 7},
	{"18446744073709551615", UINT64_MAX},
	{"16777215T", 16777215ull << 40},
};

static const char *const bad[] = {
	"",
	"K",
	"M16",
	"-1",
	"+1",
	"1.5M",
	"16 M",
	" 16M",
	"16M ",
	"12Q",
	"16MiBs",
	"16Mi",
	"18446744073709551616",
	"16777216T",
	"99999999999999999999G",
	"0x10",
	"1e6",
};

START_TEST(test_size_good)
{
	uint64_t v = 12345;
	ck_assert_int_eq(vmm_size_parse(good[_i].text, &v), 0);
	ck_assert_uint_eq(v, good[_i].value);
}
END_TEST

START_TEST(test_size_bad)
{
	uint64_t v = 12345;
	ck_assert_msg(vmm_size_parse(bad[_i], &v) == -1, "\"%s\" was accepted", bad[_i]);
	ck_assert_uint_eq(v, 12345);
}
END_TEST

START_TEST(test_size_null)
{
	uint64_t v;
	ck_assert_int_eq(vmm_size_parse(NULL, &v), -1);
}
END_TEST

Suite *size_suite(void)
{
	Suite *s = suite_create("size");
	TCase *tc = tcase_create("parse");
	tcase_add_loop_test(tc, test_size_good, 0, sizeof(good) / sizeof(good[0]));
	tcase_add_loop_test(tc, test_size_bad, 0, sizeof(bad) / sizeof(bad[0]));
	tcase_add_test(tc, test_size_null);
	suite_add_tcase(s, tc);
	return s;
}
