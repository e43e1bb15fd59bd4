/* The rules of one disk request: a pure check of the guest's request, copied once, against
 * the disk's size and the guest's RAM. */
#ifndef VDISK_REQ_H
#define VDISK_REQ_H

#include <stdint.h>

#include "denali/abi.h"

/* A checked request: what the device does. */
struct vdisk_io {
	uint64_t id;
	uint16_t op;	 /* enum dn_disk_op */
	uint64_t offset; /* bytes into the disk file */
	uint64_t gpa;	 /* guest buffer (READ, WRITE) */
	uint32_t len;	 /* bytes (READ, WRITE); 0 for FLUSH */
};

/* Checks req (the device's own copy) for a disk of blocks blocks and a guest of ram_size
 * bytes. Returns DN_DISK_OK with io filled, or the enum dn_disk_status to complete it with;
 * *why then names the broken rule ("count outside 1-256", ...). */
int vdisk_req_check(const struct dn_disk_req *req, uint64_t blocks, int readonly, uint64_t ram_size,
		    struct vdisk_io *io, const char **why);

/* "READ", "WRITE", "FLUSH" or "op N" (into buf) for messages. */
const char *vdisk_op_name(unsigned op, char *buf, unsigned buflen);

#endif
