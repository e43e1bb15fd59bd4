/* httpd: serves the built-in resources over HTTP/1.1 on port 80, or the port of argv[1]. */
#include <denali.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "content.h"
#include "http_server.h"

#define HTTPD_PORT 80

static void on_stop(uint64_t events, void *arg)
{
	(void)events, (void)arg;
	dn_loop_stop();
}

int main(int argc, char **argv)
{
	unsigned long port = HTTPD_PORT;
	if (argc > 1) {
		char *end;
		port = strtoul(argv[1], &end, 10);
		if (*argv[1] == '\0' || *end != '\0' || port == 0 || port > 65535) {
			printf("httpd: bad port '%s'\n", argv[1]);
			return 2;
		}
	}
	content_init(argv[0]);
	struct net_stack *st = dn_net_start();
	if (!st) {
		printf("httpd: no network interface\n");
		return 1;
	}
	if (http_server_start(st, (uint16_t)port) != 0) {
		printf("httpd: cannot listen on port %lu\n", port);
		return 1;
	}
	dn_loop_on(DN_EV_STOP, on_stop, NULL);
	printf("httpd: listening on port %lu\n", port);
	dn_loop_run();
	return 0;
}
