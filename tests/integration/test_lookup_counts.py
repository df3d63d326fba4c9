"""Lookup-count bookkeeping: after the kernel drops its caches, every inode
it does not hold must be forgotten by the daemon (no leaked lookups), and
inodes it still holds must stay usable."""

import os
import subprocess

import pytest

from conftest import all_backends, wait_for

pytestmark = all_backends

FORGET_WAIT = 10  # bounded wait for the kernel's FORGETs to arrive
N_FILES = 2000


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def wait_known_at_most(m, limit, timeout=FORGET_WAIT):
    last = {}

    def check():
        drop_caches()
        s = m.stats()
        last.clear()
        last.update(s)
        return s["known_inodes"] <= limit
    try:
        wait_for(check, timeout=timeout, interval=0.2,
                 what=f"known_inodes <= {limit}")
    except AssertionError:
        pytest.fail(f"daemon still knows {last.get('known_inodes')} inodes "
                    f"(limit {limit}) {timeout}s after dropping caches; "
                    f"stats: {last}")
    return last


def sh(*argv):
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True)
    assert r.returncode == 0, (argv, r.stderr)
    return r.stdout


def workload(mnt, backing):
    d = mnt / "many"
    os.mkdir(d)
    # creates through the mount
    for i in range(N_FILES):
        with open(d / f"f{i:05d}", "w") as f:
            f.write(str(i))
    # files that appear in the backing dir behind the kernel's back, seen
    # first via readdirplus (mem: no backing dir, made through the mount)
    if backing is None:
        backing = mnt
    os.mkdir(backing / "outside")
    for i in range(200):
        (backing / "outside" / f"o{i}").write_text("o")
    out = sh("ls", "-l", d)
    assert len(out.splitlines()) == N_FILES + 1  # + "total" line
    assert len(sh("ls", "-l", mnt / "outside").splitlines()) == 201
    assert len(sh("find", mnt).splitlines()) == N_FILES + 200 + 3
    for i in range(0, N_FILES, 7):
        os.stat(d / f"f{i:05d}")
    # lookups of names that do not exist
    for i in range(100):
        try:
            os.stat(d / f"missing{i}")
        except FileNotFoundError:
            pass
    # mkdir / symlink / link / rename / unlink
    os.makedirs(mnt / "x" / "y" / "z")
    os.symlink("../many/f01001", mnt / "x" / "sl")
    assert (mnt / "x" / "sl").read_text() == "1001"
    os.link(d / "f01002", mnt / "x" / "hl")
    os.link(d / "f01002", mnt / "x" / "y" / "hl2")
    assert os.stat(mnt / "x" / "hl").st_nlink == 3
    for i in range(0, 300):
        os.rename(d / f"f{i:05d}", mnt / "x" / "y" / f"r{i}")
    # rename over an existing file (replaced inode must be released)
    os.rename(mnt / "x" / "y" / "r10", mnt / "x" / "y" / "r11")
    os.rename(mnt / "x" / "y" / "z", mnt / "x" / "z2")
    for i in range(300, 900):
        os.unlink(d / f"f{i:05d}")
    os.unlink(mnt / "x" / "hl")
    # unlink a file while it is open, keep using it, close it
    with open(d / "f00950", "r+") as f:
        os.unlink(d / "f00950")
        f.write("still here")
        f.seek(0)
        assert f.read() == "still here"
    # rmdir
    os.mkdir(mnt / "gone")
    (mnt / "gone" / "a").write_text("a")
    os.unlink(mnt / "gone" / "a")
    os.rmdir(mnt / "gone")
    # a second ls -l / find pass over the changed tree
    sh("ls", "-lR", mnt)
    sh("find", mnt, "-type", "f", "-newer", mnt / "x" / "sl")
    sh("du", "-s", mnt)


def test_forget_everything_after_drop_caches(mount):
    workload(mount.mnt, mount.backing)
    before = mount.stats()
    assert before["known_inodes"] > 100, before  # sanity: the kernel held lots
    after = wait_known_at_most(mount, 2)
    # everything still works and the tree is intact afterwards
    assert (mount.mnt / "x" / "y" / "r11").read_text() == "10"
    assert (mount.mnt / "x" / "sl").read_text() == "1001"
    assert os.stat(mount.mnt / "many" / "f01002").st_nlink == 2
    assert len(os.listdir(mount.mnt / "many")) == N_FILES - 900 - 1
    keys = ["nlookup_total", "backend_nodes", "open_files"]
    if mount.backend == "dir":
        keys.append("cached_fds")
    for key in keys:
        assert key in after, f"stats lacks {key}: {after}"
    assert after["open_files"] == 0, after


def test_held_file_stays_known(mount):
    workload(mount.mnt, mount.backing)
    sub = mount.mnt / "held_dir"
    os.mkdir(sub)
    path = sub / "held"
    path.write_text("held content")
    fd = os.open(path, os.O_RDWR)
    try:
        held = wait_known_at_most(mount, 4)
        assert held["open_files"] >= 1, held
        # the held inode is still fully usable through the fd and by path
        assert os.pread(fd, 100, 0) == b"held content"
        os.pwrite(fd, b"HELD", 0)
        os.fsync(fd)
        assert os.fstat(fd).st_size == len("held content")
        assert path.read_text() == "HELD content"
        if mount.backing is not None:
            assert (mount.backing / "held_dir" / "held").read_text() == "HELD content"
    finally:
        os.close(fd)
    final = wait_known_at_most(mount, 2)
    # while the file was open the kernel pinned it and its parent directory
    assert held["known_inodes"] >= final["known_inodes"] + 2, (held, final)
    wait_for(lambda: mount.stats()["open_files"] == 0, timeout=FORGET_WAIT,
             what="open_files to drop to 0 after close")


def test_held_unlinked_file(mount):
    """An open, unlinked file survives a cache drop and is forgotten after
    close."""
    p = mount.mnt / "tmpfile"
    f = open(p, "w+")
    try:
        os.unlink(p)
        f.write("unlinked data")
        f.flush()
        wait_known_at_most(mount, 3)
        f.seek(0)
        assert f.read() == "unlinked data"
        assert os.fstat(f.fileno()).st_nlink == 0
    finally:
        f.close()
    wait_known_at_most(mount, 2)
    assert os.listdir(mount.backing or mount.mnt) == []
    if mount.backend == "mem":
        wait_for(lambda: mount.stats()["backend_nodes"] == 1,
                 what="the unlinked file to be freed")


def test_cwd_inside_mount_is_pinned(mount):
    """A process with its cwd inside the mount pins that directory."""
    d = mount.mnt / "a" / "b"
    os.makedirs(d)
    (d / "f").write_text("x")
    proc = subprocess.Popen(["sleep", "infinity"], cwd=str(d))
    try:
        pinned = wait_known_at_most(mount, 4)
        assert (d / "f").read_text() == "x"
    finally:
        proc.kill()
        proc.wait()
    final = wait_known_at_most(mount, 2)
    # the cwd pinned b and its parent a
    assert pinned["known_inodes"] >= final["known_inodes"] + 2, (pinned, final)
