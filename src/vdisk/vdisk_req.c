/* The rules of one disk request. */
#include "vdisk_req.h"

#include <stdio.h>

#include "guestmem.h"

_Static_assert(DN_DISK_REQ_BLOCKS_MAX == 256, "the count message names the limit");

int vdisk_req_check(const struct dn_disk_req *req, uint64_t blocks, int readonly, uint64_t ram_size,
		    struct vdisk_io *io, const char **why)
{
	*why = NULL;
	io->id = req->id;
	io->op = req->op;
	io->offset = io->gpa = 0;
	io->len = 0;
	if (req->reserved != 0) {
		*why = "reserved field not 0";
		return DN_DISK_E_INVAL;
	}
	if (req->op == DN_DISK_FLUSH) {
		if (req->count || req->block || req->buf) {
			*why = "FLUSH with a block, count or buffer";
			return DN_DISK_E_INVAL;
		}
		return DN_DISK_OK;
	}
	if (req->op != DN_DISK_READ && req->op != DN_DISK_WRITE) {
		*why = "unknown op";
		return DN_DISK_E_INVAL;
	}
	if (req->count == 0 || req->count > DN_DISK_REQ_BLOCKS_MAX) {
		*why = "count outside 1-256";
		return DN_DISK_E_INVAL;
	}
	if (req->op == DN_DISK_WRITE && readonly) {
		*why = "WRITE to a read-only disk";
		return DN_DISK_E_READONLY;
	}
	/* block < blocks first, so that blocks - block cannot wrap. */
	if (req->block >= blocks || req->count > blocks - req->block) {
		*why = "blocks outside the disk";
		return DN_DISK_E_RANGE;
	}
	uint32_t len = req->count * DN_DISK_BLOCK; /* at most 1 MiB: no overflow */
	if (guestmem_range_check(ram_size, req->buf, len, 1) != GUESTMEM_OK) {
		*why = "buffer outside the guest's RAM";
		return DN_DISK_E_FAULT;
	}
	io->offset = req->block * DN_DISK_BLOCK; /* below blocks * 4096, a file size */
	io->gpa = req->buf;
	io->len = len;
	return DN_DISK_OK;
}

const char *vdisk_op_name(unsigned op, char *buf, unsigned buflen)
{
	switch (op) {
	case DN_DISK_READ: return "READ";
	case DN_DISK_WRITE: return "WRITE";
	case DN_DISK_FLUSH: return "FLUSH";
	}
	snprintf(buf, buflen, "op %u", op);
	return buf;
}
