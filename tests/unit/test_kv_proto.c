/* kv's request-line parser on the host: every command, line ends, pipelining, bad and oversized
 * lines, bad lengths, keys with bad bytes, value ends, and fuzzed input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kv_format.h"
#include "kv_proto.h"
#include "unit.h"

/* Parses text[0, len) from an exact-size heap copy, so that ASan sees any overread. */
static enum kv_parse_result parse_n(const char *text, size_t len, struct kv_request *req)
{
	static char *copy;
	free(copy);
	copy = malloc(len ? len : 1);
	ck_assert_ptr_nonnull(copy);
	memcpy(copy, text, len);
	enum kv_parse_result r = kv_parse_line(copy, len, req);
	if (req->key) {
		ck_assert(req->key >= copy && req->key + req->klen <= copy + len);
		/* point into the caller's text instead, which outlives the copy */
		req->key = text + (req->key - copy);
	}
	if (r != KV_PARSE_INCOMPLETE && r != KV_PARSE_FATAL)
		ck_assert_uint_le(req->line_len, len);
	return r;
}

static enum kv_parse_result parse(const char *text, struct kv_request *req)
{
	return parse_n(text, strlen(text), req);
}

static int key_is(const struct kv_request *req, const char *want)
{
	return req->klen == strlen(want) && memcmp(req->key, want, req->klen) == 0;
}

START_TEST(test_kv_proto_commands)
{
	struct kv_request req;
	ck_assert_int_eq(parse("GET alpha\r\n", &req), KV_PARSE_OK);
	ck_assert_int_eq(req.cmd, KV_CMD_GET);
	ck_assert(key_is(&req, "alpha"));
	ck_assert_uint_eq(req.line_len, 11);
	ck_assert_int_eq(parse("DEL a/b:c\n", &req), KV_PARSE_OK); /* a bare LF */
	ck_assert_int_eq(req.cmd, KV_CMD_DEL);
	ck_assert(key_is(&req, "a/b:c"));
	ck_assert_uint_eq(req.line_len, 10);
	ck_assert_int_eq(parse("PUT k 5\r\nhello\r\n", &req), KV_PARSE_OK);
	ck_assert_int_eq(req.cmd, KV_CMD_PUT);
	ck_assert(key_is(&req, "k"));
	ck_assert_uint_eq(req.vlen, 5);
	ck_assert_uint_eq(req.line_len, 9); /* the value is the caller's to read */
	ck_assert_int_eq(parse("PUT k 0\r\n", &req), KV_PARSE_OK);
	ck_assert_uint_eq(req.vlen, 0);
	ck_assert_int_eq(parse("PUT k 65536\r\n", &req), KV_PARSE_OK);
	ck_assert_uint_eq(req.vlen, KV_VALUE_MAX);
	ck_assert_int_eq(parse("PUT k 007\r\n", &req), KV_PARSE_OK);
	ck_assert_uint_eq(req.vlen, 7);
	ck_assert_int_eq(parse("STATS\r\n", &req), KV_PARSE_OK);
	ck_assert_int_eq(req.cmd, KV_CMD_STATS);
	/* spaces: any number between and around words */
	ck_assert_int_eq(parse("  GET   spaced  \r\n", &req), KV_PARSE_OK);
	ck_assert(key_is(&req, "spaced"));
	/* keys: any byte but spaces and controls, UTF-8 included */
	ck_assert_int_eq(parse("GET \xc3\xa9t\xc3\xa9~!\"#\r\n", &req), KV_PARSE_OK);
	ck_assert(key_is(&req, "\xc3\xa9t\xc3\xa9~!\"#"));
	char line[KV_LINE_MAX];
	memset(line, 'k', sizeof(line));
	memcpy(line, "PUT ", 4);
	memcpy(line + 4 + KV_KEY_MAX, " 65536\r\n", 8);
	ck_assert_int_eq(parse_n(line, 4 + KV_KEY_MAX + 8, &req), KV_PARSE_OK);
	ck_assert_uint_eq(req.klen, KV_KEY_MAX);
	ck_assert_uint_eq(req.line_len, 4 + KV_KEY_MAX + 8);
}
END_TEST

START_TEST(test_kv_proto_incomplete_and_pipelined)
{
	struct kv_request req;
	static const char *const partial[] = {"", "G", "GET", "GET ke", "PUT k 5", "PUT k 5\r"};
	for (size_t i = 0; i < sizeof(partial) / sizeof(partial[0]); i++)
		ck_assert_msg(parse(partial[i], &req) == KV_PARSE_INCOMPLETE, "'%s'", partial[i]);
	const char *stream = "GET a\r\nPUT b 3\r\nxyz\r\n\r\nDEL c\nSTATS\r\n";
	size_t off = 0, len = strlen(stream);
	ck_assert_int_eq(parse_n(stream + off, len - off, &req), KV_PARSE_OK);
	ck_assert(key_is(&req, "a"));
	off += req.line_len;
	ck_assert_int_eq(parse_n(stream + off, len - off, &req), KV_PARSE_OK);
	ck_assert_int_eq(req.cmd, KV_CMD_PUT);
	off += req.line_len;
	size_t end;
	ck_assert_int_eq(kv_parse_value_end(stream + off + 3, len - off - 3, &end), KV_PARSE_OK);
	ck_assert_uint_eq(end, 2);
	off += 3 + end;
	ck_assert_int_eq(parse_n(stream + off, len - off, &req), KV_PARSE_EMPTY);
	off += req.line_len;
	ck_assert_int_eq(parse_n(stream + off, len - off, &req), KV_PARSE_OK);
	ck_assert_int_eq(req.cmd, KV_CMD_DEL);
	off += req.line_len;
	ck_assert_int_eq(parse_n(stream + off, len - off, &req), KV_PARSE_OK);
	ck_assert_int_eq(req.cmd, KV_CMD_STATS);
	off += req.line_len;
	ck_assert_uint_eq(off, len);
	ck_assert_int_eq(parse("   \r\n", &req), KV_PARSE_EMPTY);
	ck_assert_int_eq(parse("\n", &req), KV_PARSE_EMPTY);
}
END_TEST

/* text must be refused with reason why (BAD, or FATAL if fatal). */
static void expect_error(const char *text, size_t len, int fatal, const char *why)
{
	struct kv_request req;
	enum kv_parse_result r = parse_n(text, len, &req);
	ck_assert_msg(r == (fatal ? KV_PARSE_FATAL : KV_PARSE_BAD), "'%.*s': %d", (int)len, text,
		      (int)r);
	ck_assert_msg(strcmp(req.error, why) == 0, "'%.*s': %s", (int)len, text, req.error);
}

START_TEST(test_kv_proto_errors)
{
	/* requests that are refused, and the connection goes on */
	expect_error("FOO x\r\n", 7, 0, "unknown command");
	expect_error("get x\r\n", 7, 0, "unknown command");
	expect_error("GET\r\n", 5, 0, "usage: GET <key>");
	expect_error("GET a b\r\n", 9, 0, "usage: GET <key>");
	expect_error("DEL\r\n", 5, 0, "usage: DEL <key>");
	expect_error("STATS now\r\n", 11, 0, "usage: STATS");
	expect_error("GET a\tb\r\n", 9, 0, "bad character in key");
	expect_error("GET a\x7f\r\n", 8, 0, "bad character in key");
	expect_error("GET a\rb\r\n", 9, 0, "bad character in key"); /* a bare CR */
	expect_error("GET a\0b\r\n", 9, 0, "bad character in key");
	char line[KV_LINE_MAX];
	memset(line, 'k', sizeof(line));
	memcpy(line, "GET ", 4);
	memcpy(line + 4 + KV_KEY_MAX + 1, "\r\n", 2);
	expect_error(line, 4 + KV_KEY_MAX + 3, 0, "key too long");
	/* a PUT with a bad key but a good length: its value is read and dropped */
	struct kv_request req;
	ck_assert_int_eq(parse("PUT a\x01 3\r\n", &req), KV_PARSE_BAD);
	ck_assert_int_eq(req.skip_value, 1);
	ck_assert_uint_eq(req.vlen, 3);
	ck_assert_uint_eq(req.line_len, 10);

	/* the framing is lost: the connection closes */
	const char *usage = "usage: PUT <key> <length 0-65536>";
	expect_error("PUT k 65537\r\n", 13, 1, usage);
	expect_error("PUT k -1\r\n", 10, 1, usage);
	expect_error("PUT k +1\r\n", 10, 1, usage);
	expect_error("PUT k 0x10\r\n", 12, 1, usage);
	expect_error("PUT k 99999999999999999999999\r\n", 31, 1, usage);
	expect_error("PUT k\r\n", 7, 1, usage);
	expect_error("PUT\r\n", 5, 1, usage);
	expect_error("PUT k 1 2\r\n", 11, 1, usage);
	memset(line, 'x', sizeof(line));
	expect_error(line, sizeof(line), 1, "line too long");
	/* a line end at byte KV_LINE_MAX just fits; one byte later it does not */
	char edge[KV_LINE_MAX + 1];
	memset(edge, 'x', sizeof(edge));
	memcpy(edge, "GET ", 4);
	edge[KV_LINE_MAX - 1] = '\n';
	expect_error(edge, KV_LINE_MAX, 0, "key too long");
	edge[KV_LINE_MAX - 1] = 'x';
	edge[KV_LINE_MAX] = '\n';
	expect_error(edge, sizeof(edge), 1, "line too long");
}
END_TEST

START_TEST(test_kv_proto_value_end)
{
	size_t end = 0;
	ck_assert_int_eq(kv_parse_value_end("\r\nGET", 5, &end), KV_PARSE_OK);
	ck_assert_uint_eq(end, 2);
	ck_assert_int_eq(kv_parse_value_end("\nGET", 4, &end), KV_PARSE_OK);
	ck_assert_uint_eq(end, 1);
	ck_assert_int_eq(kv_parse_value_end("", 0, &end), KV_PARSE_INCOMPLETE);
	ck_assert_int_eq(kv_parse_value_end("\r", 1, &end), KV_PARSE_INCOMPLETE);
	ck_assert_int_eq(kv_parse_value_end("x\r\n", 3, &end), KV_PARSE_FATAL);
	ck_assert_int_eq(kv_parse_value_end("\rx", 2, &end), KV_PARSE_FATAL);
}
END_TEST

START_TEST(test_kv_proto_fuzz)
{
	static const char alphabet[] = "GETPUDLSA 0123456789\r\n\t\x01\x7f\xff-kx";
	uint64_t x = 0x2545f4914f6cdd1dull;
	char buf[600];
	for (int iter = 0; iter < 100000; iter++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		size_t len = (size_t)(x % sizeof(buf));
		uint64_t y = x;
		for (size_t i = 0; i < len; i++) {
			y = y * 6364136223846793005ull + 1442695040888963407ull;
			buf[i] = (y >> 60) < 12 ? alphabet[(y >> 33) % (sizeof(alphabet) - 1)]
						: (char)(y >> 40);
		}
		struct kv_request req;
		enum kv_parse_result r = parse_n(buf, len, &req);
		if (r == KV_PARSE_OK) {
			if (req.cmd != KV_CMD_STATS)
				ck_assert_uint_ge(req.klen, 1);
			ck_assert_uint_le(req.klen, KV_KEY_MAX);
			ck_assert_uint_le(req.vlen, KV_VALUE_MAX);
			ck_assert_uint_le(req.line_len, KV_LINE_MAX);
			for (size_t i = 0; i < req.klen; i++)
				ck_assert((unsigned char)req.key[i] > 0x20 &&
					  (unsigned char)req.key[i] != 0x7f);
		} else if (r == KV_PARSE_BAD || r == KV_PARSE_FATAL) {
			ck_assert_ptr_nonnull(req.error);
		} else if (r == KV_PARSE_INCOMPLETE) {
			ck_assert_uint_lt(len, KV_LINE_MAX);
			ck_assert_ptr_null(memchr(buf, '\n', len));
		}
	}
}
END_TEST

Suite *kv_proto_suite(void)
{
	Suite *s = suite_create("kv_proto");
	TCase *tc = tcase_create("proto");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_kv_proto_commands);
	tcase_add_test(tc, test_kv_proto_incomplete_and_pipelined);
	tcase_add_test(tc, test_kv_proto_errors);
	tcase_add_test(tc, test_kv_proto_value_end);
	tcase_add_test(tc, test_kv_proto_fuzz);
	suite_add_tcase(s, tc);
	return s;
}
