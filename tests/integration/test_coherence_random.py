"""Randomized multi-client coherence checker.

Three eddyfs mounts (--coherence=events) of one backing directory, plus a
read-only one that only looks (see the comment in the test).  Three
worker threads, one per mount, apply a seeded random stream of operations
(create/write/append/truncate/rename/unlink/mkdir/rmdir/chmod/symlink/link)
on a small pool of names, concurrently, for ~4 s; errors such as ENOENT or
EEXIST are expected and ignored.  Then everything stops and the test polls
(bounded, ~15 s) until every mount's view of the whole tree -- names, types,
sizes, modes, link counts, file contents, symlink targets -- equals the
backing directory's own view.  Only a view that is still different after
the bound fails the test (the seed and the first differences are printed).

Each seed runs with both change sources (--watch=inotify, --watch=fanotify;
fanotify is skipped where it cannot be set up).
Seeds: EDDYFS_TEST_SEED (default 1) and the next one.  The thread
interleaving is not reproducible, the operation streams are.
"""

import errno
import os
import random
import threading
import time

import pytest

from coherence_util import (WATCH_SOURCES, diff_views, skip_unless_source,
                             tree_view, watch_args)

BASE_SEED = int(os.environ.get("EDDYFS_TEST_SEED", "1"))
SEEDS = [BASE_SEED, BASE_SEED + 1]
DURATION = float(os.environ.get("EDDYFS_TEST_COHERENCE_SECONDS", "4"))
CONVERGE = 15.0
TOP = ["t0", "t1", "t2", "t3"]
POOL = TOP + [f"{t}/{u}" for t in TOP[:3] for u in ("u0", "u1")] + ["t0/u0/v0"]
MODES = [0o600, 0o644, 0o640, 0o700, 0o755]
TARGETS = ["t0", "t1", "u0", "missing", "t0/u1", "v0"]


def _data(rng, n):
    return bytes([rng.randrange(256)]) * n if rng.random() < 0.5 else \
        rng.randbytes(n)


def _size(rng):
    return rng.choice([0, 1, rng.randrange(1, 5000), rng.randrange(4000, 70000)])


def op_create(p, q, rng):
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    try:
        os.write(fd, _data(rng, _size(rng)))
    finally:
        os.close(fd)


def op_write(p, q, rng):
    fd = os.open(p, os.O_WRONLY | os.O_NOFOLLOW)
    try:
        os.pwrite(fd, _data(rng, rng.randrange(1, 9000)), rng.randrange(0, 40000))
    finally:
        os.close(fd)


def op_append(p, q, rng):
    fd = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
    try:
        os.write(fd, _data(rng, rng.randrange(1, 3000)))
    finally:
        os.close(fd)


OPS = [  # (weight, name, fn(p, q, rng))
    (14, "create", op_create),
    (12, "write", op_write),
    (10, "append", op_append),
    (8, "truncate", lambda p, q, rng: os.truncate(p, rng.randrange(0, 20000))),
    (12, "rename", lambda p, q, rng: os.rename(p, q)),
    (8, "unlink", lambda p, q, rng: os.unlink(p)),
    (10, "mkdir", lambda p, q, rng: os.mkdir(p, rng.choice([0o755, 0o700]))),
    (6, "rmdir", lambda p, q, rng: os.rmdir(p)),
    (8, "chmod", lambda p, q, rng: os.chmod(p, rng.choice(MODES))),
    (6, "symlink", lambda p, q, rng: os.symlink(rng.choice(TARGETS), p)),
    (6, "link", lambda p, q, rng: os.link(p, q, follow_symlinks=False)),
]
OP_NAMES = [n for w, n, _f in OPS for _ in range(w)]
OP_FN = {n: f for _w, n, f in OPS}


def pick_op(root, rng):
    """(name, fn, p, q) of one random operation below root."""
    p = os.path.join(root, rng.choice(POOL))
    q = os.path.join(root, rng.choice(POOL))
    name = rng.choice(OP_NAMES)
    return name, OP_FN[name], p, q


def worker(root, seed, stop, counts, errors):
    rng = random.Random(seed)
    while not stop.is_set():
        name, fn, p, q = pick_op(root, rng)
        try:
            fn(p, q, rng)
            counts[name] = counts.get(name, 0) + 1
        except OSError as e:
            # ordinary outcomes of racing on a small name pool
            if e.errno not in (errno.ENOENT, errno.EEXIST, errno.ENOTDIR,
                               errno.EISDIR, errno.ENOTEMPTY, errno.EINVAL,
                               errno.ELOOP, errno.EPERM, errno.EXDEV,
                               errno.EBUSY, errno.ESTALE):
                errors.append(f"{name} {p} {q}: {e!r}")
            counts["failed"] = counts.get("failed", 0) + 1
        except Exception as e:  # noqa: BLE001
            errors.append(f"{name} {p} {q}: {e!r}")


@pytest.mark.parametrize("source", WATCH_SOURCES)
@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
def test_random_multi_client(seed, source, workdir, make_mount):
    skip_unless_source(source)
    print(f"EDDYFS_TEST_SEED={seed} --watch={source}")
    args = ("--coherence=events",) + watch_args(source)
    backing = workdir / "shared"
    backing.mkdir()
    os.chmod(backing, 0o755)
    mounts = [make_mount(backing=backing, extra_args=args)
              for _ in range(3)]
    # plus a read-only mount that only looks: on a writable mount every
    # read or listing marks atime stale, which makes the kernel refetch
    # attributes (and drop changed pages, restart cached listings) by
    # itself; a read-only mount relies on the daemon's invalidations alone
    watcher = make_mount(backing=backing, extra_args=args,
                         options=("allow_other", "default_permissions", "ro"))
    roots = [str(m.mnt) for m in mounts]
    views_of = roots + [str(watcher.mnt)]
    # every mount starts with the (empty) tree cached, and sees the others
    for r in views_of:
        tree_view(r)
    stop = threading.Event()
    counts = [dict() for _ in roots]
    errors = []
    threads = [threading.Thread(target=worker, daemon=True,
                                args=(r, seed * 1000 + i, stop, counts[i], errors))
               for i, r in enumerate(roots)]
    for t in threads:
        t.start()
    # meanwhile look at the tree through every mount, to fill the caches
    end = time.monotonic() + DURATION
    while time.monotonic() < end:
        for r in views_of:
            try:
                tree_view(r)
            except OSError:
                pass
    stop.set()
    for t in threads:
        t.join(timeout=60)
    hung = [roots[i] for i, t in enumerate(threads) if t.is_alive()]
    assert not hung, f"seed {seed}: workers on {hung} still running 60 s after stop"
    print("ops per mount:", counts)
    done = sum(sum(v for k, v in c.items() if k != "failed") for c in counts)
    assert done >= 30, f"seed {seed}: only {done} operations succeeded: {counts}"
    # unexpected errors (EIO, EOPNOTSUPP, ...) are reported together with
    # the convergence result below
    err_lines = ([f"seed {seed}: {len(errors)} unexpected error(s) during the run:"]
                 + ["    " + e for e in errors[:20]]) if errors else []

    # quiesced: every mount converges on the backing dir's view
    deadline = time.monotonic() + CONVERGE
    while True:
        want = tree_view(str(backing))
        views = [tree_view(r) for r in views_of]
        bad = [i for i, v in enumerate(views) if v != want]
        if not bad:
            if err_lines:
                pytest.fail("\n".join(err_lines + [
                    "  (all mounts converged on the backing dir afterwards)"]),
                    pytrace=False)
            break
        if time.monotonic() >= deadline:
            lines = [f"seed {seed} (rerun with EDDYFS_TEST_SEED={seed}): "
                     f"{len(bad)} mount(s) still differ from the backing dir "
                     f"{CONVERGE}s after the workers stopped"]
            for i in bad:
                lines.append(f"  mount {i} ({views_of[i]}"
                             f"{', read-only' if i == len(roots) else ''}), "
                             f"first differences:")
                lines += diff_views(want, views[i])
            lines.append(f"  backing has {len(want)} objects; ops: {counts}")
            pytest.fail("\n".join(lines + err_lines), pytrace=False)
        time.sleep(0.1)
    print(f"seed {seed}: converged; {len(want)} objects")
