"""Several mounts of ONE volume (sqlite:<dir>) on one host: change news
through the volume's change log, sessions, reaping of a killed mount.

The change scenarios are those of test_coherence.py (create, unlink, rename
over a name, rename of directories, chmod, chown, truncate, append,
overwrite in place, mkdir/rmdir, hard links, symlink retarget, xattrs, a
negative entry then created elsewhere, the page cache, ...).  Mount A makes
the change and is the truth (it sees its own change at once); mounts B and C
run all probes and every probe also gets a read-only mount of its own (see
test_coherence.RO_OPTIONS: on a writable mount the kernel refreshes some
caches by itself and would hide a missing invalidation).  With
--coherence=events the volume answers with day-long cache timeouts, so only
the change news can make B and C see the change; they poll with a bounded
wait (coherence_util.SEE_TIMEOUT) and a test fails only if the old state
persists past it -- never on how fast the change was seen.
"""

import os
import signal
import sqlite3
import subprocess
import time

import pytest

from conftest import SQLITE, is_mounted, wait_for
from coherence_util import (LockHolder, SEE_TIMEOUT, eventually, get_lock, listing,
                            lstat_view, read_or_err, try_lock)
from test_coherence import RO_OPTIONS, SCENARIOS, check_change, pwrite, wfile

PYTHON = "/usr/bin/python3"
EVENTS = ("--coherence=events",)      # no --watch: volumes follow their change log


def _q(vol, sql):
    db = sqlite3.connect(f"file:{vol}/eddyfs.db?mode=ro", uri=True, timeout=30)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def _mounts(make_mount, vol, n, **kw):
    return [make_mount(backing=f"{SQLITE}{vol}", extra_args=EVENTS, **kw)
            for _ in range(n)]


@pytest.mark.parametrize("scen", sorted(SCENARIOS))
def test_change_seen_by_other_volume_mounts(scen, make_mount, make_volume):
    s = SCENARIOS[scen]
    vol = make_volume()
    ma, mb, mc = _mounts(make_mount, vol, 3)
    s.setup(ma.mnt)
    single = []
    for i, p in enumerate(s.probes):
        m = make_mount(backing=f"{SQLITE}{vol}", extra_args=EVENTS, options=RO_OPTIONS)
        single.append((f"read-only probe mount {i}", m.mnt, p))
    check_change(s, ma.mnt, ma.mnt, [("mount B", mb.mnt), ("mount C", mc.mnt)],
                 single=single)


def test_volume_ping_pong(make_mount, make_volume):
    """Three mounts take turns changing one file and one directory; each
    sees every other mount's change."""
    vol = make_volume()
    ms = _mounts(make_mount, vol, 3)
    roots = [(f"mount {'ABC'[i]}", m.mnt) for i, m in enumerate(ms)]
    wfile(ms[0].mnt / "f", b"0" * 64)
    os.mkdir(ms[0].mnt / "d")
    for i in range(24):
        wname, wroot = roots[i % 3]
        pwrite(wroot / "f", (b"%02d" % i) * 32, 0)
        os.chmod(wroot / "f", 0o600 if i % 2 else 0o644)
        if i % 2:
            os.rmdir(wroot / "d" / f"s{i - 1}")
        else:
            os.mkdir(wroot / "d" / f"s{i}")
        want = (read_or_err(wroot / "f"), lstat_view(wroot / "f"), listing(wroot / "d"))
        for oname, oroot in roots:
            eventually(lambda: (read_or_err(oroot / "f"), lstat_view(oroot / "f"),
                                listing(oroot / "d")), want,
                       f"round {i}: {oname} after a change by {wname}")


def test_volume_open_fd_sees_changes(make_mount, make_volume):
    """A file kept open in B: pread and fstat through the same fd show the
    new content once A's close published it (close-to-open: the page cache
    B kept is dropped by the news)."""
    vol = make_volume()
    ma, mb = _mounts(make_mount, vol, 2)
    wfile(ma.mnt / "f", b"A" * 10000)
    eventually(lambda: read_or_err(mb.mnt / "f"), b"A" * 10000, "B sees f")
    fd = os.open(mb.mnt / "f", os.O_RDONLY)
    try:
        assert os.pread(fd, 20000, 0) == b"A" * 10000
        for data in (b"B" * 10000, b"D" * 20000, b"E" * 500):
            wfile(ma.mnt / "f", data)
            eventually(lambda: (os.pread(fd, 30000, 0), os.fstat(fd).st_size),
                       (data, len(data)), "pread/fstat through an fd open in B")
    finally:
        os.close(fd)


def test_volume_sessions_and_totals(make_mount, make_volume):
    """Each mount is a session row with its mountpoint; totals in meta
    count what every mount made; an unmount removes its row."""
    vol = make_volume()
    ma, mb = _mounts(make_mount, vol, 2)
    rows = _q(vol, "SELECT kind, pid, mountpoint FROM sessions ORDER BY id")
    assert [(r[0], r[2]) for r in rows] == [("mount", str(ma.mnt)), ("mount", str(mb.mnt))]
    for i in range(20):
        wfile((ma if i % 2 else mb).mnt / f"f{i}", b"x" * 100)
    n = _q(vol, "SELECT value FROM meta WHERE key = 'ninodes'")[0][0]
    assert n == _q(vol, "SELECT count(*) FROM inodes")[0][0] == 21
    used = _q(vol, "SELECT value FROM meta WHERE key = 'used_bytes'")[0][0]
    assert used == 2000
    for m in (ma, mb):
        sv = os.statvfs(m.mnt)
        assert sv.f_files - sv.f_ffree == 21
    mb.umount()
    assert [r[2] for r in _q(vol, "SELECT kind, pid, mountpoint FROM sessions")] == \
        [str(ma.mnt)]


def test_killed_mount_is_reaped(make_mount, make_volume):
    """kill -9 of a mount that holds an open-unlinked file: the other
    mount's session reaper deletes the orphan (its blocks too) and the dead
    session's row, within a bounded wait."""
    vol = make_volume()
    ma, mb = _mounts(make_mount, vol, 2)
    holder = subprocess.Popen(
        [PYTHON, "-c",
         "import os, sys\n"
         "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)\n"
         "os.write(fd, b'z' * 100000); os.fsync(fd)\n"
         "os.unlink(sys.argv[1])\n"
         "print('ready', flush=True)\n"
         "sys.stdin.readline()\n", str(mb.mnt / "doomed")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"ready"
        assert _q(vol, "SELECT count(*) FROM inodes WHERE nlink = 0") == [(1,)]
        assert _q(vol, "SELECT count(*) FROM holds") == [(1,)]
        os.kill(mb.pid, signal.SIGKILL)
        wait_for(lambda: _q(vol, "SELECT count(*) FROM sessions") == [(1,)],
                 SEE_TIMEOUT * 3, what="the killed mount's session reaped")
        wait_for(lambda: _q(vol, "SELECT count(*) FROM inodes WHERE nlink = 0") == [(0,)],
                 SEE_TIMEOUT * 3, what="the orphan reaped")
        assert _q(vol, "SELECT count(*) FROM holds") == [(0,)]
        assert _q(vol, "SELECT count(*) FROM chunks") == [(0,)]
    finally:
        holder.kill()
        holder.wait()
    assert os.listdir(ma.mnt) == []


def test_status_lists_sessions_usage_counters(make_mount, make_volume, run_eddy, workdir):
    vol = make_volume()
    ma, mb = _mounts(make_mount, vol, 2)
    wfile(ma.mnt / "f", b"x" * 5000)
    r = run_eddy("status", vol)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    lines = [l.split() for l in out.splitlines()]
    sess = [l for l in lines if len(l) >= 8 and l[1] == "mount"]
    assert sorted(l[-1] for l in sess) == sorted([str(ma.mnt), str(mb.mnt)]), out
    assert all(l[6] == "live" for l in sess), out
    assert {int(l[3]) for l in sess} == {ma.pid, mb.pid}, out
    assert "  bytes            5000\n" in out and "  inodes           2\n" in out, out
    assert "  blocks           1 referenced, 1 files" in out, out
    assert "change log rows" in out and "  locks            0\n" in out, out
    # not a volume: one line, exit 2
    r = run_eddy("status", workdir)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "not an eddyfs volume" in r.stderr
    r = run_eddy("status")
    assert r.returncode == 2


# --------------------------------------------------------------------------
# locks in the volume's database, shared by every mount of it

DENIED = ("err EAGAIN", "err EACCES", "err EWOULDBLOCK")


@pytest.fixture
def vlock(make_mount, make_volume):
    vol = make_volume()
    ma, mb = _mounts(make_mount, vol, 2)
    wfile(ma.mnt / "f", b"L" * 1000)
    eventually(lambda: read_or_err(mb.mnt / "f"), b"L" * 1000, "B sees f")
    holders = []

    class Env:
        pass
    e = Env()
    e.vol, e.ma, e.mb, e.a, e.b = vol, ma, mb, ma.mnt / "f", mb.mnt / "f"

    def hold(path, **kw):
        h = LockHolder(path, **kw)
        holders.append(h)
        return h.hold()
    e.hold = hold
    yield e
    for h in holders:
        h.kill()


def _denied(r, what):
    assert r in DENIED, f"{what}: expected a refusal, got {r!r} -- granted on both"


def _granted_eventually(path, what, **kw):
    wait_for(lambda: try_lock(path, **kw).startswith("ok"), timeout=SEE_TIMEOUT, what=what)


@pytest.mark.parametrize("kind", ["posix", "ofd", "flock"])
def test_volume_lock_mount_vs_mount(kind, vlock):
    e = vlock
    h = e.hold(e.a, kind=kind)
    _denied(try_lock(e.b, kind=kind), f"{kind} via B while A holds one")
    _denied(try_lock(e.a, kind=kind), f"{kind} via A (another process) while A holds one")
    assert _q(e.vol, "SELECT count(*) FROM locks") == [(1,)]
    h.release()
    _granted_eventually(e.b, f"{kind} via B after A's holder exited", kind=kind)
    # (RELEASE, which drops OFD and flock locks, is asynchronous in FUSE)
    wait_for(lambda: _q(e.vol, "SELECT count(*) FROM locks") == [(0,)], SEE_TIMEOUT,
             what="no lock rows left")
    h = e.hold(e.b, kind=kind)
    _denied(try_lock(e.a, kind=kind), f"{kind} via A while B holds one")
    h.release()


def test_volume_lock_posix_vs_ofd_and_flock(vlock):
    """classic POSIX and OFD locks conflict; flock locks are another kind"""
    e = vlock
    h = e.hold(e.a, kind="posix")
    _denied(try_lock(e.b, kind="ofd"), "OFD via B while A holds a POSIX lock")
    assert try_lock(e.b, kind="flock").startswith("ok"), "flock vs POSIX must not conflict"
    h.release()


def test_volume_lock_ranges_getlk_split_merge(vlock):
    e = vlock
    h = e.hold(e.a, kind="posix", start=10, length=20)
    assert try_lock(e.b, start=100, length=10).startswith("ok")
    _denied(try_lock(e.b, start=25, length=10), "overlapping range via B")
    # F_GETLK through the other mount: type, range and the holder's pid
    assert get_lock(e.b) == f"ok w 10 20 {h.pid}"
    assert get_lock(e.b, kind="ofd").startswith("ok w 10 20")
    assert get_lock(e.b, start=200, length=10).startswith("ok u")
    h.release()
    # one owner: lock [0,100), unlock [40,60) -> [0,40) and [60,100);
    # relock [30,70) as read -> w[0,30) r[30,70) w[70,100)
    code = (
        "import fcntl, os, struct, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDWR)\n"
        "def lk(t, s, l): fcntl.fcntl(fd, fcntl.F_SETLK, struct.pack('hhqqi4x', t, 0, s, l, 0))\n"
        "lk(fcntl.F_WRLCK, 0, 100); lk(fcntl.F_UNLCK, 40, 20)\n"
        "print('split', flush=True); sys.stdin.readline()\n"
        "lk(fcntl.F_RDLCK, 30, 40)\n"
        "print('mixed', flush=True); sys.stdin.readline()\n")
    p = subprocess.Popen([PYTHON, "-c", code, str(e.a)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "split"
        assert try_lock(e.b, start=45, length=10).startswith("ok"), "the unlocked hole"
        _denied(try_lock(e.b, start=35, length=10), "the left part")
        _denied(try_lock(e.b, start=95, length=10), "the right part")
        assert get_lock(e.b, start=40, length=0) == f"ok w 60 40 {p.pid}"
        assert sorted(_q(e.vol, "SELECT start, end FROM locks")) == [(0, 39), (60, 99)]
        p.stdin.write("x\n")
        p.stdin.flush()
        assert p.stdout.readline().strip() == "mixed"
        assert sorted(_q(e.vol, "SELECT type, start, end FROM locks")) == \
            [(0, 30, 69), (1, 0, 29), (1, 70, 99)]
        assert try_lock(e.b, start=40, length=5, ltype="r").startswith("ok")
        _denied(try_lock(e.b, start=40, length=5), "a write lock over the read range")
    finally:
        p.kill()
        p.wait()
    wait_for(lambda: _q(e.vol, "SELECT count(*) FROM locks") == [(0,)],
             timeout=SEE_TIMEOUT, what="the killed owner's locks dropped at close")


@pytest.mark.parametrize("kind", ["posix", "flock"])
def test_volume_lock_read_locks_shared(kind, vlock):
    e = vlock
    h = e.hold(e.a, kind=kind, ltype="r")
    assert try_lock(e.b, kind=kind, ltype="r").startswith("ok")
    _denied(try_lock(e.b, kind=kind, ltype="w"), f"{kind} write lock over a read lock")
    h.release()


@pytest.mark.parametrize("kind", ["posix", "flock"])
def test_volume_lock_blocking_wait_woken_by_release(kind, vlock):
    e = vlock
    h = e.hold(e.a, kind=kind)
    w = LockHolder(e.b, kind=kind, mode="wait")
    try:
        early = w.ready(timeout=1.0)
        assert early is None, f"blocking {kind} via B returned {early!r} while A holds it"
        h.release()
        r = w.ready(timeout=60)
        assert r is not None and r.startswith("ok"), f"blocking {kind} via B: {r!r}"
        _denied(try_lock(e.a, kind=kind), f"{kind} via A while the former waiter holds it")
    finally:
        w.kill()


@pytest.mark.parametrize("kind", ["posix", "ofd", "flock"])
def test_volume_lock_released_when_holder_killed(kind, vlock):
    e = vlock
    h = e.hold(e.a, kind=kind)
    _denied(try_lock(e.b, kind=kind), f"{kind} via B while A's holder is alive")
    os.kill(h.pid, signal.SIGKILL)
    h.p.wait(timeout=60)
    _granted_eventually(e.b, f"{kind} via B after A's holder was killed", kind=kind)


@pytest.mark.parametrize("kind", ["posix", "flock"])
def test_volume_lock_released_when_mount_killed(kind, vlock):
    """kill -9 of the mount daemon that holds a lock: the other mount's
    reaper drops the dead session's locks; a waiter on B is woken."""
    e = vlock
    h = e.hold(e.a, kind=kind)
    w = LockHolder(e.b, kind=kind, mode="wait")
    try:
        assert w.ready(timeout=1.0) is None
        os.kill(e.ma.pid, signal.SIGKILL)
        r = w.ready(timeout=SEE_TIMEOUT * 3)
        assert r is not None and r.startswith("ok"), f"waiter after the mount died: {r!r}"
        assert _q(e.vol, "SELECT count(*) FROM sessions") == [(1,)]
    finally:
        w.kill()
        h.kill()


def test_open_file_survives_unlink_by_other_mount(make_mount, make_volume):
    """B has a file open; A removes its last name: B's session adopts the
    orphan (a holds row), B keeps reading it, even once the orphan is old
    enough for the reapers; B's last close lets it go."""
    vol = make_volume()
    ma, mb = _mounts(make_mount, vol, 2)
    wfile(ma.mnt / "f", b"q" * 70000)
    eventually(lambda: read_or_err(mb.mnt / "f"), b"q" * 70000, "B sees f")
    fd = os.open(mb.mnt / "f", os.O_RDONLY)
    try:
        os.unlink(ma.mnt / "f")
        sb = _q(vol, f"SELECT id FROM sessions WHERE pid = {mb.pid}")[0][0]
        wait_for(lambda: _q(vol, "SELECT session FROM holds") == [(sb,)], SEE_TIMEOUT,
                 what="B's session adopting the open-unlinked file")
        # make it look old: only the hold keeps it now; let every reaper run
        db = sqlite3.connect(f"{vol}/eddyfs.db", timeout=30)
        db.execute("UPDATE inodes SET ctime = 0 WHERE nlink = 0")
        db.commit()
        db.close()
        beats = {r[0]: r[1] for r in _q(vol, "SELECT id, heartbeat FROM sessions")}
        wait_for(lambda: all(h > beats[i] + 3e9 for i, h in
                             _q(vol, "SELECT id, heartbeat FROM sessions")),
                 SEE_TIMEOUT * 2, what="three more seconds of every session's reaper")
        assert os.pread(fd, 100000, 0) == b"q" * 70000
        assert _q(vol, "SELECT count(*) FROM inodes WHERE nlink = 0") == [(1,)]
        assert os.path.exists(ma.mnt / "f") is False
    finally:
        os.close(fd)
    wait_for(lambda: _q(vol, "SELECT count(*) FROM inodes WHERE nlink = 0") == [(0,)],
             SEE_TIMEOUT * 2, what="the orphan deleted after B's last close")
    assert _q(vol, "SELECT count(*) FROM chunks") == [(0,)]
