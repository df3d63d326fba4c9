"""The volume's own access checks (src/backend/volume/vol_perm.c).

A volume mounted without allow_other checks access rights itself, as the
dir backend's backing filesystem does, instead of the kernel's
default_permissions (which costs a GETATTR of the parent after every
change). These tests run test_permissions' scenarios with those checks
doing all the work, for several uids (the EDDYFS_TEST_DAEMON_ACCESS knob),
and check the real configurations: a root mount and a user's mount without
allow_other.
"""

import errno
import os
import subprocess

import pytest

from conftest import base_env, run_as, _gid_for
from eddy_conform import conform
from test_permissions import SCENARIOS

U1 = 1000


def mount_opts(mnt):
    with open("/proc/self/mounts") as f:
        line = [l for l in f if l.split()[1] == str(mnt)][-1]
    return line.split()[3].split(",")


@pytest.mark.parametrize("backend", ["volume"], indirect=True)
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenarios_checked_by_volume(name, native_dir, make_mount):
    """Every permission scenario, judged by the volume alone: outcomes and
    trees identical to a native directory's."""
    m = make_mount(options=("allow_other",),
                   env=base_env(EDDYFS_TEST_DAEMON_ACCESS="1"))
    assert "default_permissions" not in mount_opts(m.mnt)
    old = os.umask(0o022)
    try:
        conform(native_dir, m, SCENARIOS[name])
    finally:
        os.umask(old)


@pytest.mark.parametrize("backend", ["volume"], indirect=True)
def test_root_mount_without_allow_other(make_mount):
    """The plain root mount: no default_permissions, and root's rules hold
    (read and write anything, execute only what has an x bit)."""
    m = make_mount(options=())
    assert "default_permissions" not in mount_opts(m.mnt)
    p = m.mnt / "f"
    p.write_bytes(b"data")
    os.chmod(p, 0)
    assert p.read_bytes() == b"data"              # root reads mode 000
    assert os.access(p, os.R_OK | os.W_OK)
    assert not os.access(p, os.X_OK)
    with pytest.raises(PermissionError):
        subprocess.run([str(p)], check=False)
    os.chmod(p, 0o100)
    assert os.access(p, os.X_OK)
    d = m.mnt / "d"
    d.mkdir(mode=0)
    (d / "x").write_bytes(b"")                    # root searches and writes 000 dirs
    assert sorted(os.listdir(d)) == ["x"]
    st = m.stats()
    assert st.get("fuse_req_getattr", 0) < 20, st  # no GETATTR per change


def _as_user_checks(root):
    """Run as uid 1000 on its own mount: the owner's bits, others' files."""
    out = {}

    def outcome(key, fn):
        try:
            fn()
            out[key] = "ok"
        except OSError as e:
            out[key] = errno.errorcode.get(e.errno, str(e.errno))

    mine = os.path.join(root, "mine")
    with open(mine, "w") as f:
        f.write("x")
    os.chmod(mine, 0o200)
    outcome("read 0200 own", lambda: open(mine).read())
    outcome("access R 0200 own", lambda: (_ for _ in ()).throw(PermissionError(
        errno.EACCES, "")) if not os.access(mine, os.R_OK) else None)
    os.chmod(mine, 0o400)
    outcome("write 0400 own", lambda: open(mine, "w").close())
    outcome("truncate 0400 own", lambda: os.truncate(mine, 0))
    d = os.path.join(root, "ro")
    os.mkdir(d, 0o500)
    outcome("create in 0500", lambda: open(os.path.join(d, "n"), "w").close())
    outcome("mkdir in 0500", lambda: os.mkdir(os.path.join(d, "n")))
    os.chmod(d, 0o300)
    outcome("list 0300", lambda: os.listdir(d))
    outcome("create in 0300", lambda: open(os.path.join(d, "n"), "w").close())
    os.chmod(d, 0o700)
    theirs = os.path.join(root, "theirs")
    outcome("read root 0640", lambda: open(os.path.join(theirs, "g")).read())
    outcome("read root 0644", lambda: open(os.path.join(theirs, "r")).read())
    outcome("write root 0644", lambda: open(os.path.join(theirs, "r"), "a").close())
    outcome("unlink in root 0755", lambda: os.unlink(os.path.join(theirs, "r")))
    outcome("chmod root's", lambda: os.chmod(os.path.join(theirs, "r"), 0o777))
    outcome("chown own to root", lambda: os.chown(mine, 0, -1))
    outcome("utime root's now", lambda: os.utime(os.path.join(theirs, "r")))
    outcome("utime root's 0666 now", lambda: os.utime(os.path.join(theirs, "w")))
    outcome("utime root's 0666 explicit",
            lambda: os.utime(os.path.join(theirs, "w"), (1, 1)))
    outcome("read acl user:1000:r", lambda: open(os.path.join(theirs, "acl")).read())
    outcome("write acl user:1000:r", lambda: open(os.path.join(theirs, "acl"), "a").close())
    outcome("access W acl", lambda: (_ for _ in ()).throw(PermissionError(
        errno.EACCES, "")) if not os.access(os.path.join(theirs, "acl"), os.W_OK) else None)
    outcome("enter root 0700", lambda: os.listdir(os.path.join(theirs, "private")))
    outcome("stat in root 0700",
            lambda: os.stat(os.path.join(theirs, "private", "f")))
    return out


EXPECTED = {
    "read 0200 own": "EACCES", "access R 0200 own": "EACCES",
    "write 0400 own": "EACCES", "truncate 0400 own": "EACCES",
    "create in 0500": "EACCES", "mkdir in 0500": "EACCES",
    "list 0300": "EACCES", "create in 0300": "ok",
    "read root 0640": "EACCES", "read root 0644": "ok", "write root 0644": "EACCES",
    "unlink in root 0755": "EACCES", "chmod root's": "EPERM",
    "chown own to root": "EPERM", "utime root's now": "EACCES",
    "utime root's 0666 now": "ok", "utime root's 0666 explicit": "EPERM",
    "read acl user:1000:r": "ok", "write acl user:1000:r": "EACCES",
    "access W acl": "EACCES", "enter root 0700": "EACCES",
    "stat in root 0700": "EACCES",
}


def _populate_as_root(root):
    t = os.path.join(root, "theirs")
    os.mkdir(t, 0o755)
    for name, mode in (("g", 0o640), ("r", 0o644), ("w", 0o666), ("acl", 0o600)):
        p = os.path.join(t, name)
        with open(p, "w") as f:
            f.write("root")
        os.chmod(p, mode)
    subprocess.run(["setfacl", "-m", f"u:{U1}:r", os.path.join(t, "acl")], check=True)
    os.mkdir(os.path.join(t, "private"), 0o700)
    open(os.path.join(t, "private", "f"), "w").close()


@pytest.mark.parametrize("backend", ["volume"], indirect=True)
def test_user_mount_checks_like_a_local_filesystem(native_dir, make_mount, make_volume):
    """uid 1000 mounts a volume (no allow_other) that root populated; the
    volume alone decides, and decides as the kernel does on a native dir."""
    vol = make_volume(as_user=U1)
    m = make_mount(backing="sqlite:" + str(vol), options=())
    os.chmod(m.mnt, 0o777)
    _populate_as_root(str(m.mnt))
    m.umount()
    # root's daemon wrote block files the user's daemon must read
    subprocess.run(["chown", "-R", f"{U1}:{_gid_for(U1)}", str(vol)], check=True)
    m = make_mount(backing="sqlite:" + str(vol), options=(), as_user=U1)
    assert "default_permissions" not in mount_opts(m.mnt)
    os.chown(native_dir, U1, _gid_for(U1))
    _populate_as_root(str(native_dir))
    native = run_as(U1, _gid_for(U1), _as_user_checks, str(native_dir))
    assert native == EXPECTED, native              # the reference itself
    got = run_as(U1, _gid_for(U1), _as_user_checks, str(m.mnt))
    assert got == EXPECTED, got
