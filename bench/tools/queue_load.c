/*
 * queue_load - load generator for bench/queue (eventfs-style queue directories).
 *
 * One role per process; compiled at run time by bench/queue (cc -O2) into its
 * work dir.  Every role prints exactly one JSON object on the last line of
 * stdout (consumers also print a {"phase":"window",...} progress line when
 * their measuring window ends).  Exit status 0 unless setup failed (2).
 *
 *   queue_load [opts] produce       DIR SECONDS ID
 *       loop: open(DIR/p<ID>-m%010d, O_CREAT|O_EXCL|O_WRONLY, 0600), write one
 *       64-byte body "eddyq p=<id> s=<seq> t=<CLOCK_MONOTONIC ns>....\n", close.
 *   queue_load [opts] consume-head      DIR SECONDS   readlink(head); open head,
 *       read, close; unlink(head)   (eventfs's idiom; single consumer only)
 *   queue_load [opts] consume-head-safe DIR SECONDS   same, but pops only while
 *       readlink(head) != readlink(tail) (dodges eventfs bug B1) until draining
 *   queue_load [opts] consume-name      DIR SECONDS   readlink(head) -> open and
 *       read DIR/<name> -> unlink(DIR/<name>); ENOENT = another consumer won
 *   queue_load [opts] consume-scan      DIR SECONDS   readdir, sort, then open/
 *       read/unlink each message by name (plain directories: no head/tail)
 *   queue_load [opts] consume-claim     DIR SECONDS   fd = open(DIR/.claim) once,
 *       blocking read(fd, 64 KiB) returns records "<size> <name>\n"<size bytes>
 *   queue_load [opts] consume-claim-poll DIR SECONDS  same with O_NONBLOCK and
 *       poll(POLLIN) before each read
 *   queue_load rtt DIR N   the cost of one FUSE round trip: creates DIR/rtt-probe,
 *       times N fstatat() of it (in a queue, names are never cached: one
 *       LOOKUP each; elsewhere the kernel's cache answers), then removes it
 *   queue_load [opts] vanish DIR TRIALS   per trial a child mkdir()s DIR/vq<pid>-<i>
 *       and sleeps; the parent SIGKILLs it and polls the observer every -i us
 *       until the queue is gone (bound -T ms, then "never"); reaps the child
 *       after the poll (with -r: before it)
 *
 * Options:
 *   -w        wait for one byte on stdin before starting (start barrier)
 *   -n N      produce: stop after N messages (backlog fill; SECONDS still bounds it)
 *   -d        consumers: drain from the start (backlog mode: the queue is full
 *             and nothing more arrives; the first empty observation ends the run)
 *   -o FILE   consumers: write the consumed messages as runs "<producer> <first> <last>\n"
 *   -D SEC    consumers: give up this long after SECONDS if never told to drain (60)
 *   -S SEC    consumers: while draining, stop after SEC without a message (3)
 *   -O stat|readdir  vanish observer (stat)     -r  vanish: reap before polling
 *   -T MS     vanish bound (3000)   -i US  vanish poll interval (150)
 *   -g N      vanish: stop after N consecutive "never" trials (3; 0 = never stop)
 *
 * Consumers: the measuring window is SECONDS from the start; after it they go
 * on consuming (not counted in "window") until SIGUSR1 ("producers are done,
 * drain"), after which the first empty observation ends the run (claim: read
 * with O_NONBLOCK until EAGAIN).  The one-shot SIGALRM at the end of the
 * window and SIGUSR1 interrupt a blocked claim read (handlers without
 * SA_RESTART).  Each consumer checks that per producer the sequence numbers it
 * gets strictly increase and that every body is well formed; bench/queue merges
 * the runs of all consumers to find duplicates and losses.  Names are opened
 * relative to a directory fd (one FUSE LOOKUP per operation on a FUSE mount).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MSG_SIZE 64
#define MAXP 1024               /* producer ids 0..MAXP-1 */
#define CLAIM_BUF (64 * 1024)
#define LAT_MAX 65536           /* latency reservoir per consumer */
#define MAX_ERRORS 100000

static volatile sig_atomic_t g_drain, g_stop, g_usr1, g_alarm;

static const char *opt_out;
static double opt_drain_max = 60;
static bool opt_wait;
static const char *opt_observer = "stat";
static bool opt_reap_first;
static double opt_bound_ms = 3000;
static long opt_interval_us = 150;
static int opt_giveup = 3;
static double opt_stall = 3;
static long long opt_count = -1;        /* produce: -n */
static bool opt_drain_now;              /* consumers: -d */

static void on_usr1(int s) { (void)s; g_drain = 1; g_usr1++; }
static void on_alrm(int s) { (void)s; g_alarm++; }
static void on_term(int s) { (void)s; g_stop = 1; }

static void handle(int sig, void (*fn)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;        /* no SA_RESTART: interrupt blocked reads */
	sigaction(sig, &sa, NULL);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

static void barrier(void)
{
	char c;

	if (!opt_wait)
		return;
	while (read(0, &c, 1) < 0 && errno == EINTR)
		;
}

static bool fatal_errno(int e)
{
	return e == ENOTCONN || e == ECONNABORTED || e == ENODEV || e == EBADF;
}

static int open_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "queue_load: open %s: %s\n", path, strerror(errno));
		exit(2);
	}
	return fd;
}

static void arm_alarm(double secs)
{
	struct itimerval it;

	memset(&it, 0, sizeof(it));
	it.it_value.tv_sec = (time_t)secs;
	it.it_value.tv_usec = (suseconds_t)((secs - (double)(time_t)secs) * 1e6);
	if (it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0)
		it.it_value.tv_usec = 1;
	setitimer(ITIMER_REAL, &it, NULL);
}

/* ------------------------------------------------------------- messages */

static void make_body(char *buf, unsigned id, unsigned long long seq)
{
	int n = snprintf(buf, MSG_SIZE + 1, "eddyq p=%05u s=%012llu t=%020llu", id, seq,
			 (unsigned long long)now_ns());

	if (n < 0)
		n = 0;
	for (int i = n; i < MSG_SIZE - 1; i++)
		buf[i] = '.';
	buf[MSG_SIZE - 1] = '\n';
}

struct run {
	long long last, first, end;     /* last seen; current run [first, end] */
	bool active;
};

struct cons {
	const char *role;
	int dfd;
	double t0, deadline, hard_end;
	bool safe;                      /* consume-head-safe */
	bool draining;                  /* drain flag sampled before the step */
	bool window_reported, timed_out, drained, nonblock_ignored;
	unsigned long long window, total, races, empty, errors, order, bad, mismatch;
	unsigned long long spurious, zero_reads, poll_timeouts, eintr, incomplete;
	double last_progress;           /* time of the last consumed message */
	uint64_t start_ns, last_ns;     /* CLOCK_MONOTONIC: start, last message */
	double drain_t0;
	bool stalled;
	char first_error[200];
	struct run runs[MAXP];
	FILE *out;
	uint32_t *lat;
	size_t nlat;
	unsigned long long lat_seen;
	uint64_t rng;
};

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

/* Record an error; returns true if the run must stop. */
static bool cerr(struct cons *c, const char *what, int e)
{
	c->errors++;
	if (!c->first_error[0])
		snprintf(c->first_error, sizeof(c->first_error), "%s: %s", what, strerror(e));
	if (c->errors <= 3)
		fprintf(stderr, "queue_load %s: %s: %s\n", c->role, what, strerror(e));
	return fatal_errno(e) || c->errors > MAX_ERRORS;
}

static void flush_run(struct cons *c, unsigned p)
{
	struct run *r = &c->runs[p];

	if (r->active && c->out)
		fprintf(c->out, "%u %lld %lld\n", p, r->first, r->end);
	r->active = false;
}

static void add_latency(struct cons *c, uint64_t t)
{
	uint64_t now = now_ns();
	uint32_t us = now > t ? (uint32_t)((now - t) / 1000 > UINT32_MAX ? UINT32_MAX
					     : (now - t) / 1000) : 0;

	c->lat_seen++;
	if (c->nlat < LAT_MAX) {
		c->lat[c->nlat++] = us;
		return;
	}
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 7;
	c->rng ^= c->rng << 17;
	uint64_t j = c->rng % c->lat_seen;
	if (j < LAT_MAX)
		c->lat[j] = us;
}

/* One consumed message: name (NULL if unknown) and its body. */
static void got_message(struct cons *c, const char *name, const char *buf, ssize_t n)
{
	unsigned p;
	unsigned long long s, t;

	c->total++;
	c->last_ns = now_ns();
	c->last_progress = (double)c->last_ns / 1e9;
	if (c->last_progress < c->deadline)
		c->window++;
	if (n != MSG_SIZE || buf[MSG_SIZE - 1] != '\n' ||
	    sscanf(buf, "eddyq p=%5u s=%12llu t=%20llu", &p, &s, &t) != 3 || p >= MAXP) {
		c->bad++;
		return;
	}
	if (name) {
		unsigned np;
		unsigned long long ns;

		if (sscanf(name, "p%u-m%llu", &np, &ns) != 2 || np != p || ns != s)
			c->mismatch++;
	}
	struct run *r = &c->runs[p];
	long long seq = (long long)s;

	if (r->active && seq <= r->last)
		c->order++;
	if (r->active && seq == r->end + 1) {
		r->end = seq;
	} else {
		flush_run(c, p);
		r->active = true;
		r->first = r->end = seq;
	}
	r->last = seq;
	add_latency(c, t);
}

static ssize_t read_all(int fd, char *buf, size_t cap)
{
	size_t got = 0;

	while (got < cap) {
		ssize_t n = read(fd, buf + got, cap - got);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static void check_window(struct cons *c, double t)
{
	if (!c->window_reported && t >= c->deadline) {
		c->window_reported = true;
		printf("{\"phase\": \"window\", \"role\": \"%s\", \"window\": %llu}\n", c->role,
		       c->window);
		fflush(stdout);
	}
}

static void report_consumer(struct cons *c)
{
	for (unsigned p = 0; p < MAXP; p++)
		flush_run(c, p);
	if (c->out && fclose(c->out) != 0)
		fprintf(stderr, "queue_load: writing %s: %s\n", opt_out, strerror(errno));
	qsort(c->lat, c->nlat, sizeof(uint32_t), cmp_u32);
	uint32_t p50 = 0, p99 = 0, mx = 0;

	if (c->nlat) {
		p50 = c->lat[(c->nlat - 1) / 2];
		p99 = c->lat[(size_t)((double)(c->nlat - 1) * 0.99)];
		mx = c->lat[c->nlat - 1];
	}
	printf("{\"role\": \"%s\", \"window\": %llu, \"total\": %llu, \"seconds\": %.3f, "
	       "\"elapsed\": %.3f, \"errors\": %llu, \"races\": %llu, \"empty_polls\": %llu, "
	       "\"order_violations\": %llu, \"bad_bodies\": %llu, \"name_mismatch\": %llu, "
	       "\"spurious\": %llu, \"zero_reads\": %llu, \"poll_timeouts\": %llu, "
	       "\"eintr\": %llu, \"incomplete\": %llu, \"timed_out\": %s, \"stalled\": %s, "
	       "\"drained\": %s, "
	       "\"nonblock_ignored\": %s, \"lat_us_p50\": %u, \"lat_us_p99\": %u, "
	       "\"lat_us_max\": %u, \"start_ns\": %llu, \"last_ns\": %llu, "
	       "\"first_error\": ",
	       c->role, c->window, c->total, c->deadline - c->t0, now_s() - c->t0, c->errors,
	       c->races, c->empty, c->order, c->bad, c->mismatch, c->spurious, c->zero_reads,
	       c->poll_timeouts, c->eintr, c->incomplete, c->timed_out ? "true" : "false",
	       c->stalled ? "true" : "false",
	       c->drained ? "true" : "false", c->nonblock_ignored ? "true" : "false", p50, p99,
	       mx, (unsigned long long)c->start_ns, (unsigned long long)c->last_ns);
	json_str(stdout, c->first_error);
	printf("}\n");
	fflush(stdout);
}

/* -------------------------------------------------------------- steps */

enum { STEP_FATAL = -1, STEP_EMPTY = 0, STEP_GOT = 1, STEP_RETRY = 2, STEP_WAIT = 3 };

/*
 * A message is visible as soon as it is created, before its producer has
 * written it.  A consumer that reads less than a whole body (64 bytes ending
 * in '\n') leaves it alone and tries again later (STEP_WAIT), like a real
 * consumer of a fixed-size/terminated format would; "incomplete" counts these.
 * While draining (all producers have exited) nothing can still be in flight,
 * so a short message is consumed and counted as a bad body.
 */
static bool incomplete(struct cons *c, const char *buf, ssize_t r)
{
	if (c->draining || (r == MSG_SIZE && buf[MSG_SIZE - 1] == '\n'))
		return false;
	c->incomplete++;
	return true;
}

static int unlink_retry(int dfd, const char *name)
{
	int r;

	while ((r = unlinkat(dfd, name, 0)) < 0 && errno == EINTR)
		;
	return r;
}

static int step_head(struct cons *c)
{
	char tgt[512], tl[512], buf[4096];
	ssize_t n = readlinkat(c->dfd, "head", tgt, sizeof(tgt) - 1);

	if (n < 0) {
		if (errno == ENOENT)
			return STEP_EMPTY;
		if (errno == EINTR)
			return STEP_RETRY;
		return cerr(c, "readlink head", errno) ? STEP_FATAL : STEP_EMPTY;
	}
	tgt[n] = 0;
	if (c->safe && !c->draining) {
		ssize_t m = readlinkat(c->dfd, "tail", tl, sizeof(tl) - 1);

		if (m < 0) {
			if (errno == ENOENT)
				return STEP_EMPTY;
			if (errno == EINTR)
				return STEP_RETRY;
			return cerr(c, "readlink tail", errno) ? STEP_FATAL : STEP_EMPTY;
		}
		tl[m] = 0;
		if (strcmp(tl, tgt) == 0)
			return STEP_EMPTY;      /* one message left: do not pop it (B1) */
	}
	int fd;

	while ((fd = openat(c->dfd, "head", O_RDONLY | O_CLOEXEC)) < 0 && errno == EINTR)
		;
	if (fd < 0) {
		if (errno == ENOENT)
			return STEP_EMPTY;
		return cerr(c, "open head", errno) ? STEP_FATAL : STEP_EMPTY;
	}
	ssize_t r = read_all(fd, buf, sizeof(buf));
	int e = errno;

	close(fd);
	if (r < 0)
		return cerr(c, "read head", e) ? STEP_FATAL : STEP_RETRY;
	if (incomplete(c, buf, r))
		return STEP_WAIT;
	if (unlink_retry(c->dfd, "head") < 0) {
		if (errno == ENOENT) {
			c->races++;
			return STEP_RETRY;
		}
		return cerr(c, "unlink head", errno) ? STEP_FATAL : STEP_RETRY;
	}
	got_message(c, tgt, buf, r);
	return STEP_GOT;
}

/* open, read, unlink one message by name; STEP_RETRY if another consumer won */
static int take_by_name(struct cons *c, const char *name)
{
	char buf[4096];
	int fd;

	while ((fd = openat(c->dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0 &&
	       errno == EINTR)
		;
	if (fd < 0) {
		if (errno == ENOENT) {
			c->races++;
			return STEP_RETRY;
		}
		return cerr(c, "open message", errno) ? STEP_FATAL : STEP_RETRY;
	}
	ssize_t r = read_all(fd, buf, sizeof(buf));
	int e = errno;

	close(fd);
	if (r < 0)
		return cerr(c, "read message", e) ? STEP_FATAL : STEP_RETRY;
	if (incomplete(c, buf, r))
		return STEP_WAIT;
	if (unlink_retry(c->dfd, name) < 0) {
		if (errno == ENOENT) {
			c->races++;
			return STEP_RETRY;
		}
		return cerr(c, "unlink message", errno) ? STEP_FATAL : STEP_RETRY;
	}
	got_message(c, name, buf, r);
	return STEP_GOT;
}

static int step_name(struct cons *c)
{
	char tgt[512];
	ssize_t n = readlinkat(c->dfd, "head", tgt, sizeof(tgt) - 1);

	if (n < 0) {
		if (errno == ENOENT)
			return STEP_EMPTY;
		if (errno == EINTR)
			return STEP_RETRY;
		return cerr(c, "readlink head", errno) ? STEP_FATAL : STEP_EMPTY;
	}
	tgt[n] = 0;
	return take_by_name(c, tgt);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int step_scan(struct cons *c)
{
	int fd = openat(c->dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return cerr(c, "open dir", errno) ? STEP_FATAL : STEP_EMPTY;
	DIR *d = fdopendir(fd);

	if (!d) {
		close(fd);
		return cerr(c, "fdopendir", errno) ? STEP_FATAL : STEP_EMPTY;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;

	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != 'p' || !strstr(de->d_name, "-m"))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			char **nn = realloc(names, cap * sizeof(*names));

			if (!nn)
				break;
			names = nn;
		}
		names[n] = strdup(de->d_name);
		if (names[n])
			n++;
	}
	closedir(d);
	int ret = n ? STEP_RETRY : STEP_EMPTY;
	unsigned wait_p = MAXP;         /* producer whose message was incomplete */

	qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n; i++) {
		unsigned p = MAXP;

		if (sscanf(names[i], "p%u-", &p) != 1)
			p = MAXP;
		if (ret != STEP_FATAL && !g_stop && now_s() < c->hard_end &&
		    (p != wait_p || p == MAXP)) {
			int r = take_by_name(c, names[i]);

			if (r == STEP_FATAL)
				ret = STEP_FATAL;
			else if (r == STEP_GOT)
				ret = STEP_GOT;
			else if (r == STEP_WAIT) {
				wait_p = p;     /* its later names cannot be complete either */
				if (ret != STEP_GOT)
					ret = STEP_WAIT;
			}
			check_window(c, now_s());
		}
		free(names[i]);
	}
	free(names);
	return ret;
}

static void backoff(unsigned *k)
{
	if (*k < 32)
		sched_yield();
	else
		sleep_us(50);
	(*k)++;
}

/* While draining: no message for opt_stall seconds although the queue does
 * not look empty (e.g. eventfs's head naming a removed file) ends the run. */
static bool stalled(struct cons *c, double t)
{
	if (!g_drain)
		return false;
	if (c->drain_t0 == 0)
		c->drain_t0 = t;
	double since = c->last_progress > c->drain_t0 ? c->last_progress : c->drain_t0;

	if (t - since < opt_stall)
		return false;
	c->stalled = true;
	return true;
}

static void consume_loop(struct cons *c, int (*step)(struct cons *))
{
	unsigned k = 0;

	for (;;) {
		if (g_stop)
			break;
		double t = now_s();

		check_window(c, t);
		if (t > c->hard_end) {
			c->timed_out = true;
			break;
		}
		c->draining = g_drain;
		if (stalled(c, t))
			break;
		int r = step(c);

		if (r == STEP_FATAL)
			break;
		if (r == STEP_EMPTY) {
			if (c->draining) {
				c->drained = true;
				break;
			}
			c->empty++;
			backoff(&k);
		} else if (r == STEP_WAIT) {
			backoff(&k);
		} else {
			k = 0;
		}
	}
}

/* ------------------------------------------------------------- claim */

struct claim_parser {
	char hdr[512];
	size_t hlen;
	bool in_data;
	size_t want, got;
	char name[512];
	char body[4096];
};

static void claim_feed(struct cons *c, struct claim_parser *ps, const char *p, size_t n)
{
	while (n) {
		if (!ps->in_data) {
			const char *nl = memchr(p, '\n', n);
			size_t take = nl ? (size_t)(nl - p) + 1 : n;

			if (ps->hlen + take >= sizeof(ps->hdr)) {
				c->bad++;       /* absurd header: resynchronisation impossible */
				ps->hlen = 0;
				return;
			}
			memcpy(ps->hdr + ps->hlen, p, take);
			ps->hlen += take;
			p += take;
			n -= take;
			if (!nl)
				return;
			ps->hdr[ps->hlen - 1] = 0;
			char *sp = strchr(ps->hdr, ' ');
			char *end;
			unsigned long long sz = strtoull(ps->hdr, &end, 10);

			if (!sp || end != sp) {
				c->bad++;
				fprintf(stderr, "queue_load: bad claim header '%.60s'\n", ps->hdr);
				ps->hlen = 0;
				return;
			}
			snprintf(ps->name, sizeof(ps->name), "%s", sp + 1);
			ps->hlen = 0;
			ps->in_data = true;
			ps->want = (size_t)sz;
			ps->got = 0;
		}
		size_t take = ps->want - ps->got < n ? ps->want - ps->got : n;

		if (ps->got < sizeof(ps->body)) {
			size_t keep = sizeof(ps->body) - ps->got < take ? sizeof(ps->body) - ps->got
									 : take;
			memcpy(ps->body + ps->got, p, keep);
		}
		ps->got += take;
		p += take;
		n -= take;
		if (ps->got == ps->want) {
			ps->in_data = false;
			got_message(c, ps->name, ps->body,
				    ps->want > sizeof(ps->body) ? -1 : (ssize_t)ps->want);
		}
	}
}

static void claim_loop(struct cons *c, bool pollmode)
{
	int fd = openat(c->dfd, ".claim", O_RDONLY | O_CLOEXEC | (pollmode ? O_NONBLOCK : 0));

	if (fd < 0) {
		cerr(c, "open .claim", errno);
		return;
	}
	char *buf = malloc(CLAIM_BUF);
	struct claim_parser *ps = calloc(1, sizeof(*ps));
	bool nonblock = pollmode;
	unsigned k = 0;
	int drain_eintr = 0;
	sig_atomic_t usr1_seen = 0;

	if (!buf || !ps) {
		cerr(c, "malloc", ENOMEM);
		close(fd);
		return;
	}
	for (;;) {
		if (g_stop)
			break;
		double t = now_s();

		check_window(c, t);
		if (t > c->hard_end) {
			c->timed_out = true;
			break;
		}
		bool d = g_drain;

		if (stalled(c, t))
			break;
		if (d && !nonblock) {
			int fl = fcntl(fd, F_GETFL);

			if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
				cerr(c, "fcntl O_NONBLOCK", errno);
			nonblock = true;
		}
		if (d && !usr1_seen)
			usr1_seen = g_usr1;
		/* backlog mode (-d) keeps polling: the idiom's cost includes it;
		 * a poll that times out then ends the run through the read */
		if (pollmode && (!d || opt_drain_now)) {
			struct pollfd pf = { .fd = fd, .events = POLLIN };
			int pr = poll(&pf, 1, 100);

			if (pr < 0) {
				if (errno == EINTR)
					continue;
				if (cerr(c, "poll", errno))
					break;
				backoff(&k);
				continue;
			}
			if (pr == 0) {
				c->poll_timeouts++;
				if (!d)
					continue;
			}
			if (pf.revents & (POLLERR | POLLNVAL)) {
				cerr(c, "poll revents", EIO);
				break;
			}
		}
		ssize_t n = read(fd, buf, CLAIM_BUF);

		if (n > 0) {
			k = 0;
			drain_eintr = 0;
			claim_feed(c, ps, buf, (size_t)n);
			continue;
		}
		if (n == 0) {
			c->zero_reads++;
			if (d) {
				c->drained = true;
				break;
			}
			backoff(&k);
			continue;
		}
		if (errno == EAGAIN) {
			if (d) {
				c->drained = true;
				break;
			}
			c->spurious++;      /* poll said readable, another consumer won */
			continue;
		}
		if (errno == EINTR) {
			c->eintr++;
			/* bench/queue repeats SIGUSR1 every second while we run: a read
			 * that keeps blocking after O_NONBLOCK was set is not honouring it */
			if (d && nonblock && g_usr1 != usr1_seen) {
				usr1_seen = g_usr1;
				if (++drain_eintr >= 3) {
					c->nonblock_ignored = true;
					break;
				}
			}
			continue;
		}
		if (cerr(c, "read .claim", errno))
			break;
		backoff(&k);
	}
	if (ps->in_data || ps->hlen)
		c->bad++;               /* a record was cut short */
	close(fd);
	free(buf);
	free(ps);
}

static int run_consumer(const char *role, const char *dir, double secs)
{
	struct cons *c = calloc(1, sizeof(*c));

	if (!c || !(c->lat = malloc(LAT_MAX * sizeof(uint32_t)))) {
		fprintf(stderr, "queue_load: out of memory\n");
		return 2;
	}
	c->role = role;
	c->rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	c->dfd = open_dir(dir);
	if (opt_out && !(c->out = fopen(opt_out, "w"))) {
		fprintf(stderr, "queue_load: %s: %s\n", opt_out, strerror(errno));
		return 2;
	}
	handle(SIGUSR1, on_usr1);
	handle(SIGALRM, on_alrm);
	handle(SIGTERM, on_term);
	handle(SIGINT, on_term);
	barrier();
	if (opt_drain_now)
		g_drain = 1;
	c->start_ns = now_ns();
	c->t0 = (double)c->start_ns / 1e9;
	c->deadline = c->t0 + secs;
	c->hard_end = c->deadline + opt_drain_max;
	arm_alarm(secs);
	if (!strcmp(role, "consume-head"))
		consume_loop(c, step_head);
	else if (!strcmp(role, "consume-head-safe")) {
		c->safe = true;
		consume_loop(c, step_head);
	} else if (!strcmp(role, "consume-name"))
		consume_loop(c, step_name);
	else if (!strcmp(role, "consume-scan"))
		consume_loop(c, step_scan);
	else if (!strcmp(role, "consume-claim"))
		claim_loop(c, false);
	else
		claim_loop(c, true);
	report_consumer(c);
	return 0;
}

/* ------------------------------------------------------------- produce */

static int run_produce(const char *dir, double secs, unsigned id)
{
	int dfd = open_dir(dir);
	char name[64], body[MSG_SIZE + 1];
	unsigned long long seq = 0, errors = 0, werr = 0, eexist = 0;
	char first[200] = "";

	if (id >= MAXP) {
		fprintf(stderr, "queue_load: producer id must be < %d\n", MAXP);
		return 2;
	}
	handle(SIGTERM, on_term);
	handle(SIGINT, on_term);
	barrier();
	uint64_t start_ns = now_ns();
	double t0 = (double)start_ns / 1e9, deadline = t0 + secs;

	while (!g_stop && now_s() < deadline && (opt_count < 0 || (long long)seq < opt_count)) {
		snprintf(name, sizeof(name), "p%u-m%010llu", id, seq);
		int fd = openat(dfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);

		if (fd < 0) {
			int e = errno;

			if (e == EINTR)
				continue;
			errors++;
			if (!first[0])
				snprintf(first, sizeof(first), "create: %s", strerror(e));
			if (errors <= 3)
				fprintf(stderr, "queue_load produce %u: create %s: %s\n", id, name,
					strerror(e));
			if (e == EEXIST) {      /* an interrupted create that did happen */
				eexist++;
				seq++;
				continue;
			}
			if (fatal_errno(e) || errors > MAX_ERRORS)
				break;
			sleep_us(1000);
			continue;
		}
		make_body(body, id, seq);
		ssize_t w;

		while ((w = write(fd, body, MSG_SIZE)) < 0 && errno == EINTR)
			;
		if (w != MSG_SIZE) {
			werr++;
			if (!first[0])
				snprintf(first, sizeof(first), "write: %s",
					 w < 0 ? strerror(errno) : "short write");
		}
		if (close(fd) < 0) {
			werr++;
			if (!first[0])
				snprintf(first, sizeof(first), "close: %s", strerror(errno));
		}
		seq++;
	}
	uint64_t end_ns = now_ns();

	printf("{\"role\": \"produce\", \"id\": %u, \"produced\": %llu, \"seconds\": %.3f, "
	       "\"elapsed\": %.3f, \"errors\": %llu, \"write_errors\": %llu, \"eexist\": %llu, "
	       "\"start_ns\": %llu, \"end_ns\": %llu, \"first_error\": ", id, seq, secs,
	       (double)(end_ns - start_ns) / 1e9, errors, werr, eexist,
	       (unsigned long long)start_ns, (unsigned long long)end_ns);
	json_str(stdout, first);
	printf("}\n");
	fflush(stdout);
	return 0;
}

/* -------------------------------------------------------------- vanish */

/* 1 gone, 0 still there, -1 error (errno set) */
static int observe_gone(const char *dir, const char *path, const char *base)
{
	if (!strcmp(opt_observer, "stat")) {
		struct stat st;

		if (stat(path, &st) == 0)
			return 0;
		return errno == ENOENT ? 1 : -1;
	}
	DIR *d = opendir(dir);

	if (!d)
		return -1;
	struct dirent *de;
	int gone = 1;

	while ((de = readdir(d)) != NULL)
		if (!strcmp(de->d_name, base)) {
			gone = 0;
			break;
		}
	closedir(d);
	return gone;
}

static void reap(pid_t ch)
{
	while (waitpid(ch, NULL, 0) < 0 && errno == EINTR)
		;
}

static int run_vanish(const char *dir, int trials)
{
	double *lat = calloc((size_t)trials + 1, sizeof(double));
	int n = 0, never = 0, errors = 0, skipped = 0, consec_never = 0;
	char first[200] = "", path[4096], base[64];

	if (!lat)
		return 2;
	if (strcmp(opt_observer, "stat") && strcmp(opt_observer, "readdir")) {
		fprintf(stderr, "queue_load: observer must be stat or readdir\n");
		return 2;
	}
	for (int i = 0; i < trials; i++) {
		if (opt_giveup > 0 && consec_never >= opt_giveup) {
			skipped = trials - i;
			break;
		}
		snprintf(base, sizeof(base), "vq%d-%d", (int)getpid(), i);
		snprintf(path, sizeof(path), "%s/%s", dir, base);
		int pfd[2];

		if (pipe2(pfd, O_CLOEXEC) < 0)
			return 2;
		pid_t ch = fork();

		if (ch < 0)
			return 2;
		if (ch == 0) {
			close(pfd[0]);
			int e = mkdir(path, 0700) < 0 ? errno : 0;

			if (write(pfd[1], &e, sizeof(e)) != (ssize_t)sizeof(e))
				_exit(1);
			close(pfd[1]);
			for (;;)
				pause();
		}
		close(pfd[1]);
		int e = -1;
		struct pollfd pf = { .fd = pfd[0], .events = POLLIN };

		if (poll(&pf, 1, 10000) == 1 && read(pfd[0], &e, sizeof(e)) != (ssize_t)sizeof(e))
			e = EIO;
		close(pfd[0]);
		if (e == 0) {
			struct stat st;

			if (stat(path, &st) < 0)
				e = errno;
			else if (observe_gone(dir, path, base) != 0)
				e = ENOENT;     /* readdir does not list it yet */
		}
		if (e != 0) {
			errors++;
			if (!first[0])
				snprintf(first, sizeof(first), "mkdir/check: %s",
					 e < 0 ? "child did not answer" : strerror(e));
			kill(ch, SIGKILL);
			reap(ch);
			if (fatal_errno(e))
				break;
			continue;
		}
		kill(ch, SIGKILL);
		double t0 = now_s(), bound = opt_bound_ms / 1000.0;

		if (opt_reap_first)
			reap(ch);
		int gone;

		for (;;) {
			gone = observe_gone(dir, path, base);
			if (gone != 0 || now_s() - t0 > bound)
				break;
			sleep_us(opt_interval_us);
		}
		double dt = now_s() - t0;

		if (!opt_reap_first)
			reap(ch);
		if (gone < 0) {
			errors++;
			if (!first[0])
				snprintf(first, sizeof(first), "observe: %s", strerror(errno));
			if (fatal_errno(errno))
				break;
		} else if (gone == 1) {
			lat[n++] = dt * 1000.0;
			consec_never = 0;
		} else {
			never++;
			consec_never++;
			rmdir(path);    /* tidy up if the fs lets us; ignore errors */
		}
	}
	printf("{\"role\": \"vanish\", \"observer\": \"%s\", \"trials\": %d, \"reap_first\": %s, "
	       "\"never\": %d, \"skipped\": %d, \"errors\": %d, \"bound_ms\": %.0f, "
	       "\"interval_us\": %ld, \"lat_ms\": [", opt_observer, trials,
	       opt_reap_first ? "true" : "false", never, skipped, errors, opt_bound_ms,
	       opt_interval_us);
	for (int i = 0; i < n; i++)
		printf("%s%.3f", i ? ", " : "", lat[i]);
	printf("], \"first_error\": ");
	json_str(stdout, first);
	printf("}\n");
	fflush(stdout);
	free(lat);
	return 0;
}

/* ----------------------------------------------------------------- rtt */

static void usage(void);

static int run_rtt(const char *dir, long n)
{
	int dfd = open_dir(dir), fd;
	struct stat st;
	uint64_t t0, t1;

	if (n < 1)
		usage();
	fd = openat(dfd, "rtt-probe", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, "x", 1) != 1) {
		fprintf(stderr, "queue_load: create %s/rtt-probe: %s\n", dir, strerror(errno));
		return 2;
	}
	close(fd);
	t0 = now_ns();
	for (long i = 0; i < n; i++)
		if (fstatat(dfd, "rtt-probe", &st, 0) < 0) {
			fprintf(stderr, "queue_load: stat: %s\n", strerror(errno));
			return 2;
		}
	t1 = now_ns();
	unlinkat(dfd, "rtt-probe", 0);
	printf("{\"role\": \"rtt\", \"calls\": %ld, \"us_per_call\": %.3f}\n", n,
	       (double)(t1 - t0) / 1e3 / (double)n);
	return 0;
}

/* ---------------------------------------------------------------- main */

static void usage(void)
{
	fprintf(stderr,
		"usage: queue_load [-w] [-n N] produce DIR SECONDS ID\n"
		"       queue_load [-w] [-d] [-o FILE] [-D SEC] [-S SEC] consume-{head,head-safe,name,scan,"
		"claim,claim-poll} DIR SECONDS\n"
		"       queue_load [-O stat|readdir] [-r] [-T MS] [-i US] [-g N] vanish DIR TRIALS\n"
		"       queue_load rtt DIR N\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int o;

	while ((o = getopt(argc, argv, "+wn:do:D:S:O:rT:i:g:")) != -1) {
		switch (o) {
		case 'w': opt_wait = true; break;
		case 'n': opt_count = atoll(optarg); break;
		case 'd': opt_drain_now = true; break;
		case 'o': opt_out = optarg; break;
		case 'D': opt_drain_max = atof(optarg); break;
		case 'S': opt_stall = atof(optarg); break;
		case 'O': opt_observer = optarg; break;
		case 'r': opt_reap_first = true; break;
		case 'T': opt_bound_ms = atof(optarg); break;
		case 'i': opt_interval_us = atol(optarg); break;
		case 'g': opt_giveup = atoi(optarg); break;
		default: usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 3)
		usage();
	const char *role = argv[0], *dir = argv[1];

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(role, "produce")) {
		if (argc != 4)
			usage();
		return run_produce(dir, atof(argv[2]), (unsigned)atoi(argv[3]));
	}
	if (!strcmp(role, "vanish"))
		return run_vanish(dir, atoi(argv[2]));
	if (!strcmp(role, "rtt"))
		return run_rtt(dir, atol(argv[2]));
	if (!strcmp(role, "consume-head") || !strcmp(role, "consume-head-safe") ||
	    !strcmp(role, "consume-name") || !strcmp(role, "consume-scan") ||
	    !strcmp(role, "consume-claim") || !strcmp(role, "consume-claim-poll"))
		return run_consumer(role, dir, atof(argv[2]));
	usage();
	return 2;
}
