"""Differential tests: the same seeded random operation sequence applied to a
native directory and to an eddyfs mount must give identical results.

Seeds: EDDYFS_TEST_SEED (base seed, default 1) .. base+2.
Ops per run: EDDYFS_TEST_OPS (default: the tool's own default)."""

import os
import subprocess

import pytest

from conftest import REPO, all_backends

# dir, volume: against a native dir beside the backing dirs; mem: against a tmpfs
pytestmark = all_backends

TOOLS = REPO / "tests" / "tools"
PYTHON = "/usr/bin/python3"
BASE_SEED = int(os.environ.get("EDDYFS_TEST_SEED", "1"))
OPS = os.environ.get("EDDYFS_TEST_OPS")
TOOL_TIMEOUT = float(os.environ.get("EDDYFS_TEST_TOOL_TIMEOUT", "1800"))
SEEDS = [BASE_SEED + k for k in range(3)]


@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
@pytest.mark.parametrize("tool", ["fsx.py", "metafuzz.py"])
def test_differential(tool, seed, mount, native_dir, backend):
    script = TOOLS / tool
    if not script.is_file():
        pytest.fail(f"{script} is missing")
    ref = native_dir / "ref"
    test = mount.mnt / "test"
    os.mkdir(ref)
    os.mkdir(test)
    argv = [PYTHON, str(script), "--ref", str(ref), "--test", str(test),
            "--seed", str(seed)]
    if OPS:
        argv += ["--ops", OPS]
    if tool == "fsx.py" and backend in ("mem", "volume"):
        # tmpfs reports a fallocated page as a hole until it is written or
        # faulted in through a mapping, which a FUSE filesystem cannot see;
        # a volume has no SEEK_DATA/SEEK_HOLE of its own (the kernel's
        # generic answer: all data), and holes of its block size
        argv += ["--seek-any-legal"]
    try:
        r = subprocess.run(argv, capture_output=True, text=True,
                           timeout=TOOL_TIMEOUT, cwd=str(native_dir))
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{' '.join(argv)} did not finish within {TOOL_TIMEOUT}s\n"
                    f"stdout:\n{(e.stdout or b'')[-5000:]!r}\n"
                    f"stderr:\n{(e.stderr or b'')[-5000:]!r}")
    if r.returncode != 0:
        pytest.fail(f"{' '.join(argv)} exited {r.returncode}\n"
                    f"--- stdout ---\n{r.stdout[-20000:]}\n"
                    f"--- stderr ---\n{r.stderr[-20000:]}\n"
                    f"(reproduce: EDDYFS_TEST_SEED={seed} and the command above "
                    f"against a fresh mount)", pytrace=False)
    assert mount.is_mounted()
