#!/usr/bin/python3
"""metafuzz.py - differential namespace/metadata fuzzer.

Applies one seeded random sequence of namespace operations (mkdir, rmdir,
create, unlink, rename, renameat2 NOREPLACE/EXCHANGE, link, symlink,
readlink, chmod, truncate, utimensat, mkfifo, listdir, stat/lstat, user.*
xattrs, long names, deep paths, ops on open-then-unlinked/renamed files,
umask changes) to a reference directory and a directory under test, over a
small name pool so that collisions and errors are frequent.  Every op's
outcome (return value or errno name) must be identical on both sides; the
whole trees are compared periodically.

    metafuzz.py --ref DIR --test DIR [--seed N] [--ops N] [--check-every N]
                [--no-ino-groups] [--dir-nlink] [--no-owner] [--no-special-modes]
                [--skip KIND,...] [-v] [--keep]

The op sequence is a function of the seed, the options and the (common)
outcomes: the generator reuses paths that recently came into existence.

All activity happens in a subdirectory "metafuzz.d" of each DIR (removed
first if present, removed at the end on success).  Exit 0 on success, 1 on
a mismatch, 2 on usage errors.  Standard library only; Linux only.
"""

import argparse
import ctypes
import ctypes.util
import errno
import os
import random
import signal
import shutil
import stat
import sys
import time
import zlib

WORK = "metafuzz.d"
AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
SYS_renameat2 = 316  # x86_64

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
if hasattr(_libc, "renameat2"):
    _renameat2 = _libc.renameat2
    _renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                           ctypes.c_uint]
    _renameat2.restype = ctypes.c_int
else:  # old glibc: raw syscall
    _sc = _libc.syscall
    _sc.restype = ctypes.c_long

    def _renameat2(a, b, c, d, e):
        return _sc(ctypes.c_long(SYS_renameat2), ctypes.c_int(a), ctypes.c_char_p(b),
                   ctypes.c_int(c), ctypes.c_char_p(d), ctypes.c_uint(e))


def renameat2(old, new, flags):
    if _renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD, os.fsencode(new), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def ename(e):
    if e == errno.EOPNOTSUPP:  # == ENOTSUP on Linux; use one spelling
        return "EOPNOTSUPP"
    return errno.errorcode.get(e, "E%d" % e)


# ----------------------------------------------------------- name pools ----

NAMES = ["a", "b", "c", "d", "e"]
RARE_NAMES = ["L" * 255, "M" * 256, ".h", "sp ace", "\u00fc", "a" * 254 + "b"]
XNAMES = ["user.a", "user.b", "user.c", "user." + "x" * 250, "user." + "y" * 251,
          "user.", "bogus.ns"]
MODES = [0o755, 0o644, 0o700, 0o600, 0o000, 0o777, 0o1777, 0o2755, 0o4755, 0o6777, 0o444, 0o222]
UMASKS = [0o022, 0o000, 0o077, 0o002, 0o027]
DEEPNAME = "D" * 200


def typechar(mode):
    if stat.S_ISDIR(mode):
        return "d"
    if stat.S_ISREG(mode):
        return "f"
    if stat.S_ISLNK(mode):
        return "l"
    if stat.S_ISFIFO(mode):
        return "p"
    return "?%o" % stat.S_IFMT(mode)


class Opts:
    dir_nlink = False
    owner = True


def statrec(st):
    """Comparable stat fields: type, permission bits, size/nlink (non-dirs)."""
    t = typechar(st.st_mode)
    rec = [t, "%04o" % stat.S_IMODE(st.st_mode)]
    if t != "d":
        rec += ["size=%d" % st.st_size, "nlink=%d" % st.st_nlink]
    elif Opts.dir_nlink:
        rec += ["nlink=%d" % st.st_nlink]
    if Opts.owner:
        rec += ["uid=%d" % st.st_uid, "gid=%d" % st.st_gid]
    return tuple(rec)


def crc(b):
    return "%d:%08x" % (len(b), zlib.crc32(b))


# ---------------------------------------------------------------- sides ----

class Side:
    def __init__(self, label, top):
        self.label = label
        self.top = top
        self.root = os.path.join(top, WORK)
        rmtree(self.root)
        os.mkdir(self.root, 0o755)
        os.chmod(self.root, 0o755)
        self.rootfd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)

    def close(self):
        os.close(self.rootfd)


def rmtree(path):
    if os.path.lexists(path):
        # make everything writable/searchable first is unnecessary as root
        shutil.rmtree(path)


def readall(fd, limit=1 << 24):
    out = []
    while True:
        b = os.read(fd, 1 << 16)
        if not b:
            break
        out.append(b)
        limit -= len(b)
        if limit <= 0:
            break
    return b"".join(out)


def run_op(side, op):
    k = op["k"]
    p = op.get("p")
    if k == "mkdir":
        os.mkdir(p, op["mode"])
        return ("ok",)
    if k == "rmdir":
        os.rmdir(p)
        return ("ok",)
    if k == "create":
        flags = os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC
        if op["excl"]:
            flags |= os.O_EXCL
        if op["trunc"]:
            flags |= os.O_TRUNC
        if op["nofollow"]:
            flags |= os.O_NOFOLLOW
        fd = os.open(p, flags, op["mode"])
        try:
            n = os.write(fd, op["data"]) if op["data"] else 0
            return ("ok", n) + statrec(os.fstat(fd))
        finally:
            os.close(fd)
    if k == "openread":
        fd = os.open(p, op["flags"] | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode):
                return ("ok", crc(readall(fd))) + statrec(st)
            if stat.S_ISDIR(st.st_mode):
                return ("ok", tuple(sorted(os.listdir(fd)))) + statrec(st)
            return ("ok",) + statrec(st)
        finally:
            os.close(fd)
    if k == "unlink":
        os.unlink(p)
        return ("ok",)
    if k == "rename":
        os.rename(p, op["p2"])
        return ("ok",)
    if k == "noreplace":
        renameat2(p, op["p2"], RENAME_NOREPLACE)
        return ("ok",)
    if k == "exchange":
        renameat2(p, op["p2"], RENAME_EXCHANGE)
        return ("ok",)
    if k == "link":
        os.link(p, op["p2"], follow_symlinks=op["follow"])
        return ("ok",) + statrec(os.lstat(op["p2"]))
    if k == "symlink":
        os.symlink(op["target"], p)
        return ("ok",)
    if k == "readlink":
        return ("ok", os.readlink(p))
    if k == "chmod":
        os.chmod(p, op["mode"])
        return ("ok",) + statrec(os.stat(p))
    if k == "truncate":
        os.truncate(p, op["size"])
        return ("ok",) + statrec(os.stat(p))
    if k == "utime":
        os.utime(p, ns=(op["at"], op["mt"]), follow_symlinks=op["follow"])
        st = os.stat(p, follow_symlinks=op["follow"])
        return ("ok", st.st_atime_ns, st.st_mtime_ns)
    if k == "mkfifo":
        os.mkfifo(p, op["mode"])
        return ("ok",) + statrec(os.lstat(p))
    if k == "listdir":
        ents = []
        with os.scandir(p) as it:
            for e in it:
                if e.is_symlink():
                    t = "l"
                elif e.is_dir(follow_symlinks=False):
                    t = "d"
                elif e.is_file(follow_symlinks=False):
                    t = "f"
                else:
                    t = "o"
                ents.append((e.name, t))
        return ("ok", tuple(sorted(ents)))
    if k == "stat":
        return ("ok",) + statrec(os.stat(p))
    if k == "lstat":
        return ("ok",) + statrec(os.lstat(p))
    if k == "setxattr":
        os.setxattr(p, op["name"], op["value"], op["flags"], follow_symlinks=op["follow"])
        return ("ok",)
    if k == "getxattr":
        return ("ok", crc(os.getxattr(p, op["name"], follow_symlinks=op["follow"])))
    if k == "listxattr":
        names = os.listxattr(p, follow_symlinks=op["follow"])
        return ("ok", tuple(sorted(n for n in names if n.startswith("user."))))
    if k == "removexattr":
        os.removexattr(p, op["name"], follow_symlinks=op["follow"])
        return ("ok",)
    if k == "longpath":
        return ("ok",) + statrec(os.lstat(p))
    if k == "deep":
        return run_deep(op)
    if k == "rmrf":
        return ("ok", rmrf(p))
    if k == "unlink_open" or k == "rename_open":
        fd = os.open(p, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        res = ["ok"]
        try:
            st = os.fstat(fd)
            res += statrec(st)
            if not stat.S_ISREG(st.st_mode):
                return tuple(res)
            try:
                if k == "unlink_open":
                    os.unlink(p)
                else:
                    os.rename(p, op["p2"])
                res.append("ok")
            except OSError as e:
                res.append(ename(e.errno))
            res += statrec(os.fstat(fd))
            n = os.pwrite(fd, op["data"], op["off"])
            res.append(n)
            res.append(crc(os.pread(fd, len(op["data"]) + 100, op["off"])))
            os.ftruncate(fd, op["size"])
            os.fsync(fd)
            res += statrec(os.fstat(fd))
        finally:
            os.close(fd)
        if k == "rename_open":
            try:
                res += statrec(os.lstat(op["p2"]))
            except OSError as e:
                res.append(ename(e.errno))
        return tuple(res)
    raise AssertionError("unknown op " + k)


def rmrf(p, dir_fd=None):
    """rm -r p (no symlink following); returns number of entries removed."""
    st = os.stat(p, dir_fd=dir_fd, follow_symlinks=False)
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(p, dir_fd=dir_fd)
        return 1
    n = 0
    fd = os.open(p, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        for name in sorted(os.listdir(fd)):
            n += rmrf(name, fd)
    finally:
        os.close(fd)
    os.rmdir(p, dir_fd=dir_fd)
    return n + 1


def run_deep(op):
    """mkdir+descend a chain of long-named dirs (the total path can exceed
    PATH_MAX), then create a file at the bottom; all via dir fds."""
    res = []
    fds = []
    cur = AT_FDCWD
    try:
        for i, name in enumerate(op["chain"]):
            try:
                os.mkdir(name, 0o755, dir_fd=None if cur == AT_FDCWD else cur)
                r = "ok"
            except OSError as e:
                r = ename(e.errno)
            try:
                fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW,
                             dir_fd=None if cur == AT_FDCWD else cur)
            except OSError as e:
                res.append((i, r, ename(e.errno)))
                return ("ok", tuple(res))
            fds.append(fd)
            cur = fd
            res.append((i, r))
        try:
            fd = os.open("f", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o640, dir_fd=cur)
            try:
                os.write(fd, op["data"])
                res.append(("file",) + statrec(os.fstat(fd)))
            finally:
                os.close(fd)
            res.append(("bottom", tuple(sorted(os.listdir(cur))),
                        statrec(os.stat("f", dir_fd=cur, follow_symlinks=False))))
        except OSError as e:
            res.append(("file", ename(e.errno)))
        return ("ok", tuple(res))
    finally:
        for fd in fds:
            os.close(fd)


def outcome(side, op):
    os.fchdir(side.rootfd)
    try:
        return run_op(side, op)
    except OSError as e:
        return ("err", ename(e.errno))
    except (ValueError, OverflowError, UnicodeError) as e:  # tool bug
        return ("exc", type(e).__name__, str(e))


# ------------------------------------------------------------ tree walk ----

def snapshot(side, ino_groups=True):
    """Map relative path -> record for the whole tree under side.root
    (fd based, so it works past PATH_MAX), plus hard-link groups."""
    recs = {}
    inos = {}

    def xattrs(path, fd=None):
        try:
            if fd is not None:
                names = os.listxattr(fd)
            else:
                names = os.listxattr(path, follow_symlinks=False)
        except OSError as e:
            return ("listxattr", ename(e.errno))
        out = []
        for n in sorted(n for n in names if n.startswith("user.")):
            try:
                v = os.getxattr(fd if fd is not None else path, n,
                                **({} if fd is not None else {"follow_symlinks": False}))
                out.append((n, crc(v)))
            except OSError as e:
                out.append((n, ename(e.errno)))
        return tuple(out)

    def walk(dfd, rel):
        for name in sorted(os.listdir(dfd)):
            p = rel + "/" + name if rel else name
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            rec = list(statrec(st))
            t = rec[0]
            if t != "d":
                inos.setdefault(st.st_ino, []).append(p)
            if t == "l":
                rec.append(("->", os.readlink(name, dir_fd=dfd)))
            elif t == "f":
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                             dir_fd=dfd)
                try:
                    rec.append(("data", crc(readall(fd))))
                    rec.append(("xattr", xattrs(None, fd)))
                finally:
                    os.close(fd)
            elif t != "d":
                rec.append(("xattr", xattrs("/proc/self/fd/%d/%s" % (dfd, name))))
            if t == "d":
                cfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                              dir_fd=dfd)
                try:
                    rec.append(("xattr", xattrs(None, cfd)))
                    recs[p] = tuple(rec)
                    walk(cfd, p)
                finally:
                    os.close(cfd)
            else:
                recs[p] = tuple(rec)

    fd = os.open(side.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        walk(fd, "")
    finally:
        os.close(fd)
    groups = ()
    if ino_groups:
        groups = tuple(sorted(tuple(sorted(g)) for g in inos.values() if len(g) > 1))
    return recs, groups


# ------------------------------------------------------------- generator ----

KINDS = [
    ("mkdir", 9), ("rmdir", 6), ("create", 14), ("rmrf", 2), ("openread", 4), ("unlink", 7),
    ("rename", 8), ("noreplace", 3), ("exchange", 3), ("link", 5), ("symlink", 5),
    ("readlink", 2), ("chmod", 3), ("truncate", 3), ("utime", 3), ("mkfifo", 2),
    ("listdir", 5), ("stat", 4), ("lstat", 4), ("setxattr", 5), ("getxattr", 3),
    ("listxattr", 2), ("removexattr", 2), ("umask", 1), ("longpath", 1), ("deep", 1),
    ("unlink_open", 2), ("rename_open", 2),
]


class Gen:
    def __init__(self, rng, mode_mask=0o7777):
        self.rng = rng
        self.known = []
        self.mode_mask = mode_mask
        self.kinds = [k for k, _ in KINDS]
        self.weights = [w for _, w in KINDS]

    def name(self):
        r = self.rng
        return r.choice(RARE_NAMES) if r.random() < 0.03 else r.choice(NAMES)

    # The generator remembers (a bounded list of) paths that recent ops
    # created successfully and reuses them, so that multi-level paths and
    # ops on existing objects succeed often enough.  The op sequence is
    # therefore a function of the seed *and* of the reference outcomes
    # (which equal the test outcomes, or the run stops), and it is re-seeded
    # from the tree at every periodic tree check (so --check-every changes
    # the sequence too).
    KNOWN_MAX = 48

    def remember(self, p):
        comps = [c for c in p.split("/") if c]
        if not comps or any(c in (".", "..") for c in comps) or len(p) > 1000:
            return
        p = "/".join(comps)
        if p in self.known:
            return
        self.known.append(p)
        if len(self.known) > self.KNOWN_MAX:
            self.known.pop(0)

    def refresh(self, paths):
        """Re-seed the remembered paths from a snapshot of the tree."""
        paths = [p for p in paths if len(p) <= 1000]
        self.known = []
        for p in self.rng.sample(paths, min(len(paths), self.KNOWN_MAX)):
            self.remember(p)

    def forget(self, p):
        p = "/".join(c for c in p.split("/") if c)
        self.known = [k for k in self.known if k != p and not k.startswith(p + "/")]

    def feedback(self, op, res):
        if res[0] != "ok":
            return
        k = op["k"]
        if k in ("mkdir", "create", "mkfifo", "symlink"):
            self.remember(op["p"])
        elif k == "link":
            self.remember(op["p2"])
        elif k in ("rename", "noreplace", "rename_open"):
            self.forget(op["p"])
            self.remember(op["p2"])
        elif k in ("unlink", "rmdir", "rmrf", "unlink_open"):
            self.forget(op["p"])

    def path(self, role="any"):
        """role: "old" (should exist), "new" (should not exist yet) or "any"."""
        r = self.rng
        c = r.random()
        p_known, p_extend = {"old": (0.6, 0.1), "new": (0.55, 0.85), "any": (0.45, 0.35)}[role]
        if self.known and c < p_known:
            comps = r.choice(self.known).split("/")
            if r.random() < p_extend:
                comps.append(self.name())
            depth = len(comps)
        else:
            depth = r.choices([1, 2, 3], [60, 30, 10])[0]
            comps = [self.name() for _ in range(depth)]
        c = r.random()
        if c < 0.03 and depth >= 2:
            # "x/../y": resolves within the tree (".." right after a name)
            comps.insert(r.randrange(1, depth), "..")
            comps.insert(0, self.name())
        elif c < 0.05:
            comps.insert(r.randrange(depth), ".")
        elif c < 0.06:
            comps.append(r.choice([".", ".."]))
            if comps[0] in (".", ".."):
                comps.insert(0, self.name())
        p = "/".join(comps)
        if r.random() < 0.05:
            p += "/"
        return p

    def data(self):
        r = self.rng
        c = r.random()
        if c < 0.3:
            return b""
        if c < 0.95:
            return r.randbytes(r.randint(1, 300))
        return r.randbytes(r.randint(1, 20000))

    def mode(self):
        r = self.rng
        m = r.choice(MODES) if r.random() < 0.85 else r.randrange(0o10000)
        return m & self.mode_mask

    def target(self):
        r = self.rng
        c = r.random()
        if c < 0.6:
            return self.name()
        if c < 0.85:
            return self.name() + "/" + self.name()
        return r.choice(["nonexistent", ".", "a/", "a/../b", "t" * 1000, "u" * 4095,
                         "v" * 4096, "b/./c"])

    def gen(self):
        r = self.rng
        k = r.choices(self.kinds, self.weights)[0]
        op = {"k": k}
        if k not in ("umask", "longpath", "deep"):
            role = "new" if k in ("mkdir", "symlink", "mkfifo") else "any" if k == "create" else "old"
            op["p"] = self.path(role)
        if k in ("rename", "noreplace", "exchange", "link", "rename_open"):
            op["p2"] = self.path("new" if k in ("link", "noreplace") else "any")
        if k in ("mkdir", "chmod", "mkfifo"):
            op["mode"] = self.mode()
        if k == "create":
            op.update(excl=r.random() < 0.4, trunc=r.random() < 0.2,
                      nofollow=r.random() < 0.1, mode=self.mode(), data=self.data())
        elif k == "openread":
            op["flags"] = r.choice([os.O_RDONLY, os.O_RDONLY | os.O_DIRECTORY,
                                    os.O_RDONLY | os.O_NOFOLLOW, os.O_WRONLY, os.O_RDWR])
        elif k == "link":
            op["follow"] = r.random() < 0.3
        elif k == "symlink":
            op["target"] = self.target()
        elif k == "truncate":
            op["size"] = r.choice([0, 1, r.randrange(5000), r.randrange(200000)])
        elif k == "utime":
            op.update(at=r.randrange(1 << 31) * 10**9 + r.randrange(10**9),
                      mt=r.randrange(1 << 31) * 10**9 + r.randrange(10**9),
                      follow=r.random() < 0.7)
        elif k in ("setxattr", "getxattr", "removexattr", "listxattr"):
            op["follow"] = r.random() < 0.8
            if k != "listxattr":
                op["name"] = r.choice(XNAMES) if r.random() < 0.15 else r.choice(XNAMES[:3])
            if k == "setxattr":
                op["flags"] = r.choice([0, 0, os.XATTR_CREATE, os.XATTR_REPLACE])
                op["value"] = r.randbytes(r.choice([0, 1, r.randint(1, 64), r.randint(1, 64),
                                                    1000, 8000, 65536, 65537]))
        elif k == "umask":
            op["mask"] = r.choice(UMASKS)
        elif k == "longpath":
            n = r.choice([15, 16, 17, 20, 30])
            op["p"] = "/".join([self.name()] + [DEEPNAME[:255]] * n)
        elif k == "deep":
            n = r.randint(1, 30)
            op["chain"] = [self.name()] + [DEEPNAME[:r.choice([100, 200, 255])] for _ in range(n)]
            op["data"] = r.randbytes(r.randint(0, 100))
        elif k in ("unlink_open", "rename_open"):
            op.update(data=r.randbytes(r.randint(1, 500)), off=r.randrange(3000),
                      size=r.randrange(4000))
        return op


# --------------------------------------------------------------- display ----

def short(v, lim=60):
    s = repr(v)
    if len(s) > lim:
        s = s[:lim] + "...(%d chars)" % len(s)
    return s


def fmt_op(op):
    parts = [op["k"]]
    for key in ("p", "p2", "target", "mode", "excl", "trunc", "nofollow", "flags", "follow",
                "size", "at", "mt", "name", "mask", "off"):
        if key in op:
            v = op[key]
            if key in ("mode", "mask", "flags") and isinstance(v, int):
                v = "0o%o" % v
            parts.append("%s=%s" % (key, short(v)))
    if "value" in op:
        parts.append("value=<%d bytes>" % len(op["value"]))
    if "data" in op:
        parts.append("data=<%d bytes>" % len(op["data"]))
    if "chain" in op:
        parts.append("chain=%s+%d x %d-char names" % (op["chain"][0], len(op["chain"]) - 1,
                                                      len(op["chain"][1]) if len(op["chain"]) > 1 else 0))
    return " ".join(parts)


# ------------------------------------------------------------------ main ----

def main():
    ap = argparse.ArgumentParser(description="differential namespace/metadata fuzzer")
    ap.add_argument("--ref", required=True, help="reference directory")
    ap.add_argument("--test", required=True, help="directory under test")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    ap.add_argument("--ops", type=int, default=2000, help="number of ops (default 2000)")
    ap.add_argument("--check-every", type=int, default=100,
                    help="compare whole trees every N ops (default 100)")
    ap.add_argument("--no-ino-groups", action="store_true",
                    help="don't compare hard-link groups (paths sharing one st_ino) in tree checks")
    ap.add_argument("--dir-nlink", action="store_true", help="also compare st_nlink of dirs")
    ap.add_argument("--no-owner", action="store_true", help="don't compare st_uid/st_gid")
    ap.add_argument("--no-special-modes", action="store_true",
                    help="only use permission bits 0777 in mkdir/create/chmod/mkfifo modes")
    ap.add_argument("--skip", default="", help="comma-separated op kinds not to execute")
    ap.add_argument("--keep", action="store_true", help="keep the trees on success")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every op and outcome")
    ap.add_argument("--selftest-corrupt", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.seed is None:
        args.seed = int.from_bytes(os.urandom(4), "little")
    for d in (args.ref, args.test):
        if not os.path.isdir(d):
            ap.error("not a directory: " + d)
    if os.path.realpath(args.ref) == os.path.realpath(args.test):
        ap.error("--ref and --test must differ")
    known = {k for k, _ in KINDS}
    skip = {k for k in args.skip.split(",") if k}
    if skip - known:
        ap.error("unknown op kind(s) for --skip: %s (known: %s)" % (
            ",".join(sorted(skip - known)), ",".join(sorted(known))))
    Opts.dir_nlink = args.dir_nlink
    Opts.owner = not args.no_owner

    print("metafuzz: seed %d" % args.seed, flush=True)
    rng = random.Random(args.seed)
    old_umask = os.umask(0o022)
    cwdfd = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
    ref = Side("ref", args.ref)
    test = Side("test", args.test)
    gen = Gen(rng, 0o777 if args.no_special_modes else 0o7777)
    counts = {}
    errs = {}
    oks = 0
    history = []
    t0 = time.monotonic()
    checks = 0

    def rerun():
        extra = ""
        for flag, on in (("--no-ino-groups", args.no_ino_groups), ("--dir-nlink", args.dir_nlink),
                         ("--no-owner", args.no_owner),
                         ("--no-special-modes", args.no_special_modes)):
            if on:
                extra += " " + flag
        if args.skip:
            extra += " --skip " + args.skip
        return "%s --ref %s --test %s --seed %d --ops %d --check-every %d%s" % (
            sys.argv[0], args.ref, args.test, args.seed, args.ops, args.check_every, extra)

    def fail(idx, op, msg, rres=None, tres=None, extra=""):
        os.fchdir(cwdfd)
        print("metafuzz: MISMATCH seed=%d op=%d: %s" % (args.seed, idx, msg))
        if op is not None:
            print("  op:   %s" % fmt_op(op))
            print("  ref:  %r" % (rres,))
            print("  test: %r" % (tres,))
        if extra:
            sys.stdout.write(extra)
        print("  last ops:")
        for i, o, r in history[-12:]:
            print("    #%d %s -> %s" % (i, fmt_op(o), short(r, 100)))
        print("  trees left in place: %s %s" % (ref.root, test.root))
        print("  rerun: " + rerun())
        sys.stdout.flush()
        sys.exit(1)

    def tree_check(idx):
        nonlocal checks
        checks += 1
        try:
            rs, rg = snapshot(ref, not args.no_ino_groups)
        except OSError as e:
            fail(idx, None, "walking ref tree failed: %s" % e)
        try:
            ts, tg = snapshot(test, not args.no_ino_groups)
        except OSError as e:
            fail(idx, None, "walking test tree failed: %s" % e)
        if rs != ts:
            lines = []
            for p in sorted(set(rs) | set(ts)):
                a, b = rs.get(p), ts.get(p)
                if a != b:
                    lines.append("    %s\n      ref:  %s\n      test: %s\n" % (
                        short(p, 120), short(a, 300), short(b, 300)))
            fail(idx, None, "trees differ (%d paths)" % len(lines), extra="".join(lines[:20]))
        if rg != tg:
            fail(idx, None, "hard-link groups (same st_ino) differ",
                 extra="    ref:  %s\n    test: %s\n" % (short(rg, 400), short(tg, 400)))
        gen.refresh(sorted(rs))
        return len(rs)

    nentries = 0
    for idx in range(args.ops):
        if args.selftest_corrupt is not None and idx == args.selftest_corrupt:
            # deliberately damage the test tree behind the fuzzer's back:
            # flip one permission bit of the first file/dir, or add a file
            victim = None
            for name in sorted(os.listdir(test.root)):
                p = os.path.join(test.root, name)
                if not os.path.islink(p) and (os.path.isfile(p) or os.path.isdir(p)):
                    victim = p
                    break
            if victim:
                m = stat.S_IMODE(os.lstat(victim).st_mode)
                os.chmod(victim, m ^ 0o010)
                print("metafuzz: selftest: flipped mode bit 0o010 of %s" % victim)
            else:
                open(os.path.join(test.root, "selftest.extra"), "w").close()
                print("metafuzz: selftest: created extra file in %s" % test.root)

        op = gen.gen()
        if op["k"] in skip:
            pass
        elif op["k"] == "umask":
            counts["umask"] = counts.get("umask", 0) + 1
            os.umask(op["mask"])
            history.append((idx, op, "-"))
        else:
            counts[op["k"]] = counts.get(op["k"], 0) + 1
            rres = outcome(ref, op)
            tres = outcome(test, op)
            history.append((idx, op, rres))
            if args.verbose:
                print("#%d %s -> %s" % (idx, fmt_op(op), short(rres, 200)), flush=True)
            if rres != tres:
                fail(idx, op, "outcomes differ", rres, tres)
            gen.feedback(op, rres)
            if rres[0] == "ok":
                oks += 1
            else:
                errs[rres[1]] = errs.get(rres[1], 0) + 1
        if args.check_every > 0 and (idx + 1) % args.check_every == 0:
            nentries = tree_check(idx)

    nentries = tree_check(args.ops)
    os.fchdir(cwdfd)
    os.close(cwdfd)
    os.umask(old_umask)
    ref.close()
    test.close()
    if not args.keep:
        rmtree(ref.root)
        rmtree(test.root)
    dt = time.monotonic() - t0
    print("metafuzz: OK seed=%d ops=%d in %.2fs; %d ok, %d errors (%s); %d tree checks, "
          "final tree %d entries; ops: %s" % (
              args.seed, args.ops, dt, oks, sum(errs.values()),
              " ".join("%s=%d" % kv for kv in sorted(errs.items(), key=lambda kv: -kv[1])),
              checks, nentries, " ".join("%s=%d" % kv for kv in sorted(counts.items()))))
    return 0


if __name__ == "__main__":
    # die quietly (status 141) instead of a traceback when piped into head
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
