/* The memory half of swapping that needs no KVM: where memory may be swapped to, and counting
 * resident guest pages. */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "base/clock.h"
#include "swap/budget.h"
#include "swap/checkpoint.h"
#include "swap/swap.h"
#include "unit.h"
#include "vcpu/sysarea.h"

START_TEST(test_state_dir_on_tmpfs)
{
	char err[512];
	struct statfs fs;
	if (statfs("/dev/shm", &fs) == 0 && fs.f_type == TMPFS_MAGIC) {
		/* Not made yet: judged by the filesystem it would be made on. */
		ck_assert_int_eq(swap_check_state_dir("/dev/shm/denali-none/a/b", err, sizeof(err)),
				 -1);
		ck_assert_ptr_nonnull(strstr(err, "is on tmpfs"));
		ck_assert_ptr_nonnull(strstr(err, "/dev/shm/denali-none/a/b"));
	}
	ck_assert_int_eq(swap_check_state_dir("/proc/self", err, sizeof(err)), 0);
}
END_TEST

START_TEST(test_resident_pages)
{
	char err[512];
	struct guestmem gm;
	ck_assert_msg(guestmem_open(&gm, unit_tmpdir(), "swapcount", 4u << 20, err, sizeof(err)) ==
			      0,
		      "%s", err);
	ck_assert_uint_eq(swap_resident_pages(&gm), 0); /* sparse and untouched */
	for (unsigned i = 0; i < 10; i++)
		gm.host[i * 2 * 4096] = 1;
	uint64_t n = swap_resident_pages(&gm);
	ck_assert_uint_ge(n, 10);
	/* Written back and dropped, they are gone (unless the filesystem keeps them in RAM). */
	ck_assert_int_eq(msync(gm.host, gm.size, MS_SYNC), 0);
	ck_assert_int_eq(madvise(gm.host, gm.size, MADV_DONTNEED), 0);
	posix_fadvise(gm.fd, 0, (off_t)gm.size, POSIX_FADV_DONTNEED);
	struct statfs fs;
	if (fstatfs(gm.fd, &fs) == 0 && fs.f_type != TMPFS_MAGIC)
		ck_assert_uint_lt(swap_resident_pages(&gm), n);
	guestmem_close(&gm, 0);
}
END_TEST

/* Six services of 100 pages, last run at times 60, 10, 50, 20, 40, 30 (all awake). */
static void fleet(struct budget_entry *t, int64_t *asked)
{
	static const int64_t ran[6] = {60, 10, 50, 20, 40, 30};
	for (unsigned i = 0; i < 6; i++) {
		t[i] = (struct budget_entry){
			.last_run_ns = ran[i], .resident_pages = 100, .awake = 1};
		asked[i] = INT64_MIN;
	}
}

START_TEST(test_budget_least_recently_run_first)
{
	struct budget_entry t[6];
	int64_t asked[6];
	unsigned out[6];
	fleet(t, asked);
	ck_assert_uint_eq(budget_resident(t, 6), 600);
	ck_assert_uint_eq(budget_pick(t, 6, 600, asked, 0, INT64_MAX, out, 6),
			  0); /* within the budget */
	/* Over 350 pages: down to 250 (room for one more of 100), least recently run first. */
	ck_assert_uint_eq(budget_pick(t, 6, 350, asked, 0, INT64_MAX, out, 6), 4);
	ck_assert_uint_eq(out[0], 1);
	ck_assert_uint_eq(out[1], 3);
	ck_assert_uint_eq(out[2], 5);
	ck_assert_uint_eq(out[3], 4);
	/* Asleep ones hold nothing and are never picked; max bounds the answer. */
	t[1].awake = 0;
	ck_assert_uint_eq(budget_resident(t, 6), 500);
	ck_assert_uint_eq(budget_pick(t, 6, 0, asked, 0, INT64_MAX, out, 2), 2);
	ck_assert_uint_eq(out[0], 3);
	ck_assert_uint_eq(out[1], 5);
}
END_TEST

START_TEST(test_budget_asked_ones_count_as_going)
{
	struct budget_entry t[6];
	int64_t asked[6];
	unsigned out[6];
	fleet(t, asked);
	/* Service 1 was asked at 100: with not_before 50 it is on its way out, so its pages count
	 * as gone and it is not asked again; 500 is over 450, and two more bring it to 300. */
	asked[1] = 100;
	ck_assert_uint_eq(budget_pick(t, 6, 450, asked, 50, INT64_MAX, out, 6), 2);
	ck_assert_uint_eq(out[0], 3);
	ck_assert_uint_eq(out[1], 5);
	/* Within the budget once it is gone: nothing more. */
	ck_assert_uint_eq(budget_pick(t, 6, 500, asked, 50, INT64_MAX, out, 6), 0);
	/* Long ago (before not_before): asked again. */
	ck_assert_uint_eq(budget_pick(t, 6, 450, asked, 200, INT64_MAX, out, 6), 3);
	ck_assert_uint_eq(out[0], 1);
	/* Woken after woke_after: kept for its minimum residency, the next oldest goes. */
	t[1].woke_ns = 300;
	ck_assert_uint_eq(budget_pick(t, 6, 450, asked, 200, 250, out, 6), 3);
	ck_assert_uint_eq(out[0], 3);
	ck_assert_uint_eq(out[1], 5);
	ck_assert_uint_eq(out[2], 4);
	/* Nothing awake to pick: no answer, however far over. */
	for (unsigned i = 0; i < 6; i++)
		t[i].awake = 0;
	ck_assert_uint_eq(budget_pick(t, 6, 0, asked, 0, INT64_MAX, out, 6), 0);
}
END_TEST

#define WSET_BYTES (DN_RAM_MIN / DN_PAGE_SIZE / 8)

/* A checkpoint as a sleeping service leaves it: its vcpu state as the monitor sets it. */
static struct checkpoint good_checkpoint(void)
{
	struct checkpoint c;
	memset(&c, 0, sizeof(c));
	c.ram_size = DN_RAM_MIN;
	c.working_set_pages = DN_RAM_MIN / DN_PAGE_SIZE;
	vcpu_sregs_fixed(&c.vcpu.sregs);
	c.vcpu.regs.rip = 0x201234;
	c.vcpu.regs.rflags = VCPU_RFLAGS_FIXED;
	c.vcpu.host_ns = clock_mono_ns() - 1;
	c.tsc_hz = 2000000000;
	c.time_base_ns = 1;
	c.timer_deadline_ns = 777;
	c.idle_arg = 0x3000;
	return c;
}

START_TEST(test_checkpoint_round_trip_and_damage)
{
	char dir[4096], path[4200], err[512];
	snprintf(dir, sizeof(dir), "%s/ckpt", unit_tmpdir());
	ck_assert_int_eq(mkdir(dir, 0700) == 0 || errno == EEXIST, 1);
	struct checkpoint c, back;
	uint8_t *wset = NULL;
	ck_assert_int_eq(checkpoint_load(dir, &back, &wset, err, sizeof(err)), 0); /* none */
	c = good_checkpoint();
	uint8_t bits[WSET_BYTES] = {1, 2, 3, 4, 5, 6, 7, 0x80};
	ck_assert_msg(checkpoint_save(dir, &c, bits, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(checkpoint_load(dir, &back, &wset, err, sizeof(err)), 1);
	ck_assert_int_eq(memcmp(&back, &c, sizeof(c)), 0);
	ck_assert_int_eq(memcmp(wset, bits, sizeof(bits)), 0);
	free(wset);
	/* One flipped byte: damaged, and said so. */
	snprintf(path, sizeof(path), "%s/state", dir);
	int fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	uint8_t b;
	ck_assert_int_eq(pread(fd, &b, 1, 100), 1);
	b ^= 0xff;
	ck_assert_int_eq(pwrite(fd, &b, 1, 100), 1);
	ck_assert_int_eq(checkpoint_load(dir, &back, &wset, err, sizeof(err)), -1);
	ck_assert_ptr_null(wset);
	ck_assert_ptr_nonnull(strstr(err, "damaged"));
	/* Cut short: unreadable. */
	ck_assert_int_eq(ftruncate(fd, 20), 0);
	close(fd);
	ck_assert_int_eq(checkpoint_load(dir, &back, &wset, err, sizeof(err)), -1);
	/* Discarded: none again, and discarding none is fine. */
	ck_assert_int_eq(checkpoint_discard(dir), 0);
	ck_assert_int_eq(checkpoint_load(dir, &back, &wset, err, sizeof(err)), 0);
	ck_assert_int_eq(checkpoint_discard(dir), 0);
	rmdir(dir);
}
END_TEST

static void tamper_rip(struct checkpoint *c)
{
	c->vcpu.regs.rip = 0x1234567812345678ull;
}

static void tamper_tsc_hz(struct checkpoint *c)
{
	c->tsc_hz = 0;
}

static void tamper_time_base(struct checkpoint *c)
{
	c->time_base_ns = INT64_MIN;
}

static void tamper_has_disk(struct checkpoint *c)
{
	c->has_disk = 2;
}

/* RAM not a whole number of 2 MiB pages: no service has it, the file is damaged. */
static void tamper_ram_size(struct checkpoint *c)
{
	c->ram_size += DN_PAGE_SIZE;
	c->working_set_pages = c->ram_size / DN_PAGE_SIZE;
}

/* Saves c, loads it back: what checkpoint_load returns, with back and err filled. */
static int save_load(const char *dir, const struct checkpoint *c, struct checkpoint *back,
		     char *err, size_t errlen)
{
	static const uint8_t bits[2 * WSET_BYTES]; /* room for tamper_ram_size */
	ck_assert_msg(checkpoint_save(dir, c, bits, err, errlen) == 0, "%s", err);
	uint8_t *wset = NULL;
	int rc = checkpoint_load(dir, back, &wset, err, errlen);
	free(wset);
	return rc;
}

/* A checkpoint written by someone else (checksum and all): what the monitor owns is set as at
 * boot, out-of-range values are refused with the field named. */
START_TEST(test_checkpoint_tampered_contents)
{
	char dir[4096], err[512];
	snprintf(dir, sizeof(dir), "%s/ckpt-tampered", unit_tmpdir());
	ck_assert_int_eq(mkdir(dir, 0700) == 0 || errno == EEXIST, 1);
	struct checkpoint c = good_checkpoint(), back;
	c.vcpu.sregs.cs.selector = SYS_SEL_KCODE;
	c.vcpu.sregs.cs.dpl = 0;
	c.vcpu.sregs.ss.selector = SYS_SEL_KDATA;
	c.vcpu.sregs.ss.dpl = 0;
	c.vcpu.sregs.cr3 = 0x400000;
	c.vcpu.regs.rflags = 0x2;
	ck_assert_int_eq(save_load(dir, &c, &back, err, sizeof(err)), 1);
	ck_assert_uint_eq(back.vcpu.sregs.cs.selector, SYS_SEL_UCODE);
	ck_assert_uint_eq(back.vcpu.sregs.ss.dpl, 3);
	ck_assert_uint_eq(back.vcpu.sregs.cr3, SYS_PML4);
	ck_assert_uint_eq(back.vcpu.regs.rflags, VCPU_RFLAGS_FIXED);
	static const struct {
		const char *field;
		void (*tamper)(struct checkpoint *);
	} refused[] = {
		{"RIP", tamper_rip},
		{"TSC rate", tamper_tsc_hz},
		{"clock started", tamper_time_base},
		{"disk flag", tamper_has_disk},
		{"damaged", tamper_ram_size},
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		c = good_checkpoint();
		refused[i].tamper(&c);
		ck_assert_int_eq(save_load(dir, &c, &back, err, sizeof(err)), -1);
		ck_assert_msg(strstr(err, refused[i].field) != NULL, "\"%s\" does not name %s", err,
			      refused[i].field);
	}
	ck_assert_int_eq(checkpoint_discard(dir), 0);
	rmdir(dir);
}
END_TEST

/* A checkpoint saved by a monitor whose virtual CPU differs (its CPUID table id): refused,
 * and said so; the guest may have chosen its code by what CPUID said. */
START_TEST(test_checkpoint_other_cpuid_refused)
{
	char dir[4096], path[4200], err[512];
	snprintf(dir, sizeof(dir), "%s/ckpt-cpuid", unit_tmpdir());
	ck_assert_int_eq(mkdir(dir, 0700) == 0 || errno == EEXIST, 1);
	struct checkpoint c = good_checkpoint(), back;
	ck_assert_int_eq(save_load(dir, &c, &back, err, sizeof(err)), 1);
	/* The id is in the header, once: another monitor's table would have another. */
	snprintf(path, sizeof(path), "%s/state", dir);
	int fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	uint8_t head[128];
	ck_assert_int_eq(pread(fd, head, sizeof(head), 0), sizeof(head));
	uint64_t id = vcpu_cpuid_id();
	uint8_t *at = memmem(head, sizeof(head), &id, sizeof(id));
	ck_assert_ptr_nonnull(at);
	id ^= 1;
	ck_assert_int_eq(pwrite(fd, &id, sizeof(id), at - head), sizeof(id));
	close(fd);
	uint8_t *wset = NULL;
	ck_assert_int_eq(checkpoint_load(dir, &back, &wset, err, sizeof(err)), -1);
	ck_assert_ptr_null(wset);
	ck_assert_msg(strstr(err, "another virtual CPU") != NULL, "%s", err);
	ck_assert_int_eq(checkpoint_discard(dir), 0);
	rmdir(dir);
}
END_TEST

Suite *swap_suite(void)
{
	Suite *s = suite_create("swap");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_state_dir_on_tmpfs);
	tcase_add_test(tc, test_resident_pages);
	tcase_add_test(tc, test_budget_least_recently_run_first);
	tcase_add_test(tc, test_budget_asked_ones_count_as_going);
	tcase_add_test(tc, test_checkpoint_round_trip_and_damage);
	tcase_add_test(tc, test_checkpoint_tampered_contents);
	tcase_add_test(tc, test_checkpoint_other_cpuid_refused);
	suite_add_tcase(s, tc);
	return s;
}
