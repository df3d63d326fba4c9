"""The volume client (`eddyfs ls|stat|cat|get|put|copy_into|echo_into|mkdir|
rm|mv|ln|tree sqlite:<vol> ...`): every command with its errors, as the
caller (permissions as a mount checks them), big files by hash, and the
same truth as a mount: what the client writes a mount shows (also while
mounted), and what a mount writes the client reads."""

import hashlib
import os
import stat

from conftest import SQLITE, wait_for

USER = 65534


def _ok(r):
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert r.stderr == "", r.stderr
    return r.stdout


def _err(r, msg, code=1):
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert msg in r.stderr, r.stderr
    return r


def test_every_command_and_its_errors(run_eddy, make_volume, workdir):
    vol = make_volume("--block-size", "64K")
    v = f"{SQLITE}{vol}"
    c = lambda *a, **kw: run_eddy(a[0], v, *a[1:], **kw)
    _ok(c("mkdir", "-p", "/a/b/c"))
    _ok(c("mkdir", "-p", "/a/b"))                       # exists: fine with -p
    _err(c("mkdir", "/a/b"), "eddyfs mkdir: /a/b: File exists")
    _err(c("mkdir", "/x/y"), "eddyfs mkdir: /x/y: No such file or directory")
    _ok(c("mkdir", "-m", "700", "/private"))
    _ok(c("echo_into", "hello world", "/a/hi"))
    assert _ok(c("cat", "/a/hi")) == "hello world\n"
    big = workdir / "big"
    data = os.urandom((20 << 20) + 12345)
    big.write_bytes(data)
    _ok(c("put", big, "/a/big"))
    _ok(c("copy_into", big, "/a/big2"))
    out = workdir / "out"
    _ok(c("get", "/a/big", out))
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(data).digest()
    r = run_eddy("put", v, "-", "/a/stdin", input="piped\n")
    _ok(r)
    assert _ok(c("cat", "/a/stdin")) == "piped\n"
    _ok(c("put", big, "/a/stdin"))                      # an existing file is truncated
    assert int(_ok(c("stat", "/a/stdin")).split("Size: ")[1].split()[0]) == len(data)
    _ok(c("ln", "-s", "hi", "/a/link"))
    _ok(c("ln", "/a/hi", "/a/b"))                       # into a directory
    assert _ok(c("cat", "/a/link")) == "hello world\n"
    st = _ok(c("stat", "/a/link"))
    assert "Type: symbolic link" in st and "Links: 1" in st
    assert "Links: 2" in _ok(c("stat", "/a/b/hi"))
    ls = _ok(c("ls", "/a")).split()
    assert ls == ["b", "big", "big2", "hi", "link", "stdin"]
    assert "link -> hi" in _ok(c("ls", "-l", "/a"))
    assert _ok(c("ls")).split() == ["a", "private"]
    tree = _ok(c("tree"))
    assert "4 directories, 6 files" in tree, tree
    # errors a mount would give
    _err(c("cat", "/a"), "eddyfs cat: /a: Is a directory")
    _err(c("cat", "/a/hi/x"), "eddyfs cat: /a/hi/x: Not a directory")
    _err(c("cat", "/a/hi/"), "eddyfs cat: /a/hi/: Not a directory")
    _err(c("stat", "/a/hi/."), "eddyfs stat: /a/hi/.: Not a directory")
    _err(c("cat", "/nope"), "eddyfs cat: /nope: No such file or directory")
    _err(c("rm", "/a/b"), "eddyfs rm: /a/b: Is a directory")
    _err(c("rm", "-d", "/a/b"), "eddyfs rm: /a/b: Directory not empty")
    _err(c("ln", "/a/b", "/a/dirlink"), "eddyfs ln: /a/b: Operation not permitted")
    _err(c("ln", "-s", "x", "/a/hi"), "eddyfs ln: /a/hi: File exists")
    _ok(c("ln", "-s", "loop2", "/loop1"))
    _ok(c("ln", "-s", "loop1", "/loop2"))
    _err(c("cat", "/loop1"), "Too many levels of symbolic links")
    _err(c("cat", "/" + "n" * 256), "File name too long")
    _err(c("mv", "/a", "/a/b/c/inside"), "Invalid argument")
    _ok(c("rm", "-f", "/nope"))
    _err(c("rm", "/nope"), "No such file or directory")
    # mv: rename, replace, into a directory
    _ok(c("mv", "/a/big2", "/a/renamed"))
    _ok(c("mv", "/a/renamed", "/a/hi"))                # replaces
    assert hashlib.sha256(run_eddy("cat", v, "/a/hi", text=False).stdout).digest() == \
        hashlib.sha256(data).digest()
    _ok(c("mv", "/a/stdin", "/a/b/c"))
    assert _ok(c("ls", "/a/b/c")).split() == ["stdin"]
    # a trailing '/' needs a directory, as in the kernel
    _err(c("rm", "/a/hi/"), "eddyfs rm: /a/hi/: Not a directory")
    _err(c("mv", "/a/hi/", "/a/hi2"), "eddyfs mv: /a/hi/: Not a directory")
    _err(c("mv", "/a/hi", "/a/hi2/"), "eddyfs mv: /a/hi: Not a directory")
    _ok(c("mv", "/a/b/c/", "/a/b/c2/"))
    _ok(c("mv", "/a/b/c2/", "/a/b/c"))
    _ok(c("rm", "-r", "/a/b/"))
    assert _ok(c("ls", "/a")).split() == ["big", "hi", "link"]
    # usage errors and bad volumes: exit 2, one line
    for args in (["cat"], ["ls", "/"], ["get", v, "/a/hi"], ["mkdir", v, "-m", "9z", "/q"],
                 ["cat", f"{SQLITE}{workdir / 'missing'}", "/x"], ["cat", f"{SQLITE}{workdir}", "/x"]):
        r = run_eddy(*args)
        assert r.returncode == 2 and r.stderr.count("\n") == 1, (args, r)
    r = run_eddy("fsck", vol)
    assert r.returncode == 0 and "0 problem(s); 0 orphan(s)" in r.stdout, r.stdout


def test_permissions_as_the_caller(run_eddy, make_volume):
    vol = make_volume()
    v = f"{SQLITE}{vol}"
    _ok(run_eddy("mkdir", v, "-m", "755", "/root-only"))
    _ok(run_eddy("mkdir", v, "-m", "777", "/shared"))
    _ok(run_eddy("mkdir", v, "-m", "1777", "/sticky"))
    _ok(run_eddy("echo_into", v, "secret", "/root-only/f"))
    _ok(run_eddy("echo_into", v, "mine", "/sticky/roots"))
    _ok(run_eddy("mkdir", v, "-m", "700", "/closed"))
    # let the other user open the volume's files (as a group would)
    for dirpath, dirs, files in os.walk(vol):
        os.chmod(dirpath, 0o777)
        for f in files:
            os.chmod(os.path.join(dirpath, f), 0o666)
    u = lambda *a: run_eddy(a[0], v, *a[1:], as_user=USER)
    _err(u("echo_into", "x", "/root-only/g"), "/root-only/g: Permission denied")
    _err(u("rm", "/root-only/f"), "/root-only/f: Permission denied")
    _err(u("ls", "/closed"), "/closed: Permission denied")
    _err(u("cat", "/closed/x"), "/closed/x: Permission denied")
    _ok(u("echo_into", "hi", "/shared/mine"))
    assert "Uid: 65534" in _ok(u("stat", "/shared/mine"))
    _err(u("rm", "/sticky/roots"), "/sticky/roots: Operation not permitted")
    assert _ok(u("cat", "/root-only/f")) == "secret\n"   # 0644 by umask 022
    # rename: a replaced name obeys the sticky bit; a directory that changes
    # parent must be writable itself (its ".." changes), as rename(2) says
    _ok(u("echo_into", "x", "/sticky/own"))
    _err(u("mv", "/sticky/own", "/sticky/roots"), "/sticky/roots: Operation not permitted")
    _ok(run_eddy("mkdir", v, "-m", "755", "/shared/rootdir"))
    _err(u("mv", "/shared/rootdir", "/sticky/rootdir"), "Permission denied")
    _ok(u("mv", "/shared/rootdir", "/shared/renamed"))     # same parent: allowed
    assert _ok(run_eddy("cat", v, "/sticky/roots")) == "mine\n"


def test_client_and_mount_see_one_truth(run_eddy, make_volume, make_mount, workdir):
    vol = make_volume("--block-size", "64K")
    v = f"{SQLITE}{vol}"
    data = os.urandom(300 << 10)
    (workdir / "d").write_bytes(data)
    _ok(run_eddy("mkdir", v, "/dir"))
    _ok(run_eddy("put", v, workdir / "d", "/dir/data"))
    _ok(run_eddy("ln", v, "/dir/data", "/dir/hard"))
    _ok(run_eddy("ln", v, "-s", "data", "/dir/sym"))
    m = make_mount(backing=v)
    assert (m.mnt / "dir" / "data").read_bytes() == data
    assert os.stat(m.mnt / "dir" / "data").st_nlink == 2
    assert os.readlink(m.mnt / "dir" / "sym") == "data"
    assert stat.S_IMODE(os.stat(m.mnt / "dir").st_mode) == 0o755
    # while mounted: the client's change reaches the mount's caches
    os.listdir(m.mnt / "dir")
    assert not os.path.exists(m.mnt / "dir" / "late")
    _ok(run_eddy("echo_into", v, "late news", "/dir/late"))
    wait_for(lambda: os.path.exists(m.mnt / "dir" / "late"), what="the mount to see it")
    assert (m.mnt / "dir" / "late").read_text() == "late news\n"
    _ok(run_eddy("echo_into", v, "rewritten", "/dir/late"))
    wait_for(lambda: (m.mnt / "dir" / "late").read_text() == "rewritten\n",
             what="the mount to see the new content")
    # and the mount's writes reach the client once closed
    (m.mnt / "dir" / "from-mount").write_bytes(data[:1000])
    assert run_eddy("cat", v, "/dir/from-mount", text=False).stdout == data[:1000]
    _ok(run_eddy("rm", v, "/dir/hard"))
    wait_for(lambda: os.stat(m.mnt / "dir" / "data").st_nlink == 1, what="nlink 1")
    m.umount()


def test_client_honours_posix_acls(run_eddy, make_volume, make_mount):
    """An access ACL decides for everyone but the owner, as the kernel's
    check does through a mount: a named-user entry opens a 0600 file."""
    import subprocess
    vol = make_volume()
    v = f"{SQLITE}{vol}"
    m = make_mount(backing=v)
    for name in ("acl", "plain"):
        (m.mnt / name).write_text("secret")
        os.chmod(m.mnt / name, 0o600)
    r = subprocess.run(["setfacl", "-m", f"u:{USER}:r", m.mnt / "acl"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    m.umount()
    for dirpath, dirs, files in os.walk(vol):
        os.chmod(dirpath, 0o777)
        for f in files:
            os.chmod(os.path.join(dirpath, f), 0o666)
    u = lambda *a: run_eddy(a[0], v, *a[1:], as_user=USER)
    assert _ok(u("cat", "/acl")) == "secret"
    _err(u("cat", "/plain"), "/plain: Permission denied")
    _err(u("echo_into", "x", "/acl"), "/acl: Permission denied")
