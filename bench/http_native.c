/* bench/http_native: the baseline for bench/http, a trivial host-native HTTP/1.1 server with
 * keep-alive on one thread (epoll), answering every request with the same body as httpd's
 * /hello.txt, and closing after it when the request says "Connection: close". Usage: http_native
 * PORT. Not a real server: it only parses enough to count requests (one per blank line). */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static const char body[] = "Hello, world! This is a text file served by denali-httpd.\n";

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: http_native PORT\n");
		return 2;
	}
	int srv = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	setsockopt(srv, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)atoi(argv[1])),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (bind(srv, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(srv, 512) != 0) {
		perror("http_native");
		return 1;
	}
	char resp[512];
	int rlen = snprintf(resp, sizeof(resp),
			    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
			    "Server: native\r\n\r\n%s",
			    strlen(body), body);
	int ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = srv};
	epoll_ctl(ep, EPOLL_CTL_ADD, srv, &ev);
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, -1);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == srv) {
				int c = accept(srv, NULL, NULL);
				if (c >= 0) {
					struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
				}
				continue;
			}
			char buf[8192];
			ssize_t got = read(fd, buf, sizeof(buf));
			if (got <= 0) {
				close(fd);
				continue;
			}
			/* One response per request head in what arrived (heads end in a blank
			 * line); "Connection: close" in what arrived: close after answering, as
			 * httpd does (the server then keeps the TIME_WAIT). */
			int done = 0;
			for (ssize_t k = 3; k < got && !done; k++)
				if (buf[k - 3] == '\r' && buf[k - 2] == '\n' &&
				    buf[k - 1] == '\r' && buf[k] == '\n' &&
				    write(fd, resp, (size_t)rlen) != rlen)
					done = 1;
			if (done || memmem(buf, (size_t)got, "Connection: close", 17))
				close(fd);
		}
	}
}
