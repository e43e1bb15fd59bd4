/* Virtual interrupt trampoline. The monitor entered here in ring 3 with vif cleared, RSP
 * 16-byte aligned below the interrupted stack, and the interrupted RIP/RSP/RFLAGS in vregs.
 * Copy that frame onto our stack first (a nested delivery overwrites vregs, never our stack),
 * save every register the C code may clobber, dispatch, re-enable, and iretq to the frame. */
#include "denali/abi.h"

	.text
	.globl dn_irq_entry
	.type dn_irq_entry, @function
dn_irq_entry:
	push %rax
	mov dn_vregs_page(%rip), %rax
	push $0x23                              /* SS */
	push DN_VREGS_SAVED_RSP(%rax)           /* RSP */
	push DN_VREGS_SAVED_RFLAGS(%rax)        /* RFLAGS */
	push $0x1b                              /* CS */
	push DN_VREGS_SAVED_RIP(%rax)           /* RIP: the iretq frame is complete */
	push %rcx
	push %rdx
	push %rsi
	push %rdi
	push %r8
	push %r9
	push %r10
	push %r11
	push %rbp
	mov %rsp, %rbp
	sub $512, %rsp
	and $-16, %rsp
	fxsave64 (%rsp)
	cld
	call dn_irq_dispatch
	fxrstor64 (%rsp)
	mov %rbp, %rsp
	pop %rbp
	pop %r11
	pop %r10
	pop %r9
	pop %r8
	pop %rdi
	pop %rsi
	pop %rdx
	pop %rcx
	mov dn_vregs_page(%rip), %rax
	movl $1, DN_VREGS_VIF(%rax)             /* from here a delivery nests safely below us */
	mov 40(%rsp), %rax                      /* the interrupted RAX, under the frame */
	iretq
	.size dn_irq_entry, . - dn_irq_entry
	.section .note.GNU-stack, "", @progbits
