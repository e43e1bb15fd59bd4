/* The console filter: the input is a guest's console bytes, cut into writes of sizes the input
 * chooses. What reaches the terminal must be safe: no C0 control but tab and newline, no DEL,
 * no C1 control (raw or UTF-8 encoded), and every line ends in a newline after the flush. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "console.h"
#include "fuzz.h"

static void check_output(int fd)
{
	off_t len = lseek(fd, 0, SEEK_CUR);
	if (len <= 0)
		return;
	unsigned char *out = malloc((size_t)len);
	if (!out || pread(fd, out, (size_t)len, 0) != len)
		abort();
	for (off_t i = 0; i < len; i++) {
		unsigned char ch = out[i];
		if ((ch < 0x20 && ch != '\n' && ch != '\t') || ch == 0x7f)
			abort();
		if (ch == 0xc2 && i + 1 < len && out[i + 1] >= 0x80 && out[i + 1] <= 0x9f)
			abort();
	}
	if (out[len - 1] != '\n')
		abort();
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	if (fd < 0 && (fd = memfd_create("fuzz-console", MFD_CLOEXEC)) < 0)
		abort();
	if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0)
		abort();
	struct fuzz_in in = {data, size};
	struct vmm_console c;
	vmm_console_init(&c, fd, fuzz_u8(&in) & 1 ? "svc" : NULL);
	while (in.n) {
		unsigned cut = fuzz_u8(&in);
		size_t len;
		/* Big cuts reach the line limit: a write is cut into lines of at most 4 KiB. */
		const uint8_t *p = fuzz_bytes(&in, cut < 0xf0 ? cut : (cut - 0xef) * 1024u, &len);
		vmm_console_write(&c, (const char *)p, len);
		if (cut == 0)
			vmm_console_release(&c); /* a sleep between two writes */
	}
	vmm_console_release(&c);
	check_output(fd);
	return 0;
}
