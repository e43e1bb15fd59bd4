/* Token buckets: refill, take, and when a refused take may go. */
#include "token_bucket.h"

#include "clock.h"

/* Products of a token count (< 2^64) and a time in ns (< 2^64) need 128 bits. */
__extension__ typedef unsigned __int128 u128;

void tbucket_init(struct tbucket *b, const struct tbucket_config *c, uint64_t now)
{
	*b = (struct tbucket){0};
	if (!c->size || !c->refill_ms)
		return; /* unlimited */
	b->size = c->size;
	b->refill_ns = c->refill_ms * 1000000ull;
	b->burst = c->one_time_burst;
	b->budget = c->size;
	b->last_ns = now;
}

/* Adds what the time since last_ns has earned: the debt is repaid first, the budget stops at
 * size. last_ns moves on only by the time the tokens given took (rounded up), so frequent
 * calls lose no fraction of a token, and none is ever given early. */
static void refill(struct tbucket *b, uint64_t now)
{
	if (now <= b->last_ns)
		return;
	u128 need = (u128)b->debt + (b->size - b->budget);
	if (need == 0) {
		b->last_ns = now; /* full: time while full earns nothing */
		return;
	}
	u128 earned = (u128)(now - b->last_ns) * b->size / b->refill_ns;
	if (earned >= need) {
		b->debt = 0;
		b->budget = b->size;
		b->last_ns = now;
		return;
	}
	uint64_t t = (uint64_t)earned; /* < need <= 2^63 + 2^62 */
	b->last_ns += (uint64_t)(((u128)t * b->refill_ns + b->size - 1) / b->size);
	if (t >= b->debt) {
		b->budget += t - b->debt;
		b->debt = 0;
	} else {
		b->debt -= t;
	}
}

uint64_t tbucket_available(struct tbucket *b, uint64_t now)
{
	if (!b->size)
		return UINT64_MAX;
	refill(b, now);
	return b->debt ? 0 : b->burst + b->budget;
}

int tbucket_take(struct tbucket *b, uint64_t n, uint64_t now, uint64_t *ready_at)
{
	if (!b->size)
		return 1;
	refill(b, now);
	if (!b->debt && n <= b->burst) {
		b->burst -= n;
		return 1;
	}
	uint64_t rest = b->debt ? n : n - b->burst; /* what the budget must give */
	if (!b->debt && rest <= b->budget) {
		b->burst = 0;
		b->budget -= rest;
		return 1;
	}
	if (!b->debt && b->budget == b->size) {
		/* Larger than the bucket: it goes when the bucket is full, and owes the rest. */
		b->burst = 0;
		b->budget = 0;
		b->debt = rest - b->size;
		return 1;
	}
	/* Tokens still to earn: the debt, then up to rest (or a full bucket for a large one). */
	uint64_t target = rest < b->size ? rest : b->size;
	u128 deficit = (u128)b->debt + (target - (target < b->budget ? target : b->budget));
	u128 wait = (deficit * b->refill_ns + b->size - 1) / b->size;
	u128 at = (u128)b->last_ns + wait;
	*ready_at = at > UINT64_MAX ? UINT64_MAX : (uint64_t)at;
	return 0;
}

int ratelimit_config_limited(const struct ratelimit_config *c)
{
	return (c->bandwidth.size && c->bandwidth.refill_ms) || (c->ops.size && c->ops.refill_ms);
}

void ratelimit_init(struct ratelimit *rl, const struct ratelimit_config *c, uint64_t now)
{
	*rl = (struct ratelimit){0};
	tbucket_init(&rl->bandwidth, &c->bandwidth, now);
	tbucket_init(&rl->ops, &c->ops, now);
	rl->limited = ratelimit_config_limited(c);
}

int ratelimit_take(struct ratelimit *rl, uint64_t bytes, uint64_t now, uint64_t *ready_at)
{
	if (!rl->limited)
		return 1;
	/* Both or neither: check each can give before either gives. A bucket that gives a large
	 * request on credit (full, owing the rest) can always give, so checking with a copy is
	 * exact. */
	struct tbucket bw = rl->bandwidth, ops = rl->ops;
	uint64_t bw_at = 0, ops_at = 0;
	int bw_ok = tbucket_take(&bw, bytes, now, &bw_at);
	int ops_ok = tbucket_take(&ops, 1, now, &ops_at);
	if (bw_ok && ops_ok) {
		rl->bandwidth = bw;
		rl->ops = ops;
		if (rl->waiting) {
			rl->waiting = 0;
			rl->throttled_ns += now > rl->wait_since ? now - rl->wait_since : 0;
		}
		return 1;
	}
	/* Keep the refills (they are exact) but not the takes. */
	tbucket_available(&rl->bandwidth, now);
	tbucket_available(&rl->ops, now);
	uint64_t at = 0;
	if (!bw_ok)
		at = bw_at;
	if (!ops_ok && ops_at > at)
		at = ops_at;
	*ready_at = at > now ? at : now + 1;
	if (!rl->waiting) {
		rl->waiting = 1;
		rl->wait_since = now;
		rl->throttled++;
	}
	return 0;
}

uint64_t ratelimit_now(void)
{
	return (uint64_t)clock_mono_ns();
}
