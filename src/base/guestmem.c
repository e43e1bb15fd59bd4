/* Guest RAM: a sparse file in the state directory mapped MAP_SHARED, and the one checked
 * translation from guest-physical addresses to host pointers. */
#include "guestmem.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "denali/abi.h"
#include "private_dir.h"

enum guestmem_check guestmem_range_check(uint64_t ram_size, gpa_t gpa, uint64_t len, uint64_t align)
{
	if (align > 1 && (gpa & (align - 1)) != 0)
		return GUESTMEM_MISALIGNED;
	if (gpa + len < gpa)
		return GUESTMEM_WRAPS;
	if (gpa < DN_GPA_IMAGE_BASE || gpa > ram_size || len > ram_size - gpa)
		return GUESTMEM_OUTSIDE;
	return GUESTMEM_OK;
}

const char *guestmem_check_str(enum guestmem_check c)
{
	switch (c) {
	case GUESTMEM_OK: return "is valid";
	case GUESTMEM_MISALIGNED: return "is misaligned";
	case GUESTMEM_WRAPS: return "wraps around the address space";
	case GUESTMEM_OUTSIDE: return "lies outside the guest's RAM";
	}
	return "is invalid";
}

void *guestmem_user_ptr(const struct guestmem *gm, gpa_t gpa, uint64_t len, uint64_t align)
{
	if (guestmem_range_check(gm->size, gpa, len, align) != GUESTMEM_OK)
		return NULL;
	return gm->host + gpa;
}

/* The recovery point of the copy this thread is doing, if any. */
static __thread sigjmp_buf *sigbus_recover;

static void on_sigbus(int signo)
{
	if (sigbus_recover)
		siglongjmp(*sigbus_recover, 1);
	signal(signo, SIG_DFL); /* not ours: die as we would have */
	raise(signo);
}

void guestmem_sigbus_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_sigbus;
	/* Not blocked inside its handler: the jump back leaves the mask as it was, so a copy
	 * need not save and restore it (a system call on every copy). */
	sa.sa_flags = SA_NODEFER;
	sigaction(SIGBUS, &sa, NULL);
}

int guestmem_protected(void (*fn)(void *arg), void *arg)
{
	sigjmp_buf env;
	if (sigsetjmp(env, 0)) {
		sigbus_recover = NULL;
		return -1;
	}
	sigbus_recover = &env;
	fn(arg);
	sigbus_recover = NULL;
	return 0;
}

struct copy_args {
	void *dst;
	const void *src;
	size_t len;
};

static void do_copy(void *arg)
{
	struct copy_args *c = arg;
	memcpy(c->dst, c->src, c->len);
}

int guestmem_copy(void *dst, const void *src, size_t len)
{
	struct copy_args c = {dst, src, len};
	return guestmem_protected(do_copy, &c);
}

int guestmem_state_open(const char *state_dir, int make_parents, char *err, size_t errlen)
{
	unsigned flags = PRIVATE_DIR_CREATE | PRIVATE_DIR_ANCESTORS;
	int top = private_dir_open(AT_FDCWD, state_dir, "state folder", state_dir,
				   flags | (make_parents ? PRIVATE_DIR_PARENTS : 0), err, errlen);
	if (top < 0)
		return -1;
	char shown[PATH_MAX];
	snprintf(shown, sizeof(shown), "%s/" GUESTMEM_SERVICES, state_dir);
	int services = private_dir_open(top, GUESTMEM_SERVICES, "services folder", shown,
					PRIVATE_DIR_CREATE | PRIVATE_DIR_STRICT, err, errlen);
	if (services < 0) {
		close(top);
		return -1;
	}
	close(services);
	return top;
}

void guestmem_state_close(const char *state_dir)
{
	char path[PATH_MAX];
	if ((size_t)snprintf(path, sizeof(path), "%s/" GUESTMEM_SERVICES, state_dir) < sizeof(path))
		rmdir(path); /* only when empty: files kept or saved stay */
}

/* Opens and locks the memory file in dir: a regular file of ours with one link, and still the
 * one named "mem" once locked (a run that was removing it may have unlinked it meanwhile). */
static int open_locked_file(struct guestmem *gm, int dir, const char *name, char *err,
			    size_t errlen)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		int fd = openat(dir, "mem", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		struct stat st, named;
		if (fd < 0 || fstat(fd, &st) != 0) {
			snprintf(err, errlen, "cannot create memory file %s: %s", gm->path,
				 errno == ELOOP ? "it is a symbolic link" : strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
		if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || st.st_nlink != 1) {
			snprintf(err, errlen, "memory file %s is not a private regular file",
				 gm->path);
			close(fd);
			return -1;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
			snprintf(err, errlen,
				 "%s is in use: is service \"%s\" already running with this state "
				 "directory?",
				 gm->path, name);
			close(fd); /* the file is another run's: leave it alone */
			return -1;
		}
		if (fstatat(dir, "mem", &named, AT_SYMLINK_NOFOLLOW) == 0 &&
		    named.st_dev == st.st_dev && named.st_ino == st.st_ino)
			return fd;
		close(fd);
	}
	snprintf(err, errlen, "memory file %s keeps changing under us", gm->path);
	return -1;
}

static void forget_paths(struct guestmem *gm)
{
	free(gm->path);
	free(gm->dir);
	gm->path = gm->dir = NULL;
}

/* The service's folder and memory file, opened and locked; -1 with err. */
static int open_file(struct guestmem *gm, const char *state_dir, const char *name, char *err,
		     size_t errlen)
{
	if (strlen(state_dir) + strlen(name) + sizeof("/" GUESTMEM_SERVICES "//mem") > PATH_MAX) {
		snprintf(err, errlen, "state folder path too long: %s", state_dir);
		return -1;
	}
	if (asprintf(&gm->dir, "%s/" GUESTMEM_SERVICES "/%s", state_dir, name) < 0) {
		gm->dir = NULL; /* asprintf leaves it undefined */
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (asprintf(&gm->path, "%s/mem", gm->dir) < 0) {
		gm->path = NULL;
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* The folders above the state folder were checked once at startup (guestmem_state_open):
	 * no one else can swap them since. */
	int top = private_dir_open(AT_FDCWD, state_dir, "state folder", state_dir,
				   PRIVATE_DIR_CREATE, err, errlen);
	if (top < 0)
		return -1;
	char shown[PATH_MAX];
	snprintf(shown, sizeof(shown), "%s/" GUESTMEM_SERVICES, state_dir);
	int services = private_dir_open(top, GUESTMEM_SERVICES, "services folder", shown,
					PRIVATE_DIR_CREATE | PRIVATE_DIR_STRICT, err, errlen);
	close(top);
	if (services < 0)
		return -1;
	int dir = private_dir_open(services, name, "service folder", gm->dir,
				   PRIVATE_DIR_CREATE | PRIVATE_DIR_STRICT, err, errlen);
	close(services);
	if (dir < 0)
		return -1;
	/* The folders are ours and closed to others, so the paths stay valid for cleanup
	 * without holding their fds (a cell may hold thousands of services). */
	gm->fd = open_locked_file(gm, dir, name, err, errlen);
	close(dir);
	return gm->fd < 0 ? -1 : 0;
}

/* Maps the guest's RAM. Faults read no pages around the one the guest touched: read-ahead
 * would fill the page cache (and count against the memory budget) with pages it never uses.
 * Swap-in brings back the working set itself. */
static void *map_ram(int fd, size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p != MAP_FAILED)
		madvise(p, size, MADV_RANDOM);
	return p;
}

int guestmem_open(struct guestmem *gm, const char *state_dir, const char *name, uint64_t size,
		  char *err, size_t errlen)
{
	memset(gm, 0, sizeof(*gm));
	gm->fd = -1;
	if (open_file(gm, state_dir, name, err, errlen) != 0) {
		forget_paths(gm);
		return -1;
	}
	/* A fresh boot starts from zeroed RAM: drop whatever an earlier run left, then extend
	 * sparsely, so untouched guest pages cost no disk and no memory. */
	if (ftruncate(gm->fd, 0) != 0 || ftruncate(gm->fd, (off_t)size) != 0) {
		snprintf(err, errlen, "cannot size memory file %s: %s", gm->path, strerror(errno));
		goto fail;
	}
	void *p = map_ram(gm->fd, size);
	if (p == MAP_FAILED) {
		snprintf(err, errlen, "cannot map memory file %s: %s", gm->path, strerror(errno));
		goto fail;
	}
	struct stat st;
	if (fstat(gm->fd, &st) == 0) {
		gm->dev = st.st_dev;
		gm->ino = st.st_ino;
	}
	gm->host = p;
	gm->size = size;
	gm->owned = 1;
	return 0;
fail:
	close(gm->fd);
	gm->fd = -1;
	unlink(gm->path);
	rmdir(gm->dir);
	forget_paths(gm);
	return -1;
}

int guestmem_open_saved(struct guestmem *gm, const char *state_dir, const char *name, uint64_t size,
			char *err, size_t errlen)
{
	memset(gm, 0, sizeof(*gm));
	gm->fd = -1;
	char path[PATH_MAX];
	struct stat st;
	if ((size_t)snprintf(path, sizeof(path), "%s/" GUESTMEM_SERVICES "/%s/mem", state_dir,
			     name) >= sizeof(path) ||
	    (lstat(path, &st) != 0 && errno == ENOENT))
		return 0; /* never ran here, or ended: it starts afresh */
	if (open_file(gm, state_dir, name, err, errlen) != 0) {
		forget_paths(gm);
		return -1;
	}
	gm->owned = 1;
	if (fstat(gm->fd, &st) != 0 || (uint64_t)st.st_size != size) {
		snprintf(err, errlen,
			 "its memory file %s is %lld bytes, not the %llu of its memory", gm->path,
			 (long long)st.st_size, (unsigned long long)size);
		return -1; /* the caller closes it, and it is lost */
	}
	gm->dev = st.st_dev;
	gm->ino = st.st_ino;
	gm->size = size;
	return 1;
}

void guestmem_remove(const char *state_dir, const char *name)
{
	char dir[PATH_MAX], path[PATH_MAX];
	if ((size_t)snprintf(dir, sizeof(dir), "%s/" GUESTMEM_SERVICES "/%s", state_dir, name) >=
		    sizeof(dir) ||
	    (size_t)snprintf(path, sizeof(path), "%s/mem", dir) >= sizeof(path))
		return;
	unlink(path);
	rmdir(dir);
}

void guestmem_unmap(struct guestmem *gm)
{
	if (gm->host)
		munmap(gm->host, gm->size);
	gm->host = NULL;
	if (gm->lock_held && gm->fd >= 0) {
		close(gm->fd);
		gm->fd = -1;
	}
}

int guestmem_remap(struct guestmem *gm, char *err, size_t errlen)
{
	if (gm->fd < 0) {
		gm->fd = open(gm->path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
		struct stat st;
		if (gm->fd < 0 || fstat(gm->fd, &st) != 0 || st.st_dev != gm->dev ||
		    st.st_ino != gm->ino) {
			snprintf(err, errlen, "memory file %s %s", gm->path,
				 gm->fd < 0 ? strerror(errno) : "was replaced while it slept");
			if (gm->fd >= 0)
				close(gm->fd);
			gm->fd = -1;
			return -1;
		}
	}
	void *p = map_ram(gm->fd, gm->size);
	if (p == MAP_FAILED) {
		snprintf(err, errlen, "cannot map memory file %s: %s", gm->path, strerror(errno));
		return -1;
	}
	gm->host = p;
	return 0;
}

void guestmem_close(struct guestmem *gm, int keep_file)
{
	if (gm->host)
		munmap(gm->host, gm->size);
	if (gm->owned && !keep_file) {
		unlink(gm->path);
		rmdir(gm->dir);
	}
	if (gm->fd >= 0)
		close(gm->fd);
	gm->host = NULL;
	gm->fd = -1;
	gm->owned = 0;
	forget_paths(gm);
}
