/* Guest images: reading and validating a static ELF64 file and copying it into guest RAM.
 * The file is hostile input: every field is checked before any byte of it is used. */
#include "loader.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "denali/abi.h"

static int bad(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* [off, off+len) lies inside [0, size), without overflow. */
static int range_in(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

static int check_header(const Elf64_Ehdr *eh, size_t size, char *err, size_t errlen)
{
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0)
		return bad(err, errlen, "not an ELF file (bad magic)");
	if (eh->e_ident[EI_CLASS] != ELFCLASS64)
		return bad(err, errlen, "not a 64-bit ELF file (class %u)", eh->e_ident[EI_CLASS]);
	if (eh->e_ident[EI_DATA] != ELFDATA2LSB)
		return bad(err, errlen, "not a little-endian ELF file");
	if (eh->e_ident[EI_VERSION] != EV_CURRENT || eh->e_version != EV_CURRENT)
		return bad(err, errlen, "unknown ELF version");
	if (eh->e_machine != EM_X86_64)
		return bad(err, errlen, "not an x86-64 image (machine %u)", eh->e_machine);
	if (eh->e_type != ET_EXEC)
		return bad(err, errlen,
			   "not a static executable (ELF type %u; build with -static -no-pie)",
			   eh->e_type);
	if (eh->e_ehsize != sizeof(Elf64_Ehdr))
		return bad(err, errlen, "bad ELF header size %u", eh->e_ehsize);
	if (eh->e_phentsize != sizeof(Elf64_Phdr))
		return bad(err, errlen, "bad program header size %u", eh->e_phentsize);
	if (eh->e_phnum == 0 || eh->e_phnum == PN_XNUM)
		return bad(err, errlen, "no program headers");
	if (eh->e_phoff % 8 != 0 ||
	    !range_in(eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr), size))
		return bad(err, errlen,
			   "program headers (offset %" PRIu64 ", %u entries) outside the file",
			   (uint64_t)eh->e_phoff, eh->e_phnum);
	return 0;
}

static int check_load(const Elf64_Phdr *ph, unsigned idx, size_t size, uint64_t ram_size, char *err,
		      size_t errlen)
{
	if (ph->p_filesz > ph->p_memsz)
		return bad(err, errlen,
			   "segment %u: file size %" PRIu64 " exceeds memory size %" PRIu64, idx,
			   (uint64_t)ph->p_filesz, (uint64_t)ph->p_memsz);
	if (!range_in(ph->p_offset, ph->p_filesz, size))
		return bad(err, errlen,
			   "segment %u: file bytes [%" PRIu64 ", +%" PRIu64
			   ") outside the file (%zu bytes)",
			   idx, (uint64_t)ph->p_offset, (uint64_t)ph->p_filesz, size);
	if (ph->p_align > 1 && ((ph->p_align & (ph->p_align - 1)) != 0 ||
				(ph->p_vaddr - ph->p_offset) % ph->p_align != 0))
		return bad(err, errlen, "segment %u: bad alignment %" PRIu64, idx,
			   (uint64_t)ph->p_align);
	if (ph->p_paddr != ph->p_vaddr)
		return bad(err, errlen,
			   "segment %u: physical address 0x%" PRIx64
			   " differs from virtual 0x%" PRIx64 " (guest RAM is identity-mapped)",
			   idx, (uint64_t)ph->p_paddr, (uint64_t)ph->p_vaddr);
	uint64_t limit = ram_size - DN_STACK_MIN;
	if (ph->p_vaddr < DN_GPA_IMAGE_BASE || !range_in(ph->p_vaddr, ph->p_memsz, limit))
		return bad(err, errlen,
			   "segment %u: [0x%" PRIx64 ", +0x%" PRIx64 ") outside the guest's RAM "
			   "[0x%x, 0x%" PRIx64 ") (stack reserve included)",
			   idx, (uint64_t)ph->p_vaddr, (uint64_t)ph->p_memsz, DN_GPA_IMAGE_BASE,
			   limit);
	return 0;
}

/* Looks for the Denali ABI note in one PT_NOTE segment. Returns 1 and sets *version if found. */
static int find_abi_note(const uint8_t *data, const Elf64_Phdr *ph, size_t size, uint32_t *version)
{
	if (!range_in(ph->p_offset, ph->p_filesz, size))
		return 0;
	const uint8_t *p = data + ph->p_offset;
	uint64_t left = ph->p_filesz;
	while (left >= 12) {
		uint32_t namesz, descsz, type;
		memcpy(&namesz, p, 4);
		memcpy(&descsz, p + 4, 4);
		memcpy(&type, p + 8, 4);
		uint64_t name_padded = ((uint64_t)namesz + 3) & ~3ull;
		uint64_t desc_padded = ((uint64_t)descsz + 3) & ~3ull;
		if (name_padded + desc_padded > left - 12)
			return 0;
		const uint8_t *name = p + 12;
		const uint8_t *desc = name + name_padded;
		if (type == DN_NOTE_TYPE_ABI && namesz == sizeof(DN_NOTE_NAME) && descsz == 4 &&
		    memcmp(name, DN_NOTE_NAME, sizeof(DN_NOTE_NAME)) == 0) {
			memcpy(version, desc, 4);
			return 1;
		}
		p += 12 + name_padded + desc_padded;
		left -= 12 + name_padded + desc_padded;
	}
	return 0;
}

static int check_overlaps(const struct vmm_image *img, char *err, size_t errlen)
{
	for (unsigned i = 0; i < img->nsegments; i++)
		for (unsigned j = i + 1; j < img->nsegments; j++) {
			const struct vmm_image_segment *a = &img->segments[i],
						       *b = &img->segments[j];
			if (a->gpa < b->gpa + b->memsz && b->gpa < a->gpa + a->memsz)
				return bad(err, errlen, "loadable segments overlap at 0x%" PRIx64,
					   a->gpa > b->gpa ? a->gpa : b->gpa);
		}
	return 0;
}

int vmm_image_parse(const uint8_t *data, size_t size, uint64_t ram_size, struct vmm_image *img,
		    char *err, size_t errlen)
{
	memset(img, 0, sizeof(*img));
	if (size < sizeof(Elf64_Ehdr))
		return bad(err, errlen, "truncated: %zu bytes is shorter than an ELF header", size);
	if (ram_size < DN_RAM_MIN)
		return bad(err, errlen, "guest RAM too small");
	Elf64_Ehdr eh;
	memcpy(&eh, data, sizeof(eh));
	if (check_header(&eh, size, err, errlen))
		return -1;

	int have_note = 0, entry_ok = 0;
	uint32_t note_version = 0;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, data + eh.e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
		if (ph.p_type == PT_NOTE && !have_note)
			have_note = find_abi_note(data, &ph, size, &note_version);
		if (ph.p_type == PT_DYNAMIC || ph.p_type == PT_INTERP)
			return bad(err, errlen, "dynamically linked (build with -static)");
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		if (img->nsegments == VMM_IMAGE_SEGMENTS_MAX)
			return bad(err, errlen, "more than %d loadable segments",
				   VMM_IMAGE_SEGMENTS_MAX);
		if (check_load(&ph, i, size, ram_size, err, errlen))
			return -1;
		img->segments[img->nsegments++] = (struct vmm_image_segment){.gpa = ph.p_vaddr,
									     .memsz = ph.p_memsz,
									     .filesz = ph.p_filesz,
									     .offset = ph.p_offset};
		uint64_t seg_end = (ph.p_vaddr + ph.p_memsz + DN_PAGE_SIZE - 1) &
				   ~(uint64_t)(DN_PAGE_SIZE - 1);
		if (seg_end > img->end)
			img->end = seg_end;
		if ((ph.p_flags & PF_X) && eh.e_entry >= ph.p_vaddr &&
		    eh.e_entry - ph.p_vaddr < ph.p_memsz)
			entry_ok = 1;
	}
	if (img->nsegments == 0)
		return bad(err, errlen, "no loadable segments");
	if (check_overlaps(img, err, errlen))
		return -1;
	if (!entry_ok)
		return bad(err, errlen,
			   "entry point 0x%" PRIx64 " is not inside an executable segment",
			   (uint64_t)eh.e_entry);
	if (!have_note)
		return bad(err, errlen,
			   "not a Denali guest image (no ABI note; link with the guest library)");
	if (note_version != DN_ABI_VERSION)
		return bad(err, errlen, "built for Denali ABI v%u, but this monitor speaks v%u",
			   note_version, DN_ABI_VERSION);
	img->entry = eh.e_entry;
	img->data = (uint8_t *)(uintptr_t)data; /* borrowed; vmm_image_read takes ownership */
	img->size = size;
	return 0;
}

int vmm_image_read(const char *path, uint64_t ram_size, struct vmm_image *img, char *err,
		   size_t errlen)
{
	memset(img, 0, sizeof(*img));
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block us */
	if (fd < 0)
		return bad(err, errlen, "%s: cannot open image: %s", path, strerror(errno));
	struct stat st;
	uint8_t *data = NULL;
	int rc = -1;
	if (fstat(fd, &st) != 0) {
		bad(err, errlen, "%s: cannot stat image: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		bad(err, errlen, "%s: image is not a regular file", path);
		goto out;
	}
	if ((uint64_t)st.st_size > VMM_IMAGE_FILE_MAX) {
		bad(err, errlen, "%s: image is larger than %uM", path, VMM_IMAGE_FILE_MAX >> 20);
		goto out;
	}
	size_t size = (size_t)st.st_size;
	data = malloc(size ? size : 1);
	if (!data) {
		bad(err, errlen, "%s: out of memory reading image", path);
		goto out;
	}
	size_t got = 0;
	while (got < size) {
		ssize_t n = read(fd, data + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			bad(err, errlen, "%s: cannot read image: %s", path,
			    n < 0 ? strerror(errno) : "file shrank");
			goto out;
		}
		got += (size_t)n;
	}
	char why[256];
	if (vmm_image_parse(data, size, ram_size, img, why, sizeof(why)) != 0) {
		bad(err, errlen, "%s: %s", path, why);
		goto out;
	}
	data = NULL; /* now owned by img */
	rc = 0;
out:
	free(data);
	close(fd);
	return rc;
}

void vmm_image_copy(const struct vmm_image *img, uint8_t *ram)
{
	for (unsigned i = 0; i < img->nsegments; i++) {
		const struct vmm_image_segment *s = &img->segments[i];
		/* The BSS tail is left alone: RAM starts zeroed, and writing zeros would dirty
		 * pages (an httpd's BSS is 4.6 MiB) that a swap-out must then write back. */
		memcpy(ram + s->gpa, img->data + s->offset, s->filesz);
	}
}

void vmm_image_free(struct vmm_image *img)
{
	free(img->data);
	memset(img, 0, sizeof(*img));
}
