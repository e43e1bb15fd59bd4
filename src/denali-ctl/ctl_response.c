/* denali-ctl's side of a control response: checked, mapped to an exit status, and written
 * for people by each command's printer (an array indexed by the protocol's command id). */
#include "ctl_response.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_request.h"
#include "denali/abi.h"

#define CELL_MAX 72 /* a cell of a table, or a name in a sentence, is cut after this */

json_t *ctl_response_parse(const char *line, size_t len, char *err, size_t errlen)
{
	char q[160];
	if (memchr(line, '\0', len)) {
		snprintf(err, errlen, "the response contains a NUL byte");
		return NULL;
	}
	json_error_t jerr;
	json_t *response = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!response) {
		snprintf(err, errlen, "the response is not JSON: %s (at byte %d)",
			 ctl_printable(jerr.text, q, sizeof(q)), jerr.position);
		return NULL;
	}
	if (!json_is_object(response)) {
		snprintf(err, errlen, "the response is not a JSON object");
		json_decref(response);
		return NULL;
	}
	if (!json_is_boolean(json_object_get(response, "ok"))) {
		snprintf(err, errlen, "the response has no \"ok\": true or false");
		json_decref(response);
		return NULL;
	}
	return response;
}

int ctl_response_status(const json_t *response)
{
	if (json_is_true(json_object_get(response, "ok")))
		return CTL_EXIT_OK;
	const char *code = json_string_value(json_object_get(response, "code"));
	return code && strcmp(code, "usage") == 0 ? CTL_EXIT_USAGE : CTL_EXIT_FAILED;
}

const char *ctl_response_error(const json_t *response, char *buf, size_t buflen)
{
	const char *error = json_string_value(json_object_get(response, "error"));
	return ctl_printable(error ? error : "the command failed, and the answer says no more", buf,
			     buflen);
}

const char *ctl_response_failure(const char *cmd, const json_t *response, char *buf, size_t buflen)
{
	char error[1024];
	ctl_response_error(response, error, sizeof(error));
	size_t n = strlen(cmd);
	int said = strncmp(error, cmd, n) == 0 && error[n] == ':' && error[n + 1] == ' ';
	snprintf(buf, buflen, "%s%s%s", said ? "" : cmd, said ? "" : ": ", error);
	return buf;
}

/* ---- values from the response, each checked ---- */

static int get_uint(const json_t *obj, const char *key, uint64_t *out)
{
	json_t *v = json_object_get(obj, key);
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int get_seconds(const json_t *obj, const char *key, double *out)
{
	json_t *v = json_object_get(obj, key);
	if (!json_is_number(v) || !isfinite(json_number_value(v)) || json_number_value(v) < 0)
		return -1;
	*out = json_number_value(v);
	return 0;
}

static void text_cell(const json_t *obj, const char *key, char *buf, size_t len)
{
	const char *s = json_string_value(json_object_get(obj, key));
	ctl_printable(s ? s : "-", buf, len);
}

static void uint_cell(const json_t *obj, const char *key, char *buf, size_t len)
{
	uint64_t v;
	if (get_uint(obj, key, &v) == 0)
		snprintf(buf, len, "%llu", (unsigned long long)v);
	else
		snprintf(buf, len, "-");
}

/* "a/b" of two counters of the object at key ("nic": rx and tx), or "-" without it. */
static void pair_cell(const json_t *obj, const char *key, const char *a, const char *b, char *buf,
		      size_t len)
{
	const json_t *sub = json_object_get(obj, key);
	uint64_t x, y;
	if (get_uint(sub, a, &x) == 0 && get_uint(sub, b, &y) == 0)
		snprintf(buf, len, "%llu/%llu", (unsigned long long)x, (unsigned long long)y);
	else
		snprintf(buf, len, "-");
}

/* 0, 512B, 4.0K, 16M, 1.5G: binary multiples, like the sizes of service files. */
static void human_bytes(double bytes, char *buf, size_t len)
{
	static const char units[] = "BKMGTPE";
	unsigned u = 0;
	if (bytes == 0) {
		snprintf(buf, len, "0");
		return;
	}
	while (bytes >= 1024 && u + 1 < sizeof(units) - 1) {
		bytes /= 1024;
		u++;
	}
	snprintf(buf, len, u && bytes < 10 ? "%.1f%c" : "%.0f%c", bytes, units[u]);
}

/* 0.25s, 42s, 5m03s, 2h05m, 3d04h; decimals below 10 s. */
static void human_duration(double s, int decimals, char *buf, size_t len)
{
	if (s < 10) {
		snprintf(buf, len, "%.*fs", decimals, s);
		return;
	}
	if (s < 60) {
		snprintf(buf, len, "%.0fs", floor(s));
		return;
	}
	uint64_t t = s < 1e15 ? (uint64_t)s : (uint64_t)1e15;
	if (t < 3600)
		snprintf(buf, len, "%um%02us", (unsigned)(t / 60), (unsigned)(t % 60));
	else if (t < 86400)
		snprintf(buf, len, "%uh%02um", (unsigned)(t / 3600), (unsigned)(t / 60 % 60));
	else
		snprintf(buf, len, "%llud%02uh", (unsigned long long)(t / 86400),
			 (unsigned)(t / 3600 % 24));
}

static void pages_cell(const json_t *obj, const char *key, char *buf, size_t len)
{
	uint64_t pages;
	if (get_uint(obj, key, &pages) == 0)
		human_bytes((double)pages * DN_PAGE_SIZE, buf, len);
	else
		snprintf(buf, len, "-");
}

static void seconds_cell(const json_t *obj, const char *key, char *buf, size_t len)
{
	double s;
	if (get_seconds(obj, key, &s) == 0)
		human_duration(s, 0, buf, len);
	else
		snprintf(buf, len, "-");
}

/* ---- tables: rows of cells, each column as wide as its widest cell ---- */

#define TABLE_COLS_MAX 10

struct table {
	unsigned ncols;
	const char *const *headers;
	const char *right; /* 'r' for a right-aligned (number) column, per column */
	char (*cells)[TABLE_COLS_MAX][CELL_MAX];
	size_t nrows;
};

static int table_init(struct table *t, unsigned ncols, const char *const *headers,
		      const char *right, size_t nrows)
{
	*t = (struct table){.ncols = ncols, .headers = headers, .right = right};
	t->cells = calloc(nrows ? nrows : 1, sizeof(*t->cells));
	return t->cells ? 0 : -1;
}

static void table_print_row(const struct table *t, FILE *out, const size_t *width,
			    const char *const *row)
{
	for (unsigned c = 0; c < t->ncols; c++) {
		int w = (int)width[c];
		if (c + 1 == t->ncols && t->right[c] != 'r')
			fprintf(out, "%s", row[c]); /* no trailing blanks */
		else
			fprintf(out, t->right[c] == 'r' ? "%*s" : "%-*s", w, row[c]);
		fputs(c + 1 == t->ncols ? "\n" : "  ", out);
	}
}

static void table_print(const struct table *t, FILE *out)
{
	size_t width[TABLE_COLS_MAX];
	const char *row[TABLE_COLS_MAX];
	for (unsigned c = 0; c < t->ncols; c++) {
		width[c] = strlen(t->headers[c]);
		for (size_t r = 0; r < t->nrows; r++)
			if (strlen(t->cells[r][c]) > width[c])
				width[c] = strlen(t->cells[r][c]);
	}
	table_print_row(t, out, width, t->headers);
	for (size_t r = 0; r < t->nrows; r++) {
		for (unsigned c = 0; c < t->ncols; c++)
			row[c] = t->cells[r][c];
		table_print_row(t, out, width, row);
	}
}

static int list_table(const json_t *response, FILE *out)
{
	static const char *const headers[] = {"NAME",	"STATE",    "CELL",
					      "UPTIME", "RESIDENT", "SWAPPED"};
	const json_t *services = json_object_get(response, "services");
	struct table t;
	if (table_init(&t, 6, headers, "--rrrr", json_array_size(services)) != 0)
		return -1;
	size_t i;
	const json_t *svc;
	json_array_foreach (services, i, svc) {
		char(*row)[CELL_MAX] = t.cells[t.nrows++];
		text_cell(svc, "name", row[0], CELL_MAX);
		text_cell(svc, "state", row[1], CELL_MAX);
		uint_cell(svc, "cell", row[2], CELL_MAX);
		seconds_cell(svc, "uptime_s", row[3], CELL_MAX);
		pages_cell(svc, "resident_pages", row[4], CELL_MAX);
		pages_cell(svc, "swapped_pages", row[5], CELL_MAX);
	}
	table_print(&t, out);
	free(t.cells);
	return 0;
}

/* All the hypercalls a service made, whatever their names. */
static void hypercalls_cell(const json_t *svc, char *buf, size_t len)
{
	json_t *calls = json_object_get(svc, "hypercalls");
	const char *key;
	const json_t *v;
	uint64_t sum = 0;
	if (!json_is_object(calls)) {
		snprintf(buf, len, "-");
		return;
	}
	json_object_foreach (calls, key, v) {
		if (json_is_integer(v) && json_integer_value(v) > 0)
			sum += (uint64_t)json_integer_value(v);
	}
	snprintf(buf, len, "%llu", (unsigned long long)sum);
}

static int stats_table(const json_t *response, FILE *out)
{
	static const char *const headers[] = {"NAME",	    "OUTCOME",	"CPU",
					      "HYPERCALLS", "EVENTS",	"PEAK",
					      "NET_RX/TX",  "DISK_R/W", "SWAP_OUT/IN"};
	const json_t *services = json_object_get(response, "services");
	struct table t;
	if (table_init(&t, 9, headers, "--rrrrrrr", json_array_size(services)) != 0)
		return -1;
	size_t i;
	const json_t *svc;
	json_array_foreach (services, i, svc) {
		char(*row)[CELL_MAX] = t.cells[t.nrows++];
		uint64_t v;
		text_cell(svc,
			  json_is_string(json_object_get(svc, "outcome")) ? "outcome" : "state",
			  row[1], CELL_MAX);
		text_cell(svc, "name", row[0], CELL_MAX);
		if (get_uint(svc, "cpu_ns", &v) == 0)
			human_duration((double)v / 1e9, 2, row[2], CELL_MAX);
		else
			snprintf(row[2], CELL_MAX, "-");
		hypercalls_cell(svc, row[3], CELL_MAX);
		uint_cell(svc, "events_delivered", row[4], CELL_MAX);
		if (get_uint(svc, "resident_peak_bytes", &v) == 0)
			human_bytes((double)v, row[5], CELL_MAX);
		else
			snprintf(row[5], CELL_MAX, "-");
		pair_cell(svc, "nic", "rx_frames", "tx_frames", row[6], CELL_MAX);
		pair_cell(svc, "disk", "reads", "writes", row[7], CELL_MAX);
		pair_cell(svc, "swap", "outs", "ins", row[8], CELL_MAX);
	}
	table_print(&t, out);
	free(t.cells);
	return 0;
}

/* The exposition as it came, but for control characters other than newline and tab: C0, DEL
 * and C1. The text is valid UTF-8 (jansson checks it), so a C1 control is the pair C2 80-9F,
 * and becomes one '?'. */
static int metrics_text(const json_t *response, FILE *out)
{
	const char *text = json_string_value(json_object_get(response, "text"));
	size_t len = text ? json_string_length(json_object_get(response, "text")) : 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c == 0xc2 && i + 1 < len && (unsigned char)text[i + 1] <= 0x9f) {
			fputc('?', out); /* U+0080-U+009F */
			i++;
			continue;
		}
		fputc(c == '\n' || c == '\t' || (c >= 0x20 && c != 0x7f) ? c : '?', out);
	}
	if (len && text[len - 1] != '\n')
		fputc('\n', out);
	return 0;
}

static int wait_sentence(const json_t *response, FILE *out)
{
	char name[CELL_MAX], outcome[CELL_MAX];
	text_cell(response, "name", name, sizeof(name));
	text_cell(response, "outcome", outcome, sizeof(outcome));
	json_t *status = json_object_get(response, "status");
	if (json_is_integer(status))
		fprintf(out, "%s ended: %s, status %lld\n", name, outcome,
			(long long)json_integer_value(status));
	else
		fprintf(out, "%s ended: %s\n", name, outcome);
	return 0;
}

static int budget_sentence(const json_t *response, FILE *out)
{
	uint64_t bytes;
	char size[CELL_MAX];
	if (get_uint(response, "budget_bytes", &bytes) != 0)
		fprintf(out, "memory budget set\n");
	else if (bytes == 0)
		fprintf(out, "memory budget: none\n");
	else {
		human_bytes((double)bytes, size, sizeof(size));
		fprintf(out, "memory budget: %s (%llu bytes)\n", size, (unsigned long long)bytes);
	}
	return 0;
}

static int shutdown_sentence(const json_t *response, FILE *out)
{
	(void)response;
	fprintf(out, "the fleet is stopping\n");
	return 0;
}

/* How a command's answer is printed for people: by a function, or as a sentence around the
 * service's name (before NAME after). */
struct printer {
	int (*print)(const json_t *response, FILE *out);
	const char *before, *after;
	int text; /* the answer is a text: printed as it is even without --table */
};

static const struct printer printers[CTL_CMD_COUNT] = {
	[CTL_LIST] = {.print = list_table},
	[CTL_STATS] = {.print = stats_table},
	[CTL_START] = {.before = "started ", .after = ""},
	[CTL_STOP] = {.before = "stopping ", .after = ""},
	[CTL_KILL] = {.before = "killed ", .after = ""},
	[CTL_SWAP_OUT] = {.before = "", .after = " will be swapped out at its next idle"},
	[CTL_SWAP_IN] = {.before = "", .after = " is awake"},
	[CTL_BUDGET] = {.print = budget_sentence},
	[CTL_WAIT] = {.print = wait_sentence},
	[CTL_METRICS] = {.print = metrics_text, .text = 1},
	[CTL_SHUTDOWN] = {.print = shutdown_sentence},
};

/* The printer of the command named cmd, or NULL. */
static const struct printer *printer_of(const char *cmd)
{
	const struct ctl_command *c = ctl_command_find(cmd);
	const struct printer *p = c ? &printers[ctl_command_id(c)] : NULL;
	return p && (p->print || p->before) ? p : NULL;
}

int ctl_response_is_text(const char *cmd)
{
	const struct printer *p = printer_of(cmd);
	return p && p->text;
}

int ctl_response_printable(const char *cmd)
{
	return printer_of(cmd) != NULL;
}

char *ctl_response_format(const char *cmd, const json_t *response)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	if (!out)
		return NULL;
	const struct printer *p = printer_of(cmd);
	char name[CELL_MAX];
	int rc = 0;
	if (p && p->print) {
		rc = p->print(response, out);
	} else if (p) {
		text_cell(response, "name", name, sizeof(name));
		fprintf(out, "%s%s%s\n", p->before, name, p->after);
	} else {
		fprintf(out, "done\n");
	}
	if (ferror(out))
		rc = -1;
	if (fclose(out) != 0 || rc != 0) {
		free(text);
		return NULL;
	}
	return text;
}
