"""Shared helpers for the eddyfs conformance tests (test_ops, test_permissions,
test_confinement).

A *scenario* is a function ``f(r)`` taking a :class:`Rec`.  It performs file
system operations below ``r.root`` and records their outcomes with ``r(...)``
or ``r.rec(...)``.  :func:`conform` runs the scenario once on a plain native
directory and once below an eddyfs mountpoint and asserts that both recordings
are identical, and that the backing directory (if the mount has one: the mem
backend has none) ends up in the same state as the native directory.
"""

import ctypes
import ctypes.util
import errno
import functools
import hashlib
import os
import stat

libc = ctypes.CDLL(None, use_errno=True)

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
XATTR_CREATE = 1
XATTR_REPLACE = 2


class timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                           ctypes.c_char_p, ctypes.c_uint]
libc.utimensat.argtypes = [ctypes.c_int, ctypes.c_char_p,
                           ctypes.POINTER(timespec), ctypes.c_int]
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long,
                           ctypes.c_long]
libc.getxattr.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p,
                          ctypes.c_size_t]
libc.getxattr.restype = ctypes.c_ssize_t
libc.listxattr.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
libc.listxattr.restype = ctypes.c_ssize_t


def _check(ret, what, path=None):
    if ret < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path if path is not None else what)
    return ret


def _b(p):
    return os.fsencode(p) if p is not None else None


def renameat2(old, new, flags, olddirfd=AT_FDCWD, newdirfd=AT_FDCWD):
    return _check(libc.renameat2(olddirfd, _b(old), newdirfd, _b(new), flags),
                  "renameat2", old)


def utimensat(path, atime, mtime, nofollow=False, dirfd=AT_FDCWD):
    """atime/mtime are (sec, nsec) tuples; nsec may be UTIME_NOW/UTIME_OMIT."""
    ts = (timespec * 2)(timespec(*atime), timespec(*mtime))
    return _check(libc.utimensat(dirfd, _b(path), ts,
                                 AT_SYMLINK_NOFOLLOW if nofollow else 0),
                  "utimensat", path)


libc.futimens.argtypes = [ctypes.c_int, ctypes.POINTER(timespec)]
libc.linkat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                        ctypes.c_char_p, ctypes.c_int]
AT_SYMLINK_FOLLOW = 0x400


def futimens(fd, atime, mtime):
    ts = (timespec * 2)(timespec(*atime), timespec(*mtime))
    return _check(libc.futimens(fd, ts), "futimens")


def linkat_follow(old, new):
    """linkat(AT_SYMLINK_FOLLOW): hard link to the symlink's target
    (Python's os.link(follow_symlinks=True) uses link(2), which does not)."""
    return _check(libc.linkat(AT_FDCWD, _b(old), AT_FDCWD, _b(new),
                              AT_SYMLINK_FOLLOW), "linkat", old)


def fallocate(fd, mode, offset, length):
    return _check(libc.fallocate(fd, mode, offset, length), "fallocate")


def getxattr_raw(path, name, size):
    """getxattr(2) with a caller-chosen buffer size (to provoke ERANGE)."""
    buf = ctypes.create_string_buffer(max(size, 1))
    n = _check(libc.getxattr(_b(path), name.encode(), buf if size else None,
                             size), "getxattr", path)
    return buf.raw[:n] if size else n


def listxattr_raw(path, size):
    buf = ctypes.create_string_buffer(max(size, 1))
    n = _check(libc.listxattr(_b(path), buf if size else None, size),
               "listxattr", path)
    return buf.raw[:n] if size else n


def errname(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def ftype(mode):
    for name, test in (("reg", stat.S_ISREG), ("dir", stat.S_ISDIR),
                       ("lnk", stat.S_ISLNK), ("fifo", stat.S_ISFIFO),
                       ("sock", stat.S_ISSOCK), ("chr", stat.S_ISCHR),
                       ("blk", stat.S_ISBLK)):
        if test(mode):
            return name
    return "?%o" % stat.S_IFMT(mode)


def statsum(st):
    """The meaningful, comparable part of a stat result."""
    t = ftype(st.st_mode)
    d = {"type": t, "mode": "%04o" % stat.S_IMODE(st.st_mode),
         "uid": st.st_uid, "gid": st.st_gid}
    if t != "dir":
        d["nlink"] = st.st_nlink
        d["size"] = st.st_size
    if t in ("chr", "blk"):
        d["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
    return d


def sha(data):
    return hashlib.sha256(data).hexdigest()[:16]


class Rec:
    """Records outcomes of operations below ``root``."""

    def __init__(self, root, tag):
        self.root = str(root)
        self.tag = tag  # "native" or "mount"
        self.out = []

    def p(self, *parts):
        return os.path.join(self.root, *parts)

    def _norm(self, v):
        if isinstance(v, os.stat_result):
            return statsum(v)
        if isinstance(v, os.statvfs_result):
            return "statvfs"
        if isinstance(v, str):
            return v.replace(self.root, "<root>")
        if isinstance(v, bytes):
            r = os.fsencode(self.root)
            v = v.replace(r, b"<root>")
            return v if len(v) <= 200 else ("bytes", len(v), sha(v))
        if isinstance(v, (list, tuple)):
            return [self._norm(x) for x in v]
        if isinstance(v, dict):
            return {k: self._norm(x) for k, x in v.items()}
        if v is None or isinstance(v, (int, float, bool)):
            return v
        return type(v).__name__

    def __call__(self, label, fn, *args, **kw):
        """Run fn, record ("ok", value) or ("err", ERRNAME); return value or
        None on error."""
        try:
            v = fn(*args, **kw)
        except OSError as e:
            self.out.append((label, "err", errname(e)))
            return None
        self.out.append((label, "ok", self._norm(v)))
        return v

    def open(self, label, path, flags, mode=0o777, **kw):
        """os.open recording "fd" (not the fd number); returns fd or None."""
        try:
            fd = os.open(path, flags, mode, **kw)
        except OSError as e:
            self.out.append((label, "err", errname(e)))
            return None
        self.out.append((label, "ok", "fd"))
        return fd

    def as_(self, label, uid, gid, fn, *args, groups=(), **kw):
        """Record fn(*args, **kw) run in a child with the given credentials
        (conftest.run_as)."""
        from conftest import run_as
        if kw:
            fn = functools.partial(fn, **kw)
        return self(label, run_as, uid, gid, fn, *args, groups=groups)

    def rec(self, label, value):
        self.out.append((label, self._norm(value)))
        return value

    def st(self, label, *parts, follow=False):
        p = self.p(*parts)
        return self(label, os.stat if follow else os.lstat, p)

    def content(self, label, *parts):
        def rd():
            with open(self.p(*parts), "rb") as f:
                return f.read()
        return self(label, rd)

    def listing(self, label, *parts):
        return self(label, lambda: sorted(os.listdir(self.p(*parts))))


def xattrs_of(path):
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        return ("err", errname(e))
    res = {}
    for n in sorted(names):
        if n.startswith("security.") or n.startswith("system."):
            continue
        try:
            res[n] = sha(os.getxattr(path, n, follow_symlinks=False))
        except OSError as e:
            res[n] = ("err", errname(e))
    return res


def snapshot(root, with_xattrs=True, content=True):
    """Comparable description of a tree (no timestamps, no inode numbers)."""
    out = {}

    def onerr(e):
        raise e

    for dirpath, dirnames, filenames in os.walk(root, onerror=onerr):
        for n in sorted(dirnames + filenames):
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            d = statsum(st)
            if stat.S_ISLNK(st.st_mode):
                d["target"] = os.readlink(p)
            elif stat.S_ISREG(st.st_mode) and content:
                with open(p, "rb") as f:
                    d["sha"] = sha(f.read())
            if with_xattrs and not stat.S_ISLNK(st.st_mode):
                d["xattrs"] = xattrs_of(p)
            out[rel] = d
    return out


def conform(native_root, mount, scenario, compare_backing=True,
            compare_mount_tree=True):
    """Run ``scenario`` natively and on the mount; assert identical records.

    ``mount`` is a conftest Mount (on the mem backend there is no backing
    directory to compare).  Returns (native_rec, mount_rec)."""
    rn = Rec(native_root, "native")
    scenario(rn)
    rm = Rec(mount.mnt, "mount")
    scenario(rm)
    if rm.out != rn.out:
        raise AssertionError("outcomes through eddyfs differ from native:\n"
                             + diff_records(rn.out, rm.out))
    if compare_mount_tree:
        diff_trees(snapshot(native_root), snapshot(str(mount.mnt)),
                   "tree seen through the mount differs from native")
    if compare_backing and mount.backing is not None:
        diff_trees(snapshot(native_root), snapshot(str(mount.backing)),
                   "backing dir after the scenario differs from native")
    return rn, rm


def _short(x, n=300):
    s = repr(x)
    return s if len(s) <= n else s[:n] + "..."


def diff_records(native, mnt):
    lines = []
    for i in range(max(len(native), len(mnt))):
        a = native[i] if i < len(native) else "<missing>"
        b = mnt[i] if i < len(mnt) else "<missing>"
        if a != b:
            lines.append("  #%d native: %s\n  #%d mount:  %s"
                         % (i, _short(a), i, _short(b)))
    return "\n".join(lines)


def diff_trees(native, other, msg):
    if native == other:
        return
    lines = []
    for k in sorted(set(native) | set(other)):
        a, b = native.get(k, "<absent>"), other.get(k, "<absent>")
        if a != b:
            lines.append("  %r\n    native: %s\n    other:  %s"
                         % (k, _short(a), _short(b)))
        if len(lines) > 40:
            lines.append("  ...")
            break
    raise AssertionError(msg + ":\n" + "\n".join(lines))


# --------------------------------------------------------------------------
# hang guard: a test stuck in a file system call (e.g. a daemon that never
# answers) fails after a generous limit instead of stalling the whole run.
# This is a deadlock guard, not a performance threshold.

import signal  # noqa: E402

import pytest  # noqa: E402

HANG_LIMIT = int(os.environ.get("EDDY_TEST_HANG_LIMIT", "600"))


class Hang(Exception):
    pass


@pytest.fixture(autouse=True)
def hang_guard():
    def on_alarm(signum, frame):
        raise Hang("test still running after %d s (hung file system call?)"
                   % HANG_LIMIT)
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(HANG_LIMIT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
