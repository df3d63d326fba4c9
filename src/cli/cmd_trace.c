/*
** cmd_trace.c -- `eddyfs trace [--html OUT] [--from MS] [--to MS] LOG...`:
** the decision logs of chaos clients as one timeline. In the terminal: one
** column per client with a mark for each moment that matters (drop, stale
** answer from the cache, delayed change, publication, failure), then a
** summary per client; with --html also a self-contained page (trace_html.c).
** Reading and pairing the logs: trace_load.c.
*/
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "trace.h"

static const char trace_usage[] =
	"Usage: eddyfs trace [--html OUT.html] [--from MS] [--to MS] [--width N] LOG...\n"
	"\n"
	"Merge the decision logs of chaos clients (mount --decision-log; one\n"
	"log per client, or one file with several) into one timeline: per\n"
	"client, what it was told next to what the truth (the backing\n"
	"directory) got, with the stale and faulted moments marked:\n"
	"  D  an operation dropped (failed on purpose), with its errno\n"
	"  S  an answer served from the client's cache (maybe stale)\n"
	"  ~  a change held back (write-delay, rename-delay)\n"
	"  P  a change published: the truth changed (+ how long it was late)\n"
	"  !  a publication failed, a change lost or torn, a replay diverged,\n"
	"     an nfs silly rename\n"
	"  ?  a decision this version does not know (counted as other)\n"
	"Then per client: counts per decision and the stale windows (from a\n"
	"change being made to its publication). Times are seconds since the\n"
	"first client's mount (since each client's own mount for logs without\n"
	"a start line).\n"
	"\n"
	"Options:\n"
	"  --html OUT     also write the timeline as a self-contained HTML page\n"
	"                 (inline SVG, opens offline; - for stdout)\n"
	"  --from MS      show only what happened from MS milliseconds on\n"
	"  --to MS        ... and up to MS milliseconds\n"
	"  --width N      text width (default: $COLUMNS, else 100)\n"
	"  -h, --help     show this help\n"
	"\n"
	"Exit status: 0 success, 1 failure, 2 bad usage or a bad log.\n";

struct trace_opts {
	const char *html;
	double from, to;
	long width;
};

/* Non-negative milliseconds. */
static int parse_ms(const char *what, const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < 0) {
		cli_error("trace: %s: '%s' is not a number of milliseconds", what, s);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int default_width(void)
{
	const char *c = getenv("COLUMNS");
	long w = c ? strtol(c, NULL, 10) : 0;

	return w >= 60 && w <= 400 ? (int)w : 100;
}

/* 0, a usage error (EXIT_USAGE) or -1 for --help. */
static int parse_opts(int argc, char **argv, struct trace_opts *o)
{
	static const struct option longopts[] = {
		{ "html", required_argument, NULL, 'H' },
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },
		{ "width", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	o->to = -1;
	o->width = default_width();
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (c == 'h') {
			fputs(trace_usage, stdout);
			return -1;
		} else if (c == 'H') {
			o->html = optarg;
		} else if (c == 'f' || c == 't') {
			if (parse_ms(c == 'f' ? "--from" : "--to", optarg, c == 'f' ? &o->from : &o->to))
				return EXIT_USAGE;
		} else if (c == 'w') {
			if (cli_parse_int("trace: --width", optarg, 40, 1000, &o->width))
				return EXIT_USAGE;
		} else {
			cli_error("trace: bad option %s (see eddyfs trace --help)", argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		cli_error("trace: no decision log given (see eddyfs trace --help)");
		return EXIT_USAGE;
	}
	if (o->to >= 0 && o->to < o->from) {
		cli_error("trace: --to is before --from");
		return EXIT_USAGE;
	}
	return 0;
}

/****************************** the text timeline ******************************/

struct layout {
	int timew;      /* the time column */
	int colw;       /* each client's column */
};

static struct layout layout_for(const struct trace *tr, int width)
{
	struct layout l = { 10, 0 };
	int n = tr->ncl ? (int)tr->ncl : 1;

	l.colw = (width - l.timew) / n - 3;
	if (l.colw < 14)
		l.colw = 14;
	if (l.colw > 48)
		l.colw = 48;
	return l;
}

static void print_row(FILE *out, const struct layout *l, const char *time, char **cells,
		      size_t n)
{
	size_t i;

	fprintf(out, "%*s", l->timew, time);
	for (i = 0; i < n; i++) {
		if (i + 1 < n || cells[i][0])
			fprintf(out, " | %-*.*s", i + 1 < n ? l->colw : 0, l->colw, cells[i]);
		else
			fputs(" |", out);
	}
	fputc('\n', out);
}

static void print_header(FILE *out, const struct trace *tr, const struct layout *l)
{
	size_t i;
	int j;
	double end = tr->to >= 0 ? tr->to : tr->t_end > tr->from ? tr->t_end : tr->from;

	fprintf(out, "eddyfs trace: %zu client%s, %zu decisions, %.3fs to %.3fs%s\n", tr->ncl,
		tr->ncl == 1 ? "" : "s", tr->nev, tr->from / 1000.0, end / 1000.0,
		tr->relative ? " (each client's time since its mount)" : "");
	for (i = 0; i < tr->ncl; i++) {
		fprintf(out, "  %s: %s", tr->cl[i].id, tr->cl[i].file);
		if (tr->cl[i].started)
			fprintf(out, ", seed %llu", tr->cl[i].seed);
		fputc('\n', out);
	}
	fputs("marks: D dropped  S from cache (maybe stale)  ~ delayed  P published (+late)"
	      "  ! failed/lost/torn/diverged\n\n", out);
	fprintf(out, "%*s", l->timew, "time (s)");
	for (i = 0; i < tr->ncl; i++)
		fprintf(out, " | %-*.*s", i + 1 < tr->ncl ? l->colw : 0, l->colw, tr->cl[i].id);
	fputc('\n', out);
	for (j = 0; j < l->timew; j++)
		fputc('-', out);
	for (i = 0; i < tr->ncl; i++) {
		fputs("-+-", out);
		for (j = 0; j < l->colw; j++)
			fputc('-', out);
	}
	fputc('\n', out);
}

static bool on_timeline(const struct trace *tr, const struct trace_event *e)
{
	return e->kind != TK_PASS && e->kind != TK_START && trace_shown(tr, e);
}

/* One row per moment: events at the same millisecond share a row while
** their clients' cells are free. */
static int print_timeline(FILE *out, const struct trace *tr, const struct layout *l)
{
	char **cells = calloc(tr->ncl ? tr->ncl : 1, sizeof(*cells));
	char time[32] = "", cur[32], desc[200];
	size_t i, c, rows = 0;
	bool open = false;
	int r = 0;

	for (c = 0; cells && c < tr->ncl; c++)
		if (!(cells[c] = calloc(1, (size_t)l->colw + 1)))
			r = -1;
	if (!cells || r < 0)
		r = -1;
	for (i = 0; r == 0 && i < tr->nev; i++) {
		const struct trace_event *e = &tr->ev[i];

		if (!on_timeline(tr, e))
			continue;
		snprintf(cur, sizeof(cur), "%.3f", e->t / 1000.0);
		if (open && (strcmp(cur, time) || cells[e->client][0])) {
			print_row(out, l, time, cells, tr->ncl);
			for (c = 0; c < tr->ncl; c++)
				cells[c][0] = 0;
			rows++;
		}
		open = true;
		memcpy(time, cur, sizeof(time));
		trace_describe(e, desc, sizeof(desc));
		snprintf(cells[e->client], (size_t)l->colw + 1, "%c %s", trace_kind_mark(e->kind),
			 desc);
	}
	if (r == 0 && open) {
		print_row(out, l, time, cells, tr->ncl);
		rows++;
	}
	if (r == 0 && !rows)
		fputs("  (nothing but passed operations in this window)\n", out);
	for (c = 0; cells && c < tr->ncl; c++)
		free(cells[c]);
	free(cells);
	return r;
}

static void print_counts(FILE *out, const struct trace *tr)
{
	static const enum trace_kind rows[] = {
		TK_PASS, TK_DROP, TK_CACHED, TK_ABSENT, TK_DELAY, TK_PUBLISHED, TK_PUBFAIL,
		TK_LOST, TK_TORN, TK_DIVERGED, TK_SILLY, TK_OTHER,
	};
	size_t i, c;

	fprintf(out, "\nsummary %-16s", "");
	for (c = 0; c < tr->ncl; c++)
		fprintf(out, " %10.10s", tr->cl[c].id);
	fputc('\n', out);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char label[40];

		snprintf(label, sizeof(label), "%c %s", trace_kind_mark(rows[i]),
			 trace_kind_name(rows[i]));
		fprintf(out, "  %-22s", label);
		for (c = 0; c < tr->ncl; c++)
			fprintf(out, " %10zu", tr->cl[c].count[rows[i]]);
		fputc('\n', out);
	}
}

static void print_windows(FILE *out, const struct trace *tr)
{
	size_t c;

	fputs("stale windows (a change made -> published, as the others saw it):\n", out);
	for (c = 0; c < tr->ncl; c++) {
		const struct trace_client *cl = &tr->cl[c];

		fprintf(out, "  %s: ", cl->id);
		if (cl->nwin)
			fprintf(out, "%zu change%s, %.0f to %.0f ms late, mean %.0f ms", cl->nwin,
				cl->nwin == 1 ? "" : "s", cl->win_min, cl->win_max,
				cl->win_sum / (double)cl->nwin);
		else
			fputs("no delayed change published", out);
		if (cl->pending)
			fprintf(out, "; %zu never published", cl->pending);
		fputc('\n', out);
	}
}

int trace_text(FILE *out, const struct trace *tr, int width)
{
	struct layout l = layout_for(tr, width);

	print_header(out, tr, &l);
	if (print_timeline(out, tr, &l) < 0)
		return -1;
	print_counts(out, tr);
	print_windows(out, tr);
	return ferror(out) ? -1 : 0;
}

/****************************** the command ******************************/

static int write_html(const struct trace *tr, const char *path)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "we") : stdout;
	int r;

	if (!f) {
		cli_error("trace: %s: %s", path, strerror(errno));
		return 1;
	}
	r = trace_html(f, tr);
	if (f != stdout && fclose(f) != 0)
		r = -1;
	if (r < 0) {
		cli_error("trace: writing %s failed", path);
		return 1;
	}
	return 0;
}

int cmd_trace(int argc, char **argv)
{
	struct trace tr = { 0 };
	struct trace_opts o = { 0 };
	char err[1024];
	int r, i;

	r = parse_opts(argc, argv, &o);
	if (r)
		return r < 0 ? 0 : r;
	tr.from = o.from;
	tr.to = o.to;
	for (i = optind; i < argc; i++) {
		if (trace_load(&tr, argv[i], err, sizeof(err)) < 0) {
			cli_error("trace: %s", err);
			trace_free(&tr);
			return EXIT_USAGE;
		}
	}
	if (trace_finish(&tr) < 0) {
		cli_error("trace: out of memory");
		trace_free(&tr);
		return 1;
	}
	if (tr.relative)
		cli_warn("trace: a log has no start line (older eddyfs): times are since each "
			 "client's mount, not on one clock");
	r = 0;
	if (!(o.html && !strcmp(o.html, "-")) && trace_text(stdout, &tr, (int)o.width) < 0) {
		cli_error("trace: writing the timeline failed");
		r = 1;
	}
	if (r == 0 && o.html)
		r = write_html(&tr, o.html);
	trace_free(&tr);
	return r;
}
