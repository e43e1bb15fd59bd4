/* service.json "net": the strict parser of one service's virtual NIC. */
#include "config_net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_ratelimit.h"

/* Errors name the key as "net.<key>". */
#define fail(err, errlen, path, key, ...)                                                          \
	vmm_config_fail(err, errlen, path, "net", key, __VA_ARGS__)

const char *vmm_ip_str(uint32_t ip, char out[16])
{
	snprintf(out, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
	return out;
}

void vmm_net_mac_from_name(const char *name, uint8_t mac[6])
{
	/* FNV-1a: stable across runs and hosts, so a service keeps its MAC. */
	uint64_t h = 0xcbf29ce484222325ull;
	for (const char *p = name; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
	mac[0] = 0x02; /* locally administered, unicast */
	for (int i = 1; i < 6; i++)
		mac[i] = (uint8_t)(h >> (8 * (i - 1)));
}

/* Parses a decimal number of at most max from *s, advancing it. */
static int parse_uint(const char **s, unsigned long max, unsigned long *out)
{
	const char *p = *s;
	unsigned long v = 0;
	if (*p < '0' || *p > '9')
		return -1;
	while (*p >= '0' && *p <= '9') {
		v = v * 10 + (unsigned long)(*p - '0');
		if (v > max)
			return -1;
		p++;
	}
	*s = p;
	*out = v;
	return 0;
}

/* "a.b.c.d", advancing *s past it. */
static int parse_ipv4(const char **s, uint32_t *ip)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++) {
		unsigned long octet;
		if (i > 0 && *(*s)++ != '.')
			return -1;
		if (parse_uint(s, 255, &octet) != 0)
			return -1;
		v = v << 8 | (uint32_t)octet;
	}
	*ip = v;
	return 0;
}

static int parse_mac(const char *text, uint8_t mac[6])
{
	for (int i = 0; i < 6; i++) {
		unsigned v = 0;
		for (int d = 0; d < 2; d++) {
			char c = *text++;
			int x = c >= '0' && c <= '9'   ? c - '0'
				: c >= 'a' && c <= 'f' ? c - 'a' + 10
				: c >= 'A' && c <= 'F' ? c - 'A' + 10
						       : -1;
			if (x < 0)
				return -1;
			v = v << 4 | (unsigned)x;
		}
		mac[i] = (uint8_t)v;
		if (i < 5 && *text++ != ':')
			return -1;
	}
	return *text ? -1 : 0;
}

static const char *string_of(json_t *v)
{
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int parse_mac_key(const char *path, json_t *v, struct vmm_net_config *net, char *err,
			 size_t errlen)
{
	const char *text = string_of(v);
	if (!text || parse_mac(text, net->mac) != 0)
		return fail(err, errlen, path, "mac",
			    "expected a MAC address like \"02:00:00:00:00:01\"");
	static const uint8_t zero[6];
	if ((net->mac[0] & 1) || memcmp(net->mac, zero, 6) == 0)
		return fail(err, errlen, path, "mac",
			    "\"%s\" is not a unicast address (the first octet must be even, and "
			    "not all zero)",
			    text);
	net->mac_set = 1;
	return 0;
}

static int parse_ip_key(const char *path, json_t *v, struct vmm_net_config *net, char *err,
			size_t errlen)
{
	const char *text = string_of(v), *s = text;
	unsigned long prefix = 0;
	if (!text || parse_ipv4(&s, &net->ip) != 0 ||
	    (*s == '/' && (s++, parse_uint(&s, 32, &prefix) != 0)) || *s)
		return fail(err, errlen, path, "ip",
			    "expected an IPv4 address with an optional prefix length, like "
			    "\"10.0.0.20/16\"");
	if (text[strcspn(text, "/")] == '/' && (prefix < 8 || prefix > 30))
		return fail(err, errlen, path, "ip", "prefix length %lu is not from 8 to 30",
			    prefix);
	net->prefix = (uint8_t)prefix; /* 0: the uplink's default */
	if (net->ip == 0)
		return fail(err, errlen, path, "ip", "0.0.0.0 is not a service address");
	/* Every uplink shares one LAN, so no service may take the NAT's addresses. */
	if ((net->ip & ~0xfu) == VNET_LAN_NET)
		return fail(err, errlen, path, "ip",
			    "10.0.0.0 to 10.0.0.15 are reserved (the gateway is 10.0.0.1, DNS "
			    "10.0.0.3)");
	return 0;
}

static int parse_gateway_key(const char *path, json_t *v, struct vmm_net_config *net, char *err,
			     size_t errlen)
{
	const char *text = string_of(v), *s = text;
	if (!text || parse_ipv4(&s, &net->gateway) != 0 || *s)
		return fail(err, errlen, path, "gateway", "expected an IPv4 address");
	net->gateway_set = 1;
	return 0;
}

int vmm_ifname_valid(const char *name, size_t len)
{
	/* The kernel's dev_valid_name: its isspace() counts Latin-1's NBSP (0xa0) too. */
	if (len == 0 || len >= VNET_IFNAMSIZ || memchr(name, '\0', len) || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)name[i];
		if (ch == '/' || ch == ':' || ch == ' ' || (ch >= '\t' && ch <= '\r') || ch == 0xa0)
			return 0;
	}
	return 1;
}

static int parse_uplink_key(const char *path, json_t *v, struct vmm_net_config *net, char *err,
			    size_t errlen)
{
	const char *text = string_of(v);
	if (text && strcmp(text, "user") == 0) {
		net->uplink = VNET_UPLINK_USER;
	} else if (text && strcmp(text, "none") == 0) {
		net->uplink = VNET_UPLINK_NONE;
	} else if (text && strncmp(text, "tap:", 4) == 0) {
		const char *name = text + 4;
		size_t len = json_string_length(v) - 4;
		if (!vmm_ifname_valid(name, len)) {
			char shown[41];
			size_t n = len < sizeof(shown) - 1 ? len : sizeof(shown) - 1;
			for (size_t i = 0; i < n; i++) /* the name as given, but inert */
				shown[i] = (unsigned char)name[i] < 0x20 || name[i] == 0x7f
						   ? '?'
						   : name[i];
			shown[n] = '\0';
			return fail(err, errlen, path, "uplink",
				    "\"%s\" is not a valid interface name (1-15 bytes, not \".\" "
				    "or \"..\", no whitespace, '/' or ':')",
				    shown);
		}
		net->uplink = VNET_UPLINK_TAP;
		memcpy(net->tap, name, len + 1);
	} else {
		return fail(err, errlen, path, "uplink",
			    "expected \"user\", \"tap:NAME\" or \"none\"");
	}
	return 0;
}

/* "tcp:HOSTPORT:GUESTPORT" or "tcp:ADDR:HOSTPORT:GUESTPORT" (udp likewise). */
static int parse_forward(const char *text, struct vnet_forward *f)
{
	const char *s = text;
	if (strncmp(s, "tcp:", 4) == 0)
		f->udp = 0;
	else if (strncmp(s, "udp:", 4) == 0)
		f->udp = 1;
	else
		return -1;
	s += 4;
	f->host_addr = 0x7f000001u;
	if (strchr(s, '.')) {
		if (parse_ipv4(&s, &f->host_addr) != 0 || *s++ != ':')
			return -1;
	}
	unsigned long host, guest;
	if (parse_uint(&s, 65535, &host) != 0 || *s++ != ':' || parse_uint(&s, 65535, &guest) ||
	    *s || host == 0 || guest == 0)
		return -1;
	f->host_port = (uint16_t)host;
	f->guest_port = (uint16_t)guest;
	return 0;
}

static int parse_forward_key(const char *path, json_t *v, struct vmm_net_config *net, char *err,
			     size_t errlen)
{
	if (!json_is_array(v))
		return fail(err, errlen, path, "forward",
			    "expected an array of strings like \"tcp:8080:80\"");
	size_t n = json_array_size(v);
	if (n > VNET_FORWARDS_MAX)
		return fail(err, errlen, path, "forward", "%zu forwards, at most %u are allowed", n,
			    VNET_FORWARDS_MAX);
	for (size_t i = 0; i < n; i++) {
		const char *text = string_of(json_array_get(v, i));
		if (!text || parse_forward(text, &net->forward[i]) != 0)
			return fail(err, errlen, path, "forward",
				    "element %zu: expected \"tcp:HOSTPORT:GUESTPORT\" or "
				    "\"udp:[ADDR:]HOSTPORT:GUESTPORT\" with ports from 1 to 65535",
				    i);
		for (size_t j = 0; j < i; j++)
			if (net->forward[j].udp == net->forward[i].udp &&
			    net->forward[j].host_port == net->forward[i].host_port &&
			    net->forward[j].host_addr == net->forward[i].host_addr)
				return fail(err, errlen, path, "forward",
					    "element %zu: host port %u is forwarded twice", i,
					    net->forward[i].host_port);
	}
	net->nforward = (unsigned)n;
	return 0;
}

static const char *const net_keys[] = {
	"mac", "ip", "gateway", "uplink", "forward", "rx_rate_limiter", "tx_rate_limiter"};

int vmm_config_net_parse(const char *path, json_t *v, struct vmm_net_config *net, char *err,
			 size_t errlen)
{
	memset(net, 0, sizeof(*net));
	if (!v)
		return 0;
	if (!json_is_object(v))
		return fail(err, errlen, path, NULL,
			    "expected an object, like {\"forward\": "
			    "[\"tcp:8080:80\"]}");
	const char *key;
	json_t *value;
	json_object_foreach (v, key, value) {
		int known = 0;
		for (size_t i = 0; i < sizeof(net_keys) / sizeof(net_keys[0]); i++)
			known |= strcmp(key, net_keys[i]) == 0;
		if (!known)
			return fail(err, errlen, path, key,
				    "unknown key (known keys: mac, ip, gateway, uplink, forward, "
				    "rx_rate_limiter, tx_rate_limiter)");
	}
	net->enabled = 1;
	json_t *k;
	if (((k = json_object_get(v, "mac")) && parse_mac_key(path, k, net, err, errlen)) ||
	    ((k = json_object_get(v, "ip")) && parse_ip_key(path, k, net, err, errlen)) ||
	    ((k = json_object_get(v, "gateway")) && parse_gateway_key(path, k, net, err, errlen)) ||
	    ((k = json_object_get(v, "uplink")) && parse_uplink_key(path, k, net, err, errlen)) ||
	    ((k = json_object_get(v, "forward")) && parse_forward_key(path, k, net, err, errlen)) ||
	    vmm_config_ratelimit_parse(path, "net.rx_rate_limiter",
				       json_object_get(v, "rx_rate_limiter"), &net->rx_limit, err,
				       errlen) ||
	    vmm_config_ratelimit_parse(path, "net.tx_rate_limiter",
				       json_object_get(v, "tx_rate_limiter"), &net->tx_limit, err,
				       errlen))
		return -1;
	if (net->nforward && net->uplink != VNET_UPLINK_USER)
		return fail(err, errlen, path, "forward", "needs the \"user\" uplink");
	if (net->uplink == VNET_UPLINK_USER && net->ip) {
		char a[16];
		if (net->prefix && net->prefix != VNET_LAN_PREFIX)
			return fail(err, errlen, path, "ip",
				    "the user uplink's LAN is 10.0.0.0/16: the prefix must be 16");
		if ((net->ip >> 16) != (VNET_LAN_NET >> 16) || net->ip < VNET_LAN_FIRST ||
		    net->ip > VNET_LAN_LAST)
			return fail(err, errlen, path, "ip",
				    "%s is not in the user uplink's LAN (10.0.0.16 to "
				    "10.0.254.254)",
				    vmm_ip_str(net->ip, a));
		if (net->gateway_set && net->gateway != VNET_LAN_GATEWAY)
			return fail(err, errlen, path, "gateway",
				    "the user uplink's gateway is 10.0.0.1");
	}
	return 0;
}
