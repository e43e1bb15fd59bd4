/* Token buckets after Firecracker's rate limiters: a bucket of `size` tokens that refills from
 * empty to full in `refill_time`, starts full, and has a `one_time_burst` of extra tokens
 * spent first and never refilled. A ratelimit pairs a bytes bucket with an operations bucket.
 * Pure logic: the caller passes the time (monotonic nanoseconds), so tests use a fake clock. */
#ifndef RATELIMIT_TOKEN_BUCKET_H
#define RATELIMIT_TOKEN_BUCKET_H

#include <stdint.h>

/* The largest size and one_time_burst accepted (2^62): sums of two stay below 2^63. */
#define TBUCKET_TOKENS_MAX (1ull << 62)
/* The longest refill time accepted: one hour. */
#define TBUCKET_REFILL_MS_MAX 3600000ull

/* One bucket as service.json gives it. size 0 = no limit. */
struct tbucket_config {
	uint64_t size;		 /* tokens the bucket holds, <= TBUCKET_TOKENS_MAX */
	uint64_t refill_ms;	 /* from empty to full, 1..TBUCKET_REFILL_MS_MAX (size > 0) */
	uint64_t one_time_burst; /* extra tokens at the start, never refilled */
};

struct tbucket {
	uint64_t size;	    /* 0: unlimited */
	uint64_t refill_ns; /* from empty to full */
	uint64_t burst;	    /* what is left of one_time_burst */
	uint64_t budget;    /* tokens now, <= size */
	uint64_t debt;	    /* tokens owed by a request larger than size, repaid first */
	uint64_t last_ns;   /* the time budget and debt are as of */
};

/* A bucket from c, full (plus its burst) at now. */
void tbucket_init(struct tbucket *b, const struct tbucket_config *c, uint64_t now);

/* Takes n tokens at now if the bucket has them (the burst first, then the budget), and
 * returns 1; else takes none and returns 0 with *ready_at the earliest time it will have them
 * (when no more are taken meanwhile). A request larger than size is let through when the
 * bucket is full, and what it takes beyond size is owed: refills repay it before the budget
 * grows. An unlimited bucket always returns 1. */
int tbucket_take(struct tbucket *b, uint64_t n, uint64_t now, uint64_t *ready_at);

/* Tokens the bucket could give now (burst and budget; less any debt, 0 at least). */
uint64_t tbucket_available(struct tbucket *b, uint64_t now);

/* A device's limit: bytes and operations; both must allow an operation for it to pass. */
struct ratelimit_config {
	struct tbucket_config bandwidth; /* bytes */
	struct tbucket_config ops;	 /* frames or requests */
};

struct ratelimit {
	struct tbucket bandwidth, ops;
	int limited;	       /* either bucket has a size: 0 means every take passes at once */
	int waiting;	       /* the last take failed: an operation waits */
	uint64_t wait_since;   /* when it began to wait */
	uint64_t throttled;    /* operations that had to wait (each counted once) */
	uint64_t throttled_ns; /* time operations waited, summed */
};

void ratelimit_init(struct ratelimit *rl, const struct ratelimit_config *c, uint64_t now);

/* 1 if c limits anything. */
int ratelimit_config_limited(const struct ratelimit_config *c);

/* Takes one operation of bytes from both buckets, or from neither: returns 1 if it may go
 * now; else 0 with *ready_at when it may (the later of the two buckets' times), and the
 * operation counts as throttled (once, however often it is tried) until it goes. */
int ratelimit_take(struct ratelimit *rl, uint64_t bytes, uint64_t now, uint64_t *ready_at);

/* The monotonic clock in nanoseconds: what devices pass as now. */
uint64_t ratelimit_now(void);

#endif
