/* Token buckets on a fake clock: size, refill, one-time burst, large requests and large
 * values, and the pair of buckets of a ratelimit. */
#include "ratelimit/token_bucket.h"
#include "unit.h"

#define MS 1000000ull
#define S 1000000000ull

/* How many single-token takes a bucket allows from t0 to t1 (exclusive), tried every step. */
static uint64_t count_takes(struct tbucket *b, uint64_t t0, uint64_t t1, uint64_t step)
{
	uint64_t n = 0, at;
	for (uint64_t t = t0; t < t1; t += step)
		while (tbucket_take(b, 1, t, &at))
			n++;
	return n;
}

START_TEST(starts_full_then_refills_at_size_per_refill_time)
{
	struct tbucket b;
	tbucket_init(&b, &(struct tbucket_config){.size = 100, .refill_ms = 1000}, 5 * S);
	uint64_t at = 0;
	for (int i = 0; i < 100; i++)
		ck_assert(tbucket_take(&b, 1, 5 * S, &at));
	ck_assert(!tbucket_take(&b, 1, 5 * S, &at));
	ck_assert_uint_eq(at, 5 * S + 10 * MS); /* one token every 10 ms */
	ck_assert(!tbucket_take(&b, 1, 5 * S + 10 * MS - 1, &at));
	ck_assert(tbucket_take(&b, 1, 5 * S + 10 * MS, &at));
	/* Ten seconds of takes tried every 1 ms: a token at each 10 ms mark, none early. */
	ck_assert_uint_eq(count_takes(&b, 5 * S + 10 * MS + 1, 15 * S + 10 * MS + 1, MS), 999);
	ck_assert_uint_eq(count_takes(&b, 15 * S + 10 * MS + 1, 15 * S + 20 * MS + 1, MS), 1);
}
END_TEST

START_TEST(refill_stops_at_size)
{
	struct tbucket b;
	tbucket_init(&b, &(struct tbucket_config){.size = 10, .refill_ms = 100}, 0);
	uint64_t at;
	ck_assert(tbucket_take(&b, 10, 0, &at));
	/* An hour idle gives back a full bucket, no more. */
	ck_assert_uint_eq(tbucket_available(&b, 3600 * S), 10);
	ck_assert(tbucket_take(&b, 10, 3600 * S, &at));
	ck_assert(!tbucket_take(&b, 1, 3600 * S, &at));
}
END_TEST

START_TEST(odd_rates_lose_no_fraction)
{
	/* 3 tokens per 1000 ms: a token every 333.33 ms, polled every 7 ms. */
	struct tbucket b;
	tbucket_init(&b, &(struct tbucket_config){.size = 3, .refill_ms = 1000}, 0);
	uint64_t n = count_takes(&b, 0, 100 * S, 7 * MS);
	/* 3 at the start, then 3 a second for 100 s (the last may fall just past the end). */
	ck_assert_uint_ge(n, 3 + 299);
	ck_assert_uint_le(n, 3 + 300);
}
END_TEST

START_TEST(one_time_burst_is_spent_first_and_never_refilled)
{
	struct tbucket b;
	tbucket_init(&b,
		     &(struct tbucket_config){.size = 10, .refill_ms = 1000, .one_time_burst = 50},
		     0);
	uint64_t at;
	ck_assert_uint_eq(tbucket_available(&b, 0), 60);
	ck_assert(tbucket_take(&b, 45, 0, &at));
	ck_assert_uint_eq(b.budget, 10);	 /* the burst paid all of it */
	ck_assert(tbucket_take(&b, 10, 0, &at)); /* 5 from the burst, 5 from the budget */
	ck_assert_uint_eq(b.burst, 0);
	ck_assert_uint_eq(b.budget, 5);
	ck_assert_uint_eq(tbucket_available(&b, 100 * S), 10);
	ck_assert_uint_eq(count_takes(&b, 100 * S, 110 * S + 1, MS), 10 + 100);
}
END_TEST

START_TEST(larger_than_size_goes_when_full_and_owes)
{
	struct tbucket b;
	tbucket_init(&b, &(struct tbucket_config){.size = 1000, .refill_ms = 1000}, 0);
	uint64_t at;
	ck_assert(tbucket_take(&b, 1, 0, &at));
	ck_assert(!tbucket_take(&b, 3000, 0, &at)); /* not full: waits to be full */
	ck_assert_uint_eq(at, 1 * MS);
	ck_assert(tbucket_take(&b, 3000, 1 * MS, &at));
	ck_assert_uint_eq(b.debt, 2000);
	/* It owes two seconds of refill, then one token takes 1 ms more. */
	ck_assert(!tbucket_take(&b, 1, 1 * MS, &at));
	ck_assert_uint_eq(at, 2001 * MS + 1 * MS);
	ck_assert(!tbucket_take(&b, 1, 2001 * MS, &at));
	ck_assert(tbucket_take(&b, 1, 2002 * MS, &at));
}
END_TEST

START_TEST(large_values_do_not_overflow)
{
	struct tbucket b;
	tbucket_init(&b,
		     &(struct tbucket_config){.size = TBUCKET_TOKENS_MAX,
					      .refill_ms = TBUCKET_REFILL_MS_MAX,
					      .one_time_burst = TBUCKET_TOKENS_MAX},
		     0);
	uint64_t at;
	ck_assert_uint_eq(tbucket_available(&b, 0), 2 * TBUCKET_TOKENS_MAX);
	ck_assert(tbucket_take(&b, TBUCKET_TOKENS_MAX, 0, &at));
	ck_assert(tbucket_take(&b, TBUCKET_TOKENS_MAX, 0, &at));
	ck_assert(!tbucket_take(&b, TBUCKET_TOKENS_MAX, 0, &at));
	ck_assert_uint_eq(at, TBUCKET_REFILL_MS_MAX * MS);
	/* Half the refill time gives half the bucket, exactly. */
	ck_assert_uint_eq(tbucket_available(&b, TBUCKET_REFILL_MS_MAX * MS / 2),
			  TBUCKET_TOKENS_MAX / 2);
	ck_assert(tbucket_take(&b, TBUCKET_TOKENS_MAX, TBUCKET_REFILL_MS_MAX * MS, &at));
	/* A request of 2^64-1 tokens waits for a full bucket, then owes; time near 2^64 ns. */
	ck_assert(!tbucket_take(&b, UINT64_MAX, UINT64_MAX - 1, &at) || b.debt > 0);

	/* A tiny bucket with a long refill: one token an hour; a day later it has one. */
	tbucket_init(&b, &(struct tbucket_config){.size = 1, .refill_ms = TBUCKET_REFILL_MS_MAX},
		     UINT64_MAX - 24 * 3600 * S);
	ck_assert(tbucket_take(&b, 1, UINT64_MAX - 24 * 3600 * S, &at));
	ck_assert_uint_eq(tbucket_available(&b, UINT64_MAX), 1);
}
END_TEST

START_TEST(zero_size_is_unlimited)
{
	struct tbucket b;
	tbucket_init(&b, &(struct tbucket_config){.size = 0, .refill_ms = 1000}, 0);
	uint64_t at;
	for (int i = 0; i < 1000; i++)
		ck_assert(tbucket_take(&b, UINT64_MAX, 0, &at));
	struct ratelimit rl;
	ratelimit_init(&rl, &(struct ratelimit_config){0}, 0);
	ck_assert(!rl.limited);
	ck_assert(ratelimit_take(&rl, UINT64_MAX, 0, &at));
}
END_TEST

START_TEST(ratelimit_takes_from_both_or_neither)
{
	/* 10 ops a second, 1000 bytes a second. */
	struct ratelimit rl;
	ratelimit_init(&rl,
		       &(struct ratelimit_config){.bandwidth = {.size = 1000, .refill_ms = 1000},
						  .ops = {.size = 10, .refill_ms = 1000}},
		       0);
	uint64_t at;
	ck_assert(ratelimit_take(&rl, 900, 0, &at));
	/* The ops bucket could give, the bytes bucket cannot: neither gives. */
	ck_assert(!ratelimit_take(&rl, 200, 0, &at));
	ck_assert_uint_eq(rl.ops.budget, 9);
	ck_assert_uint_eq(at, 100 * MS); /* 100 more bytes */
	ck_assert_uint_eq(rl.throttled, 1);
	ck_assert(!ratelimit_take(&rl, 200, 50 * MS, &at)); /* the same one: counted once */
	ck_assert_uint_eq(rl.throttled, 1);
	ck_assert(ratelimit_take(&rl, 200, 100 * MS, &at));
	ck_assert_uint_eq(rl.throttled_ns, 100 * MS);
	/* Small operations: the ops bucket decides. Ten seconds tried every ms. */
	uint64_t n = 0;
	for (uint64_t t = 100 * MS; t < 10100 * MS; t += MS)
		while (ratelimit_take(&rl, 1, t, &at))
			n++;
	ck_assert_uint_ge(n, 100 + 8 - 1);
	ck_assert_uint_le(n, 100 + 8 + 1);
}
END_TEST

Suite *ratelimit_suite(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *tc = tcase_create("bucket");
	tcase_add_test(tc, starts_full_then_refills_at_size_per_refill_time);
	tcase_add_test(tc, refill_stops_at_size);
	tcase_add_test(tc, odd_rates_lose_no_fraction);
	tcase_add_test(tc, one_time_burst_is_spent_first_and_never_refilled);
	tcase_add_test(tc, larger_than_size_goes_when_full_and_owes);
	tcase_add_test(tc, large_values_do_not_overflow);
	tcase_add_test(tc, zero_size_is_unlimited);
	tcase_add_test(tc, ratelimit_takes_from_both_or_neither);
	suite_add_tcase(s, tc);
	return s;
}
