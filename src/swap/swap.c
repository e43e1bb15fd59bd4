/* Swapping one service out of memory and back in. */
#include "swap.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "clock.h"
#include "denali/abi.h"

/* Calls fn for each run of pages whose bit is set in map. */
static void for_each_run(const uint8_t *map, size_t pages,
			 void (*fn)(size_t first, size_t n, void *), void *arg)
{
	for (size_t i = 0; i < pages;) {
		if (!(map[i / 8] & (1u << (i % 8)))) {
			i++;
			continue;
		}
		size_t first = i;
		while (i < pages && (map[i / 8] & (1u << (i % 8))))
			i++;
		fn(first, i - first, arg);
	}
}

/* Counts the resident pages of [host, host + size), noting them into map unless it is NULL.
 * mincore only looks at the page tables: a range unmapped meanwhile fails, harmlessly. */
static uint64_t record_resident_range(const uint8_t *host, size_t size, uint8_t *map)
{
	size_t pages = size / DN_PAGE_SIZE;
	unsigned char vec[4096];
	uint64_t n = 0;
	if (map)
		memset(map, 0, (pages + 7) / 8);
	for (size_t first = 0; first < pages; first += sizeof(vec)) {
		size_t count = pages - first < sizeof(vec) ? pages - first : sizeof(vec);
		if (mincore((void *)(uintptr_t)(host + first * DN_PAGE_SIZE), count * DN_PAGE_SIZE,
			    vec) != 0)
			return 0;
		for (size_t i = 0; i < count; i++) {
			if (!(vec[i] & 1))
				continue;
			if (map)
				map[(first + i) / 8] |= (uint8_t)(1u << ((first + i) % 8));
			n++;
		}
	}
	return n;
}

/* Notes which pages are resident into map; returns how many. */
static uint64_t record_resident(const struct guestmem *mem, uint8_t *map)
{
	return record_resident_range(mem->host, mem->size, map);
}

static int pagemap_fd = -1;
static pid_t pagemap_pid; /* whose pagemap_fd is: a forked child must open its own */

int swap_pagemap_open(void)
{
	if (pagemap_pid == getpid())
		return 0;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	pagemap_fd = fd; /* an inherited number is not closed: close_range took it, or it is
			  * another file's now */
	pagemap_pid = getpid();
	return 0;
}

/* Counts the pages of [host, host + size) mapped in this process's page tables (pagemap bit
 * 63), noting them into map unless it is NULL. Returns -1 if pagemap cannot be read. */
static int64_t record_mapped_range(const void *host, size_t size, uint8_t *map)
{
	size_t pages = size / DN_PAGE_SIZE;
	int held = pagemap_pid == getpid();
	int fd = held ? pagemap_fd : open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (map)
		memset(map, 0, (pages + 7) / 8);
	uint64_t entries[512];
	int64_t n = 0;
	uint64_t base = (uint64_t)(uintptr_t)host / DN_PAGE_SIZE;
	for (size_t first = 0; first < pages; first += 512) {
		size_t count = pages - first < 512 ? pages - first : 512;
		ssize_t want = (ssize_t)(count * sizeof(entries[0]));
		if (pread(fd, entries, (size_t)want,
			  (off_t)((base + first) * sizeof(entries[0]))) != want) {
			if (!held)
				close(fd);
			return -1;
		}
		for (size_t i = 0; i < count; i++) {
			if (!(entries[i] >> 63))
				continue;
			if (map)
				map[(first + i) / 8] |= (uint8_t)(1u << ((first + i) % 8));
			n++;
		}
	}
	if (!held)
		close(fd);
	return n;
}

/* Notes into map the pages the guest really used: those mapped, not every page readahead left
 * in the cache. Returns how many, or -1 if pagemap cannot be read (then mincore's view is
 * taken). */
static int64_t record_mapped(const struct guestmem *mem, uint8_t *map)
{
	return record_mapped_range(mem->host, mem->size, map);
}

uint64_t swap_resident_pages(const struct guestmem *mem)
{
	return record_resident_range(mem->host, mem->size, NULL);
}

uint64_t swap_count_mapped(const void *host, size_t size)
{
	int64_t n = record_mapped_range(host, size, NULL);
	return n > 0 ? (uint64_t)n : 0;
}

/* Minor and major page faults of the calling thread: KVM faults guest pages in on the vcpu's
 * thread, so after a swap-in these are the guest's pages coming back on demand. */
static uint64_t thread_faults(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_THREAD, &ru) != 0)
		return 0;
	return (uint64_t)ru.ru_minflt + (uint64_t)ru.ru_majflt;
}

void swap_count_faults(struct swap_state *s)
{
	if (!s->stats.ins || s->out)
		return;
	uint64_t now = thread_faults();
	s->stats.faults_after_in += now - s->faults_at_in;
	s->faults_at_in = now; /* counted: not again */
}

int swap_out(struct swap_state *s, struct guestmem *mem, struct vcpu *v, char *err, size_t errlen)
{
	int64_t t0 = clock_mono_ns();
	size_t pages = mem->size / DN_PAGE_SIZE;
	if (!s->working_set) {
		s->working_set = calloc((pages + 7) / 8, 1);
		if (!s->working_set) {
			snprintf(err, errlen, "swap-out: out of memory");
			return -1;
		}
		s->pages = pages;
	}
	/* Dirty pages go to the file first: once they are clean the page cache can let go. */
	if (msync(mem->host, mem->size, MS_SYNC) != 0) {
		snprintf(err, errlen, "swap-out: cannot write guest memory back to %s: %s",
			 mem->path, strerror(errno));
		return -1;
	}
	if (vcpu_park(v, &s->vcpu, err, errlen) != 0)
		return -1;
	swap_count_faults(s);
	int64_t mapped = record_mapped(mem, s->working_set);
	s->stats.working_set_pages =
		mapped >= 0 ? (uint64_t)mapped : record_resident(mem, s->working_set);
	/* The VM is gone; now the pages: out of this mapping, then out of the page cache. */
	madvise(mem->host, mem->size, MADV_DONTNEED);
	posix_fadvise(mem->fd, 0, (off_t)mem->size, POSIX_FADV_DONTNEED);
	s->out = 1;
	s->stats.outs++;
	s->stats.out_ns += (uint64_t)(clock_mono_ns() - t0);
	uint64_t left = swap_resident_pages(mem);
	if (left > s->stats.resident_after_out_max)
		s->stats.resident_after_out_max = left;
	return 0;
}

struct prefetch {
	const struct guestmem *mem;
	uint64_t pages;
};

static void prefetch_run(size_t first, size_t n, void *arg)
{
	struct prefetch *p = arg;
	uint8_t *addr = p->mem->host + first * DN_PAGE_SIZE;
	/* Read ahead into the page cache, one call per run, without mapping the pages: a page
	 * the guest then touches costs a minor fault, and the pages it maps are exactly the
	 * working set the next swap-out notes (MADV_POPULATE_* would map them all, and dirty
	 * them for writing). */
	madvise(addr, n * DN_PAGE_SIZE, MADV_WILLNEED);
	p->pages += n;
}

int swap_in(struct swap_state *s, struct guestmem *mem, struct vcpu *v, const struct vcpu_kvm *kvm,
	    struct vcpu_shell *spare, char *err, size_t errlen)
{
	int64_t t0 = clock_mono_ns();
	struct prefetch p = {mem, 0};
	if (s->prefetch)
		for_each_run(s->working_set, s->pages, prefetch_run, &p);
	if (vcpu_unpark(v, kvm, spare, &s->vcpu, err, errlen) != 0)
		return -1;
	s->out = 0;
	s->stats.ins++;
	s->stats.spare_ins += spare != NULL;
	s->stats.prefetched_pages += p.pages;
	s->stats.in_ns += (uint64_t)(clock_mono_ns() - t0);
	s->faults_at_in = thread_faults();
	return 0;
}

int swap_check_state_dir(const char *dir, char *err, size_t errlen)
{
	/* The folder may not exist yet: it will be made on the filesystem of its nearest
	 * existing parent. */
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s", dir);
	struct statfs fs;
	while (statfs(path, &fs) != 0) {
		if (errno != ENOENT || strcmp(path, ".") == 0)
			return 0; /* guestmem_open says what is wrong with it */
		char *slash = strrchr(path, '/');
		if (!slash)
			snprintf(path, sizeof(path), "."); /* a relative name: the current folder */
		else if (slash == path)
			slash[1] = '\0';
		else
			*slash = '\0';
	}
	if (fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC) {
		snprintf(err, errlen,
			 "the state directory %s is on tmpfs: a service swapped out there would "
			 "still be in RAM. Give --state-dir a folder on a disk-backed filesystem",
			 dir);
		return -1;
	}
	return 0;
}

void swap_free(struct swap_state *s)
{
	free(s->working_set);
	s->working_set = NULL;
}
