/* The control protocol's table (src/ctl/ctl_proto.c): every command is whole (keys with valid
 * types, an operand denali-ctl can parse, a synopsis, help), has a handler in the supervisor and
 * a printer in denali-ctl, is what the client sends and the server accepts, is refused as before
 * when malformed, and is listed in docs/control.md and docs/cli.md as the table says. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl_proto.h"
#include "ctl_request.h"
#include "ctl_response.h"
#include "unit.h"
#include "vmm/control.h"
#include "vmm/supervisor.h"

/* The placeholder a command's synopsis shows for its operand. */
static const char *operand_word(enum ctl_operand operand)
{
	switch (operand) {
	case CTL_OPERAND_NONE: return NULL;
	case CTL_OPERAND_NAME: return " NAME";
	case CTL_OPERAND_FILE: return " FILE";
	case CTL_OPERAND_SIZE: return " SIZE";
	}
	return "?";
}

START_TEST(test_table_whole)
{
	const struct ctl_command *c = &ctl_commands[_i];
	ck_assert_msg(c->name && *c->name, "command %d has no name", _i);
	/* Found by its name, as itself: names are unique. */
	ck_assert_ptr_eq(ctl_command_find(c->name), c);
	ck_assert_int_eq(ctl_command_id(c), _i);
	size_t n = strlen(c->name);
	ck_assert_msg(c->synopsis && strncmp(c->synopsis, c->name, n) == 0 &&
			      (c->synopsis[n] == '\0' || c->synopsis[n] == ' '),
		      "%s: synopsis \"%s\"", c->name, c->synopsis ? c->synopsis : "(none)");
	ck_assert_msg(c->help && *c->help, "%s has no help", c->name);
	unsigned operand_keys = 0, nkeys = 0;
	for (unsigned k = 0; k < CTL_KEYS_MAX; k++) {
		const struct ctl_key *key = &c->keys[k];
		if (!key->name) {
			for (unsigned after = k + 1; after < CTL_KEYS_MAX; after++)
				ck_assert_msg(!c->keys[after].name, "%s: a key after the end",
					      c->name);
			break;
		}
		nkeys++;
		ck_assert_msg(*key->name && strcmp(key->name, "cmd") != 0, "%s: key \"%s\"",
			      c->name, key->name);
		ck_assert_msg(key->type == CTL_STRING || key->type == CTL_NUMBER,
			      "%s: key %s has no valid type", c->name, key->name);
		ck_assert_ptr_eq(ctl_command_key(c, key->name), key); /* unique */
		if (key->option) {
			/* denali-ctl parses an option's value as seconds, sent as a number; only
			 * with an operand it parses among options (or none). */
			char shown[64];
			snprintf(shown, sizeof(shown), "[%s ", key->option);
			ck_assert_msg(strncmp(key->option, "--", 2) == 0 && !key->required &&
					      key->type == CTL_NUMBER,
				      "%s: option %s", c->name, key->option);
			ck_assert_msg(strstr(c->synopsis, shown), "%s: synopsis lacks %s", c->name,
				      shown);
			ck_assert(c->operand == CTL_OPERAND_NONE || c->operand == CTL_OPERAND_NAME);
		} else {
			operand_keys++;
			ck_assert_msg(key->required && key->type == CTL_STRING,
				      "%s: the operand's key %s", c->name, key->name);
		}
	}
	const char *word = operand_word(c->operand);
	if (c->operand == CTL_OPERAND_NONE) {
		ck_assert_uint_eq(operand_keys, 0);
		ck_assert_ptr_null(c->expected);
	} else {
		ck_assert_msg(operand_keys == 1 && c->expected && *c->expected,
			      "%s: an operand needs one key without an option, and an expected",
			      c->name);
		ck_assert_msg(strstr(c->synopsis, word), "%s: synopsis lacks%s", c->name, word);
	}
	ck_assert_uint_le(nkeys, CTL_KEYS_MAX);
}
END_TEST

START_TEST(test_find)
{
	ck_assert_ptr_null(ctl_command_find("nope"));
	ck_assert_ptr_null(ctl_command_find("List")); /* names are case-sensitive */
	ck_assert_ptr_null(ctl_command_find(""));
	ck_assert_ptr_null(ctl_command_find(NULL));
	ck_assert_ptr_eq(ctl_command_find("swap-out"), &ctl_commands[CTL_SWAP_OUT]);
	json_t *r = json_pack("{s:s}", "cmd", "nope");
	ck_assert_int_eq(ctl_command_of(r), CTL_CMD_COUNT);
	json_decref(r);
	char names[256];
	ctl_command_names(names, sizeof(names));
	ck_assert_str_eq(names, "list, stats, start, stop, kill, swap-out, swap-in, budget, wait, "
				"metrics, shutdown");
	char small[8];
	ctl_command_names(small, sizeof(small));
	ck_assert_str_eq(small, "list, s");
}
END_TEST

/* The server has a handler for every command, and none past the table. */
START_TEST(test_every_command_handled)
{
	for (unsigned i = 0; i < CTL_CMD_COUNT; i++)
		ck_assert_msg(vmm_control_handled(i), "%s has no handler in supervisor.c",
			      ctl_commands[i].name);
	ck_assert(!vmm_control_handled(CTL_CMD_COUNT));
}
END_TEST

/* denali-ctl has a printer for every command: none falls back to "done". */
START_TEST(test_every_command_printed)
{
	json_t *ok = json_pack("{s:b, s:s, s:[], s:s}", "ok", 1, "name", "web", "services", "text",
			       "x\n");
	for (unsigned i = 0; i < CTL_CMD_COUNT; i++) {
		const char *name = ctl_commands[i].name;
		ck_assert_msg(ctl_response_printable(name), "%s has no printer in ctl_response.c",
			      name);
		char *text = ctl_response_format(name, ok);
		ck_assert_ptr_nonnull(text);
		ck_assert_msg(strcmp(text, "done\n") != 0, "%s is printed as \"done\"", name);
		free(text);
	}
	ck_assert(!ctl_response_printable("nope"));
	ck_assert(ctl_response_is_text("metrics"));
	ck_assert(!ctl_response_is_text("list"));
	json_decref(ok);
}
END_TEST

/* What denali-ctl builds for each command, with every option, is what the server accepts. */
START_TEST(test_client_request_accepted)
{
	const struct ctl_command *c = &ctl_commands[_i];
	char file[512], err[512];
	snprintf(file, sizeof(file), "%s/svc.json", unit_tmpdir());
	FILE *f = fopen(file, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	char *argv[2 + 2 * CTL_KEYS_MAX];
	int argc = 0;
	argv[argc++] = (char *)(uintptr_t)c->name;
	const char *operand[] = {NULL, "web", file, "512M"};
	if (operand[c->operand])
		argv[argc++] = (char *)(uintptr_t)operand[c->operand];
	for (unsigned k = 0; k < CTL_KEYS_MAX && c->keys[k].name; k++)
		if (c->keys[k].option) {
			argv[argc++] = (char *)(uintptr_t)c->keys[k].option;
			argv[argc++] = (char *)(uintptr_t) "2.5";
		}
	json_t *request = ctl_request_build(argc, argv, err, sizeof(err));
	ck_assert_msg(request, "%s: %s", c->name, err);
	ck_assert_msg(ctl_command_check(request, err, sizeof(err)) == 0, "%s: %s", c->name, err);
	ck_assert_int_eq(ctl_command_of(request), _i);
	/* Every key the table has was sent. */
	for (unsigned k = 0; k < CTL_KEYS_MAX && c->keys[k].name; k++)
		ck_assert_msg(json_object_get(request, c->keys[k].name), "%s: no %s", c->name,
			      c->keys[k].name);
	char *line = json_dumps(request, JSON_COMPACT);
	json_t *error = NULL;
	json_t *parsed = control_parse_request(line, strlen(line), &error);
	ck_assert_msg(parsed && !error, "%s: the server refused %s", c->name, line);
	json_decref(parsed);
	free(line);
	json_decref(request);
	remove(file);
}
END_TEST

static void assert_refused(const char *line, const char *message)
{
	char err[256];
	json_t *request = json_loads(line, JSON_DECODE_ANY, NULL);
	ck_assert_ptr_nonnull(request);
	ck_assert_int_eq(ctl_command_check(request, err, sizeof(err)), -1);
	ck_assert_msg(strcmp(err, message) == 0, "%s: got \"%s\", want \"%s\"", line, err, message);
	json_decref(request);
	/* The server answers it so: a usage error with that sentence. */
	json_t *error = NULL;
	ck_assert_ptr_null(control_parse_request(line, strlen(line), &error));
	ck_assert_ptr_nonnull(error);
	ck_assert_str_eq(json_string_value(json_object_get(error, "code")), "usage");
	ck_assert_str_eq(json_string_value(json_object_get(error, "error")), message);
	ck_assert(json_is_false(json_object_get(error, "ok")));
	json_decref(error);
}

/* The messages of the schema the table replaced, word for word. */
START_TEST(test_refused_as_before)
{
	assert_refused("[1]", "a request is a JSON object");
	assert_refused("{\"name\":\"a\"}", "key \"cmd\": expected the command, a string");
	assert_refused("{\"cmd\":7}", "key \"cmd\": expected the command, a string");
	assert_refused("{\"cmd\":\"frob\"}", "unknown command \"frob\"");
	assert_refused("{\"cmd\":\"List\"}", "unknown command \"List\"");
	assert_refused("{\"cmd\":\"list\",\"name\":\"a\"}", "list: unknown key \"name\"");
	assert_refused("{\"cmd\":\"stop\",\"name\":\"a\",\"grace\":\"3\"}",
		       "stop: key \"grace\": expected a number");
	assert_refused("{\"cmd\":\"stop\",\"name\":1}", "stop: key \"name\": expected a string");
	assert_refused("{\"cmd\":\"stop\",\"grace\":1}", "stop: key \"name\": missing");
	assert_refused("{\"cmd\":\"budget\"}", "budget: key \"size\": missing");
	assert_refused("{\"cmd\":\"start\",\"file\":null}",
		       "start: key \"file\": expected a string");
}
END_TEST

/* Each command refuses an unknown key, keys of the wrong type and missing required ones. */
START_TEST(test_refused_by_table)
{
	const struct ctl_command *c = &ctl_commands[_i];
	char line[256], message[256];
	snprintf(line, sizeof(line), "{\"cmd\":\"%s\",\"bogus\":1}", c->name);
	snprintf(message, sizeof(message), "%s: unknown key \"bogus\"", c->name);
	assert_refused(line, message);
	for (unsigned k = 0; k < CTL_KEYS_MAX && c->keys[k].name; k++) {
		const struct ctl_key *key = &c->keys[k];
		snprintf(line, sizeof(line), "{\"cmd\":\"%s\",\"%s\":%s}", c->name, key->name,
			 key->type == CTL_STRING ? "1" : "\"1\"");
		snprintf(message, sizeof(message), "%s: key \"%s\": expected %s", c->name,
			 key->name, key->type == CTL_STRING ? "a string" : "a number");
		assert_refused(line, message);
		if (key->required) {
			snprintf(line, sizeof(line), "{\"cmd\":\"%s\"}", c->name);
			snprintf(message, sizeof(message), "%s: key \"%s\": missing", c->name,
				 key->name);
			assert_refused(line, message);
		}
	}
}
END_TEST

/* ---- the docs ---- */

static char *read_doc(const char *name)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", UNIT_DOCS_DIR, name);
	FILE *f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	static char text[1 << 18];
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	ck_assert_uint_lt(n, sizeof(text) - 1);
	text[n] = '\0';
	fclose(f);
	return strdup(text);
}

/* The text between two marks (the first after from, up to the next to), as a new string. */
static char *between(const char *text, const char *from, const char *to)
{
	const char *start = strstr(text, from);
	ck_assert_msg(start != NULL, "no \"%s\"", from);
	start += strlen(from);
	const char *end = strstr(start, to);
	ck_assert_msg(end != NULL, "no \"%s\" after \"%s\"", to, from);
	return strndup(start, (size_t)(end - start));
}

/* The next `code` span from *p on, as a new string (NULL at the end); moves *p past it. */
static char *next_code(const char **p, const char *end)
{
	const char *open = strchr(*p, '`');
	if (!open || open >= end)
		return NULL;
	const char *close = strchr(open + 1, '`');
	ck_assert(close != NULL && close < end);
	*p = close + 1;
	return strndup(open + 1, (size_t)(close - open - 1));
}

/* A paragraph that lists the synopses as `code`, in the table's order: the code spans whose
 * first word is a command are exactly the synopses (line breaks count as spaces). */
static void assert_synopses(const char *doc, const char *from, const char *to)
{
	char *text = read_doc(doc);
	char *list = between(text, from, to);
	for (char *q = list; *q; q++)
		if (*q == '\n')
			*q = ' ';
	const char *p = list;
	unsigned i = 0;
	char *code;
	while ((code = next_code(&p, list + strlen(list)))) {
		char first[64];
		snprintf(first, sizeof(first), "%.*s", (int)strcspn(code, " "), code);
		if (ctl_command_find(first)) {
			ck_assert_msg(i < CTL_CMD_COUNT, "%s lists `%s` more", doc, code);
			ck_assert_msg(strcmp(code, ctl_commands[i].synopsis) == 0,
				      "%s lists `%s` where the table has `%s`", doc, code,
				      ctl_commands[i].synopsis);
			i++;
		}
		free(code);
	}
	ck_assert_msg(i == CTL_CMD_COUNT, "%s lists %u commands, the table has %u", doc, i,
		      (unsigned)CTL_CMD_COUNT);
	free(list);
	free(text);
}

/* docs/control.md's table of requests: one row per command, in the table's order, with its
 * keys (each "`key`..." in the second column, "(optional" for the ones not required). */
START_TEST(test_docs_requests)
{
	char *text = read_doc("control.md");
	char *table = between(text, "## Requests and responses", "\n## ");
	unsigned i = 0;
	for (const char *line = table; line && *line; line = strchr(line, '\n')) {
		line += *line == '\n';
		if (strncmp(line, "| `", 3) != 0)
			continue;
		const char *eol = strchr(line, '\n');
		eol = eol ? eol : line + strlen(line);
		const char *p = line;
		char *name = next_code(&p, eol);
		ck_assert_msg(i < CTL_CMD_COUNT, "docs/control.md has `%s` more", name);
		const struct ctl_command *c = &ctl_commands[i++];
		ck_assert_msg(strcmp(name, c->name) == 0,
			      "docs/control.md has `%s` where the table "
			      "has `%s`",
			      name, c->name);
		/* The second column (no '|' in it), split at "; ": each part opens with its
		 * key. */
		const char *bar = strchr(p, '|');
		ck_assert_ptr_nonnull(bar);
		const char *keys = bar + 1, *keys_end = strchr(keys, '|');
		ck_assert_ptr_nonnull(keys_end);
		while (keys < keys_end && *keys == ' ')
			keys++;
		while (keys_end > keys && keys_end[-1] == ' ')
			keys_end--;
		unsigned documented = 0;
		for (const char *part = keys; part < keys_end;) {
			const char *part_end = strstr(part, "; ");
			if (!part_end || part_end > keys_end)
				part_end = keys_end;
			const char *q = part;
			char *key = next_code(&q, part_end);
			ck_assert_msg(key && q == part + strlen(key) + 2,
				      "docs/control.md, %s: a key part that is not `key`...", name);
			const struct ctl_key *k = ctl_command_key(c, key);
			ck_assert_msg(k, "docs/control.md: %s has no key %s", name, key);
			char *part_text = strndup(part, (size_t)(part_end - part));
			ck_assert_msg(!k->required == !!strstr(part_text, "(optional"),
				      "docs/control.md: %s's key %s: say (optional iff it is", name,
				      key);
			free(part_text);
			documented++;
			free(key);
			part = part_end == keys_end ? keys_end : part_end + 2;
		}
		unsigned nkeys = 0;
		while (nkeys < CTL_KEYS_MAX && c->keys[nkeys].name)
			nkeys++;
		ck_assert_msg(documented == nkeys, "docs/control.md: %s has %u keys, the table %u",
			      name, documented, nkeys);
		free(name);
	}
	ck_assert_msg(i == CTL_CMD_COUNT, "docs/control.md has %u commands, the table %u", i,
		      (unsigned)CTL_CMD_COUNT);
	free(table);
	free(text);
}
END_TEST

START_TEST(test_docs_synopses)
{
	assert_synopses("control.md", "- Commands and their arguments:", "\n- ");
	assert_synopses("cli.md", "The commands are", "what each does");
}
END_TEST

Suite *ctl_proto_suite(void)
{
	Suite *s = suite_create("ctl_proto");
	TCase *tc = tcase_create("table");
	tcase_add_loop_test(tc, test_table_whole, 0, CTL_CMD_COUNT);
	tcase_add_test(tc, test_find);
	tcase_add_test(tc, test_every_command_handled);
	tcase_add_test(tc, test_every_command_printed);
	tcase_add_loop_test(tc, test_client_request_accepted, 0, CTL_CMD_COUNT);
	tcase_add_test(tc, test_refused_as_before);
	tcase_add_loop_test(tc, test_refused_by_table, 0, CTL_CMD_COUNT);
	suite_add_tcase(s, tc);
	tc = tcase_create("docs");
	tcase_add_test(tc, test_docs_requests);
	tcase_add_test(tc, test_docs_synopses);
	suite_add_tcase(s, tc);
	return s;
}
