/* ELF images: the input is a guest image file, validated as the loader does for a guest of 4,
 * 6 or 8 MiB (the input's first byte), and if accepted copied into a guest RAM of that size:
 * every segment must land inside it. */
#include <stdlib.h>
#include <string.h>

#include "denali/abi.h"
#include "fuzz.h"
#include "loader.h"

#define RAM_MAX (8u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *ram;
	if (!ram && !(ram = malloc(RAM_MAX)))
		abort();
	if (size < 1)
		return 0;
	uint64_t ram_size = DN_RAM_MIN + (data[0] % 3) * DN_RAM_ALIGN;
	/* The image on its own heap block, so that ASan sees a read past its end. */
	uint8_t *image = malloc(size - 1 ? size - 1 : 1);
	if (!image)
		abort();
	memcpy(image, data + 1, size - 1);
	struct vmm_image img;
	char err[512];
	if (vmm_image_parse(image, size - 1, ram_size, &img, err, sizeof(err)) == 0) {
		if (img.entry < DN_GPA_IMAGE_BASE || img.end > ram_size || img.nsegments == 0)
			abort();
		/* Only the RAM's first ram_size bytes count: the heap block is larger. */
		uint8_t *guest = ram + RAM_MAX - ram_size;
		vmm_image_copy(&img, guest);
	}
	free(image);
	return 0;
}
