/* HTTP/1.1 response heads and small error responses: pure formatting into caller buffers. */
#ifndef HTTP_RESPONSE_H
#define HTTP_RESPONSE_H

#include <stddef.h>
#include <stdint.h>

/* Flags of http_format_head. */
#define HTTP_RESP_CLOSE 0x1	 /* "Connection: close": the server closes after this response */
#define HTTP_RESP_KEEP_ALIVE 0x2 /* "Connection: keep-alive" (for HTTP/1.0 clients) */
#define HTTP_RESP_ALLOW 0x4	 /* "Allow: GET, HEAD" (405) */

/* The server's name, sent in every Server header. */
#define HTTP_SERVER_NAME "denali-httpd"

/* The reason phrase of status ("Not Found"); "Unknown" for one the server never sends. */
const char *http_reason(int status);

/* Writes the status line and the headers (Server, Content-Type, Content-Length, then Allow and
 * Connection as flags say) and the blank line into buf. Returns the length, or 0 if it does not
 * fit in size bytes (buf then holds no useful text). */
size_t http_format_head(char *buf, size_t size, int status, const char *content_type,
			uint64_t content_length, unsigned flags);

/* Writes a complete error response: the head for status with a text/plain body of the reason
 * phrase and a newline; with head_only (HEAD requests) the body is left out but Content-Length
 * still counts it. Returns the length, or 0 if it does not fit. */
size_t http_format_error(char *buf, size_t size, int status, int head_only, unsigned flags);

#endif
