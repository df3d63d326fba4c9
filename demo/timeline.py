#!/usr/bin/python3
"""Demo 1: what a reader client sees of a writer client's changes, over time.

Writer A, at known times: creates f = "v1", appends "+v2", renames f -> g,
writes h = "new". Reader B polls every 50 ms (a listing, then f, g and h).
Printed: a compact timeline, one line each time the truth (what A sees:
it always reads its own writes) or B's view changes, marked STALE while
they differ, and per change how long B took to catch up.
Expected: the control catches up with every change within a poll or two;
under chaos B lags at least write-delay behind A's data (pending writes)
and up to meta-ttl behind names and attributes (cached absences, names,
listings). The check uses generous margins: control < 0.5 s per change,
chaos >= 0.5 s for at least one change (write-delay is 1 s)."""

import os
import sys
import threading
import time

from common import clients, header, verdict

KNOBS = dict(meta_ttl=1000, write_delay=1000)
GAP = 1.6           # s between the writer's steps
POLL = 0.05
NAMES = ("f", "g", "h")


def view(d):
    """'ls[f g] f=v1 g=- h=-': listing and contents ("-" absent, "''" empty)."""
    try:
        ls = " ".join(sorted(n for n in os.listdir(d) if n in NAMES))
    except OSError as e:
        ls = "E%d" % e.errno
    parts = ["ls[%s]" % ls]
    for n in NAMES:
        try:
            with open(os.path.join(d, n), "rb") as f:
                c = f.read().decode()
            parts.append("%s=%s" % (n, c if c else "''"))
        except FileNotFoundError:
            parts.append("%s=-" % n)
        except OSError as e:
            parts.append("%s=E%d" % (n, e.errno))
    return " ".join(parts)


def writer(a, t0, events):
    steps = [("create f=v1", lambda: (a / "f").write_bytes(b"v1")),
             ("append +v2", lambda: open(a / "f", "ab").write(b"+v2")),
             ("rename f->g", lambda: os.rename(a / "f", a / "g")),
             ("create h=new", lambda: (a / "h").write_bytes(b"new"))]
    for i, (what, fn) in enumerate(steps):
        time.sleep(max(0.0, t0 + 0.3 + i * GAP - time.monotonic()))
        fn()
        events.append((time.monotonic() - t0, what, view(a)))


def run(mode):
    samples, events = [], []
    with clients(mode, **KNOBS) as (a, b, _backing):
        t0 = time.monotonic()
        w = threading.Thread(target=writer, args=(a, t0, events))
        w.start()
        end = t0 + 0.3 + 4 * GAP
        while time.monotonic() < end:
            t = time.monotonic() - t0
            samples.append((t, view(b)))
            time.sleep(POLL)
        w.join()
    return samples, events


def truth_at(events, t):
    cur = view_empty = "ls[] f=- g=- h=-"
    for te, _what, v in events:
        if te <= t:
            cur = v
    return cur or view_empty


def report(mode, samples, events):
    print("-- %s: t(s)  truth (A)                          | B sees" % mode)
    last = None
    for t, bv in samples:
        tv = truth_at(events, t)
        if (tv, bv) != last:
            print("   %5.2f  %-34s | %-34s %s" % (t, tv, bv, "" if tv == bv else "STALE"))
            last = (tv, bv)
    lags = []
    for i, (te, what, v) in enumerate(events):
        nxt = events[i + 1][0] if i + 1 < len(events) else samples[-1][0]
        seen = [t for t, bv in samples if te <= t <= nxt and bv == v]
        lag = (seen[0] - te) if seen else (nxt - te)
        lags.append(lag)
        print("   %-14s B caught up after %s" % (
            what, "%.2f s" % lag if seen else "more than %.2f s (never, before the next step)" % lag))
    return lags


def main():
    header("Demo 1: writer A / reader B visibility timeline", KNOBS)
    lags = {}
    for mode in ("control", "chaos"):
        samples, events = run(mode)
        lags[mode] = report(mode, samples, events)
    ok = max(lags["control"]) < 0.5 and max(lags["chaos"]) >= 0.5
    return verdict(ok, "control: B caught up within %.2f s of every change; chaos: up to %.2f s "
                   "late" % (max(lags["control"]), max(lags["chaos"])) if ok else
                   "expected control lags < 0.5 s (max %.2f) and a chaos lag >= 0.5 s (max %.2f)"
                   % (max(lags["control"]), max(lags["chaos"])))


if __name__ == "__main__":
    sys.exit(main())
