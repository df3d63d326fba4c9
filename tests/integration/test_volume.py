"""The volume backend (`eddyfs format <dir>`, `eddyfs mount sqlite:<dir>
<mnt>`) where it differs from a backing directory: format and its
refusals, the mount's refusals (not a volume, a newer format, a corrupt
database, a volume in use), persistence across remounts, a kill -9 of the
daemon at work then a remount (consistent volume, fsynced data intact,
orphans gone), capacity and inode limits, compression, a corrupt block,
and real programs (tar, git, sqlite3) on a volume with the default 4 MiB
blocks. Everything generic runs on volumes through the all_backends mark
of the other modules (with 4 KiB blocks)."""

import errno
import hashlib
import os
import signal
import sqlite3
import subprocess

import pytest

from conftest import CMD_TIMEOUT, SQLITE, is_mounted, read_mounts, wait_for
from test_cli import assert_refused, mkd, one_eddyfs_line
from eddy_conform import snapshot
from test_programs import GIT_SCRIPT, _check_git_output, _git_env, build_tree, run


def _db(vol):
    con = sqlite3.connect(f"file:{vol}/eddyfs.db?mode=ro", uri=True, timeout=30)
    return con


def _q(vol, sql):
    con = _db(vol)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _block_files(vol):
    out = []
    for dirpath, _dirs, files in os.walk(vol / "blocks"):
        out += [os.path.join(dirpath, f) for f in files]
    return out


# --------------------------------------------------------------------------
# format

def test_format_makes_a_volume(run_eddy, workdir):
    vol = workdir / "vol"
    r = run_eddy("format", "--block-size", "64K", "--capacity", "1G", "--inodes", "1000",
                 vol)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(vol)) == ["blocks", "eddyfs.db", "eddyfs.lock"]
    assert len(os.listdir(vol / "blocks")) == 256
    meta = dict(_q(vol, "SELECT key, value FROM meta"))
    assert meta["format_version"] == 1
    assert meta["block_size"] == 65536
    assert meta["capacity"] == 1 << 30 and meta["max_inodes"] == 1000
    assert meta["compress"] == "none"
    assert len(meta["uuid"]) == 36
    assert _q(vol, "PRAGMA journal_mode") == [("wal",)]
    # an existing empty directory is fine too
    empty = mkd(workdir / "empty")
    assert run_eddy("format", empty).returncode == 0


@pytest.mark.parametrize("args", [
    ["--block-size", "3K"], ["--block-size", "128M"], ["--block-size", "x"],
    ["--capacity", "0"], ["--capacity", "12Q"], ["--inodes", "-1"],
    ["--compress", "lz4"], ["--bogus"],
], ids=lambda a: " ".join(a))
def test_format_refuses_bad_options(run_eddy, workdir, args):
    vol = workdir / "vol"
    assert_refused(run_eddy, ["format", *args, vol], [vol, workdir])


def test_format_refuses_non_empty_and_existing(run_eddy, workdir):
    d = mkd(workdir / "d")
    (d / "file").write_text("x")
    r = assert_refused(run_eddy, ["format", d], [d])
    assert "not empty" in r.stderr
    vol = workdir / "vol"
    assert run_eddy("format", vol).returncode == 0
    r = assert_refused(run_eddy, ["format", vol], [vol, vol / "blocks"])
    assert "already an eddyfs volume" in r.stderr


# --------------------------------------------------------------------------
# mount refusals

def test_mount_refuses_what_is_not_a_volume(run_eddy, workdir):
    m = mkd(workdir / "m")
    d = mkd(workdir / "plain")
    (d / "f").write_text("data")
    r = assert_refused(run_eddy, ["mount", f"{SQLITE}{d}", m], [d, m])
    assert "not an eddyfs volume" in r.stderr
    assert_refused(run_eddy, ["mount", f"{SQLITE}{workdir / 'missing'}", m], [m])
    assert_refused(run_eddy, ["mount", SQLITE, m], [m])


def test_mount_refuses_newer_format_and_corrupt_db(run_eddy, make_volume, workdir):
    m = mkd(workdir / "m")
    vol = make_volume()
    con = sqlite3.connect(str(vol / "eddyfs.db"))
    con.execute("UPDATE meta SET value = 2 WHERE key = 'format_version'")
    con.commit()
    con.close()
    before = (vol / "eddyfs.db").read_bytes()
    r = assert_refused(run_eddy, ["mount", f"{SQLITE}{vol}", m], [vol, m])
    assert "format version 2" in r.stderr
    assert (vol / "eddyfs.db").read_bytes() == before
    # a database overwritten with garbage
    vol2 = make_volume()
    with open(vol2 / "eddyfs.db", "r+b") as f:
        f.write(b"garbage, not a database header" * 4)
    before = (vol2 / "eddyfs.db").read_bytes()
    r = assert_refused(run_eddy, ["mount", f"{SQLITE}{vol2}", m], [vol2, m])
    assert "eddyfs.db" in r.stderr
    assert (vol2 / "eddyfs.db").read_bytes() == before


def test_mount_refuses_damage_found_by_the_integrity_check(run_eddy, make_volume, workdir,
                                                           make_mount):
    """Damage inside the database (not in its header or meta) is found by
    the daemon's quick_check: the mount fails with one clear line."""
    vol = make_volume("--block-size", "4K")
    m = make_mount(backing=f"{SQLITE}{vol}")
    for i in range(300):
        (m.mnt / f"file-with-a-long-name-{i:04d}").write_text("x")
    m.umount()
    size = os.path.getsize(vol / "eddyfs.db")
    with open(vol / "eddyfs.db", "r+b") as f:
        for off in range(8192, size, 4096):     # every page but the first two
            f.seek(off + 100)
            f.write(b"\xff" * 64)
    mnt = mkd(workdir / "m2")
    r = run_eddy("mount", "--background", "--log-file", workdir / "bad.log",
                 f"{SQLITE}{vol}", mnt)
    assert r.returncode != 0
    assert one_eddyfs_line(r.stderr), r.stderr
    assert "corrupt" in r.stderr or "malformed" in r.stderr, r.stderr
    assert not is_mounted(mnt)


def test_mount_refuses_a_volume_locked_exclusively(make_mount, make_volume, run_eddy,
                                                   workdir):
    """Mounts share a volume; an exclusive tool's lock (fsck --repair, gc,
    load take eddyfs.lock with LOCK_EX) refuses a new mount."""
    import fcntl
    vol = make_volume()
    m = make_mount(backing=f"{SQLITE}{vol}")
    assert m.backend == "volume" and m.volume == vol and m.backing is None
    source = [x for x in read_mounts() if x[1] == str(m.mnt)][-1][0]
    assert source == f"{SQLITE}{vol}"
    m2 = make_mount(backing=f"{SQLITE}{vol}")          # a second mount: shared
    assert is_mounted(m2.mnt)
    vol2 = make_volume()
    with open(os.path.join(vol2, "eddyfs.lock"), "r+") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX | fcntl.LOCK_NB)
        m3 = mkd(workdir / "m3")
        r = assert_refused(run_eddy, ["mount", f"{SQLITE}{vol2}", m3], [m3])
        assert "exclusive" in r.stderr


# --------------------------------------------------------------------------
# persistence and crashes

def _tree_state(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in sorted(dirnames + filenames):
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            data = None
            if os.path.islink(p):
                data = os.readlink(p)
            elif os.path.isfile(p):
                with open(p, "rb") as f:
                    data = hashlib.sha256(f.read()).hexdigest()
            xattrs = tuple(sorted((a, os.getxattr(p, a, follow_symlinks=False))
                                  for a in os.listxattr(p, follow_symlinks=False)))
            out[rel] = (st.st_mode, st.st_uid, st.st_gid, st.st_nlink, st.st_size,
                        st.st_mtime_ns, st.st_ino, data, xattrs)
    return out


def test_persistence_across_remounts(make_mount, make_volume):
    vol = make_volume()
    m = make_mount(backing=f"{SQLITE}{vol}")
    t = m.mnt
    os.makedirs(t / "a/b/c")
    (t / "a/file").write_bytes(os.urandom(5 << 20) + b"tail")     # two blocks
    with open(t / "sparse", "wb") as f:
        f.seek(100 << 20)
        f.write(b"end")
    os.link(t / "a/file", t / "a/b/hard")
    os.symlink("../file", t / "a/b/link")
    os.setxattr(t / "a", "user.note", b"kept")
    os.chmod(t / "a/b", 0o2750)
    os.chown(t / "a/b/c", 1000, 1000)
    os.mkfifo(t / "fifo")
    os.utime(t / "a/file", ns=(1_000_000_000, 1_400_000_000_123_456_789))
    os.rename(t / "a/b/c", t / "moved")
    before = _tree_state(t)
    m.umount()
    m2 = make_mount(backing=f"{SQLITE}{vol}")
    assert _tree_state(m2.mnt) == before
    assert os.stat(m2.mnt / "sparse").st_blocks * 512 <= 4 << 20
    # and again, after changes on the second mount
    os.unlink(m2.mnt / "a/file")
    (m2.mnt / "new").write_text("second mount")
    before = _tree_state(m2.mnt)
    m2.umount()
    m3 = make_mount(backing=f"{SQLITE}{vol}")
    assert _tree_state(m3.mnt) == before
    assert _q(vol, "PRAGMA integrity_check") == [("ok",)]


WRITER = r"""
import os, sys, hashlib, time
mnt, log = sys.argv[1], sys.argv[2]
keep = open(os.path.join(mnt, "open-unlinked"), "wb")
keep.write(os.urandom(1 << 20)); keep.flush()
os.unlink(os.path.join(mnt, "open-unlinked"))
i = 0
with open(log, "a") as lf:
    while True:
        data = os.urandom(4096 + (i * 7919) % (300 << 10))
        tmp = os.path.join(mnt, "d", f"f{i}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, os.path.join(mnt, "d", f"f{i}"))
        dfd = os.open(os.path.join(mnt, "d"), os.O_RDONLY)
        os.fsync(dfd)
        os.close(dfd)
        lf.write(f"f{i} {hashlib.sha256(data).hexdigest()}\n"); lf.flush()
        with open(os.path.join(mnt, "scratch"), "ab") as f:    # never synced
            f.write(os.urandom(10000))
        i += 1
"""


def test_kill9_then_remount_is_consistent(make_mount, make_volume, workdir, spawn):
    """kill -9 of the daemon while a program writes, fsyncs and renames:
    the volume mounts again, passes SQLite's integrity check, has every
    file that was fsynced (and its directory) with its exact content, no
    orphan (the open-unlinked file is gone), and no half-renamed file."""
    vol = make_volume()
    m = make_mount(backing=f"{SQLITE}{vol}")
    m.allow_log_errors = True
    os.mkdir(m.mnt / "d")
    log = workdir / "written.log"
    script = workdir / "writer.py"
    script.write_text(WRITER)
    w = spawn(["/usr/bin/python3", script, m.mnt, log],
              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: log.exists() and log.read_text().count("\n") >= 25,
             what="the writer to fsync 25 files")
    os.kill(m.pid, signal.SIGKILL)
    subprocess.run(["fusermount3", "-u", "-z", str(m.mnt)], timeout=CMD_TIMEOUT)
    w.kill()
    w.wait()
    written = dict(l.split() for l in log.read_text().splitlines())
    assert _q(vol, "SELECT count(*) FROM inodes WHERE nlink = 0")[0][0] >= 1
    m2 = make_mount(backing=f"{SQLITE}{vol}")
    assert _q(vol, "PRAGMA integrity_check") == [("ok",)]
    assert _q(vol, "SELECT count(*) FROM inodes WHERE nlink = 0") == [(0,)]
    names = set(os.listdir(m2.mnt / "d"))
    for name, digest in written.items():
        assert name in names, f"{name} was fsynced but is gone"
        with open(m2.mnt / "d" / name, "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == digest, name
    # every chunk row names a block that exists and reads back
    blocks = {int(os.path.basename(p), 16) for p in _block_files(vol)
              if not p.endswith(".tmp")}
    referenced = {b for (b,) in _q(vol, "SELECT block FROM chunks")}
    assert referenced <= blocks
    for name in names:
        with open(m2.mnt / "d" / name, "rb") as f:
            f.read()
    # the volume goes on working
    (m2.mnt / "after").write_text("alive")
    m2.umount()


def test_unlinked_open_file_lives_until_close(mount_volume):
    m, vol = mount_volume
    p = m.mnt / "f"
    p.write_bytes(b"x" * 100000)
    with open(p, "rb") as f:
        os.unlink(p)
        # another connection sees the unlink once the commit window closed
        wait_for(lambda: _q(vol, "SELECT count(*) FROM inodes WHERE nlink = 0") == [(1,)],
                 what="the unlink to commit")
        assert f.read() == b"x" * 100000
    wait_for(lambda: _q(vol, "SELECT count(*) FROM inodes WHERE nlink = 0") == [(0,)],
             what="the unlinked inode to go after the last close")
    wait_for(lambda: not _block_files(vol), what="its block to go")


@pytest.fixture
def mount_volume(make_mount, make_volume):
    vol = make_volume()
    return make_mount(backing=f"{SQLITE}{vol}"), vol


# --------------------------------------------------------------------------
# limits, compression, damage

def test_capacity_and_inode_limits(make_mount, make_volume):
    vol = make_volume("--block-size", "64K", "--capacity", "1M", "--inodes", "20")
    m = make_mount(backing=f"{SQLITE}{vol}")
    sv = os.statvfs(m.mnt)
    assert sv.f_frsize == 4096 and sv.f_blocks * 4096 == 1 << 20
    assert sv.f_files == 20 and sv.f_ffree == 19
    with pytest.raises(OSError) as ei:
        with open(m.mnt / "big", "wb") as f:
            f.write(os.urandom(2 << 20))
    assert ei.value.errno == errno.ENOSPC
    assert os.statvfs(m.mnt).f_bfree < 16
    os.unlink(m.mnt / "big")
    wait_for(lambda: os.statvfs(m.mnt).f_bfree == 256, what="the space to come back")
    made = 0
    with pytest.raises(OSError) as ei:
        for i in range(30):
            (m.mnt / f"n{i}").touch()
            made += 1
    assert ei.value.errno == errno.ENOSPC and made == 19
    assert _q(vol, "PRAGMA integrity_check") == [("ok",)]


def test_compressed_volume(make_mount, make_volume):
    vol = make_volume("--compress", "zstd")
    m = make_mount(backing=f"{SQLITE}{vol}")
    text = b"".join(b"line %d of a very compressible file\n" % (i % 50)
                    for i in range(300000))
    (m.mnt / "text").write_bytes(text)
    stored = sum(os.path.getsize(p) for p in _block_files(vol))
    assert stored < len(text) // 10
    m.umount()
    m2 = make_mount(backing=f"{SQLITE}{vol}")
    assert (m2.mnt / "text").read_bytes() == text


def test_corrupt_block_reads_as_eio(make_mount, make_volume):
    vol = make_volume("--block-size", "64K")
    m = make_mount(backing=f"{SQLITE}{vol}")
    (m.mnt / "f").write_bytes(os.urandom(200 << 10))        # 4 blocks
    m.umount()
    victim = sorted(_block_files(vol))[1]
    with open(victim, "r+b") as f:
        f.seek(1000)
        f.write(b"\0\1\2\3")
    m2 = make_mount(backing=f"{SQLITE}{vol}")
    with open(m2.mnt / "f", "rb") as f:
        good = [f.read(64 << 10) for _ in range(1)]
        assert len(good[0]) == 64 << 10
    errs = 0
    with open(m2.mnt / "f", "rb", buffering=0) as f:
        for off in range(0, 200 << 10, 64 << 10):
            try:
                os.pread(f.fileno(), 64 << 10, off)
            except OSError as e:
                assert e.errno == errno.EIO
                errs += 1
    assert errs == 1
    assert m2.stats().get("vol_blocks_bad", 0) >= 1


# --------------------------------------------------------------------------
# real programs on a volume with the default (4 MiB) blocks

def test_programs_tar_git_sqlite(mount_volume, workdir, native_dir):
    m, vol = mount_volume
    src = native_dir / "tree"
    build_tree(src)
    archive = workdir / "t.tar"
    run(["tar", "--xattrs", "--xattrs-include=user.*", "-cpf", archive, "-C", native_dir,
         "tree"])
    run(["tar", "--xattrs", "--xattrs-include=user.*", "-xpf", archive, "-C", m.mnt])
    assert snapshot(str(m.mnt / "tree")) == snapshot(str(src))
    home = workdir / "home"
    home.mkdir()
    script = workdir / "git.sh"
    script.write_text(GIT_SCRIPT)
    r = run(["sh", script, m.mnt], env=_git_env(home))
    _check_git_output(r.stdout)
    r = run(["sqlite3", m.mnt / "app.db",
             "PRAGMA journal_mode=WAL; CREATE TABLE t(x); "
             "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<5000) "
             "INSERT INTO t SELECT randomblob(100) FROM c; SELECT count(*) FROM t;"])
    assert r.stdout.strip().splitlines()[-1] == "5000"


def test_programs_see_the_same_after_remount(make_mount, make_volume, workdir, native_dir):
    vol = make_volume()
    m = make_mount(backing=f"{SQLITE}{vol}")
    home = workdir / "home"
    home.mkdir()
    script = workdir / "git.sh"
    script.write_text(GIT_SCRIPT)
    run(["sh", script, m.mnt], env=_git_env(home))
    run(["sqlite3", m.mnt / "app.db", "CREATE TABLE t(x); INSERT INTO t VALUES(42);"])
    m.umount()
    m2 = make_mount(backing=f"{SQLITE}{vol}")
    run(["git", "-C", m2.mnt / "repo", "fsck", "--full"], env=_git_env(home))
    r = run(["git", "-C", m2.mnt / "repo", "status", "--porcelain"], env=_git_env(home))
    assert r.stdout == ""
    r = run(["sqlite3", m2.mnt / "app.db", "SELECT x FROM t;"])
    assert r.stdout.strip() == "42"


def test_full_disk_is_enospc_and_the_volume_stays_intact(make_mount, run_eddy, workdir):
    """A volume on a 6 MiB tmpfs: a file that does not fit fails with
    ENOSPC at write or close, what was written before is intact, and the
    volume mounts again and passes its integrity check."""
    disk = mkd(workdir / "disk")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m,mode=0755", "eddyfs-full",
                    str(disk)], check=True, timeout=CMD_TIMEOUT)
    try:
        vol = disk / "vol"
        assert run_eddy("format", "--block-size", "64K", vol).returncode == 0
        m = make_mount(backing=f"{SQLITE}{vol}")
        keep = os.urandom(1 << 20)
        (m.mnt / "keep").write_bytes(keep)
        with pytest.raises(OSError) as ei:
            with open(m.mnt / "big", "wb") as f:
                for _ in range(16):
                    f.write(os.urandom(1 << 20))
        assert ei.value.errno == errno.ENOSPC
        assert (m.mnt / "keep").read_bytes() == keep
        os.unlink(m.mnt / "big")
        (m.mnt / "after").write_bytes(b"room again")
        m.umount()
        m2 = make_mount(backing=f"{SQLITE}{vol}")
        assert (m2.mnt / "keep").read_bytes() == keep
        assert (m2.mnt / "after").read_bytes() == b"room again"
        assert _q(vol, "PRAGMA integrity_check") == [("ok",)]
        m2.umount()
    finally:
        subprocess.run(["umount", "-l", str(disk)], timeout=CMD_TIMEOUT)
