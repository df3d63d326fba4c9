/*
** cli.h -- the eddyfs command: shared declarations of its subcommands.
** Exit status everywhere: 0 success, 1 failure, 2 usage error or refusal.
*/
#ifndef EDDY_CLI_H
#define EDDY_CLI_H

#include <stdbool.h>
#include <stddef.h>

#define EXIT_USAGE 2

int cmd_mount(int argc, char **argv);
int cmd_umount(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_chaos(int argc, char **argv);
int cmd_trace(int argc, char **argv);

/* control_client.c: one request to a running mount; prints the reply.
** Returns the exit status. */
int cli_control_request(const char *mnt, const char *request);
/* The same, with the reply in BUF (NUL-terminated) instead of stdout. */
int cli_control_request_capture(const char *mnt, const char *request, char *buf,
				size_t size);
int cmd_format(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_fsck(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_load(int argc, char **argv);
/* cmd_client.c: ls, cat, put, ... on a volume without FUSE */
bool cli_is_client_command(const char *cmd);
int cmd_client(const char *cmd, int argc, char **argv);

/* options.c */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Boolean from the environment: 1/true/yes/on or 0/false/no/off. */
int cli_env_bool(const char *name, bool *out);
int cli_parse_int(const char *what, const char *s, long min, long max, long *out);
/* Absolute, lexically normalised path (no filesystem access). */
int cli_abspath(const char *in, char *out, size_t size);

/* mounts.c: the mount table */
struct cli_mount {
	char *source, *target, *fstype;
};
/* Reads /proc/self/mounts; returns the number of entries or -errno. */
int cli_mounts_read(struct cli_mount **out);
void cli_mounts_free(struct cli_mount *m, int n);
bool cli_is_mountpoint(const char *abs);
bool cli_path_within(const char *path, const char *dir);

#endif /* EDDY_CLI_H */
