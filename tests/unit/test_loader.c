/* ELF validation: a good image made here loads; each malformed variant is refused with a
 * clear reason; the real guest images pass. */
#include <elf.h>
#include <stdlib.h>
#include <string.h>

#include "denali/abi.h"
#include "loader.h"
#include "unit.h"

#define IMG_SIZE 0x3000u
#define RAM (16u << 20)

struct test_image {
	uint8_t bytes[IMG_SIZE];
};

static Elf64_Ehdr *ehdr(struct test_image *t)
{
	return (Elf64_Ehdr *)t->bytes;
}

static Elf64_Phdr *phdr(struct test_image *t, unsigned i)
{
	return (Elf64_Phdr *)(t->bytes + sizeof(Elf64_Ehdr)) + i;
}

/* A minimal valid image: one R+X PT_LOAD at the image base with a BSS tail, one PT_NOTE. */
static void build(struct test_image *t)
{
	memset(t, 0, sizeof(*t));
	Elf64_Ehdr *eh = ehdr(t);
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_entry = DN_GPA_IMAGE_BASE + 0x10;
	eh->e_phoff = sizeof(Elf64_Ehdr);
	eh->e_ehsize = sizeof(Elf64_Ehdr);
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_phnum = 4; /* the last two are PT_NULL until a test fills them */
	*phdr(t, 0) = (Elf64_Phdr){
		.p_type = PT_LOAD,
		.p_flags = PF_R | PF_X,
		.p_offset = 0x1000,
		.p_vaddr = DN_GPA_IMAGE_BASE,
		.p_paddr = DN_GPA_IMAGE_BASE,
		.p_filesz = 0x100,
		.p_memsz = 0x2000,
		.p_align = 0x1000,
	};
	*phdr(t, 1) = (Elf64_Phdr){
		.p_type = PT_NOTE,
		.p_flags = PF_R,
		.p_offset = 0x200,
		.p_filesz = sizeof(struct dn_abi_note),
		.p_align = 4,
	};
	struct dn_abi_note note = {sizeof(DN_NOTE_NAME), 4, DN_NOTE_TYPE_ABI, DN_NOTE_NAME,
				   DN_ABI_VERSION};
	memcpy(t->bytes + 0x200, &note, sizeof(note));
	memset(t->bytes + 0x1000, 0xf4, 0x100);
}

static const char *parse_error(struct test_image *t, size_t size, uint64_t ram)
{
	static char err[512];
	struct vmm_image img;
	err[0] = '\0';
	if (vmm_image_parse(t->bytes, size, ram, &img, err, sizeof(err)) == 0)
		return NULL;
	return err;
}

START_TEST(test_valid)
{
	struct test_image *t = malloc(sizeof(*t));
	build(t);
	struct vmm_image img;
	char err[512] = "";
	ck_assert_msg(vmm_image_parse(t->bytes, IMG_SIZE, RAM, &img, err, sizeof(err)) == 0, "%s",
		      err);
	ck_assert_uint_eq(img.entry, DN_GPA_IMAGE_BASE + 0x10);
	ck_assert_uint_eq(img.nsegments, 1);
	ck_assert_uint_eq(img.end, DN_GPA_IMAGE_BASE + 0x2000);
	/* Copying writes the file bytes and nothing else: not the BSS tail (RAM starts zeroed;
	 * writing it would dirty pages a swap-out writes back), not past the segment. */
	uint8_t *ram = malloc(RAM);
	memset(ram, 0xaa, RAM);
	vmm_image_copy(&img, ram);
	ck_assert_uint_eq(ram[DN_GPA_IMAGE_BASE], 0xf4);
	ck_assert_uint_eq(ram[DN_GPA_IMAGE_BASE + 0xff], 0xf4);
	ck_assert_uint_eq(ram[DN_GPA_IMAGE_BASE + 0x100], 0xaa);
	ck_assert_uint_eq(ram[DN_GPA_IMAGE_BASE + 0x1fff], 0xaa);
	ck_assert_uint_eq(ram[DN_GPA_IMAGE_BASE + 0x2000], 0xaa);
	free(ram);
	free(t);
}
END_TEST

typedef void (*mutation)(struct test_image *t, size_t *size, uint64_t *ram);

static void m_truncated(struct test_image *t, size_t *size, uint64_t *ram)
{
	(void)t, (void)ram;
	*size = 10;
}
static void m_magic(struct test_image *t, size_t *size, uint64_t *ram)
{
	(void)size, (void)ram;
	ehdr(t)->e_ident[1] = 'X';
}
static void m_class(struct test_image *t, size_t *size, uint64_t *ram)
{
	(void)size, (void)ram;
	ehdr(t)->e_ident[EI_CLASS] = ELFCLASS32;
}
static void m_endian(struct test_image *t, size_t *size, uint64_t *ram)
{
	(void)size, (void)ram;
	ehdr(t)->e_ident[EI_DATA] = ELFDATA2MSB;
}
static void m_machine(struct test_image *t, size_t *size, uint64_t *ram)
{
	(void)size, (void)ram;
	ehdr(t)->e_machine = EM_386;
}
static void m_type(struct test_image *t, size_t *size, uint64_t *ram)
{
	(void)size, (void)ram;
	ehdr(t)->e_type = ET_DYN;
}
static void m_version(struct test_image *t, size_t *size, uint64_t *ram)
{
	(void)size, (void)ram;
	ehdr(t)->e_version = 7;
}
static void m_phentsize(struct test_image *t, size_t *size, uint64_t *ram)
{
	(void)size, (void)ram;
	ehdr(t)->e_phentsize = 32;
}
static void m_phnum0(struct test_image *t, size_t *size, uint64_t *ram)
{
	(void)size, (void)ram;
	ehdr(t)->e_phnum = 0;
}
static void m_phoff_out(struct test_image *t, size_t *size, uint64_t *ram)
{
	(void)size, (void)ram;
	ehdr(t)->e_phoff = IMG_SIZE - 8;
}
static void m_phoff_wrap(struct test_image *t, size_t *size, uint64_t *ram)
{
	(void)size, (void)ram;
	ehdr(t)->e_phoff = UINT64_MAX - 7;
}
static void m_filesz(struct test_image *t, size_t *size, uint64_t *ram)
{
	(void)size, (void)ram;
	phdr(t, 0)->p_filesz = 0x3000;
}
static void m_offset(struct test_image *t, size_t *size, uint64_t *ram)
{
	(void)size, (void)ram;
	phdr(t, 0)->p_offset = 0x2f80;
}
static void m_offset_wrap(struct test_image *t, size_t *size, uint64_t *ram)
{
	(void)size, (void)ram;
	phdr(t, 0)->p_offset = UINT64_MAX - 0x10;
}
static void m_low(struct test_image *t, size_t *size, uint64_t *ram)
{
	(void)size, (void)ram;
	phdr(t, 0)->p_vaddr = phdr(t, 0)->p_paddr = 0x1000; /* over the page tables */
	ehdr(t)->e_entry = 0x1010;
}
static void m_high(struct test_image *t, size_t *size, uint64_t *ram)
{
	(void)size, (void)ram;
	phdr(t, 0)->p_memsz = RAM;
}
static void m_stack(struct test_image *t, size_t *size, uint64_t *ram)
{
	(void)size, (void)ram;
	phdr(t, 0)->p_memsz = RAM - DN_GPA_IMAGE_BASE - DN_STACK_MIN + 1;
}
static void m_vaddr_wrap(struct test_image *t, size_t *size, uint64_t *ram)
{
	(void)size, (void)ram;
	phdr(t, 0)->p_vaddr = phdr(t, 0)->p_paddr = UINT64_MAX - 0xfff;
	ehdr(t)->e_entry = UINT64_MAX - 0xff0;
}
static void m_small_ram(struct test_image *t, size_t *size, uint64_t *ram)
{
	(void)size;
	phdr(t, 0)->p_memsz = 0x200000;
	*ram = DN_RAM_MIN;
}
static void m_overlap(struct test_image *t, size_t *size, uint64_t *ram)
{
	(void)size, (void)ram;
	*phdr(t, 2) = *phdr(t, 0);
	phdr(t, 2)->p_flags = PF_R | PF_W;
	phdr(t, 2)->p_vaddr = phdr(t, 2)->p_paddr = DN_GPA_IMAGE_BASE + 0x1000;
}
static void m_entry(struct test_image *t, size_t *size, uint64_t *ram)
{
	(void)size, (void)ram;
	ehdr(t)->e_entry = DN_GPA_IMAGE_BASE + 0x5000;
}
static void m_entry_nx(struct test_image *t, size_t *size, uint64_t *ram)
{
	(void)size, (void)ram;
	phdr(t, 0)->p_flags = PF_R | PF_W;
}
static void m_no_note(struct test_image *t, size_t *size, uint64_t *ram)
{
	(void)size, (void)ram;
	phdr(t, 1)->p_type = PT_NULL;
}
static void m_note_name(struct test_image *t, size_t *size, uint64_t *ram)
{
	(void)size, (void)ram;
	t->bytes[0x200 + 12] = 'd';
}
static void m_note_huge(struct test_image *t, size_t *size, uint64_t *ram)
{
	(void)size, (void)ram;
	uint32_t huge = 0xfffffff0u;
	memcpy(t->bytes + 0x200, &huge, 4); /* namesz far past the segment */
}
static void m_note_out(struct test_image *t, size_t *size, uint64_t *ram)
{
	(void)size, (void)ram;
	phdr(t, 1)->p_offset = IMG_SIZE - 4;
}
static void m_abi(struct test_image *t, size_t *size, uint64_t *ram)
{
	(void)size, (void)ram;
	uint32_t v = DN_ABI_VERSION + 98;
	memcpy(t->bytes + 0x200 + 20, &v, 4);
}
static void m_paddr(struct test_image *t, size_t *size, uint64_t *ram)
{
	(void)size, (void)ram;
	phdr(t, 0)->p_paddr = 0x400000;
}
static void m_align(struct test_image *t, size_t *size, uint64_t *ram)
{
	(void)size, (void)ram;
	phdr(t, 0)->p_align = 3;
}
static void m_align_mismatch(struct test_image *t, size_t *size, uint64_t *ram)
{
	(void)size, (void)ram;
	phdr(t, 0)->p_offset = 0x1100;
	phdr(t, 0)->p_filesz = 0x10;
}
static void m_interp(struct test_image *t, size_t *size, uint64_t *ram)
{
	(void)size, (void)ram;
	phdr(t, 2)->p_type = PT_INTERP;
}
static void m_no_load(struct test_image *t, size_t *size, uint64_t *ram)
{
	(void)size, (void)ram;
	phdr(t, 0)->p_type = PT_NULL;
}

static const struct {
	const char *name;
	mutation mutate;
	const char *expect;
} bad[] = {
	{"truncated", m_truncated, "truncated"},
	{"magic", m_magic, "not an ELF file"},
	{"class", m_class, "not a 64-bit ELF"},
	{"endian", m_endian, "not a little-endian"},
	{"machine", m_machine, "not an x86-64 image"},
	{"type", m_type, "not a static executable"},
	{"version", m_version, "unknown ELF version"},
	{"phentsize", m_phentsize, "bad program header size"},
	{"phnum0", m_phnum0, "no program headers"},
	{"phoff_out", m_phoff_out, "program headers"},
	{"phoff_wrap", m_phoff_wrap, "program headers"},
	{"filesz", m_filesz, "file size 12288 exceeds memory size"},
	{"offset", m_offset, "outside the file"},
	{"offset_wrap", m_offset_wrap, "outside the file"},
	{"low", m_low, "outside the guest's RAM"},
	{"high", m_high, "outside the guest's RAM"},
	{"stack", m_stack, "stack reserve"},
	{"vaddr_wrap", m_vaddr_wrap, "outside the guest's RAM"},
	{"small_ram", m_small_ram, "outside the guest's RAM"},
	{"overlap", m_overlap, "overlap"},
	{"entry", m_entry, "entry point 0x205000 is not inside an executable segment"},
	{"entry_nx", m_entry_nx, "not inside an executable segment"},
	{"no_note", m_no_note, "no ABI note"},
	{"note_name", m_note_name, "no ABI note"},
	{"note_huge", m_note_huge, "no ABI note"},
	{"note_out", m_note_out, "no ABI note"},
	{"abi", m_abi, "but this monitor speaks v"},
	{"paddr", m_paddr, "physical address"},
	{"align", m_align, "bad alignment"},
	{"align_mismatch", m_align_mismatch, "bad alignment"},
	{"interp", m_interp, "dynamically linked"},
	{"no_load", m_no_load, "no loadable segments"},
};

START_TEST(test_malformed)
{
	struct test_image *t = malloc(sizeof(*t));
	build(t);
	size_t size = IMG_SIZE;
	uint64_t ram = RAM;
	bad[_i].mutate(t, &size, &ram);
	const char *err = parse_error(t, size, ram);
	ck_assert_msg(err != NULL, "%s: accepted", bad[_i].name);
	ck_assert_msg(strstr(err, bad[_i].expect) != NULL, "%s: want \"%s\" in \"%s\"",
		      bad[_i].name, bad[_i].expect, err);
	free(t);
}
END_TEST

/* Every prefix of a valid image is refused, and none crashes the parser. */
START_TEST(test_every_truncation)
{
	struct test_image *t = malloc(sizeof(*t));
	build(t);
	for (size_t size = 0; size < 0x1100; size++)
		ck_assert_msg(parse_error(t, size, RAM) != NULL, "accepted %zu bytes", size);
	free(t);
}
END_TEST

START_TEST(test_real_images)
{
	const char *paths[] = {unit_hello_image, unit_misbehave_image};
	for (int i = 0; i < 2; i++) {
		struct vmm_image img;
		char err[512] = "";
		ck_assert_msg(vmm_image_read(paths[i], DN_RAM_MIN, &img, err, sizeof(err)) == 0,
			      "%s", err);
		ck_assert_uint_ge(img.entry, DN_GPA_IMAGE_BASE);
		ck_assert_uint_le(img.end, DN_RAM_MIN - DN_STACK_MIN);
		vmm_image_free(&img);
	}
}
END_TEST

START_TEST(test_read_errors)
{
	struct vmm_image img;
	char err[512];
	ck_assert_int_eq(vmm_image_read("/nonexistent/image", RAM, &img, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "/nonexistent/image: cannot open image") != NULL, "%s", err);
	ck_assert_int_eq(vmm_image_read("/tmp", RAM, &img, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "not a regular file") != NULL, "%s", err);
	ck_assert_int_eq(vmm_image_read("/dev/null", RAM, &img, err, sizeof(err)), -1);
}
END_TEST

Suite *loader_suite(void)
{
	Suite *s = suite_create("loader");
	TCase *tc = tcase_create("elf");
	tcase_add_test(tc, test_valid);
	tcase_add_loop_test(tc, test_malformed, 0, sizeof(bad) / sizeof(bad[0]));
	tcase_add_test(tc, test_every_truncation);
	tcase_add_test(tc, test_real_images);
	tcase_add_test(tc, test_read_errors);
	suite_add_tcase(s, tc);
	return s;
}
