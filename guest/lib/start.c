/* Guest start-up: clear BSS, check the boot info, build argv, run main, exit with its status. */
#include <denali.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv);

/* The ABI note the monitor checks before it loads the image. */
__attribute__((section(".note.denali"), used,
	       aligned(4))) static const struct dn_abi_note abi_note = {
	.namesz = sizeof(DN_NOTE_NAME),
	.descsz = 4,
	.type = DN_NOTE_TYPE_ABI,
	.name = DN_NOTE_NAME,
	.abi_version = DN_ABI_VERSION,
};

static const struct dn_boot_info *boot;
static char arg_strings[DN_NAME_MAX + DN_BOOT_ARGS_MAX];
static char *argv[DN_BOOT_ARGC_MAX + 2];

const struct dn_boot_info *dn_boot_info(void)
{
	return boot;
}

__attribute__((noreturn)) void dn_start(const struct dn_boot_info *bi);

__attribute__((noreturn)) void dn_start(const struct dn_boot_info *bi)
{
	/* No clearing of the BSS: RAM starts zeroed (the ABI), and writing it would dirty every
	 * page of it, which a swap-out must then write back (an httpd's TCP buffers: 4 MiB). */
	boot = bi;
	if (bi->magic != DN_BOOT_MAGIC || bi->abi_version != DN_ABI_VERSION)
		dn_abort("boot info has a bad magic or ABI version");
	if (bi->argc > DN_BOOT_ARGC_MAX || bi->args_len > DN_BOOT_ARGS_MAX)
		dn_abort("boot info arguments out of range");
	/* argv[0] is the service name; strings are copied so that main may write to them. */
	size_t name_len = strnlen(bi->name, DN_NAME_MAX - 1);
	memcpy(arg_strings, bi->name, name_len);
	memcpy(arg_strings + name_len + 1, bi->args, bi->args_len);
	int argc = 0;
	argv[argc++] = arg_strings;
	char *p = arg_strings + name_len + 1, *end = p + bi->args_len;
	for (uint32_t i = 0; i < bi->argc && p < end; i++) {
		argv[argc++] = p;
		p += strnlen(p, (size_t)(end - p)) + 1;
	}
	argv[argc] = NULL;
	dn_exit(main(argc, argv));
}
