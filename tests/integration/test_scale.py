"""Scale: 30,000 files in one directory (more than the daemon's 20,000 fd
limit) must all be visible and correct, without the daemon hoarding file
descriptors."""

import os
import subprocess
import threading


N = 30_000
FD_LIMIT = 5_000


def content(i):
    return f"content of file {i}\n" * (1 + i % 5)


class FdMonitor:
    """Samples the daemon's open fd count in a background thread."""

    def __init__(self, pid):
        self.pid = pid
        self.max = 0
        self.samples = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def count(self):
        try:
            n = len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            return self.max
        self.max = max(self.max, n)
        self.samples += 1
        return n

    def _run(self):
        while not self._stop.wait(0.05):
            self.count()

    def __enter__(self):
        self.count()
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.count()


def populate(d, n):
    os.mkdir(d)
    for i in range(n):
        fd = os.open(f"{d}/f{i:06d}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, content(i).encode())
        os.close(fd)


def test_30k_files(mount):
    populate(mount.backing / "big", N)
    big = mount.mnt / "big"
    with FdMonitor(mount.pid) as mon:
        r = subprocess.run(["ls", "-l", str(big)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-2000:]
        lines = r.stdout.splitlines()[1:]  # drop "total"
        assert len(lines) == N, f"ls -l shows {len(lines)} of {N} files"
        seen = {l.split()[-1] for l in lines}
        assert seen == {f"f{i:06d}" for i in range(N)}
        assert mon.count() < FD_LIMIT, f"daemon holds {mon.count()} fds after ls -l"

        names = os.listdir(big)
        assert len(names) == N and len(set(names)) == N
        for i in range(N):
            st = os.stat(big / f"f{i:06d}")
            assert st.st_size == len(content(i)), i
            if i % 1000 == 0:
                assert mon.count() < FD_LIMIT, (i, mon.count())
        for i in range(0, N, 37):
            assert (big / f"f{i:06d}").read_text() == content(i), i
        # and a second full pass, now reading every 10th file
        for i in range(N):
            if i % 10 == 3:
                with open(big / f"f{i:06d}") as f:
                    assert f.read() == content(i), i
            else:
                os.lstat(big / f"f{i:06d}")
        r = subprocess.run(["find", str(big), "-type", "f"], capture_output=True,
                           text=True)
        assert r.returncode == 0 and len(r.stdout.splitlines()) == N
    assert mon.max < FD_LIMIT, f"daemon fd count peaked at {mon.max}"
    s = mount.stats()
    assert s.get("cached_fds", 0) < FD_LIMIT, s


def test_many_dirs_and_open_files(mount):
    """30,000 files spread over 300 directories, and 1,500 files held open at
    once through the mount."""
    root = mount.backing / "tree"
    os.mkdir(root)
    for d in range(300):
        populate(root / f"d{d:03d}", 100)
    with FdMonitor(mount.pid) as mon:
        r = subprocess.run(["find", str(mount.mnt / "tree"), "-type", "f", "-size", "-100k"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-2000:]
        assert len(r.stdout.splitlines()) == 30_000
        r = subprocess.run(["du", "-s", "--apparent-size", "-b", str(mount.mnt / "tree")],
                           capture_output=True, text=True)
        assert r.returncode == 0
        files = []
        try:
            for k in range(1500):
                d, i = k % 300, k // 300
                files.append((k, open(mount.mnt / "tree" / f"d{d:03d}" / f"f{i:06d}")))
            for k, f in files:
                assert f.read() == content(k // 300), k
        finally:
            for _k, f in files:
                f.close()
    assert mon.max < FD_LIMIT, f"daemon fd count peaked at {mon.max}"


def test_more_open_files_than_fd_cache(mount):
    """Write through 25,000 distinct files (beyond the 20,000 fd limit) one
    after the other; all data must land in the backing dir."""
    d = mount.mnt / "w"
    os.mkdir(d)
    with FdMonitor(mount.pid) as mon:
        for i in range(25_000):
            with open(d / f"w{i}", "w") as f:
                f.write(content(i))
    assert mon.max < FD_LIMIT, f"daemon fd count peaked at {mon.max}"
    bd = mount.backing / "w"
    assert len(os.listdir(bd)) == 25_000
    for i in range(0, 25_000, 13):
        assert (bd / f"w{i}").read_text() == content(i), i
