/* kv's request-line parser (see kv_proto.h). Reparses from the start on each call: the caller
 * holds the bytes. */
#include <stddef.h>
#include <string.h>

#include "kv_format.h"
#include "kv_proto.h"

/* The next space-separated word of s[*pos, end): sets *word and *wlen; 0 if none is left. */
static int next_word(const char *s, size_t end, size_t *pos, const char **word, size_t *wlen)
{
	size_t i = *pos;
	while (i < end && s[i] == ' ')
		i++;
	if (i == end)
		return 0;
	size_t start = i;
	while (i < end && s[i] != ' ')
		i++;
	*word = s + start;
	*wlen = i - start;
	*pos = i;
	return 1;
}

static int word_is(const char *w, size_t len, const char *name)
{
	return len == strlen(name) && memcmp(w, name, len) == 0;
}

/* NULL if w is a valid key, else why not. */
static const char *key_problem(const char *w, size_t len)
{
	if (len > KV_KEY_MAX)
		return "key too long";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)w[i];
		if (c < 0x20 || c == 0x7f)
			return "bad character in key";
	}
	return NULL;
}

/* Parses a value length: decimal digits, at most KV_VALUE_MAX. Returns 0 or -1. */
static int parse_length(const char *w, size_t len, size_t *out)
{
	size_t v = 0;
	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (w[i] < '0' || w[i] > '9')
			return -1;
		v = v * 10 + (size_t)(w[i] - '0');
		if (v > KV_VALUE_MAX)
			return -1;
	}
	*out = v;
	return 0;
}

static enum kv_parse_result bad(struct kv_request *req, const char *why)
{
	req->error = why;
	return KV_PARSE_BAD;
}

static enum kv_parse_result fatal(struct kv_request *req, const char *why)
{
	req->error = why;
	return KV_PARSE_FATAL;
}

enum kv_parse_result kv_parse_line(const char *buf, size_t len, struct kv_request *req)
{
	memset(req, 0, sizeof(*req));
	size_t lim = len < KV_LINE_MAX ? len : KV_LINE_MAX;
	const char *nl = memchr(buf, '\n', lim);
	if (!nl)
		return len >= KV_LINE_MAX ? fatal(req, "line too long") : KV_PARSE_INCOMPLETE;
	req->line_len = (size_t)(nl - buf) + 1;
	size_t end = (size_t)(nl - buf);
	if (end > 0 && buf[end - 1] == '\r')
		end--;
	const char *w[4];
	size_t wl[4], n = 0, pos = 0;
	while (n < 4 && next_word(buf, end, &pos, &w[n], &wl[n]))
		n++;
	if (n == 0)
		return KV_PARSE_EMPTY;
	if (word_is(w[0], wl[0], "PUT")) {
		req->cmd = KV_CMD_PUT;
		if (n != 3 || parse_length(w[2], wl[2], &req->vlen) != 0)
			return fatal(req, "usage: PUT <key> <length 0-65536>");
		req->key = w[1];
		req->klen = wl[1];
		const char *why = key_problem(w[1], wl[1]);
		if (why) {
			req->skip_value = 1;
			return bad(req, why);
		}
		return KV_PARSE_OK;
	}
	if (word_is(w[0], wl[0], "STATS")) {
		req->cmd = KV_CMD_STATS;
		return n == 1 ? KV_PARSE_OK : bad(req, "usage: STATS");
	}
	if (word_is(w[0], wl[0], "GET"))
		req->cmd = KV_CMD_GET;
	else if (word_is(w[0], wl[0], "DEL"))
		req->cmd = KV_CMD_DEL;
	else
		return bad(req, "unknown command");
	if (n != 2)
		return bad(req, req->cmd == KV_CMD_GET ? "usage: GET <key>" : "usage: DEL <key>");
	req->key = w[1];
	req->klen = wl[1];
	const char *why = key_problem(w[1], wl[1]);
	return why ? bad(req, why) : KV_PARSE_OK;
}

enum kv_parse_result kv_parse_value_end(const char *buf, size_t len, size_t *end_len)
{
	if (len == 0)
		return KV_PARSE_INCOMPLETE;
	if (buf[0] == '\n') {
		*end_len = 1;
		return KV_PARSE_OK;
	}
	if (buf[0] != '\r')
		return KV_PARSE_FATAL;
	if (len == 1)
		return KV_PARSE_INCOMPLETE;
	if (buf[1] != '\n')
		return KV_PARSE_FATAL;
	*end_len = 2;
	return KV_PARSE_OK;
}
