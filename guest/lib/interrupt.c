/* Virtual interrupts: the monitor enters dn_irq_entry (interrupt.S) with the interrupted frame
 * in the vregs page; this C half takes the events and calls the guest's handler. */
#include <denali.h>

struct dn_vregs *dn_vregs_page; /* read by the trampoline */
static dn_interrupt_fn user_handler;

void dn_irq_entry(void);
void dn_irq_dispatch(void);

void dn_irq_dispatch(void)
{
	uint64_t ev = dn_events_take();
	if (ev && user_handler)
		user_handler(ev);
}

void dn_interrupts_enable(dn_interrupt_fn handler)
{
	dn_vregs_page = dn_vregs();
	user_handler = handler;
	__atomic_store_n(&dn_vregs_page->handler, (uint64_t)(uintptr_t)dn_irq_entry,
			 __ATOMIC_SEQ_CST);
	__atomic_store_n(&dn_vregs_page->vif, 1, __ATOMIC_SEQ_CST);
}

void dn_interrupts_disable(void)
{
	__atomic_store_n(&dn_vregs()->vif, 0, __ATOMIC_SEQ_CST);
}
