/* Metrics HTTP requests: the input is what a client sends; its head is checked as it grows,
 * as the server checks it after every read (cut where the input's first byte says). A verdict
 * once given does not change as more bytes come: the server acts on the first. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "metrics_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t step = data[0] ? data[0] : 1;
	data++, size--;
	if (size > METRICS_HTTP_HEAD_MAX)
		size = METRICS_HTTP_HEAD_MAX;
	/* A copy of its own size, so that ASan sees a read past the end. */
	char *in = malloc(size ? size : 1);
	if (!in)
		abort();
	memcpy(in, data, size);
	enum metrics_http_head first = METRICS_HEAD_INCOMPLETE;
	for (size_t len = 0;; len = len + step < size ? len + step : size) {
		enum metrics_http_head v = metrics_http_check_head(in, len);
		if (first != METRICS_HEAD_INCOMPLETE && v != first)
			abort();
		if (first == METRICS_HEAD_INCOMPLETE)
			first = v;
		if (len == size)
			break;
	}
	free(in);
	return 0;
}
