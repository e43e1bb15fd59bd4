/* The `tap:NAME` uplink: a host TAP device without packet information headers. */
#include "vnet_tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int vnet_tap_open(const char *name, char *err, size_t errlen)
{
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "tap:%s: cannot open /dev/net/tun: %s", name,
			 strerror(errno));
		return -1;
	}
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
		int e = errno;
		snprintf(err, errlen, "tap:%s: TUNSETIFF: %s%s", name, strerror(e),
			 e == EPERM ? " (a TAP uplink needs root or CAP_NET_ADMIN; the \"user\" "
				      "uplink needs neither)"
				    : "");
		close(fd);
		return -1;
	}
	return fd;
}

int vnet_tap_send(void *ctx, const uint8_t *frame, size_t len)
{
	int fd = (int)(intptr_t)ctx;
	ssize_t n = write(fd, frame, len);
	return n == (ssize_t)len ? 0 : -1;
}
