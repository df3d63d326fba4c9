"""Queue directories: what the round-trip cuts must keep true, and the cuts
themselves, counted with the per-type request counters of `eddyfs stats`
(fuse_req_<type>; counts, never timings).

- a message written through a write-only descriptor bypasses the page cache
  (no GETXATTR security.capability per write), and reads back at once;
  a message opened read-write is still cached and can be mmapped shared;
- pops through head report the popped names to the kernel in batches, and
  at once when the queue runs empty: the kernel then forgets every popped
  message (nothing leaks), and head/tail stay exact after every pop.
"""

import mmap
import os

import pytest

from conftest import wait_for

from test_queues import put, qmount  # noqa: F401  (the fixture)


def reqs(m):
    return {k: v for k, v in m.stats().items() if k.startswith("fuse_req")}


@pytest.fixture
def q(qmount):  # noqa: F811
    return qmount()


def test_write_only_messages_cost_no_getxattr(q):
    d = q.mnt / "q"
    os.mkdir(d)
    put(d / "warm")                 # first use of the queue's attributes
    before = reqs(q)
    for i in range(20):
        fd = os.open(d / f"m{i}", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        os.write(fd, b"part one ")
        os.write(fd, b"part two %d" % i)
        os.close(fd)
    after = reqs(q)
    assert after["fuse_req_create"] - before["fuse_req_create"] == 20
    assert after["fuse_req_write"] - before["fuse_req_write"] == 40
    assert after["fuse_req_getxattr"] == before["fuse_req_getxattr"], (before, after)
    for i in range(20):
        assert (d / f"m{i}").read_bytes() == b"part one part two %d" % i
    # an appender opened write-only on an existing message: the same
    fd = os.open(d / "m0", os.O_WRONLY | os.O_APPEND)
    os.write(fd, b"!")
    os.close(fd)
    assert (d / "m0").read_bytes() == b"part one part two 0!"
    assert os.readlink(d / "head") == "warm"


def test_read_write_message_is_cached_and_mmappable(q):
    d = q.mnt / "q"
    os.mkdir(d)
    fd = os.open(d / "m", os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
    try:
        os.write(fd, b"0123456789")
        with mmap.mmap(fd, 10, mmap.MAP_SHARED) as mm:
            mm[0:4] = b"abcd"
            mm.flush()
    finally:
        os.close(fd)
    assert (d / "m").read_bytes() == b"abcd456789"
    os.unlink(d / "head")
    assert os.listdir(d) == []


def test_head_pops_stay_exact_and_nothing_leaks(q):
    d = q.mnt / "q"
    os.mkdir(d)
    n = 150                         # more than two report batches
    for i in range(n):
        put(d / f"m{i:04d}", b"%d" % i)
    base = q.stats()["known_inodes"]
    for i in range(n):
        name = os.readlink(d / "head")
        assert name == f"m{i:04d}"
        assert os.readlink(d / "tail") == f"m{n - 1:04d}"
        with open(d / "head", "rb") as f:
            assert f.read() == b"%d" % i
        os.unlink(d / "head")
        if i < 5:   # (a look-up of the gone name also drops the kernel's entry)
            assert not os.path.lexists(d / name), name  # gone once unlink returned
        if i + 1 < n:
            assert os.readlink(d / "head") == f"m{i + 1:04d}"
    assert not os.path.lexists(d / "head") and not os.path.lexists(d / "tail")
    assert os.listdir(d) == []
    # the queue ran empty: every popped message was reported, the kernel
    # forgets them all (FORGETs are asynchronous: wait for them)
    wait_for(lambda: q.stats()["known_inodes"] <= base - n + 5,
             what="popped messages forgotten by the kernel")
    assert q.stats()["queue_pops"] >= n
