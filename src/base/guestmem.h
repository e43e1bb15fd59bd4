/* Guest RAM: a sparse file in the state directory mapped MAP_SHARED, and the one checked
 * translation from guest-physical addresses to host pointers. */
#ifndef BASE_GUESTMEM_H
#define BASE_GUESTMEM_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A guest-physical address. Never dereferenced: translate it with guestmem_user_ptr. */
typedef uint64_t gpa_t;

struct guestmem {
	uint8_t *host; /* mapping of the whole RAM, GPA 0 at host[0] */
	uint64_t size;
	int fd;	       /* the memory file, locked so that one service owns it */
	int owned;     /* opened and locked by us: ours to remove */
	int lock_held; /* another fd of the same open (the supervisor's) keeps the lock */
	dev_t dev;     /* which file it is, to find the same one when it is opened again */
	ino_t ino;
	char *path; /* <state_dir>/services/<name>/mem, allocated: a sleeping service keeps only
		       these */
	char *dir;
};

enum guestmem_check {
	GUESTMEM_OK = 0,
	GUESTMEM_MISALIGNED, /* gpa is not a multiple of the required alignment */
	GUESTMEM_WRAPS,	     /* gpa + len overflows the 64-bit address space */
	GUESTMEM_OUTSIDE,    /* not wholly inside the guest's own RAM */
};

/* Checks that [gpa, gpa+len) is aligned to align (a power of two) and lies inside the guest's
 * own RAM, [DN_GPA_IMAGE_BASE, ram_size). Pure: no memory is touched. */
enum guestmem_check guestmem_range_check(uint64_t ram_size, gpa_t gpa, uint64_t len,
					 uint64_t align);

/* A failed check as a predicate, for stop messages: "lies outside the guest's RAM". */
const char *guestmem_check_str(enum guestmem_check c);

/* Copies len bytes between guest RAM and monitor memory. Guest RAM is a shared file mapping:
 * a page the file cannot back (its filesystem is full) raises SIGBUS, which here becomes a
 * -1 return instead of the death of the whole cell. Needs guestmem_sigbus_install. */
int guestmem_copy(void *dst, const void *src, size_t len);

/* Runs fn(arg) with the same SIGBUS protection; returns 0, or -1 if it touched a page that
 * could not be backed. */
int guestmem_protected(void (*fn)(void *arg), void *arg);

/* Installs the process's SIGBUS handler for guestmem_copy and guestmem_protected. */
void guestmem_sigbus_install(void);

/* Host pointer to [gpa, gpa+len) if guestmem_range_check allows it, else NULL. */
void *guestmem_user_ptr(const struct guestmem *gm, gpa_t gpa, uint64_t len, uint64_t align);

/* Creates <state_dir>/services/<name>/mem holding size zero bytes (sparse), locks it and maps it.
 * Fails if another live run holds the same service's file. Returns 0 or -1 with err set. */
int guestmem_open(struct guestmem *gm, const char *state_dir, const char *name, uint64_t size,
		  char *err, size_t errlen);

/* Drops the mapping, and the fd if lock_held, for a service that sleeps; guestmem_remap opens
 * the same file again if need be and maps it, anywhere. 0, or -1 with err. */
void guestmem_unmap(struct guestmem *gm);
int guestmem_remap(struct guestmem *gm, char *err, size_t errlen);

/* Opens (and locks) the memory file an earlier run left in <state_dir>/services/<name>, without
 * mapping or changing it; it must be size bytes. 1: opened; 0: there is none; -1 with err. */
int guestmem_open_saved(struct guestmem *gm, const char *state_dir, const char *name, uint64_t size,
			char *err, size_t errlen);

/* Unmaps and closes; removes the file and its folder unless keep_file. */
void guestmem_close(struct guestmem *gm, int keep_file);

/* Removes <state_dir>/services/<name>/mem and its folder, for a service whose process died. */
void guestmem_remove(const char *state_dir, const char *name);

/* The services' folders live in <state_dir>/services/<name>: a name a service takes can then
 * never be one of the monitor's own files in the state folder (denali-run.log, control). */
#define GUESTMEM_SERVICES "services"

/* Opens the state folder, making it (and, with make_parents, the folders above it) if need
 * be, and its services folder, all checked by private_dir_open, the folders above it too.
 * Run once at startup, before any cell: the cells then check only the folders themselves.
 * Returns the state folder's fd, or -1 with a one-line err naming the folder at fault. */
int guestmem_state_open(const char *state_dir, int make_parents, char *err, size_t errlen);

/* Removes the services folder of state_dir if it is empty: at the end of the run. */
void guestmem_state_close(const char *state_dir);

#endif
