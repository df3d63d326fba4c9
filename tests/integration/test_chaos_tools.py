"""python/eddyfs_chaos.py and scripts/eddyfs-chaos-env: mount, see chaos,
always unmount. No timing thresholds: "still stale" uses a one-minute
delay, "published" is made to happen (fsync, clear)."""

import os
import subprocess
import sys

import pytest

from conftest import REPO, base_env, is_mounted, mounts_under

sys.path.insert(0, str(REPO / "python"))
import eddyfs_chaos  # noqa: E402

LONG = 60000


@pytest.fixture
def tool_env(eddy_bin, monkeypatch):
    for k, v in base_env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("EDDYFS_BIN", eddy_bin)


def test_dual_mount_shows_chaos_and_unmounts(workdir, tool_env):
    back = workdir / "back"
    back.mkdir()
    with eddyfs_chaos.dual_mount(back, write_delay=LONG, rename_delay=0, meta_ttl=0,
                                 seed=7) as (a, b):
        assert is_mounted(a) and is_mounted(b) and a != b
        (a / "f").write_bytes(b"hello")
        assert (a / "f").read_bytes() == b"hello"          # read-your-writes
        assert (b / "f").read_bytes() == b""               # B: pending
        assert eddyfs_chaos.stats(a)["chaos_pending"] >= 1
        assert eddyfs_chaos.stats(a)["chaos_seed"] == 7
        assert "chaos_write_delay_ms" in eddyfs_chaos.show(b)
        eddyfs_chaos.clear(a)                              # publishes
        assert (b / "f").read_bytes() == b"hello"
        eddyfs_chaos.set_knobs(b, meta_ttl=LONG)
        assert eddyfs_chaos.stats(b)["chaos_meta_ttl_ms"] == LONG
    assert not is_mounted(a) and not is_mounted(b)
    assert not a.exists() and not b.exists()               # temp mountpoints removed
    assert (back / "f").read_bytes() == b"hello"


def test_mount_unmounts_on_exception(workdir, tool_env):
    back, mnt = workdir / "back", workdir / "mnt"
    back.mkdir()
    mnt.mkdir()
    with pytest.raises(RuntimeError, match="boom"):
        with eddyfs_chaos.mount(back, mnt, write_delay=LONG) as m:
            assert m == mnt and is_mounted(mnt)
            (m / "x").write_bytes(b"pending at the exception")
            raise RuntimeError("boom")
    assert not is_mounted(mnt)
    assert mnt.is_dir()                                    # given mountpoint kept
    assert (back / "x").read_bytes() == b"pending at the exception"


def test_control_mount_is_coherent(workdir, tool_env, monkeypatch):
    monkeypatch.setenv("CHAOSFS_WRITE_DELAY_MS", str(LONG))  # must not turn chaos on
    back = workdir / "back"
    back.mkdir()
    with eddyfs_chaos.dual_mount(back, chaos=False) as (a, b):
        (a / "f").write_bytes(b"now")
        assert (b / "f").read_bytes() == b"now"
        with pytest.raises(eddyfs_chaos.EddyfsError):
            eddyfs_chaos.show(a)                           # not a chaos mount
    with pytest.raises(TypeError):
        with eddyfs_chaos.mount(back, chaos=False, write_delay=1):
            pass
    with pytest.raises(TypeError):
        with eddyfs_chaos.mount(back, no_such_knob=1):
            pass
    assert not mounts_under(workdir)


def test_mount_failure_raises_and_leaves_nothing(workdir, tool_env):
    with pytest.raises(eddyfs_chaos.EddyfsError):
        with eddyfs_chaos.mount(workdir / "missing"):
            pass
    back = workdir / "back"
    back.mkdir()
    with pytest.raises(eddyfs_chaos.EddyfsError, match="meta-ttl"):
        with eddyfs_chaos.mount(back, meta_ttl=-5):
            pass


def run_env(args, eddy_bin):
    return subprocess.run([str(REPO / "scripts" / "eddyfs-chaos-env")] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=120,
                          env=base_env(EDDYFS_BIN=eddy_bin))


def test_shell_helper_chaos_and_exit_status(workdir, eddy_bin):
    back = workdir / "back"
    back.mkdir()
    script = ('echo hi > "$EDDYFS_A/f"; printf "A=%s B=[%s]\\n" "$(cat "$EDDYFS_A/f")" '
              '"$(cat "$EDDYFS_B/f")"; echo "$EDDYFS_A $EDDYFS_B"; exit 3')
    r = run_env(["--write-delay", LONG, "--seed", "1", back, "--", "sh", "-c", script], eddy_bin)
    assert r.returncode == 3, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "A=hi B=[]"
    for m in lines[1].split():
        assert not is_mounted(m) and not os.path.exists(m)
    assert (back / "f").read_text() == "hi\n"              # published at unmount


def test_shell_helper_control_and_usage(workdir, eddy_bin):
    back = workdir / "back"
    back.mkdir()
    r = run_env(["--no-chaos", back, "--", "sh", "-c",
                 'echo hi > "$EDDYFS_A/f"; cat "$EDDYFS_B/f"'], eddy_bin)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hi\n"
    assert run_env([back], eddy_bin).returncode == 2
    assert run_env(["--bogus", back, "--", "true"], eddy_bin).returncode == 2
    assert run_env([workdir / "missing", "--", "true"], eddy_bin).returncode == 2
