/*
** options.c -- small helpers of the eddyfs command: one-line errors,
** environment fallbacks, number parsing, path normalisation.
*/
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"

void cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("eddyfs: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void cli_warn(const char *fmt, ...)
{
	va_list ap;

	fputs("eddyfs: warning: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_env_bool(const char *name, bool *out)
{
	const char *v = getenv(name);
	static const char *const yes[] = { "1", "true", "yes", "on" };
	static const char *const no[] = { "0", "false", "no", "off", "" };
	size_t i;

	if (!v)
		return 0;
	for (i = 0; i < sizeof(yes) / sizeof(*yes); i++)
		if (strcasecmp(v, yes[i]) == 0) {
			*out = true;
			return 0;
		}
	for (i = 0; i < sizeof(no) / sizeof(*no); i++)
		if (strcasecmp(v, no[i]) == 0) {
			*out = false;
			return 0;
		}
	cli_error("%s=%s: expected 1/true/yes/on or 0/false/no/off", name, v);
	return -EINVAL;
}

int cli_parse_int(const char *what, const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		cli_error("%s: '%s' is not a whole number from %ld to %ld", what, s, min, max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

int cli_abspath(const char *in, char *out, size_t size)
{
	char buf[PATH_MAX * 2], *save, *tok;
	size_t len = 0;

	if (!*in)
		return -ENOENT;
	if (in[0] == '/') {
		snprintf(buf, sizeof(buf), "%s", in);
	} else {
		char cwd[PATH_MAX];

		if (!getcwd(cwd, sizeof(cwd)))
			return -errno;
		if ((size_t)snprintf(buf, sizeof(buf), "%s/%s", cwd, in) >= sizeof(buf))
			return -ENAMETOOLONG;
	}
	out[0] = 0;
	for (tok = strtok_r(buf, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (strcmp(tok, ".") == 0)
			continue;
		if (strcmp(tok, "..") == 0) {
			char *slash = strrchr(out, '/');

			if (slash)
				*slash = 0;
			len = strlen(out);
			continue;
		}
		if (len + strlen(tok) + 2 > size)
			return -ENAMETOOLONG;
		out[len++] = '/';
		strcpy(out + len, tok);
		len += strlen(tok);
	}
	if (len == 0)
		snprintf(out, size, "/");
	return 0;
}
