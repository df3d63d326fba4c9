#!/usr/bin/python3
"""Demo 4: a counter file incremented N times by each of two clients.

With fcntl locks (both clients at once): lock, read, +1, write, unlock. Taking
and releasing a lock is a coherency point (pending writes are published,
attributes refetched), so the total is right, also under chaos.
Without locks (the clients even take turns, never overlapping): under chaos
B reads A's value before A's write is published (write-delay), so updates
are lost; the coherent control gets every one.
Expected: locked total = 2N in both runs; unlocked total = 2N in the control,
< 2N under chaos."""

import fcntl
import multiprocessing
import os
import sys

from common import clients, header, publish_all, verdict

N = int(os.environ.get("DEMO_COUNTER_N", "20"))
KNOBS = dict(meta_ttl=500, write_delay=300)
WIDTH = 10


def increment(path, lock):
    fd = os.open(path, os.O_RDWR)
    try:
        if lock:
            fcntl.lockf(fd, fcntl.LOCK_EX)
        v = int(os.pread(fd, WIDTH, 0) or b"0")
        os.pwrite(fd, b"%09d\n" % (v + 1), 0)
        if lock:
            fcntl.lockf(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def locked_worker(path):
    for _ in range(N):
        increment(path, True)


def read_truth(backing, name):
    return int((backing / name).read_bytes() or b"0")


def run(mode):
    with clients(mode, **KNOBS) as (a, b, backing):
        for name in ("locked", "unlocked"):
            (a / name).write_bytes(b"%09d\n" % 0)
            with open(a / name, "rb+") as f:
                os.fsync(f.fileno())
        # locked: two processes (POSIX locks belong to processes), at once
        ctx = multiprocessing.get_context("fork")
        ps = [ctx.Process(target=locked_worker, args=(str(m / "locked"),)) for m in (a, b)]
        for p in ps:
            p.start()
        for p in ps:
            p.join()
        if any(p.exitcode for p in ps):
            raise RuntimeError("a locked worker failed")
        # unlocked: strictly taking turns, A then B, N rounds
        for _ in range(N):
            increment(str(a / "unlocked"), False)
            increment(str(b / "unlocked"), False)
        publish_all(a, b)
        return read_truth(backing, "locked"), read_truth(backing, "unlocked")


def main():
    header("Demo 4: counter incremented %d times by each of two clients" % N, KNOBS)
    res = {m: run(m) for m in ("control", "chaos")}
    print("%-9s %22s %30s" % ("run", "with fcntl locks", "without locks (taking turns)"))
    for m, (lk, ul) in res.items():
        print("%-9s %15d of %d %23d of %d%s" % (m, lk, 2 * N, ul, 2 * N,
                                                  "  (%d lost)" % (2 * N - ul) if ul != 2 * N else ""))
    (cl, cu), (xl, xu) = res["control"], res["chaos"]
    ok = cl == 2 * N and cu == 2 * N and xl == 2 * N and xu < 2 * N
    return verdict(ok, "locks keep the count under chaos; without them chaos lost %d of %d updates"
                   % (2 * N - xu, 2 * N) if ok else
                   "expected locked=%d everywhere, unlocked=%d in control and fewer under chaos"
                   % (2 * N, 2 * N))


if __name__ == "__main__":
    sys.exit(main())
