/*
** chaos_rules.c -- targeted faults: rules that fail (or slow down) chosen
** operations of one client, by operation, path glob, client, probability
** and count.
**
** A rule is a comma-separated list of key=value:
**   op=OP[|OP...]   operations it applies to (default: every droppable one)
**   path=GLOB       fnmatch(3) glob on the path as this client knows it,
**                   relative to the mount (no leading '/'; '*' matches '/')
**   client=ID       only on the client with this id
**   prob=P          fire with probability P (default 1)
**   after=N         let the first N matching operations pass
**   every=N         then fire on every Nth match (default 1)
**   count=N         fire at most N times (default: no limit)
**   errno=E         fail with E (a name or number); none: do not fail;
**                   default: a realistic errno for the operation
**   delay=MS        hold the operation MS milliseconds first (only the
**                   faulted call waits, never the whole mount)
** Rules are tried in order; the first one that fires decides. Matching and
** counting are under cfs.lock; the random draws come from the client's
** seeded source, so a rule fires at the same operations on every run of
** the same request sequence.
*/
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chaos_int.h"

/* What a faulted operation fails with unless the rule says: what a
** network filesystem's server would answer. */
static int realistic_errno(const char *op)
{
	static const struct {
		const char *op;
		int err;
	} table[] = {
		{ "write", ENOSPC }, { "fallocate", ENOSPC }, { "copy_file_range", ENOSPC },
		{ "create", ENOSPC }, { "mkdir", ENOSPC }, { "mknod", ENOSPC },
		{ "symlink", ENOSPC }, { "link", EMLINK }, { "setxattr", ENOSPC },
		{ "setattr", EPERM }, { "rename", EBUSY }, { "unlink", EBUSY }, { "rmdir", EBUSY },
		{ "open", ESTALE }, { "opendir", ESTALE }, { "getlk", ENOLCK }, { "setlk", ENOLCK },
		{ "flock", ENOLCK },
	};
	size_t i;

	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strcmp(table[i].op, op) == 0)
			return table[i].err;
	return EIO;                 /* read, fsync, flush, getattr, statfs, ... */
}

static const char *const known_ops[] = {
	"getattr", "setattr", "mknod", "mkdir", "symlink", "link", "unlink", "rmdir", "rename",
	"readlink", "statfs", "open", "create", "read", "write", "flush", "fsync", "fallocate",
	"copy_file_range", "opendir", "readdir", "fsyncdir", "setxattr", "getxattr",
	"listxattr", "removexattr", "getlk", "setlk", "flock",
};

static bool known_op(const char *op, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(known_ops) / sizeof(known_ops[0]); i++)
		if (strlen(known_ops[i]) == len && strncmp(known_ops[i], op, len) == 0)
			return true;
	return false;
}

static int parse_long(const char *key, const char *v, long min, long *out, char *err,
		      size_t errlen)
{
	char *end;
	long x;

	errno = 0;
	x = strtol(v, &end, 10);
	if (!*v || *end || errno || x < min) {
		snprintf(err, errlen, "%s=%s: want a whole number >= %ld", key, v, min);
		return -EINVAL;
	}
	*out = x;
	return 0;
}

static int rule_field(struct crule *r, const char *key, const char *v, char *err, size_t errlen)
{
	if (strcmp(key, "op") == 0) {
		const char *p = v;

		while (*p) {
			size_t len = strcspn(p, "|+");

			if (!known_op(p, len)) {
				snprintf(err, errlen, "op=%.*s: not an operation that can fail "
					 "(e.g. read, write, open, fsync, rename)", (int)len, p);
				return -EINVAL;
			}
			p += len;
			if (*p)
				p++;
		}
		return (r->ops = strdup(v)) ? 0 : -ENOMEM;
	}
	if (strcmp(key, "path") == 0)
		return (r->glob = strdup(v[0] == '/' ? v + 1 : v)) ? 0 : -ENOMEM;
	if (strcmp(key, "client") == 0)
		return (r->client = strdup(v)) ? 0 : -ENOMEM;
	if (strcmp(key, "after") == 0)
		return parse_long(key, v, 0, &r->after, err, errlen);
	if (strcmp(key, "every") == 0)
		return parse_long(key, v, 1, &r->every, err, errlen);
	if (strcmp(key, "count") == 0)
		return parse_long(key, v, 1, &r->count, err, errlen);
	if (strcmp(key, "delay") == 0)
		return parse_long(key, v, 0, &r->delay_ms, err, errlen);
	if (strcmp(key, "prob") == 0) {
		struct chaos_knobs k;

		if (chaos_knob_set(&k, "drop-prob", v, err, errlen) < 0) {
			snprintf(err, errlen, "prob=%s: want a probability, 0-1", v);
			return -EINVAL;
		}
		r->prob = k.drop_prob;
		return 0;
	}
	if (strcmp(key, "errno") == 0) {
		r->err_given = true;
		if (strcmp(v, "none") == 0) {
			r->err = 0;
			return 0;
		}
		if ((r->err = chaos_errno_parse(v)) < 0) {
			snprintf(err, errlen, "errno=%s: want an errno name (EIO, ENOSPC, ...), "
				 "a number or none", v);
			return -EINVAL;
		}
		return 0;
	}
	snprintf(err, errlen, "unknown rule key '%s' (op, path, client, prob, after, every, "
		 "count, errno, delay)", key);
	return -EINVAL;
}

void chaos_rule_free(struct crule *r)
{
	if (!r)
		return;
	free(r->text);
	free(r->ops);
	free(r->glob);
	free(r->client);
	free(r);
}

int chaos_rule_parse(const char *text, struct crule **out, char *err, size_t errlen)
{
	struct crule *r = calloc(1, sizeof(*r));
	char *copy, *tok, *save = NULL;
	int rc = 0;

	if (!r || !(r->text = strdup(text)) || !(copy = strdup(text))) {
		chaos_rule_free(r);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r->prob = 1.0;
	r->every = 1;
	for (tok = strtok_r(copy, ",", &save); tok && rc == 0; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		if (!eq || eq == tok || !eq[1]) {
			snprintf(err, errlen, "'%s': want key=value", tok);
			rc = -EINVAL;
			break;
		}
		*eq = 0;
		rc = rule_field(r, tok, eq + 1, err, errlen);
	}
	free(copy);
	if (rc == 0 && r->err_given && r->err == 0 && r->delay_ms == 0) {
		snprintf(err, errlen, "errno=none without delay= does nothing");
		rc = -EINVAL;
	}
	if (rc < 0) {
		chaos_rule_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

int chaos_rule_check(const char *text, char *err, size_t errlen)
{
	struct crule *r = NULL;
	int rc = chaos_rule_parse(text, &r, err, errlen);

	if (rc == 0)
		chaos_rule_free(r);
	return rc;
}

int chaos_rule_add(struct cfs *s, const char *text, char *err, size_t errlen)
{
	struct crule *r, **pp;
	int rc = chaos_rule_parse(text, &r, err, errlen);

	if (rc < 0)
		return rc;
	pthread_mutex_lock(&s->lock);
	r->id = ++s->next_rule;
	for (pp = &s->rules; *pp; pp = &(*pp)->next)
		;
	*pp = r;
	__atomic_store_n(&s->nrules, s->nrules + 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&s->lock);
	chaos_logf(s, "fault rule %u: %s", r->id, text);
	return 0;
}

void chaos_rules_clear(struct cfs *s)
{
	struct crule *r;

	pthread_mutex_lock(&s->lock);
	r = s->rules;
	s->rules = NULL;
	__atomic_store_n(&s->nrules, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&s->lock);
	while (r) {
		struct crule *next = r->next;

		chaos_rule_free(r);
		r = next;
	}
}

void chaos_rules_report(struct cfs *s, eddy_stat_fn fn, void *arg)
{
	struct crule *r;
	char key[64];

	pthread_mutex_lock(&s->lock);
	for (r = s->rules; r; r = r->next) {
		char line[600];

		snprintf(line, sizeof(line), "# chaos rule %u: %.500s", r->id, r->text);
		fn(arg, line, 0);
		snprintf(key, sizeof(key), "chaos_rule_%u_matched", r->id);
		fn(arg, key, r->matched);
		snprintf(key, sizeof(key), "chaos_rule_%u_fired", r->id);
		fn(arg, key, r->fired);
	}
	pthread_mutex_unlock(&s->lock);
}

static bool op_matches(const struct crule *r, const char *op)
{
	const char *p = r->ops;
	size_t n = strlen(op);

	if (!p)
		return true;
	while (*p) {
		size_t len = strcspn(p, "|+");

		if (len == n && strncmp(p, op, n) == 0)
			return true;
		p += len;
		if (*p)
			p++;
	}
	return false;
}

/* The path of INO (+ "/NAME") as this client last saw it, relative to the
** mount; false if some ancestor's name is unknown. s->lock held. */
static bool path_of(struct cfs *s, uint64_t ino, const char *name, char *buf, size_t size)
{
	const char *parts[64];
	size_t n = 0, len = 0;
	int i;

	if (name)
		parts[n++] = name;
	while (ino != EDDY_ROOT_INO) {
		struct cnode *c = cnode_find(s, ino);

		if (!c || !c->pname || n == 64)
			return false;
		parts[n++] = c->pname;
		ino = c->pparent;
	}
	buf[0] = 0;
	for (i = (int)n - 1; i >= 0; i--) {
		int w = snprintf(buf + len, size - len, "%s%s", len ? "/" : "", parts[i]);

		if (w < 0 || (size_t)w >= size - len)
			return false;
		len += (size_t)w;
	}
	return true;
}

/* The first rule that fires for this operation, or NULL; RULE_ERR and
** RULE_DELAY say what it does. s->lock held. */
const struct crule *chaos_rule_fire(struct cfs *s, const char *op, uint64_t ino,
				    const char *name, double (*draw)(struct cfs *s))
{
	struct crule *r;
	char path[4096];
	int have_path = -1;

	for (r = s->rules; r; r = r->next) {
		if (!op_matches(r, op) || (r->client && strcmp(r->client, s->client) != 0))
			continue;
		if (r->glob) {
			if (have_path < 0)
				have_path = path_of(s, ino, name, path, sizeof(path));
			if (!have_path || fnmatch(r->glob, path, FNM_PERIOD) != 0)
				continue;
		}
		r->matched++;
		if (r->matched <= r->after || (r->matched - r->after - 1) % r->every != 0 ||
		    (r->count && r->fired >= r->count))
			continue;
		if (r->prob < 1.0 && draw(s) >= r->prob)
			continue;
		r->fired++;
		return r;
	}
	return NULL;
}

int chaos_rule_errno(const struct crule *r, const char *op)
{
	return r->err_given ? r->err : realistic_errno(op);
}
