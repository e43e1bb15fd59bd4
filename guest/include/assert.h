/* Guest libc: assert aborts the service with the failed expression and file:line. */
#ifndef DN_ASSERT_H
#define DN_ASSERT_H

__attribute__((noreturn)) void __dn_assert_fail(const char *expr, const char *file, int line);

#ifdef NDEBUG
#define assert(e) ((void)0)
#else
#define assert(e) ((e) ? (void)0 : __dn_assert_fail(#e, __FILE__, __LINE__))
#endif

#endif
