"""Per-type FUSE request counters in `eddyfs stats`: fuse_req_<type> counts
the requests of that type the daemon received, fuse_requests their sum."""

import os

from conftest import MEM, wait_for

TYPES = ("lookup", "forget", "batch_forget", "getattr", "setattr", "readlink", "mknod",
         "mkdir", "unlink", "rmdir", "symlink", "rename", "link", "open", "read", "write",
         "flush", "release", "fsync", "opendir", "readdir", "readdirplus", "releasedir",
         "fsyncdir", "statfs", "setxattr", "getxattr", "listxattr", "removexattr", "create",
         "fallocate", "copy_file_range", "lseek", "getlk", "setlk", "flock", "poll")


def reqs(m):
    return {k: v for k, v in m.stats().items() if k.startswith("fuse_req")}


def delta(a, b):
    return {k: b[k] - a.get(k, 0) for k in b if b[k] != a.get(k, 0)}


def test_every_type_reported_and_sum(make_mount):
    m = make_mount(backing=MEM)
    s = reqs(m)
    for t in TYPES:
        assert f"fuse_req_{t}" in s, f"stats lacks fuse_req_{t}: {s}"
    assert s["fuse_requests"] == sum(v for k, v in s.items() if k != "fuse_requests")


def test_counts_follow_syscalls(make_mount):
    m = make_mount(backing=MEM)
    d = m.mnt / "d"
    before = reqs(m)
    os.mkdir(d)
    fd = os.open(d / "f", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.write(fd, b"hello")
    os.fsync(fd)
    os.close(fd)
    os.symlink("f", d / "s")
    os.rename(d / "s", d / "t")
    os.unlink(d / "t")
    os.unlink(d / "f")
    os.rmdir(d)
    # RELEASE is asynchronous: it may arrive after close() returned
    wait_for(lambda: reqs(m)["fuse_req_release"] > before["fuse_req_release"],
             what="RELEASE counted")
    after = reqs(m)
    dd = delta(before, after)
    for t in ("mkdir", "create", "fsync", "symlink", "rename", "rmdir"):
        assert dd.get(f"fuse_req_{t}") == 1, (t, dd)
    assert dd.get("fuse_req_unlink") == 2, dd
    assert dd.get("fuse_req_write", 0) >= 1, dd
    # the total moves with the sum of the types (stats itself sends none)
    assert dd["fuse_requests"] == sum(v for k, v in dd.items() if k != "fuse_requests")
    assert reqs(m) == after, "reading stats must not cost FUSE requests"
