/* service.json: good files load with the right values; every bad one is refused with a
 * message naming the file, the key and the problem. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "unit.h"

static const struct vmm_config_limits limits = {.ram_max = 64u << 20};

/* Writes text to <tmp>/<file> and returns its path (static buffer). */
static const char *write_file(const char *file, const char *text)
{
	static char path[512];
	snprintf(path, sizeof(path), "%s/%s", unit_tmpdir(), file);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	return path;
}

START_TEST(test_minimal)
{
	const char *path = write_file("web-1.json", "{\"image\": \"img/hello\"}");
	struct vmm_service_config cfg;
	char err[512] = "";
	ck_assert_msg(vmm_config_load(path, &limits, &cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(cfg.name, "web-1"); /* from the file name */
	ck_assert_uint_eq(cfg.ram_size, VMM_CONFIG_DEFAULT_RAM);
	ck_assert_uint_eq(cfg.argc, 0);
	char want[600];
	snprintf(want, sizeof(want), "%s/img/hello", unit_tmpdir());
	ck_assert_str_eq(cfg.image, want); /* relative to the JSON file's folder */
	ck_assert_str_eq(cfg.source, path);
	vmm_config_free(&cfg);
	vmm_config_free(&cfg); /* twice is harmless */
}
END_TEST

START_TEST(test_full)
{
	const char *path =
		write_file("full.json", "{\"name\": \"Echo_2.b\", \"image\": \"/abs/echo\","
					" \"memory\": \"32M\", \"args\": [\"-v\", \"\", \"x y\"]}");
	struct vmm_service_config cfg;
	char err[512] = "";
	ck_assert_msg(vmm_config_load(path, &limits, &cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(cfg.name, "Echo_2.b");
	ck_assert_str_eq(cfg.image, "/abs/echo");
	ck_assert_uint_eq(cfg.ram_size, 32u << 20);
	ck_assert_uint_eq(cfg.argc, 3);
	ck_assert_str_eq(cfg.args[0], "-v");
	ck_assert_str_eq(cfg.args[1], "");
	ck_assert_str_eq(cfg.args[2], "x y");
	vmm_config_free(&cfg);
}
END_TEST

START_TEST(test_memory_integer_and_limit)
{
	const char *path = write_file("int.json", "{\"image\": \"h\", \"memory\": 8388608}");
	struct vmm_service_config cfg;
	char err[512] = "";
	ck_assert_msg(vmm_config_load(path, &limits, &cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(cfg.ram_size, 8u << 20);
	vmm_config_free(&cfg);
	path = write_file("max.json", "{\"image\": \"h\", \"memory\": \"64M\"}");
	ck_assert_msg(vmm_config_load(path, &limits, &cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(cfg.ram_size, 64u << 20);
	vmm_config_free(&cfg);
}
END_TEST

START_TEST(test_args_at_limits)
{
	/* 64 arguments of 47 bytes + NUL = 3072 bytes: exactly the limit. */
	char json[8192] = "{\"image\": \"h\", \"args\": [";
	for (int i = 0; i < 64; i++) {
		strcat(json, i ? ", \"" : "\"");
		for (int j = 0; j < 47; j++)
			strcat(json, "a");
		strcat(json, "\"");
	}
	strcat(json, "]}");
	const char *path = write_file("args-max.json", json);
	struct vmm_service_config cfg;
	char err[512] = "";
	ck_assert_msg(vmm_config_load(path, &limits, &cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(cfg.argc, 64);
	vmm_config_free(&cfg);
}
END_TEST

static const struct {
	const char *file;
	const char *json;
	const char *expect; /* must appear in the message */
} bad[] = {
	{"syntax.json", "{\"image\": ", "syntax.json:1:"},
	{"top-array.json", "[1, 2]", "expected a JSON object at the top level, got an array"},
	{"unknown-key.json", "{\"image\": \"h\", \"colour\": 1}", "key \"colour\": unknown key"},
	{"no-image.json", "{\"name\": \"a\"}", "key \"image\": missing"},
	{"image-type.json", "{\"image\": 5}", "key \"image\": expected a string, got an integer"},
	{"image-empty.json", "{\"image\": \"\"}", "key \"image\": is empty"},
	{"mem-suffix.json", "{\"image\": \"h\", \"memory\": \"12Q\"}",
	 "key \"memory\": invalid size \"12Q\""},
	{"mem-zero.json", "{\"image\": \"h\", \"memory\": \"0\"}",
	 "key \"memory\": 0 bytes is below the minimum of 4M"},
	{"mem-small.json", "{\"image\": \"h\", \"memory\": \"3M\"}", "below the minimum"},
	{"mem-align.json", "{\"image\": \"h\", \"memory\": \"5M\"}", "not a multiple of 2M"},
	{"mem-host.json", "{\"image\": \"h\", \"memory\": \"128M\"}",
	 "128M is more than this host allows (64M)"},
	{"mem-neg.json", "{\"image\": \"h\", \"memory\": -5}",
	 "key \"memory\": must not be negative"},
	{"mem-array.json", "{\"image\": \"h\", \"memory\": [16]}",
	 "key \"memory\": expected a size string like \"16M\" or an integer, got an array"},
	{"mem-real.json", "{\"image\": \"h\", \"memory\": 16.5}", "got a number"},
	{"mem-space.json", "{\"image\": \"h\", \"memory\": \"16 M\"}", "invalid size"},
	{"mem-overflow.json", "{\"image\": \"h\", \"memory\": \"99999999999999999999G\"}",
	 "invalid size"},
	{"name-path.json", "{\"image\": \"h\", \"name\": \"../etc\"}",
	 "key \"name\": \"../etc\" is not a valid service name"},
	{"name-type.json", "{\"image\": \"h\", \"name\": 3}", "key \"name\": expected a string"},
	{"name-long.json",
	 "{\"image\": \"h\", \"name\": "
	 "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
	 "not a valid service name"},
	{"name-empty.json", "{\"image\": \"h\", \"name\": \"\"}", "not a valid service name"},
	{"bad name.json", "{\"image\": \"h\"}",
	 "missing, and the file name \"bad name\" is not a valid service name"},
	{"args-type.json", "{\"image\": \"h\", \"args\": \"-v\"}",
	 "key \"args\": expected an array of strings, got a string"},
	{"args-elem.json", "{\"image\": \"h\", \"args\": [\"a\", 2]}",
	 "key \"args\": element 1: expected a string, got an integer"},
	{"args-nul.json", "{\"image\": \"h\", \"args\": [\"a\\u0000b\"]}", "args-nul.json:1:"},
	{"dup-key.json", "{\"image\": \"a\", \"image\": \"b\"}", "duplicate"},
	{"null-image.json", "{\"image\": null}", "key \"image\": expected a string, got null"},
};

START_TEST(test_bad_file)
{
	const char *path = write_file(bad[_i].file, bad[_i].json);
	struct vmm_service_config cfg;
	char err[512] = "";
	ck_assert_msg(vmm_config_load(path, &limits, &cfg, err, sizeof(err)) == -1,
		      "%s was accepted", bad[_i].file);
	ck_assert_msg(strstr(err, bad[_i].file) != NULL, "message does not name the file: %s", err);
	ck_assert_msg(strstr(err, bad[_i].expect) != NULL, "for %s: want \"%s\" in \"%s\"",
		      bad[_i].file, bad[_i].expect, err);
	ck_assert_ptr_null(cfg.image); /* nothing is left allocated */
	ck_assert_ptr_null(cfg.args);
}
END_TEST

START_TEST(test_too_many_args)
{
	char json[1024] = "{\"image\": \"h\", \"args\": [";
	for (int i = 0; i < 65; i++)
		strcat(json, i ? ",\"x\"" : "\"x\"");
	strcat(json, "]}");
	const char *path = write_file("args-many.json", json);
	struct vmm_service_config cfg;
	char err[512];
	ck_assert_int_eq(vmm_config_load(path, &limits, &cfg, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "key \"args\": 65 arguments, at most 64") != NULL, "%s", err);
}
END_TEST

START_TEST(test_args_too_long)
{
	char *json = malloc(8192);
	strcpy(json, "{\"image\": \"h\", \"args\": [\"");
	for (int i = 0; i < 3072; i++)
		strcat(json, "a");
	strcat(json, "\"]}");
	const char *path = write_file("args-long.json", json);
	free(json);
	struct vmm_service_config cfg;
	char err[512];
	ck_assert_int_eq(vmm_config_load(path, &limits, &cfg, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "key \"args\": 3073 bytes in all, at most 3072") != NULL, "%s",
		      err);
}
END_TEST

START_TEST(test_missing_file)
{
	struct vmm_service_config cfg;
	char err[512];
	ck_assert_int_eq(
		vmm_config_load("/nonexistent/dir/svc.json", &limits, &cfg, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "/nonexistent/dir/svc.json") != NULL, "%s", err);
}
END_TEST

START_TEST(test_name_rules)
{
	ck_assert(vmm_config_name_valid("a"));
	ck_assert(vmm_config_name_valid("web-01.example_x"));
	ck_assert(!vmm_config_name_valid(".hidden"));
	ck_assert(!vmm_config_name_valid("-flag"));
	ck_assert(!vmm_config_name_valid("a/b"));
	ck_assert(!vmm_config_name_valid("a b"));
	ck_assert(!vmm_config_name_valid("caf\xc3\xa9"));
	char name[80];
	memset(name, 'n', sizeof(name));
	name[63] = '\0';
	ck_assert(vmm_config_name_valid(name));
	name[63] = 'n';
	name[64] = '\0';
	ck_assert(!vmm_config_name_valid(name));
}
END_TEST

/* tap interface names, checked as the kernel's dev_valid_name would, when the file is read. */
static const char *const bad_ifnames[] = {
	"",
	"a b\\n:c", /* the reviewer's: whitespace, a newline and a colon */
	"a b",
	"tab\\tx",
	"nl\\n",
	"cr\\r",
	"vt\\u000b",
	"ff\\f",
	"a:1",
	"a/b",
	".",
	"..",
	"nbsp\\u00a0",		 /* C2 A0: the kernel's isspace() takes A0 for a space */
	"abcdefghijklmnop",	 /* 16 bytes: IFNAMSIZ with its NUL is 16 */
	"caf\\u00e9abcdefghijk", /* 15 characters but 16 bytes */
};

START_TEST(test_tap_name_rules)
{
	char json[256];
	snprintf(json, sizeof(json),
		 "{\"image\": \"h\", \"net\": {\"ip\": \"10.1.0.2\", "
		 "\"uplink\": \"tap:%s\"}}",
		 bad_ifnames[_i]);
	const char *path = write_file("tap.json", json);
	struct vmm_service_config cfg;
	char err[512] = "";
	ck_assert_msg(vmm_config_load(path, &limits, &cfg, err, sizeof(err)) == -1,
		      "tap:%s was accepted", bad_ifnames[_i]);
	ck_assert_msg(strstr(err, "key \"net.uplink\"") &&
			      strstr(err, "not a valid interface name"),
		      "%s", err);
	ck_assert_ptr_null(strchr(err, '\n')); /* the message stays on one line */
}
END_TEST

START_TEST(test_tap_name_good)
{
	static const char *const good[] = {"tap0", "abcdefghijklmno", "a.b-c_d", "...",
					   "caf\xc3\xa9"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(vmm_ifname_valid(good[i], strlen(good[i])), "%s", good[i]);
	char json[256];
	snprintf(json, sizeof(json),
		 "{\"image\": \"h\", \"net\": {\"ip\": \"10.1.0.2\", "
		 "\"uplink\": \"tap:abcdefghijklmno\"}}");
	const char *path = write_file("tap-good.json", json);
	struct vmm_service_config cfg;
	char err[512] = "";
	ck_assert_msg(vmm_config_load(path, &limits, &cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(cfg.net.tap, "abcdefghijklmno");
	vmm_config_free(&cfg);
}
END_TEST

START_TEST(test_host_limits)
{
	struct vmm_config_limits l = vmm_config_host_limits();
	ck_assert_uint_ge(l.ram_max, DN_RAM_MIN);
	ck_assert_uint_le(l.ram_max, DN_RAM_MAX);
	ck_assert_uint_eq(l.ram_max % DN_RAM_ALIGN, 0);
}
END_TEST

Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("load");
	tcase_add_test(tc, test_minimal);
	tcase_add_test(tc, test_full);
	tcase_add_test(tc, test_memory_integer_and_limit);
	tcase_add_test(tc, test_args_at_limits);
	tcase_add_loop_test(tc, test_bad_file, 0, sizeof(bad) / sizeof(bad[0]));
	tcase_add_test(tc, test_too_many_args);
	tcase_add_test(tc, test_args_too_long);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_name_rules);
	tcase_add_test(tc, test_host_limits);
	tcase_add_loop_test(tc, test_tap_name_rules, 0,
			    sizeof(bad_ifnames) / sizeof(bad_ifnames[0]));
	tcase_add_test(tc, test_tap_name_good);
	suite_add_tcase(s, tc);
	return s;
}
