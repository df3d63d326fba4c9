"""demo/: every demo shows its expected difference between the coherent
control run and the chaos run (demo/run exits non-zero otherwise). The demos
mount under their own temporary directories and always unmount."""

import subprocess

import pytest

from conftest import REPO, base_env, mounts_under

DEMOS = ["timeline", "shared_venv", "publish", "counter"]


@pytest.mark.parametrize("name", DEMOS)
def test_demo(name, eddy_bin):
    r = subprocess.run([str(REPO / "demo" / "run"), name], capture_output=True, text=True,
                       timeout=300, env=base_env(EDDYFS_BIN=eddy_bin))
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "PASS:" in r.stdout
    assert not mounts_under("/tmp") or not any("eddyfs-demo-" in m for m in mounts_under("/tmp"))
