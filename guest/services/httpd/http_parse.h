/* HTTP/1.x request-head parser: pure, stateless, no allocation; builds for the guest and the host.
 */
#ifndef HTTP_PARSE_H
#define HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* The default bound on a request head (request line, header lines and the blank line). */
#define HTTP_HEAD_MAX 8192

enum http_method {
	HTTP_METHOD_GET,
	HTTP_METHOD_HEAD,
	HTTP_METHOD_OTHER, /* any other syntactically valid method: the server answers 405 */
};

enum http_parse_result {
	HTTP_PARSE_OK,	       /* a complete head: see head_len */
	HTTP_PARSE_INCOMPLETE, /* no error so far, but the head needs more bytes */
	HTTP_PARSE_ERROR,      /* malformed or refused: answer req->status and close */
};

struct http_request {
	enum http_method method;
	const char *target; /* points into the buffer; not NUL-terminated */
	size_t target_len;
	const char *path; /* target without query, and without scheme://authority */
	size_t path_len;
	int version_minor; /* the major is always 1: HTTP/1.0 or HTTP/1.1 */
	int keep_alive;	   /* after the version's default and the Connection tokens */
	int has_host;
	int has_content_length;
	uint64_t content_length;
	size_t head_len; /* bytes of the head, including leading empty lines and the blank line */
	int status;	 /* HTTP_PARSE_ERROR: 400, 414, 431, 501 or 505 */
};

/* Parses the request head at the start of buf[0, len). At most max_head bytes are looked at:
 * a head that does not end within them is an error (414 if the request line alone does not,
 * 431 otherwise). Lines end in CRLF or a bare LF; empty lines before the request line are
 * skipped. Header names are case-insensitive; obsolete line folding is refused (400). Only
 * Host, Connection, Content-Length and Transfer-Encoding are interpreted (Transfer-Encoding is
 * refused with 501). Fills *req (on error only req->status is meaningful). Any bytes are safe. */
enum http_parse_result http_parse_request(const char *buf, size_t len, size_t max_head,
					  struct http_request *req);

#endif
