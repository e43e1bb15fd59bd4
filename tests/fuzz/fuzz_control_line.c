/* Control-socket lines: the input is what a client sends, cut into lines as the server cuts
 * it; each line is parsed and checked against the protocol. A request that passes must be
 * one the supervisor can take (an object whose "cmd" is a string), and every refusal is a
 * usage error that can be sent back. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "fuzz.h"

static void check_answer(json_t *answer)
{
	char *text = json_dumps(answer, JSON_COMPACT);
	if (!text || strchr(text, '\n'))
		abort(); /* an answer is one line */
	free(text);
	json_decref(answer);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (len > CONTROL_LINE_MAX)
			len = CONTROL_LINE_MAX;
		json_t *error;
		json_t *request = control_parse_request(p, len, &error);
		if (request) {
			if (error || !json_is_object(request) ||
			    !json_is_string(json_object_get(request, "cmd")))
				abort();
			check_answer(request);
		} else {
			if (!error || !json_is_false(json_object_get(error, "ok")))
				abort();
			check_answer(error);
		}
		p += len + 1;
	}
	return 0;
}
