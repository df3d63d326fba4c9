"""Confinement: nothing done below the mountpoint may reach outside the
backing directory through the daemon.

Symlinks in the backing dir that point outside are followed by the *client's*
kernel when a path is resolved through the mount (normal symlink semantics),
so the tests only use operations that must act on the symlink itself, or run
the client in a private mount namespace where the outside dir is hidden by an
empty read-only tmpfs ("decoy"): there, anything that still changes the real
outside dir can only have been done by the daemon.
"""

import ctypes
import json
import os
import stat
import time
import uuid

import pytest

from conftest import wait_for

from eddy_conform import (
    RENAME_EXCHANGE, errname, hang_guard, libc, renameat2, sha,  # noqa: F401
    utimensat,
)

CLONE_NEWNS = 0x00020000
MS_RDONLY = 1
MS_REC = 0x4000
MS_PRIVATE = 1 << 18

libc.unshare.argtypes = [ctypes.c_int]
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                       ctypes.c_ulong, ctypes.c_char_p]


def _check(ret, what):
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, "%s: %s" % (what, os.strerror(e)))


def enter_decoy_namespace(outside):
    """In the calling (child) process: new mount namespace, outside dir
    covered by an empty read-only tmpfs."""
    _check(libc.unshare(CLONE_NEWNS), "unshare")
    _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None),
           "make-rprivate")
    _check(libc.mount(b"tmpfs", os.fsencode(str(outside)), b"tmpfs",
                      MS_RDONLY, b"size=64k,mode=0555"), "mount decoy")


def describe_outside(outside):
    """Everything about the outside tree that a write could change
    (no atime)."""
    res = {}
    for dirpath, dirnames, filenames in os.walk(outside):
        for p in [dirpath] + [os.path.join(dirpath, n)
                              for n in sorted(dirnames + filenames)]:
            st = os.lstat(p)
            d = {"mode": "%o" % st.st_mode, "uid": st.st_uid,
                 "gid": st.st_gid, "size": st.st_size,
                 "nlink": st.st_nlink, "mtime": st.st_mtime_ns,
                 "ctime": st.st_ctime_ns}
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    d["sha"] = sha(f.read())
            if stat.S_ISLNK(st.st_mode):
                d["target"] = os.readlink(p)
            else:
                d["xattrs"] = {n: os.getxattr(p, n, follow_symlinks=False)
                               for n in os.listxattr(p, follow_symlinks=False)}
            res[os.path.relpath(p, outside)] = d
    return res


def make_outside(workdir):
    outside = workdir / ("outside-" + uuid.uuid4().hex[:8])
    outside.mkdir()
    os.chmod(outside, 0o755)
    victim = outside / "secret"
    victim.write_bytes(b"precious outside data\n")
    os.chmod(victim, 0o644)
    os.setxattr(victim, "user.orig", b"outside")
    os.setxattr(victim, "trusted.orig", b"outside")
    (outside / "subdir").mkdir()
    os.setxattr(outside, "user.dirorig", b"outside-dir")
    return outside


# --------------------------------------------------------------------------
# static symlinks pointing outside


def _populate_links(base, outside):
    """Symlinks to the outside, created directly in `base` (a native dir or
    a backing dir).  `base` is <workdir>/nest/<x>, so ../../<outside> from
    base/sub reaches the outside dir from the backing side only."""
    os.symlink(str(outside / "secret"), base / "abs")
    os.symlink(str(outside), base / "absdir")
    rel = os.path.relpath(outside / "secret", base)
    os.symlink(rel, base / "rel")
    (base / "sub").mkdir()
    os.symlink(os.path.relpath(outside / "secret", base / "sub"),
               base / "sub" / "rel2")
    return {"abs": str(outside / "secret"), "absdir": str(outside),
            "rel": rel,
            "sub/rel2": os.path.relpath(outside / "secret", base / "sub")}


def _symlink_ops(root, rec, outside):
    """Operations that act on symlinks themselves; outcome per op."""

    def do(label, fn, *a, **kw):
        try:
            v = fn(*a, **kw)
            if isinstance(v, str):
                v = v.replace(os.path.basename(outside), "<outside>")
                v = v.replace(str(os.path.dirname(outside)), "<workdir>")
            elif isinstance(v, tuple):
                v = list(v)
            elif not isinstance(v, (bytes, int, list, type(None))):
                v = type(v).__name__
            rec.append((label, "ok", v))
        except OSError as e:
            rec.append((label, "err", errname(e)))

    for name in ("abs", "absdir", "rel", "sub/rel2"):
        p = os.path.join(root, name)
        do(name + " lstat is link", lambda: stat.S_ISLNK(os.lstat(p).st_mode))
        do(name + " lchown", os.lchown, p, 4321, 4321)
        do(name + " lstat owner", lambda: (os.lstat(p).st_uid,
                                           os.lstat(p).st_gid))
        do(name + " lsetxattr user.x", os.setxattr, p, "user.x", b"1",
           follow_symlinks=False)
        do(name + " lsetxattr trusted.x", os.setxattr, p, "trusted.x", b"1",
           follow_symlinks=False)
        do(name + " lgetxattr user.orig", os.getxattr, p, "user.orig",
           follow_symlinks=False)
        do(name + " lgetxattr trusted.orig", os.getxattr, p, "trusted.orig",
           follow_symlinks=False)
        do(name + " llistxattr", lambda: sorted(
            x for x in os.listxattr(p, follow_symlinks=False)
            if not x.startswith("security.")))
        do(name + " lremovexattr user.orig", os.removexattr, p, "user.orig",
           follow_symlinks=False)
        do(name + " lremovexattr trusted.orig", os.removexattr, p,
           "trusted.orig", follow_symlinks=False)
        do(name + " lutimes", utimensat, p, (100, 0), (200, 0), nofollow=True)
        do(name + " lstat mtime", lambda: os.lstat(p).st_mtime_ns)
        do(name + " O_PATH|O_NOFOLLOW fchownat", lambda: _opath_chown(p))
        do(name + " hard link of the link", os.link, p, p + ".hard",
           follow_symlinks=False)
        do(name + " .hard is a link", lambda: stat.S_ISLNK(
            os.lstat(p + ".hard").st_mode))
        do(name + " rename link", os.rename, p + ".hard", p + ".moved")
        do(name + " unlink link", os.unlink, p + ".moved")
        do(name + " open O_NOFOLLOW", os.open, p, os.O_RDONLY | os.O_NOFOLLOW)
        do(name + " open O_NOFOLLOW|O_CREAT", os.open, p,
           os.O_WRONLY | os.O_NOFOLLOW | os.O_CREAT, 0o600)
        do(name + " O_CREAT|O_EXCL over link", os.open, p,
           os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        do(name + " mkdir over link", os.mkdir, p)
        do(name + " rmdir link", os.rmdir, p)
    do("abs readlink", os.readlink, os.path.join(root, "abs"))
    do("rel readlink", os.readlink, os.path.join(root, "rel"))
    do("sub/rel2 readlink", os.readlink, os.path.join(root, "sub", "rel2"))
    do("unlink abs", os.unlink, os.path.join(root, "abs"))
    do("rename rel over absdir", os.rename, os.path.join(root, "rel"),
       os.path.join(root, "absdir"))
    do("listing", lambda: sorted(os.listdir(root)))


def _opath_chown(p):
    """fchownat(O_PATH fd of the symlink, "", AT_EMPTY_PATH): acts on the
    symlink inode itself."""
    fd = os.open(p, os.O_PATH | os.O_NOFOLLOW)
    try:
        libc_fchownat_empty(fd, 2222, 2222)
        return os.lstat(p).st_uid
    finally:
        os.close(fd)


AT_EMPTY_PATH = 0x1000
libc.fchownat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint,
                          ctypes.c_uint, ctypes.c_int]


def libc_fchownat_empty(fd, uid, gid):
    if libc.fchownat(fd, b"", uid, gid, AT_EMPTY_PATH) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def test_symlinks_to_outside_are_not_followed_by_daemon(make_mount, workdir):
    nest = workdir / "nest"
    nest.mkdir()
    os.chmod(nest, 0o755)
    backing = nest / "backing"
    backing.mkdir()
    native = nest / "native"
    native.mkdir()
    out_m = make_outside(workdir)
    out_n = make_outside(workdir)
    targets_m = _populate_links(backing, out_m)
    _populate_links(native, out_n)
    m = make_mount(backing=str(backing))
    before_m = describe_outside(out_m)
    before_n = describe_outside(out_n)

    # readlink returns the stored target text exactly
    for name, target in targets_m.items():
        assert os.readlink(os.path.join(m.mnt, name)) == target

    rec_n, rec_m = [], []
    _symlink_ops(str(native), rec_n, str(out_n))
    _symlink_ops(str(m.mnt), rec_m, str(out_m))
    # the outside dirs must not have been touched in either run
    assert describe_outside(out_n) == before_n, "test bug: native run " \
        "changed its outside dir"
    assert describe_outside(out_m) == before_m, \
        "an operation on a symlink inside the mount changed the outside dir"
    diffs = [(a, b) for a, b in zip(rec_n, rec_m) if a != b]
    assert len(rec_n) == len(rec_m) and not diffs, \
        "outcomes differ from native (native, mount):\n" + "\n".join(
            "  %r\n  %r" % d for d in diffs)


# --------------------------------------------------------------------------
# races: a backing subdir / file is swapped with a symlink to the outside


def _swapper(backing, names, target, stop_r):
    """Child: swap backing/<name> with a symlink to `target`, as fast as
    possible, with two techniques alternating, until stop_r is readable."""
    os.set_blocking(stop_r, False)
    n = 0
    try:
        while True:
            try:
                if os.read(stop_r, 1) is not None:
                    break
            except BlockingIOError:
                pass
            for name in names:
                real = os.path.join(backing, name)
                link = real + ".link"
                try:
                    if n % 2:
                        # atomic exchange with a permanent symlink
                        renameat2(real, link, RENAME_EXCHANGE)
                        os.sched_yield()
                        renameat2(real, link, RENAME_EXCHANGE)
                    else:
                        # mv d d.real; ln -s target d; ...; back
                        os.rename(real, real + ".real")
                        os.symlink(target if name == "d" else
                                   os.path.join(target, "secret"), real)
                        os.sched_yield()
                        os.unlink(real)
                        os.rename(real + ".real", real)
                except OSError:
                    pass
            n += 1
    finally:
        # leave real objects in place
        for name in names:
            real = os.path.join(backing, name)
            try:
                if os.path.islink(real) and os.path.lexists(real + ".real"):
                    os.unlink(real)
                    os.rename(real + ".real", real)
                elif os.path.islink(real) and not os.path.islink(
                        real + ".link"):
                    renameat2(real, real + ".link", RENAME_EXCHANGE)
            except OSError:
                pass
        os._exit(0)


def _race_worker(mnt, outside, duration, out_w, ready_w, go_r):
    """Child: in a decoy namespace, hammer mnt/d/... and mnt/f."""
    counts = {}

    def do(label, fn, *a, **kw):
        try:
            r = fn(*a, **kw)
            key = label + ":ok"
            if label.startswith("open") and isinstance(r, int):
                os.close(r)
        except OSError as e:
            key = label + ":" + errname(e)
        counts[key] = counts.get(key, 0) + 1

    def create(p, data):
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def write_existing(p, data):
        fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    try:
        enter_decoy_namespace(outside)
        d = os.path.join(mnt, "d")
        f = os.path.join(mnt, "f")
        # descriptors opened before the swapping starts and kept
        dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        ffd = os.open(f, os.O_RDWR | os.O_NOFOLLOW)
        os.write(ready_w, b"r")
        os.close(ready_w)
        os.read(go_r, 1)
        end = time.monotonic() + duration
        i = 0
        while time.monotonic() < end:
            i += 1
            x = os.path.join(d, "x%d" % (i % 7))
            y = os.path.join(d, "y%d" % (i % 7))
            m = os.path.join(d, "m%d" % (i % 5))
            do("create", create, x, b"race %d" % i)
            do("create secret", create, os.path.join(d, "secret"), b"pwned")
            do("write secret", write_existing, os.path.join(d, "secret"),
               b"pwned")
            do("chmod", os.chmod, x, 0o600)
            do("chmod secret", os.chmod, os.path.join(d, "secret"), 0o777)
            do("chown secret", os.chown, os.path.join(d, "secret"), 999, 999)
            do("setxattr", os.setxattr, x, "user.race", b"1")
            do("setxattr secret", os.setxattr, os.path.join(d, "secret"),
               "user.race", b"1")
            do("removexattr secret", os.removexattr,
               os.path.join(d, "secret"), "user.orig")
            do("truncate secret", os.truncate, os.path.join(d, "secret"), 0)
            do("truncate", os.truncate, x, 1)
            do("utime secret", os.utime, os.path.join(d, "secret"),
               ns=(1, 1))
            do("mkdir", os.mkdir, m)
            do("mknod", os.mknod, os.path.join(d, "n%d" % (i % 3)),
               stat.S_IFIFO | 0o600)
            do("symlink", os.symlink, "t", os.path.join(d, "s%d" % (i % 3)))
            do("link", os.link, x, y)
            do("rename", os.rename, x, os.path.join(d, "r%d" % (i % 7)))
            do("unlink", os.unlink, os.path.join(d, "r%d" % (i % 7)))
            do("unlink y", os.unlink, y)
            do("unlink s", os.unlink, os.path.join(d, "s%d" % (i % 3)))
            do("unlink n", os.unlink, os.path.join(d, "n%d" % (i % 3)))
            do("rmdir", os.rmdir, m)
            do("rmdir subdir", os.rmdir, os.path.join(d, "subdir"))
            do("unlink secret", os.unlink, os.path.join(d, "secret"))
            # on the swapped directory itself
            do("chmod d", os.chmod, d, 0o700 if i % 2 else 0o755)
            do("chown d", os.chown, d, 0, 0)
            do("setxattr d", os.setxattr, d, "user.racedir", b"%d" % i)
            do("utime d", os.utime, d, ns=(5, 5))
            do("listdir d", os.listdir, d)
            # on the swapped regular file
            do("write f", write_existing, f, b"pwned via f")
            do("truncate f", os.truncate, f, 0)
            do("chmod f", os.chmod, f, 0o600 if i % 2 else 0o644)
            do("setxattr f", os.setxattr, f, "user.racef", b"1")
            do("removexattr f", os.removexattr, f, "user.orig")
            do("utime f", os.utime, f, ns=(7, 7))
            do("open f O_RDWR", os.open, f, os.O_RDWR)
            # through descriptors held across the swaps: these reach the
            # daemon by node id, without a fresh lookup of d or f
            if True:
                nm = "z%d" % (i % 5)
                do("fd create", lambda: os.close(os.open(
                    nm, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644,
                    dir_fd=dfd)))
                do("fd create secret", lambda: os.close(os.open(
                    "secret", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644,
                    dir_fd=dfd)))
                do("fd chmod", os.chmod, nm, 0o600, dir_fd=dfd)
                do("fd chmod secret", os.chmod, "secret", 0o777, dir_fd=dfd)
                do("fd utime secret", os.utime, "secret", ns=(3, 3),
                   dir_fd=dfd)
                do("fd mkdir", os.mkdir, "zd", dir_fd=dfd)
                do("fd rmdir", os.rmdir, "zd", dir_fd=dfd)
                do("fd mknod", os.mknod, "zn", stat.S_IFIFO | 0o600,
                   dir_fd=dfd)
                do("fd symlink", os.symlink, "t", "zs", dir_fd=dfd)
                do("fd rename", os.rename, nm, nm + "r", src_dir_fd=dfd,
                   dst_dir_fd=dfd)
                do("fd unlink", os.unlink, nm + "r", dir_fd=dfd)
                do("fd unlink zn", os.unlink, "zn", dir_fd=dfd)
                do("fd unlink zs", os.unlink, "zs", dir_fd=dfd)
                do("fd unlink secret", os.unlink, "secret", dir_fd=dfd)
                do("fd listdir", os.listdir, dfd)
                do("fchmod d", os.fchmod, dfd, 0o700 if i % 2 else 0o755)
                do("fsetxattr d", os.setxattr, dfd, "user.racedir", b"fd")
                do("fchown d", os.fchown, dfd, 0, 0)
            if True:
                do("pwrite f", os.pwrite, ffd, b"pwned", 0)
                do("ftruncate f", os.ftruncate, ffd, 3)
                do("fchmod f", os.fchmod, ffd, 0o600 if i % 2 else 0o644)
                do("fsetxattr f", os.setxattr, ffd, "user.racef", b"fd")
                do("fremovexattr f", os.removexattr, ffd, "user.orig")
                do("fchown f", os.fchown, ffd, 999, 999)
                do("fsync f", os.fsync, ffd)
        data = json.dumps(counts).encode()
    except BaseException as e:  # noqa: BLE001
        data = json.dumps({"__exception__": repr(e)}).encode()
    os.write(out_w, data)
    os.close(out_w)
    os._exit(0)


@pytest.mark.parametrize("target_kind", ["absolute", "relative"])
def test_race_swap_dir_with_symlink_to_outside(make_mount, workdir,
                                                target_kind):
    nest = workdir / "nest"
    nest.mkdir()
    os.chmod(nest, 0o755)
    backing = nest / "backing"
    backing.mkdir()
    outside = make_outside(workdir)
    if target_kind == "absolute":
        target = str(outside)
    else:
        # from backing/ this reaches <workdir>/<outside>; from the mountpoint
        # (<workdir>/mntN) it points into the work root, where nothing is
        target = os.path.relpath(outside, backing)
    (backing / "d").mkdir()
    (backing / "f").write_bytes(b"inside file\n")
    os.setxattr(backing / "f", "user.orig", b"inside")
    os.symlink(target, backing / "d.link")
    os.symlink(os.path.join(target, "secret"), backing / "f.link")
    m = make_mount(backing=str(backing))
    before = describe_outside(outside)

    res_r, res_w = os.pipe()
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    wk = os.fork()
    if wk == 0:
        os.close(res_r)
        os.close(ready_r)
        os.close(go_w)
        _race_worker(str(m.mnt), str(outside), 5.0, res_w, ready_w, go_r)
    os.close(res_w)
    os.close(ready_w)
    os.close(go_r)
    os.read(ready_r, 1)  # worker has its descriptors (or died: EOF)
    os.close(ready_r)
    stop_r, stop_w = os.pipe()
    sw = os.fork()
    if sw == 0:
        os.close(stop_w)
        os.close(res_r)
        _swapper(str(backing), ["d", "f"], target, stop_r)
    os.close(stop_r)
    os.write(go_w, b"g")
    os.close(go_w)
    try:
        with os.fdopen(res_r, "rb") as f:
            counts = json.loads(f.read() or b"{}")
        os.waitpid(wk, 0)
    finally:
        os.write(stop_w, b"x")
        os.close(stop_w)
        os.waitpid(sw, 0)

    assert "__exception__" not in counts, counts
    print("worker outcome counts:", json.dumps(counts, sort_keys=True))
    after = describe_outside(outside)
    changed = {k: (before.get(k), after.get(k))
               for k in set(before) | set(after)
               if before.get(k) != after.get(k)}
    assert not changed, (
        "the outside dir changed during the race (daemon escaped the "
        "backing dir):\n" + "\n".join(
            "  %s:\n    before %s\n    after  %s" % (k, b, a)
            for k, (b, a) in sorted(changed.items()))
        + "\nworker outcome counts: %s" % json.dumps(counts, sort_keys=True))
    # the race really exercised the daemon: some operations succeeded
    oks = sum(v for k, v in counts.items() if k.endswith(":ok"))
    assert oks > 0, counts
    # the swapper left real objects behind; the mount is alive and (after
    # the 1 s attribute/entry timeout) shows them again
    assert (backing / "d").is_dir() and not (backing / "d").is_symlink(), \
        sorted(os.listdir(backing))
    assert (backing / "f").is_file() and not (backing / "f").is_symlink()
    os.listdir(m.mnt)

    def settled():
        try:
            return (stat.S_ISDIR(os.lstat(m.mnt / "d").st_mode) and
                    stat.S_ISREG(os.lstat(m.mnt / "f").st_mode))
        except OSError:
            return False
    wait_for(settled, what="mnt/d and mnt/f to be a dir and a file again")
    assert sorted(os.listdir(m.mnt / "d")) == sorted(os.listdir(backing / "d"))


# --------------------------------------------------------------------------
# names


def test_special_names_map_one_to_one(mount, workdir):
    names = ["new\nline", "back\\slash", "\u65e5\u672c\u8a9e-\u00e9\u00e8",
             "..dots..", "...", ".hidden", "sp ace ", "-n", "a:b;c|d&e$f",
             "\U0001F600", "\x7f\x01\x1b[31m",
             b"\xff\xfe\xfd".decode("utf-8", "surrogateescape")]
    parent_before = sorted(os.listdir(workdir))
    for n in names:
        p = os.path.join(mount.mnt, n)
        with open(p, "wb") as f:
            f.write(os.fsencode(n))
        os.mkdir(p + ".dir")
        with open(os.path.join(p + ".dir", n), "wb") as f:
            f.write(b"inner")
    expect = sorted(names + [n + ".dir" for n in names])
    assert sorted(os.listdir(mount.backing)) == expect
    assert sorted(os.listdir(mount.mnt)) == expect
    for n in names:
        with open(os.path.join(mount.backing, n), "rb") as f:
            assert f.read() == os.fsencode(n)
        assert os.listdir(os.path.join(mount.backing, n + ".dir")) == [n]
    # nothing appeared next to the backing dir
    assert sorted(os.listdir(workdir)) == parent_before
    # and they can be removed again through the mount
    for n in names:
        os.unlink(os.path.join(mount.mnt, n + ".dir", n))
        os.rmdir(os.path.join(mount.mnt, n + ".dir"))
        os.unlink(os.path.join(mount.mnt, n))
    assert os.listdir(mount.backing) == []


def test_dotdot_at_mount_root_stays_in_client_view(mount, workdir):
    """.. of the mount root is the mountpoint's parent (resolved by the
    client kernel), and nothing below the root can name the backing
    dir's parent."""
    assert os.stat(os.path.join(mount.mnt, "..")).st_ino == \
        os.stat(workdir).st_ino
    os.mkdir(os.path.join(mount.mnt, "a"))
    fd = os.open(os.path.join(mount.mnt, "a"), os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert os.stat("..", dir_fd=fd).st_ino == os.stat(mount.mnt).st_ino
        assert os.stat("../..", dir_fd=fd).st_ino == os.stat(workdir).st_ino
        # creating "../x" relative to a/ lands in the mount root
        os.close(os.open("../created", os.O_CREAT | os.O_WRONLY, 0o644,
                         dir_fd=fd))
    finally:
        os.close(fd)
    assert os.path.exists(os.path.join(mount.backing, "created"))
    assert not os.path.exists(os.path.join(os.path.dirname(
        str(mount.backing)), "created"))
