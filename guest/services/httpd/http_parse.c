/* HTTP/1.x request-head parser (RFC 9112 subset): request line, header lines, and the headers
 * the server acts on. Reparses from the start on each call: the caller holds the bytes. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http_parse.h"

/* tchar of RFC 9110: the characters of a token (method, header name). */
static int is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return 1;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A character allowed in a field value: VCHAR, SP, HTAB, obs-text. */
static int is_value_char(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* Case-insensitive comparison of s[0, len) with the lower-case NUL-terminated word. */
static int equals_word(const char *s, size_t len, const char *word)
{
	size_t n = strlen(word);
	if (len != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)s[i]) != (unsigned char)word[i])
			return 0;
	return 1;
}

static int is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* Finds the line starting at pos within buf[0, lim): sets *end to the end of its content (before
 * CR LF or LF) and *next to the start of the following line. Returns 0 if no LF yet. */
static int find_line(const char *buf, size_t lim, size_t pos, size_t *end, size_t *next)
{
	const char *nl = memchr(buf + pos, '\n', lim - pos);
	if (!nl)
		return 0;
	size_t e = (size_t)(nl - buf);
	*next = e + 1;
	if (e > pos && buf[e - 1] == '\r')
		e--;
	*end = e;
	return 1;
}

/* Fills the method, target, path and version from the request line s[0, len). Returns 0 or an
 * HTTP status. */
static int parse_request_line(const char *s, size_t len, struct http_request *req)
{
	size_t i = 0;
	while (i < len && is_tchar((unsigned char)s[i]))
		i++;
	if (i == 0 || i == len || s[i] != ' ')
		return 400;
	if (i == 3 && memcmp(s, "GET", 3) == 0)
		req->method = HTTP_METHOD_GET;
	else if (i == 4 && memcmp(s, "HEAD", 4) == 0)
		req->method = HTTP_METHOD_HEAD;
	else
		req->method = HTTP_METHOD_OTHER;
	size_t t = ++i;
	while (i < len && (unsigned char)s[i] > 0x20 && (unsigned char)s[i] < 0x7f)
		i++;
	if (i == t || i == len || s[i] != ' ')
		return 400;
	req->target = s + t;
	req->target_len = i - t;
	const char *v = s + i + 1;
	size_t vlen = len - i - 1;
	if (vlen != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
	    v[7] < '0' || v[7] > '9')
		return 400;
	if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
		return 505;
	req->version_minor = v[7] - '0';

	/* origin-form "/path?query", absolute-form "http://authority/path?query", or "*" */
	const char *p = req->target;
	size_t plen = req->target_len;
	if (plen == 1 && p[0] == '*') {
		req->path = p;
		req->path_len = 1;
		return 0;
	}
	if (p[0] != '/') {
		size_t k = 0;
		while (k < plen && p[k] != ':')
			k++;
		if (!(equals_word(p, k, "http") || equals_word(p, k, "https")) || plen - k < 3 ||
		    memcmp(p + k, "://", 3) != 0)
			return 400;
		k += 3;
		while (k < plen && p[k] != '/' && p[k] != '?')
			k++;
		p += k;
		plen -= k;
		if (plen == 0 || p[0] == '?') { /* an empty path is "/" */
			req->path = "/";
			req->path_len = 1;
			return 0;
		}
	}
	size_t q = 0;
	while (q < plen && p[q] != '?' && p[q] != '#')
		q++;
	req->path = p;
	req->path_len = q;
	return 0;
}

/* Applies the comma-separated Connection tokens of v[0, len). */
static void parse_connection(const char *v, size_t len, int *close, int *keep)
{
	size_t i = 0;
	while (i < len) {
		while (i < len && (is_ows(v[i]) || v[i] == ','))
			i++;
		size_t s = i;
		while (i < len && v[i] != ',')
			i++;
		size_t e = i;
		while (e > s && is_ows(v[e - 1]))
			e--;
		if (equals_word(v + s, e - s, "close"))
			*close = 1;
		else if (equals_word(v + s, e - s, "keep-alive"))
			*keep = 1;
	}
}

/* Parses a Content-Length value: 1 to 18 digits. Returns 0, or -1 if malformed. */
static int parse_length(const char *v, size_t len, uint64_t *out)
{
	if (len == 0 || len > 18)
		return -1;
	uint64_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	*out = n;
	return 0;
}

/* The state gathered from the header lines. */
struct head_fields {
	int conn_close, conn_keep, transfer_encoding;
};

/* Parses one header line s[0, len) (not empty). Returns 0 or an HTTP status. */
static int parse_header(const char *s, size_t len, struct http_request *req, struct head_fields *f)
{
	if (is_ows(s[0]))
		return 400; /* obs-fold: a continuation of the previous line */
	size_t i = 0;
	while (i < len && is_tchar((unsigned char)s[i]))
		i++;
	if (i == 0 || i == len || s[i] != ':')
		return 400; /* no name, a bad character in it, or space before the colon */
	size_t name_len = i++;
	for (size_t k = i; k < len; k++)
		if (!is_value_char((unsigned char)s[k]))
			return 400;
	while (i < len && is_ows(s[i]))
		i++;
	size_t e = len;
	while (e > i && is_ows(s[e - 1]))
		e--;
	const char *v = s + i;
	size_t vlen = e - i;

	if (equals_word(s, name_len, "host")) {
		if (req->has_host)
			return 400; /* RFC 9112 3.2: more than one Host */
		req->has_host = 1;
	} else if (equals_word(s, name_len, "connection")) {
		parse_connection(v, vlen, &f->conn_close, &f->conn_keep);
	} else if (equals_word(s, name_len, "content-length")) {
		uint64_t n;
		if (parse_length(v, vlen, &n) != 0)
			return 400;
		if (req->has_content_length && req->content_length != n)
			return 400;
		req->has_content_length = 1;
		req->content_length = n;
	} else if (equals_word(s, name_len, "transfer-encoding")) {
		f->transfer_encoding = 1;
	}
	return 0;
}

static enum http_parse_result fail(struct http_request *req, int status)
{
	req->status = status;
	return HTTP_PARSE_ERROR;
}

enum http_parse_result http_parse_request(const char *buf, size_t len, size_t max_head,
					  struct http_request *req)
{
	memset(req, 0, sizeof(*req));
	size_t lim = len < max_head ? len : max_head;
	size_t pos = 0, end, next;

	/* RFC 9112 2.2: empty lines before the request line are ignored. */
	for (;;) {
		if (pos < lim && buf[pos] == '\n')
			pos++;
		else if (pos + 1 < lim && buf[pos] == '\r' && buf[pos + 1] == '\n')
			pos += 2;
		else
			break;
	}
	if (!find_line(buf, lim, pos, &end, &next))
		return len >= max_head ? fail(req, 414) : HTTP_PARSE_INCOMPLETE;
	int status = parse_request_line(buf + pos, end - pos, req);
	if (status)
		return fail(req, status);

	struct head_fields f = {0, 0, 0};
	for (;;) {
		pos = next;
		if (!find_line(buf, lim, pos, &end, &next))
			return len >= max_head ? fail(req, 431) : HTTP_PARSE_INCOMPLETE;
		if (end == pos)
			break; /* the blank line */
		status = parse_header(buf + pos, end - pos, req, &f);
		if (status)
			return fail(req, status);
	}
	/* A bare CR is refused as a control character wherever it appears in a line: only the CR
	 * of a CR LF, which find_line strips, is a line ending. */
	if (f.transfer_encoding)
		return fail(req, req->has_content_length ? 400 : 501);
	if (req->version_minor == 1)
		req->keep_alive = !f.conn_close;
	else
		req->keep_alive = f.conn_keep && !f.conn_close;
	req->head_len = next;
	return HTTP_PARSE_OK;
}
