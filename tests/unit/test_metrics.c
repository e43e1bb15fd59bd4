/* The Prometheus exposition (metrics_text) from stats objects, and the --metrics-listen HTTP
 * server over real TCP sockets on 127.0.0.1, with a fake supervisor. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/exit_status.h"
#include "unit.h"
#include "vmm/metrics.h"
#include "vmm/metrics_http.h"
#include "vmm/stats.h"

/* Whether text has line as one of its lines, exactly. */
static int has_line(const char *text, const char *line)
{
	size_t len = strlen(line);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, line, len) == 0 && (p[len] == '\n' || p[len] == '\0'))
			return 1;
	return 0;
}

/* How many lines of text start with prefix. */
static unsigned count_lines(const char *text, const char *prefix)
{
	unsigned n = 0;
	size_t len = strlen(prefix);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		n += strncmp(p, prefix, len) == 0;
	return n;
}

static json_t *load(const char *text)
{
	json_error_t jerr;
	json_t *v = json_loads(text, 0, &jerr);
	ck_assert_msg(v != NULL, "fixture: %s", jerr.text);
	return v;
}

static const char fixture[] =
	"[{\"name\": \"httpd\", \"outcome\": \"exited\", \"status\": 0, \"state\": \"running\","
	"  \"exits\": {\"io\": 12, \"hlt\": 3, \"other\": 0},"
	"  \"hypercalls\": {\"console\": 4, \"net_send\": 7},"
	"  \"events_raised\": 9, \"events_delivered\": 8, \"interrupts\": 5, \"idles\": 2,"
	"  \"cpu_ns\": 1230000000, \"wall_ns\": 5000000000, \"resident_pages\": 4096,"
	"  \"nic\": {\"tx_frames\": 118, \"tx_spoofed\": 0, \"tx_dropped\": 1, \"rx_frames\": 120,"
	"          \"rx_dropped\": 2, \"ring_errors\": 0, \"held\": 3, \"held_dropped\": 0,"
	"          \"asleep_ignored\": 6, \"tx_blocked\": 4},"
	"  \"resident_peak_bytes\": 16777216},"
	" {\"name\": \"kv\", \"outcome\": \"stopped\", \"status\": 1, \"reason\": \"killed\","
	"  \"state\": \"asleep\", \"exits\": {\"io\": 1}, \"hypercalls\": {\"console\": 0},"
	"  \"events_raised\": 0, \"events_delivered\": 0, \"interrupts\": 0, \"idles\": 0,"
	"  \"cpu_ns\": 1, \"wall_ns\": 0,"
	"  \"disk\": {\"reads\": 9, \"writes\": 4, \"flushes\": 1, \"bytes_read\": 36864,"
	"           \"bytes_written\": 16384, \"failed\": 0, \"io_errors\": 0,"
	"           \"ring_errors\": 0, \"batches\": 5},"
	"  \"swap\": {\"faults_after_in\": 11, \"outs\": 2, \"ins\": 1, \"out_ns\": 1500000,"
	"           \"in_ns\": 2000000000, \"prefetched_pages\": 30,"
	"           \"working_set_pages\": 40, \"resident_after_out_max\": 3},"
	"  \"resident_peak_bytes\": 1048576}]";

START_TEST(test_metrics_fixture)
{
	json_t *services = load(fixture);
	char *text = metrics_text(services, 3725.4, 536870912, NULL);
	ck_assert_ptr_nonnull(text);
	static const char *const lines[] = {
		"# HELP denali_services Services in the fleet.",
		"# TYPE denali_services gauge",
		"denali_services 2",
		"# TYPE denali_uptime_seconds gauge",
		"denali_uptime_seconds 3725.4",
		"# TYPE denali_memory_budget_bytes gauge",
		"denali_memory_budget_bytes 536870912",
		"# TYPE denali_service_up gauge",
		"denali_service_up{service=\"httpd\",state=\"running\"} 1",
		"denali_service_up{service=\"kv\",state=\"asleep\"} 1",
		"# TYPE denali_exits_total counter",
		"denali_exits_total{service=\"httpd\",reason=\"io\"} 12",
		"denali_exits_total{service=\"httpd\",reason=\"hlt\"} 3",
		"denali_exits_total{service=\"httpd\",reason=\"other\"} 0",
		"denali_exits_total{service=\"kv\",reason=\"io\"} 1",
		"# TYPE denali_hypercalls_total counter",
		"denali_hypercalls_total{service=\"httpd\",call=\"console\"} 4",
		"denali_hypercalls_total{service=\"httpd\",call=\"net_send\"} 7",
		"denali_hypercalls_total{service=\"kv\",call=\"console\"} 0",
		"denali_events_raised_total{service=\"httpd\"} 9",
		"denali_events_delivered_total{service=\"httpd\"} 8",
		"denali_interrupts_total{service=\"httpd\"} 5",
		"denali_idles_total{service=\"httpd\"} 2",
		"# TYPE denali_cpu_seconds_total counter",
		"denali_cpu_seconds_total{service=\"httpd\"} 1.23",
		"denali_cpu_seconds_total{service=\"kv\"} 0.000000001",
		"# TYPE denali_wall_seconds gauge",
		"denali_wall_seconds{service=\"httpd\"} 5",
		"denali_wall_seconds{service=\"kv\"} 0",
		"# TYPE denali_resident_pages gauge",
		"denali_resident_pages{service=\"httpd\"} 4096",
		"denali_resident_peak_bytes{service=\"httpd\"} 16777216",
		"denali_resident_peak_bytes{service=\"kv\"} 1048576",
		"# TYPE denali_nic_tx_frames_total counter",
		"denali_nic_tx_frames_total{service=\"httpd\"} 118",
		"denali_nic_rx_frames_total{service=\"httpd\"} 120",
		"denali_nic_tx_dropped_total{service=\"httpd\"} 1",
		"denali_nic_rx_dropped_total{service=\"httpd\"} 2",
		"denali_nic_held_total{service=\"httpd\"} 3",
		"denali_nic_asleep_ignored_total{service=\"httpd\"} 6",
		"denali_nic_tx_blocked_total{service=\"httpd\"} 4",
		"denali_disk_reads_total{service=\"kv\"} 9",
		"denali_disk_read_bytes_total{service=\"kv\"} 36864",
		"denali_disk_written_bytes_total{service=\"kv\"} 16384",
		"denali_disk_batches_total{service=\"kv\"} 5",
		"# TYPE denali_swap_outs_total counter",
		"denali_swap_outs_total{service=\"kv\"} 2",
		"denali_swap_ins_total{service=\"kv\"} 1",
		"denali_swap_out_seconds_total{service=\"kv\"} 0.0015",
		"denali_swap_in_seconds_total{service=\"kv\"} 2",
		"denali_swap_faults_after_in_total{service=\"kv\"} 11",
		"denali_swap_prefetched_pages_total{service=\"kv\"} 30",
		"# TYPE denali_swap_working_set_pages gauge",
		"denali_swap_working_set_pages{service=\"kv\"} 40",
		"denali_swap_resident_after_out_max_pages{service=\"kv\"} 3",
	};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		ck_assert_msg(has_line(text, lines[i]), "missing \"%s\" in:\n%s", lines[i], text);
	/* No service without a NIC, disk or swap gets their samples. */
	ck_assert_uint_eq(count_lines(text, "denali_nic_tx_frames_total{"), 1);
	ck_assert_uint_eq(count_lines(text, "denali_disk_reads_total{service=\"httpd\""), 0);
	ck_assert_uint_eq(count_lines(text, "denali_swap_outs_total{service=\"httpd\""), 0);
	ck_assert_uint_eq(count_lines(text, "denali_resident_pages{service=\"kv\""), 0);
	/* Every line is a comment or a sample "NAME{...} VALUE" of a name typed before. */
	ck_assert_int_eq(text[strlen(text) - 1], '\n');
	free(text);
	json_decref(services);
	/* No services, no budget. */
	text = metrics_text(NULL, 0, 0, NULL);
	ck_assert_ptr_nonnull(text);
	ck_assert(has_line(text, "denali_services 0"));
	ck_assert(has_line(text, "denali_memory_budget_bytes 0"));
	ck_assert(has_line(text, "denali_uptime_seconds 0"));
	ck_assert(has_line(text, "# TYPE denali_exits_total counter"));
	ck_assert_uint_eq(count_lines(text, "denali_exits_total{"), 0);
	/* Without a NAT process: its metrics are typed, with no sample. */
	ck_assert(has_line(text, "# TYPE denali_nat_restarts_total counter"));
	ck_assert(has_line(text, "# TYPE denali_nat_up gauge"));
	ck_assert_uint_eq(count_lines(text, "denali_nat_restarts_total "), 0);
	ck_assert_uint_eq(count_lines(text, "denali_nat_up "), 0);
	free(text);
	/* With one, replaced 3 times, being replaced now. */
	struct metrics_nat nat = {.up = 0, .restarts = 3};
	text = metrics_text(NULL, 0, 0, &nat);
	ck_assert_ptr_nonnull(text);
	ck_assert(has_line(text, "denali_nat_restarts_total 3"));
	ck_assert(has_line(text, "denali_nat_up 0"));
	free(text);
}
END_TEST

START_TEST(test_metrics_escaping)
{
	json_t *services = json_pack("[{s:s, s:{s:i}, s:s, s:I}]", "name", "a\\b\"c\nd", "exits",
				     "we\"ird\n", 1, "state", "x\\", "cpu_ns", (json_int_t)0);
	char *text = metrics_text(services, 1.5, 0, NULL);
	ck_assert_ptr_nonnull(text);
	ck_assert_msg(has_line(text, "denali_exits_total{service=\"a\\\\b\\\"c\\nd\",reason="
				     "\"we\\\"ird\\n\"} 1"),
		      "%s", text);
	ck_assert(
		has_line(text, "denali_service_up{service=\"a\\\\b\\\"c\\nd\",state=\"x\\\\\"} 1"));
	ck_assert(has_line(text, "denali_cpu_seconds_total{service=\"a\\\\b\\\"c\\nd\"} 0"));
	ck_assert(has_line(text, "denali_uptime_seconds 1.5"));
	free(text);
	json_decref(services);
}
END_TEST

START_TEST(test_metrics_untrusted)
{
	/* Odd entries and values: skipped, never a crash. */
	json_t *services = load(
		"[42, null, \"s\", {\"noname\": 1}, {\"name\": 7, \"idles\": 1},"
		" {\"name\": \"odd\", \"state\": 3, \"exits\": 5, \"hypercalls\": {\"console\": -1,"
		"  \"yield\": 1.5, \"net\": \"3\", \"ok\": 3}, \"cpu_ns\": \"x\", \"wall_ns\": -5,"
		"  \"idles\": 1e3, \"interrupts\": true, \"nic\": \"string\", \"disk\": {\"reads\":"
		"  null, \"writes\": 2}, \"swap\": [1, 2], \"resident_pages\": {}},"
		" {\"name\": \"odd\", \"idles\": 99}, {\"name\": \"\"}]");
	char *text = metrics_text(services, 0.25, 1, NULL);
	ck_assert_ptr_nonnull(text);
	ck_assert_msg(has_line(text, "denali_services 2"), "%s", text); /* "odd" and "" */
	ck_assert(has_line(text, "denali_hypercalls_total{service=\"odd\",call=\"ok\"} 3"));
	ck_assert(has_line(text, "denali_disk_writes_total{service=\"odd\"} 2"));
	ck_assert_uint_eq(count_lines(text, "denali_hypercalls_total{"), 1);
	ck_assert_uint_eq(count_lines(text, "denali_exits_total{"), 0);
	ck_assert_uint_eq(count_lines(text, "denali_service_up{"), 0);
	ck_assert_uint_eq(count_lines(text, "denali_cpu_seconds_total{"), 0);
	ck_assert_uint_eq(count_lines(text, "denali_wall_seconds{"), 0);
	ck_assert_uint_eq(count_lines(text, "denali_idles_total{"), 0); /* not the duplicate's */
	ck_assert_uint_eq(count_lines(text, "denali_interrupts_total{"), 0);
	ck_assert_uint_eq(count_lines(text, "denali_nic_"), 0);
	ck_assert_uint_eq(count_lines(text, "denali_disk_reads_total{"), 0);
	ck_assert_uint_eq(count_lines(text, "denali_swap_"), 0);
	ck_assert_uint_eq(count_lines(text, "denali_resident_pages{"), 0);
	free(text);
	json_decref(services);
	/* Not an array at all. */
	services = json_pack("{s:s}", "name", "x");
	text = metrics_text(services, 1.0 / 0.0, 0, NULL);
	ck_assert(has_line(text, "denali_services 0"));
	ck_assert(has_line(text, "denali_uptime_seconds +Inf"));
	free(text);
	json_decref(services);
}
END_TEST

START_TEST(test_metrics_many)
{
	json_t *one = load(fixture), *base = json_array_get(one, 0), *services = json_array();
	for (int i = 0; i < 100; i++) {
		json_t *svc = json_deep_copy(base);
		char name[16];
		snprintf(name, sizeof(name), "svc%d", i);
		json_object_set_new(svc, "name", json_string(name));
		json_array_append_new(services, svc);
	}
	json_decref(one);
	char *text = metrics_text(services, 1, 0, NULL);
	ck_assert_ptr_nonnull(text);
	/* Every metric: one HELP and one TYPE, before its samples, which come together. */
	json_t *seen = json_object();
	char current[128] = "";
	unsigned families = 0;
	for (const char *p = text; *p; p = strchr(p, '\n') + 1) {
		size_t len = strcspn(p, "\n");
		char line[512];
		ck_assert_uint_lt(len, sizeof(line));
		memcpy(line, p, len);
		line[len] = '\0';
		if (strncmp(line, "# HELP ", 7) == 0) {
			char name[128];
			ck_assert_int_eq(sscanf(line + 7, "%127s", name), 1);
			ck_assert_msg(!json_object_get(seen, name), "HELP twice: %s", name);
			json_object_set_new(seen, name, json_true());
			snprintf(current, sizeof(current), "%s", name);
			families++;
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			ck_assert_msg(strncmp(line + 7, current, strlen(current)) == 0 &&
					      line[7 + strlen(current)] == ' ',
				      "TYPE apart from its HELP: %s", line);
			continue;
		}
		size_t name_len = strcspn(line, "{ ");
		ck_assert_msg(name_len == strlen(current) && strncmp(line, current, name_len) == 0,
			      "sample out of its family %s: %s", current, line);
	}
	ck_assert_uint_eq(count_lines(text, "# TYPE "), families);
	ck_assert_uint_eq(count_lines(text, "denali_cpu_seconds_total{"), 100);
	ck_assert_uint_eq(count_lines(text, "denali_exits_total{"), 300);
	ck_assert(has_line(text, "denali_nic_rx_frames_total{service=\"svc99\"} 120"));
	free(text);
	json_decref(seen);
	json_decref(services);
}
END_TEST

/* The HTTP server. */

struct fake_sup {
	unsigned wants, last;
	int defer; /* answer later, in the test */
	const char *text;
	struct metrics_http *m;
};

static void fake_want(void *ctx, unsigned client)
{
	struct fake_sup *f = ctx;
	f->wants++;
	f->last = client;
	if (!f->defer)
		metrics_http_answer(f->m, client, f->text ? strdup(f->text) : NULL);
}

static struct metrics_http *open_server(struct fake_sup *f)
{
	char err[256];
	struct metrics_http_ops ops = {.ctx = f, .want = fake_want};
	f->m = metrics_http_open("127.0.0.1:0", &ops, err, sizeof(err));
	ck_assert_msg(f->m != NULL, "%s", err);
	ck_assert_int_gt(metrics_http_port(f->m), 0);
	return f->m;
}

static int64_t mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void serve_round(struct metrics_http *m, int64_t now)
{
	struct pollfd fds[1 + METRICS_HTTP_CLIENTS_MAX];
	unsigned n = metrics_http_pollfds(m, fds);
	poll(fds, n, 5);
	metrics_http_serve(m, fds, n, now);
}

static int dial(struct metrics_http *m)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET,
				   .sin_port = htons((uint16_t)metrics_http_port(m)),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	return fd;
}

static void send_text(int fd, const char *text)
{
	ck_assert_int_eq(send(fd, text, strlen(text), MSG_NOSIGNAL), (ssize_t)strlen(text));
}

/* Serves until the client has read to the end (or 2 s passed); what it read, or "" when the
 * connection was reset. The result is static. */
static const char *receive(struct metrics_http *m, int fd)
{
	static char got[1 << 16];
	size_t len = 0;
	for (int round = 0; round < 400; round++) {
		serve_round(m, 0);
		struct pollfd me = {.fd = fd, .events = POLLIN};
		while (poll(&me, 1, 0) == 1) {
			ssize_t r = read(fd, got + len, sizeof(got) - 1 - len);
			if (r <= 0)
				goto out;
			len += (size_t)r;
		}
	}
	ck_abort_msg("no end of the answer");
out:
	got[len] = '\0';
	return got;
}

static const char *exchange(struct metrics_http *m, const char *request)
{
	int fd = dial(m);
	send_text(fd, request);
	const char *got = receive(m, fd);
	close(fd);
	return got;
}

static const char ok_answer[] = "HTTP/1.1 200 OK\r\n"
				"Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
				"Content-Length: 18\r\n"
				"Connection: close\r\n"
				"\r\n"
				"denali_services 1\n";

START_TEST(test_metrics_http_answers)
{
	struct fake_sup f = {.text = "denali_services 1\n"};
	struct metrics_http *m = open_server(&f);
	ck_assert_str_eq(exchange(m, "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"),
			 ok_answer);
	ck_assert_str_eq(exchange(m, "GET /metrics?name[]=x HTTP/1.0\n\n"), ok_answer);
	ck_assert_uint_eq(f.wants, 2);
	const char *got = exchange(m, "GET /other HTTP/1.1\r\n\r\n");
	ck_assert_msg(strncmp(got, "HTTP/1.1 404 Not Found\r\n", 24) == 0, "%s", got);
	ck_assert_msg(strstr(got, "Connection: close\r\n"), "%s", got);
	got = exchange(m, "GET /metricsx HTTP/1.1\r\n\r\n");
	ck_assert_msg(strncmp(got, "HTTP/1.1 404 ", 13) == 0, "%s", got);
	got = exchange(m, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
	ck_assert_msg(strncmp(got, "HTTP/1.1 405 Method Not Allowed\r\n", 33) == 0, "%s", got);
	ck_assert_msg(strstr(got, "\r\nAllow: GET\r\n"), "%s", got);
	static const char *const bad[] = {
		"GET /metrics HTTP/2.0\r\n\r\n",
		"GET  /metrics HTTP/1.1\r\n\r\n",
		"GET metrics HTTP/1.1\r\n\r\n",
		"GET /metrics\r\n\r\n",
		"\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nno colon\r\n\r\n",
		"GET /metrics HTTP/1.1\r\n : x\r\n\r\n",
		"G\x01T /metrics HTTP/1.1\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		got = exchange(m, bad[i]);
		ck_assert_msg(strncmp(got, "HTTP/1.1 400 Bad Request\r\n", 26) == 0, "%zu: %s", i,
			      got);
	}
	ck_assert_uint_eq(f.wants, 2);
	/* A head over 8 KiB: 400 and closed. */
	int fd = dial(m);
	send_text(fd, "GET /metrics HTTP/1.1\r\n");
	char line[128];
	memset(line, 'a', sizeof(line));
	memcpy(line, "X-Pad: ", 7);
	line[sizeof(line) - 2] = '\r';
	line[sizeof(line) - 1] = '\n';
	for (unsigned i = 0; i < METRICS_HTTP_HEAD_MAX / sizeof(line) + 1; i++)
		ck_assert_int_eq(send(fd, line, sizeof(line), MSG_NOSIGNAL), (ssize_t)sizeof(line));
	got = receive(m, fd);
	ck_assert_msg(strncmp(got, "HTTP/1.1 400 Bad Request\r\n", 26) == 0, "%s", got);
	close(fd);
	ck_assert_uint_eq(f.wants, 2);
	/* A deferred answer; then none (503). */
	f.defer = 1;
	fd = dial(m);
	send_text(fd, "GET /metrics HTTP/1.1\r\n\r\n");
	for (int i = 0; i < 50 && f.wants < 3; i++)
		serve_round(m, 0);
	ck_assert_uint_eq(f.wants, 3);
	metrics_http_answer(m, f.last, strdup("denali_services 1\n"));
	metrics_http_answer(m, f.last, strdup("twice")); /* answered already: dropped */
	ck_assert_str_eq(receive(m, fd), ok_answer);
	close(fd);
	fd = dial(m);
	send_text(fd, "GET /metrics HTTP/1.1\r\n\r\n");
	for (int i = 0; i < 50 && f.wants < 4; i++)
		serve_round(m, 0);
	metrics_http_answer(m, f.last, NULL);
	got = receive(m, fd);
	ck_assert_msg(strncmp(got, "HTTP/1.1 503 Service Unavailable\r\n", 34) == 0, "%s", got);
	close(fd);
	/* A client that half-closes after its request still gets the answer. */
	f.defer = 0;
	fd = dial(m);
	send_text(fd, "GET /metrics HTTP/1.1\r\n\r\n");
	shutdown(fd, SHUT_WR);
	ck_assert_str_eq(receive(m, fd), ok_answer);
	close(fd);
	metrics_http_close(m);
}
END_TEST

START_TEST(test_metrics_http_split_and_pipelined)
{
	struct fake_sup f = {.text = "denali_services 1\n"};
	struct metrics_http *m = open_server(&f);
	/* A request in pieces. */
	int fd = dial(m);
	static const char *const pieces[] = {"GE",	"T /metr", "ics HTTP/1.1\r\nHo",
					     "st: x\r", "\n\r",	   "\n"};
	for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		ck_assert_uint_eq(f.wants, 0);
		send_text(fd, pieces[i]);
		for (int r = 0; r < 3; r++)
			serve_round(m, 0);
	}
	ck_assert_uint_eq(f.wants, 1);
	ck_assert_str_eq(receive(m, fd), ok_answer);
	close(fd);
	/* Garbage and more requests after a good one: one answer, then the end. */
	ck_assert_str_eq(exchange(m, "GET /metrics HTTP/1.1\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n"
				     "\x01\x02garbage\r\n\r\nPOST / HTTP/1.1\r\n\r\n"),
			 ok_answer);
	ck_assert_uint_eq(f.wants, 2);
	/* Garbage first: 400, the request after it is never seen. */
	const char *got = exchange(m, "\x16\x03\x01garbage\r\nGET /metrics HTTP/1.1\r\n\r\n");
	ck_assert_msg(strncmp(got, "HTTP/1.1 400 Bad Request\r\n", 26) == 0, "%s", got);
	ck_assert_uint_eq(f.wants, 2);
	metrics_http_close(m);
}
END_TEST

START_TEST(test_metrics_http_gone_and_limits)
{
	struct fake_sup f = {.text = "denali_services 1\n", .defer = 1};
	struct metrics_http *m = open_server(&f);
	/* A client gone before its answer: the answer is written to nobody, safely. */
	int fd = dial(m);
	send_text(fd, "GET /metrics HTTP/1.1\r\n\r\n");
	for (int i = 0; i < 50 && f.wants < 1; i++)
		serve_round(m, 0);
	ck_assert_uint_eq(f.wants, 1);
	close(fd);
	serve_round(m, 0);
	metrics_http_answer(m, f.last, strdup("late\n"));
	for (int i = 0; i < 5; i++)
		serve_round(m, 0);
	/* Gone, dropped as idle, its slot taken by another: the old answer does not reach the
	 * new client. */
	fd = dial(m);
	send_text(fd, "GET /metrics HTTP/1.1\r\n\r\n");
	for (int i = 0; i < 50 && f.wants < 2; i++)
		serve_round(m, 0);
	ck_assert_uint_eq(f.wants, 2);
	unsigned old = f.last;
	close(fd);
	serve_round(m, mono_now() + 2 * METRICS_HTTP_IDLE_NS); /* dropped */
	fd = dial(m);
	send_text(fd, "GET /metrics HTTP/1.1\r\n\r\n");
	for (int i = 0; i < 50 && f.wants < 3; i++)
		serve_round(m, 0);
	ck_assert_uint_eq(f.wants, 3);
	ck_assert_uint_ne(f.last, old);
	ck_assert_uint_eq(f.last & 0xff, old & 0xff); /* the same slot */
	metrics_http_answer(m, old, strdup("stale\n"));
	metrics_http_answer(m, 0xffffffu, strdup("no such slot\n"));
	metrics_http_answer(m, f.last, strdup("denali_services 1\n"));
	ck_assert_str_eq(receive(m, fd), ok_answer);
	close(fd);
	/* More clients than allowed: the surplus is closed at once; the others are served. */
	f.defer = 0;
	int fds[METRICS_HTTP_CLIENTS_MAX + 1];
	for (unsigned i = 0; i <= METRICS_HTTP_CLIENTS_MAX; i++) {
		fds[i] = dial(m);
		serve_round(m, 0);
		serve_round(m, 0);
	}
	struct pollfd me = {.fd = fds[METRICS_HTTP_CLIENTS_MAX], .events = POLLIN};
	ck_assert_int_eq(poll(&me, 1, 1000), 1);
	char b;
	ck_assert_int_le(read(fds[METRICS_HTTP_CLIENTS_MAX], &b, 1), 0);
	send_text(fds[0], "GET /metrics HTTP/1.1\r\n\r\n");
	ck_assert_str_eq(receive(m, fds[0]), ok_answer);
	for (unsigned i = 0; i <= METRICS_HTTP_CLIENTS_MAX; i++)
		close(fds[i]);
	/* A client that sends nothing, and one that sends half a head, are dropped after the
	 * idle time. */
	for (int i = 0; i < 5; i++)
		serve_round(m, 0); /* the closed ones go */
	int64_t t0 = mono_now();
	int quiet = dial(m), slow = dial(m);
	for (int i = 0; i < 3; i++)
		serve_round(m, t0);
	send_text(slow, "GET /metrics HTTP/1.1\r\nHost");
	serve_round(m, t0 + METRICS_HTTP_IDLE_NS / 2);
	serve_round(m, t0 + METRICS_HTTP_IDLE_NS + 1);
	ck_assert_int_eq(read(quiet, &b, 1), 0); /* closed by the server */
	ck_assert_int_eq(read(slow, &b, 1), 0);
	close(quiet);
	close(slow);
	metrics_http_close(m);
}
END_TEST

/* An answer larger than the socket takes at once: written in parts as the client reads;
 * a client that stops reading is dropped once the answer made no progress for the idle
 * time. */
START_TEST(test_metrics_http_large)
{
	size_t big = 8u << 20;
	char *text = malloc(big + 1);
	memset(text, 'x', big);
	text[big] = '\0';
	struct fake_sup f = {.text = text};
	struct metrics_http *m = open_server(&f);
	int fd = dial(m);
	send_text(fd, "GET /metrics HTTP/1.1\r\n\r\n");
	size_t got = 0;
	char buf[65536];
	for (int round = 0; round < 4000; round++) {
		serve_round(m, 0);
		ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (r == 0)
			break;
		if (r > 0)
			got += (size_t)r;
	}
	ck_assert_uint_gt(got, big);
	ck_assert_uint_lt(got, big + 256);
	close(fd);
	/* The same from a client that never reads. */
	fd = dial(m);
	send_text(fd, "GET /metrics HTTP/1.1\r\n\r\n");
	for (int round = 0; round < 50; round++)
		serve_round(m, 0);
	ck_assert_uint_eq(f.wants, 2);
	struct pollfd fds[1 + METRICS_HTTP_CLIENTS_MAX];
	ck_assert_uint_eq(metrics_http_pollfds(m, fds), 2); /* still writing */
	serve_round(m, mono_now() + METRICS_HTTP_IDLE_NS + 1);
	ck_assert_uint_eq(metrics_http_pollfds(m, fds), 1); /* dropped */
	close(fd);
	metrics_http_close(m);
	free(text);
}
END_TEST

START_TEST(test_metrics_http_open)
{
	static const char *const bad[] = {
		"localhost:9100",  "127.0.0.1",	   "127.0.0.1:",
		"127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:+80",
		"127.0.0.1:12a",   "[::1]9100",	   "::1:9100",
		"[::1:9100",	   "1.2.3:80",	   "127.0.0.1:100000",
		"[127.0.0.1]:80",  ":9100",	   "",
		"[]:80",
	};
	char err[256];
	struct fake_sup f = {0};
	struct metrics_http_ops ops = {.ctx = &f, .want = fake_want};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		ck_assert_msg(metrics_http_open(bad[i], &ops, err, sizeof(err)) == NULL, "%s",
			      bad[i]);
		ck_assert_msg(strncmp(err, "--metrics-listen: ", 18) == 0, "%s", err);
	}
	/* A port in use is refused with the system's reason. */
	struct metrics_http *m = open_server(&f);
	char spec[64];
	snprintf(spec, sizeof(spec), "127.0.0.1:%d", metrics_http_port(m));
	ck_assert_ptr_null(metrics_http_open(spec, &ops, err, sizeof(err)));
	ck_assert_msg(strstr(err, "cannot listen on"), "%s", err);
	metrics_http_close(m);
	/* IPv6 where the host has it. */
	m = metrics_http_open("[::1]:0", &ops, err, sizeof(err));
	if (m) {
		ck_assert_int_gt(metrics_http_port(m), 0);
		metrics_http_close(m);
	}
	metrics_http_close(NULL);
}
END_TEST

/* A stats object's (and wait's) "status" is the exit status denali-run gives for that outcome
 * alone: a service killed through the control socket is 126, not 0. */
START_TEST(test_outcome_status)
{
	static const struct {
		enum vmm_outcome_kind kind;
		int status, want;
	} cases[] = {
		{VMM_OUTCOME_EXITED, 7, 7},
		{VMM_OUTCOME_EXITED, 0, 0},
		{VMM_OUTCOME_STOPPED, 0, DENALI_EXIT_STOPPED},
		{VMM_OUTCOME_TIMEOUT, 0, DENALI_EXIT_TIMEOUT},
		{VMM_OUTCOME_SIGNALED, 15, 143},
		{VMM_OUTCOME_SAVED, 0, 0},
		{VMM_OUTCOME_LOST, 0, DENALI_EXIT_HOST},
		{VMM_OUTCOME_HOST_ERROR, 0, DENALI_EXIT_HOST},
	};
	static struct vmm_plan_service ps;
	static const struct vmm_service_stats st;
	snprintf(ps.cfg.name, sizeof(ps.cfg.name), "web");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vmm_outcome o = {.kind = cases[i].kind, .status = cases[i].status};
		snprintf(o.reason, sizeof(o.reason), "killed through the control socket");
		ck_assert_int_eq(vmm_outcome_exit_status(&o), cases[i].want);
		json_t *j = vmm_stats_service_json(&ps, 0, &o, &st);
		ck_assert_int_eq(json_integer_value(json_object_get(j, "status")), cases[i].want);
		json_decref(j);
	}
}
END_TEST

/* The head check alone (the fuzz target's entry): verdicts as bytes come. */
START_TEST(test_metrics_http_check_head)
{
	static const char get[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
	ck_assert_int_eq(metrics_http_check_head(get, sizeof(get) - 1), METRICS_HEAD_GET);
	ck_assert_int_eq(metrics_http_check_head(get, sizeof(get) - 3), METRICS_HEAD_INCOMPLETE);
	ck_assert_int_eq(metrics_http_check_head(get, 0), METRICS_HEAD_INCOMPLETE);
	ck_assert_int_eq(metrics_http_check_head("GET / HTTP/1.1\n\n", 16), METRICS_HEAD_NOT_FOUND);
	ck_assert_int_eq(metrics_http_check_head("PUT /metrics HTTP/1.0\n\n", 23),
			 METRICS_HEAD_METHOD);
	/* Garbage is refused at its first line end, without waiting for the head's end. */
	ck_assert_int_eq(metrics_http_check_head("\x16\x03\x01\n", 4), METRICS_HEAD_BAD);
	ck_assert_int_eq(metrics_http_check_head("GET /metrics HTTP/1.1\nNo colon\n\n", 32),
			 METRICS_HEAD_BAD);
}
END_TEST

Suite *metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("text");
	tcase_add_test(tc, test_metrics_fixture);
	tcase_add_test(tc, test_metrics_escaping);
	tcase_add_test(tc, test_metrics_untrusted);
	tcase_add_test(tc, test_metrics_many);
	tcase_add_test(tc, test_outcome_status);
	suite_add_tcase(s, tc);
	tc = tcase_create("http");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_metrics_http_answers);
	tcase_add_test(tc, test_metrics_http_check_head);
	tcase_add_test(tc, test_metrics_http_split_and_pipelined);
	tcase_add_test(tc, test_metrics_http_gone_and_limits);
	tcase_add_test(tc, test_metrics_http_large);
	tcase_add_test(tc, test_metrics_http_open);
	suite_add_tcase(s, tc);
	return s;
}
