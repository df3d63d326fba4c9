"""Queue directories (eddyfs mount --queues): every numbered statement of
reference/queue-semantics.md that can be observed on one host, the eventfs
bugs B1-B8 as regression tests, fate-sharing, claims, readiness, quotas.

Statement numbers are given as (S<n>), eventfs bugs as (B<n>).
"""

import ctypes
import errno
import fcntl
import os
import select
import signal
import stat
import struct
import subprocess
import sys
import threading
import time

import pytest

from conftest import run_as, wait_for

OTHER_UID = 65534          # nobody
OTHER_GID = 65534


@pytest.fixture(params=["dir", "mem"])
def qmount(request, make_mount, workdir):
    """A --queues mount whose root anyone may use (1777, like /tmp): over a
    backing directory, or on mem: (which opens its root up by itself)."""
    def factory(extra=(), backing=None):
        if backing is None and request.param == "mem":
            backing = "mem:"
        if backing is None:
            backing = workdir / f"qb{len(os.listdir(workdir))}"
            backing.mkdir()
        if backing != "mem:":
            os.chmod(backing, 0o1777)
        return make_mount(backing=backing, extra_args=("--queues",) + tuple(extra))
    factory.source = request.param
    return factory


@pytest.fixture
def q(qmount):
    m = qmount()
    return m


def err(fn, *a):
    try:
        fn(*a)
    except OSError as e:
        return e.errno
    return 0


def put(path, data=b"x"):
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    os.write(fd, data)
    os.close(fd)


CREATOR = ("import os,sys,time\n"
           "os.mkdir(sys.argv[1])\n"
           "print('made', flush=True)\n"
           "if len(sys.argv) > 2: os.execvp(sys.argv[2], sys.argv[2:])\n"
           "time.sleep(600)\n")


def creator(path, *execargs):
    """A process that creates queue PATH and lives on (or execs)."""
    p = subprocess.Popen([sys.executable, "-c", CREATOR, str(path)] + list(execargs),
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "made"
    return p


def gone(path):
    return not os.path.lexists(path)


# ---------------------------------------------------------------- shape ----

def test_root_holds_only_directories(q):                       # S1
    r = q.mnt
    assert err(put, r / "f") == errno.EPERM
    assert err(os.symlink, "x", r / "s") == errno.EPERM
    assert err(os.mkfifo, r / "p") == errno.EPERM
    os.mkdir(r / "q")
    put(r / "q" / "m")
    assert err(os.link, r / "q" / "m", r / "l") == errno.EPERM


def test_no_nesting_and_owner_mode(q):                          # S2, S3
    old = os.umask(0o027)
    try:
        os.mkdir(q.mnt / "q", 0o777)
    finally:
        os.umask(old)
    st = os.stat(q.mnt / "q")
    assert stat.S_IMODE(st.st_mode) == 0o750 and st.st_uid == 0
    assert err(os.mkdir, q.mnt / "q" / "sub") == errno.EPERM

    def other():
        os.mkdir(q.mnt / "theirs", 0o700)
        s = os.stat(q.mnt / "theirs")
        return s.st_uid, s.st_gid
    # the creator (a forked child) exits at once: the queue dies with it
    assert run_as(OTHER_UID, OTHER_GID, other) == (OTHER_UID, OTHER_GID)
    wait_for(lambda: gone(q.mnt / "theirs"), what="queue of a dead creator gone")


def test_head_tail_shape_and_reserved_names(q):                 # S4
    d = q.mnt / "q"
    os.mkdir(d)
    assert sorted(os.listdir(d)) == []
    assert err(put, d / "head") == errno.EPERM                  # empty: EPERM
    assert err(os.symlink, "x", d / "tail") == errno.EPERM
    put(d / "a")
    assert sorted(os.listdir(d)) == ["a", "head", "tail"]
    assert err(os.open, d / "head", os.O_CREAT | os.O_EXCL | os.O_WRONLY) == errno.EEXIST
    assert err(os.symlink, "x", d / "tail") == errno.EEXIST
    assert err(os.mknod, d / "head", stat.S_IFREG | 0o644) == errno.EEXIST
    assert err(os.link, d / "a", d / "tail") == errno.EEXIST
    assert err(put, d / ".claim") == errno.EEXIST
    st = os.lstat(d / "head")
    assert stat.S_ISLNK(st.st_mode) and st.st_uid == os.stat(d).st_uid       # B7, B8
    assert [n for n in os.listdir(d) if n == "head"] == ["head"]           # B7


def test_order_is_arrival_not_name_or_mtime(q):                # S5
    d = q.mnt / "q"
    os.mkdir(d)
    for n in ["m3", "m1", "m2"]:
        put(d / n)
        time.sleep(0.01)
    with open(d / "m3", "ab") as f:                              # append: no reorder
        f.write(b"more")
    os.truncate(d / "m2", 0)
    assert os.readlink(d / "head") == "m3" and os.readlink(d / "tail") == "m2"


def test_readlink_head_is_never_stale(q):                       # S6
    d = q.mnt / "q"
    os.mkdir(d)
    names = [f"m{i:03d}" for i in range(200)]
    for n in names:
        put(d / n, n.encode())
    for n in names:
        assert os.readlink(d / "head") == n
        with open(d / "head", "rb") as f:
            assert f.read() == n.encode()
        os.unlink(d / "head")
    assert err(os.readlink, d / "head") == errno.ENOENT


def test_non_regular_children_are_not_messages(q):              # S7
    d = q.mnt / "q"
    os.mkdir(d)
    os.mkfifo(d / "fifo")
    os.symlink("elsewhere", d / "link")
    assert not os.path.lexists(d / "head")
    put(d / "m")
    os.mknod(d / "n", stat.S_IFREG | 0o600)
    assert os.readlink(d / "head") == "m" and os.readlink(d / "tail") == "n"


# -------------------------------------------------------------- popping ----

def test_pop_head_tail_and_empty(q):                           # S8, S9, S10
    d = q.mnt / "q"
    os.mkdir(d)
    for n in "abcd":
        put(d / n)
    os.unlink(d / "head")
    assert sorted(os.listdir(d)) == ["b", "c", "d", "head", "tail"]
    os.unlink(d / "tail")
    assert os.readlink(d / "tail") == "c"
    assert not os.path.exists(d / "a") and not os.path.exists(d / "d")
    os.unlink(d / "head")
    os.unlink(d / "head")
    assert os.listdir(d) == []
    assert err(os.unlink, d / "head") == errno.ENOENT
    assert err(os.unlink, d / "tail") == errno.ENOENT


def test_b1_create_after_queue_emptied(q):                      # S10, B1
    d = q.mnt / "q"
    os.mkdir(d)
    put(d / "a")
    os.unlink(d / "head")
    put(d / "b")
    assert os.readlink(d / "head") == "b" == os.readlink(d / "tail")
    os.unlink(d / "b")                                          # by name
    put(d / "c")
    assert os.readlink(d / "head") == "c"
    assert q.is_mounted()


def test_b2_unlink_one_of_two_by_name(q):                       # S11, B2
    d = q.mnt / "q"
    os.mkdir(d)
    for n in "abc":
        put(d / n)
    os.unlink(d / "b")
    assert os.readlink(d / "head") == "a" and os.readlink(d / "tail") == "c"
    os.unlink(d / "a")
    assert os.readlink(d / "head") == "c" == os.readlink(d / "tail")


def test_b3_pop_of_open_message(q):                             # S12, B3
    d = q.mnt / "q"
    os.mkdir(d)
    put(d / "a", b"first")
    put(d / "b", b"second")
    fd = os.open(d / "head", os.O_RDONLY)
    os.unlink(d / "head")
    assert os.readlink(d / "head") == "b"
    assert os.pread(fd, 100, 0) == b"first"
    os.close(fd)
    # the asynchronous-release pattern: cat head; rm head, many times
    for i in range(300):
        put(d / f"m{i:04d}", str(i).encode())
    got = []
    while True:
        try:
            with open(d / "head", "rb") as f:
                got.append(f.read())
        except FileNotFoundError:
            break
        os.unlink(d / "head")
    assert got == [b"second"] + [str(i).encode() for i in range(300)]


def test_concurrent_pops_remove_each_once(q):                  # S13
    d = q.mnt / "q"
    os.mkdir(d)
    n = 400
    for i in range(n):
        put(d / f"m{i:04d}")
    results = []

    def popper():
        k = 0
        while True:
            try:
                os.unlink(d / "head")
            except FileNotFoundError:
                break
            k += 1
        results.append(k)
    ts = [threading.Thread(target=popper) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert sum(results) == n and os.listdir(d) == []


def test_multicast_hard_links_vdev_pattern(q):                  # S14, B1, B4
    g = q.mnt / "global"
    qs = [q.mnt / f"q{i}" for i in range(3)]
    for p in [g] + qs:
        os.mkdir(p)
    for i in range(50):
        put(g / f"ev{i}", f"event {i}".encode())
        for p in qs:
            os.link(g / f"ev{i}", p / f"ev{i}")
        os.unlink(g / f"ev{i}")
    for i in range(50):
        os.unlink(qs[0] / "head")
    assert os.listdir(qs[0]) == []
    assert os.readlink(qs[1] / "head") == "ev0"
    with open(qs[2] / "tail", "rb") as f:
        assert f.read() == b"event 49"
    st = q.stats()
    assert st["queue_messages"] == 50                            # per inode


def test_portable_idiom_with_several_consumers(q):             # S15
    d = q.mnt / "q"
    os.mkdir(d)
    n = 300
    for i in range(n):
        put(d / f"m{i:04d}", f"{i}".encode())
    taken = [[] for _ in range(3)]

    def consumer(mine):
        while True:
            try:
                name = os.readlink(d / "head")
            except FileNotFoundError:
                return
            try:
                with open(d / name, "rb") as f:
                    data = f.read()
                os.unlink(d / name)
            except FileNotFoundError:
                continue                                         # lost the race
            mine.append(int(data))
    ts = [threading.Thread(target=consumer, args=(t,)) for t in taken]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    allgot = sorted(x for t in taken for x in t)
    assert allgot == list(range(n))
    for t in taken:
        assert t == sorted(t)                                     # oldest first


# --------------------------------------------------------- fate-sharing ----

@pytest.mark.parametrize("how", ["sigkill", "exit"])
def test_queue_dies_with_its_creator(q, how):                   # S16, S17, S22
    path = q.mnt / "fated"
    p = creator(path)
    put(path / "m")
    assert os.stat(path).st_ino
    if how == "sigkill":
        p.kill()
    else:
        p.stdout.close()
        p.send_signal(signal.SIGTERM)
    # a zombie counts as dead: do not reap it before checking
    wait_for(lambda: gone(path), timeout=5, interval=0.001, what="queue gone")
    assert "fated" not in os.listdir(q.mnt)
    assert err(os.stat, path) == errno.ENOENT
    p.wait()
    assert q.stats()["queue_reaps"] >= 1


def test_exec_and_threads_keep_ownership(q):                    # S16
    path = q.mnt / "execd"
    p = creator(path, "sleep", "600")                           # execs sleep
    time.sleep(0.3)
    assert os.path.isdir(path)
    p.kill()
    p.wait()
    wait_for(lambda: gone(path), timeout=5, what="queue gone after the exec'd process died")
    # a thread that creates a queue and ends does not take the queue along
    t = threading.Thread(target=os.mkdir, args=(q.mnt / "bythread",))
    t.start()
    t.join()
    time.sleep(0.3)
    assert os.path.isdir(q.mnt / "bythread")


def test_inotify_sees_the_queue_vanish(q):                      # S17, §5.1
    path = q.mnt / "watched"
    p = creator(path)
    libc = ctypes.CDLL(None, use_errno=True)
    ifd = libc.inotify_init1(os.O_NONBLOCK)
    assert ifd >= 0
    try:
        wd = libc.inotify_add_watch(ifd, str(path).encode(), 0x400 | 0x200)  # DELETE_SELF|DELETE
        assert wd >= 0
        p.kill()
        p.wait()
        wait_for(lambda: gone(path), timeout=5, what="queue gone")
        masks = []

        def have_delete_self():
            try:
                buf = os.read(ifd, 4096)
            except BlockingIOError:
                return False
            off = 0
            while off < len(buf):
                _, mask, _, ln = struct.unpack_from("iIII", buf, off)
                masks.append(mask)
                off += 16 + ln
            return any(m & 0x400 for m in masks)
        wait_for(have_delete_self, timeout=5, what="IN_DELETE_SELF")
    finally:
        os.close(ifd)


def test_sticky_queue_outlives_creator_until_unstuck(q):        # S18, S19, S20
    for attr in ("user.eventfs_sticky", "user.eddyfs.sticky"):
        path = q.mnt / f"st-{attr[5:11]}"
        p = creator(path)
        os.setxattr(path, attr, b"")
        assert attr in os.listxattr(path)
        put(path / "m")
        p.kill()
        p.wait()
        time.sleep(0.3)
        assert os.path.isdir(path) and os.readlink(path / "head") == "m"
        os.removexattr(path, attr)                               # B6: really removed
        wait_for(lambda: gone(path), timeout=5, what="unstuck queue reaped")


def test_only_owner_sets_sticky(q):                             # S19 (deviation)
    os.mkdir(q.mnt / "mine")
    os.chmod(q.mnt / "mine", 0o777)

    def try_set():
        try:
            os.setxattr(q.mnt / "mine", "user.eventfs_sticky", b"")
        except OSError as e:
            return e.errno
        return 0
    assert run_as(OTHER_UID, OTHER_GID, try_set) == errno.EPERM


def test_pid_reuse_cannot_resurrect(qmount, make_mount):
    if qmount.source == 'mem':
        pytest.skip('mem: does not survive an unmount')
    q = qmount()              # S21
    """After a remount the stored owner (pid, start time) must match a
    live process: a dead creator's queue is reaped even if its pid was
    reused since (the start time differs)."""
    path = q.mnt / "gone-later"
    p = creator(path)
    put(path / "m")
    q.umount()
    p.kill()
    p.wait()
    m2 = make_mount(backing=q.backing, extra_args=("--queues",))
    assert not os.path.exists(m2.mnt / "gone-later")


# -------------------------------------------------------- limits/perms ----

def write_config(workdir, text, quotas=None):
    cfg = workdir / "queues.ini"
    cfg.write_text(text)
    if quotas:
        qd = workdir / "quotas"
        qd.mkdir()
        for name, body in quotas.items():
            (qd / name).write_text(body)
    return cfg


def test_quotas_exact_and_all_or_nothing(qmount, workdir):       # S24, S25, B4, B8
    cfg = write_config(workdir, "[eventfs-config]\ndefault_max_dirs=2\ndefault_max_files=3\n"
                       "default_max_files_per_dir=2\ndefault_max_bytes=100\nquotas=quotas\n",
                       {"nobody": "[eventfs-quota]\nuser=nobody\nmax_dirs=1\n"})
    m = qmount(extra=("--queue-config", cfg))
    os.mkdir(m.mnt / "a")
    os.mkdir(m.mnt / "b")
    assert err(os.mkdir, m.mnt / "c") == errno.EDQUOT              # max_dirs = 2, exact
    put(m.mnt / "a" / "1")
    put(m.mnt / "a" / "2")
    assert err(put, m.mnt / "a" / "3") == errno.EDQUOT              # per queue = 2
    assert not os.path.exists(m.mnt / "a" / "3")                   # nothing partial
    put(m.mnt / "b" / "1")
    assert err(put, m.mnt / "b" / "2") == errno.EDQUOT              # max_files = 3
    os.unlink(m.mnt / "a" / "2")                                   # by name: one debit
    put(m.mnt / "b" / "2")
    with open(m.mnt / "b" / "2", "r+b") as f:
        f.write(b"y" * 97)                                          # 3 + 97 = 100: fits
        f.flush()
    with pytest.raises(OSError) as e:
        with open(m.mnt / "a" / "1", "ab") as f:
            f.write(b"z" * 10)
    assert e.value.errno == errno.EDQUOT
    assert os.path.getsize(m.mnt / "a" / "1") == 1                  # untouched
    os.unlink(m.mnt / "b" / "head")
    os.unlink(m.mnt / "b" / "head")
    os.unlink(m.mnt / "a" / "head")
    put(m.mnt / "a" / "again")                                      # counters came back
    assert m.stats()["queue_messages"] == 1


def test_per_queue_limit_by_xattr(q):                            # §5.4
    d = q.mnt / "q"
    os.mkdir(d)
    os.setxattr(d, "user.eventfs_max_files", b"2")
    put(d / "a")
    put(d / "b")
    assert err(put, d / "c") == errno.EDQUOT
    os.setxattr(d, "user.eddyfs.max_messages", b"3")
    put(d / "c")
    assert err(os.setxattr, d, "user.eddyfs.max_messages", b"lots") == errno.EINVAL


def test_bad_config_is_refused(qmount, workdir, run_eddy):
    cfg = write_config(workdir, "[eventfs-config]\ndefault_max_dirs=-3\n")
    r = run_eddy("mount", "--queues", "--queue-config", cfg, workdir, workdir / "nomnt")
    assert r.returncode == 2 and "queues.ini:2" in r.stderr and r.stderr.count("\n") == 1


def test_posix_permissions_and_sticky_root(q):                   # S26, S27, B8
    d = q.mnt / "private"
    os.mkdir(d, 0o700)
    put(d / "m")

    def peek():
        out = []
        for fn, a in ((os.readlink, d / "head"), (os.listdir, d), (os.unlink, d / "head")):
            try:
                fn(a)
                out.append(0)
            except OSError as e:
                out.append(e.errno)
        return out
    assert run_as(OTHER_UID, OTHER_GID, peek) == [errno.EACCES] * 3
    os.mkdir(q.mnt / "open", 0o777)
    assert run_as(OTHER_UID, OTHER_GID, lambda: err(os.rmdir, q.mnt / "open")) == errno.EPERM
    assert run_as(OTHER_UID, OTHER_GID, lambda: err(os.chmod, d, 0o777)) == errno.EPERM
    assert err(os.rmdir, d) == errno.ENOTEMPTY
    os.unlink(d / "head")
    os.rmdir(d)


def test_rename_rules(q):                                        # S28, B5
    a, b = q.mnt / "a", q.mnt / "b"
    os.mkdir(a)
    os.mkdir(b)
    put(a / "m1")
    put(a / "m2")
    assert err(os.rename, a / "m1", a / "m9") == errno.EXDEV
    assert err(os.rename, a / "m1", b / "m1") == errno.EXDEV
    assert err(os.rename, a / "head", a / "x") == errno.EPERM
    assert err(os.rename, a / "m1", a / "tail") == errno.EPERM
    assert err(os.rename, a, q.mnt / "c") == errno.EPERM
    # mv falls back to copy + unlink: the message moves to the tail
    subprocess.run(["mv", str(a / "m1"), str(a / "m3")], check=True)
    assert os.readlink(a / "head") == "m2" and os.readlink(a / "tail") == "m3"


def test_names_and_exclusive_create(q):                          # S31
    d = q.mnt / "q"
    os.mkdir(d)
    assert err(put, d / ("n" * 256)) == errno.ENAMETOOLONG
    put(d / "m")
    assert err(put, d / "m") == errno.EEXIST


def test_inotify_create_and_pop_events(q):                      # S30
    d = q.mnt / "q"
    os.mkdir(d)
    libc = ctypes.CDLL(None, use_errno=True)
    ifd = libc.inotify_init1(os.O_NONBLOCK)
    try:
        assert libc.inotify_add_watch(ifd, str(d).encode(), 0x100 | 0x200) >= 0
        put(d / "m")
        os.unlink(d / "head")
        time.sleep(0.1)
        buf = os.read(ifd, 4096)
        events, off = [], 0
        while off < len(buf):
            _, mask, _, ln = struct.unpack_from("iIII", buf, off)
            name = buf[off + 16:off + 16 + ln].rstrip(b"\0").decode()
            events.append((mask, name))
            off += 16 + ln
        assert (0x100, "m") in events and (0x200, "head") in events
    finally:
        os.close(ifd)


def test_messages_survive_remount_while_creator_lives(qmount, make_mount):
    if qmount.source == 'mem':
        pytest.skip('mem: does not survive an unmount')
    q = qmount()   # S29
    d = q.mnt / "kept"
    os.mkdir(d)                                  # the test process is the creator
    for n in ["x3", "x1", "x2"]:
        put(d / n, n.encode())
        time.sleep(0.02)
    os.unlink(d / "head")
    q.umount()
    m2 = make_mount(backing=q.backing, extra_args=("--queues",))
    assert os.readlink(m2.mnt / "kept" / "head") == "x1"
    assert os.readlink(m2.mnt / "kept" / "tail") == "x2"


# --------------------------------------------------------------- claims ----

def read_records(data):
    out = []
    while data:
        hdr, rest = data.split(b"\n", 1)
        size, name = hdr.split(b" ", 1)
        size = int(size)
        out.append((name.decode(), rest[:size]))
        data = rest[size:]
    return out


def test_claim_batches_records_and_is_exclusive(q):             # §5.2
    d = q.mnt / "q"
    os.mkdir(d)
    for i in range(10):
        put(d / f"m{i}", b"data %d\n" % i)
    # RELEASE is asynchronous: a message is claimable once the daemon saw
    # its writer close (README), so wait for that before the one read
    wait_for(lambda: q.stats().get("open_files", 0) == 0, what="writers closed")
    fd = os.open(d / ".claim", os.O_RDONLY)
    try:
        got = read_records(os.read(fd, 65536))
    finally:
        os.close(fd)
    assert got == [(f"m{i}", b"data %d\n" % i) for i in range(10)]
    assert os.listdir(d) == []
    assert ".claim" not in os.listdir(d)


def test_claim_large_record_continues(q):
    d = q.mnt / "q"
    os.mkdir(d)
    body = os.urandom(200000)
    put(d / "big", body)
    put(d / "small", b"s")
    fd = os.open(d / ".claim", os.O_RDONLY | os.O_NONBLOCK)
    data = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            break
        data += chunk
    os.close(fd)
    assert read_records(data) == [("big", body), ("small", b"s")]


def test_claim_blocks_polls_and_is_interruptible(q):            # §5.3
    d = q.mnt / "q"
    os.mkdir(d)
    fd = os.open(d / ".claim", os.O_RDONLY | os.O_NONBLOCK)
    assert err(os.read, fd, 100) == errno.EAGAIN
    p = select.poll()
    p.register(fd, select.POLLIN)
    assert p.poll(50) == []
    threading.Timer(0.2, put, args=(d / "late", b"hello")).start()
    ev = p.poll(5000)
    assert ev and ev[0][1] & select.POLLIN
    os.set_blocking(fd, True)
    assert read_records(os.read(fd, 100)) == [("late", b"hello")]
    # a blocked read is woken by a producer
    threading.Timer(0.2, put, args=(d / "later", b"x")).start()
    t0 = time.monotonic()
    assert read_records(os.read(fd, 100)) == [("later", b"x")]
    assert time.monotonic() - t0 >= 0.1
    # and a signal interrupts it
    signal.signal(signal.SIGALRM, lambda *a: None)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    try:
        r = subprocess.run([sys.executable, "-c",
                            "import os,signal,sys\n"
                            "def h(*a): raise InterruptedError\n"
                            "signal.signal(signal.SIGALRM, h)\n"
                            "signal.setitimer(signal.ITIMER_REAL, 0.3)\n"
                            "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
                            "try:\n    os.read(fd, 10)\nexcept InterruptedError:\n"
                            "    print('EINTR')\n", str(d / ".claim")],
                           capture_output=True, text=True, timeout=30)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    assert r.stdout.strip() == "EINTR"
    os.close(fd)


def test_claim_waits_for_writers_and_ends_with_queue(q):
    d = q.mnt / "q"
    os.mkdir(d)
    w = os.open(d / "inprogress", os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(w, b"part1")
    fd = os.open(d / ".claim", os.O_RDONLY | os.O_NONBLOCK)
    assert err(os.read, fd, 100) == errno.EAGAIN               # still being written
    os.write(w, b"part2")
    os.close(w)
    # the kernel sends RELEASE after close() returns: wait for readiness
    p = select.poll()
    p.register(fd, select.POLLIN)
    assert p.poll(5000)
    assert read_records(os.read(fd, 100)) == [("inprogress", b"part1part2")]
    os.close(fd)
    path = q.mnt / "dying"
    p = creator(path)
    fd = os.open(path / ".claim", os.O_RDONLY)
    p.kill()
    p.wait()
    wait_for(lambda: gone(path), timeout=5, what="queue gone")
    assert os.read(fd, 100) == b""                              # end of file
    os.close(fd)


def test_many_producers_and_consumers_exactly_once(q):
    d = q.mnt / "q"
    os.mkdir(d)
    nprod, per = 3, 300
    got = []
    lock = threading.Lock()
    done = threading.Event()

    def producer(k):
        for i in range(per):
            put(d / f"p{k}-{i:05d}", f"{k} {i}".encode())

    def claimer():
        fd = os.open(d / ".claim", os.O_RDONLY | os.O_NONBLOCK)
        mine = []
        while True:
            try:
                data = os.read(fd, 8192)
            except BlockingIOError:
                if done.is_set():
                    try:
                        data = os.read(fd, 8192)
                    except BlockingIOError:
                        break
                else:
                    select.select([fd], [], [], 0.05)
                    continue
            mine += [tuple(map(int, b.split())) for _, b in read_records(data)]
        os.close(fd)
        with lock:
            got.append(mine)

    def popper():
        mine = []
        while True:
            try:
                name = os.readlink(d / "head")
                with open(d / name, "rb") as f:
                    data = f.read()
                if not data:
                    continue                # created, not written yet
                os.unlink(d / name)
            except FileNotFoundError:
                if done.is_set() and not os.path.lexists(d / "head"):
                    break
                continue
            mine.append(tuple(map(int, data.split())))
        with lock:
            got.append(mine)
    ps = [threading.Thread(target=producer, args=(k,)) for k in range(nprod)]
    cs = [threading.Thread(target=claimer) for _ in range(2)] + [threading.Thread(target=popper)]
    for t in ps + cs:
        t.start()
    for t in ps:
        t.join()
    done.set()
    for t in cs:
        t.join()
    flat = [x for m in got for x in m]
    assert sorted(flat) == sorted((k, i) for k in range(nprod) for i in range(per))
    for mine in got:                                # in order per producer
        for k in range(nprod):
            seq = [i for kk, i in mine if kk == k]
            assert seq == sorted(seq)


# ---------------------------------------------------------- xattr mode ----

def test_xattr_mode_makes_a_directory_a_queue(make_mount, workdir):
    m = make_mount(extra_args=("--queues=xattr",))
    d = m.mnt / "plain" / "events"
    os.makedirs(d)
    put(d / "before")
    put(m.mnt / "file")                                          # root is ordinary
    os.setxattr(d, "user.eddyfs.queue", b"1")
    put(d / "after")
    assert os.readlink(d / "head") == "before" and os.readlink(d / "tail") == "after"
    assert err(os.mkdir, d / "sub") == errno.EPERM
    os.unlink(d / "head")
    assert os.listdir(d) == ["after", "head", "tail"] or sorted(os.listdir(d)) == \
        ["after", "head", "tail"]
    os.removexattr(d, "user.eddyfs.queue")
    assert os.listdir(d) == ["after"]
    os.mkdir(d / "sub")
