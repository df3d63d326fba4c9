"""Shared helpers of the eddyfs chaos demos (standard library only).

Every demo runs one scenario twice over a fresh backing directory: on two
coherent eddyfs mounts (the control) and on two chaos mounts with a fixed
seed, then prints what differed. Mounts go through python/eddyfs_chaos.py,
under a temporary directory, and are always unmounted.
"""

import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.dont_write_bytecode = True
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))
import eddyfs_chaos  # noqa: E402

if not os.environ.get("EDDYFS_BIN") and not shutil.which("eddyfs"):
    os.environ["EDDYFS_BIN"] = str(REPO / "build" / "eddyfs")

SEED = 42


@contextlib.contextmanager
def clients(mode, **knobs):
    """Yields (a, b, backing): two clients over one fresh backing dir.
    mode "control": coherent mounts; "chaos": chaos mounts with `knobs`
    and the fixed seed."""
    top = Path(tempfile.mkdtemp(prefix="eddyfs-demo-%s." % mode))
    try:
        backing = top / "backing"
        backing.mkdir()
        mps = [top / "A", top / "B"]
        for m in mps:
            m.mkdir()
        kw = dict(chaos=False) if mode == "control" else dict(knobs, seed=SEED)
        with eddyfs_chaos.dual_mount(backing, mountpoints=mps, log_dir=top, **kw) as (a, b):
            yield a, b, backing
    finally:
        if not any(eddyfs_chaos._is_mounted(top / n) for n in ("A", "B")):
            shutil.rmtree(top, ignore_errors=True)


def publish_all(*mounts):
    """Publishes what chaos clients still hold (`eddyfs chaos clear`: all
    knobs to 0), so the backing dir shows the final truth; no-op on
    coherent mounts."""
    for m in mounts:
        try:
            eddyfs_chaos.clear(m)
        except eddyfs_chaos.EddyfsError:
            pass    # not a chaos mount


def knob_text(knobs):
    return " ".join("%s=%s" % (k.replace("_", "-"), v) for k, v in knobs.items())


def header(title, knobs):
    print("=" * 78)
    print(title)
    print("  control: two coherent eddyfs mounts; chaos: eddyfs --chaos %s seed=%d"
          % (knob_text(knobs), SEED))
    print("=" * 78)


def verdict(ok, text):
    print(("PASS: " if ok else "FAIL: ") + text)
    return 0 if ok else 1
