/* service.json rate limiters: the strict parser of one limiter and its two buckets. */
#include "config_ratelimit.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

/* An integer key of a bucket, lo..hi; absent: *out = dflt. */
static int bucket_int(const char *path, const char *section, json_t *bucket, const char *key,
		      uint64_t lo, uint64_t hi, uint64_t dflt, uint64_t *out, char *err,
		      size_t errlen)
{
	json_t *v = json_object_get(bucket, key);
	if (!v) {
		*out = dflt;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) < lo || (uint64_t)json_integer_value(v) > hi)
		return vmm_config_fail(err, errlen, path, section, key,
				       "expected an integer from %" PRIu64 " to %" PRIu64, lo, hi);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int parse_bucket(const char *path, const char *section, const char *name, json_t *v,
			struct tbucket_config *b, char *err, size_t errlen)
{
	char where[96];
	snprintf(where, sizeof(where), "%s.%s", section, name);
	memset(b, 0, sizeof(*b));
	if (!v)
		return 0;
	if (!json_is_object(v))
		return vmm_config_fail(err, errlen, path, where, NULL,
				       "expected an object like {\"size\": 1000, "
				       "\"refill_time_ms\": 1000}, got %s",
				       vmm_json_type_name(v));
	const char *key;
	json_t *value;
	json_object_foreach (v, key, value) {
		if (strcmp(key, "size") && strcmp(key, "refill_time_ms") &&
		    strcmp(key, "one_time_burst"))
			return vmm_config_fail(
				err, errlen, path, where, key,
				"unknown key (known keys: size, refill_time_ms, one_time_burst)");
	}
	if (!json_object_get(v, "size"))
		return vmm_config_fail(err, errlen, path, where, "size",
				       "missing (the tokens the bucket holds; 0 = no limit)");
	if (bucket_int(path, where, v, "size", 0, TBUCKET_TOKENS_MAX, 0, &b->size, err, errlen) ||
	    bucket_int(path, where, v, "one_time_burst", 0, TBUCKET_TOKENS_MAX, 0,
		       &b->one_time_burst, err, errlen))
		return -1;
	if (b->size && !json_object_get(v, "refill_time_ms"))
		return vmm_config_fail(err, errlen, path, where, "refill_time_ms",
				       "missing (milliseconds to refill the bucket from empty)");
	if (bucket_int(path, where, v, "refill_time_ms", 1, TBUCKET_REFILL_MS_MAX, 0, &b->refill_ms,
		       err, errlen))
		return -1;
	if (!b->size && b->one_time_burst)
		return vmm_config_fail(err, errlen, path, where, "one_time_burst",
				       "needs a size (a bucket of size 0 has no limit)");
	return 0;
}

int vmm_config_ratelimit_parse(const char *path, const char *section, json_t *v,
			       struct ratelimit_config *rl, char *err, size_t errlen)
{
	memset(rl, 0, sizeof(*rl));
	if (!v)
		return 0;
	if (!json_is_object(v))
		return vmm_config_fail(err, errlen, path, section, NULL,
				       "expected an object like {\"ops\": {\"size\": 100, "
				       "\"refill_time_ms\": 1000}}, got %s",
				       vmm_json_type_name(v));
	const char *key;
	json_t *value;
	json_object_foreach (v, key, value) {
		if (strcmp(key, "bandwidth") && strcmp(key, "ops"))
			return vmm_config_fail(err, errlen, path, section, key,
					       "unknown key (known keys: bandwidth, ops)");
	}
	return parse_bucket(path, section, "bandwidth", json_object_get(v, "bandwidth"),
			    &rl->bandwidth, err, errlen) ||
			       parse_bucket(path, section, "ops", json_object_get(v, "ops"),
					    &rl->ops, err, errlen)
		       ? -1
		       : 0;
}
