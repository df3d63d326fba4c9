/*
** trace.h -- `eddyfs trace`: the decisions of several chaos clients, read
** from their decision logs (trace_load.c), merged on one time axis and
** shown as a text timeline (cmd_trace.c) or an HTML page (trace_html.c).
*/
#ifndef EDDY_TRACE_H
#define EDDY_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The decision kinds of a log line ("decision"), in log order of appearance. */
enum trace_kind {
	TK_START,       /* the log was opened: wall clock and seed */
	TK_DROP,        /* the operation failed on purpose */
	TK_PASS,        /* the operation went through */
	TK_CACHED,      /* answered from the client's cache (maybe stale) */
	TK_ABSENT,      /* "no such file" answered from the cache */
	TK_DELAY,       /* a change held back for its delay */
	TK_PUBLISHED,   /* a change reached the truth */
	TK_PUBFAIL,     /* a change failed when published (lost) */
	TK_LOST,        /* a change lost unpublished (drop-unsynced, crash) */
	TK_TORN,        /* a prefix of a lost write reached the truth */
	TK_DIVERGED,    /* a replay diverged from its log */
	TK_SILLY,       /* nfs: an unlink of an open file renamed it instead */
	TK_OTHER,       /* a decision this version does not know */
	TK_NKINDS
};

struct trace_event {
	double t;               /* ms since the first client's start */
	double t_ms;            /* as logged: ms since the client's mount */
	double abs_ms;          /* unix ms, or -1 without a start line */
	size_t client;          /* index in trace.cl */
	size_t order;           /* input order: ties keep it */
	enum trace_kind kind;
	uint64_t seq, ino;
	char op[24];
	char decision[24];      /* as logged */
	char *name;             /* or NULL */
	double ms;              /* the line's "ms" (delay, torn bytes), or -1 */
	int err;                /* "errno" of a drop, or 0 */
	double made;            /* a publication: when its change was made, or -1 */
};

struct trace_client {
	char *id;
	char *file;             /* the first log it was read from */
	bool started;           /* has a start line */
	unsigned long long seed;
	size_t count[TK_NKINDS];        /* within the shown window */
	size_t nwin;                    /* published changes paired with their delay */
	double win_min, win_max, win_sum;
	size_t pending;                 /* delayed changes never published nor lost */
};

struct trace {
	struct trace_event *ev;
	size_t nev, cap;
	struct trace_client *cl;
	size_t ncl;
	bool relative;          /* some client has no start line */
	double from, to;        /* the window shown, ms (to < 0: the end) */
	double t_end;           /* the last event's time */
};

/* trace_load.c */
const char *trace_kind_name(enum trace_kind k);
char trace_kind_mark(enum trace_kind k);
/* Appends the decisions of the log at PATH; on error ERR holds
** "PATH:LINE: why" (or "PATH: why") and -1 is returned. */
int trace_load(struct trace *tr, const char *path, char *err, size_t errlen);
/* Puts the events on one time axis, sorts them, pairs each publication
** with the change it published and counts what lies in [from, to]. */
int trace_finish(struct trace *tr);
void trace_free(struct trace *tr);
bool trace_shown(const struct trace *tr, const struct trace_event *e);
/* A short description of E without its mark: "read EIO", "lookup f". */
void trace_describe(const struct trace_event *e, char *buf, size_t size);

/* cmd_trace.c */
int trace_text(FILE *out, const struct trace *tr, int width);

/* trace_html.c */
int trace_html(FILE *out, const struct trace *tr);

#endif /* EDDY_TRACE_H */
