"""Permission and ownership semantics on an allow_other,default_permissions
mount (the default), exercised by other uids via conftest.run_as.

Every scenario runs on a native directory and on the mount (see
eddy_conform.conform): outcomes must be identical, and the backing directory
must end up with the same owners/modes as the native one. Every test runs on
the dir backend and on the mem backend (against a native tmpfs).
"""

import os
import stat

import pytest

from conftest import all_backends
from eddy_conform import (
    UTIME_NOW, UTIME_OMIT, conform, hang_guard, statsum, utimensat,  # noqa: F401
)

pytestmark = all_backends

U1, G1 = 1000, 1000
U2, G2 = 1001, 1001
GRP_SGID = 1500
GRP_SUPP = 1600

SCENARIOS = {}


def scenario(fn):
    SCENARIOS[fn.__name__] = fn
    return fn


def mkdir_as_root(path, mode, uid=0, gid=0):
    os.mkdir(path)
    os.chown(path, uid, gid)
    os.chmod(path, mode)


def create(path, data=b"", mode=0o644):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return True


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data, flags=0):
    fd = os.open(path, os.O_WRONLY | flags)
    try:
        return os.write(fd, data)
    finally:
        os.close(fd)


def lst(path):
    return statsum(os.lstat(path))


@scenario
def ownership_of_new_objects(r):
    mkdir_as_root(r.p("pub"), 0o777)
    r.as_("create file", U1, G1, create, r.p("pub", "f"), b"x")
    r.as_("mkdir", U1, G1, os.mkdir, r.p("pub", "d"))
    r.as_("symlink", U1, G1, os.symlink, "f", r.p("pub", "l"))
    r.as_("mkfifo", U1, G1, os.mkfifo, r.p("pub", "p"))
    r.as_("mknod reg", U1, G1, os.mknod, r.p("pub", "n"),
          stat.S_IFREG | 0o600)
    r.as_("create in own dir", U1, G1, create, r.p("pub", "d", "g"))
    r.as_("hard link own file", U1, G1, os.link, r.p("pub", "f"),
          r.p("pub", "h"))
    r.as_("rename own file", U1, G1, os.rename, r.p("pub", "n"),
          r.p("pub", "d", "n2"))
    for n in ("f", "d", "l", "p", "h", "d/g", "d/n2"):
        r("lstat " + n, lst, r.p("pub", n))
    # primary gid different from uid, plus supplementary groups
    r.as_("create with gid 4242", U2, 4242, create, r.p("pub", "g4242"),
          groups=(4242, 77))
    r("lstat g4242", lst, r.p("pub", "g4242"))
    # stat as the user sees the same
    r.as_("stat as creator", U1, G1, lst, r.p("pub", "f"))


@scenario
def create_readonly_mode_gives_writable_fd(r):
    mkdir_as_root(r.p("pub"), 0o777)

    def go(path):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            n = os.write(fd, b"written through the creating fd")
            os.ftruncate(fd, 7)
            return n, os.pread(fd, 100, 0)
        finally:
            os.close(fd)
    r.as_("O_CREAT 0444 O_RDWR then write", U1, G1, go, r.p("pub", "ro"))
    r("lstat", lst, r.p("pub", "ro"))
    r.as_("reopen for write", U1, G1, write, r.p("pub", "ro"), b"x")

    def mk0(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0)
        try:
            return os.write(fd, b"mode 0")
        finally:
            os.close(fd)
    r.as_("O_CREAT mode 0 O_WRONLY", U1, G1, mk0, r.p("pub", "zero"))
    r("lstat zero", lst, r.p("pub", "zero"))


@scenario
def fd_keeps_rights_after_chmod(r):
    mkdir_as_root(r.p("pub"), 0o777)

    def go(path):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, b"0123456789")
            os.fchmod(fd, 0o000)
            res = [os.pwrite(fd, b"AB", 2)]
            os.ftruncate(fd, 5)
            res.append(os.fstat(fd).st_size)
            res.append(os.pread(fd, 100, 0))
            os.fsync(fd)
            return res
        finally:
            os.close(fd)
    r.as_("write/ftruncate through fd after chmod 000", U1, G1, go,
          r.p("pub", "f"))
    r("lstat", lst, r.p("pub", "f"))
    r.as_("new open now refused", U1, G1, read, r.p("pub", "f"))


@scenario
def setgid_directory(r):
    mkdir_as_root(r.p("sg"), 0o2775, 0, GRP_SGID)
    r("lstat sg", lst, r.p("sg"))
    groups = (G1, GRP_SGID)
    r.as_("member creates file", U1, G1, create, r.p("sg", "f"), b"",
          0o664, groups=groups)
    r.as_("member mkdir", U1, G1, os.mkdir, r.p("sg", "sub"), 0o775,
          groups=groups)
    r.as_("member mkdir in subdir", U1, G1, os.mkdir, r.p("sg", "sub", "s2"),
          groups=groups)
    r.as_("member creates setgid file", U1, G1, create, r.p("sg", "sgf"),
          b"", 0o2755, groups=groups)
    for n in ("f", "sub", "sub/s2", "sgf"):
        r("lstat " + n, lst, r.p("sg", n))
    # a world-writable setgid dir: a non-member creating a file with S_ISGID
    # gets the group of the dir but the bit is stripped
    mkdir_as_root(r.p("sgw"), 0o2777, 0, GRP_SGID)
    r.as_("non-member creates setgid file", U2, G2, create, r.p("sgw", "x"),
          b"", 0o2755)
    r.as_("non-member mkdir", U2, G2, os.mkdir, r.p("sgw", "dx"))
    r.as_("non-member mknod", U2, G2, os.mknod, r.p("sgw", "nx"),
          stat.S_IFREG | 0o2750)
    for n in ("x", "dx", "nx"):
        r("lstat sgw/" + n, lst, r.p("sgw", n))


@scenario
def supplementary_groups(r):
    mkdir_as_root(r.p("grp"), 0o770, 0, GRP_SUPP)
    r.as_("create via supplementary group", U1, G1, create, r.p("grp", "f"),
          b"g", groups=(G1, GRP_SUPP))
    r.as_("mkdir via supplementary group", U1, G1, os.mkdir, r.p("grp", "d"),
          groups=(G1, GRP_SUPP))
    r.as_("create without the group", U1, G1, create, r.p("grp", "g"),
          groups=(G1,))
    r.as_("stat without the group", U1, G1, lst, r.p("grp", "f"),
          groups=(G1,))
    r.as_("list via supplementary group", U1, G1,
          lambda: sorted(os.listdir(r.p("grp"))), groups=(G1, GRP_SUPP))
    r("lstat grp/f", lst, r.p("grp", "f"))
    r("lstat grp/d", lst, r.p("grp", "d"))
    # group permission bits are used even if "others" would allow more
    mkdir_as_root(r.p("pub"), 0o777)
    r.as_("create 0604 file", U1, G1, create, r.p("pub", "gf"), b"secret",
          0o604)
    os.chown(r.p("pub", "gf"), U1, GRP_SUPP)
    r.as_("group member denied by group bits", U2, G2, read,
          r.p("pub", "gf"), groups=(G2, GRP_SUPP))
    r.as_("non-member allowed by other bits", U2, G2, read, r.p("pub", "gf"))
    # file writable only through a supplementary group
    r.as_("create 0464", U1, G1, create, r.p("pub", "gw"), b"", 0o464)
    os.chown(r.p("pub", "gw"), U1, GRP_SUPP)
    os.chmod(r.p("pub", "gw"), 0o464)  # (umask)
    r.as_("write via supplementary group", U2, G2, write, r.p("pub", "gw"),
          b"via group", groups=(G2, GRP_SUPP))
    r.as_("write without the group", U2, G2, write, r.p("pub", "gw"), b"no")
    r("content gw", read, r.p("pub", "gw"))


@scenario
def sticky_directory(r):
    mkdir_as_root(r.p("tmp"), 0o1777)
    r.as_("1000 creates", U1, G1, create, r.p("tmp", "a1000"), b"mine")
    r.as_("1001 creates", U2, G2, create, r.p("tmp", "a1001"), b"his")
    r.as_("1000 mkdir", U1, G1, os.mkdir, r.p("tmp", "d1000"))
    r.as_("1001 unlinks 1000's file", U2, G2, os.unlink, r.p("tmp", "a1000"))
    r.as_("1001 renames 1000's file", U2, G2, os.rename, r.p("tmp", "a1000"),
          r.p("tmp", "stolen"))
    r.as_("1001 renames own file over 1000's", U2, G2, os.rename,
          r.p("tmp", "a1001"), r.p("tmp", "a1000"))
    r.as_("1001 rmdir 1000's dir", U2, G2, os.rmdir, r.p("tmp", "d1000"))
    r.as_("1001 renames 1000's dir", U2, G2, os.rename, r.p("tmp", "d1000"),
          r.p("tmp", "dstolen"))
    r.as_("1001 renames own file", U2, G2, os.rename, r.p("tmp", "a1001"),
          r.p("tmp", "b1001"))
    r.as_("1001 unlinks own file", U2, G2, os.unlink, r.p("tmp", "b1001"))
    r.as_("1000 unlinks own file", U1, G1, os.unlink, r.p("tmp", "a1000"))
    r.as_("1000 rmdir own dir", U1, G1, os.rmdir, r.p("tmp", "d1000"))
    r.as_("1001 creates again", U2, G2, create, r.p("tmp", "c1001"))
    r("root unlinks anyone's file", os.unlink, r.p("tmp", "c1001"))
    # the owner of a sticky dir may delete anything in it
    mkdir_as_root(r.p("own"), 0o1777, U1, G1)
    r.as_("1001 creates in 1000's sticky dir", U2, G2, create,
          r.p("own", "x"))
    r.as_("dir owner unlinks it", U1, G1, os.unlink, r.p("own", "x"))
    r("listing tmp", lambda: sorted(os.listdir(r.p("tmp"))))


@scenario
def file_modes_enforced(r):
    mkdir_as_root(r.p("pub"), 0o777)
    r.as_("1000 creates 0600", U1, G1, create, r.p("pub", "priv"), b"p",
          0o600)
    r.as_("1001 reads", U2, G2, read, r.p("pub", "priv"))
    r.as_("1001 writes", U2, G2, write, r.p("pub", "priv"), b"x")
    r.as_("1001 opens O_TRUNC", U2, G2, write, r.p("pub", "priv"), b"",
          os.O_TRUNC)
    r.as_("1001 truncate()", U2, G2, os.truncate, r.p("pub", "priv"), 0)
    r.as_("1000 reads", U1, G1, read, r.p("pub", "priv"))
    r.as_("1000 creates 0444", U1, G1, create, r.p("pub", "ro"), b"r", 0o444)
    r.as_("1000 writes own 0444", U1, G1, write, r.p("pub", "ro"), b"x")
    r.as_("1000 creates 0700 script", U1, G1, create, r.p("pub", "x"),
          b"#!/bin/sh\n", 0o700)
    r.as_("access R_OK 1001", U2, G2, os.access, r.p("pub", "priv"), os.R_OK)
    r.as_("access W_OK 1000 on 0444", U1, G1, os.access, r.p("pub", "ro"),
          os.W_OK)
    r.as_("access X_OK 1000", U1, G1, os.access, r.p("pub", "x"), os.X_OK)
    r.as_("access X_OK 1001", U2, G2, os.access, r.p("pub", "x"), os.X_OK)
    r("root reads 0600", read, r.p("pub", "priv"))
    r("root writes 0444", write, r.p("pub", "ro"), b"R")
    os.chmod(r.p("pub", "priv"), 0)
    r("root reads 0000", read, r.p("pub", "priv"))
    r("root access X_OK on 0000", os.access, r.p("pub", "priv"), os.X_OK)
    # directory permissions
    r.as_("1000 mkdir 0700", U1, G1, os.mkdir, r.p("pub", "d700"), 0o700)
    r.as_("1000 creates in it", U1, G1, create, r.p("pub", "d700", "in"))
    r.as_("1001 stats inside 0700", U2, G2, lst, r.p("pub", "d700", "in"))
    r.as_("1001 lists 0700", U2, G2, os.listdir, r.p("pub", "d700"))
    os.chmod(r.p("pub", "d700"), 0o711)
    r.as_("1001 stats inside 0711", U2, G2, lst, r.p("pub", "d700", "in"))
    r.as_("1001 lists 0711", U2, G2, os.listdir, r.p("pub", "d700"))
    os.chmod(r.p("pub", "d700"), 0o744)
    r.as_("1001 lists 0744", U2, G2, lambda: sorted(os.listdir(
        r.p("pub", "d700"))))
    r.as_("1001 stats inside 0744", U2, G2, lst, r.p("pub", "d700", "in"))
    r.as_("1000 mkdir 0555", U1, G1, os.mkdir, r.p("pub", "d555"), 0o555)
    r.as_("mkdir in 0555 dir", U1, G1, os.mkdir, r.p("pub", "d555", "x"))
    r.as_("create in 0555 dir", U1, G1, create, r.p("pub", "d555", "f"))
    r.as_("symlink in 0555 dir", U1, G1, os.symlink, "t",
          r.p("pub", "d555", "l"))
    r("root mkdir in 0555 dir", os.mkdir, r.p("pub", "d555", "rootdir"))
    r.as_("rmdir in 0555 dir", U1, G1, os.rmdir,
          r.p("pub", "d555", "rootdir"))
    r.as_("rename out of 0555 dir", U1, G1, os.rename,
          r.p("pub", "d555", "rootdir"), r.p("pub", "moved"))
    r("root rmdir in 0555 dir", os.rmdir, r.p("pub", "d555", "rootdir"))


@scenario
def attribute_changes(r):
    mkdir_as_root(r.p("pub"), 0o777)
    r.as_("1000 creates", U1, G1, create, r.p("pub", "f"), b"data", 0o666)
    r.as_("1001 chmod", U2, G2, os.chmod, r.p("pub", "f"), 0o777)
    r.as_("1000 chmod", U1, G1, os.chmod, r.p("pub", "f"), 0o640)
    r("lstat after chmod", lst, r.p("pub", "f"))
    r.as_("1000 chown to 1001", U1, G1, os.chown, r.p("pub", "f"), U2, -1)
    r.as_("1000 chown to self", U1, G1, os.chown, r.p("pub", "f"), U1, -1)
    r.as_("1000 chgrp to member group", U1, G1, os.chown, r.p("pub", "f"),
          -1, GRP_SUPP, groups=(G1, GRP_SUPP))
    r("lstat after chgrp", lst, r.p("pub", "f"))
    r.as_("1000 chgrp to non-member group", U1, G1, os.chown,
          r.p("pub", "f"), -1, 4242, groups=(G1, GRP_SUPP))
    r.as_("1001 chgrp others' file", U2, G2, os.chown, r.p("pub", "f"),
          -1, G2)
    r("lstat", lst, r.p("pub", "f"))
    # owner not in the file's group sets S_ISGID: silently dropped
    r.as_("1000 chmod 2755 with foreign group", U1, G1, os.chmod,
          r.p("pub", "f"), 0o2755, groups=(G1,))
    r("lstat after chmod g+s", lst, r.p("pub", "f"))
    r.as_("1000 chmod 4755", U1, G1, os.chmod, r.p("pub", "f"), 0o4755)
    r("lstat after chmod u+s", lst, r.p("pub", "f"))
    r("root chown anything", os.chown, r.p("pub", "f"), 4321, 8765)
    r("lstat after root chown", lst, r.p("pub", "f"))
    os.chown(r.p("pub", "f"), U1, G1)
    # symlink ownership
    r.as_("1000 symlink", U1, G1, os.symlink, "f", r.p("pub", "l"))
    r.as_("1001 lchown others' symlink", U2, G2, os.lchown, r.p("pub", "l"),
          U2, G2)
    r.as_("1000 lchown own symlink to own group", U1, G1, os.lchown,
          r.p("pub", "l"), -1, GRP_SUPP, groups=(G1, GRP_SUPP))
    r("lstat l", lst, r.p("pub", "l"))


@scenario
def utime_permissions(r):
    mkdir_as_root(r.p("pub"), 0o777)
    r.as_("1000 creates 0666", U1, G1, create, r.p("pub", "w"), b"", 0o666)
    os.chmod(r.p("pub", "w"), 0o666)  # (umask)
    r.as_("1000 creates 0644", U1, G1, create, r.p("pub", "nw"), b"", 0o644)
    times = (1_000_000_000, 2_000_000_000)
    r.as_("non-owner explicit times", U2, G2, os.utime, r.p("pub", "w"),
          ns=times)
    r.as_("non-owner explicit mtime + OMIT", U2, G2, utimensat,
          r.p("pub", "w"), (0, UTIME_OMIT), (5, 0))
    r.as_("writer UTIME_NOW", U2, G2, utimensat, r.p("pub", "w"),
          (0, UTIME_NOW), (0, UTIME_NOW))
    r.as_("writer utime(None)", U2, G2, os.utime, r.p("pub", "w"))
    r.as_("non-writer UTIME_NOW", U2, G2, utimensat, r.p("pub", "nw"),
          (0, UTIME_NOW), (0, UTIME_NOW))
    r.as_("non-writer utime(None)", U2, G2, os.utime, r.p("pub", "nw"))
    r.as_("non-writer OMIT/OMIT", U2, G2, utimensat, r.p("pub", "nw"),
          (0, UTIME_OMIT), (0, UTIME_OMIT))
    r.as_("owner explicit times", U1, G1, os.utime, r.p("pub", "nw"),
          ns=times)
    st = os.stat(r.p("pub", "nw"))
    r.rec("owner times applied", (st.st_atime_ns, st.st_mtime_ns))
    r("root explicit times", os.utime, r.p("pub", "w"), ns=(3, 4))
    st = os.stat(r.p("pub", "w"))
    r.rec("root times applied", (st.st_atime_ns, st.st_mtime_ns))


@scenario
def suid_sgid_clearing(r):
    mkdir_as_root(r.p("pub"), 0o777)

    def mk(name, owner=(U1, G1), mode=0o6777):
        p = r.p("pub", name)
        with open(p, "wb") as f:
            f.write(b"#!/bin/sh\necho hi\n")
        os.chown(p, *owner)
        os.chmod(p, mode)
        return p

    p = mk("w_other")
    r.as_("non-owner writes 06777", U2, G2, write, p, b"X")
    r("mode after non-owner write", lst, p)
    p = mk("w_owner")
    r.as_("owner writes 06777", U1, G1, write, p, b"X")
    r("mode after owner write", lst, p)
    p = mk("t_owner")
    r.as_("owner truncates 06777", U1, G1, os.truncate, p, 3)
    r("mode after owner truncate", lst, p)
    p = mk("ft_owner")

    def ftrunc(path):
        fd = os.open(path, os.O_RDWR)
        try:
            os.ftruncate(fd, 2)
        finally:
            os.close(fd)
    r.as_("owner ftruncates 06777", U1, G1, ftrunc, p)
    r("mode after owner ftruncate", lst, p)
    p = mk("w_root")
    r("root writes 06777", write, p, b"X")
    r("mode after root write", lst, p)



@scenario
def suid_sgid_clearing_edge_cases(r):
    mkdir_as_root(r.p("pub"), 0o777)

    def mk(name, owner=(U1, G1), mode=0o6777):
        p = r.p("pub", name)
        with open(p, "wb") as f:
            f.write(b"#!/bin/sh\necho hi\n")
        os.chown(p, *owner)
        os.chmod(p, mode)
        return p

    p = mk("sgid_nox", mode=0o2666)
    r.as_("non-owner writes 02666 (sgid without group x)", U2, G2, write, p,
          b"X")
    r("mode of 02666 after write", lst, p)
    p = mk("o_trunc", mode=0o6777)
    r.as_("non-owner O_TRUNC open", U2, G2, write, p, b"", os.O_TRUNC)
    r("mode after O_TRUNC by non-owner", lst, p)
    p = mk("chown_me", mode=0o6755)
    r("root chown of 06755", os.chown, p, U2, G2)
    r("mode after root chown", lst, p)
    p = mk("append", mode=0o6777)
    r.as_("non-owner append", U2, G2, write, p, b"A", os.O_APPEND)
    r("mode after append", lst, p)


@scenario
def hardlink_protection(r):
    mkdir_as_root(r.p("pub"), 0o777)
    r.as_("1000 creates 0600", U1, G1, create, r.p("pub", "priv"), b"s",
          0o600)
    r.as_("1000 creates 0644", U1, G1, create, r.p("pub", "pubf"), b"s",
          0o644)
    # fs.protected_hardlinks decides these; the native run is the reference
    r.as_("1001 links unreadable foreign file", U2, G2, os.link,
          r.p("pub", "priv"), r.p("pub", "l1"))
    r.as_("1001 links readable foreign file", U2, G2, os.link,
          r.p("pub", "pubf"), r.p("pub", "l2"))
    r.as_("1000 links own file", U1, G1, os.link, r.p("pub", "priv"),
          r.p("pub", "l3"))
    r("listing", lambda: sorted(os.listdir(r.p("pub"))))


@scenario
def root_can_do_everything(r):
    mkdir_as_root(r.p("locked"), 0o000, U1, G1)
    r("root creates in 0000 dir", create, r.p("locked", "f"), b"root")
    r("root mkdir in 0000 dir", os.mkdir, r.p("locked", "d"))
    r("root lists 0000 dir", lambda: sorted(os.listdir(r.p("locked"))))
    os.chmod(r.p("locked", "f"), 0)
    r("root reads 0000 file", read, r.p("locked", "f"))
    r("root writes 0000 file", write, r.p("locked", "f"), b"W")
    r("root chmod foreign", os.chmod, r.p("locked", "f"), 0o4711)
    r("root chown foreign dir", os.chown, r.p("locked"), U2, G2)
    r("root utime foreign", os.utime, r.p("locked", "f"), ns=(1, 2))
    r("root setxattr foreign", os.setxattr, r.p("locked", "f"), "user.r",
      b"1")
    r("root unlink in 0000 dir", os.unlink, r.p("locked", "f"))
    mkdir_as_root(r.p("sticky"), 0o1777)
    r.as_("1000 creates in sticky", U1, G1, create, r.p("sticky", "x"))
    r("root renames in sticky", os.rename, r.p("sticky", "x"),
      r.p("sticky", "y"))
    r("lstat y", lst, r.p("sticky", "y"))
    r.as_("user 1001 blocked from 0000 dir", U2, G2, os.listdir,
          r.p("locked"))


@scenario
def xattr_permissions(r):
    mkdir_as_root(r.p("pub"), 0o777)
    r.as_("1000 creates 0644", U1, G1, create, r.p("pub", "f"), b"", 0o644)
    r.as_("owner sets user.*", U1, G1, os.setxattr, r.p("pub", "f"),
          "user.o", b"1")
    r.as_("non-owner reads user.*", U2, G2, os.getxattr, r.p("pub", "f"),
          "user.o")
    r.as_("non-owner sets user.* (no write perm)", U2, G2, os.setxattr,
          r.p("pub", "f"), "user.x", b"1")
    r.as_("user sets trusted.*", U1, G1, os.setxattr, r.p("pub", "f"),
          "trusted.t", b"1")
    r.as_("user lists", U1, G1, lambda: sorted(
        x for x in os.listxattr(r.p("pub", "f")) if not x.startswith(
            "security.")))
    os.chmod(r.p("pub", "f"), 0o666)
    r.as_("non-owner with write perm sets user.*", U2, G2, os.setxattr,
          r.p("pub", "f"), "user.x", b"2")
    os.chmod(r.p("pub", "f"), 0o600)
    r.as_("non-owner reads user.* of 0600 file", U2, G2, os.getxattr,
          r.p("pub", "f"), "user.o")


@scenario
def misc_user_restrictions(r):
    mkdir_as_root(r.p("a"), 0o777)
    mkdir_as_root(r.p("b"), 0o777)
    r.as_("1001 mkdir", U2, G2, os.mkdir, r.p("a", "his"), 0o755)
    # moving a directory to another parent rewrites its "..": needs write
    # permission on the moved directory itself
    r.as_("1000 moves 1001's dir across", U1, G1, os.rename,
          r.p("a", "his"), r.p("b", "his"))
    r.as_("1000 renames 1001's dir in place", U1, G1, os.rename,
          r.p("a", "his"), r.p("a", "his2"))
    r.as_("1000 mknod chr", U1, G1, os.mknod, r.p("a", "c"),
          stat.S_IFCHR | 0o666, os.makedev(1, 3))
    r.as_("1000 mknod fifo", U1, G1, os.mknod, r.p("a", "p"),
          stat.S_IFIFO | 0o666)
    r.as_("1001 creates", U2, G2, create, r.p("a", "f"), b"x", 0o644)
    r.as_("1000 O_NOATIME on foreign file", U1, G1, os.open, r.p("a", "f"),
          os.O_RDONLY | os.O_NOATIME)
    r.as_("1001 O_NOATIME on own file", U2, G2,
          lambda: os.close(os.open(r.p("a", "f"), os.O_RDONLY |
                                   os.O_NOATIME)))
    r.as_("1000 unlinks 1001's file (dir 0777, no sticky)", U1, G1,
          os.unlink, r.p("a", "f"))
    r.as_("1000 creates in root-owned 0755 dir", U1, G1, create,
          r.p("x"))
    r("listing a", lambda: sorted(os.listdir(r.p("a"))))
    r("listing b", lambda: sorted(os.listdir(r.p("b"))))


@scenario
def posix_acls(r):
    """POSIX ACLs stored on the backing fs: grants and default ACLs."""
    import subprocess
    mkdir_as_root(r.p("pub"), 0o777)
    r.as_("1000 creates 0600", U1, G1, create, r.p("pub", "f"), b"acl", 0o600)
    r.as_("1001 reads before ACL", U2, G2, read, r.p("pub", "f"))
    res = subprocess.run(["setfacl", "-m", "u:%d:r" % U2, r.p("pub", "f")],
                         capture_output=True, text=True)
    r.rec("setfacl rc", res.returncode)
    r("getfacl", lambda: subprocess.run(
        ["getfacl", "-cp", r.p("pub", "f")], capture_output=True,
        text=True).stdout)
    r("lstat", lst, r.p("pub", "f"))
    r.as_("1001 reads with ACL grant", U2, G2, read, r.p("pub", "f"))
    r.as_("1002 still denied", 1002, 1002, read, r.p("pub", "f"))
    # an ACL that takes access away from a user the mode bits would allow
    r.as_("1000 creates 0644", U1, G1, create, r.p("pub", "open"), b"o",
          0o644)
    subprocess.run(["setfacl", "-m", "u:%d:---" % U2, r.p("pub", "open")],
                   check=True)
    r("lstat open", lst, r.p("pub", "open"))
    r.as_("1001 denied by ACL entry", U2, G2, read, r.p("pub", "open"))
    r.as_("1002 allowed", 1002, 1002, read, r.p("pub", "open"))
    mkdir_as_root(r.p("dacl"), 0o777)
    subprocess.run(["setfacl", "-d", "-m", "u::rwx,g::rwx,o::rwx",
                    r.p("dacl")], check=True)
    r.as_("create under default ACL", U1, G1, create, r.p("dacl", "g"),
          b"", 0o666)
    r.as_("mkdir under default ACL", U1, G1, os.mkdir, r.p("dacl", "sub"),
          0o777)
    r("default-ACL file mode (umask ignored)", lst, r.p("dacl", "g"))
    r("default-ACL dir mode", lst, r.p("dacl", "sub"))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_permissions(name, native_dir, mount):
    old = os.umask(0o022)
    try:
        conform(native_dir, mount, SCENARIOS[name])
    finally:
        os.umask(old)


def test_default_mount_options(mount):
    """The default mount really is allow_other,default_permissions."""
    with open("/proc/self/mounts") as f:
        line = [l for l in f if l.split()[1] == str(mount.mnt)][-1]
    opts = line.split()[3].split(",")
    assert "allow_other" in opts and "default_permissions" in opts, line

