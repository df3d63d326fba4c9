"""The mem backend (`eddyfs mount mem:[size=N,inodes=N] <mnt>`) where it
differs from a backing directory: its source and mount options, the size and
inode limits (statvfs, ENOSPC), sparse files that cost nothing, its counters,
data that ends with the mount, and the CLI's refusals. Everything generic
runs on mem: through the all_backends mark of the other modules."""

import errno
import os
import subprocess

import pytest

from conftest import MEM, read_mounts, wait_for
from test_cli import assert_refused, mkd


def _mount_line(mnt):
    return [m for m in read_mounts() if m[1] == str(mnt)][-1]


def test_mem_source_and_options(make_mount):
    """fsname mem:, and default_permissions even without -o: the backend
    checks no rights itself, so the kernel must."""
    m = make_mount(backing=MEM, options=())
    source, _mp, fstype, opts = _mount_line(m.mnt)
    assert (source, fstype) == ("mem:", "fuse.eddyfs")
    assert "default_permissions" in opts.split(","), opts
    assert m.backend == "mem" and m.backing is None
    st = os.stat(m.mnt)
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid, st.st_nlink) == (0o755, 0, 0, 2)
    assert os.listdir(m.mnt) == []


def test_mem_size_and_inode_limits(make_mount):
    m = make_mount(backing="mem:size=4M,inodes=50")
    sv = os.statvfs(m.mnt)
    assert sv.f_frsize == sv.f_bsize == 4096
    assert sv.f_blocks * sv.f_frsize == 4 << 20
    assert sv.f_bfree == sv.f_blocks
    assert sv.f_files == 50 and sv.f_ffree == 49     # the root
    assert sv.f_namemax == 255
    big = m.mnt / "big"
    with open(big, "wb") as f:
        f.write(b"\1" * (7 << 19))
    assert os.statvfs(m.mnt).f_bfree * 4096 == 1 << 19
    # a write that does not fit changes nothing (all or nothing per FUSE
    # request: one request carries up to 1 MiB)
    fd = os.open(big, os.O_WRONLY)
    try:
        with pytest.raises(OSError) as ei:
            os.pwrite(fd, b"\2" * (1 << 20), 7 << 19)
        assert ei.value.errno == errno.ENOSPC
        assert os.fstat(fd).st_size == 7 << 19
        with pytest.raises(OSError) as ei:
            os.posix_fallocate(fd, 0, 8 << 20)
        assert ei.value.errno == errno.ENOSPC
    finally:
        os.close(fd)
    os.truncate(big, 1 << 20)
    assert os.statvfs(m.mnt).f_bfree * 4096 == 3 << 20
    # inodes: root + big + 48 more
    for i in range(48):
        (m.mnt / f"n{i}").touch()
    with pytest.raises(OSError) as ei:
        os.mkdir(m.mnt / "one-too-many")
    assert ei.value.errno == errno.ENOSPC
    assert os.statvfs(m.mnt).f_ffree == 0
    os.unlink(m.mnt / "n0")
    # freed once the kernel forgets it (FORGET comes asynchronously)
    wait_for(lambda: os.statvfs(m.mnt).f_ffree == 1, what="n0 to be freed")
    os.mkdir(m.mnt / "fits-again")
    stats = m.stats()
    assert stats["mem_inodes_max"] == 50
    assert stats["mem_bytes_max"] == 4 << 20
    assert stats["backend_nodes"] == 50


def test_mem_sparse_terabyte(mount_mem):
    f = mount_mem.mnt / "tera"
    subprocess.run(["truncate", "-s", "1T", str(f)], check=True)
    st = os.stat(f)
    assert st.st_size == 1 << 40 and st.st_blocks == 0
    fd = os.open(f, os.O_RDWR)
    try:
        os.pwrite(fd, b"middle", 1 << 39)
        assert os.lseek(fd, 0, os.SEEK_DATA) == 1 << 39
        assert os.lseek(fd, 1 << 39, os.SEEK_HOLE) == (1 << 39) + 4096
        assert os.pread(fd, 6, 1 << 39) == b"middle"
        assert os.pread(fd, 6, 1 << 38) == bytes(6)
    finally:
        os.close(fd)
    assert os.stat(f).st_blocks == 8
    assert mount_mem.stats()["mem_bytes_used"] == 4096
    # cp keeps it sparse; du sees 8 KiB for both
    subprocess.run(["cp", "--sparse=always", str(f), str(f) + ".copy"], check=True)
    assert os.stat(str(f) + ".copy").st_blocks == 8
    du = subprocess.run(["du", "-s", "-B1", str(mount_mem.mnt)], check=True,
                        capture_output=True, text=True).stdout.split()[0]
    assert int(du) == 2 * 4096


def test_mem_counters_and_unlinked_open_file(mount_mem):
    p = mount_mem.mnt / "held"
    with open(p, "w+") as f:
        f.write("x" * 10000)
        f.flush()
        os.unlink(p)
        s = mount_mem.stats()
        assert s["mem_inodes_unlinked"] == 1
        assert s["open_files"] >= 1
        assert s["mem_bytes_used"] == 3 * 4096
        f.seek(0)
        assert f.read() == "x" * 10000
    # the kernel forgets the inode soon after the close: then it is freed
    wait_for(lambda: mount_mem.stats()["mem_inodes_unlinked"] == 0,
             what="the unlinked file to be freed")
    assert mount_mem.stats()["mem_bytes_used"] == 0


def test_mem_data_ends_with_the_mount(make_mount, workdir):
    m = make_mount(backing=MEM)
    (m.mnt / "f").write_text("gone soon")
    m.umount()
    m2 = make_mount(backing=MEM, mnt=m.mnt)
    assert os.listdir(m2.mnt) == []


def test_mem_coherence_off(make_mount):
    """--coherence=off: no kernel caching at all, still correct."""
    m = make_mount(backing=MEM, extra_args=["--coherence=off"])
    (m.mnt / "a").write_text("1")
    os.rename(m.mnt / "a", m.mnt / "b")
    assert (m.mnt / "b").read_text() == "1"
    assert not (m.mnt / "a").exists()


@pytest.fixture
def mount_mem(make_mount):
    return make_mount(backing=MEM)


@pytest.mark.parametrize("args,why", [
    (["--watch=inotify"], "--watch"),
    (["--coherence=sometimes"], "--coherence"),
], ids=["watch", "coherence"])
def test_mem_refuses_dir_options(run_eddy, workdir, args, why):
    m = mkd(workdir / "m")
    r = assert_refused(run_eddy, ["mount", *args, "mem:", m], [m])
    assert why in r.stderr


@pytest.mark.parametrize("source", [
    "mem:size=", "mem:size=12X", "mem:inodes=-1", "mem:color=blue", "mem:size=1G,",
    "mem:size=99999999999999999999T",
])
def test_mem_refuses_bad_parameters(run_eddy, workdir, source):
    m = mkd(workdir / "m")
    r = assert_refused(run_eddy, ["mount", source, m], [m])
    assert "mem:" in r.stderr


def test_mem_mountpoint_checks_still_apply(run_eddy, workdir):
    m = mkd(workdir / "m")
    (m / "x").write_text("not empty")
    r = assert_refused(run_eddy, ["mount", "mem:", m], [m])
    assert "not empty" in r.stderr
    assert_refused(run_eddy, ["mount", "mem:", workdir / "missing"], [m])
    assert_refused(run_eddy, ["mount", "mem:", m / "x"], [m])
