"""Mount lifecycle: foreground mounts and the ways they end, data
persistence, and mounts by an ordinary user. The tests marked all_backends
also run on the mem backend, where the data ends with the mount (no backing
directory to check afterwards)."""

import os
import signal
import subprocess
import threading

import pytest

from conftest import (CMD_TIMEOUT, MEM, all_backends, is_mounted,
                      mkdir_traversable, mount_fstype, pid_alive, run_as,
                      run_as_cmd, sanitizer_findings, wait_for)

USER = 65534   # nobody
GROUP = 65534  # nogroup


class Foreground:
    def __init__(self, proc, backing, mnt, log, errfile):
        self.proc, self.backing, self.mnt = proc, backing, mnt
        self.log, self.errfile = log, errfile

    def stderr(self):
        try:
            return self.errfile.read_text(errors="replace")
        except OSError:
            return ""

    def wait_exit(self):
        try:
            return self.proc.wait(timeout=CMD_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"foreground eddyfs did not exit; stderr:\n{self.stderr()}")

    def check_clean(self):
        bad = sanitizer_findings(self.stderr())
        assert not bad, "foreground daemon stderr:\n" + self.stderr()


@pytest.fixture
def fg_mount(eddy_bin, workdir, spawn, register_log, backend):
    counter = iter(range(100))

    def start(options=("allow_other", "default_permissions")):
        n = next(counter)
        b = MEM if backend == "mem" else mkdir_traversable(workdir / f"fgb{n}")
        m = mkdir_traversable(workdir / f"fgm{n}")
        log = workdir / f"fg{n}.log"
        err = workdir / f"fg{n}.stderr"
        register_log(log)
        argv = [eddy_bin, "mount", "--log-file", log]
        if options:
            argv += ["-o", ",".join(options)]
        argv += [b, m]
        with open(err, "w") as ef:
            p = spawn(argv, stdout=ef, stderr=subprocess.STDOUT)
        fg = Foreground(p, None if backend == "mem" else b, m, log, err)

        def ready():
            if p.poll() is not None:
                pytest.fail(f"foreground eddyfs exited early rc={p.returncode}:\n"
                            + fg.stderr())
            if mount_fstype(m) != "fuse.eddyfs":
                return False
            try:
                os.listdir(m)
                return True
            except OSError:
                return False
        wait_for(ready, what=f"foreground mount on {m} to answer")
        return fg
    return start


def _use(fg):
    (fg.mnt / "before").write_text("written before unmount")
    os.mkdir(fg.mnt / "dir")
    (fg.mnt / "dir" / "inner").write_bytes(b"\0\1\2" * 1000)
    os.symlink("before", fg.mnt / "link")


def _check_backing(fg):
    if fg.backing is None:          # mem: the data ended with the mount
        return
    assert (fg.backing / "before").read_text() == "written before unmount"
    assert (fg.backing / "dir" / "inner").read_bytes() == b"\0\1\2" * 1000
    assert os.readlink(fg.backing / "link") == "before"


@all_backends
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT],
                         ids=["SIGTERM", "SIGINT"])
def test_foreground_signal(fg_mount, sig):
    fg = fg_mount()
    _use(fg)
    fg.proc.send_signal(sig)
    rc = fg.wait_exit()
    assert rc == 0, f"exit status {rc} after {sig!r}; stderr:\n{fg.stderr()}"
    assert not is_mounted(fg.mnt), "mount still present after the daemon exited"
    assert os.listdir(fg.mnt) == []
    _check_backing(fg)
    fg.check_clean()


@all_backends
def test_foreground_signal_while_busy(fg_mount):
    """SIGTERM while a file is open in the mount: the mount is detached at
    once (lazily), the open file keeps working, and the daemon exits 0 once
    the last file is closed, with the data in the backing dir."""
    fg = fg_mount()
    f = open(fg.mnt / "open", "w")
    try:
        f.write("before signal;")
        f.flush()
        fg.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: not is_mounted(fg.mnt), what="lazy detach after SIGTERM")
        assert fg.proc.poll() is None, \
            "daemon exited while a file was still open: " + fg.stderr()
        f.write("after signal")
        f.flush()
        os.fsync(f.fileno())
        with open(f"/proc/self/fd/{f.fileno()}") as again:
            assert again.read() == "before signal;after signal"
    finally:
        f.close()
    rc = fg.wait_exit()
    assert rc == 0, fg.stderr()
    assert not is_mounted(fg.mnt)
    if fg.backing is not None:
        assert (fg.backing / "open").read_text() == "before signal;after signal"
    fg.check_clean()


@all_backends
@pytest.mark.parametrize("cmd", [["fusermount3", "-u"], ["umount"]],
                         ids=["fusermount3", "umount"])
def test_foreground_external_unmount(fg_mount, cmd):
    fg = fg_mount()
    _use(fg)
    r = subprocess.run(cmd + [str(fg.mnt)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rc = fg.wait_exit()
    assert rc == 0, f"exit status {rc} after {cmd}; stderr:\n{fg.stderr()}"
    assert not is_mounted(fg.mnt)
    _check_backing(fg)
    fg.check_clean()


@all_backends
def test_foreground_eddyfs_umount(fg_mount, run_eddy):
    fg = fg_mount()
    _use(fg)
    # reap the daemon as soon as it exits, like a supervising shell would
    reaper = threading.Thread(target=fg.proc.wait, daemon=True)
    reaper.start()
    r = run_eddy("umount", "--mount", fg.mnt)
    assert r.returncode == 0, r.stderr
    # umount waits for the daemon to exit (a zombie counts as exited)
    assert not pid_alive(fg.proc.pid), "eddyfs umount returned before the daemon exited"
    reaper.join(CMD_TIMEOUT)
    assert fg.proc.returncode == 0, fg.stderr()
    _check_backing(fg)
    fg.check_clean()


def test_background_data_persists(make_mount):
    m = make_mount()
    data = os.urandom(300_000)
    (m.mnt / "big").write_bytes(data)
    os.makedirs(m.mnt / "a" / "b" / "c")
    (m.mnt / "a" / "b" / "c" / "leaf").write_text("leaf")
    with open(m.mnt / "appended", "a") as f:
        for i in range(100):
            f.write(f"{i}\n")
    m.umount()
    assert not is_mounted(m.mnt)
    assert (m.backing / "big").read_bytes() == data
    assert (m.backing / "a" / "b" / "c" / "leaf").read_text() == "leaf"
    assert (m.backing / "appended").read_text() == "".join(f"{i}\n" for i in range(100))
    # a second mount of the same backing dir sees everything
    m2 = make_mount(backing=m.backing)
    assert (m2.mnt / "big").read_bytes() == data
    assert sorted(os.listdir(m2.mnt)) == ["a", "appended", "big"]


# --------------------------------------------------------------------------
# ordinary user

def _user_io(mnt):
    p = os.path.join(mnt, "userfile")
    with open(p, "w") as f:
        f.write("hello from nobody")
    os.mkdir(os.path.join(mnt, "udir"))
    os.rename(p, os.path.join(mnt, "udir", "moved"))
    with open(os.path.join(mnt, "udir", "moved")) as f:
        content = f.read()
    st = os.stat(os.path.join(mnt, "udir", "moved"))
    return content, st.st_uid, st.st_gid, sorted(os.listdir(mnt))


def _user_mount(make_mount):
    m = make_mount(as_user=USER)
    assert m.pid, "no daemon found"
    with open(f"/proc/{m.pid}/status") as f:
        uids = [l.split()[1:] for l in f if l.startswith("Uid:")][0]
    assert all(int(u) == USER for u in uids), f"daemon runs with uids {uids}"
    content, uid, gid, names = run_as(USER, GROUP, _user_io, str(m.mnt))
    assert content == "hello from nobody"
    assert (uid, gid) == (USER, GROUP)
    assert names == ["udir"]
    if m.backing is not None:
        st = os.stat(m.backing / "udir" / "moved")
        assert (st.st_uid, st.st_gid) == (USER, GROUP)
    return m


@all_backends
def test_user_mount_unmounted_by_user(make_mount):
    m = _user_mount(make_mount)
    pid = m.pid
    r = run_as_cmd(USER, GROUP, [m.eddy_bin, "umount", "--mount", m.mnt], env=m.env)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert f"unmounted {m.mnt}" in r.stdout.splitlines(), r.stdout
    assert not is_mounted(m.mnt)
    assert not pid_alive(pid)
    if m.backing is not None:
        assert (m.backing / "udir" / "moved").read_text() == "hello from nobody"


@all_backends
def test_user_mount_unmounted_by_root(make_mount):
    m = _user_mount(make_mount)
    pid = m.pid
    r = m.umount()  # eddyfs umount as root
    assert f"unmounted {m.mnt}" in r.stdout.splitlines(), r.stdout
    assert not is_mounted(m.mnt)
    assert not pid_alive(pid)
    if m.backing is not None:
        assert (m.backing / "udir" / "moved").read_text() == "hello from nobody"


@all_backends
def test_user_cannot_unmount_root_mount(make_mount, mount):
    """An ordinary user must not be able to unmount root's mount."""
    r = run_as_cmd(USER, GROUP, [mount.eddy_bin, "umount", "--mount", mount.mnt],
                   env=mount.env)
    assert r.returncode != 0, (r.stdout, r.stderr)
    assert is_mounted(mount.mnt)
    (mount.mnt / "still").write_text("here")


def test_user_mount_permissions_enforced(make_mount, workdir):
    """A user mount of a backing dir containing root-owned 0600 files must
    not let the user read them."""
    b = mkdir_traversable(workdir / "ub")
    os.chown(b, USER, GROUP)
    secret = b / "secret"
    secret.write_text("root only")
    os.chmod(secret, 0o600)
    m = make_mount(backing=b, as_user=USER)
    with pytest.raises(PermissionError):
        run_as(USER, GROUP, lambda p: open(p).read(), str(m.mnt / "secret"))
