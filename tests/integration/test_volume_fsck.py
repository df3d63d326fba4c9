"""`eddyfs fsck` and `eddyfs gc` on volumes: a clean volume is clean
(mounted or not), each kind of damage is found and (where provable)
repaired, --repair and gc refuse a volume in use, bad input is refused with
one line and changes nothing, and the crash test: a writer on a mount is
killed with its daemon (kill -9) at random moments, many times; after each,
fsck finds no problem (orphans and unreferenced blocks are a crash's
normal leftovers), --repair collects them, and every file whose fsync
returned has its recorded content."""

import hashlib
import os
import random
import signal
import sqlite3
import subprocess

import pytest

from conftest import CMD_TIMEOUT, SQLITE, wait_for
from test_cli import mkd
from test_volume import WRITER, _block_files

CLEAN, FIXED, LEFT, USAGE = 0, 1, 4, 2
CRASH_ROUNDS = 30


def _sql(vol, *stmts):
    con = sqlite3.connect(str(vol / "eddyfs.db"), timeout=30)
    try:
        for s in stmts:
            con.execute(s)
        con.commit()
    finally:
        con.close()


def _populate(mnt):
    os.makedirs(mnt / "a" / "b")
    (mnt / "a" / "big").write_bytes(os.urandom(300 << 10))
    (mnt / "a" / "b" / "s").write_text("small")
    os.link(mnt / "a" / "b" / "s", mnt / "a" / "hard")
    os.symlink("s", mnt / "a" / "b" / "link")
    os.setxattr(mnt / "a" / "big", "user.k", b"v")


def _fsck(run_eddy, vol, *args):
    r = run_eddy("fsck", *args, vol)
    assert r.returncode in (CLEAN, FIXED, LEFT), (r.returncode, r.stdout, r.stderr)
    return r


def test_clean_volume_is_clean_mounted_or_not(run_eddy, make_volume, make_mount):
    vol = make_volume("--block-size", "64K")
    m = make_mount(backing=f"{SQLITE}{vol}")
    _populate(m.mnt)
    r = _fsck(run_eddy, vol)
    assert r.returncode == CLEAN, r.stdout
    assert "0 problem(s)" in r.stdout and "volume in use" in r.stdout
    # repair and gc need the volume alone
    for cmd in (["fsck", "--repair"], ["gc"]):
        r = run_eddy(*cmd, vol)
        assert r.returncode == USAGE and "in use" in r.stderr, r
        assert r.stderr.count("\n") == 1
    m.umount()
    r = _fsck(run_eddy, vol)
    assert r.returncode == CLEAN and "0 problem(s)" in r.stdout, r.stdout
    assert "block(s) read" in r.stdout and "0 block(s) read" not in r.stdout
    r = run_eddy("gc", vol)
    assert r.returncode == 0 and "removed 0 unreferenced" in r.stdout, r


def test_damage_is_found_and_repaired(run_eddy, make_volume, make_mount):
    vol = make_volume("--block-size", "64K")
    m = make_mount(backing=f"{SQLITE}{vol}")
    _populate(m.mnt)
    (m.mnt / "victim").write_bytes(os.urandom(100 << 10))
    m.umount()
    ino = lambda name: sqlite3.connect(str(vol / "eddyfs.db")).execute(
        "SELECT ino FROM dentries WHERE name = CAST(? AS BLOB)", (name,)).fetchone()[0]
    big, victim = ino("big"), ino("victim")
    _sql(vol,
         f"UPDATE inodes SET nlink = 7 WHERE ino = {big}",                 # link count
         "INSERT INTO dentries(parent, name, ino, cookie) VALUES(1, CAST('ghost' AS BLOB),"
         " 99999, 9999)",                                                  # dangling name
         "INSERT INTO inodes(mode, uid, gid, nlink, atime, mtime, ctime, btime)"
         " VALUES(33188, 0, 0, 1, 0, 0, 0, 0)",                            # nameless
         "INSERT INTO inodes(mode, uid, gid, nlink, atime, mtime, ctime, btime)"
         " VALUES(33188, 0, 0, 0, 0, 0, 0, 0)",                            # orphan
         "INSERT INTO xattrs(ino, name, value) VALUES(88888, CAST('user.x' AS BLOB), x'00')",
         "UPDATE meta SET value = 1 WHERE key = 'ninodes'")                # totals
    # a stray block file and an unfinished write
    (vol / "blocks" / "77" / "0000000000ffff77").write_bytes(b"stray")
    (vol / "blocks" / "78" / "0000000000ffff78.tmp").write_bytes(b"half")
    r = _fsck(run_eddy, vol)
    assert r.returncode == LEFT, r.stdout
    out = r.stdout
    assert "names inode 99999, which does not exist" in out
    assert f"inode {big} has link count 7, names 1" in out
    assert "has links but no name" in out
    assert "1 orphan(s)" in out
    assert "inode 88888 does not exist but has xattr 'user.x'" in out
    assert "inode count says 1" in out
    assert "1 unreferenced block file(s) and 1 unfinished write(s)" in out
    r = _fsck(run_eddy, vol, "--repair")
    assert r.returncode == FIXED, r.stdout
    assert "made /lost+found" in r.stdout and "collected: 1 orphan(s)" in r.stdout
    assert "removed: 1 unreferenced block file(s) and 1 unfinished write(s)" in r.stdout
    r = _fsck(run_eddy, vol)
    assert r.returncode == CLEAN, r.stdout
    # the data is all there, the nameless file in lost+found
    m2 = make_mount(backing=f"{SQLITE}{vol}")
    assert os.stat(m2.mnt / "a" / "big").st_nlink == 1
    assert len((m2.mnt / "a" / "big").read_bytes()) == 300 << 10
    assert [n.startswith("#") for n in os.listdir(m2.mnt / "lost+found")] == [True]
    assert not os.path.exists(m2.mnt / "ghost")
    m2.umount()
    # a corrupt and a missing block: reported, never repaired
    blocks = sorted(p for p in _block_files(vol) if not p.endswith(".tmp"))
    with open(blocks[0], "r+b") as f:
        f.seek(40)
        f.write(b"\xff\xfe")
    os.unlink(blocks[-1])
    r = _fsck(run_eddy, vol)
    assert r.returncode == LEFT
    assert "is corrupt" in r.stdout and "is missing" in r.stdout
    assert "reads of that range give EIO" in r.stdout
    r = _fsck(run_eddy, vol, "--repair")
    assert r.returncode == LEFT and "2 problem(s), 0 repaired" in r.stdout, r.stdout
    assert r.stdout.count("problem:") == 2
    # --quick reads no block: it misses the corrupt one, not the missing one
    r = _fsck(run_eddy, vol, "--quick")
    assert "is missing" in r.stdout and "is corrupt" not in r.stdout


def test_gc_dry_run_then_collect(run_eddy, make_volume):
    vol = make_volume()
    (vol / "blocks" / "05" / "0000000000000105").write_bytes(b"x" * 100)
    (vol / "blocks" / "06" / "0000000000000106.tmp").write_bytes(b"y" * 10)
    (vol / "blocks" / "06" / "not-a-block").write_bytes(b"keep")
    r = run_eddy("gc", "--dry-run", vol)
    assert r.returncode == 0 and "would remove 1 unreferenced" in r.stdout, r
    assert os.path.exists(vol / "blocks" / "05" / "0000000000000105")
    r = run_eddy("gc", "-v", vol)
    assert r.returncode == 0 and "removed 1 unreferenced block file(s) and 1 unfinished" \
        " write(s), 110 bytes" in r.stdout, r
    assert not os.path.exists(vol / "blocks" / "05" / "0000000000000105")
    assert os.path.exists(vol / "blocks" / "06" / "not-a-block")


def test_bad_input_is_refused_and_changes_nothing(run_eddy, make_volume, workdir):
    plain = mkd(workdir / "plain")
    (plain / "f").write_text("data")
    for cmd in ("fsck", "gc"):
        r = run_eddy(cmd, plain)
        assert r.returncode == USAGE and "not an eddyfs volume" in r.stderr, r
        r = run_eddy(cmd, workdir / "missing")
        assert r.returncode == USAGE and r.stderr.count("\n") == 1
        r = run_eddy(cmd)
        assert r.returncode == USAGE
        r = run_eddy(cmd, "--bogus", plain)
        assert r.returncode == USAGE
    assert os.listdir(plain) == ["f"]
    newer = make_volume()
    _sql(newer, "UPDATE meta SET value = 99 WHERE key = 'format_version'")
    before = (newer / "eddyfs.db").read_bytes()
    for args in (["fsck"], ["fsck", "--repair"], ["gc"]):
        r = run_eddy(*args, newer)
        assert r.returncode == USAGE and "format version 99" in r.stderr, r
    assert (newer / "eddyfs.db").read_bytes() == before
    garbage = make_volume()
    with open(garbage / "eddyfs.db", "r+b") as f:
        f.write(b"garbage, not a database header" * 4)
    before = (garbage / "eddyfs.db").read_bytes()
    r = run_eddy("fsck", "--repair", garbage)
    assert r.returncode == USAGE and "eddyfs.db" in r.stderr, r
    assert (garbage / "eddyfs.db").read_bytes() == before


def test_crash_many_times_fsck_clean_fsynced_data_intact(run_eddy, make_volume, make_mount,
                                                        workdir, spawn):
    """The crash test: ITER times, a writer (create, write, fsync, rename,
    fsync the directory, then log the hash; an open-unlinked file; an
    unsynced file growing) is killed with the daemon at a random moment."""
    seed = int(os.environ.get("EDDYFS_CRASH_SEED", random.randrange(1 << 30)))
    print(f"crash test seed {seed} (EDDYFS_CRASH_SEED to repeat)")
    rnd = random.Random(seed)
    vol = make_volume("--block-size", "64K")
    script = workdir / "writer.py"
    script.write_text(WRITER)
    log = workdir / "written.log"
    orphans = unreferenced = 0
    for it in range(CRASH_ROUNDS):
        m = make_mount(backing=f"{SQLITE}{vol}")
        m.allow_log_errors = True
        os.makedirs(m.mnt / "d", exist_ok=True)
        # each round writes its own names: f<i> restarts at 0, so a
        # round-local log (names of earlier rounds were checked already)
        if log.exists():
            log.unlink()
        w = spawn(["/usr/bin/python3", script, m.mnt, log],
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        want = rnd.randrange(1, 12)
        wait_for(lambda: log.exists() and log.read_text().count("\n") >= want,
                 what=f"the writer to fsync {want} files")
        if rnd.random() < 0.5:      # somewhere inside the next write
            wait_for(lambda: log.read_text().count("\n") >= want + 1,
                     what="one more fsync")
        os.kill(m.pid, signal.SIGKILL)
        subprocess.run(["fusermount3", "-u", "-z", str(m.mnt)], timeout=CMD_TIMEOUT)
        w.kill()
        w.wait()
        written = dict(l.split() for l in log.read_text().splitlines() if " " in l)
        r = _fsck(run_eddy, vol)
        assert r.returncode == CLEAN, f"round {it} (seed {seed}):\n{r.stdout}"
        orphans += "orphan(s) (unlinked" in r.stdout
        unreferenced += "unreferenced block file(s) and" in r.stdout
        r = _fsck(run_eddy, vol, "--repair")
        assert r.returncode == CLEAN, f"round {it} (seed {seed}):\n{r.stdout}"
        r = _fsck(run_eddy, vol)
        assert r.returncode == CLEAN and "0 orphan(s); 0 unreferenced" in r.stdout, r.stdout
        m2 = make_mount(backing=f"{SQLITE}{vol}")
        for name, digest in written.items():
            with open(m2.mnt / "d" / name, "rb") as f:
                assert hashlib.sha256(f.read()).hexdigest() == digest, \
                    f"round {it} (seed {seed}): {name} was fsynced, content differs"
        for n in os.listdir(m2.mnt / "d"):       # next round starts empty
            os.unlink(m2.mnt / "d" / n)
        m2.umount()
    # the writer keeps a 1 MiB open-unlinked file: every crash leaves it
    print(f"{orphans} rounds left orphans, {unreferenced} unreferenced blocks")
    assert orphans == CRASH_ROUNDS, (orphans, seed)


def _strip_volume_identity(doc):
    meta = doc["tables"]["meta"]
    meta["rows"] = [r for r in meta["rows"] if r[0] not in ("uuid", "created")]
    return doc


def test_dump_load_round_trip(run_eddy, make_volume, make_mount, workdir):
    import json
    vol = make_volume("--block-size", "64K", "--compress", "zstd")
    m = make_mount(backing=f"{SQLITE}{vol}")
    _populate(m.mnt)
    (m.mnt / "odd\udcffname".encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")
     ).write_bytes(b"x")
    os.setxattr(m.mnt / "a" / "big", "user.bin", b"\x00\x01\xff")
    before = {p: (m.mnt / p).read_bytes() for p in ("a/big", "a/b/s", "a/hard")}
    # a dump while mounted is a consistent snapshot
    dump1 = workdir / "d1.json"
    r = run_eddy("dump", "-o", dump1, vol)
    assert r.returncode == 0, r
    m.umount()
    new = workdir / "new"
    r = run_eddy("load", dump1, new)                     # data but no --blocks-from
    assert r.returncode == 2 and "--blocks-from" in r.stderr, r
    assert not new.exists()
    r = run_eddy("load", "--blocks-from", vol, dump1, new)
    assert r.returncode == 0 and "block(s) linked or copied" in r.stdout, r
    dump2 = run_eddy("dump", new).stdout
    a = _strip_volume_identity(json.loads(dump1.read_text()))
    b = _strip_volume_identity(json.loads(dump2))
    assert a == b
    assert _fsck(run_eddy, new).returncode == CLEAN
    m2 = make_mount(backing=f"{SQLITE}{new}")
    for p, data in before.items():
        assert (m2.mnt / p).read_bytes() == data, p
    assert os.getxattr(m2.mnt / "a" / "big", "user.bin") == b"\x00\x01\xff"
    assert os.readlink(m2.mnt / "a" / "b" / "link") == "s"
    assert os.stat(m2.mnt / "a" / "hard").st_nlink == 2
    assert b"odd\xffname" in os.listdir(bytes(m2.mnt))
    m2.umount()


def test_load_refuses_bad_input_and_leaves_nothing(run_eddy, make_volume, workdir):
    vol = make_volume()
    bad = workdir / "bad.json"
    bad.write_text('{"not": "a dump"}')
    for src, why in ((bad, "not an eddyfs dump"), (workdir / "missing.json", "No such file")):
        r = run_eddy("load", src, workdir / "n1")
        assert r.returncode == 2 and why in r.stderr and r.stderr.count("\n") == 1, r
        assert not (workdir / "n1").exists()
    dump = workdir / "d.json"
    assert run_eddy("dump", "-o", dump, vol).returncode == 0
    busy = mkd(workdir / "busy")
    (busy / "keep").write_text("mine")
    r = run_eddy("load", dump, busy)
    assert r.returncode == 2 and os.listdir(busy) == ["keep"], r
    # a dump whose block is missing from the old volume: nothing made
    import json
    doc = json.loads(dump.read_text())
    ino = doc["tables"]["inodes"]["rows"][0][0]
    doc["tables"]["chunks"]["rows"].append([ino, 0, 4242, 10])
    dump.write_text(json.dumps(doc))
    r = run_eddy("load", "--blocks-from", vol, dump, workdir / "n2")
    assert r.returncode == 2 and "block 0000000000001092" in r.stderr, r
    assert not (workdir / "n2").exists()
