/* httpd's request parser: the input is a request head (after one byte that picks the bound
 * on the head), parsed as it grows and whole. What a complete head hands out must lie inside
 * the bytes given, within the bound, and an error carries a status the server can send. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http_parse.h"

static void check(const char *buf, size_t len, size_t max_head, enum http_parse_result r,
		  const struct http_request *req)
{
	if (r == HTTP_PARSE_ERROR) {
		int s = req->status;
		if (s != 400 && s != 414 && s != 431 && s != 501 && s != 505)
			abort();
		return;
	}
	if (r != HTTP_PARSE_OK)
		return;
	if (req->head_len == 0 || req->head_len > len || req->head_len > max_head)
		abort();
	if (req->target < buf || req->target + req->target_len > buf + req->head_len)
		abort();
	/* The path lies in the target, or is "/" for an absolute-form target without one. */
	int inside = req->path >= req->target &&
		     req->path + req->path_len <= req->target + req->target_len;
	if (!inside && !(req->path_len == 1 && req->path[0] == '/'))
		abort();
	if (req->version_minor != 0 && req->version_minor != 1)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t max_head = data[0] < 0x80 ? HTTP_HEAD_MAX : 16u + data[0];
	data++, size--;
	char *buf = malloc(size ? size : 1);
	if (!buf)
		abort();
	memcpy(buf, data, size);
	struct http_request req;
	enum http_parse_result whole = http_parse_request(buf, size, max_head, &req);
	check(buf, size, max_head, whole, &req);
	/* Growing: the first verdict that is not INCOMPLETE is the one the whole input has. */
	for (size_t len = 0; len <= size; len += 1 + len / 8) {
		enum http_parse_result r = http_parse_request(buf, len, max_head, &req);
		check(buf, len, max_head, r, &req);
		if (r != HTTP_PARSE_INCOMPLETE) {
			if (r != whole)
				abort();
			break;
		}
	}
	free(buf);
	return 0;
}
