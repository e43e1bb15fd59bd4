/* httpd's pure modules on the host: the request-head parser (good, bad, partial, pipelined,
 * oversize and fuzzed input), response formatting, and the resource table. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "content.h"
#include "http_parse.h"
#include "http_response.h"
#include "unit.h"

/* Parses text (NUL-terminated) from an exact-size heap copy, so that ASan sees any overread. */
static enum http_parse_result parse_n(const char *text, size_t len, size_t max,
				      struct http_request *req, char **copy)
{
	char *buf = malloc(len ? len : 1);
	if (!buf)
		ck_abort_msg("out of memory");
	memcpy(buf, text, len);
	enum http_parse_result r = http_parse_request(buf, len, max, req);
	if (copy)
		*copy = buf;
	else
		free(buf);
	return r;
}

/* Parses text; the copy req points into lives until the next call. */
static enum http_parse_result parse(const char *text, struct http_request *req)
{
	static char *copy;
	free(copy);
	return parse_n(text, strlen(text), HTTP_HEAD_MAX, req, &copy);
}

/* The status of a request that must fail. */
static int parse_status(const char *text)
{
	struct http_request req;
	enum http_parse_result r = parse(text, &req);
	ck_assert_msg(r == HTTP_PARSE_ERROR, "accepted: \"%s\"", text);
	return req.status;
}

static int span_is(const char *p, size_t len, const char *want)
{
	return len == strlen(want) && memcmp(p, want, len) == 0;
}

START_TEST(test_simple_get)
{
	const char *t = "GET /hello.txt HTTP/1.1\r\nHost: example\r\nUser-Agent: t\r\n\r\n";
	struct http_request req;
	ck_assert_int_eq(parse(t, &req), HTTP_PARSE_OK);
	ck_assert_int_eq(req.method, HTTP_METHOD_GET);
	ck_assert(span_is(req.target, req.target_len, "/hello.txt"));
	ck_assert(span_is(req.path, req.path_len, "/hello.txt"));
	ck_assert_int_eq(req.version_minor, 1);
	ck_assert_int_eq(req.keep_alive, 1);
	ck_assert_int_eq(req.has_host, 1);
	ck_assert_int_eq(req.has_content_length, 0);
	ck_assert_uint_eq(req.head_len, strlen(t));
}
END_TEST

START_TEST(test_head_and_other_methods)
{
	struct http_request req;
	ck_assert_int_eq(parse("HEAD / HTTP/1.0\r\n\r\n", &req), HTTP_PARSE_OK);
	ck_assert_int_eq(req.method, HTTP_METHOD_HEAD);
	ck_assert_int_eq(req.version_minor, 0);
	ck_assert_int_eq(req.keep_alive, 0);
	static const char *const others[] = {
		"POST / HTTP/1.1\r\n\r\n", "get / HTTP/1.1\r\n\r\n",	 "GETX / HTTP/1.1\r\n\r\n",
		"HEA / HTTP/1.1\r\n\r\n",  "OPTIONS * HTTP/1.1\r\n\r\n", "X-Y~! / HTTP/1.1\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		ck_assert_msg(parse(others[i], &req) == HTTP_PARSE_OK, "%s", others[i]);
		ck_assert_int_eq(req.method, HTTP_METHOD_OTHER);
	}
}
END_TEST

START_TEST(test_pipelined)
{
	const char *t = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
			"HEAD /big HTTP/1.1\r\nHost: a\r\n\r\n"
			"GET /hello.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
			"GET /partial HTTP/1.1\r\nHo";
	const char *paths[] = {"/", "/big", "/hello.txt"};
	const int methods[] = {HTTP_METHOD_GET, HTTP_METHOD_HEAD, HTTP_METHOD_GET};
	const int keep[] = {1, 1, 0};
	size_t off = 0, len = strlen(t);
	for (int i = 0; i < 3; i++) {
		struct http_request req;
		char *copy;
		ck_assert_int_eq(parse_n(t + off, len - off, HTTP_HEAD_MAX, &req, &copy),
				 HTTP_PARSE_OK);
		ck_assert(span_is(req.path, req.path_len, paths[i]));
		free(copy);
		ck_assert_int_eq(req.method, methods[i]);
		ck_assert_int_eq(req.keep_alive, keep[i]);
		off += req.head_len;
	}
	struct http_request req;
	ck_assert_int_eq(parse_n(t + off, len - off, HTTP_HEAD_MAX, &req, NULL),
			 HTTP_PARSE_INCOMPLETE);
}
END_TEST

START_TEST(test_partial)
{
	const char *t = "GET /a?b=c HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\nGET";
	size_t head = strlen(t) - 3;
	for (size_t k = 0; k <= strlen(t); k++) {
		struct http_request req;
		enum http_parse_result r = parse_n(t, k, HTTP_HEAD_MAX, &req, NULL);
		if (k < head) {
			ck_assert_msg(r == HTTP_PARSE_INCOMPLETE, "prefix %zu", k);
		} else {
			ck_assert_int_eq(r, HTTP_PARSE_OK);
			ck_assert_uint_eq(req.head_len, head);
		}
	}
	struct http_request req;
	ck_assert_int_eq(parse("", &req), HTTP_PARSE_INCOMPLETE);
	ck_assert_int_eq(parse("\r\n\r\n\r", &req), HTTP_PARSE_INCOMPLETE);
}
END_TEST

START_TEST(test_line_endings)
{
	struct http_request req;
	/* bare LF lines, and empty lines before the request line, are accepted */
	const char *t = "\r\n\nGET / HTTP/1.1\nHost: x\n\n";
	ck_assert_int_eq(parse(t, &req), HTTP_PARSE_OK);
	ck_assert_uint_eq(req.head_len, strlen(t));
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: x\r\n\n", &req), HTTP_PARSE_OK);
	/* a bare CR is not a line ending */
	ck_assert_int_eq(parse_status("GET / HTTP/1.1\rHost: x\r\n\r\n"), 400);
	ck_assert_int_eq(parse_status("GET / HTTP/1.1\r\nHost: x\r\r\n\r\n"), 400);
	ck_assert_int_eq(parse_status("GET / HTTP/1.1\r\nHost: x\r\n\r\r\n"), 400);
	ck_assert_int_eq(parse_status("\rGET / HTTP/1.1\r\n\r\n"), 400);
}
END_TEST

START_TEST(test_bad_request_lines)
{
	static const char *const bad[] = {
		"GET  / HTTP/1.1\r\n\r\n",
		"GET /  HTTP/1.1\r\n\r\n",
		" GET / HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1 \r\n\r\n",
		"GET /HTTP/1.1\r\n\r\n",
		"GET /\r\n\r\n",
		"GET\r\n\r\n",
		"\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n \r\n\r\n",
		"GET / http/1.1\r\n\r\n",
		"GET / HTTP/1\r\n\r\n",
		"GET / HTTP/1.\r\n\r\n",
		"GET / HTTP/1.1x\r\n\r\n",
		"GET / HTTP/11.1\r\n\r\n",
		"GET / HTTP/1,1\r\n\r\n",
		"GET / HTTPS/1.1\r\n\r\n",
		"G(T / HTTP/1.1\r\n\r\n",
		"GET\t/ HTTP/1.1\r\n\r\n",
		"GET /\x01 HTTP/1.1\r\n\r\n",
		"GET /\x7f HTTP/1.1\r\n\r\n",
		"GET /\xc3\xa9 HTTP/1.1\r\n\r\n",
		"GET foo HTTP/1.1\r\n\r\n",
		"GET ftp://host/ HTTP/1.1\r\n\r\n",
		"GET http:/host/ HTTP/1.1\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(parse_status(bad[i]) == 400, "%s", bad[i]);
	struct http_request req;
	ck_assert_int_eq(parse_n("\0GET / HTTP/1.1\r\n\r\n", 19, HTTP_HEAD_MAX, &req, NULL),
			 HTTP_PARSE_ERROR);
	ck_assert_int_eq(req.status, 400);
	ck_assert_int_eq(parse_n("GET /\0 HTTP/1.1\r\n\r\n", 19, HTTP_HEAD_MAX, &req, NULL),
			 HTTP_PARSE_ERROR);
	ck_assert_int_eq(req.status, 400);
	/* the error is reported as soon as the line is complete */
	ck_assert_int_eq(parse("GET  / HTTP/1.1\r\n", &req), HTTP_PARSE_ERROR);
}
END_TEST

START_TEST(test_targets)
{
	struct http_request req;
	ck_assert_int_eq(parse("GET /big?x=1&y=2 HTTP/1.1\r\n\r\n", &req), HTTP_PARSE_OK);
	ck_assert(span_is(req.path, req.path_len, "/big"));
	ck_assert(span_is(req.target, req.target_len, "/big?x=1&y=2"));
	ck_assert_int_eq(parse("GET http://example.com:8080/hello.txt?q HTTP/1.1\r\n\r\n", &req),
			 HTTP_PARSE_OK);
	ck_assert(span_is(req.path, req.path_len, "/hello.txt"));
	ck_assert_int_eq(parse("GET HTTPS://example.com HTTP/1.1\r\n\r\n", &req), HTTP_PARSE_OK);
	ck_assert(span_is(req.path, req.path_len, "/"));
	ck_assert_int_eq(parse("GET http://example.com?x HTTP/1.1\r\n\r\n", &req), HTTP_PARSE_OK);
	ck_assert(span_is(req.path, req.path_len, "/"));
	ck_assert_int_eq(parse("OPTIONS * HTTP/1.1\r\n\r\n", &req), HTTP_PARSE_OK);
	ck_assert(span_is(req.path, req.path_len, "*"));
	ck_assert_int_eq(parse("GET /%41 HTTP/1.1\r\n\r\n", &req), HTTP_PARSE_OK);
	ck_assert(span_is(req.path, req.path_len, "/%41")); /* no decoding */
}
END_TEST

START_TEST(test_bad_versions)
{
	static const char *const v[] = {"HTTP/0.9", "HTTP/1.2", "HTTP/1.9", "HTTP/2.0",
					"HTTP/3.0", "HTTP/9.9", "HTTP/0.0"};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char t[64];
		snprintf(t, sizeof(t), "GET / %s\r\nHost: x\r\n\r\n", v[i]);
		ck_assert_msg(parse_status(t) == 505, "%s", t);
		/* known at the end of the request line */
		snprintf(t, sizeof(t), "GET / %s\r\n", v[i]);
		ck_assert_msg(parse_status(t) == 505, "%s", t);
	}
}
END_TEST

START_TEST(test_oversize)
{
	static char big[3 * HTTP_HEAD_MAX];
	struct http_request req;
	/* a request line that does not end within the bound: 414 */
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /", 5);
	ck_assert_int_eq(parse_n(big, HTTP_HEAD_MAX - 1, HTTP_HEAD_MAX, &req, NULL),
			 HTTP_PARSE_INCOMPLETE);
	ck_assert_int_eq(parse_n(big, HTTP_HEAD_MAX, HTTP_HEAD_MAX, &req, NULL), HTTP_PARSE_ERROR);
	ck_assert_int_eq(req.status, 414);
	ck_assert_int_eq(parse_n(big, sizeof(big), HTTP_HEAD_MAX, &req, NULL), HTTP_PARSE_ERROR);
	ck_assert_int_eq(req.status, 414);

	/* headers that do not end within it: 431 */
	size_t n = (size_t)snprintf(big, sizeof(big), "GET / HTTP/1.1\r\n");
	while (n + 16 < sizeof(big))
		n += (size_t)snprintf(big + n, sizeof(big) - n, "X-Pad: 12345678\r\n");
	ck_assert_int_eq(parse_n(big, HTTP_HEAD_MAX - 1, HTTP_HEAD_MAX, &req, NULL),
			 HTTP_PARSE_INCOMPLETE);
	ck_assert_int_eq(parse_n(big, n, HTTP_HEAD_MAX, &req, NULL), HTTP_PARSE_ERROR);
	ck_assert_int_eq(req.status, 431);

	/* a head of exactly the bound is fine; one byte more is not */
	const char *start = "GET / HTTP/1.1\r\nX: ";
	size_t s = strlen(start);
	memcpy(big, start, s);
	memset(big + s, 'v', HTTP_HEAD_MAX - s - 4);
	memcpy(big + HTTP_HEAD_MAX - 4, "\r\n\r\nGET", 7);
	ck_assert_int_eq(parse_n(big, HTTP_HEAD_MAX + 3, HTTP_HEAD_MAX, &req, NULL), HTTP_PARSE_OK);
	ck_assert_uint_eq(req.head_len, HTTP_HEAD_MAX);
	ck_assert_int_eq(parse_n(big, HTTP_HEAD_MAX + 3, HTTP_HEAD_MAX - 1, &req, NULL),
			 HTTP_PARSE_ERROR);
	ck_assert_int_eq(req.status, 431);
	/* a small bound */
	ck_assert_int_eq(parse_n("GET / HTTP/1.1\r\n\r\n", 18, 17, &req, NULL), HTTP_PARSE_ERROR);
	ck_assert_int_eq(req.status, 431);
	ck_assert_int_eq(parse_n("GET / HTTP/1.1\r\n\r\n", 18, 10, &req, NULL), HTTP_PARSE_ERROR);
	ck_assert_int_eq(req.status, 414);
}
END_TEST

START_TEST(test_bad_headers)
{
	static const char *const bad[] = {
		"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\tfolded\r\n\r\n",
		"GET / HTTP/1.1\r\n continued\r\n\r\n",
		"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
		"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
		"GET / HTTP/1.1\r\nName : x\r\n\r\n",
		"GET / HTTP/1.1\r\nName\t: x\r\n\r\n",
		"GET / HTTP/1.1\r\n: x\r\n\r\n",
		"GET / HTTP/1.1\r\nN(me: x\r\n\r\n",
		"GET / HTTP/1.1\r\nX: a\001b\r\n\r\n",
		"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
		"GET / HTTP/1.1\r\nX: \x7f\r\n\r\n",
		"GET / HTTP/1.1\r\nX: \x1b[31m\r\n\r\n",
		"GET / HTTP/1.1\r\n\x80: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length:\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 1234567890123456789\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(parse_status(bad[i]) == 400, "%s", bad[i]);
	ck_assert_int_eq(parse_status("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
			 501);

	struct http_request req;
	/* obs-text, empty values, odd but valid names */
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nX: caf\xc3\xa9\r\nY:\r\nZ:  \t \r\n"
			       "!#$%&'*+-.^_`|~09az: v\r\n\r\n",
			       &req),
			 HTTP_PARSE_OK);
	/* the same Content-Length twice is one */
	ck_assert_int_eq(
		parse("POST / HTTP/1.1\r\nContent-Length: 7\r\nContent-Length: 007\r\n\r\n", &req),
		HTTP_PARSE_OK);
	ck_assert_int_eq(req.has_content_length, 1);
	ck_assert_uint_eq(req.content_length, 7);
	ck_assert_int_eq(
		parse("POST / HTTP/1.1\r\nContent-Length: 123456789012345678\r\n\r\n", &req),
		HTTP_PARSE_OK);
	ck_assert_uint_eq(req.content_length, 123456789012345678ull);
}
END_TEST

START_TEST(test_case_insensitive_names)
{
	struct http_request req;
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nhOsT: x\r\ncOnNeCtIoN: ClOsE\r\n"
			       "content-LENGTH: 12\r\n\r\n",
			       &req),
			 HTTP_PARSE_OK);
	ck_assert_int_eq(req.has_host, 1);
	ck_assert_int_eq(req.keep_alive, 0);
	ck_assert_int_eq(req.has_content_length, 1);
	ck_assert_uint_eq(req.content_length, 12);
	ck_assert_int_eq(parse_status("GET / HTTP/1.1\r\nTRANSFER-encoding: gzip\r\n\r\n"), 501);
	ck_assert_int_eq(parse_status("GET / HTTP/1.1\r\nHOST: a\r\nhost: b\r\n\r\n"), 400);
	/* a name that only starts like one of interest is not it */
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nConnectionX: close\r\nHosts: 2\r\n\r\n", &req),
			 HTTP_PARSE_OK);
	ck_assert_int_eq(req.keep_alive, 1);
	ck_assert_int_eq(req.has_host, 0); /* missing Host is accepted */
}
END_TEST

START_TEST(test_connection)
{
	static const struct {
		const char *head;
		int keep;
	} cases[] = {
		{"GET / HTTP/1.1\r\n\r\n", 1},
		{"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 0},
		{"GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", 1},
		{"GET / HTTP/1.1\r\nConnection: Upgrade, CLOSE\r\n\r\n", 0},
		{"GET / HTTP/1.1\r\nConnection: closed\r\n\r\n", 1},
		{"GET / HTTP/1.1\r\nConnection: x-close\r\n\r\n", 1},
		{"GET / HTTP/1.1\r\nConnection: foo\r\nConnection: close\r\n\r\n", 0},
		{"GET / HTTP/1.0\r\n\r\n", 0},
		{"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1},
		{"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 1},
		{"GET / HTTP/1.0\r\nConnection:  ,foo , keep-alive\t,\r\n\r\n", 1},
		{"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", 0},
		{"GET / HTTP/1.0\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n", 0},
		{"GET / HTTP/1.0\r\nConnection: keep-alivex\r\n\r\n", 0},
		{"GET / HTTP/1.0\r\nKeep-Alive: timeout=5\r\n\r\n", 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http_request req;
		ck_assert_int_eq(parse(cases[i].head, &req), HTTP_PARSE_OK);
		ck_assert_msg(req.keep_alive == cases[i].keep, "%s", cases[i].head);
	}
}
END_TEST

START_TEST(test_response_head)
{
	char buf[512];
	size_t n = http_format_head(buf, sizeof(buf), 200, "text/plain", 1048576, 0);
	const char *want = "HTTP/1.1 200 OK\r\n"
			   "Server: denali-httpd\r\n"
			   "Content-Type: text/plain\r\n"
			   "Content-Length: 1048576\r\n"
			   "\r\n";
	ck_assert_uint_eq(n, strlen(want));
	ck_assert_str_eq(buf, want);
	n = http_format_head(buf, sizeof(buf), 404, "text/html", 0, HTTP_RESP_CLOSE);
	ck_assert_str_eq(buf, "HTTP/1.1 404 Not Found\r\n"
			      "Server: denali-httpd\r\n"
			      "Content-Type: text/html\r\n"
			      "Content-Length: 0\r\n"
			      "Connection: close\r\n"
			      "\r\n");
	ck_assert_uint_eq(n, strlen(buf));
	http_format_head(buf, sizeof(buf), 200, "a/b", 5, HTTP_RESP_KEEP_ALIVE);
	ck_assert_ptr_nonnull(strstr(buf, "\r\nConnection: keep-alive\r\n\r\n"));
	http_format_head(buf, sizeof(buf), 405, "a/b", 5, HTTP_RESP_ALLOW | HTTP_RESP_CLOSE);
	ck_assert_ptr_nonnull(strstr(buf, "HTTP/1.1 405 Method Not Allowed\r\n"));
	ck_assert_ptr_nonnull(strstr(buf, "\r\nAllow: GET, HEAD\r\nConnection: close\r\n\r\n"));
	/* too small: 0, for every size short of the text and its NUL */
	size_t full = http_format_head(buf, sizeof(buf), 200, "text/plain", 42, HTTP_RESP_CLOSE);
	for (size_t size = 0; size <= full; size++) {
		char *small = malloc(size ? size : 1);
		ck_assert_uint_eq(
			http_format_head(small, size, 200, "text/plain", 42, HTTP_RESP_CLOSE), 0);
		free(small);
	}
	ck_assert_uint_eq(http_format_head(buf, full + 1, 200, "text/plain", 42, HTTP_RESP_CLOSE),
			  full);
}
END_TEST

START_TEST(test_response_error)
{
	char buf[512];
	size_t n = http_format_error(buf, sizeof(buf), 404, 0, 0);
	const char *want = "HTTP/1.1 404 Not Found\r\n"
			   "Server: denali-httpd\r\n"
			   "Content-Type: text/plain; charset=utf-8\r\n"
			   "Content-Length: 10\r\n"
			   "\r\n"
			   "Not Found\n";
	ck_assert_uint_eq(n, strlen(want));
	ck_assert_int_eq(memcmp(buf, want, n), 0);
	n = http_format_error(buf, sizeof(buf), 505, 1, HTTP_RESP_CLOSE);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "HTTP/1.1 505 HTTP Version Not Supported\r\n"
			      "Server: denali-httpd\r\n"
			      "Content-Type: text/plain; charset=utf-8\r\n"
			      "Content-Length: 27\r\n"
			      "Connection: close\r\n"
			      "\r\n");
	static const int codes[] = {200, 400, 404, 405, 413, 414, 431, 500, 501, 503, 505};
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		ck_assert_str_ne(http_reason(codes[i]), "Unknown");
		ck_assert_uint_ne(http_format_error(buf, sizeof(buf), codes[i], 0, HTTP_RESP_CLOSE),
				  0);
	}
	ck_assert_str_eq(http_reason(299), "Unknown");
	size_t full = http_format_error(buf, sizeof(buf), 400, 0, 0);
	for (size_t size = 0; size <= full; size++)
		ck_assert_uint_eq(http_format_error(buf, size, 400, 0, 0), 0);
	ck_assert_uint_eq(http_format_error(buf, full + 1, 400, 0, 0), full);
}
END_TEST

START_TEST(test_content)
{
	content_init("web<1>&\"x\"");
	const struct content *c = content_find("/", 1);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(c->content_type, "text/html; charset=utf-8");
	ck_assert_uint_eq(c->length, strlen(c->data));
	ck_assert_ptr_nonnull(
		strstr(c->data, "Hello from web&lt;1&gt;&amp;&quot;x&quot; on Denali"));
	content_init("httpd");
	ck_assert_ptr_nonnull(strstr(c->data, "Hello from httpd on Denali"));
	ck_assert_uint_eq(c->length, strlen(c->data));
	ck_assert_ptr_eq(content_find("/index.html", 11)->data, c->data);
	char name[2000];
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	content_init(name); /* cut short, still a page */
	ck_assert_uint_eq(c->length, strlen(c->data));
	ck_assert_ptr_nonnull(strstr(c->data, "</html>\n"));

	const struct content *h = content_find("/hello.txt", 10);
	ck_assert_ptr_nonnull(h);
	ck_assert_str_eq(h->content_type, "text/plain; charset=utf-8");
	ck_assert_uint_eq(h->length, strlen(h->data));
	ck_assert_ptr_eq(content_read(h, 3, NULL, 2), h->data + 3);

	ck_assert_ptr_null(content_find("/nope", 5));
	ck_assert_ptr_null(content_find("/big/", 5));
	ck_assert_ptr_null(content_find("/hello.txt", 9));
	ck_assert_ptr_null(content_find("", 0));

	const struct content *b = content_find("/big", 4);
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(b->length, 1048576);
	ck_assert_str_eq(b->content_type, "application/octet-stream");
	/* byte i = (i * 31 + 7) & 0xff, whatever the chunking */
	static unsigned char whole[CONTENT_BIG_SIZE], scratch[7777];
	uint64_t off = 0;
	while (off < b->length) {
		size_t n = sizeof(scratch);
		if (b->length - off < n)
			n = (size_t)(b->length - off);
		memcpy(whole + off, content_read(b, off, scratch, n), n);
		off += n;
	}
	size_t wrong = 0;
	for (uint64_t i = 0; i < CONTENT_BIG_SIZE; i++)
		wrong += whole[i] != ((i * 31 + 7) & 0xff);
	ck_assert_uint_eq(wrong, 0);
	ck_assert_uint_eq(whole[0], 7);
	ck_assert_uint_eq(whole[1], 38);
	ck_assert_uint_eq(whole[9], 30);
}
END_TEST

/* ---- fuzzing: random and mutated heads must never crash, and prefixes must agree ---- */

static uint64_t rng_state = 0x853c49e6748fea9bull;

static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

static const char *const seeds[] = {
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"HEAD /big?x=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	"POST /f HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
	"GET http://h:80/hello.txt HTTP/1.1\r\nConnection: close, x\r\nX: \xc3\xa9\r\n\r\n",
	"GET / HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\n\n",
	"\r\nOPTIONS * HTTP/1.1\r\nA: b\r\n\r\nGET / HTTP/1.1\r\n\r\n",
};

/* Builds a test input into buf (cap bytes); returns its length. */
static size_t fuzz_input(char *buf, size_t cap)
{
	static const char special[] = " \r\n\t:,/?*.0HTP\x00\x7f\x80\xff";
	size_t len;
	if (rng() % 8 == 0) { /* random bytes, biased to the interesting ones */
		len = rng() % 200;
		for (size_t i = 0; i < len; i++)
			buf[i] = (char)(rng() % 2 ? special[rng() % (sizeof(special) - 1)]
						  : (char)rng());
		return len;
	}
	const char *s = seeds[rng() % (sizeof(seeds) / sizeof(seeds[0]))];
	len = strlen(s);
	memcpy(buf, s, len);
	unsigned mutations = 1 + rng() % 6;
	for (unsigned m = 0; m < mutations; m++) {
		size_t at = len ? rng() % len : 0;
		switch (rng() % 6) {
		case 0: /* replace a byte */
			if (len)
				buf[at] = (char)(rng() % 2 ? special[rng() % (sizeof(special) - 1)]
							   : (char)rng());
			break;
		case 1: /* insert a byte */
			if (len < cap) {
				memmove(buf + at + 1, buf + at, len - at);
				buf[at] = special[rng() % (sizeof(special) - 1)];
				len++;
			}
			break;
		case 2: /* delete a byte */
			if (len) {
				memmove(buf + at, buf + at + 1, len - at - 1);
				len--;
			}
			break;
		case 3: /* duplicate a run */
		{
			size_t run = 1 + rng() % 40;
			if (at + run <= len && len + run <= cap) {
				memmove(buf + at + run, buf + at, len - at);
				len += run;
			}
			break;
		}
		case 4: /* truncate */ len = at; break;
		default: /* a header line appended to the request line */
		{
			const char *hdr =
				rng() % 2 ? "Connection: close\r\n" : "content-length: 3\r\n";
			size_t nl = 0;
			while (nl < len && buf[nl] != '\n')
				nl++;
			size_t hl = strlen(hdr);
			if (nl < len && len + hl <= cap) {
				memmove(buf + nl + 1 + hl, buf + nl + 1, len - nl - 1);
				memcpy(buf + nl + 1, hdr, hl);
				len += hl;
			}
			break;
		}
		}
	}
	return len;
}

/* Fails the test if cond is false; unlike ck_assert, costs nothing when it holds. */
#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond))                                                                       \
			ck_abort_msg("fuzz: %s", #cond);                                           \
	} while (0)

static void check_result(const char *buf, size_t len, size_t max, enum http_parse_result r,
			 const struct http_request *req)
{
	if (r == HTTP_PARSE_OK) {
		FUZZ_CHECK(req->head_len > 0);
		FUZZ_CHECK(req->head_len <= len);
		FUZZ_CHECK(req->head_len <= max);
		FUZZ_CHECK(req->target >= buf);
		FUZZ_CHECK(req->target + req->target_len <= buf + req->head_len);
		FUZZ_CHECK(req->target_len > 0);
		FUZZ_CHECK(req->path_len > 0 && (req->path[0] == '/' || req->path[0] == '*'));
		FUZZ_CHECK(req->version_minor == 0 || req->version_minor == 1);
		FUZZ_CHECK(req->keep_alive == 0 || req->keep_alive == 1);
	} else if (r == HTTP_PARSE_ERROR) {
		int s = req->status;
		FUZZ_CHECK(s == 400 || s == 414 || s == 431 || s == 501 || s == 505);
	} else {
		FUZZ_CHECK(r == HTTP_PARSE_INCOMPLETE);
		FUZZ_CHECK(len < max);
	}
}

START_TEST(test_fuzz)
{
	static char text[1024];
	unsigned ok = 0, err = 0, inc = 0;
	for (int iter = 0; iter < 100000; iter++) {
		size_t len = fuzz_input(text, sizeof(text));
		size_t max = rng() % 4 ? HTTP_HEAD_MAX : 1 + rng() % 128;
		struct http_request req, preq;
		char *buf;
		enum http_parse_result r = parse_n(text, len, max, &req, &buf);
		check_result(buf, len, max, r, &req);
		ok += r == HTTP_PARSE_OK;
		err += r == HTTP_PARSE_ERROR;
		inc += r == HTTP_PARSE_INCOMPLETE;

		/* A prefix agrees: shorter than a good head, it needs more; holding it, it is the
		 * same head; an error in it is the whole input's error. */
		size_t cut = len ? rng() % (len + 1) : 0;
		char *pbuf;
		enum http_parse_result pr = parse_n(text, cut, max, &preq, &pbuf);
		check_result(pbuf, cut, max, pr, &preq);
		if (r == HTTP_PARSE_OK && cut < req.head_len)
			FUZZ_CHECK(pr == HTTP_PARSE_INCOMPLETE);
		if (r == HTTP_PARSE_OK && cut >= req.head_len) {
			FUZZ_CHECK(pr == HTTP_PARSE_OK);
			FUZZ_CHECK(preq.head_len == req.head_len);
		}
		if (pr == HTTP_PARSE_ERROR) {
			FUZZ_CHECK(r == HTTP_PARSE_ERROR);
			FUZZ_CHECK(preq.status == req.status);
		}
		if (pr == HTTP_PARSE_OK)
			FUZZ_CHECK(r == HTTP_PARSE_OK);
		free(pbuf);
		free(buf);
	}
	/* the mutations reach every outcome */
	ck_assert_uint_gt(ok, 1000);
	ck_assert_uint_gt(err, 1000);
	ck_assert_uint_gt(inc, 1000);
}
END_TEST

Suite *http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *tc = tcase_create("parse");
	tcase_add_test(tc, test_simple_get);
	tcase_add_test(tc, test_head_and_other_methods);
	tcase_add_test(tc, test_pipelined);
	tcase_add_test(tc, test_partial);
	tcase_add_test(tc, test_line_endings);
	tcase_add_test(tc, test_bad_request_lines);
	tcase_add_test(tc, test_targets);
	tcase_add_test(tc, test_bad_versions);
	tcase_add_test(tc, test_oversize);
	tcase_add_test(tc, test_bad_headers);
	tcase_add_test(tc, test_case_insensitive_names);
	tcase_add_test(tc, test_connection);
	suite_add_tcase(s, tc);
	tc = tcase_create("response");
	tcase_add_test(tc, test_response_head);
	tcase_add_test(tc, test_response_error);
	tcase_add_test(tc, test_content);
	suite_add_tcase(s, tc);
	tc = tcase_create("fuzz");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_fuzz);
	suite_add_tcase(s, tc);
	return s;
}
