/* Guest entry: the monitor starts us in ring 3 with RDI = boot info and RSP = top of RAM. */
	.section .text.start, "ax"
	.globl _start
	.type _start, @function
_start:
	xor %ebp, %ebp
	and $-16, %rsp
	call dn_start
	ud2
	.size _start, . - _start
	.section .note.GNU-stack, "", @progbits
