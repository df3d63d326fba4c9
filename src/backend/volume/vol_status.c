/*
** vol_status.c -- what `eddyfs status <volume>` prints: the volume's
** format, its sessions (live or expired, by the rule of vol_session.c),
** usage and counters. Reads only: a read-only connection that joins no
** session, changes nothing, and works while mounts (or an exclusive tool)
** have the volume open.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vol_int.h"

static int64_t q_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s;
	int64_t v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

static int64_t file_size(int dir_fd, const char *name)
{
	struct stat st;

	return fstatat(dir_fd, name, &st, 0) == 0 ? (int64_t)st.st_size : 0;
}

/* Block files and their bytes on disk. */
static void block_files(int dir_fd, int64_t *n, int64_t *bytes)
{
	*n = *bytes = 0;
	for (int i = 0; i < 256; i++) {
		char name[16];
		struct dirent *de;
		int fd;
		DIR *d;

		snprintf(name, sizeof(name), "%s/%02x", VOL_BLOCKS_DIR, i);
		if ((fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
			continue;
		if (!(d = fdopendir(fd))) {
			close(fd);
			continue;
		}
		while ((de = readdir(d))) {
			struct stat st;

			if (de->d_name[0] == '.' || fstatat(fd, de->d_name, &st, 0) < 0)
				continue;
			(*n)++;
			*bytes += (int64_t)st.st_blocks * 512;
		}
		closedir(d);
	}
}

static void print_sessions(sqlite3 *db, FILE *out)
{
	char host[256] = "";
	int64_t now = vol_now();
	sqlite3_stmt *s;

	gethostname(host, sizeof(host) - 1);
	if (sqlite3_prepare_v2(db, "SELECT id, kind, host, pid, pid_start, coalesce(mountpoint,"
			       " '-'), heartbeat, started FROM sessions ORDER BY id", -1, &s,
			       NULL) != SQLITE_OK)
		return;
	fprintf(out, "sessions\n  %-5s %-7s %-16s %-8s %-10s %-7s %s\n", "ID", "KIND", "HOST",
		"PID", "HEARTBEAT", "STATE", "MOUNTPOINT");
	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *h = (const char *)sqlite3_column_text(s, 2);
		double age = (double)(now - sqlite3_column_int64(s, 6)) / 1e9;
		bool here = h && strcmp(h, host) == 0;
		bool live = age * 1000 <= VOL_EXPIRE_MS &&
			    (!here || vol_pid_alive((pid_t)sqlite3_column_int64(s, 3),
						    sqlite3_column_int64(s, 4)));
		char hb[32];

		snprintf(hb, sizeof(hb), "%.1fs ago", age < 0 ? 0 : age);
		fprintf(out, "  %-5lld %-7s %-16s %-8lld %-10s %-7s %s\n",
			(long long)sqlite3_column_int64(s, 0), sqlite3_column_text(s, 1),
			h ? h : "?", (long long)sqlite3_column_int64(s, 3), hb,
			live ? "live" : "expired", sqlite3_column_text(s, 5));
	}
	sqlite3_finalize(s);
}

int vol_status(const char *dir, FILE *out, char *err, size_t errlen)
{
	struct vol_format_options fo;
	char path[4200];
	sqlite3 *db = NULL, *chk;
	int64_t nblocks, block_bytes;
	int dir_fd, r, rc;

	dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0) {
		r = -errno;
		snprintf(err, errlen, "volume %s: %s", dir, strerror(errno));
		return r;
	}
	/* the format check (an immutable look), then a live read-only view */
	r = vol_db_open_checked(dir_fd, dir, true, &chk, &fo, err, errlen);
	if (r) {
		close(dir_fd);
		return r;
	}
	sqlite3_close(chk);
	snprintf(path, sizeof(path), "%s/%s", dir, VOL_DB_NAME);
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, db ? sqlite3_errmsg(db) : "cannot open");
		sqlite3_close(db);
		close(dir_fd);
		return vol_db_errno(rc);
	}
	sqlite3_busy_timeout(db, 5000);
	/* one read transaction: every number from the same moment */
	vol_sql(db, "BEGIN");
	fprintf(out, "volume    %s\n", dir);
	fprintf(out, "format    block size %u, compress %s, capacity %llu%s, inodes max %llu%s\n",
		fo.block_size, fo.compress ? "zstd" : "none", (unsigned long long)fo.capacity,
		fo.capacity ? "" : " (host filesystem)", (unsigned long long)fo.max_inodes,
		fo.max_inodes ? "" : " (no limit)");
	if (q_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'sessions'") > 0)
		print_sessions(db, out);
	else
		fprintf(out, "sessions\n  (none: never opened by this version)\n");
	block_files(dir_fd, &nblocks, &block_bytes);
	fprintf(out, "usage\n");
	fprintf(out, "  bytes            %lld\n",
		(long long)q_int(db, "SELECT (SELECT total(len) FROM chunks) + (SELECT"
				 " total(length(name) + length(value)) FROM xattrs) + (SELECT"
				 " total(length(target)) FROM symlinks)"));
	fprintf(out, "  inodes           %lld\n", (long long)q_int(db, "SELECT count(*) FROM inodes"));
	fprintf(out, "  blocks           %lld referenced, %lld files, %lld bytes on disk\n",
		(long long)q_int(db, "SELECT count(*) FROM chunks"), (long long)nblocks,
		(long long)block_bytes);
	fprintf(out, "  database         %lld bytes (+ %lld in the log)\n",
		(long long)file_size(dir_fd, VOL_DB_NAME),
		(long long)file_size(dir_fd, VOL_DB_NAME "-wal"));
	fprintf(out, "counters\n");
	fprintf(out, "  orphans          %lld\n",
		(long long)q_int(db, "SELECT count(*) FROM inodes WHERE nlink = 0"));
	if (q_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'changes'") > 0) {
		fprintf(out, "  change log rows  %lld (last seq %lld)\n",
			(long long)q_int(db, "SELECT count(*) FROM changes"),
			(long long)q_int(db, "SELECT coalesce((SELECT seq FROM sqlite_sequence"
					 " WHERE name = 'changes'), 0)"));
		fprintf(out, "  holds            %lld\n",
			(long long)q_int(db, "SELECT count(*) FROM holds"));
		fprintf(out, "  locks            %lld\n",
			(long long)q_int(db, "SELECT count(*) FROM locks"));
	}
	vol_sql(db, "COMMIT");
	sqlite3_close(db);
	close(dir_fd);
	return 0;
}
