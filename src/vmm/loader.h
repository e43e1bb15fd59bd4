/* Guest images: reading and validating a static ELF64 file and copying it into guest RAM. */
#ifndef VMM_LOADER_H
#define VMM_LOADER_H

#include <stddef.h>
#include <stdint.h>

#define VMM_IMAGE_SEGMENTS_MAX 16
#define VMM_IMAGE_FILE_MAX (256u * 1024 * 1024)

struct vmm_image_segment {
	uint64_t gpa;	 /* where it loads (the image is linked at its physical address) */
	uint64_t memsz;	 /* bytes in RAM; the part past filesz is zero */
	uint64_t filesz; /* bytes copied from the file */
	uint64_t offset; /* file offset of those bytes */
};

struct vmm_image {
	uint8_t *data; /* the whole file; owned when read by vmm_image_read */
	size_t size;
	uint64_t entry;
	uint64_t end; /* first page boundary after every segment */
	unsigned nsegments;
	struct vmm_image_segment segments[VMM_IMAGE_SEGMENTS_MAX];
};

/* Validates an in-memory ELF image for a guest with ram_size bytes of RAM: header fields,
 * program-header bounds, every PT_LOAD segment's bounds, alignment and overlap against the
 * guest's part of RAM, the entry point inside an executable segment, and the Denali ABI note.
 * Does not take ownership of data. Returns 0, or -1 with the problem in err. */
int vmm_image_parse(const uint8_t *data, size_t size, uint64_t ram_size, struct vmm_image *img,
		    char *err, size_t errlen);

/* Reads the file at path and validates it as vmm_image_parse does. The message in err names
 * the path. On success free the image with vmm_image_free. */
int vmm_image_read(const char *path, uint64_t ram_size, struct vmm_image *img, char *err,
		   size_t errlen);

/* Copies a validated image's file bytes into guest RAM (a host mapping of ram_size bytes),
 * which must start zeroed, as a fresh memory file does: each segment's tail past its file bytes
 * (the BSS) is not written. */
void vmm_image_copy(const struct vmm_image *img, uint8_t *ram);

void vmm_image_free(struct vmm_image *img);

#endif
