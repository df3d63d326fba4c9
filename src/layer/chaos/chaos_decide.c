/*
** chaos_decide.c -- the chaos layer's decisions: one seeded random source
** per client (xoshiro256**, seeded from splitmix64 of the seed and the
** client id), drops, the decision log (JSON lines) and replay.
**
** Every droppable operation takes the next sequence number of this client
** and one decision ("drop" or "pass"); with a decision log each is written
** as one line, together with served-from-cache, delay and publication
** events. --replay LOG takes drop decisions from LOG by sequence number
** instead of the random source; the first operation whose name differs
** from LOG's is reported (log line, counter) and from then on the random
** source decides.
*/
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chaos_int.h"

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(uint64_t s[4])
{
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/* A double in [0, 1). */
static double rng_unit(uint64_t s[4])
{
	return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

void chaos_rng_seed(struct cfs *s, uint64_t seed)
{
	uint64_t x = seed;
	const char *p;
	int i;

	/* Derive the client's stream from (seed, client id): two clients
	 * with one seed still decide independently. */
	for (p = s->client; *p; p++)
		x = (x ^ (unsigned char)*p) * UINT64_C(0x100000001b3);
	for (i = 0; i < 4; i++)
		s->rng[i] = splitmix64(&x);
	s->seed = seed;
}

void chaos_logf(struct cfs *s, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!s->log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	s->log(s->log_arg, line);
}

/* Writes NAME as a JSON string (names are bytes: escape what JSON needs). */
static void json_string(FILE *f, const char *name)
{
	const unsigned char *p;

	fputc('"', f);
	for (p = (const unsigned char *)name; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* Called with s->lock held. */
static void log_line(struct cfs *s, uint64_t seq, const char *op, uint64_t ino,
		     const char *name, const char *decision, double ms, int err)
{
	if (!s->dlog)
		return;
	fprintf(s->dlog, "{\"t_ms\":%.3f,\"client\":", (chaos_now() - s->t0) * 1000.0);
	json_string(s->dlog, s->client);
	fprintf(s->dlog, ",\"seq\":%llu,\"op\":\"%s\",\"ino\":%llu", (unsigned long long)seq, op,
		(unsigned long long)ino);
	if (name) {
		fputs(",\"name\":", s->dlog);
		json_string(s->dlog, name);
	}
	fprintf(s->dlog, ",\"decision\":\"%s\"", decision);
	if (ms >= 0)
		fprintf(s->dlog, ",\"ms\":%.3f", ms);
	if (err)
		fprintf(s->dlog, ",\"errno\":%d", err);
	fputs("}\n", s->dlog);
}

/* The first line of a decision log (each time it is opened): the wall
** clock at t_ms 0 and the seed, so that `eddyfs trace` can put the logs of
** several clients on one time axis. seq 0 and op "start" keep it a decision
** record for --replay, which skips it. */
void chaos_decision_start(struct cfs *s)
{
	struct timespec now;
	double wall_ms;

	if (!s->dlog)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	wall_ms = (double)now.tv_sec * 1000.0 + (double)now.tv_nsec / 1e6 -
		  (chaos_now() - s->t0) * 1000.0;
	fputs("{\"t_ms\":0,\"client\":", s->dlog);
	json_string(s->dlog, s->client);
	fprintf(s->dlog, ",\"seq\":0,\"op\":\"start\",\"ino\":0,\"decision\":\"start\","
		"\"wall_ms\":%.3f,\"seed\":%llu}\n", wall_ms, (unsigned long long)s->seed);
}

void chaos_decision(struct cfs *s, const char *op, uint64_t ino, const char *name,
		    const char *decision, double ms)
{
	if (!s->dlog)
		return;
	pthread_mutex_lock(&s->lock);
	log_line(s, s->seq, op, ino, name, decision, ms, 0);
	pthread_mutex_unlock(&s->lock);
}

/* The replayed decision for SEQ, or NULL when the log has none (or the
** run diverged). Called with s->lock held. */
static const struct creplay *replayed(struct cfs *s, uint64_t seq, const char *op)
{
	const struct creplay *r;

	if (!s->replay || s->diverged)
		return NULL;
	while (s->replay_pos < s->nreplay && s->replay[s->replay_pos].seq < seq)
		s->replay_pos++;
	if (s->replay_pos >= s->nreplay)
		return NULL;
	r = &s->replay[s->replay_pos];
	if (r->seq != seq)
		return NULL;
	if (strcmp(r->op, op) != 0) {
		s->diverged = true;
		s->n_divergences++;
		chaos_logf(s, "replay diverged at seq %llu: the log has %s, this run %s; "
			   "the random source decides from here",
			   (unsigned long long)seq, r->op, op);
		log_line(s, seq, op, 0, NULL, "diverged", -1, 0);
		return NULL;
	}
	return r;
}

/* A number in [0, N) from this client's random source. */
uint64_t chaos_random_below(struct cfs *s, uint64_t n)
{
	uint64_t v;

	if (!n)
		return 0;
	pthread_mutex_lock(&s->lock);
	v = (uint64_t)(rng_unit(s->rng) * (double)n);
	pthread_mutex_unlock(&s->lock);
	return v < n ? v : n - 1;
}

static double draw_locked(struct cfs *s)
{
	return rng_unit(s->rng);
}

/* Decides whether operation OP (on INO, or on NAME in directory INO) fails:
** the replayed log, else the first targeted rule that fires, else
** drop-prob. A rule's delay is waited here, without any lock. */
static int decide(struct cfs *s, const char *op, uint64_t ino, const char *name,
		  bool rules_only)
{
	const struct crule *rule = NULL;
	const struct creplay *r;
	struct timespec ts;
	long delay = 0;
	bool drop;
	int err;
	uint64_t seq;

	if (__atomic_load_n(&s->nrules, __ATOMIC_RELAXED) == 0 &&
	    (rules_only || (k_drop_prob(s) <= 0 && !s->replay)))
		return 0;
	pthread_mutex_lock(&s->lock);
	seq = ++s->seq;
	err = k_drop_errno(s);
	if ((r = replayed(s, seq, op))) {
		drop = r->drop;
		if (r->err)
			err = r->err;
	} else if ((rule = chaos_rule_fire(s, op, ino, name, draw_locked))) {
		err = chaos_rule_errno(rule, op);
		drop = err != 0;
		delay = rule->delay_ms;
	} else {
		drop = !rules_only && k_drop_prob(s) > 0 && rng_unit(s->rng) < k_drop_prob(s);
	}
	if (drop)
		s->n_dropped++;
	else
		s->n_passed++;
	log_line(s, seq, op, ino, name, drop ? "drop" : "pass", rule ? (double)delay : -1,
		 drop ? err : 0);
	pthread_mutex_unlock(&s->lock);
	if (delay > 0) {
		ts.tv_sec = delay / 1000;
		ts.tv_nsec = (delay % 1000) * 1000000L;
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	return drop ? -err : 0;
}

int chaos_drop(struct cfs *s, const char *op, uint64_t ino)
{
	return decide(s, op, ino, NULL, false);
}

int chaos_drop_named(struct cfs *s, const char *op, uint64_t parent, const char *name)
{
	return decide(s, op, parent, name, false);
}

/* Only targeted rules may fail OP: for requests the kernel sends on its
** own schedule (getattr), which a random drop would make unrepeatable. */
int chaos_fault_only(struct cfs *s, const char *op, uint64_t ino)
{
	return decide(s, op, ino, NULL, true);
}

/* Finds "key": in LINE and returns what follows, or NULL. */
static const char *field(const char *line, const char *key)
{
	char pat[32];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(line, pat);
	return p ? p + strlen(pat) : NULL;
}

static int parse_log(FILE *f, struct creplay **out, size_t *nout, char *err, size_t errlen)
{
	struct creplay *v = NULL;
	size_t n = 0, cap = 0, lineno = 0;
	char line[4096];

	while (fgets(line, sizeof(line), f)) {
		const char *seq, *op, *dec, *e;
		struct creplay r = { 0 };
		size_t len;

		lineno++;
		if (line[0] == '\n' || line[0] == 0)
			continue;
		if (line[0] != '{' || !(seq = field(line, "seq")) || !(op = field(line, "op")) ||
		    !(dec = field(line, "decision")) || *op != '"') {
			snprintf(err, errlen, "line %zu is not a decision record", lineno);
			free(v);
			return -EINVAL;
		}
		if (strncmp(dec, "\"drop\"", 6) != 0 && strncmp(dec, "\"pass\"", 6) != 0)
			continue;       /* cache hits, delays, publications: timing */
		r.seq = strtoull(seq, NULL, 10);
		op++;
		len = strcspn(op, "\"");
		if (len >= sizeof(r.op))
			len = sizeof(r.op) - 1;
		memcpy(r.op, op, len);
		r.drop = dec[2] == 'r';
		if ((e = field(line, "errno")))
			r.err = atoi(e);
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			struct creplay *nv = realloc(v, ncap * sizeof(*nv));

			if (!nv) {
				free(v);
				snprintf(err, errlen, "out of memory");
				return -ENOMEM;
			}
			v = nv;
			cap = ncap;
		}
		v[n++] = r;
	}
	*out = v;
	*nout = n;
	return 0;
}

int chaos_replay_load(struct cfs *s, const char *path, char *err, size_t errlen)
{
	char why[256];
	FILE *f = fopen(path, "re");
	int r;

	if (!f) {
		snprintf(err, errlen, "replay log %s: %s", path, strerror(errno));
		return -errno;
	}
	r = parse_log(f, &s->replay, &s->nreplay, why, sizeof(why));
	fclose(f);
	if (r < 0)
		snprintf(err, errlen, "replay log %s: %s", path, why);
	return r;
}

int chaos_replay_check(const char *path, char *err, size_t errlen)
{
	struct creplay *v = NULL;
	size_t n = 0;
	char why[256];
	FILE *f = fopen(path, "re");
	int r;

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -EINVAL;
	}
	r = parse_log(f, &v, &n, why, sizeof(why));
	fclose(f);
	free(v);
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", path, why);
		return -EINVAL;
	}
	return 0;
}
