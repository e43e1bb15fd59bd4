/* What the user uplink lets through to libslirp: well-formed ARP and unfragmented IPv4 with
 * ICMP, UDP or TCP whose headers are consistent with the frame. libslirp parses in C with
 * fewer checks than a guest's bytes deserve; everything else is dropped here. */
#ifndef VNET_SANITIZE_H
#define VNET_SANITIZE_H

#include <stddef.h>
#include <stdint.h>

enum vnet_verdict {
	VNET_PASS = 0,
	VNET_DROP_TYPE,	    /* not ARP or IPv4 */
	VNET_DROP_ARP,	    /* an ARP packet that is not Ethernet/IPv4 request or reply */
	VNET_DROP_IP,	    /* bad IPv4 header: version, length, checksum */
	VNET_DROP_FRAGMENT, /* a fragment: nothing on the LAN fragments */
	VNET_DROP_L4,	    /* protocol other than ICMP, UDP, TCP, or a truncated header */
};

/* Checks frame (len bytes, Ethernet header included). Pure. */
enum vnet_verdict vnet_sanitize_for_nat(const uint8_t *frame, size_t len);

#endif
