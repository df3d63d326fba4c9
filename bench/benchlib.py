"""Shared helpers for bench/run and bench/scale (stdlib only, /usr/bin/python3)."""

import io
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tarfile
import time

BENCH_DIR = os.path.dirname(os.path.realpath(__file__))
TOOLS_DIR = os.path.join(BENCH_DIR, "tools")
DEFAULT_EDDYFS = os.path.realpath(os.path.join(BENCH_DIR, "..", "build", "eddyfs"))

_T0 = time.monotonic()


def log(msg):
    sys.stderr.write("[%7.1fs] %s\n" % (time.monotonic() - _T0, msg))
    sys.stderr.flush()


class Interrupted(BaseException):
    """Raised from SIGTERM/SIGHUP handlers so finally-blocks still run."""


def install_signal_handlers():
    def handler(signum, _frame):
        raise Interrupted("signal %d" % signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)
    # SIGINT may be inherited as ignored (e.g. started with & from a script); make
    # Ctrl-C / kill -INT always raise KeyboardInterrupt so the cleanup runs.
    signal.signal(signal.SIGINT, signal.default_int_handler)


def ignore_signals():
    """Called before cleanup: do not let a second Ctrl-C abort the unmounts."""
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)


# --------------------------------------------------------------------- tools

def compile_tools(tmpdir):
    """Compile bench/tools/fileops.c with cc -O2 into tmpdir; return the binary path."""
    src = os.path.join(TOOLS_DIR, "fileops.c")
    out = os.path.join(tmpdir, "fileops")
    cc = os.environ.get("CC", "cc")
    subprocess.run([cc, "-O2", "-Wall", "-o", out, src, "-lm"], check=True)
    return out


def fileops(binary, *args, timeout=3600, check=True):
    """Run the fileops helper; return dict(ok, errors, seconds, stderr)."""
    p = subprocess.run([binary] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout)
    m = re.search(r"ok=(\d+) errors=(\d+) seconds=([0-9.]+)", p.stdout)
    if not m:
        raise RuntimeError("fileops %s failed (rc %d): %s" % (
            " ".join(map(str, args)), p.returncode, p.stderr.strip()[:500]))
    res = {"ok": int(m.group(1)), "errors": int(m.group(2)),
           "seconds": float(m.group(3)), "stderr": p.stderr.strip()}
    if check and res["errors"]:
        raise RuntimeError("fileops %s: %d errors: %s" % (
            " ".join(map(str, args)), res["errors"], res["stderr"][:500]))
    return res


def run(cmd, timeout=3600, check=True, **kw):
    return subprocess.run(cmd, timeout=timeout, check=check, **kw)


def timed(cmd, timeout=3600, **kw):
    """Run cmd (list), stdout/stderr captured; return wall seconds. Raises on failure."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=kw.pop("stdout", subprocess.DEVNULL),
                       stderr=subprocess.PIPE, text=True, timeout=timeout, **kw)
    t = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError("%s failed (rc %d): %s" % (" ".join(cmd), p.returncode,
                                                       p.stderr.strip()[:500]))
    return t


_drop_warned = False


def drop_caches():
    """sync + echo 3 > /proc/sys/vm/drop_caches. Returns False if not permitted."""
    global _drop_warned
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError as e:
        if not _drop_warned:
            log("WARNING: cannot drop caches (%s); 'cold' figures will be warm" % e)
            _drop_warned = True
        return False


# ------------------------------------------------------------------ /proc

def _unescape_mount(s):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def mounts():
    """List of (mountpoint, fstype) from /proc/self/mounts."""
    out = []
    with open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3:
                out.append((_unescape_mount(parts[1]), parts[2]))
    return out


def mount_type(path):
    path = os.path.realpath(path)
    t = None
    for mp, fstype in mounts():
        if mp == path:
            t = fstype  # last one wins (stacked mounts)
    return t


def is_mounted(path):
    return mount_type(path) is not None


def find_daemon_pid(mnt, hint=None):
    """PID of the process whose cmdline contains mnt (and, if given, whose argv[0]
    basename contains hint). Prefers an exact argument match."""
    mnt = os.path.realpath(mnt)
    best = None
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                raw = f.read()
        except OSError:
            continue
        if not raw:
            continue
        argv = [a.decode(errors="replace") for a in raw.rstrip(b"\0").split(b"\0")]
        if hint and hint not in os.path.basename(argv[0]):
            continue
        if mnt in argv or mnt.rstrip("/") in [a.rstrip("/") for a in argv]:
            return int(d)
        if best is None and any(mnt in a for a in argv):
            best = int(d)
    return best


def proc_status(pid):
    """Dict of selected /proc/PID/status fields (kB values as ints)."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "VmSize", "RssAnon", "RssFile"):
                    out[k] = int(v.split()[0])
                elif k == "Threads":
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def rss_kib(pid):
    return proc_status(pid).get("VmRSS") if pid else None


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None


def fd_limit(pid):
    try:
        with open("/proc/%d/limits" % pid) as f:
            for line in f:
                if line.startswith("Max open files"):
                    p = line.split()
                    return "%s/%s" % (p[3], p[4])
    except OSError:
        pass
    return None


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # zombie?
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def wait_pid_gone(pid, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)


# ------------------------------------------------------------------ mounts

class Contender:
    """A filesystem under test. target is where the benchmark does its I/O."""
    fuse = False
    daemon_hint = None

    def __init__(self, name, backing, mnt=None):
        self.name = name
        self.backing = backing
        self.mnt = mnt
        self.target = backing
        self.pid = None

    def mount(self):
        pass

    def umount(self):
        return True

    def remount(self):
        self.umount()
        self.mount()

    def mounted(self):
        return True

    def stats(self):
        return None


class FuseContender(Contender):
    fuse = True

    def __init__(self, name, backing, mnt, preexec=None):
        super().__init__(name, backing, mnt)
        self.target = mnt
        self.preexec = preexec
        self.mounted_flag = False

    def mounted(self):
        return is_mounted(self.mnt)

    def mount_cmd(self):
        raise NotImplementedError

    def umount_cmds(self):
        return [["fusermount3", "-u", self.mnt]]

    def mount(self):
        os.makedirs(self.backing, exist_ok=True)
        os.makedirs(self.mnt, exist_ok=True)
        if is_mounted(self.mnt):
            raise RuntimeError("%s already mounted" % self.mnt)
        _ACTIVE.append(self)
        p = subprocess.run(self.mount_cmd(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=120, preexec_fn=self.preexec,
                           stdin=subprocess.DEVNULL, start_new_session=True)
        if p.returncode != 0:
            raise RuntimeError("%s mount failed (rc %d): %s" % (
                self.name, p.returncode, (p.stderr or p.stdout).strip()[:500]))
        end = time.monotonic() + 10
        while not is_mounted(self.mnt):
            if time.monotonic() > end:
                raise RuntimeError("%s: %s not mounted after mount command" % (self.name, self.mnt))
            time.sleep(0.05)
        os.stat(self.mnt)  # mount answers
        self.pid = None
        end = time.monotonic() + 5
        while self.pid is None and time.monotonic() < end:
            self.pid = find_daemon_pid(self.mnt, self.daemon_hint)
            if self.pid is None:
                time.sleep(0.05)

    def umount(self):
        """Unmount; escalate to a lazy unmount. Returns True if it is gone."""
        pid = self.pid or (find_daemon_pid(self.mnt, self.daemon_hint) if self.mnt else None)
        ok = not is_mounted(self.mnt)
        attempts = 0
        while not ok and attempts < 10:
            for cmd in self.umount_cmds():
                try:
                    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   timeout=60)
                except (subprocess.TimeoutExpired, OSError) as e:
                    log("%s: %s: %s" % (self.name, " ".join(cmd), e))
                if not is_mounted(self.mnt):
                    ok = True
                    break
            if not ok:
                attempts += 1
                time.sleep(0.3)
        if not ok:
            log("%s: unmount of %s failing, lazy unmount" % (self.name, self.mnt))
            subprocess.run(["fusermount3", "-u", "-z", self.mnt], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=60)
            ok = not is_mounted(self.mnt)
        if pid and not wait_pid_gone(pid, 15):
            log("%s: daemon %d still running after unmount; SIGTERM" % (self.name, pid))
            try:
                os.kill(pid, signal.SIGTERM)
                if not wait_pid_gone(pid, 5):
                    os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if ok and self in _ACTIVE:
            _ACTIVE.remove(self)
        self.pid = None
        return ok


class Bindfs(FuseContender):
    daemon_hint = "bindfs"

    def __init__(self, name, backing, mnt, extra=(), preexec=None):
        super().__init__(name, backing, mnt, preexec)
        self.extra = list(extra)

    def mount_cmd(self):
        return ["bindfs"] + self.extra + [self.backing, self.mnt]


class Eddyfs(FuseContender):
    daemon_hint = "eddyfs"

    def __init__(self, name, backing, mnt, binary, extra=(), preexec=None):
        super().__init__(name, backing, mnt, preexec)
        self.binary = binary
        self.extra = list(extra)

    def mount_cmd(self):
        return [self.binary, "mount", "--background"] + self.extra + [self.backing, self.mnt]

    def umount_cmds(self):
        return [[self.binary, "umount", "--mount", self.mnt], ["fusermount3", "-u", self.mnt]]

    def stats(self):
        """(raw text, dict) of 'eddyfs stats --mount MNT', or None if it fails."""
        try:
            p = subprocess.run([self.binary, "stats", "--mount", self.mnt],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               timeout=30)
        except (subprocess.TimeoutExpired, OSError):
            return None
        if p.returncode != 0:
            return None
        d = {}
        for line in p.stdout.splitlines():
            parts = line.split(None, 1)
            if len(parts) == 2:
                v = parts[1].strip()
                try:
                    v = int(v)
                except ValueError:
                    try:
                        v = float(v)
                    except ValueError:
                        pass
                d[parts[0]] = v
        return p.stdout, d


_ACTIVE = []


def cleanup_mounts():
    """Unmount everything we mounted (called from finally)."""
    ok = True
    for c in list(_ACTIVE):
        try:
            if not c.umount():
                ok = False
                log("ERROR: could not unmount %s" % c.mnt)
        except Exception as e:  # keep going
            ok = False
            log("ERROR: unmount %s: %s" % (c.mnt, e))
    return ok


def mounts_under(path):
    path = os.path.realpath(path).rstrip("/") + "/"
    return [mp for mp, _ in mounts() if (mp + "/").startswith(path)]


def safe_rmtree(path):
    """rm -rf path unless something is still mounted below it."""
    if not os.path.exists(path):
        return True
    left = mounts_under(path)
    if left:
        log("NOT removing %s: still mounted: %s" % (path, ", ".join(left)))
        return False
    shutil.rmtree(path, ignore_errors=True)
    return True


def nofile_preexec(limit):
    def f():
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    return f


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def warn_if_busy():
    la = loadavg()
    try:
        if float(la.split()[0]) > 0.5:
            log("WARNING: machine not idle (loadavg %s); figures will be noisy" % la)
    except ValueError:
        pass
    return la


def tool_version(cmd):
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=10)
        return p.stdout.strip().splitlines()[0] if p.stdout.strip() else None
    except Exception:
        return None


def make_tarball(path, nfiles, ndirs, seed=20240601):
    """Deterministic synthetic source tree: ndirs dirs (depth <= 4), nfiles files of
    1-20 KiB of printable pseudo-source text."""
    rng = random.Random(seed)
    alphabet = b"abcdefghijklmnopqrstuvwxyz_ ;{}()=+*0123456789\n\t"
    pool = bytes(rng.choice(alphabet) for _ in range(1 << 16))
    pool = pool * 2
    dirs = ["tree"]
    depth = {"tree": 0}
    for i in range(ndirs):
        parent = rng.choice([d for d in dirs if depth[d] < 4] or ["tree"])
        d = "%s/%s%03d" % (parent, rng.choice(["src", "lib", "inc", "mod", "test"]), i)
        dirs.append(d)
        depth[d] = depth[parent] + 1
    mtime = 1700000000
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tf:
        for d in dirs:
            ti = tarfile.TarInfo(d)
            ti.type = tarfile.DIRTYPE
            ti.mode = 0o755
            ti.mtime = mtime
            ti.uname = ti.gname = "root"
            tf.addfile(ti)
        for i in range(nfiles):
            d = dirs[1 + rng.randrange(len(dirs) - 1)] if len(dirs) > 1 else dirs[0]
            size = rng.randint(1024, 20 * 1024)
            off = rng.randrange(1 << 16)
            ti = tarfile.TarInfo("%s/f%05d.%s" % (d, i, rng.choice(["c", "h", "py", "txt"])))
            ti.size = size
            ti.mode = 0o644
            ti.mtime = mtime
            ti.uname = ti.gname = "root"
            tf.addfile(ti, io.BytesIO(pool[off:off + size]))
    return len(dirs), nfiles
