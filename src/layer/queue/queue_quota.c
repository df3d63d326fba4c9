/*
** queue_quota.c -- eventfs-style quotas: queues, messages and bytes owned
** per user and per group, and messages per queue.
**
** Configuration (INI, read with inih), eventfs's format:
**   [eventfs-config]  default_max_dirs, default_max_files,
**                     default_max_files_per_dir, default_max_bytes,
**                     quotas = DIR (relative to the config file; optional)
**   DIR/<any file>:   [eventfs-quota] user=NAME or group=NAME, then
**                     max_dirs, max_files, max_files_per_dir, max_bytes
** A limit that is not set is unlimited (eventfs: 0, which refuses every
** create). Limits are exact: a charge that would exceed one fails with
** EDQUOT and charges nothing. Messages and bytes are charged per inode to
** the message's owner (a message linked into several queues counts once);
** the per-queue limit comes from the queue owner's quota and the queue's
** user.eddyfs.max_messages / user.eventfs_max_files xattr (the smaller).
*/
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <ini.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue_int.h"

static void limits_none(struct qlimits *l)
{
	l->max_queues = l->max_messages = l->max_per_queue = l->max_bytes = -1;
}

static struct qusage *usage_of(struct qfs *q, unsigned id, bool is_group)
{
	size_t b = ((size_t)id * 2 + is_group) % q->nusage_buckets;
	struct qusage *u = q->usage[b];

	while (u && (u->id != id || u->is_group != is_group))
		u = u->next_hash;
	if (!u && (u = calloc(1, sizeof(*u)))) {
		u->id = id;
		u->is_group = is_group;
		u->next_hash = q->usage[b];
		q->usage[b] = u;
	}
	return u;
}

static const struct qlimits *limits_of(struct qfs *q, unsigned id, bool is_group)
{
	for (struct qquota_rule *r = q->rules; r; r = r->next)
		if (r->id == id && r->is_group == is_group)
			return &r->lim;
	return &q->defaults;
}

static bool over(long long used, long long delta, long long max)
{
	return delta > 0 && max >= 0 && used + delta > max;
}

static bool fits(struct qfs *q, const struct qusage *u, long long dq, long long dm, long long db)
{
	const struct qlimits *l = limits_of(q, u->id, u->is_group);

	return !over(u->queues, dq, l->max_queues) && !over(u->messages, dm, l->max_messages) &&
	       !over(u->bytes, db, l->max_bytes);
}

int qquota_charge(struct qfs *q, uid_t uid, gid_t gid, long long dqueues, long long dmessages,
		  long long dbytes, bool force)
{
	struct qusage *u = usage_of(q, uid, false), *g = usage_of(q, gid, true);

	if (!u || !g)
		return -ENOMEM;
	if (!force && q->have_quotas &&
	    (!fits(q, u, dqueues, dmessages, dbytes) || !fits(q, g, dqueues, dmessages, dbytes))) {
		atomic_fetch_add(&q->quota_hits, 1);
		return -EDQUOT;
	}
	u->queues += dqueues;
	u->messages += dmessages;
	u->bytes += dbytes;
	g->queues += dqueues;
	g->messages += dmessages;
	g->bytes += dbytes;
	return 0;
}

long long qquota_per_queue(struct qfs *q, const struct queue *qu)
{
	long long a = limits_of(q, qu->uid, false)->max_per_queue;
	long long b = limits_of(q, qu->gid, true)->max_per_queue;
	long long m = -1;

	if (q->have_quotas) {
		m = a;
		if (b >= 0 && (m < 0 || b < m))
			m = b;
	}
	if (qu->max_messages > 0 && (m < 0 || qu->max_messages < m))
		m = qu->max_messages;
	return m;
}

void qquota_uncharge_inode(struct qfs *q, struct qinode *qi)
{
	qquota_charge(q, qi->uid, qi->gid, 0, -1, -(long long)qi->charged, true);
	qi->charged = 0;
}

/******************************* configuration *******************************/

struct parse {
	struct qfs *q;
	const char *file;
	char *err;
	size_t errlen;
	bool failed;
	const char *section;       /* expected section name */
	struct qquota_rule *rule;  /* quota files: the rule being read */
	char quotas[PATH_MAX];
	char why[256];
};

static bool parse_limit(const char *v, long long *out)
{
	char *end;
	long long n;

	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno || end == v || *end || n < 0)
		return false;
	*out = n;
	return true;
}

/* Records the first error; inih then returns its line number. */
static int fail(struct parse *p, const char *what, const char *v)
{
	if (!p->failed)
		snprintf(p->why, sizeof(p->why), "%s%s%s", what, v ? ": " : "", v ? v : "");
	p->failed = true;
	return 0;
}

static long long *limit_field(struct qlimits *l, const char *key, bool defaults)
{
	const char *k = key;

	if (defaults) {
		if (strncmp(k, "default_", 8) != 0)
			return NULL;
		k += 8;
	}
	if (strcmp(k, "max_dirs") == 0)
		return &l->max_queues;
	if (strcmp(k, "max_files") == 0)
		return &l->max_messages;
	if (strcmp(k, "max_files_per_dir") == 0)
		return &l->max_per_queue;
	if (strcmp(k, "max_bytes") == 0)
		return &l->max_bytes;
	return NULL;
}

static int on_config(void *user, const char *section, const char *key, const char *value)
{
	struct parse *p = user;
	long long *f;

	if (strcmp(section, p->section) != 0)
		return fail(p, "unknown section", section);
	if (!key)
		return 1;
	if (p->rule) {
		if (strcmp(key, "user") == 0 || strcmp(key, "group") == 0) {
			bool group = key[0] == 'g';

			if (p->rule->id != (unsigned)-1)
				return fail(p, "user/group given twice", value);
			if (group) {
				struct group *gr = getgrnam(value);

				if (!gr)
					return fail(p, "no such group", value);
				p->rule->id = gr->gr_gid;
			} else {
				struct passwd *pw = getpwnam(value);

				if (!pw)
					return fail(p, "no such user", value);
				p->rule->id = pw->pw_uid;
			}
			p->rule->is_group = group;
			return 1;
		}
		f = limit_field(&p->rule->lim, key, false);
	} else {
		if (strcmp(key, "quotas") == 0) {
			const char *slash = strrchr(p->file, '/');

			if (value[0] == '/' || !slash)
				snprintf(p->quotas, sizeof(p->quotas), "%s", value);
			else
				snprintf(p->quotas, sizeof(p->quotas), "%.*s/%s",
					 (int)(slash - p->file), p->file, value);
			return 1;
		}
		f = limit_field(&p->q->defaults, key, true);
	}
	if (!f)
		return fail(p, "unknown key", key);
	if (!parse_limit(value, f))
		return fail(p, "not a non-negative number", value);
	return 1;
}

static int parse_file(struct parse *p, const char *path)
{
	int r;

	p->file = path;
	p->failed = false;
	r = ini_parse(path, on_config, p);
	if (r < 0)
		snprintf(p->err, p->errlen, "cannot read %s: %s", path,
			 r == -1 ? strerror(errno) : "out of memory");
	else if (r > 0)
		snprintf(p->err, p->errlen, "%s:%d: %s", path, r,
			 p->failed ? p->why : "syntax error");
	return r != 0 ? -EINVAL : 0;
}

static int load_quota_dir(struct parse *p)
{
	struct dirent **names;
	int n = scandir(p->quotas, &names, NULL, alphasort), r = 0;

	if (n < 0) {
		snprintf(p->err, p->errlen, "quota directory %s: %s", p->quotas, strerror(errno));
		return -EINVAL;
	}
	for (int i = 0; i < n; i++) {
		char path[PATH_MAX * 2];
		struct qquota_rule *rule;

		if (r == 0 && names[i]->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", p->quotas, names[i]->d_name);
			rule = calloc(1, sizeof(*rule));
			if (!rule) {
				r = -ENOMEM;
			} else {
				limits_none(&rule->lim);
				rule->id = (unsigned)-1;
				p->rule = rule;
				p->section = "eventfs-quota";
				r = parse_file(p, path);
				for (struct qquota_rule *o = p->q->rules; r == 0 && o; o = o->next)
					if (o->id == rule->id && o->is_group == rule->is_group) {
						snprintf(p->err, p->errlen,
							 "%s: a second quota for the same %s", path,
							 rule->is_group ? "group" : "user");
						r = -EINVAL;
					}
				if (r == 0 && rule->id == (unsigned)-1) {
					snprintf(p->err, p->errlen, "%s: no user= or group=", path);
					r = -EINVAL;
				}
				if (r == 0) {
					rule->next = p->q->rules;
					p->q->rules = rule;
				} else {
					free(rule);
				}
			}
		}
		free(names[i]);
	}
	free(names);
	return r;
}

int qquota_load(struct qfs *q, const char *path, char *err, size_t errlen)
{
	struct parse p = { .q = q, .err = err, .errlen = errlen, .section = "eventfs-config" };
	int r;

	limits_none(&q->defaults);
	if (!path)
		return 0;
	r = parse_file(&p, path);
	if (r == 0 && p.quotas[0])
		r = load_quota_dir(&p);
	if (r < 0) {
		qquota_free(q);
		return r;
	}
	q->have_quotas = true;
	return 0;
}

void qquota_free(struct qfs *q)
{
	while (q->rules) {
		struct qquota_rule *r = q->rules;

		q->rules = r->next;
		free(r);
	}
}

void qquota_report(struct qfs *q, eddy_stat_fn fn, void *arg)
{
	long long queues = 0, messages = 0, bytes = 0;

	pthread_mutex_lock(&q->lock);
	for (size_t i = 0; i < q->nusage_buckets; i++)
		for (struct qusage *u = q->usage[i]; u; u = u->next_hash)
			if (!u->is_group) {
				queues += u->queues;
				messages += u->messages;
				bytes += u->bytes;
			}
	pthread_mutex_unlock(&q->lock);
	fn(arg, "queue_queues", queues);
	fn(arg, "queue_messages", messages);
	fn(arg, "queue_bytes", bytes);
}

int queue_config_check(const char *path, char *err, size_t errlen)
{
	struct qfs q;
	int r;

	memset(&q, 0, sizeof(q));
	r = qquota_load(&q, path, err, errlen);
	qquota_free(&q);
	return r;
}
