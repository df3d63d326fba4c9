/*
** trace_load.c -- reading decision logs for `eddyfs trace`: one JSON
** object a line (cJSON), several clients per file allowed. A log's start
** line ("decision":"start", wall_ms) gives the wall clock of its t_ms 0,
** which puts the clients on one time axis; logs without one (older
** versions) keep each client's own time since its mount. Then the events
** are sorted and each publication is paired with the delay of the change
** it published, which gives the change's stale window.
*/
#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trace.h"

static const char *const kind_names[TK_NKINDS] = {
	[TK_START] = "start", [TK_DROP] = "drop", [TK_PASS] = "pass",
	[TK_CACHED] = "cached", [TK_ABSENT] = "cached-absent", [TK_DELAY] = "delay",
	[TK_PUBLISHED] = "published", [TK_PUBFAIL] = "publish-failed", [TK_LOST] = "lost",
	[TK_TORN] = "torn", [TK_DIVERGED] = "diverged", [TK_SILLY] = "silly-rename",
	[TK_OTHER] = "other",
};

static const char kind_marks[TK_NKINDS] = {
	[TK_START] = '>', [TK_DROP] = 'D', [TK_PASS] = '.', [TK_CACHED] = 'S',
	[TK_ABSENT] = 'S', [TK_DELAY] = '~', [TK_PUBLISHED] = 'P', [TK_PUBFAIL] = '!',
	[TK_LOST] = '!', [TK_TORN] = '!', [TK_DIVERGED] = '!', [TK_SILLY] = '!',
	[TK_OTHER] = '?',
};

const char *trace_kind_name(enum trace_kind k)
{
	return k < TK_NKINDS ? kind_names[k] : "?";
}

char trace_kind_mark(enum trace_kind k)
{
	return k < TK_NKINDS ? kind_marks[k] : '?';
}

static int kind_of(const char *s)
{
	int k;

	for (k = 0; k < TK_OTHER; k++)
		if (!strcmp(s, kind_names[k]))
			return k;
	return *s ? TK_OTHER : -1;     /* a newer kind: shown as it is */
}

/* The index of client ID, added (from FILE) when new; -1: out of memory. */
static long client_index(struct trace *tr, const char *id, const char *file)
{
	struct trace_client *v;
	size_t i;

	for (i = 0; i < tr->ncl; i++)
		if (!strcmp(tr->cl[i].id, id))
			return (long)i;
	v = realloc(tr->cl, (tr->ncl + 1) * sizeof(*v));
	if (!v)
		return -1;
	tr->cl = v;
	memset(&v[tr->ncl], 0, sizeof(*v));
	v[tr->ncl].id = strdup(id);
	v[tr->ncl].file = strdup(file);
	if (!v[tr->ncl].id || !v[tr->ncl].file) {
		free(v[tr->ncl].id);
		free(v[tr->ncl].file);
		return -1;
	}
	return (long)tr->ncl++;
}

static struct trace_event *event_new(struct trace *tr)
{
	if (tr->nev == tr->cap) {
		size_t ncap = tr->cap ? tr->cap * 2 : 1024;
		struct trace_event *v = realloc(tr->ev, ncap * sizeof(*v));

		if (!v)
			return NULL;
		tr->ev = v;
		tr->cap = ncap;
	}
	memset(&tr->ev[tr->nev], 0, sizeof(tr->ev[0]));
	tr->ev[tr->nev].order = tr->nev;
	return &tr->ev[tr->nev++];
}

static double num(const cJSON *o, const char *key, double dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/* A number that must be exact (seeds are 64-bit): read from the line. */
static unsigned long long exact_u64(const char *line, const char *key)
{
	char pat[32];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(line, pat);
	return p ? strtoull(p + strlen(pat), NULL, 10) : 0;
}

/* Per file: the wall clock of each client's t_ms 0 (its latest start). */
struct file_bases {
	double *wall;           /* by client index; -1: none yet */
	size_t n;
};

static int base_set(struct file_bases *b, size_t client, double wall)
{
	if (client >= b->n) {
		double *v = realloc(b->wall, (client + 1) * sizeof(*v));
		size_t i;

		if (!v)
			return -1;
		for (i = b->n; i <= client; i++)
			v[i] = -1;
		b->wall = v;
		b->n = client + 1;
	}
	if (wall >= 0)
		b->wall[client] = wall;
	return 0;
}

/* Checks the fields of record O; NULL when fine, else why not. */
static const char *check_record(const cJSON *o, int *kind)
{
	const cJSON *dec = cJSON_GetObjectItemCaseSensitive(o, "decision");
	const cJSON *op = cJSON_GetObjectItemCaseSensitive(o, "op");

	if (!cJSON_IsObject(o))
		return "not a decision record (not a JSON object)";
	if (!cJSON_IsString(dec))
		return "not a decision record (no \"decision\")";
	if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "t_ms")))
		return "not a decision record (no \"t_ms\")";
	if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "client")))
		return "not a decision record (no \"client\")";
	if ((*kind = kind_of(dec->valuestring)) < 0)
		return "not a decision record (empty \"decision\")";
	if (*kind == TK_START &&
	    !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "wall_ms")))
		return "start record without \"wall_ms\"";
	if (*kind != TK_START && !cJSON_IsString(op))
		return "not a decision record (no \"op\")";
	return NULL;
}

/* Adds the event of record O (line LINE of FILE). NULL, or why not. */
static const char *add_record(struct trace *tr, struct file_bases *b, const cJSON *o,
			      const char *line, const char *file)
{
	const cJSON *op = cJSON_GetObjectItemCaseSensitive(o, "op");
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
	struct trace_event *e;
	const char *why;
	int kind = 0;
	long c;

	if ((why = check_record(o, &kind)))
		return why;
	c = client_index(tr, cJSON_GetObjectItemCaseSensitive(o, "client")->valuestring, file);
	if (c < 0 || base_set(b, (size_t)c, kind == TK_START ? num(o, "wall_ms", -1) : -1) < 0)
		return "out of memory";
	if (kind == TK_START) {
		tr->cl[c].started = true;
		tr->cl[c].seed = exact_u64(line, "seed");
	}
	if (!(e = event_new(tr)))
		return "out of memory";
	e->client = (size_t)c;
	e->kind = (enum trace_kind)kind;
	e->t_ms = num(o, "t_ms", 0);
	e->abs_ms = b->wall[c] >= 0 ? b->wall[c] + e->t_ms : -1;
	e->seq = (uint64_t)num(o, "seq", 0);
	e->ino = (uint64_t)num(o, "ino", 0);
	e->ms = num(o, "ms", -1);
	e->err = (int)num(o, "errno", 0);
	e->made = -1;
	snprintf(e->op, sizeof(e->op), "%s", cJSON_IsString(op) ? op->valuestring : "start");
	snprintf(e->decision, sizeof(e->decision), "%s",
		 cJSON_GetObjectItemCaseSensitive(o, "decision")->valuestring);
	if (cJSON_IsString(name) && !(e->name = strdup(name->valuestring))) {
		tr->nev--;
		return "out of memory";
	}
	return NULL;
}

int trace_load(struct trace *tr, const char *path, char *err, size_t errlen)
{
	struct file_bases b = { 0 };
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t len;
	FILE *f = fopen(path, "re");
	int r = 0;

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (r == 0 && (len = getline(&line, &cap, f)) >= 0) {
		const char *why = NULL;
		cJSON *o;

		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = 0;
		if (len == 0)
			continue;
		o = cJSON_ParseWithLength(line, (size_t)len);
		why = o ? add_record(tr, &b, o, line, path) : "not a decision record (not JSON)";
		cJSON_Delete(o);
		if (why) {
			snprintf(err, errlen, "%s:%zu: %s", path, lineno, why);
			r = -1;
		}
	}
	if (r == 0 && ferror(f)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		r = -1;
	}
	free(line);
	free(b.wall);
	fclose(f);
	return r;
}

static int by_time(const void *a, const void *b)
{
	const struct trace_event *x = a, *y = b;

	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Times on one axis: since the earliest start, or (some client without a
** start line) each client's time since its own mount. */
static void place(struct trace *tr)
{
	double origin = INFINITY;
	size_t i;

	for (i = 0; i < tr->nev; i++) {
		if (tr->ev[i].abs_ms < 0)
			tr->relative = true;
		else if (tr->ev[i].abs_ms < origin)
			origin = tr->ev[i].abs_ms;
	}
	for (i = 0; i < tr->nev; i++)
		tr->ev[i].t = tr->relative ? tr->ev[i].t_ms : tr->ev[i].abs_ms - origin;
	qsort(tr->ev, tr->nev, sizeof(*tr->ev), by_time);
	tr->t_end = tr->nev ? tr->ev[tr->nev - 1].t : 0;
}

/* Whether delayed change D is the one publication P published: same
** operation, and the same inode or name (a namespace change is logged
** with its directory when delayed, with its object when published). */
static bool same_change(const struct trace_event *d, const struct trace_event *p)
{
	if (strcmp(d->op, p->op))
		return false;
	return d->ino == p->ino || (d->name && p->name && !strcmp(d->name, p->name));
}

/* Pairs every publication of client C with its delayed change: a client
** publishes in the order it made its changes, so the oldest that matches. */
static int pair_client(struct trace *tr, size_t c)
{
	size_t *q = malloc((tr->nev + 1) * sizeof(*q)), nq = 0, i, j;
	struct trace_client *cl = &tr->cl[c];

	if (!q)
		return -1;
	cl->win_min = INFINITY;
	for (i = 0; i < tr->nev; i++) {
		struct trace_event *e = &tr->ev[i];
		bool ends = e->kind == TK_PUBLISHED || e->kind == TK_PUBFAIL || e->kind == TK_LOST;

		if (e->client != c)
			continue;
		if (e->kind == TK_DELAY)
			q[nq++] = i;
		if (!ends || !nq)
			continue;
		for (j = 0; j < nq && !same_change(&tr->ev[q[j]], e); j++)
			;
		if (j == nq)
			continue;       /* not delayed here (a delay of 0, or cut off) */
		e->made = tr->ev[q[j]].t;
		memmove(&q[j], &q[j + 1], (nq - j - 1) * sizeof(*q));
		nq--;
		if (e->kind == TK_PUBLISHED && trace_shown(tr, e)) {
			double w = e->t - e->made;

			cl->nwin++;
			cl->win_sum += w;
			cl->win_min = w < cl->win_min ? w : cl->win_min;
			cl->win_max = w > cl->win_max ? w : cl->win_max;
		}
	}
	cl->pending = nq;
	free(q);
	return 0;
}

bool trace_shown(const struct trace *tr, const struct trace_event *e)
{
	return e->t >= tr->from && (tr->to < 0 || e->t <= tr->to);
}

int trace_finish(struct trace *tr)
{
	size_t i;

	place(tr);
	for (i = 0; i < tr->ncl; i++)
		if (pair_client(tr, i) < 0)
			return -1;
	for (i = 0; i < tr->nev; i++)
		if (trace_shown(tr, &tr->ev[i]))
			tr->cl[tr->ev[i].client].count[tr->ev[i].kind]++;
	return 0;
}

void trace_free(struct trace *tr)
{
	size_t i;

	for (i = 0; i < tr->nev; i++)
		free(tr->ev[i].name);
	for (i = 0; i < tr->ncl; i++) {
		free(tr->cl[i].id);
		free(tr->cl[i].file);
	}
	free(tr->ev);
	free(tr->cl);
	memset(tr, 0, sizeof(*tr));
}

static void errno_text(int err, char *buf, size_t size)
{
	const char *n = err > 0 ? strerrorname_np(err) : NULL;

	if (n)
		snprintf(buf, size, "%s", n);
	else
		snprintf(buf, size, "errno %d", err);
}

void trace_describe(const struct trace_event *e, char *buf, size_t size)
{
	char what[160], extra[48] = "";

	if (e->name)
		snprintf(what, sizeof(what), "%s %s", e->op, e->name);
	else
		snprintf(what, sizeof(what), "%s #%llu", e->op, (unsigned long long)e->ino);
	if (e->kind == TK_DROP && e->err)
		errno_text(e->err, extra, sizeof(extra));
	else if (e->kind == TK_ABSENT)
		snprintf(extra, sizeof(extra), "(absent)");
	else if (e->kind == TK_DELAY && e->ms >= 0)
		snprintf(extra, sizeof(extra), "%.0fms", e->ms);
	else if ((e->kind == TK_PUBLISHED || e->kind == TK_PUBFAIL || e->kind == TK_LOST) &&
		 e->made >= 0)
		snprintf(extra, sizeof(extra), "+%.0fms", e->t - e->made);
	else if (e->kind == TK_TORN && e->ms >= 0)
		snprintf(extra, sizeof(extra), "%.0fB kept", e->ms);
	if (e->kind == TK_PUBFAIL || e->kind == TK_LOST || e->kind == TK_TORN ||
	    e->kind == TK_DIVERGED || e->kind == TK_SILLY || e->kind == TK_OTHER)
		snprintf(buf, size, "%s %s %s", e->decision, what, extra);
	else
		snprintf(buf, size, "%s %s", what, extra);
	size = strlen(buf);
	while (size > 0 && buf[size - 1] == ' ')
		buf[--size] = 0;
}
