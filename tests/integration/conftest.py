"""Shared fixtures and helpers for the eddyfs integration tests.

Run with Debian's pytest:  /usr/bin/python3 -m pytest tests/integration

Public API (used by every test module in this folder):

  fixtures
    eddy_bin      -> str, path of the eddyfs binary (EDDYFS_BIN, else the ASan
                     build if present, else build/eddyfs)
    workdir       -> pathlib.Path, per-test work dir under /var/tmp (0755,
                     traversable by every uid); everything in it is removed
                     after the test once nothing is mounted below it
    backend       -> "dir" (default), "mem" or "volume": what make_mount()
                     mounts when no backing is given. A test runs on every
                     backend with the @all_backends mark (indirect
                     parametrization; @both_backends is the same mark).
    make_mount    -> factory make_mount(backing=None,
                         options=("allow_other", "default_permissions"),
                         extra_args=(), env=None, as_user=None,
                         check=True, mnt=None) -> Mount
                     (as_user without user_allow_other in /etc/fuse.conf:
                     the default options drop allow_other, so only that uid
                     can access the mount; Mount.stats()/.run() run as it)
                     backing "mem:" or "mem:size=..." mounts the mem backend:
                     then Mount.backend == "mem" and Mount.backing is None
                     (there is no backing directory to look at)
                     backing "sqlite:<dir>" mounts a volume: Mount.backend ==
                     "volume", Mount.backing is None, Mount.volume the dir;
                     backend "volume" without a backing formats a fresh one
                     with 4 KiB blocks (make_volume formats others)
    mount         -> make_mount() with defaults (on the `backend` fixture)
    native_dir    -> plain Path dir (0755) on the same filesystem as backings
                     (backend "mem" or "volume": on a fresh tmpfs, whose
                     xattr and hole rules both follow)
    make_volume   -> make_volume(*format_args, as_user=None) -> Path of a
                     freshly formatted volume dir (eddyfs format)
    run_eddy      -> run_eddy(*args, env=None, as_user=None, check=None)
                     -> CompletedProcess (text, captured), with sanitizer env
    spawn         -> spawn(argv, **popen_kw) -> Popen, killed at teardown
    register_log  -> register_log(path): check this daemon log at teardown
    dev_fuse_access (session) -> .open_up(): /dev/fuse 0666 until the last
                     concurrent pytest session ends

  module-level helpers (from conftest import ...)
    all_backends (alias both_backends)       mark: run a test on "dir", "mem"
                                             and "volume" (through `backend`)
    MEM                                      "mem:", the mem backend source
    SQLITE                                   "sqlite:", the volume source prefix
    run_as(uid, gid, fn, *args, groups=())   run fn in a forked child with
                                             those credentials, return its
                                             result / re-raise its exception
    run_as_cmd(uid, gid, argv, **kw)         -> CompletedProcess
    is_mounted(path), mount_fstype(path), mounts_under(dir)
    wait_for(pred, timeout=..., interval=...) bounded wait for a condition
    find_daemon_pid(mnt)
    SANITIZER_PATTERNS, sanitizer_findings(text)
    base_env(**extra)   os.environ minus EDDYFS_{CLIENT_ID,LOG_FILE,LOG_DIR,
                        BACKGROUND,OPTIONS}, plus extra
    read_mounts(), pid_alive(pid), parse_stats(text), mkdir_traversable(p)

Sanitizer reports of every eddyfs process started through make_mount,
run_eddy or spawn go to <workdir>/sanitizer/ (ASAN/UBSAN/LSAN log_path) and
any non-empty report fails the test at teardown.  EDDYFS_TEST_KEEP=1 keeps
the work dirs.

Teardown of every test unmounts everything that is still mounted below the
test's work dir (eddyfs umount, then fusermount3 -u -z, then umount -l),
kills processes started with `spawn`, and then fails the test if a daemon log
or a sanitizer report file contains "ERROR: AddressSanitizer",
"runtime error:", "LeakSanitizer" or an "ERROR:" line.
"""

import itertools
import os
import pickle
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import traceback
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WORK_ROOT = Path(os.environ.get("EDDYFS_TEST_WORKROOT", "/var/tmp/eddyfs-it"))
DEFAULT_OPTIONS = ("allow_other", "default_permissions")
_DEFAULT = object()
MEM = "mem:"
SQLITE = "sqlite:"
BACKENDS = ("dir", "mem", "volume")
# Runs a test once per backend: the `backend` fixture, and with it `mount`
# and make_mount() without a backing, take each value in turn.
all_backends = pytest.mark.parametrize("backend", BACKENDS, indirect=True)
# The name from when there were two; the same mark.
both_backends = all_backends

# Upper bounds for *waiting* on conditions (never used as pass/fail timing
# thresholds).  ASan builds start slowly, so be generous.
CMD_TIMEOUT = float(os.environ.get("EDDYFS_TEST_CMD_TIMEOUT", "120"))
WAIT_TIMEOUT = float(os.environ.get("EDDYFS_TEST_WAIT_TIMEOUT", "30"))

SANITIZER_PATTERNS = (
    "ERROR: AddressSanitizer",
    "runtime error:",
    "LeakSanitizer",
    "WARNING: ThreadSanitizer",
)
_ERROR_LINE = re.compile(r"ERROR:")


def sanitizer_findings(text):
    """Return the lines of `text` that indicate a sanitizer report or an
    "ERROR:" line."""
    bad = []
    for line in text.splitlines():
        if any(p in line for p in SANITIZER_PATTERNS) or _ERROR_LINE.search(line):
            bad.append(line)
    return bad


# --------------------------------------------------------------------------
# generic helpers

def wait_for(pred, timeout=WAIT_TIMEOUT, interval=0.05, what="condition"):
    """Poll pred() until it returns a truthy value; return that value.
    Raises AssertionError after `timeout` seconds (a bounded wait)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def _unescape_mount_field(s):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def read_mounts():
    """List of (source, mountpoint, fstype, options) from /proc/self/mounts."""
    out = []
    with open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 4:
                continue
            out.append((_unescape_mount_field(parts[0]),
                        _unescape_mount_field(parts[1]), parts[2], parts[3]))
    return out


def mount_fstype(path):
    """fstype of the (last, i.e. top-most) mount exactly at `path`, or None."""
    p = os.path.abspath(str(path))
    t = None
    for _src, mp, fstype, _opts in read_mounts():
        if mp == p:
            t = fstype
    return t


def is_mounted(path):
    return mount_fstype(path) is not None


def mounts_under(d):
    """Mountpoints (str) at or below directory d, deepest first."""
    d = os.path.abspath(str(d)).rstrip("/")
    res = [mp for _s, mp, _t, _o in read_mounts()
           if mp == d or mp.startswith(d + "/")]
    return sorted(set(res), key=lambda m: (-m.count("/"), m))


def _proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return None


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
    except OSError:
        return False
    state = st[st.rfind(")") + 2:].split()[0]
    return state not in ("Z", "X")


def _has_dev_fuse_open(pid):
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == "/dev/fuse":
                    return True
            except OSError:
                pass
    except OSError:
        pass
    return False


def find_daemon_pids(mnt):
    """All live pids whose cmdline has 'eddyfs', 'mount' and the mountpoint."""
    mnt = os.path.abspath(str(mnt))
    res = []
    for ent in os.listdir("/proc"):
        if not ent.isdigit():
            continue
        pid = int(ent)
        if pid == os.getpid():
            continue
        args = _proc_cmdline(pid)
        if not args:
            continue
        if not any("eddyfs" in a for a in args):
            continue
        if "mount" not in args:
            continue
        if not any(os.path.abspath(a) == mnt for a in args if a.startswith("/")) \
                and mnt not in args:
            continue
        if pid_alive(pid):
            res.append(pid)
    return res


def find_daemon_pid(mnt):
    """The daemon pid serving `mnt` (prefers the one holding /dev/fuse)."""
    pids = find_daemon_pids(mnt)
    if not pids:
        return None
    fuse_holders = [p for p in pids if _has_dev_fuse_open(p)]
    if fuse_holders:
        return fuse_holders[-1]
    return pids[-1]


def _drop_privs(uid, gid, groups=()):
    os.setgroups(list(groups))
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


# --------------------------------------------------------------------------
# run_as / run_as_cmd

class RemoteError(Exception):
    """An exception raised in a run_as child that could not be pickled."""


def run_as(uid, gid, fn, *args, groups=()):
    """Run fn(*args) in a forked child with uid/gid/groups; return its result.

    OSErrors are re-raised in the parent as OSError(errno, strerror, filename)
    (so PermissionError etc. are preserved); other exceptions are re-raised as
    themselves if picklable, else as RemoteError(repr)."""
    sys.stdout.flush()
    sys.stderr.flush()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(r)
            try:
                _drop_privs(uid, gid, groups)
                payload = ("ok", fn(*args))
            except OSError as e:
                payload = ("oserror", (e.errno, e.strerror, e.filename,
                                       e.filename2))
            except BaseException as e:  # noqa: BLE001
                tb = traceback.format_exc()
                try:
                    pickle.dumps(e)
                    payload = ("exc", e, tb)
                except Exception:  # noqa: BLE001
                    payload = ("repr", repr(e), tb)
            try:
                data = pickle.dumps(payload)
            except Exception as e:  # noqa: BLE001 - unpicklable result
                data = pickle.dumps(("repr", "unpicklable result: " + repr(e), ""))
            with os.fdopen(w, "wb") as f:
                f.write(data)
        except BaseException:  # noqa: BLE001
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        raise RemoteError(f"run_as child died without a result (status {status})")
    payload = pickle.loads(data)
    kind = payload[0]
    if kind == "ok":
        return payload[1]
    if kind == "oserror":
        en, msg, fn1, fn2 = payload[1]
        if en is None:
            raise OSError(msg)
        if fn2 is not None:
            raise OSError(en, msg, fn1, None, fn2)
        if fn1 is not None:
            raise OSError(en, msg, fn1)
        raise OSError(en, msg)
    if kind == "exc":
        raise payload[1]
    raise RemoteError(payload[1] + "\n" + payload[2])


def run_as_cmd(uid, gid, argv, groups=(), **kw):
    """subprocess.run(argv) with the given credentials; text output captured
    unless overridden."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", CMD_TIMEOUT)
    return subprocess.run(
        [str(a) for a in argv],
        preexec_fn=lambda: _drop_privs(uid, gid, groups), **kw)


# --------------------------------------------------------------------------
# session-level fixtures

@pytest.fixture(scope="session", autouse=True)
def _require_dev_fuse():
    if not os.path.exists("/dev/fuse"):
        pytest.skip("/dev/fuse is missing: FUSE integration tests skipped")
    yield


def _resolve_eddy_bin():
    env = os.environ.get("EDDYFS_BIN")
    if env:
        return env
    asan = REPO / "build" / "asan" / "eddyfs"
    if asan.exists():
        return str(asan)
    return str(REPO / "build" / "eddyfs")


@pytest.fixture(scope="session")
def eddy_bin():
    b = _resolve_eddy_bin()
    if not (os.path.isfile(b) and os.access(b, os.X_OK)):
        pytest.fail(f"eddyfs binary not found or not executable: {b} "
                    "(build it, or set EDDYFS_BIN)")
    return b


class _DevFuseMode:
    """Makes /dev/fuse world-accessible on demand and restores its original
    mode when the last pytest session that opened it up ends.  Concurrent
    sessions coordinate through files under WORK_ROOT (flock-protected), so
    that a session starting while another has already opened /dev/fuse up
    does not take 0666 for the original mode."""

    def __init__(self):
        self.active = False
        self.lock = WORK_ROOT / ".dev_fuse.lock"
        self.orig_file = WORK_ROOT / ".dev_fuse.orig"
        self.users = WORK_ROOT / ".dev_fuse.users"

    def _locked(self):
        import fcntl
        WORK_ROOT.mkdir(parents=True, exist_ok=True)
        os.chmod(WORK_ROOT, 0o755)
        fd = os.open(self.lock, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def open_up(self):
        if self.active:
            if stat.S_IMODE(os.stat("/dev/fuse").st_mode) != 0o666:
                os.chmod("/dev/fuse", 0o666)
            return
        fd = self._locked()
        try:
            self.users.mkdir(exist_ok=True)
            # No record: nobody (using this scheme) has changed the mode, so
            # the current one is the original.  A record left by a crashed
            # session holds the true original and is kept.
            if not self.orig_file.exists():
                self.orig_file.write_text(
                    oct(stat.S_IMODE(os.stat("/dev/fuse").st_mode)))
            (self.users / str(os.getpid())).touch()
            self.active = True
            if stat.S_IMODE(os.stat("/dev/fuse").st_mode) != 0o666:
                os.chmod("/dev/fuse", 0o666)
        finally:
            os.close(fd)

    def restore(self):
        if not self.active:
            return
        fd = self._locked()
        try:
            try:
                (self.users / str(os.getpid())).unlink()
            except FileNotFoundError:
                pass
            live = [u for u in os.listdir(self.users)
                    if pid_alive(int(u)) and int(u) != os.getpid()]
            if not live:
                try:
                    os.chmod("/dev/fuse", int(self.orig_file.read_text(), 8))
                    self.orig_file.unlink()
                except (OSError, ValueError):
                    pass
                for u in os.listdir(self.users):
                    try:
                        (self.users / u).unlink()
                    except OSError:
                        pass
        finally:
            os.close(fd)
            self.active = False


@pytest.fixture(scope="session")
def dev_fuse_access():
    m = _DevFuseMode()
    yield m
    m.restore()


def user_allow_other():
    """True if /etc/fuse.conf lets non-root users use allow_other."""
    try:
        with open("/etc/fuse.conf") as f:
            return any(l.strip() == "user_allow_other" for l in f)
    except OSError:
        return False


# --------------------------------------------------------------------------
# per-test work dir, sanitizer env, cleanup

_counter = itertools.count()


class _TestContext:
    def __init__(self, root):
        self.root = root
        self.san_dir = root / "sanitizer"
        self.logs = []          # daemon logs to check (Path, Mount-or-None)
        self.mounts = []        # Mount objects
        self.procs = []         # Popen objects from spawn()
        self.extra_mountpoints = []
        self.n = itertools.count()

    def sanitizer_env(self, env=None):
        e = base_env() if env is None else dict(env)
        base = str(self.san_dir)
        asan = e.get("ASAN_OPTIONS", "")
        e["ASAN_OPTIONS"] = (asan + ":" if asan else "") + f"log_path={base}/asan"
        ubsan = e.get("UBSAN_OPTIONS", "")
        e["UBSAN_OPTIONS"] = ((ubsan + ":" if ubsan else "")
                              + f"print_stacktrace=1:log_path={base}/ubsan")
        lsan = e.get("LSAN_OPTIONS", "")
        e["LSAN_OPTIONS"] = (lsan + ":" if lsan else "") + f"log_path={base}/lsan"
        return e


# contract env vars that would change how a mount behaves; stripped from the
# inherited environment so that tests are deterministic (EDDYFS_DEBUG and
# EDDYFS_THREADS pass through on purpose).
_STRIP_ENV = ("EDDYFS_CLIENT_ID", "EDDYFS_LOG_FILE", "EDDYFS_LOG_DIR",
              "EDDYFS_BACKGROUND", "EDDYFS_OPTIONS", "EDDYFS_CHAOS",
              "EDDYFS_DECISION_LOG", "EDDYFS_REPLAY", "CHAOSFS_CLIENT_ID",
              "EDDYFS_TEST_DAEMON_ACCESS", "EDDYFS_COMMIT_WINDOW") + tuple(
    p + v for p in ("EDDYFS_", "CHAOSFS_")
    for v in ("META_TTL_MS", "WRITE_DELAY_MS", "RENAME_DELAY_MS", "DROP_PROB",
              "DROP_ERRNO", "SEED"))


def base_env(**extra):
    """os.environ without the EDDYFS_* variables that alter mount behaviour,
    plus `extra`."""
    e = {k: v for k, v in os.environ.items() if k not in _STRIP_ENV}
    e.update({k: str(v) for k, v in extra.items()})
    return e


def _safe_name(nodeid):
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::")[-1])
    return name[:60]


def force_unmount(mp, eddy_bin=None, env=None):
    """Unmount mp by any means: eddyfs umount, fusermount3 -u -z, umount -l.
    Returns a list of strings describing what was tried."""
    notes = []
    mp = str(mp)
    if eddy_bin and is_mounted(mp) and (mount_fstype(mp) or "").startswith("fuse.eddyfs"):
        try:
            r = subprocess.run([eddy_bin, "umount", "--mount", mp],
                               capture_output=True, text=True,
                               timeout=CMD_TIMEOUT, env=env)
            notes.append(f"eddyfs umount {mp}: rc={r.returncode} {r.stderr.strip()}")
        except subprocess.TimeoutExpired:
            notes.append(f"eddyfs umount {mp}: timed out")
    if is_mounted(mp):
        r = subprocess.run(["fusermount3", "-u", "-z", mp],
                           capture_output=True, text=True, timeout=CMD_TIMEOUT)
        notes.append(f"fusermount3 -u -z {mp}: rc={r.returncode} {r.stderr.strip()}")
    if is_mounted(mp):
        r = subprocess.run(["umount", "-l", mp],
                           capture_output=True, text=True, timeout=CMD_TIMEOUT)
        notes.append(f"umount -l {mp}: rc={r.returncode} {r.stderr.strip()}")
    return notes


@pytest.fixture
def _ctx(request):
    WORK_ROOT.mkdir(parents=True, exist_ok=True)
    os.chmod(WORK_ROOT, 0o755)
    root = WORK_ROOT / f"{os.getpid()}-{next(_counter)}-{_safe_name(request.node.nodeid)}"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir()
    os.chmod(root, 0o755)
    ctx = _TestContext(root)
    ctx.san_dir.mkdir()
    os.chmod(ctx.san_dir, 0o1777)
    yield ctx
    _teardown(ctx, request)


def _teardown(ctx, request):
    problems = []
    b = _resolve_eddy_bin()
    env = ctx.sanitizer_env()
    # 1. unmount the Mount objects (normal path), remembering daemon pids
    pids = []
    for m in reversed(ctx.mounts):
        try:
            if m._pid is not None:
                pids.append(m._pid)
            elif is_mounted(m.mnt):
                p = find_daemon_pid(m.mnt)
                if p:
                    pids.append(p)
        except Exception:  # noqa: BLE001
            pass
        try:
            if is_mounted(m.mnt):
                m.umount()
        except Exception as e:  # noqa: BLE001
            problems.append(f"umount of {m.mnt} raised {e!r}")
    # 2. anything else mounted below the work dir
    for mp in mounts_under(ctx.root):
        for p in find_daemon_pids(mp):
            pids.append(p)
        notes = force_unmount(mp, b, env)
        if is_mounted(mp):
            problems.append(f"could not unmount {mp}: {notes}")
    # 3. processes the test spawned
    for p in ctx.procs:
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=WAIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    # 4. wait (bounded) for the daemons to exit so that their leak reports
    #    are written
    for pid in set(pids):
        try:
            wait_for(lambda: not pid_alive(pid), what=f"daemon {pid} to exit")
        except AssertionError:
            problems.append(f"daemon pid {pid} still running after unmount; killing it")
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    # 5. look at logs and sanitizer reports
    for log, m in ctx.logs:
        if m is not None and getattr(m, "allow_log_errors", False):
            continue
        try:
            text = Path(log).read_text(errors="replace")
        except OSError:
            continue
        bad = sanitizer_findings(text)
        if bad:
            tail = "\n".join(text.splitlines()[-60:])
            problems.append(f"daemon log {log} has error lines:\n  "
                            + "\n  ".join(bad[:20])
                            + f"\n--- tail of {log} ---\n{tail}")
    for f in sorted(ctx.san_dir.iterdir()):
        try:
            text = f.read_text(errors="replace")
        except OSError:
            continue
        if text.strip():
            problems.append(f"sanitizer report {f}:\n{text[-6000:]}")
    # 6. clean up the work dir, but never while something is mounted in it
    if not mounts_under(ctx.root) and not os.environ.get("EDDYFS_TEST_KEEP"):
        shutil.rmtree(ctx.root, ignore_errors=True)
    if problems:
        pytest.fail("teardown problems:\n" + "\n\n".join(problems), pytrace=False)


@pytest.fixture
def workdir(_ctx):
    return _ctx.root


# --------------------------------------------------------------------------
# Mount

class Mount:
    def __init__(self, ctx, eddy_bin, backing, mnt, log, as_user, env, proc):
        self._ctx = ctx
        self.eddy_bin = eddy_bin
        self.source = str(backing)
        self.backend = ("mem" if self.source.startswith(MEM) else
                        "volume" if self.source.startswith(SQLITE) else "dir")
        self.backing = Path(backing) if self.backend == "dir" else None
        self.volume = (Path(self.source[len(SQLITE):]) if self.backend == "volume"
                       else None)
        self.mnt = Path(mnt)
        self.log = Path(log)
        self.as_user = as_user
        self.env = env
        self.mount_result = proc
        self.allow_log_errors = False
        self._pid = None

    @property
    def uid(self):
        return 0 if self.as_user is None else self.as_user

    @property
    def gid(self):
        return 0 if self.as_user is None else _gid_for(self.as_user)

    @property
    def pid(self):
        if self._pid is None or not pid_alive(self._pid):
            self._pid = wait_for(lambda: find_daemon_pid(self.mnt),
                                 what=f"daemon pid for {self.mnt}")
        return self._pid

    def run(self, *args, **kw):
        """Run `eddyfs <args>` as the mount's user; CompletedProcess."""
        argv = [self.eddy_bin] + [str(a) for a in args]
        kw.setdefault("env", self.env)
        if self.as_user is None:
            kw.setdefault("capture_output", True)
            kw.setdefault("text", True)
            kw.setdefault("timeout", CMD_TIMEOUT)
            return subprocess.run(argv, **kw)
        return run_as_cmd(self.uid, self.gid, argv, **kw)

    def stats(self):
        r = self.run("stats", "--mount", str(self.mnt))
        assert r.returncode == 0, (
            f"eddyfs stats --mount {self.mnt} failed rc={r.returncode}\n"
            f"stdout:{r.stdout}\nstderr:{r.stderr}")
        return parse_stats(r.stdout)

    def is_mounted(self):
        return is_mounted(self.mnt)

    def umount(self):
        """eddyfs umount --mount (as root); no-op if not mounted.  Returns the
        CompletedProcess, or None if nothing was mounted."""
        if not is_mounted(self.mnt):
            return None
        try:
            if self._pid is None:
                self._pid = find_daemon_pid(self.mnt)
        except Exception:  # noqa: BLE001
            pass
        r = subprocess.run([self.eddy_bin, "umount", "--mount", str(self.mnt)],
                           capture_output=True, text=True, timeout=CMD_TIMEOUT,
                           env=self.env)
        assert r.returncode == 0, (
            f"eddyfs umount --mount {self.mnt} failed rc={r.returncode}\n"
            f"stdout:{r.stdout}\nstderr:{r.stderr}")
        return r

    def __repr__(self):
        return f"<Mount {self.backing} on {self.mnt}>"


def parse_stats(text):
    d = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        key = parts[0].rstrip(":")
        val = parts[1].strip() if len(parts) > 1 else ""
        try:
            d[key] = int(val)
        except ValueError:
            try:
                d[key] = float(val)
            except ValueError:
                d[key] = val
    return d


def _gid_for(uid):
    import pwd
    try:
        return pwd.getpwuid(uid).pw_gid
    except KeyError:
        return uid


def _mkdir_traversable(p):
    p = Path(p)
    p.mkdir(parents=False, exist_ok=False)
    os.chmod(p, 0o755)
    return p


@pytest.fixture
def backend(request):
    """"dir" unless a test is parametrized (all_backends)."""
    return getattr(request, "param", "dir")


@pytest.fixture
def make_mount(_ctx, eddy_bin, dev_fuse_access, backend):
    def factory(backing=None, options=_DEFAULT, extra_args=(), env=None,
                as_user=None, check=True, mnt=None):
        """env: full environment for the eddyfs process (default: base_env());
        the sanitizer log_path settings are added to it.  mnt: use this
        (existing, empty) mountpoint instead of a fresh <workdir>/mntN; it
        should be below the work dir so the catch-all teardown sees it.
        backing None: a fresh backing dir, or "mem:" on the mem backend."""
        n = next(_ctx.n)
        if options is _DEFAULT:
            options = DEFAULT_OPTIONS
            if as_user not in (None, 0) and not user_allow_other():
                # fusermount3 refuses allow_other for users without
                # user_allow_other in /etc/fuse.conf
                options = tuple(o for o in options if o != "allow_other")
        if as_user is not None:
            dev_fuse_access.open_up()
        if backing is None and backend == "mem":
            backing = MEM
        if backing is None and backend == "volume":
            # 4 KiB blocks: holes with the granularity of tmpfs, the native
            # reference, so that the generic scenarios apply unchanged
            backing = SQLITE + str(_format_volume(_ctx, eddy_bin, n,
                                                  ("--block-size", "4K"), as_user))
        if backing is None:
            backing = _mkdir_traversable(_ctx.root / f"backing{n}")
            if as_user is not None:
                os.chown(backing, as_user, _gid_for(as_user))
        if not str(backing).startswith((MEM, SQLITE)):
            backing = Path(backing)
        if mnt is None:
            mnt = _mkdir_traversable(_ctx.root / f"mnt{n}")
        mnt = Path(mnt)
        if as_user is not None:
            os.chown(mnt, as_user, _gid_for(as_user))
        log = _ctx.root / f"{n}.log"
        if as_user is not None:
            # make sure the daemon can create its log
            log.touch()
            os.chown(log, as_user, _gid_for(as_user))
        argv = [eddy_bin, "mount", "--background", "--log-file", str(log)]
        if options:
            argv += ["-o", ",".join(options) if not isinstance(options, str) else options]
        argv += [str(a) for a in extra_args]
        argv += [str(backing), str(mnt)]
        full_env = _ctx.sanitizer_env(env)
        m = Mount(_ctx, eddy_bin, backing, mnt, log, as_user, full_env, None)
        _ctx.mounts.append(m)
        _ctx.logs.append((log, m))
        if as_user is None:
            r = subprocess.run(argv, capture_output=True, text=True,
                               timeout=CMD_TIMEOUT, env=full_env)
        else:
            r = run_as_cmd(as_user, _gid_for(as_user), argv, env=full_env)
        m.mount_result = r
        if check:
            assert r.returncode == 0, (
                f"mount failed: {' '.join(argv)}\nrc={r.returncode}\n"
                f"stdout:{r.stdout}\nstderr:{r.stderr}\nlog:{_read(log)}")
            assert is_mounted(mnt), (
                f"eddyfs mount --background returned 0 but {mnt} is not in "
                f"/proc/self/mounts\nstderr:{r.stderr}")
        return m

    return factory


def _format_volume(ctx, eddy_bin, n, args, as_user):
    """A new volume <workdir>/volume<n>, formatted by AS_USER (the owner of
    its root directory and its files) or root."""
    vol = _mkdir_traversable(ctx.root / f"volume{n}")
    argv = [eddy_bin, "format", *[str(a) for a in args], str(vol)]
    if as_user is None:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=CMD_TIMEOUT,
                           env=ctx.sanitizer_env())
    else:
        os.chown(vol, as_user, _gid_for(as_user))
        r = run_as_cmd(as_user, _gid_for(as_user), argv, env=ctx.sanitizer_env())
    assert r.returncode == 0, f"eddyfs format {vol} failed: {r.stderr}"
    return vol


@pytest.fixture
def make_volume(_ctx, eddy_bin):
    """make_volume(*format_args, as_user=None) -> Path of a new volume."""
    def make(*args, as_user=None):
        return _format_volume(_ctx, eddy_bin, f"v{next(_ctx.n)}", args, as_user)
    return make


def _read(p):
    try:
        return Path(p).read_text(errors="replace")[-4000:]
    except OSError:
        return "<unreadable>"


@pytest.fixture
def mount(make_mount):
    return make_mount()


@pytest.fixture
def native_dir(_ctx, backend):
    """The native reference of the backend under test: a plain directory
    on the filesystem of the backing dirs (dir), or on a fresh tmpfs (mem,
    which behaves like tmpfs: RAM, no per-inode xattr limit, 4 KiB holes;
    volume, which has no per-inode xattr limit and, formatted with 4 KiB
    blocks, 4 KiB holes)."""
    base = _ctx.root
    if backend in ("mem", "volume"):
        base = _mkdir_traversable(_ctx.root / "native-tmpfs")
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "eddyfs-native",
                        str(base)], check=True, timeout=CMD_TIMEOUT)
    d = base / "native"
    n = 0
    while d.exists():
        n += 1
        d = base / f"native{n}"
    yield _mkdir_traversable(d)
    if backend in ("mem", "volume"):
        subprocess.run(["umount", "-l", str(base)], timeout=CMD_TIMEOUT)


@pytest.fixture
def run_eddy(_ctx, eddy_bin):
    """run_eddy(*args, env=None, as_user=None) -> CompletedProcess of
    `eddyfs args...` with sanitizer reports redirected into the test's
    sanitizer dir (checked at teardown)."""
    def run(*args, env=None, as_user=None, **kw):
        argv = [eddy_bin] + [str(a) for a in args]
        full_env = _ctx.sanitizer_env(env)
        if as_user is None:
            kw.setdefault("capture_output", True)
            kw.setdefault("text", True)
            kw.setdefault("timeout", CMD_TIMEOUT)
            return subprocess.run(argv, env=full_env, **kw)
        return run_as_cmd(as_user, _gid_for(as_user), argv, env=full_env, **kw)
    return run


@pytest.fixture
def spawn(_ctx):
    """spawn(argv, **popen_kw) -> Popen; SIGTERMed/killed at teardown.
    The sanitizer env is applied (pass env= to add to it)."""
    def sp(argv, env=None, **kw):
        p = subprocess.Popen([str(a) for a in argv], env=_ctx.sanitizer_env(env), **kw)
        _ctx.procs.append(p)
        return p
    return sp


@pytest.fixture
def register_log(_ctx):
    """register_log(path): also check this daemon log at teardown."""
    def reg(path):
        _ctx.logs.append((Path(path), None))
    return reg


def mkdir_traversable(p):
    """mkdir p with mode 0755 (helper for tests)."""
    return _mkdir_traversable(p)
