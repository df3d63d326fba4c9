/*
** control_client.c -- the CLI side of a running mount's control socket:
** send one request line, copy the "key value" reply to stdout. A reply
** that starts with "error: " is a refusal: printed on stderr, exit 1.
*/
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "../util/runtime.h"

int cli_control_request(const char *mnt, const char *request)
{
	char buf[8192];
	int r = cli_control_request_capture(mnt, request, buf, sizeof(buf));

	if (r == 0)
		fputs(buf, stdout);
	return r;
}

int cli_control_request_capture(const char *mnt, const char *request, char *buf,
				size_t size)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct eddy_runtime_paths rt;
	char abs[PATH_MAX], line[1100];
	size_t len = 0;
	int rlen = snprintf(line, sizeof(line), "%s\n", request);
	ssize_t n;
	int fd;

	if (cli_abspath(mnt, abs, sizeof(abs)) < 0 || eddy_runtime_find(abs, &rt) <= 0 ||
	    !rt.sock[0]) {
		cli_error("%s is not a running eddyfs mount of this user", mnt);
		return EXIT_USAGE;
	}
	memcpy(sa.sun_path, rt.sock, strlen(rt.sock) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    rlen < 0 || rlen >= (int)sizeof(line) ||
	    send(fd, line, (size_t)rlen, MSG_NOSIGNAL) != (ssize_t)rlen) {
		cli_error("cannot reach the daemon of %s: %s", mnt, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	while (len < size - 1 && (n = read(fd, buf + len, size - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = 0;
	if (strncmp(buf, "error: ", 7) == 0) {
		buf[strcspn(buf, "\n")] = 0;
		cli_error("%s", buf + 7);
		return 1;
	}
	return 0;
}
