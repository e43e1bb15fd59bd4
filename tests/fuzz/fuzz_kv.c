/* kv's protocol parser: the input is what a connection receives, parsed as kv's server walks
 * it: request lines, a PUT's value and the line end after it. What the parser hands out must
 * lie inside the bytes it was given and keep the protocol's limits. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "kv_format.h"
#include "kv_proto.h"

static void check_request(const char *buf, size_t len, enum kv_parse_result r,
			  const struct kv_request *req)
{
	if (r == KV_PARSE_INCOMPLETE)
		return;
	if (r != KV_PARSE_FATAL &&
	    (req->line_len == 0 || req->line_len > len || req->line_len > KV_LINE_MAX))
		abort();
	if ((r == KV_PARSE_BAD || r == KV_PARSE_FATAL) && !req->error)
		abort();
	if (r != KV_PARSE_OK || req->cmd == KV_CMD_STATS)
		return;
	if (req->klen < 1 || req->klen > KV_KEY_MAX || req->key < buf ||
	    req->key + req->klen > buf + req->line_len)
		abort();
	for (size_t i = 0; i < req->klen; i++)
		if ((unsigned char)req->key[i] <= ' ' || req->key[i] == 0x7f)
			abort();
	if (req->cmd == KV_CMD_PUT && req->vlen > KV_VALUE_MAX)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of its own size, so that ASan sees a read past the end. */
	char *buf = malloc(size ? size : 1);
	if (!buf)
		abort();
	memcpy(buf, data, size);
	size_t at = 0;
	while (at < size) {
		struct kv_request req;
		memset(&req, 0, sizeof(req));
		size_t len = size - at;
		enum kv_parse_result r = kv_parse_line(buf + at, len, &req);
		check_request(buf + at, len, r, &req);
		if (r == KV_PARSE_INCOMPLETE || r == KV_PARSE_FATAL)
			break;
		at += req.line_len;
		int value = (r == KV_PARSE_OK && req.cmd == KV_CMD_PUT) ||
			    (r == KV_PARSE_BAD && req.skip_value);
		if (!value)
			continue;
		if (req.vlen > size - at)
			break;
		at += req.vlen;
		size_t end_len = 0;
		r = kv_parse_value_end(buf + at, size - at, &end_len);
		if (r != KV_PARSE_OK)
			break;
		if (end_len == 0 || end_len > size - at)
			abort();
		at += end_len;
	}
	free(buf);
	return 0;
}
