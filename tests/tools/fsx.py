#!/usr/bin/python3
"""fsx.py - fsx-style differential random data checker.

Applies one seeded random sequence of data operations to K files in a
reference directory and in a directory under test (e.g. an eddyfs mount),
and checks that every operation yields the same outcome (return value or
errno name) on both sides and agrees with an in-memory model of the file
contents.  Whole-file contents and sizes are compared periodically.

    fsx.py --ref DIR --test DIR [--seed N] [--ops N] [--max-size BYTES]
           [--files K] [--no-mmap] [--no-cfr] [--check-every N]
           [--skip KIND,...] [--seek-any-legal] [-v] [--keep]

SEEK_DATA/SEEK_HOLE results are always checked against the model (a hole
may only cover zeros; ENXIO only when nothing but zeros follows); both sides
must also agree unless --seek-any-legal is given, for filesystems that place
holes differently (e.g. tmpfs, whose answer for fallocated ranges depends on
its page cache, against a filesystem of its own).

The op sequence depends only on the seed and the options (it is driven by
the in-memory model, not by what the file systems return).

Exit 0 on success, 1 on a mismatch (seed, op index, op and both results are
printed), 2 on usage errors.  Standard library only; Linux only.
"""

import argparse
import ctypes
import ctypes.util
import errno
import faulthandler
import mmap
import os
import random
import signal
import sys
import time
import zlib

PAGE = mmap.ALLOCATIONGRANULARITY

FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_ZERO_RANGE = 0x10

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
_libc.fallocate.restype = ctypes.c_int


def c_fallocate(fd, mode, off, length):
    if _libc.fallocate(fd, mode, off, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return 0


def ename(e):
    if e == errno.EOPNOTSUPP:  # == ENOTSUP on Linux; use one spelling
        return "EOPNOTSUPP"
    return errno.errorcode.get(e, "E%d" % e)


class Mismatch(Exception):
    pass


# ---------------------------------------------------------------- sides ----

class Side:
    """One directory (ref or test) with K files, each open via two fds."""

    NFD = 2

    def __init__(self, label, root, nfiles):
        self.label = label
        self.root = root
        self.paths = [os.path.join(root, "fsx.%d" % i) for i in range(nfiles)]
        self.fds = []
        for p in self.paths:
            fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
            fds = [fd]
            for _ in range(self.NFD - 1):
                fds.append(os.open(p, os.O_RDWR))
            self.fds.append(fds)

    def close(self):
        for fds in self.fds:
            for fd in fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.fds = []

    def remove(self):
        for p in self.paths:
            try:
                os.unlink(p)
            except OSError:
                pass


def full_read(fd, off, n):
    """pread until n bytes or EOF (short reads are legal)."""
    out = []
    while n > 0:
        b = os.pread(fd, n, off)
        if not b:
            break
        out.append(b)
        off += len(b)
        n -= len(b)
    return b"".join(out)


def full_pwrite(fd, data, off):
    done = 0
    mv = memoryview(data)
    while done < len(data):
        n = os.pwrite(fd, mv[done:], off + done)
        if n <= 0:
            break
        done += n
    return done


def full_write(fd, data):
    done = 0
    mv = memoryview(data)
    while done < len(data):
        n = os.write(fd, mv[done:])
        if n <= 0:
            break
        done += n
    return done


# ------------------------------------------------------------ operations ----
#
# An op is a dict with at least "k" (kind) and "f" (file index).  For each
# kind there is a runner (side, op) -> result tuple, and the model step
# (model, op) -> expected result (or a checker callable, or None).

def run_op(side, op):
    k = op["k"]
    f = op["f"]
    fd = side.fds[f][op.get("d", 0)] if side.fds else None
    if k == "write":
        return ("ok", full_pwrite(fd, op["data"], op["off"]))
    if k == "read":
        return ("ok", full_read(fd, op["off"], op["len"]))
    if k == "seekwrite":
        os.lseek(fd, op["off"], os.SEEK_SET)
        n = full_write(fd, op["data"])
        return ("ok", n, os.lseek(fd, 0, os.SEEK_CUR))
    if k == "seekread":
        os.lseek(fd, op["off"], os.SEEK_SET)
        out = []
        n = op["len"]
        while n > 0:
            b = os.read(fd, n)
            if not b:
                break
            out.append(b)
            n -= len(b)
        return ("ok", b"".join(out), os.lseek(fd, 0, os.SEEK_CUR))
    if k == "append":
        afd = os.open(side.paths[f], os.O_WRONLY | os.O_APPEND)
        try:
            if op["pwrite"]:
                # Linux: pwrite on an O_APPEND fd ignores the offset and appends
                n = os.pwrite(afd, op["data"], op["off"])
            else:
                n = full_write(afd, op["data"])
            pos = os.lseek(afd, 0, os.SEEK_CUR)
        finally:
            os.close(afd)
        return ("ok", n, pos)
    if k == "truncate":
        os.truncate(side.paths[f], op["size"])
        return ("ok",)
    if k == "ftruncate":
        os.ftruncate(fd, op["size"])
        return ("ok",)
    if k == "mmapread" or k == "mmapwrite":
        st = os.fstat(fd).st_size
        if st != op["size"]:
            # never touch a mapping beyond the real EOF (SIGBUS)
            return ("size-before-mmap", st)
        pgoff = op["pgoff"]
        maplen = op["size"] - pgoff
        write = k == "mmapwrite"
        prot = mmap.PROT_READ | (mmap.PROT_WRITE if write else 0)
        mm = mmap.mmap(fd, maplen, flags=mmap.MAP_SHARED, prot=prot, offset=pgoff)
        try:
            a = op["off"] - pgoff
            b = a + op["len"]
            if write:
                mm[a:b] = op["data"]
                mm.flush()
                return ("ok",)
            return ("ok", bytes(mm[a:b]))
        finally:
            mm.close()
    if k == "cfr":
        sfd = side.fds[op["src"]][op["sd"]]
        total = 0
        cnt = op["len"]
        while total < cnt:
            n = os.copy_file_range(sfd, fd, cnt - total, op["soff"] + total, op["off"] + total)
            if n <= 0:
                break
            total += n
        return ("ok", total)
    if k == "posix_fallocate":
        os.posix_fallocate(fd, op["off"], op["len"])
        return ("ok",)
    if k in ("punch", "zero", "zerokeep", "keepsize"):
        mode = {"punch": FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                "zero": FALLOC_FL_ZERO_RANGE,
                "zerokeep": FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
                "keepsize": FALLOC_FL_KEEP_SIZE}[k]
        c_fallocate(fd, mode, op["off"], op["len"])
        return ("ok",)
    if k == "seek_data":
        return ("ok", os.lseek(fd, op["off"], os.SEEK_DATA))
    if k == "seek_hole":
        return ("ok", os.lseek(fd, op["off"], os.SEEK_HOLE))
    if k == "fsync":
        if op["data_only"]:
            os.fdatasync(fd)
        else:
            os.fsync(fd)
        return ("ok",)
    if k == "reopen":
        d = op["d"]
        os.close(side.fds[f][d])
        side.fds[f][d] = -1
        flags = os.O_RDWR | (os.O_TRUNC if op["trunc"] else 0)
        side.fds[f][d] = os.open(side.paths[f], flags)
        return ("ok",)
    if k == "stat":
        st = os.stat(side.paths[f]) if op["path"] else os.fstat(fd)
        return ("ok", st.st_size)
    raise AssertionError("unknown op " + k)


def outcome(side, op):
    try:
        return run_op(side, op)
    except OSError as e:
        return ("err", ename(e.errno))
    except (ValueError, OverflowError) as e:  # pragma: no cover - tool bug
        return ("exc", type(e).__name__, str(e))


class Model:
    def __init__(self, nfiles):
        self.files = [bytearray() for _ in range(nfiles)]

    def size(self, f):
        return len(self.files[f])


def m_write(buf, off, data):
    if off > len(buf):
        buf.extend(bytes(off - len(buf)))
    buf[off:off + len(data)] = data


def m_truncate(buf, size):
    if size < len(buf):
        del buf[size:]
    else:
        buf.extend(bytes(size - len(buf)))


def model_step(model, op):
    """Update model for op; return expected result, a checker, or None."""
    k = op["k"]
    f = op["f"]
    buf = model.files[f]
    if k == "write":
        m_write(buf, op["off"], op["data"])
        return ("ok", len(op["data"]))
    if k == "read":
        return ("ok", bytes(buf[op["off"]:op["off"] + op["len"]]))
    if k == "seekwrite":
        m_write(buf, op["off"], op["data"])
        return ("ok", len(op["data"]), op["off"] + len(op["data"]))
    if k == "seekread":
        b = bytes(buf[op["off"]:op["off"] + op["len"]])
        return ("ok", b, op["off"] + len(b))
    if k == "append":
        buf.extend(op["data"])
        # pwrite() never moves the file offset, even with O_APPEND
        return ("ok", len(op["data"]), 0 if op["pwrite"] else len(buf))
    if k in ("truncate", "ftruncate"):
        m_truncate(buf, op["size"])
        return ("ok",)
    if k == "mmapread":
        return ("ok", bytes(buf[op["off"]:op["off"] + op["len"]]))
    if k == "mmapwrite":
        m_write(buf, op["off"], op["data"])
        return ("ok",)
    if k == "cfr":
        src = model.files[op["src"]]
        data = bytes(src[op["soff"]:op["soff"] + op["len"]])
        if data:
            m_write(buf, op["off"], data)
        return ("ok", len(data))
    if k == "posix_fallocate" or k == "zero":
        end = op["off"] + op["len"]
        if end > len(buf):
            m_truncate(buf, end)
        if k == "zero":
            buf[op["off"]:end] = bytes(end - op["off"])
        return ("ok",)
    if k in ("punch", "zerokeep"):
        a = min(op["off"], len(buf))
        b = min(op["off"] + op["len"], len(buf))
        buf[a:b] = bytes(b - a)
        return ("ok",)
    if k == "keepsize":
        return ("ok",)
    if k in ("seek_data", "seek_hole"):
        snap = bytes(buf)

        def check(res, snap=snap, op=op):
            off = op["off"]
            size = len(snap)
            if off >= size:
                return res == ("err", "ENXIO") or "expected ENXIO (offset >= size)"
            if res[0] != "ok":
                if k == "seek_data" and res == ("err", "ENXIO"):
                    # legal only if everything from off to EOF is a hole
                    return (not any(snap[off:])) or "ENXIO but nonzero data after offset"
                return "unexpected error"
            r = res[1]
            if k == "seek_data":
                if not off <= r < size:
                    return "SEEK_DATA result outside [offset, size)"
                if any(snap[off:r]):
                    return "SEEK_DATA skipped nonzero bytes"
            else:
                if not off <= r <= size:
                    return "SEEK_HOLE result outside [offset, size]"
                if r < size and snap[r] != 0:
                    return "SEEK_HOLE points at a nonzero byte"
            return True
        return check
    if k == "fsync":
        return ("ok",)
    if k == "reopen":
        if op["trunc"]:
            del buf[:]
        return ("ok",)
    if k == "stat":
        return ("ok", len(buf))
    raise AssertionError(k)


# ------------------------------------------------------------- generator ----

KINDS = [
    # kind, weight, needs
    ("write", 20, None),
    ("read", 14, None),
    ("seekwrite", 4, None),
    ("seekread", 4, None),
    ("append", 5, None),
    ("truncate", 3, None),
    ("ftruncate", 3, None),
    ("mmapread", 5, "mmap"),
    ("mmapwrite", 5, "mmap"),
    ("cfr", 7, "cfr"),
    ("posix_fallocate", 3, None),
    ("punch", 3, None),
    ("zero", 1, None),
    ("zerokeep", 1, None),
    ("keepsize", 1, None),
    ("seek_data", 2, None),
    ("seek_hole", 2, None),
    ("fsync", 2, None),
    ("reopen", 3, None),
    ("stat", 2, None),
]


class Gen:
    def __init__(self, rng, model, args):
        self.rng = rng
        self.model = model
        self.max = args.max_size
        self.nf = args.files
        kinds = [(k, w) for k, w, need in KINDS
                 if not (need == "mmap" and args.no_mmap) and not (need == "cfr" and args.no_cfr)]
        self.kinds = [k for k, _ in kinds]
        self.weights = [w for _, w in kinds]

    def length(self, limit):
        """random length in [1, limit] biased to small/medium sizes."""
        r = self.rng
        if limit <= 0:
            return 0
        c = r.random()
        if c < 0.4:
            n = r.randint(1, 64)
        elif c < 0.8:
            n = r.randint(1, 8192)
        elif c < 0.95:
            n = r.randint(1, 65536)
        else:
            n = r.randint(1, self.max)
        return max(1, min(n, limit))

    def offset(self, size):
        """offset in [0, max): inside, near EOF, or far past EOF."""
        r = self.rng
        c = r.random()
        if size > 0 and c < 0.45:
            o = r.randrange(size)
        elif c < 0.65:
            o = max(0, size + r.randint(-64, 64))
        elif c < 0.75:
            o = (r.randrange(max(1, self.max)) // PAGE) * PAGE
        else:
            o = r.randrange(max(1, self.max))
        return min(o, self.max - 1)

    def data(self, n):
        r = self.rng
        c = r.random()
        if c < 0.08:
            return bytes(n)
        if c < 0.16:
            return bytes([r.randrange(1, 256)]) * n
        return r.randbytes(n)

    def gen(self):
        r = self.rng
        k = r.choices(self.kinds, self.weights)[0]
        f = r.randrange(self.nf)
        size = self.model.size(f)
        op = {"k": k, "f": f, "d": r.randrange(Side.NFD)}
        if k in ("write", "seekwrite"):
            off = self.offset(size)
            op["off"] = off
            op["data"] = self.data(self.length(self.max - off))
        elif k in ("read", "seekread"):
            op["off"] = self.offset(size) if r.random() < 0.9 else size + r.randint(0, 4096)
            op["len"] = self.length(self.max)
        elif k == "append":
            room = self.max - size
            if room <= 0:
                op = {"k": "ftruncate", "f": f, "d": op["d"], "size": r.randrange(self.max // 2)}
            else:
                op["data"] = self.data(self.length(room))
                op["pwrite"] = r.random() < 0.25
                op["off"] = r.randrange(self.max) if op["pwrite"] else 0
        elif k in ("truncate", "ftruncate"):
            c = r.random()
            if c < 0.3 and size > 0:
                op["size"] = r.randrange(size)
            elif c < 0.5:
                op["size"] = min(self.max, size + r.randint(0, 8192))
            elif c < 0.55:
                op["size"] = 0
            else:
                op["size"] = r.randrange(self.max + 1)
        elif k in ("mmapread", "mmapwrite"):
            if size == 0:
                op = {"k": "write", "f": f, "d": op["d"], "off": 0,
                      "data": self.data(self.length(self.max))}
            else:
                off = r.randrange(size)
                n = self.length(size - off)
                op.update(size=size, off=off, len=n, pgoff=(r.randint(0, off) // PAGE) * PAGE)
                if k == "mmapwrite":
                    op["data"] = self.data(n)
        elif k == "cfr":
            src = r.randrange(self.nf)
            ssize = self.model.size(src)
            soff = r.randrange(ssize + 1) if r.random() < 0.9 else ssize + r.randint(0, 100)
            off = self.offset(size)
            n = self.length(self.max - off)
            if src == f:
                # same file: keep the source range inside EOF (otherwise a
                # short copy followed by a retry could read bytes that the
                # copy itself appended) and the ranges must not overlap
                # (kernel returns EINVAL)
                n = min(n, max(0, ssize - soff))
                if n and soff < off + n and off < soff + n:
                    if soff >= n:
                        off = r.randrange(0, soff - n + 1)
                    elif soff + n + n <= self.max:
                        off = soff + n + r.randint(0, min(4096, self.max - soff - 2 * n))
                    else:
                        n = 0
            if n == 0:
                op = {"k": "fsync", "f": f, "d": op["d"], "data_only": False}
            else:
                op.update(src=src, sd=r.randrange(Side.NFD), soff=soff, off=off, len=n)
        elif k in ("posix_fallocate", "zero", "punch", "zerokeep", "keepsize"):
            off = self.offset(size)
            if r.random() < 0.5:
                off = (off // 4096) * 4096
            n = self.length(self.max - off)
            op.update(off=off, len=n)
        elif k in ("seek_data", "seek_hole"):
            op["off"] = r.randrange(size + 1) if r.random() < 0.9 else size + r.randint(0, 9999)
        elif k == "fsync":
            op["data_only"] = r.random() < 0.3
        elif k == "reopen":
            op["trunc"] = r.random() < 0.05
        elif k == "stat":
            op["path"] = r.random() < 0.5
        return op


# --------------------------------------------------------------- display ----

def short(v):
    if isinstance(v, (bytes, bytearray)):
        return "<%d bytes crc32=%08x>" % (len(v), zlib.crc32(v))
    return repr(v)


def fmt_op(op):
    parts = [op["k"], "f=%d" % op["f"]]
    for key in ("d", "off", "len", "size", "src", "sd", "soff", "pgoff", "trunc", "pwrite",
                "path", "data_only"):
        if key in op:
            parts.append("%s=%s" % (key, op[key]))
    if "data" in op:
        parts.append("data=%s" % short(op["data"]))
    return " ".join(parts)


def fmt_res(res):
    if callable(res):
        return "<semantic check>"
    if isinstance(res, tuple):
        return "(" + ", ".join(short(x) for x in res) + ")"
    return short(res)


def first_diff(a, b):
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n if len(a) != len(b) else -1


def describe_bytes_diff(name_a, a, name_b, b, base=0):
    i = first_diff(a, b)
    if i < 0:
        return ""
    return ("  first difference at file offset %d (%s len %d, %s len %d)\n"
            "    %s: %s\n    %s: %s\n" % (
                base + i, name_a, len(a), name_b, len(b),
                name_a, bytes(a[i:i + 16]).hex(" "), name_b, bytes(b[i:i + 16]).hex(" ")))


# ------------------------------------------------------------------ main ----

def main():
    ap = argparse.ArgumentParser(description="fsx-style differential data checker")
    ap.add_argument("--ref", required=True, help="reference directory")
    ap.add_argument("--test", required=True, help="directory under test")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    ap.add_argument("--ops", type=int, default=3000, help="number of ops (default 3000)")
    ap.add_argument("--max-size", type=int, default=262144,
                    help="maximum file size in bytes (default 262144)")
    ap.add_argument("--files", type=int, default=3, help="number of files (default 3)")
    ap.add_argument("--no-mmap", action="store_true", help="no mmap read/write ops")
    ap.add_argument("--no-cfr", action="store_true", help="no copy_file_range ops")
    ap.add_argument("--check-every", type=int, default=100,
                    help="compare whole files every N ops (default 100)")
    ap.add_argument("--skip", default="",
                    help="comma-separated op kinds not to execute (e.g. punch,zero,zerokeep,keepsize)")
    ap.add_argument("--seek-any-legal", action="store_true",
                    help="SEEK_DATA/SEEK_HOLE: accept any result legal for the content, "
                         "even where ref and test differ")
    ap.add_argument("--keep", action="store_true", help="keep files on success")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every op")
    ap.add_argument("--selftest-corrupt", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.seed is None:
        args.seed = int.from_bytes(os.urandom(4), "little")
    if args.max_size < PAGE or args.files < 1 or args.ops < 0:
        ap.error("need --max-size >= %d, --files >= 1, --ops >= 0" % PAGE)
    for d in (args.ref, args.test):
        if not os.path.isdir(d):
            ap.error("not a directory: " + d)
    if os.path.realpath(args.ref) == os.path.realpath(args.test):
        ap.error("--ref and --test must differ")

    known = {k for k, _, _ in KINDS}
    disabled = {k for k in args.skip.split(",") if k}
    if disabled - known:
        ap.error("unknown op kind(s) for --skip: %s (known: %s)" % (
            ",".join(sorted(disabled - known)), ",".join(sorted(known))))

    print("fsx: seed %d" % args.seed, flush=True)
    faulthandler.enable()  # a SIGBUS in an mmap op at least gets a traceback
    rng = random.Random(args.seed)
    model = Model(args.files)
    ref = Side("ref", args.ref, args.files)
    test = Side("test", args.test, args.files)
    gen = Gen(rng, model, args)
    counts = {}
    skipped = {}
    history = []
    t0 = time.monotonic()

    def fail(idx, op, msg, rres=None, tres=None, exp=None, extra=""):
        print("fsx: MISMATCH seed=%d op=%d: %s" % (args.seed, idx, msg))
        if op is not None:
            print("  op:       %s" % fmt_op(op))
            print("  ref:      %s" % fmt_res(rres))
            print("  test:     %s" % fmt_res(tres))
            if exp is not None:
                print("  expected: %s" % fmt_res(exp))
        if extra:
            sys.stdout.write(extra)
        print("  last ops:")
        for i, o in history[-12:]:
            print("    #%d %s" % (i, fmt_op(o)))
        print("  files left in place: ref=%s test=%s" % (args.ref, args.test))
        print("  rerun: %s --ref %s --test %s --seed %d --ops %d --max-size %d --files %d%s%s%s" % (
            sys.argv[0], args.ref, args.test, args.seed, args.ops, args.max_size, args.files,
            " --no-mmap" if args.no_mmap else "", " --no-cfr" if args.no_cfr else "",
            (" --skip " + args.skip) if args.skip else ""))
        sys.stdout.flush()
        sys.exit(1)

    def full_check(idx):
        for f in range(args.files):
            want = bytes(model.files[f])
            got = {}
            for side in (ref, test):
                try:
                    sz = os.stat(side.paths[f]).st_size
                    fd = os.open(side.paths[f], os.O_RDONLY)
                    try:
                        data = full_read(fd, 0, max(sz, len(want)) + 1)
                    finally:
                        os.close(fd)
                    got[side.label] = (sz, data)
                except OSError as e:
                    fail(idx, None, "full check of file %d: %s: %s" % (f, side.label, e))
            for label in ("ref", "test"):
                sz, data = got[label]
                if sz != len(want) or data != want:
                    fail(idx, None,
                         "full check of file %d: %s differs from model (stat size %d, read %d bytes, model %d bytes)"
                         % (f, label, sz, len(data), len(want)),
                         extra=describe_bytes_diff("model", want, label, data))

    for idx in range(args.ops):
        if args.selftest_corrupt is not None and idx == args.selftest_corrupt:
            # deliberately damage the test side behind the model's back
            p = test.paths[0]
            fd = os.open(p, os.O_RDWR)
            sz = os.fstat(fd).st_size
            pos = random.Random(args.seed + 1).randrange(sz) if sz else 0
            old = os.pread(fd, 1, pos) or b"\0"
            os.pwrite(fd, bytes([old[0] ^ 0x01]), pos)
            os.close(fd)
            print("fsx: selftest: flipped one bit at offset %d of %s" % (pos, p))

        if args.check_every > 0 and idx > 0 and idx % args.check_every == 0:
            full_check(idx - 1)
        op = gen.gen()
        if op["k"] in disabled:
            skipped[op["k"]] = skipped.get(op["k"], 0) + 1
            continue
        history.append((idx, op))
        if args.verbose:
            print("#%d %s" % (idx, fmt_op(op)), flush=True)

        rres = outcome(ref, op)
        if op["k"] in ("punch", "zero", "zerokeep", "keepsize") and rres == ("err", "EOPNOTSUPP"):
            disabled.add(op["k"])
            print("fsx: ref returned EOPNOTSUPP for %s, disabling that op" % op["k"])
            skipped[op["k"]] = skipped.get(op["k"], 0) + 1
            continue
        tres = outcome(test, op)
        counts[op["k"]] = counts.get(op["k"], 0) + 1

        exp = model_step(model, op)
        if callable(exp):
            if not args.seek_any_legal and (
                    (rres[0] == "ok") != (tres[0] == "ok") or (rres[0] != "ok" and rres != tres)):
                fail(idx, op, "ref and test disagree (success/errno)", rres, tres)
            for label, res in (("ref", rres), ("test", tres)):
                verdict = exp(res)
                if verdict is not True:
                    fail(idx, op, "%s result inconsistent with content: %s" % (label, verdict), rres, tres)
        else:
            if rres != tres:
                extra = ""
                if len(rres) > 1 and len(tres) > 1 and isinstance(rres[1], bytes) and isinstance(tres[1], bytes):
                    extra = describe_bytes_diff("ref", rres[1], "test", tres[1], op.get("off", 0))
                fail(idx, op, "ref and test results differ", rres, tres, exp, extra)
            if rres != exp:
                extra = ""
                if len(rres) > 1 and len(exp) > 1 and isinstance(rres[1], bytes):
                    extra = describe_bytes_diff("model", exp[1], "ref", rres[1], op.get("off", 0))
                fail(idx, op, "results (same on both sides) differ from model", rres, tres, exp, extra)

        # cheap size check after every op, through the fd the op used
        if op["k"] not in ("read", "seekread", "mmapread", "seek_data", "seek_hole", "stat"):
            want = model.size(op["f"])
            for side in (ref, test):
                try:
                    sz = os.fstat(side.fds[op["f"]][op["d"]]).st_size
                except OSError as e:
                    fail(idx, op, "%s fstat after op failed: %s" % (side.label, e), rres, tres)
                if sz != want:
                    fail(idx, op, "%s size after op is %d, model says %d" % (side.label, sz, want),
                         rres, tres, exp)


    full_check(args.ops)
    ref.close()
    test.close()
    if not args.keep:
        ref.remove()
        test.remove()
    dt = time.monotonic() - t0
    done = sum(counts.values())
    print("fsx: OK seed=%d ops=%d (%d executed) files=%d max-size=%d in %.2fs; %s%s" % (
        args.seed, args.ops, done, args.files, args.max_size, dt,
        " ".join("%s=%d" % kv for kv in sorted(counts.items())),
        ("; skipped " + " ".join("%s=%d" % kv for kv in sorted(skipped.items()))) if skipped else ""))
    return 0


if __name__ == "__main__":
    # die quietly (status 141) instead of a traceback when piped into head
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
