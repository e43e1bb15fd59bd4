/* Shared by the libFuzzer targets: reading structured values off the fuzzer's bytes, and a
 * private scratch folder for the parsers that take a path. */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input not yet consumed: every take returns 0 (or nothing) once it is used up, so a
 * short input is a valid, shorter script. */
struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

static inline uint64_t fuzz_take(struct fuzz_in *in, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes && in->n; i++, in->p++, in->n--)
		v |= (uint64_t)in->p[0] << (8 * i);
	return v;
}

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
	return (uint8_t)fuzz_take(in, 1);
}

static inline uint16_t fuzz_u16(struct fuzz_in *in)
{
	return (uint16_t)fuzz_take(in, 2);
}

static inline uint32_t fuzz_u32(struct fuzz_in *in)
{
	return (uint32_t)fuzz_take(in, 4);
}

/* Up to want bytes, pointing into the input; *got says how many. */
static inline const uint8_t *fuzz_bytes(struct fuzz_in *in, size_t want, size_t *got)
{
	const uint8_t *p = in->p;
	*got = want < in->n ? want : in->n;
	in->p += *got;
	in->n -= *got;
	return p;
}

/* A folder of this process's own (on /dev/shm when there is one: the targets that write files
 * should not wear a disk), made once and removed with its files at exit. */
const char *fuzz_tmpdir(void);

/* Writes len bytes to dir/name (replacing it); 0 or -1. */
int fuzz_write_file(const char *dir, const char *name, const void *data, size_t len);

#endif
