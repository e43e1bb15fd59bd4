/* Parsing of human-written sizes. */
#include "size.h"

#include <string.h>

struct size_suffix {
	const char *text;
	unsigned shift;
};

static const struct size_suffix suffixes[] = {
	{"", 0},    {"B", 0},	 {"K", 10},  {"k", 10},	  {"KB", 10}, {"KiB", 10},
	{"M", 20},  {"m", 20},	 {"MB", 20}, {"MiB", 20}, {"G", 30},  {"g", 30},
	{"GB", 30}, {"GiB", 30}, {"T", 40},  {"t", 40},	  {"TB", 40}, {"TiB", 40},
};

int vmm_size_parse(const char *text, uint64_t *out)
{
	if (text == NULL || *text < '0' || *text > '9')
		return -1;
	uint64_t value = 0;
	const char *p = text;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned digit = (unsigned)(*p - '0');
		if (value > (UINT64_MAX - digit) / 10)
			return -1;
		value = value * 10 + digit;
	}
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		if (strcmp(p, suffixes[i].text) != 0)
			continue;
		if (suffixes[i].shift && value > (UINT64_MAX >> suffixes[i].shift))
			return -1;
		*out = value << suffixes[i].shift;
		return 0;
	}
	return -1;
}
