/* The memory budget's choice of services to swap out. */
#include "budget.h"

#include <stdlib.h>
#include <sys/mman.h>

struct budget_entry *budget_table_create(unsigned n)
{
	void *p = mmap(NULL, (size_t)n * sizeof(struct budget_entry), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void budget_table_free(struct budget_entry *t, unsigned n)
{
	if (t)
		munmap(t, (size_t)n * sizeof(*t));
}

uint64_t budget_resident(const struct budget_entry *t, unsigned n)
{
	uint64_t pages = 0;
	for (unsigned i = 0; i < n; i++)
		if (__atomic_load_n(&t[i].awake, __ATOMIC_RELAXED))
			pages += __atomic_load_n(&t[i].resident_pages, __ATOMIC_RELAXED);
	return pages;
}

unsigned budget_pick(const struct budget_entry *t, unsigned n, uint64_t budget_pages,
		     const int64_t *asked_at, int64_t not_before, int64_t woke_after, unsigned *out,
		     unsigned max)
{
	uint64_t resident = budget_resident(t, n), largest = 0;
	unsigned picked = 0;
	for (unsigned i = 0; i < n; i++) {
		if (!__atomic_load_n(&t[i].awake, __ATOMIC_RELAXED))
			continue;
		uint64_t r = __atomic_load_n(&t[i].resident_pages, __ATOMIC_RELAXED);
		if (asked_at[i] >= not_before) /* on its way out: as good as gone */
			resident -= r < resident ? r : resident;
		else if (r > largest)
			largest = r;
	}
	if (resident <= budget_pages)
		return 0;
	/* Over: down to the budget less the largest awake service, so that the next wake fits
	 * before another has to leave (the budget then holds on average, not only at the
	 * ticks). Selection of the oldest each round: the victims are few next to the fleet. */
	uint64_t target = budget_pages > largest ? budget_pages - largest : 0;
	while (resident > target && picked < max) {
		int64_t oldest = INT64_MAX;
		unsigned victim = n;
		for (unsigned i = 0; i < n; i++) {
			if (!__atomic_load_n(&t[i].awake, __ATOMIC_RELAXED) ||
			    asked_at[i] >= not_before ||
			    __atomic_load_n(&t[i].woke_ns, __ATOMIC_RELAXED) > woke_after)
				continue;
			int already = 0;
			for (unsigned k = 0; k < picked && !already; k++)
				already = out[k] == i;
			int64_t when = __atomic_load_n(&t[i].last_run_ns, __ATOMIC_RELAXED);
			if (!already && when < oldest) {
				oldest = when;
				victim = i;
			}
		}
		if (victim == n)
			break;
		out[picked++] = victim;
		uint64_t r = __atomic_load_n(&t[victim].resident_pages, __ATOMIC_RELAXED);
		resident -= r < resident ? r : resident;
	}
	return picked;
}
