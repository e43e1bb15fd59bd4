/* kv's line protocol: parses the request lines a connection received. Pure, stateless, no
 * allocation; builds for the guest and the host.
 *   PUT <key> <len>\r\n<len bytes>\r\n     GET <key>\r\n     DEL <key>\r\n     STATS\r\n
 * Lines end in CRLF or a bare LF; words are separated by spaces; commands are upper-case. */
#ifndef KV_PROTO_H
#define KV_PROTO_H

#include <stddef.h>

/* The longest request line, its line end included: a PUT of the longest key and value fits. */
#define KV_LINE_MAX 300

enum kv_cmd { KV_CMD_GET, KV_CMD_PUT, KV_CMD_DEL, KV_CMD_STATS };

enum kv_parse_result {
	KV_PARSE_OK,	     /* a request: see req; line_len bytes are its line */
	KV_PARSE_INCOMPLETE, /* no line end yet, and no error so far */
	KV_PARSE_EMPTY,	     /* an empty line: skip line_len bytes */
	KV_PARSE_BAD,	     /* answer ERR req->error and go on after line_len bytes (and, if
				skip_value, after a value of vlen bytes and its line end) */
	KV_PARSE_FATAL,	     /* answer ERR req->error and close: the framing is lost */
};

struct kv_request {
	enum kv_cmd cmd;
	const char *key; /* into the buffer; 1..KV_KEY_MAX bytes, no spaces or controls */
	size_t klen;
	size_t vlen;	   /* PUT: the value's bytes, 0..KV_VALUE_MAX */
	size_t line_len;   /* the line's bytes, its end included */
	int skip_value;	   /* BAD: a PUT whose value follows all the same */
	const char *error; /* BAD, FATAL: why, for the ERR line */
};

/* Parses the request line at the start of buf[0, len). A line that does not end within
 * KV_LINE_MAX bytes is FATAL, as is a PUT without a valid length (its value cannot be told
 * from the next request). Any bytes are safe. */
enum kv_parse_result kv_parse_line(const char *buf, size_t len, struct kv_request *req);

/* After a PUT's value: OK if buf[0, len) starts with a line end (its bytes in *end_len),
 * INCOMPLETE if it may still, FATAL if it does not. */
enum kv_parse_result kv_parse_value_end(const char *buf, size_t len, size_t *end_len);

#endif
