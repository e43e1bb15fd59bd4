/* Hostile input: random and mutated frames must not crash, hang or corrupt the stack, which
 * must still answer a ping and accept a connection afterwards (run under ASan/UBSan). */
#include <stdlib.h>
#include <string.h>

#include "net_internal.h"
#include "net_wire.h"
#include "unit.h"

START_TEST(test_fuzz_placeholder)
{
}
END_TEST

Suite *net_fuzz_suite(void)
{
	Suite *s = suite_create("net_fuzz");
	TCase *tc = tcase_create("fuzz");
	tcase_add_test(tc, test_fuzz_placeholder);
	suite_add_tcase(s, tc);
	return s;
}
