"""Helpers for the multi-client coherence tests (test_coherence*.py).

  observe helpers   lstat_view(p), read_or_err(p), listing(p), xattr_view(p),
                    tree_view(root), diff_views(want, got)
  eventually(...)   bounded poll until an observation equals the expected one
  watch sources     WATCH_SOURCES, watch_args(source), fanotify_available()
  lock helpers      LockHolder(path, kind, ...) holds a lock in a separate
                    process; try_lock(path, kind, ...) / get_lock(path, kind,
                    ...) probe from yet another process.

This file is also a small command-line tool used by the lock helpers
(`python3 coherence_util.py hold|try|getlk|wait KIND PATH START LEN TYPE`);
the lock operations run in separate processes because POSIX locks are
per process.
"""

import ctypes
import errno
import fcntl
import hashlib
import os
import stat
import struct
import subprocess
import sys
import time

PYTHON = "/usr/bin/python3"
HERE = os.path.abspath(__file__)

# bounded wait for "the other mount sees the change" (never a pass/fail
# timing threshold: a test fails only if the old state persists past it)
SEE_TIMEOUT = float(os.environ.get("EDDYFS_TEST_SEE_TIMEOUT", "10"))
PROC_TIMEOUT = 60.0

F_OFD_GETLK = 36
F_OFD_SETLK = 37
F_OFD_SETLKW = 38


# --------------------------------------------------------------------------
# change sources (--watch): tests that run on both pick them explicitly;
# the rest use EDDYFS_TEST_WATCH if set, else the daemon's default (auto:
# fanotify when privileged)

WATCH_SOURCES = ("inotify", "fanotify")
DEFAULT_WATCH = os.environ.get("EDDYFS_TEST_WATCH", "")

_FAN_FLAGS = 0x00000001 | 0x00000002 | 0x00000200 | 0x00000c00 | 0x00000010
# FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_FID | FAN_REPORT_DFID_NAME |
# FAN_UNLIMITED_QUEUE (FAN_CLASS_NOTIF is 0)
_FAN_MARK_ADD_FILESYSTEM = 0x00000001 | 0x00000100
_FAN_CREATE = 0x00000100


def fanotify_available(path="/tmp"):
    """True if a fanotify filesystem mark with directory handles and names
    can be placed on path's filesystem (what --watch=fanotify needs)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.fanotify_init(_FAN_FLAGS, os.O_RDONLY)
    if fd < 0:
        return False
    try:
        return libc.fanotify_mark(fd, _FAN_MARK_ADD_FILESYSTEM,
                                  ctypes.c_uint64(_FAN_CREATE), -100,
                                  str(path).encode()) == 0
    finally:
        os.close(fd)


def watch_args(source=None):
    """The --watch arguments for source (None: EDDYFS_TEST_WATCH, or none)."""
    source = source or DEFAULT_WATCH
    return (f"--watch={source}",) if source else ()


def skip_unless_source(source):
    import pytest
    if source == "fanotify" and not fanotify_available():
        pytest.skip("fanotify filesystem marks unavailable (needs CAP_SYS_ADMIN)")


# --------------------------------------------------------------------------
# observations (never raise: errors become ("err", errno-name))

def err(e):
    return ("err", errno.errorcode.get(e.errno, str(e.errno)))


def lstat_view(p, nlink=True):
    """Type, permission bits, size (and nlink) of p, or ("err", ENAME)."""
    try:
        st = os.lstat(p)
    except OSError as e:
        return err(e)
    t = stat.S_IFMT(st.st_mode)
    v = {"type": {stat.S_IFREG: "file", stat.S_IFDIR: "dir",
                  stat.S_IFLNK: "symlink"}.get(t, oct(t)),
         "mode": oct(stat.S_IMODE(st.st_mode))}
    if t != stat.S_IFDIR:
        v["size"] = st.st_size
    if nlink:
        v["nlink"] = st.st_nlink
    return v


def stat_view(p):
    """Like lstat_view but following symlinks (a plain stat)."""
    try:
        st = os.stat(p)
    except OSError as e:
        return err(e)
    return {"mode": oct(st.st_mode), "size": st.st_size, "nlink": st.st_nlink}


def read_or_err(p):
    try:
        with open(p, "rb") as f:
            return f.read()
    except OSError as e:
        return err(e)


def readlink_or_err(p):
    try:
        return os.readlink(p)
    except OSError as e:
        return err(e)


def listing(p):
    try:
        return sorted(os.listdir(p))
    except OSError as e:
        return err(e)


def xattr_view(p, name="user.coh"):
    try:
        names = sorted(n for n in os.listxattr(p) if n.startswith("user."))
    except OSError as e:
        names = err(e)
    try:
        val = os.getxattr(p, name)
    except OSError as e:
        val = err(e)
    return {"list": names, "value": val}


def short(v, n=300):
    r = repr(v)
    return r if len(r) <= n else r[:n] + f"...({len(r)} chars)"


def eventually(observe, want, what, timeout=SEE_TIMEOUT, interval=0.02):
    """Poll observe() until it equals want; AssertionError with the last
    observation if it still differs after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = observe()
        if got == want:
            return got
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"{what}: still not the expected state after {timeout}s\n"
                f"  expected: {short(want)}\n  observed: {short(got)}")
        time.sleep(interval)


# --------------------------------------------------------------------------
# whole-tree views (random checker)

def tree_view(root):
    """{relpath: description} of every object below root (not root itself):
    type, mode, size, nlink, sha1 of file contents, symlink target."""
    view = {}

    def walk(rel):
        d = os.path.join(root, rel) if rel else root
        try:
            names = os.listdir(d)
        except OSError as e:
            view[(rel or ".") + "/<listdir>"] = err(e)
            return
        for n in sorted(names):
            r = os.path.join(rel, n) if rel else n
            p = os.path.join(root, r)
            v = lstat_view(p)
            if isinstance(v, dict):
                if v["type"] == "file":
                    c = read_or_err(p)
                    v["data"] = (hashlib.sha1(c).hexdigest()[:12]
                                 if isinstance(c, bytes) else c)
                    if isinstance(c, bytes):
                        v["datalen"] = len(c)
                elif v["type"] == "symlink":
                    v["target"] = readlink_or_err(p)
            view[r] = v
            if isinstance(v, dict) and v["type"] == "dir":
                walk(r)

    walk("")
    return view


def diff_views(want, got, limit=10):
    """Human-readable first differences between two tree views."""
    out = []
    for k in sorted(set(want) | set(got)):
        a = want.get(k, "<missing>")
        b = got.get(k, "<missing>")
        if a != b:
            out.append(f"    {k}: backing={a} mount={b}")
            if len(out) >= limit:
                out.append("    ...")
                break
    return out


# --------------------------------------------------------------------------
# locks, each in its own process

def _flock_struct(ltype, start, length, pid=0):
    return struct.pack("hhqqi4x", ltype, os.SEEK_SET, start, length, pid)


def _flock_unpack(b):
    ltype, whence, start, length, pid = struct.unpack("hhqqi4x", b)
    return ltype, start, length, pid


LTYPES = {"w": fcntl.F_WRLCK, "r": fcntl.F_RDLCK}
LTYPE_NAMES = {fcntl.F_WRLCK: "w", fcntl.F_RDLCK: "r", fcntl.F_UNLCK: "u"}


def _do_lock(fd, kind, start, length, ltype, wait):
    """kind: posix | ofd | flock."""
    if kind == "flock":
        op = fcntl.LOCK_EX if ltype == "w" else fcntl.LOCK_SH
        if not wait:
            op |= fcntl.LOCK_NB
        fcntl.flock(fd, op)
        return
    if kind == "posix":
        cmd = fcntl.F_SETLKW if wait else fcntl.F_SETLK
    else:
        cmd = F_OFD_SETLKW if wait else F_OFD_SETLK
    fcntl.fcntl(fd, cmd, _flock_struct(LTYPES[ltype], start, length))


def _getlk(fd, kind, start, length, ltype):
    cmd = fcntl.F_GETLK if kind == "posix" else F_OFD_GETLK
    b = fcntl.fcntl(fd, cmd, _flock_struct(LTYPES[ltype], start, length))
    t, s, l, pid = _flock_unpack(b)
    return f"{LTYPE_NAMES.get(t, t)} {s} {l} {pid}"


def _open_for(path, ltype):
    return os.open(path, os.O_RDWR if ltype == "w" else os.O_RDONLY)


def _main(argv):
    mode, kind, path, start, length, ltype = argv[:6]
    start, length = int(start), int(length)
    try:
        fd = _open_for(path, ltype)
        if mode == "getlk":
            print("ok " + _getlk(fd, kind, start, length, ltype), flush=True)
            return 0
        _do_lock(fd, kind, start, length, ltype, wait=(mode == "wait"))
    except OSError as e:
        print("err " + errno.errorcode.get(e.errno, str(e.errno)), flush=True)
        return 0
    print(f"ok {os.getpid()}", flush=True)
    if mode in ("hold", "wait"):
        # hold until stdin says something (or closes), then exit, which
        # closes fd and releases the lock
        sys.stdin.readline()
    return 0


class LockHolder:
    """A separate process holding a lock on `path`."""

    def __init__(self, path, kind="posix", start=0, length=0, ltype="w",
                 mode="hold"):
        self.argv = [PYTHON, HERE, mode, kind, str(path), str(start),
                     str(length), ltype]
        self.p = subprocess.Popen(self.argv, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        self.pid = self.p.pid
        self.result = None

    def started(self, timeout=PROC_TIMEOUT):
        """First output line ('ok PID' or 'err ENAME'); bounded."""
        import selectors
        if self.result is None:
            sel = selectors.DefaultSelector()
            sel.register(self.p.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                raise AssertionError(f"{self.argv} printed nothing within {timeout}s")
            self.result = self.p.stdout.readline().strip()
        return self.result

    def ready(self, timeout=0.0):
        """Non-blocking-ish: first line if available within timeout, else None."""
        import selectors
        if self.result is not None:
            return self.result
        sel = selectors.DefaultSelector()
        sel.register(self.p.stdout, selectors.EVENT_READ)
        if sel.select(timeout):
            self.result = self.p.stdout.readline().strip()
        return self.result

    def hold(self):
        r = self.started()
        assert r.startswith("ok"), f"lock holder {self.argv} failed: {r}"
        return self

    def release(self, timeout=PROC_TIMEOUT):
        if self.p.poll() is None:
            try:
                self.p.stdin.write("x\n")
                self.p.stdin.flush()
            except (BrokenPipeError, OSError):
                pass
        try:
            self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise AssertionError(f"lock holder {self.argv} did not exit "
                                 f"within {timeout}s")

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def _run_once(mode, path, kind, start, length, ltype):
    argv = [PYTHON, HERE, mode, kind, str(path), str(start), str(length), ltype]
    r = subprocess.run(argv, capture_output=True, text=True,
                       timeout=PROC_TIMEOUT)
    assert r.returncode == 0, f"{argv}: rc={r.returncode} {r.stderr}"
    return r.stdout.strip()


def try_lock(path, kind="posix", start=0, length=0, ltype="w"):
    """Try a non-blocking lock from a fresh process (which then exits).
    Returns 'ok PID' or 'err ENAME'."""
    return _run_once("try", path, kind, start, length, ltype)


def get_lock(path, kind="posix", start=0, length=0, ltype="w"):
    """F_GETLK (or F_OFD_GETLK) from a fresh process: 'ok TYPE START LEN PID'
    (TYPE u = no conflicting lock) or 'err ENAME'."""
    return _run_once("getlk", path, kind, start, length, ltype)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
