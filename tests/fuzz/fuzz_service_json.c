/* service.json: the input is a service file, loaded and checked as denali-run does (config,
 * plan, the fleet-wide checks). Its "image" may name "hello", a real guest image put beside it
 * when DENALI_FUZZ_IMAGE gives one, so that a file can pass the image checks too. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	const char *dir = fuzz_tmpdir();
	if (!ready) {
		ready = 1;
		const char *image = getenv("DENALI_FUZZ_IMAGE");
		char link[4200];
		snprintf(link, sizeof(link), "%s/hello", dir);
		if (image && symlink(image, link) != 0)
			perror("fuzz: symlink");
	}
	if (fuzz_write_file(dir, "service.json", data, size) != 0)
		abort();
	char path[4200], err[1024];
	snprintf(path, sizeof(path), "%s/service.json", dir);
	struct vmm_config_limits limits = {.ram_max = 64u << 20};
	struct vmm_plan plan = {.cell_size = 1};
	snprintf(plan.state_dir, sizeof(plan.state_dir), "%s/state", dir);
	if (vmm_plan_add(&plan, path, &limits, err, sizeof(err)) == 0) {
		/* The same file twice: the second is refused for its name. */
		if (vmm_plan_add(&plan, path, &limits, err, sizeof(err)) == 0)
			abort();
		vmm_plan_check(&plan, err, sizeof(err));
	} else if (!memchr(err, '\0', sizeof(err)) || !err[0]) {
		abort(); /* every refusal says why */
	}
	vmm_plan_free(&plan);
	return 0;
}
