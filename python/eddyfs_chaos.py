"""eddyfs_chaos -- chaos mounts for your own test suites (standard library only).

    from eddyfs_chaos import mount, dual_mount

    with dual_mount("/tmp/shared", write_delay=300, meta_ttl=500, seed=1) as (a, b):
        (a / "f").write_text("hello")      # client A sees it at once ...
        print((b / "f").read_text())       # ... client B late ("" for 300 ms)

mount(backing, mountpoint=None, **knobs) mounts one eddyfs client of the
directory `backing` and yields its mountpoint (a pathlib.Path; a fresh
temporary directory when none is given, removed afterwards).
dual_mount(backing, **knobs) yields (a, b): two clients, ids "A" and "B",
over the same backing directory. Both always unmount on the way out, also
when the body raises.

Knobs (keyword arguments; None = eddyfs's default, i.e. ChaosFS's):
  meta_ttl, write_delay, rename_delay  milliseconds
  drop_prob                            0..1
  drop_errno                           "EIO", "ENOSPC", ... or a number
  seed                                 int: reproducible drop decisions
  decision_log, replay                 file paths
  client_id, log_file                  names the client / its log
  chaos=False                          a coherent mount (a control run):
                                       no chaos knob may be given then
  extra_args                           more `eddyfs mount` arguments

The eddyfs binary is $EDDYFS_BIN, else `eddyfs` on PATH (or eddyfs=PATH).
Runtime control: set_knobs(mnt, write_delay=0), show(mnt), clear(mnt)
(all knobs to 0: a coherent client; pending writes are published at
once), stats(mnt) -> dict.
"""

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["mount", "dual_mount", "set_knobs", "show", "clear", "stats",
           "eddyfs_binary", "EddyfsError"]

KNOBS = ("meta_ttl", "write_delay", "rename_delay", "drop_prob", "drop_errno",
         "seed", "decision_log", "replay")
# environment variables that would switch chaos on for a control mount
_CHAOS_ENV = ("CHAOS", "META_TTL_MS", "WRITE_DELAY_MS", "RENAME_DELAY_MS",
              "DROP_PROB", "DROP_ERRNO", "SEED", "DECISION_LOG", "REPLAY")
MOUNT_TIMEOUT = 60.0


class EddyfsError(RuntimeError):
    """An eddyfs command failed."""


def eddyfs_binary(eddyfs=None):
    """Path of the eddyfs binary: the argument, $EDDYFS_BIN, else PATH."""
    b = eddyfs or os.environ.get("EDDYFS_BIN") or shutil.which("eddyfs")
    if not b:
        raise EddyfsError("eddyfs binary not found: set EDDYFS_BIN or put eddyfs on PATH")
    return str(b)


def _run(args, eddyfs=None, env=None, timeout=MOUNT_TIMEOUT):
    r = subprocess.run([eddyfs_binary(eddyfs)] + [str(a) for a in args],
                       capture_output=True, text=True, env=env, timeout=timeout)
    if r.returncode != 0:
        raise EddyfsError("eddyfs %s failed (exit %d): %s"
                          % (" ".join(map(str, args)), r.returncode,
                             (r.stderr or r.stdout).strip()))
    return r.stdout


def _is_mounted(path):
    p = os.path.realpath(str(path))
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 1 and fields[1].replace("\\040", " ") == p:
                return True
    return False


def _knob_args(knobs):
    args = []
    for k in KNOBS:
        v = knobs.get(k)
        if v is not None:
            args += ["--" + k.replace("_", "-"), str(v)]
    return args


def _unmount(mnt, eddyfs=None):
    """Unmount mnt: eddyfs umount, then fusermount3 -u -z as a fallback."""
    if not _is_mounted(mnt):
        return
    try:
        _run(["umount", "--mount", mnt], eddyfs=eddyfs)
    except (EddyfsError, subprocess.TimeoutExpired):
        subprocess.run(["fusermount3", "-u", "-z", str(mnt)],
                       capture_output=True, timeout=MOUNT_TIMEOUT)


@contextlib.contextmanager
def mount(backing, mountpoint=None, *, chaos=True, client_id=None, log_file=None,
          eddyfs=None, extra_args=(), timeout=MOUNT_TIMEOUT, **knobs):
    """Mount an eddyfs client of `backing`; yield its mountpoint (Path)."""
    unknown = set(knobs) - set(KNOBS)
    if unknown:
        raise TypeError("unknown knob(s): %s (known: %s)"
                        % (", ".join(sorted(unknown)), ", ".join(KNOBS)))
    if not chaos and any(v is not None for v in knobs.values()):
        raise TypeError("chaos=False takes no chaos knobs")
    backing = Path(backing)
    if not backing.is_dir():
        raise EddyfsError("backing directory %s does not exist" % backing)
    made = mountpoint is None
    mnt = Path(tempfile.mkdtemp(prefix="eddyfs-chaos-mnt.") if made else mountpoint)
    env = dict(os.environ)
    args = ["mount", "--background"]
    if log_file:
        args += ["--log-file", log_file]
    else:
        env.pop("EDDYFS_LOG_FILE", None)
        env.pop("EDDYFS_LOG_DIR", None)
        args += ["--log-file", os.devnull]
    if client_id:
        args += ["--client-id", client_id]
    if chaos:
        args += ["--chaos"] + _knob_args(knobs)
    else:
        for v in _CHAOS_ENV:
            env.pop("EDDYFS_" + v, None)
            env.pop("CHAOSFS_" + v, None)
    args += [str(a) for a in extra_args] + [backing, mnt]
    try:
        try:
            _run(args, eddyfs=eddyfs, env=env, timeout=timeout)
            deadline = time.monotonic() + timeout
            while not _is_mounted(mnt):
                if time.monotonic() > deadline:
                    raise EddyfsError("%s did not appear in /proc/self/mounts" % mnt)
                time.sleep(0.02)
            yield mnt
        finally:
            _unmount(mnt, eddyfs=eddyfs)
    finally:
        if made and not _is_mounted(mnt):
            try:
                mnt.rmdir()
            except OSError:
                pass


@contextlib.contextmanager
def dual_mount(backing, *, mountpoints=None, log_dir=None, **kw):
    """Two clients ("A", "B") of one backing directory; yields (a, b).
    Keyword arguments as for mount(); log_dir gets A.log and B.log."""
    mps = list(mountpoints) if mountpoints else [None, None]
    logs = [None, None]
    if log_dir:
        logs = [str(Path(log_dir) / "A.log"), str(Path(log_dir) / "B.log")]
    with mount(backing, mps[0], client_id="A", log_file=logs[0], **kw) as a, \
            mount(backing, mps[1], client_id="B", log_file=logs[1], **kw) as b:
        yield a, b


def set_knobs(mnt, eddyfs=None, **knobs):
    """Change knobs of a running chaos mount: set_knobs(m, write_delay=0)."""
    args = ["chaos", "set", "--mount", mnt]
    args += ["%s=%s" % (k.replace("_", "-"), v) for k, v in knobs.items()]
    return _run(args, eddyfs=eddyfs)


def show(mnt, eddyfs=None):
    """The knobs of a running chaos mount, as `eddyfs chaos show` prints them."""
    return _run(["chaos", "show", "--mount", mnt], eddyfs=eddyfs)


def clear(mnt, eddyfs=None):
    """`eddyfs chaos clear`: all knobs to 0, pending writes published at once."""
    return _run(["chaos", "clear", "--mount", mnt], eddyfs=eddyfs)


def stats(mnt, eddyfs=None):
    """The mount's counters (`eddyfs stats`) as a dict (ints where possible)."""
    d = {}
    for line in _run(["stats", "--mount", mnt], eddyfs=eddyfs).splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) != 2 or parts[0].startswith("#"):
            continue
        key, val = parts[0].rstrip(":"), parts[1].strip()
        try:
            d[key] = int(val)
        except ValueError:
            d[key] = val
    return d
