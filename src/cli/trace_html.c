/*
** trace_html.c -- `eddyfs trace --html`: the timeline as one self-contained
** page (inline CSS and SVG, no script, nothing fetched: it opens offline).
** One lane for the truth (each publication is a moment the backing
** directory changed) and one per client: its drops, cache answers, delayed
** changes with their stale window as a bar up to the publication, and its
** failures; every mark has a <title> tooltip. The page is well-formed XML
** as well as HTML.
*/
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "trace.h"

#define SVG_W    1200.0
#define LEFT     120.0
#define RIGHT    20.0
#define TOP      20.0
#define LANE_H   46.0

static const char page_css[] =
	"body{font:14px sans-serif;margin:1.5em;color:#222}"
	"h1{font-size:1.3em}table{border-collapse:collapse;margin:1em 0}"
	"td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
	"th:first-child,td:first-child{text-align:left}"
	".lane{fill:#f6f6f6}.lane.truth{fill:#eef6ee}.lname{font:bold 13px sans-serif}"
	".axis{stroke:#999}.tick{font:11px sans-serif;fill:#555}.grid{stroke:#e0e0e0}"
	".drop{fill:#d62728}.stale{fill:#ff7f0e}.delay{fill:#1f77b4}"
	".pub{fill:#2ca02c}.bad{fill:#9467bd}.win{fill:#1f77b4;opacity:.18}"
	".tpub{stroke:#2ca02c;stroke-width:2}.tbad{stroke:#9467bd;stroke-width:2}"
	".legend{font:12px sans-serif}";

struct scale {
	double t0, t1;          /* the window shown, ms */
	double width;           /* of the plot */
};

static double sx(const struct scale *s, double t)
{
	if (t < s->t0)
		t = s->t0;
	if (t > s->t1)
		t = s->t1;
	return LEFT + (t - s->t0) / (s->t1 - s->t0) * s->width;
}

static double lane_y(size_t lane)
{
	return TOP + (double)lane * LANE_H;
}

/* Text for XML: markup characters escaped, control characters dropped. */
static void xml_text(FILE *out, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", out); break;
		case '<': fputs("&lt;", out); break;
		case '>': fputs("&gt;", out); break;
		case '"': fputs("&quot;", out); break;
		case '\'': fputs("&#39;", out); break;
		default:
			if ((unsigned char)*s >= 0x20 && *s != 0x7f)
				fputc(*s, out);
			else
				fputc('?', out);
		}
	}
}

static const char *mark_class(enum trace_kind k)
{
	switch (k) {
	case TK_DROP: return "drop";
	case TK_CACHED: case TK_ABSENT: return "stale";
	case TK_DELAY: return "delay";
	case TK_PUBLISHED: return "pub";
	default: return "bad";
	}
}

static void title(FILE *out, const struct trace *tr, const struct trace_event *e)
{
	char desc[256];

	trace_describe(e, desc, sizeof(desc));
	fputs("<title>", out);
	xml_text(out, tr->cl[e->client].id);
	fprintf(out, " at %.3f s: %c ", e->t / 1000.0, trace_kind_mark(e->kind));
	xml_text(out, desc);
	fprintf(out, " (%s, seq %llu)</title>", trace_kind_name(e->kind),
		(unsigned long long)e->seq);
}

/* The mark of E in its client's lane: a shape per kind. */
static void client_mark(FILE *out, const struct trace *tr, const struct scale *s,
			const struct trace_event *e)
{
	double x = sx(s, e->t), y = lane_y(e->client + 1) + LANE_H / 2;
	const char *cls = mark_class(e->kind);

	if (e->kind == TK_DROP) {
		fprintf(out, "<circle class=\"%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"4.5\">", cls, x, y);
		title(out, tr, e);
		fputs("</circle>\n", out);
	} else if (e->kind == TK_CACHED || e->kind == TK_ABSENT) {
		fprintf(out, "<rect class=\"%s\" x=\"%.1f\" y=\"%.1f\" width=\"7\" height=\"7\">",
			cls, x - 3.5, y - 14);
		title(out, tr, e);
		fputs("</rect>\n", out);
	} else if (e->kind == TK_DELAY) {
		fprintf(out, "<rect class=\"%s\" x=\"%.1f\" y=\"%.1f\" width=\"2.5\" height=\"16\">",
			cls, x - 1.25, y - 8);
		title(out, tr, e);
		fputs("</rect>\n", out);
	} else {
		double d = e->kind == TK_PUBLISHED ? 5.5 : 6;

		if (e->kind == TK_PUBLISHED)
			fprintf(out, "<polygon class=\"%s\" points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f "
				"%.1f,%.1f\">", cls, x, y - d, x + d, y, x, y + d, x - d, y);
		else
			fprintf(out, "<polygon class=\"%s\" points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f\">",
				cls, x, y + 4 - 2 * d, x + d, y + 4, x - d, y + 4);
		title(out, tr, e);
		fputs("</polygon>\n", out);
	}
}

/* The stale window of a change: a bar from its making to its fate. */
static void window_bar(FILE *out, const struct trace *tr, const struct scale *s,
		       const struct trace_event *e)
{
	double x0 = sx(s, e->made), x1 = sx(s, e->t), y = lane_y(e->client + 1);
	char what[160];

	if (e->name)
		snprintf(what, sizeof(what), "%s %s", e->op, e->name);
	else
		snprintf(what, sizeof(what), "%s #%llu", e->op, (unsigned long long)e->ino);
	fprintf(out, "<rect class=\"win\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\">"
		"<title>", x0, y + 6, x1 - x0 > 1 ? x1 - x0 : 1, LANE_H - 12);
	xml_text(out, tr->cl[e->client].id);
	fputs(": ", out);
	xml_text(out, what);
	fprintf(out, " made at %.3f s, %s at %.3f s: the others saw the old state for %.0f ms"
		"</title></rect>\n", e->made / 1000.0, trace_kind_name(e->kind), e->t / 1000.0,
		e->t - e->made);
}

/* The truth's lane: the moments the backing directory changed. */
static void truth_mark(FILE *out, const struct trace *tr, const struct scale *s,
		       const struct trace_event *e)
{
	char desc[256];
	double x = sx(s, e->t), y = lane_y(0);
	bool changed = e->kind == TK_PUBLISHED || e->kind == TK_TORN || e->kind == TK_SILLY;

	trace_describe(e, desc, sizeof(desc));
	fprintf(out, "<line class=\"%s\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\">"
		"<title>", changed ? "tpub" : "tbad", x, y + 6, x, y + LANE_H - 6);
	fprintf(out, "%.3f s: ", e->t / 1000.0);
	fputs(changed ? "the truth changed: " : "the truth did not change: ", out);
	xml_text(out, tr->cl[e->client].id);
	fputs(" ", out);
	xml_text(out, desc);
	fputs("</title></line>\n", out);
}

static double tick_step(double range)
{
	double raw = range / 10, p = pow(10, floor(log10(raw))), m = raw / p;

	return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static void axis(FILE *out, const struct scale *s, size_t lanes)
{
	double step = tick_step(s->t1 - s->t0), t, yb = lane_y(lanes);

	fprintf(out, "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n",
		LEFT, yb, LEFT + s->width, yb);
	for (t = ceil(s->t0 / step) * step; t <= s->t1 + step / 1000; t += step) {
		double x = sx(s, t);

		fprintf(out, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
			"<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.*f s"
			"</text>\n", x, TOP, x, yb + 4, x, yb + 16, step >= 1000 ? 0 : step >= 100 ? 1 :
			step >= 10 ? 2 : 3, t / 1000.0);
	}
}

static void lanes(FILE *out, const struct trace *tr)
{
	size_t i;

	for (i = 0; i <= tr->ncl; i++) {
		double y = lane_y(i);

		fprintf(out, "<rect class=\"lane%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
			"height=\"%.1f\"/>\n<text class=\"lname\" x=\"8\" y=\"%.1f\">",
			i ? "" : " truth", LEFT, y + 2, SVG_W - LEFT - RIGHT, LANE_H - 4,
			y + LANE_H / 2 + 4);
		if (i)
			xml_text(out, tr->cl[i - 1].id);
		else
			fputs("the truth", out);
		fputs("</text>\n", out);
	}
}

static void legend(FILE *out, double y)
{
	static const struct { const char *cls, *text; } items[] = {
		{ "drop", "D dropped" }, { "stale", "S answered from cache" },
		{ "delay", "~ change delayed" }, { "win", "stale window" },
		{ "pub", "P published / truth changed" }, { "bad", "! failed, lost, torn, silly" },
	};
	size_t i;

	for (i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
		double x = LEFT + (double)i * 175;

		fprintf(out, "<rect class=\"%s\" x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"10\"/>"
			"<text class=\"legend\" x=\"%.1f\" y=\"%.1f\">%s</text>\n", items[i].cls, x,
			y, x + 14, y + 9, items[i].text);
	}
}

static void svg(FILE *out, const struct trace *tr)
{
	struct scale s = { tr->from, tr->to >= 0 ? tr->to : tr->t_end, SVG_W - LEFT - RIGHT };
	double h = lane_y(tr->ncl + 1) + 50;
	size_t i;

	if (s.t1 <= s.t0)
		s.t1 = s.t0 + 1;
	fprintf(out, "<svg width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
		"role=\"img\">\n", SVG_W, h, SVG_W, h);
	lanes(out, tr);
	axis(out, &s, tr->ncl + 1);
	for (i = 0; i < tr->nev; i++) {
		const struct trace_event *e = &tr->ev[i];

		/* a window that overlaps the shown time */
		if (e->made >= 0 && e->made <= s.t1 && e->t >= s.t0)
			window_bar(out, tr, &s, e);
	}
	for (i = 0; i < tr->nev; i++) {
		const struct trace_event *e = &tr->ev[i];

		if (!trace_shown(tr, e) || e->kind == TK_PASS || e->kind == TK_START)
			continue;
		client_mark(out, tr, &s, e);
		if (e->kind == TK_PUBLISHED || e->kind == TK_PUBFAIL || e->kind == TK_TORN ||
		    e->kind == TK_SILLY)
			truth_mark(out, tr, &s, e);
	}
	legend(out, h - 22);
	fputs("</svg>\n", out);
}

static void summary(FILE *out, const struct trace *tr)
{
	enum trace_kind k;
	size_t c;

	fputs("<table>\n<tr><th>decision</th>", out);
	for (c = 0; c < tr->ncl; c++) {
		fputs("<th>", out);
		xml_text(out, tr->cl[c].id);
		fputs("</th>", out);
	}
	fputs("</tr>\n", out);
	for (k = TK_DROP; k < TK_NKINDS; k++) {
		fprintf(out, "<tr><td>%c %s</td>", trace_kind_mark(k), trace_kind_name(k));
		for (c = 0; c < tr->ncl; c++)
			fprintf(out, "<td>%zu</td>", tr->cl[c].count[k]);
		fputs("</tr>\n", out);
	}
	fputs("<tr><td>stale window, ms (min / mean / max)</td>", out);
	for (c = 0; c < tr->ncl; c++) {
		const struct trace_client *cl = &tr->cl[c];

		if (cl->nwin)
			fprintf(out, "<td>%.0f / %.0f / %.0f</td>", cl->win_min,
				cl->win_sum / (double)cl->nwin, cl->win_max);
		else
			fputs("<td>-</td>", out);
	}
	fputs("</tr>\n</table>\n", out);
}

int trace_html(FILE *out, const struct trace *tr)
{
	size_t c;

	fprintf(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
		"<title>eddyfs trace</title>\n<style>%s</style>\n</head>\n<body>\n"
		"<h1>eddyfs trace: %zu client%s</h1>\n<p>", page_css, tr->ncl,
		tr->ncl == 1 ? "" : "s");
	for (c = 0; c < tr->ncl; c++) {
		fputs(c ? ", " : "Clients: ", out);
		xml_text(out, tr->cl[c].id);
		fputs(" (", out);
		xml_text(out, tr->cl[c].file);
		if (tr->cl[c].started)
			fprintf(out, ", seed %llu", tr->cl[c].seed);
		fputs(")", out);
	}
	fprintf(out, ". Times in seconds since %s; hover a mark for its details.</p>\n",
		tr->relative ? "each client's mount (a log had no start line)" :
		"the first client's mount");
	svg(out, tr);
	summary(out, tr);
	fputs("</body>\n</html>\n", out);
	return ferror(out) ? -1 : 0;
}
