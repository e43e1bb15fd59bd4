/* HTTP/1.1 response heads and small error responses. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "http_response.h"

const char *http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

size_t http_format_head(char *buf, size_t size, int status, const char *content_type,
			uint64_t content_length, unsigned flags)
{
	const char *conn = "";
	if (flags & HTTP_RESP_CLOSE)
		conn = "Connection: close\r\n";
	else if (flags & HTTP_RESP_KEEP_ALIVE)
		conn = "Connection: keep-alive\r\n";
	int n = snprintf(buf, size,
			 "HTTP/1.1 %d %s\r\n"
			 "Server: " HTTP_SERVER_NAME "\r\n"
			 "Content-Type: %s\r\n"
			 "Content-Length: %llu\r\n"
			 "%s%s\r\n",
			 status, http_reason(status), content_type,
			 (unsigned long long)content_length,
			 (flags & HTTP_RESP_ALLOW) ? "Allow: GET, HEAD\r\n" : "", conn);
	if (n < 0 || (size_t)n >= size)
		return 0;
	return (size_t)n;
}

size_t http_format_error(char *buf, size_t size, int status, int head_only, unsigned flags)
{
	const char *reason = http_reason(status);
	size_t body_len = strlen(reason) + 1;
	size_t n =
		http_format_head(buf, size, status, "text/plain; charset=utf-8", body_len, flags);
	if (n == 0)
		return 0;
	if (head_only)
		return n;
	if (size - n <= body_len)
		return 0;
	memcpy(buf + n, reason, body_len - 1);
	buf[n + body_len - 1] = '\n';
	buf[n + body_len] = '\0';
	return n + body_len;
}
