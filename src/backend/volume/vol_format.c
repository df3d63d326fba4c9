/*
** vol_format.c -- the on-disk layout of a volume: `eddyfs format` and the
** checks every open makes before it trusts a directory.
**
** A volume is a directory holding:
**   eddyfs.db    SQLite, WAL mode. Tables (inode-keyed):
**                  meta(key, value)     format_version, block_size, uuid,
**                                       compress, capacity, max_inodes,
**                                       block_hwm (block ids handed out
**                                       up to here), created
**                  inodes(ino, mode, uid, gid, nlink, size, stored, rdev,
**                         atime, mtime, ctime, btime (ns), parent,
**                         next_cookie)  one row per inode; nlink 0: an
**                                       orphan (open-unlinked or crashed)
**                  dentries(parent, name, ino, cookie)  names; cookie
**                                       orders readdir, never reused
**                  symlinks(ino, target)
**                  xattrs(ino, name, value)
**                  chunks(ino, idx, block, len)  data (vol_int.h, DATA)
**                meta also holds used_bytes and ninodes (totals kept by
**                every transaction). Shared use (vol_session.c; added to
**                older volumes at open, no version bump):
**                  sessions(id, host, pid, pid_start, kind, mountpoint,
**                           started, heartbeat, cursor)  one per open
**                  holds(ino, session)  open-unlinked inodes kept alive
**                  changes(seq, session, kind, ino, parent, name)  the
**                                       change log (vol_follow.c)
**                  locks(ino, session, owner, flock, type, start, end,
**                        pid)           fcntl/flock locks (vol_lock.c)
**   blocks/XX/   immutable blocks, XX = low byte of the id in hex; a block
**                is a 32-byte header (magic "EDDYBLK1", raw length, stored
**                length, flags (1 = zstd), XXH3-64 of the stored bytes)
**                and the stored bytes. Named by a 16-hex-digit id that is
**                never reused; written as NAME.tmp, fsynced, renamed.
**   eddyfs.lock  flock(LOCK_SH) by every mount and client that has the
**                volume open; LOCK_EX|LOCK_NB by exclusive tools (fsck
**                --repair, gc, load), which refuse while anyone has it.
**
** Version rule: a volume whose format_version is above VOL_FORMAT_VERSION
** is refused, never changed.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vol_int.h"

static const char schema[] =
	"PRAGMA journal_mode=WAL;"
	"BEGIN;"
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
	"CREATE TABLE inodes(ino INTEGER PRIMARY KEY AUTOINCREMENT, mode INTEGER NOT NULL,"
	" uid INTEGER NOT NULL, gid INTEGER NOT NULL, nlink INTEGER NOT NULL,"
	" size INTEGER NOT NULL DEFAULT 0, stored INTEGER NOT NULL DEFAULT 0,"
	" rdev INTEGER NOT NULL DEFAULT 0, atime INTEGER NOT NULL, mtime INTEGER NOT NULL,"
	" ctime INTEGER NOT NULL, btime INTEGER NOT NULL, parent INTEGER NOT NULL DEFAULT 0,"
	" next_cookie INTEGER NOT NULL DEFAULT 3);"
	"CREATE INDEX inodes_orphans ON inodes(ino) WHERE nlink = 0;"
	"CREATE TABLE dentries(parent INTEGER NOT NULL, name BLOB NOT NULL,"
	" ino INTEGER NOT NULL, cookie INTEGER NOT NULL, PRIMARY KEY(parent, name))"
	" WITHOUT ROWID;"
	"CREATE UNIQUE INDEX dentries_by_cookie ON dentries(parent, cookie);"
	"CREATE TABLE symlinks(ino INTEGER PRIMARY KEY, target BLOB NOT NULL);"
	"CREATE TABLE xattrs(ino INTEGER NOT NULL, name BLOB NOT NULL, value BLOB NOT NULL,"
	" PRIMARY KEY(ino, name)) WITHOUT ROWID;"
	"CREATE TABLE chunks(ino INTEGER NOT NULL, idx INTEGER NOT NULL,"
	" block INTEGER NOT NULL, len INTEGER NOT NULL, PRIMARY KEY(ino, idx)) WITHOUT ROWID;";

void vol_format_options_default(struct vol_format_options *o)
{
	memset(o, 0, sizeof(*o));
	o->block_size = VOL_DEFAULT_BLOCK_SIZE;
}

static int meta_set(sqlite3 *db, const char *key, const char *text, int64_t num)
{
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)",
				    -1, &s, NULL);

	if (rc != SQLITE_OK)
		return vol_db_errno(rc);
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	if (text)
		sqlite3_bind_text(s, 2, text, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(s, 2, num);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : vol_db_errno(rc);
}

int vol_schema_create(sqlite3 *db, const struct vol_format_options *o, char *err, size_t errlen)
{
	unsigned char u[16];
	char uuid[40];
	int64_t now = vol_now();
	char root[256];
	int r;

	if (getrandom(u, sizeof(u), 0) != (ssize_t)sizeof(u)) {
		snprintf(err, errlen, "getrandom: %s", strerror(errno));
		return -errno;
	}
	u[6] = (u[6] & 0x0f) | 0x40;
	u[8] = (u[8] & 0x3f) | 0x80;
	snprintf(uuid, sizeof(uuid),
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
		 u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
		 u[14], u[15]);
	snprintf(root, sizeof(root),
		 "INSERT INTO inodes(ino, mode, uid, gid, nlink, atime, mtime, ctime, btime, parent, size)"
		 " VALUES(1, %u, %u, %u, 2, %" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 ", 1, 40)",
		 (unsigned)(S_IFDIR | 0755), (unsigned)geteuid(), (unsigned)getegid(), now, now,
		 now, now);
	if ((r = vol_sql(db, schema)) || (r = vol_sql(db, root)) ||
	    (r = meta_set(db, "format_version", NULL, VOL_FORMAT_VERSION)) ||
	    (r = meta_set(db, "block_size", NULL, o->block_size)) ||
	    (r = meta_set(db, "uuid", uuid, 0)) ||
	    (r = meta_set(db, "compress", o->compress ? "zstd" : "none", 0)) ||
	    (r = meta_set(db, "capacity", NULL, (int64_t)o->capacity)) ||
	    (r = meta_set(db, "max_inodes", NULL, (int64_t)o->max_inodes)) ||
	    (r = meta_set(db, "block_hwm", NULL, 1)) ||
	    (r = meta_set(db, "created", NULL, now)) || (r = vol_sql(db, "COMMIT"))) {
		snprintf(err, errlen, "creating the database: %s", sqlite3_errmsg(db));
		return r;
	}
	return 0;
}

/* -ENOENT if DIR is missing, 0 if it is an empty directory, -ENOTEMPTY,
** -ENOTDIR or another error otherwise. */
static int dir_state(const char *dir)
{
	struct dirent *de;
	int r = 0;
	DIR *d = opendir(dir);

	if (!d)
		return -errno;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			r = -ENOTEMPTY;
			break;
		}
	closedir(d);
	return r;
}

static int make_blocks_dirs(int dir_fd)
{
	int bfd;

	if (mkdirat(dir_fd, VOL_BLOCKS_DIR, 0700) < 0)
		return -errno;
	bfd = openat(dir_fd, VOL_BLOCKS_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (bfd < 0)
		return -errno;
	for (int i = 0; i < 256; i++) {
		char name[4];

		snprintf(name, sizeof(name), "%02x", i);
		if (mkdirat(bfd, name, 0700) < 0) {
			int e = -errno;

			close(bfd);
			return e;
		}
	}
	fsync(bfd);
	close(bfd);
	return 0;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

/* Undoes a failed format: removes what it made (the whole directory if it
** created it, else the volume files inside the directory it was given). */
void vol_format_undo(const char *dir, bool created)
{
	static const char *const names[] = { VOL_DB_NAME, VOL_DB_NAME "-wal", VOL_DB_NAME "-shm",
					     VOL_LOCK_NAME };
	char path[4096];

	if (created) {
		nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
		return;
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/%s", dir, VOL_BLOCKS_DIR);
	nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

int vol_format(const char *dir, const struct vol_format_options *o, char *err, size_t errlen)
{
	char path[4096];
	bool created = false;
	sqlite3 *db = NULL;
	int r, dir_fd = -1, fd;

	if (o->block_size < VOL_MIN_BLOCK_SIZE || o->block_size > VOL_MAX_BLOCK_SIZE ||
	    (o->block_size & (o->block_size - 1))) {
		snprintf(err, errlen, "block size %u: use a power of two from 4K to 64M",
			 o->block_size);
		return -EINVAL;
	}
	r = dir_state(dir);
	if (r == -ENOENT) {
		if (mkdir(dir, 0755) < 0) {
			snprintf(err, errlen, "%s: %s", dir, strerror(errno));
			return -errno;
		}
		created = true;
	} else if (r == -ENOTEMPTY) {
		snprintf(path, sizeof(path), "%s/%s", dir, VOL_DB_NAME);
		if (access(path, F_OK) == 0)
			snprintf(err, errlen, "%s is already an eddyfs volume", dir);
		else
			snprintf(err, errlen, "%s is not empty", dir);
		return -EEXIST;
	} else if (r < 0) {
		snprintf(err, errlen, "%s: %s", dir, strerror(-r));
		return r;
	}
	dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		goto fail;
	}
	if ((r = make_blocks_dirs(dir_fd)) < 0) {
		snprintf(err, errlen, "%s/%s: %s", dir, VOL_BLOCKS_DIR, strerror(-r));
		goto fail;
	}
	fd = openat(dir_fd, VOL_LOCK_NAME, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	snprintf(path, sizeof(path), "%s/%s", dir, VOL_DB_NAME);
	r = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (r != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, db ? sqlite3_errmsg(db) : "cannot open");
		r = vol_db_errno(r);
		goto fail;
	}
	if ((r = vol_schema_create(db, o, err, errlen)) < 0)
		goto fail;
	sqlite3_close(db);
	db = NULL;
	fsync(dir_fd);
	close(dir_fd);
	return 0;
fail:
	if (db)
		sqlite3_close(db);
	if (dir_fd >= 0)
		close(dir_fd);
	vol_format_undo(dir, created);
	return r < 0 ? r : -EIO;
}

static int64_t meta_int(sqlite3 *db, const char *key, bool *found)
{
	sqlite3_stmt *s;
	int64_t v = 0;

	*found = false;
	if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?1", -1, &s, NULL))
		return 0;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW) {
		*found = true;
		v = sqlite3_column_int64(s, 0);
	}
	sqlite3_finalize(s);
	return v;
}

static bool meta_text(sqlite3 *db, const char *key, char *out, size_t size)
{
	sqlite3_stmt *s;
	bool found = false;

	if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?1", -1, &s, NULL))
		return false;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW) {
		found = true;
		snprintf(out, size, "%s", (const char *)sqlite3_column_text(s, 0));
	}
	sqlite3_finalize(s);
	return found;
}

/* "file:DIR/eddyfs.db?immutable=1" with DIR percent-encoded: a look that
** creates no -wal or -shm file and takes no lock (the meta rows it reads
** never change after format). */
static void immutable_uri(const char *dir, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	n += (size_t)snprintf(out, size, "file:");
	for (const char *p = dir; *p && n + 4 < size; p++) {
		unsigned char ch = (unsigned char)*p;

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		    strchr("/-._~", ch)) {
			out[n++] = (char)ch;
		} else {
			out[n++] = '%';
			out[n++] = hex[ch >> 4];
			out[n++] = hex[ch & 15];
		}
	}
	snprintf(out + n, size - n, "/%s?immutable=1", VOL_DB_NAME);
}

int vol_db_open_checked(int dir_fd, const char *dir, bool readonly, sqlite3 **dbp,
			struct vol_format_options *o, char *err, size_t errlen)
{
	char path[4096], uri[12400], comp[32], check[256];
	struct stat st;
	sqlite3 *db = NULL;
	sqlite3_stmt *s;
	int64_t version, bs;
	bool found, f2;
	int rc;

	if (fstatat(dir_fd, VOL_DB_NAME, &st, 0) < 0 || !S_ISREG(st.st_mode) ||
	    fstatat(dir_fd, VOL_BLOCKS_DIR, &st, 0) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s is not an eddyfs volume (no %s and %s/; see eddyfs format)",
			 dir, VOL_DB_NAME, VOL_BLOCKS_DIR);
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, VOL_DB_NAME);
	immutable_uri(dir, uri, sizeof(uri));
	rc = readonly ? sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI |
					SQLITE_OPEN_NOMUTEX, NULL)
		      : sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
					NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, db ? sqlite3_errmsg(db) : "cannot open");
		sqlite3_close(db);
		return vol_db_errno(rc);
	}
	sqlite3_busy_timeout(db, 5000);
	version = meta_int(db, "format_version", &found);
	if (!found) {
		snprintf(err, errlen, "%s is not an eddyfs volume database (corrupt or foreign: %s)",
			 path, sqlite3_errmsg(db));
		sqlite3_close(db);
		return -EINVAL;
	}
	if (version > VOL_FORMAT_VERSION || version < 1) {
		snprintf(err, errlen, "%s has format version %lld; this eddyfs reads version %d",
			 dir, (long long)version, VOL_FORMAT_VERSION);
		sqlite3_close(db);
		return -EPROTONOSUPPORT;
	}
	/* the whole check needs the log too: only the read-write open */
	rc = readonly ? SQLITE_ERROR : sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &s,
							  NULL);
	snprintf(check, sizeof(check), "%s", readonly ? "ok" : "");
	if (rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		snprintf(check, sizeof(check), "%s", (const char *)sqlite3_column_text(s, 0));
	if (rc == SQLITE_OK)
		sqlite3_finalize(s);
	if (strcmp(check, "ok") != 0) {
		snprintf(err, errlen, "%s is corrupt (%s)", path,
			 check[0] ? check : sqlite3_errmsg(db));
		sqlite3_close(db);
		return -EUCLEAN;
	}
	bs = meta_int(db, "block_size", &found);
	o->capacity = (uint64_t)meta_int(db, "capacity", &f2);
	o->max_inodes = (uint64_t)meta_int(db, "max_inodes", &f2);
	if (!meta_text(db, "compress", comp, sizeof(comp)))
		comp[0] = 0;
	o->compress = strcmp(comp, "zstd") == 0;
	if (!found || bs < VOL_MIN_BLOCK_SIZE || bs > VOL_MAX_BLOCK_SIZE || (bs & (bs - 1)) ||
	    (strcmp(comp, "zstd") && strcmp(comp, "none"))) {
		snprintf(err, errlen, "%s is corrupt (bad block_size or compress in meta)", path);
		sqlite3_close(db);
		return -EUCLEAN;
	}
	o->block_size = (uint32_t)bs;
	*dbp = db;
	return 0;
}

int vol_check(const char *dir, char *err, size_t errlen)
{
	struct vol_format_options o;
	sqlite3 *db;
	int dir_fd, lock_fd, r;

	dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0) {
		r = -errno;
		snprintf(err, errlen, "volume %s: %s", dir, strerror(errno));
		return r;
	}
	r = vol_db_open_checked(dir_fd, dir, true, &db, &o, err, errlen);
	if (r == 0) {
		sqlite3_close(db);
		lock_fd = openat(dir_fd, VOL_LOCK_NAME, O_RDONLY | O_CLOEXEC);
		if (lock_fd >= 0 && flock(lock_fd, LOCK_SH | LOCK_NB) < 0 &&
		    errno == EWOULDBLOCK) {
			snprintf(err, errlen, "volume %s is in use by an exclusive tool "
				 "(fsck --repair, gc, load)", dir);
			r = -EBUSY;
		}
		if (lock_fd >= 0)
			close(lock_fd);
	}
	close(dir_fd);
	return r;
}
