/* service.json rate limiters: `{"bandwidth": BUCKET, "ops": BUCKET}`, each bucket
 * `{"size": N, "refill_time_ms": T, "one_time_burst": B}`, for the NIC's two directions and
 * the disk. */
#ifndef VMM_CONFIG_RATELIMIT_H
#define VMM_CONFIG_RATELIMIT_H

#include <jansson.h>
#include <stddef.h>

#include "token_bucket.h"

/* Parses the rate limiter v of the service file path; section names it in errors
 * ("net.tx_rate_limiter"). v NULL: no limit. Returns 0, or -1 with err set to
 * "<path>: key \"<section>.<key>\": <problem>". */
int vmm_config_ratelimit_parse(const char *path, const char *section, json_t *v,
			       struct ratelimit_config *rl, char *err, size_t errlen);

#endif
