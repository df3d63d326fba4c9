#!/usr/bin/python3
"""Demo 3: publish-by-rename vs in-place rewrite, read by another client.

Client A rewrites a small "config" file 25 times, each version a different
length and self-checking ("<body>|<len>|END"), in one of two ways:
  in-place: open(O_TRUNC) + write            (what most programs do)
  rename:   write tmp + fsync + rename(tmp, file)
Client B reads it in a loop meanwhile, in two styles: "by size" reads the
size fstat() reports (as mmap users and many C programs do; on NFS the page
cache clamps every read to the cached size the same way), "to EOF" reads
until read() returns 0. A read is ok (a whole version, maybe an old one),
empty, or torn (part of a version).
Expected: rename never torn or empty, in either run; in-place torn/empty far
more often under chaos (B's cached size outlives every rewrite for
meta-ttl) than in the control (where only the instant between truncate
and write can be caught)."""

import os
import sys
import threading
import time

from common import clients, header, verdict

KNOBS = dict(meta_ttl=500, write_delay=300)
VERSIONS = 25
PERIOD = 0.06


def version(i):
    body = ("v%d;" % i) * (8 + (i * 7) % 40)
    return ("%s|%d|END\n" % (body, len(body))).encode()


def whole(d):
    try:
        body, n, end = d.decode().rsplit("|", 2)
        return end == "END\n" and len(body) == int(n)
    except (ValueError, UnicodeDecodeError):
        return False


def classify(d):
    return "empty" if not d else "ok" if whole(d) else "torn"


def reader(path, stop, res):
    while not stop.is_set():
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as e:
            res["error"] += 1
            res.setdefault("errnos", set()).add(e.errno)
            continue
        try:
            by_size = os.pread(fd, os.fstat(fd).st_size, 0)
            to_eof = b""
            while True:
                c = os.read(fd, 65536)
                if not c:
                    break
                to_eof += c
        except OSError as e:
            res["error"] += 1
            res.setdefault("errnos", set()).add(e.errno)
            continue
        finally:
            os.close(fd)
        res["size:" + classify(by_size)] += 1
        res["eof:" + classify(to_eof)] += 1
        time.sleep(0.002)


def write_in_place(a, i):
    with open(a / "conf", "wb") as f:
        f.write(version(i))


def write_by_rename(a, i):
    with open(a / "conf.tmp", "wb") as f:
        f.write(version(i))
        f.flush()
        os.fsync(f.fileno())
    os.rename(a / "conf.tmp", a / "conf")


def run(mode, method):
    keys = ["%s:%s" % (s, c) for s in ("size", "eof") for c in ("ok", "empty", "torn")]
    res = dict.fromkeys(keys + ["error"], 0)
    with clients(mode, **KNOBS) as (a, b, _backing):
        with open(a / "conf", "wb") as f:
            f.write(version(0))
            f.flush()
            os.fsync(f.fileno())
        os.stat(b / "conf")
        stop = threading.Event()
        t = threading.Thread(target=reader, args=(str(b / "conf"), stop, res))
        t.start()
        try:
            for i in range(1, VERSIONS + 1):
                (write_in_place if method == "in-place" else write_by_rename)(a, i)
                time.sleep(PERIOD)
        finally:
            stop.set()
            t.join()
    return res


def bad(r):
    return sum(r["%s:%s" % (s, c)] for s in ("size", "eof") for c in ("empty", "torn"))


def main():
    header("Demo 3: publish-by-rename vs in-place rewrite (%d versions, B reading)"
           % VERSIONS, KNOBS)
    res = {(m, w): run(m, w) for w in ("in-place", "rename") for m in ("control", "chaos")}
    print("%-9s %-8s| %-24s| %-24s| %s" % ("method", "run", "B by size: ok/empty/torn",
                                          "B to EOF: ok/empty/torn", "errors"))
    for (m, w), r in res.items():
        print("%-9s %-8s| %10d %6d %6d | %10d %6d %6d | %d%s" % (
            w, m, r["size:ok"], r["size:empty"], r["size:torn"], r["eof:ok"],
            r["eof:empty"], r["eof:torn"], r["error"],
            " %s" % sorted(r["errnos"]) if r.get("errnos") else ""))
    ren = bad(res[("control", "rename")]) + bad(res[("chaos", "rename")])
    ctl, chs = bad(res[("control", "in-place")]), bad(res[("chaos", "in-place")])
    ok = ren == 0 and chs > 0 and chs > 2 * ctl
    return verdict(ok, "rename: never torn or empty; in-place: %d bad reads under chaos vs %d "
                   "in the control" % (chs, ctl) if ok else
                   "expected rename clean (got %d bad reads) and in-place worse under chaos "
                   "(%d) than in the control (%d)" % (ren, chs, ctl))


if __name__ == "__main__":
    sys.exit(main())
