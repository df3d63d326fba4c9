"""Multi-client coherence (contract issue 3): several eddyfs mounts of the
SAME backing directory, plus plain processes changing the backing directory
directly.

Every change is made (a) through mount A and (b) directly on the backing
directory while the other mounts have the old state cached (they observed it
first; with --coherence=events the kernel keeps it for a day unless the
daemon invalidates it).  The observers then poll with a bounded wait
(coherence_util.SEE_TIMEOUT, 10 s) and a test fails only if the old state
persists past that bound -- never on how fast the change was seen.  The
expected state is always what the backing directory itself shows after the
change, and the change must really differ from the old state.

Each change scenario has small "probes" (stat a name, read a file, list a
directory, ...).  Mounts B and C run all probes; in addition every probe
gets a read-only mount of its own that runs only that probe, because on a
writable mount the kernel refreshes some caches by itself (see RO_OPTIONS
and check_change) and would hide a missing invalidation.  Every probe that
the change alters was checked to fail against a daemon that ignores its
inotify events (except the xattr ones: the kernel does not cache xattrs).

Also: ttl/off/poll/writeback modes, the new stats keys, permission checks
after chmod/chown elsewhere, an inotify event storm, racing type changes
(no EIO), a writeback-cache deadlock hunt, and cross-mount locks (fcntl
POSIX/OFD and flock; each lock operation runs in its own process, see
coherence_util).
"""

import errno
import mmap
import os
import shutil
import signal
import subprocess
import textwrap
import time

import pytest

from conftest import pid_alive, run_as, wait_for
from coherence_util import (
    SEE_TIMEOUT, WATCH_SOURCES, LockHolder, eventually, get_lock, listing,
    lstat_view, read_or_err, readlink_or_err, short, skip_unless_source,
    stat_view, try_lock, watch_args, xattr_view)

PYTHON = "/usr/bin/python3"
EVENTS = ("--coherence=events",) + watch_args()
PROC_BOUND = 60.0          # generous bound for a process to finish


def wfile(p, data, mode=0o644):
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def pwrite(p, data, off):
    fd = os.open(p, os.O_WRONLY)
    try:
        os.pwrite(fd, data, off)
    finally:
        os.close(fd)


def field(p, key):
    """one field of lstat_view(p), or the error tuple"""
    v = lstat_view(p)
    return v.get(key) if isinstance(v, dict) else v


def rename_exchange_paths(a, b):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    AT_FDCWD, RENAME_EXCHANGE = -100, 2
    if libc.renameat2(AT_FDCWD, os.fsencode(str(a)), AT_FDCWD,
                      os.fsencode(str(b)), RENAME_EXCHANGE) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), str(a))


def mmap_read(p):
    try:
        with open(p, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                return b""
            with mmap.mmap(f.fileno(), size, prot=mmap.PROT_READ) as m:
                return bytes(m[:])
    except OSError as e:
        return ("err", errno.errorcode.get(e.errno))


# --------------------------------------------------------------------------
# scenarios: setup(backing) creates the initial state directly in the
# backing dir; `probes` are (name, fn(root)) pairs, each describing one
# thing that must change (through a mount or on the backing dir); change(root)
# makes the change through `root` (mount A or the backing dir).
#
# Probes are deliberately small and are also run one per mount: many
# observations refresh other caches as a side effect (a listing refreshes
# the entries and attributes of its names through READDIRPLUS; a stat after
# a read refetches the attributes because the read invalidated atime, and
# fresh attributes with another mtime drop the page cache), so a probe that
# shares its mount with others could hide a missing invalidation.

SCENARIOS = {}


def scenario(cls):
    SCENARIOS[cls.__name__] = cls
    cls.observe = staticmethod(lambda r, _c=cls: tuple(fn(r) for _n, fn in _c.probes))
    return cls


def P(name, fn):
    return (name, fn)


def owner(p):
    try:
        st = os.lstat(p)
        return (st.st_uid, st.st_gid)
    except OSError as e:
        return ("err", errno.errorcode.get(e.errno))


def times(p):
    try:
        st = os.lstat(p)
        return (st.st_mtime_ns, st.st_atime_ns)
    except OSError as e:
        return ("err", errno.errorcode.get(e.errno))


@scenario
class create:
    """create a file; the observers had the name cached as absent (negative
    entry) and the directory listed"""
    def setup(b):
        os.mkdir(b / "d")
        wfile(b / "d" / "keep", b"k")

    probes = [P("stat d/new", lambda r: lstat_view(r / "d" / "new")),
              P("read d/new", lambda r: read_or_err(r / "d" / "new")),
              P("list d", lambda r: listing(r / "d")),
              P("stat d", lambda r: lstat_view(r / "d"))]

    def change(r):
        wfile(r / "d" / "new", b"hello new file")


@scenario
class create_nested_negative:
    """mkdir -p n1/n2 + file, while n1 and n1/n2/f were cached as absent"""
    def setup(b):
        pass

    probes = [P("stat n1", lambda r: lstat_view(r / "n1")),
              P("stat n1/n2/f", lambda r: lstat_view(r / "n1" / "n2" / "f")),
              P("read n1/n2/f", lambda r: read_or_err(r / "n1" / "n2" / "f")),
              P("list /", lambda r: listing(r))]

    def change(r):
        os.makedirs(r / "n1" / "n2")
        wfile(r / "n1" / "n2" / "f", b"deep")


@scenario
class unlink:
    def setup(b):
        os.mkdir(b / "d")
        wfile(b / "d" / "f", b"doomed content")
        wfile(b / "d" / "other", b"o")

    probes = [P("stat d/f", lambda r: lstat_view(r / "d" / "f")),
              P("read d/f", lambda r: read_or_err(r / "d" / "f")),
              P("list d", lambda r: listing(r / "d"))]

    def change(r):
        os.unlink(r / "d" / "f")


@scenario
class rename_over_existing:
    def setup(b):
        wfile(b / "a", b"content of a, longer")
        wfile(b / "b", b"b", mode=0o600)

    probes = [P("stat a", lambda r: lstat_view(r / "a")),
              P("stat b", lambda r: lstat_view(r / "b")),
              P("read b", lambda r: read_or_err(r / "b")),
              P("read a", lambda r: read_or_err(r / "a")),
              P("list /", lambda r: listing(r))]

    def change(r):
        os.rename(r / "a", r / "b")


@scenario
class rename_dir_with_children:
    """rename d1 -> d2 (d2 an existing empty dir) while the observers had
    d1/sub/f, d1/g and the empty d2 cached"""
    def setup(b):
        os.makedirs(b / "d1" / "sub")
        wfile(b / "d1" / "sub" / "f", b"child f")
        wfile(b / "d1" / "g", b"child g")
        os.mkdir(b / "d2")

    probes = [P("old and new paths", lambda r: (
                  read_or_err(r / "d1" / "sub" / "f"), read_or_err(r / "d1" / "g"),
                  read_or_err(r / "d2" / "sub" / "f"), read_or_err(r / "d2" / "g"))),
              P("stat d1/sub", lambda r: lstat_view(r / "d1" / "sub")),
              P("list d2", lambda r: listing(r / "d2")),
              P("list d1/sub", lambda r: listing(r / "d1" / "sub")),
              P("list /", lambda r: listing(r))]

    def change(r):
        os.rename(r / "d1", r / "d2")


@scenario
class rename_dir_across_parents:
    def setup(b):
        os.makedirs(b / "p1" / "x" / "y")
        os.mkdir(b / "p2")
        wfile(b / "p1" / "x" / "y" / "f", b"moved deep file")

    probes = [P("read p1/x/y/f", lambda r: read_or_err(r / "p1" / "x" / "y" / "f")),
              P("read p2/x/y/f", lambda r: read_or_err(r / "p2" / "x" / "y" / "f")),
              P("list p1, p2", lambda r: (listing(r / "p1"), listing(r / "p2"))),
              P("stat p1, p2", lambda r: (lstat_view(r / "p1"), lstat_view(r / "p2")))]

    def change(r):
        os.rename(r / "p1" / "x", r / "p2" / "x")


@scenario
class chmod:
    def setup(b):
        os.mkdir(b / "d", 0o755)
        wfile(b / "d" / "f", b"x", mode=0o644)

    probes = [P("stat d/f", lambda r: lstat_view(r / "d" / "f")),
              P("stat d", lambda r: lstat_view(r / "d"))]

    def change(r):
        os.chmod(r / "d" / "f", 0o600)
        os.chmod(r / "d", 0o711)


@scenario
class chown:
    def setup(b):
        wfile(b / "f", b"x")

    probes = [P("uid/gid of f", lambda r: owner(r / "f"))]

    def change(r):
        os.chown(r / "f", 4321, 4322)


@scenario
class utimes:
    def setup(b):
        wfile(b / "f", b"x")

    probes = [P("times of f", lambda r: times(r / "f"))]

    def change(r):
        os.utime(r / "f", ns=(1_000_000_000_123, 2_000_000_000_456))


@scenario
class truncate_shrink:
    def setup(b):
        wfile(b / "f", bytes(range(256)) * 40)

    probes = [P("stat f", lambda r: lstat_view(r / "f")),
              P("read f", lambda r: read_or_err(r / "f"))]

    def change(r):
        os.truncate(r / "f", 100)


@scenario
class truncate_grow:
    def setup(b):
        wfile(b / "f", b"short")

    probes = truncate_shrink.probes

    def change(r):
        os.truncate(r / "f", 9000)


@scenario
class open_trunc_rewrite:
    """open(O_TRUNC) + write of new content"""
    def setup(b):
        wfile(b / "f", b"old old old old\n" * 100)

    probes = truncate_shrink.probes

    def change(r):
        wfile(r / "f", b"brand new\n")


@scenario
class append:
    def setup(b):
        wfile(b / "f", b"line1\n")

    probes = truncate_shrink.probes

    def change(r):
        with open(r / "f", "ab") as f:
            f.write(b"line2\n")


@scenario
class overwrite_same_size:
    """content change only (size unchanged): the page cache"""
    def setup(b):
        wfile(b / "f", b"a" * 12288)

    probes = [P("read f", lambda r: read_or_err(r / "f")),
              P("stat f", lambda r: lstat_view(r / "f"))]

    def change(r):
        pwrite(r / "f", b"b" * 4096, 4096)


@scenario
class overwrite_same_size_same_mtime:
    """content change only; size AND mtime restored afterwards"""
    def setup(b):
        wfile(b / "f", b"a" * 8192)
        os.utime(b / "f", ns=(1_500_000_000_000_000_000, 1_500_000_000_000_000_000))

    probes = [P("read f", lambda r: read_or_err(r / "f"))]

    def change(r):
        pwrite(r / "f", b"Z" * 100, 5000)
        os.utime(r / "f", ns=(1_500_000_000_000_000_000, 1_500_000_000_000_000_000))


@scenario
class page_cache_mmap:
    """a 256 KiB file read through mmap; one page in the middle changes"""
    def setup(b):
        wfile(b / "f", bytes(range(256)) * 1024)

    probes = [P("mmap read f", lambda r: mmap_read(r / "f"))]

    def change(r):
        pwrite(r / "f", b"\xee" * 4096, 128 * 1024)


@scenario
class overwrite_then_rename:
    """same-size content change, then the file is renamed"""
    def setup(b):
        wfile(b / "f", b"1" * 5000)

    probes = [P("read f, g", lambda r: (read_or_err(r / "f"), read_or_err(r / "g"))),
              P("stat g", lambda r: lstat_view(r / "g"))]

    def change(r):
        pwrite(r / "f", b"2" * 5000, 0)
        os.rename(r / "f", r / "g")


@scenario
class mkdir:
    def setup(b):
        os.mkdir(b / "d")
        wfile(b / "d" / "f", b"")

    probes = [P("stat d/sub", lambda r: lstat_view(r / "d" / "sub")),
              P("list d", lambda r: listing(r / "d")),
              P("stat d (nlink)", lambda r: lstat_view(r / "d")),
              P("list d/sub", lambda r: listing(r / "d" / "sub"))]

    def change(r):
        os.mkdir(r / "d" / "sub", 0o750)


@scenario
class rmdir:
    def setup(b):
        os.makedirs(b / "d" / "sub")

    probes = mkdir.probes

    def change(r):
        os.rmdir(r / "d" / "sub")


@scenario
class hardlink_add:
    """ln f g: nlink of f (cached in the observers) becomes 2"""
    def setup(b):
        wfile(b / "f", b"linked")

    probes = [P("stat f", lambda r: lstat_view(r / "f")),
              P("stat g", lambda r: lstat_view(r / "g")),
              P("list /", lambda r: listing(r))]

    def change(r):
        os.link(r / "f", r / "g")


@scenario
class hardlink_remove:
    """rm g (a second name of f): nlink of f back to 1"""
    def setup(b):
        wfile(b / "f", b"linked")
        os.link(b / "f", b / "g")

    probes = hardlink_add.probes

    def change(r):
        os.unlink(r / "g")


@scenario
class hardlink_other_dir:
    """ln d1/f d2/g where the observers only know d1/f"""
    def setup(b):
        os.mkdir(b / "d1")
        os.mkdir(b / "d2")
        wfile(b / "d1" / "f", b"linked")

    probes = [P("stat d1/f", lambda r: lstat_view(r / "d1" / "f"))]

    def change(r):
        os.link(r / "d1" / "f", r / "d2" / "g")


@scenario
class hardlink_write_other_name:
    """d1/f and d2/g are one file; the observers only looked at d1/f; the
    file is changed through d2/g"""
    def setup(b):
        os.mkdir(b / "d1")
        os.mkdir(b / "d2")
        wfile(b / "d1" / "f", b"o" * 3000)
        os.link(b / "d1" / "f", b / "d2" / "g")

    probes = [P("stat d1/f", lambda r: lstat_view(r / "d1" / "f")),
              P("read d1/f", lambda r: read_or_err(r / "d1" / "f"))]

    def change(r):
        with open(r / "d2" / "g", "ab") as f:
            f.write(b"appended through the other name")
        os.chmod(r / "d2" / "g", 0o640)


@scenario
class symlink_retarget:
    """rm l; ln -s t2 l"""
    def setup(b):
        wfile(b / "t1", b"one")
        wfile(b / "t2", b"two two")
        os.symlink("t1", b / "l")

    probes = [P("readlink l", lambda r: readlink_or_err(r / "l")),
              P("lstat l", lambda r: lstat_view(r / "l")),
              P("read through l", lambda r: read_or_err(r / "l")),
              P("stat through l", lambda r: stat_view(r / "l"))]

    def change(r):
        os.unlink(r / "l")
        os.symlink("t2", r / "l")


@scenario
class symlink_retarget_by_rename:
    """ln -s t2 tmp; mv tmp l (atomic retarget)"""
    def setup(b):
        wfile(b / "t1", b"one")
        wfile(b / "t2", b"two two")
        os.symlink("t1", b / "l")

    probes = [P("readlink l", lambda r: readlink_or_err(r / "l")),
              P("read through l", lambda r: read_or_err(r / "l")),
              P("list /", lambda r: listing(r))]

    def change(r):
        os.symlink("t2", r / "tmp")
        os.rename(r / "tmp", r / "l")


# (the kernel does not cache extended attributes of FUSE files, so the xattr
# scenarios only guard against a cache appearing without invalidation)
@scenario
class xattr_set:
    def setup(b):
        wfile(b / "f", b"x")

    probes = [P("xattrs of f", lambda r: xattr_view(r / "f"))]

    def change(r):
        os.setxattr(r / "f", "user.coh", b"value-1")


@scenario
class xattr_replace_same_size:
    def setup(b):
        wfile(b / "f", b"x")
        os.setxattr(b / "f", "user.coh", b"value-1")

    probes = xattr_set.probes

    def change(r):
        os.setxattr(r / "f", "user.coh", b"value-2")


@scenario
class xattr_remove:
    def setup(b):
        wfile(b / "f", b"x")
        os.setxattr(b / "f", "user.coh", b"value-1")
        os.setxattr(b / "f", "user.other", b"stays")

    probes = xattr_set.probes

    def change(r):
        os.removexattr(r / "f", "user.coh")


@scenario
class listing_changes:
    """a listed directory gains, loses and renames entries"""
    def setup(b):
        os.mkdir(b / "d")
        for i in range(10):
            wfile(b / "d" / f"e{i}", b"")

    probes = [P("list d", lambda r: listing(r / "d")),
              P("stat d/e0, d/e20", lambda r: (lstat_view(r / "d" / "e0"),
                                             lstat_view(r / "d" / "e20")))]

    def change(r):
        for n in ("e10", "e11"):
            wfile(r / "d" / n, b"")
        os.mkdir(r / "d" / "e12")
        os.unlink(r / "d" / "e0")
        os.unlink(r / "d" / "e1")
        os.rename(r / "d" / "e2", r / "d" / "e20")


@scenario
class rm_rf_tree:
    """rm -rf of a tree whose files and directories the observers cached"""
    def setup(b):
        os.makedirs(b / "d" / "a" / "b")
        wfile(b / "d" / "a" / "b" / "c", b"deep file")
        wfile(b / "d" / "a" / "x", b"x")

    probes = [P("stat d/a/b/c", lambda r: lstat_view(r / "d" / "a" / "b" / "c")),
              P("read d/a/b/c", lambda r: read_or_err(r / "d" / "a" / "b" / "c")),
              P("list d/a/b", lambda r: listing(r / "d" / "a" / "b")),
              P("stat d", lambda r: lstat_view(r / "d"))]

    def change(r):
        shutil.rmtree(r / "d")


@scenario
class replace_tree:
    """rm -rf d and re-create the same paths with other contents (what a
    checkout or an unpack does)"""
    def setup(b):
        os.makedirs(b / "d" / "a" / "b")
        wfile(b / "d" / "a" / "b" / "c", b"old version")
        wfile(b / "d" / "a" / "gone", b"")

    probes = [P("read d/a/b/c", lambda r: read_or_err(r / "d" / "a" / "b" / "c")),
              P("stat d/a/b/c", lambda r: lstat_view(r / "d" / "a" / "b" / "c")),
              P("list d/a", lambda r: listing(r / "d" / "a")),
              P("stat d/a/new", lambda r: lstat_view(r / "d" / "a" / "new"))]

    def change(r):
        shutil.rmtree(r / "d")
        os.makedirs(r / "d" / "a" / "b")
        wfile(r / "d" / "a" / "b" / "c", b"NEW VERSION, longer")
        wfile(r / "d" / "a" / "new", b"n")


@scenario
class rename_exchange:
    """renameat2(RENAME_EXCHANGE) of two files"""
    def setup(b):
        wfile(b / "x", b"content of x")
        wfile(b / "y", b"y!")

    probes = [P("read x", lambda r: read_or_err(r / "x")),
              P("stat y", lambda r: lstat_view(r / "y")),
              P("read y", lambda r: read_or_err(r / "y"))]

    def change(r):
        rename_exchange_paths(r / "x", r / "y")


@scenario
class listing_root:
    """the mount root's own listing"""
    def setup(b):
        wfile(b / "r0", b"")

    probes = [P("list /", lambda r: listing(r))]

    def change(r):
        wfile(r / "r1", b"")
        os.unlink(r / "r0")


@scenario
class replace_file_by_dir:
    """a name changes type: file -> directory"""
    def setup(b):
        wfile(b / "x", b"was a file")

    probes = [P("stat x", lambda r: lstat_view(r / "x")),
              P("list x", lambda r: listing(r / "x")),
              P("read x", lambda r: read_or_err(r / "x"))]

    def change(r):
        os.unlink(r / "x")
        os.mkdir(r / "x")
        wfile(r / "x" / "inner", b"i")


# --------------------------------------------------------------------------
# drivers

def shared_backing(workdir, name="shared"):
    b = workdir / name
    b.mkdir()
    os.chmod(b, 0o755)
    return b


def check_change(s, backing, changer_root, observers, own=None, single=()):
    """Prime every observer (and `own`) with all probes and every `single`
    (name, root, probe) with its one probe; make the change through
    changer_root; then `own` must show it at once, everybody else
    eventually."""
    before = s.observe(backing)
    for name, root in observers + ([own] if own else []):
        got = s.observe(root)
        assert got == before, (
            f"{name} does not show the initial state\n  backing: "
            f"{short(before)}\n  {name}: {short(got)}")
    for name, root, (pname, fn) in single:
        got, want = fn(root), fn(backing)
        assert got == want, (f"{name} ({pname}) does not show the initial state\n"
                             f"  backing: {short(want)}\n  {name}: {short(got)}")
    s.change(changer_root)
    after = s.observe(backing)
    assert after != before, f"the change made no difference: {short(after)}"
    if own:
        name, root = own
        got = s.observe(root)
        assert got == after, (
            f"{name} does not see its own change at once\n"
            f"  expected: {short(after)}\n  observed: {short(got)}")
    for name, root, (pname, fn) in single:
        eventually(lambda: fn(root), fn(backing),
                   f"{name}, probe '{pname}' only, after a change made through "
                   f"{changer_root}")
    for name, root in observers:
        eventually(lambda: s.observe(root), after,
                   f"{name} (all probes: {[n for n, _ in s.probes]}) after a "
                   f"change made through {changer_root}")


# Read-only observer mounts: on a writable FUSE mount every read marks the
# atime stale, so the kernel refetches the attributes at the next read or
# stat and (AUTO_INVAL_DATA) drops the page cache when mtime or size moved;
# that hides a missing data invalidation.  A read-only mount never marks
# atime stale, so there only the daemon's invalidation can refresh a cached
# page.
RO_OPTIONS = ("allow_other", "default_permissions", "ro")


def probe_mounts(s, make_mount, backing, args):
    """One extra read-only mount per probe, which only ever runs that
    probe."""
    out = []
    for i, p in enumerate(s.probes):
        m = make_mount(backing=backing, extra_args=args, options=RO_OPTIONS)
        out.append((f"read-only probe mount {i}", m.mnt, p))
    return out


# Known limits of inotify-based change detection (README, "Coherence"):
# a file with one link that gains a second link in a directory this mount
# has never looked at changes st_nlink without any event the mount sees
# (Linux reports link-count changes only to a watch on the inode itself).
# fanotify's filesystem mark sees them: no known limits there.
KNOWN_LIMITS = {
    "inotify": {
        "hardlink_other_dir": "nlink change by a link in an unwatched directory: "
                              "no inotify event",
    },
    "fanotify": {},
}


@pytest.mark.parametrize("source", WATCH_SOURCES)
@pytest.mark.parametrize("via", ["mountA", "direct"])
@pytest.mark.parametrize("scen", sorted(SCENARIOS))
def test_change_seen_by_other_mounts(scen, via, source, workdir, make_mount, request):
    """Mounts A, B, C and one mount per probe, all of one backing dir, all
    with change source `source`.  The change is made through mount A (A
    must see it at once, the others eventually) or directly on the backing
    dir (all eventually).  B and C run all probes, each probe mount only its
    own probe."""
    skip_unless_source(source)
    if scen in KNOWN_LIMITS[source]:
        request.applymarker(pytest.mark.xfail(reason=KNOWN_LIMITS[source][scen],
                                              strict=False))
    s = SCENARIOS[scen]
    args = ("--coherence=events",) + watch_args(source)
    backing = shared_backing(workdir)
    s.setup(backing)
    ma, mb, mc = (make_mount(backing=backing, extra_args=args) for _ in range(3))
    for m in (ma, mb, mc):
        assert m.stats()[f"change_source_{source}"] == 1, m.stats()
    single = probe_mounts(s, make_mount, backing, args)
    if via == "mountA":
        check_change(s, backing, ma.mnt,
                     [("mount B", mb.mnt), ("mount C", mc.mnt)],
                     own=("mount A", ma.mnt), single=single)
    else:
        check_change(s, backing, backing,
                     [("mount A", ma.mnt), ("mount B", mb.mnt),
                      ("mount C", mc.mnt)], single=single)


def test_repeated_changes_ping_pong(workdir, make_mount):
    """Two mounts take turns changing one file and one directory; each sees
    the other's every change (catches invalidations that only work once, and
    own-change suppression that swallows a foreign change)."""
    backing = shared_backing(workdir)
    wfile(backing / "f", b"0" * 64)
    os.mkdir(backing / "d")
    ma = make_mount(backing=backing, extra_args=EVENTS)
    mb = make_mount(backing=backing, extra_args=EVENTS)
    roots = [("mount A", ma.mnt), ("mount B", mb.mnt), ("direct", backing)]
    for i in range(30):
        wname, wroot = roots[i % 3]
        data = (b"%02d" % i) * 32
        pwrite(wroot / "f", data, 0)
        os.chmod(wroot / "f", 0o600 if i % 2 else 0o644)
        if i % 2:
            os.rmdir(wroot / "d" / f"s{i - 1}")
        else:
            os.mkdir(wroot / "d" / f"s{i}")
        want = (read_or_err(backing / "f"), lstat_view(backing / "f"),
                listing(backing / "d"))
        for oname, oroot in roots:
            if oroot == backing:
                continue
            eventually(lambda: (read_or_err(oroot / "f"), lstat_view(oroot / "f"),
                                listing(oroot / "d")), want,
                       f"round {i}: {oname} after a change by {wname}")


def test_open_fd_sees_changes(workdir, make_mount):
    """A file kept open in B: pread and fstat through the same fd show
    changes made through A and directly."""
    backing = shared_backing(workdir)
    wfile(backing / "f", b"A" * 10000)
    ma = make_mount(backing=backing, extra_args=EVENTS)
    mb = make_mount(backing=backing, extra_args=EVENTS)
    fd = os.open(mb.mnt / "f", os.O_RDONLY)
    try:
        assert os.pread(fd, 20000, 0) == b"A" * 10000
        for root, data in ((ma.mnt, b"B" * 10000), (backing, b"C" * 10000),
                           (ma.mnt, b"D" * 20000), (backing, b"E" * 500)):
            wfile(root / "f", data)
            eventually(lambda: (os.pread(fd, 30000, 0), os.fstat(fd).st_size),
                       (data, len(data)),
                       f"pread/fstat through an fd open in B after rewrite via {root}")
    finally:
        os.close(fd)


def test_cwd_inside_renamed_dir(workdir, make_mount):
    """A process in B (read-only, see RO_OPTIONS) has its cwd inside a
    directory that is renamed elsewhere: relative lookups keep working and
    show later changes (a changed file, a name it had looked up as absent)."""
    backing = shared_backing(workdir)
    os.makedirs(backing / "old" / "in")
    wfile(backing / "old" / "in" / "f", b"F")
    ma = make_mount(backing=backing, extra_args=EVENTS)
    mb = make_mount(backing=backing, extra_args=EVENTS, options=RO_OPTIONS)
    code = textwrap.dedent("""
        import os, sys, time
        os.chdir(sys.argv[1])
        assert open("f", "rb").read() == b"F"
        assert not os.path.exists("new-child")
        sys.stdout.write("ready\\n"); sys.stdout.flush()
        sys.stdin.readline()
        deadline = time.monotonic() + float(sys.argv[2])
        while True:
            try:
                ok = open("f", "rb").read() == b"F2" and os.path.exists("new-child")
            except OSError:
                ok = False
            if ok:
                print("ok"); break
            if time.monotonic() > deadline:
                print("stale", os.listdir("."), open("f", "rb").read()); break
            time.sleep(0.02)
    """)
    p = subprocess.Popen([PYTHON, "-c", code, str(mb.mnt / "old" / "in"),
                          str(SEE_TIMEOUT)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        os.rename(ma.mnt / "old", ma.mnt / "new")
        wfile(ma.mnt / "new" / "in" / "f", b"F2")
        wfile(backing / "new" / "in" / "new-child", b"")
        p.stdin.write("go\n")
        p.stdin.flush()
        out, _ = p.communicate(timeout=PROC_BOUND)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert out.strip() == "ok", f"process with cwd in B: {out}"
    eventually(lambda: (read_or_err(mb.mnt / "new" / "in" / "f"),
                        lstat_view(mb.mnt / "old")),
               (b"F2", ("err", "ENOENT")), "B by path after the rename")


def test_own_change_then_foreign_change(workdir, make_mount):
    """A changes a file and immediately afterwards someone else changes it
    again (same size, so only invalidation can reveal it): the foreign change
    must not be mistaken for A's own and suppressed."""
    backing = shared_backing(workdir)
    wfile(backing / "f", b"0" * 4096)
    os.mkdir(backing / "d")
    ma = make_mount(backing=backing, extra_args=EVENTS)
    mb = make_mount(backing=backing, extra_args=EVENTS)
    for i in range(40):
        other = backing if i % 2 else mb.mnt
        assert read_or_err(ma.mnt / "f") == read_or_err(backing / "f")
        pwrite(ma.mnt / "f", b"a%03d" % i * 1024, 0)
        pwrite(other / "f", b"b%03d" % i * 1024, 0)
        eventually(lambda: read_or_err(ma.mnt / "f"), b"b%03d" % i * 1024,
                   f"round {i}: A after its own write was overwritten via {other}")
    # the same for names: A removes, the other side re-creates at once
    for i in range(20):
        other = backing if i % 2 else mb.mnt
        name = f"n{i}"
        wfile(ma.mnt / "d" / name, b"mine")
        os.unlink(ma.mnt / "d" / name)
        assert lstat_view(ma.mnt / "d" / name) == ("err", "ENOENT")
        wfile(other / "d" / name, b"theirs")
        eventually(lambda: read_or_err(ma.mnt / "d" / name), b"theirs",
                   f"round {i}: A after {other} re-created a name A had removed")


def test_failed_create_does_not_hide_foreign_create(workdir, make_mount):
    """Operations of A that fail (EEXIST, ENOTEMPTY, ENOENT) or create
    nothing new (O_CREAT on an existing file) must not make A ignore a later
    foreign change of the same name."""
    backing = shared_backing(workdir)
    wfile(backing / "f", b"exists")
    os.mkdir(backing / "dir")
    wfile(backing / "dir" / "x", b"")
    ma = make_mount(backing=backing, extra_args=EVENTS)
    mb = make_mount(backing=backing, extra_args=EVENTS)
    with pytest.raises(FileExistsError):
        os.mkdir(ma.mnt / "f")
    with pytest.raises(FileExistsError):
        os.open(ma.mnt / "f", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    with pytest.raises(OSError):
        os.rmdir(ma.mnt / "dir")
    with pytest.raises(FileNotFoundError):
        os.rename(ma.mnt / "missing", ma.mnt / "f2")
    os.close(os.open(ma.mnt / "f", os.O_CREAT | os.O_WRONLY))
    # now the name goes away and comes back elsewhere, A watching
    os.unlink(backing / "f")
    eventually(lambda: lstat_view(ma.mnt / "f"), ("err", "ENOENT"),
               "A after the direct unlink of f")
    wfile(mb.mnt / "f", b"re-created by B")
    eventually(lambda: read_or_err(ma.mnt / "f"), b"re-created by B",
               "A after B re-created f")
    os.mkdir(backing / "f2")
    eventually(lambda: field(ma.mnt / "f2", "type"), "dir",
               "A after f2 was created directly")


def _open_as_nobody(path):
    def fn(p):
        try:
            with open(p, "rb") as f:
                return f.read()
        except OSError as e:
            return ("err", errno.errorcode.get(e.errno))
    return run_as(65534, 65534, fn, str(path))


@pytest.mark.parametrize("via", ["mountA", "direct"])
def test_permission_change_enforced(via, workdir, make_mount):
    """With default_permissions the kernel checks access against the cached
    attributes: after a chmod/chown elsewhere, an unprivileged user must
    lose (and regain) access through the other mounts."""
    backing = shared_backing(workdir)
    os.mkdir(backing / "d", 0o755)
    os.chmod(backing / "d", 0o755)
    wfile(backing / "d" / "f", b"secret")
    os.chmod(backing / "d" / "f", 0o644)
    ma = make_mount(backing=backing, extra_args=EVENTS)
    mb = make_mount(backing=backing, extra_args=EVENTS)
    root = ma.mnt if via == "mountA" else backing
    assert _open_as_nobody(mb.mnt / "d" / "f") == b"secret"
    os.chmod(root / "d", 0o700)                  # search permission gone
    eventually(lambda: _open_as_nobody(mb.mnt / "d" / "f"), ("err", "EACCES"),
               f"nobody reading d/f through B after chmod 700 d via {via}")
    os.chmod(root / "d", 0o755)
    eventually(lambda: _open_as_nobody(mb.mnt / "d" / "f"), b"secret",
               f"nobody reading d/f through B after chmod 755 d via {via}")
    os.chmod(root / "d" / "f", 0o600)            # read permission gone
    eventually(lambda: _open_as_nobody(mb.mnt / "d" / "f"), ("err", "EACCES"),
               f"nobody reading d/f through B after chmod 600 d/f via {via}")
    os.chown(root / "d" / "f", 65534, 65534)     # ... but now it is theirs
    eventually(lambda: _open_as_nobody(mb.mnt / "d" / "f"), b"secret",
               f"nobody reading d/f through B after chown nobody d/f via {via}")


def test_event_storm(workdir, make_mount):
    """Many more changes than the inotify queue holds (16384 events by
    default): whatever the daemon does about the overflow, B ends up with
    the right view; names it had cached as absent appear, cached ones that
    went away disappear."""
    backing = shared_backing(workdir)
    os.mkdir(backing / "d")
    for i in range(200):
        wfile(backing / "d" / f"old{i}", b"o")
    mb = make_mount(backing=backing, extra_args=EVENTS, options=RO_OPTIONS)
    assert len(listing(mb.mnt / "d")) == 200
    for i in range(0, 200, 10):
        assert read_or_err(mb.mnt / "d" / f"old{i}") == b"o"
    for i in range(0, 20000, 1000):
        assert lstat_view(mb.mnt / "d" / f"new{i}") == ("err", "ENOENT")
    n = 20000
    for i in range(n):
        wfile(backing / "d" / f"new{i}", b"n")
    for i in range(200):
        os.unlink(backing / "d" / f"old{i}")
    want = listing(backing / "d")
    eventually(lambda: [lstat_view(mb.mnt / "d" / f"new{i}") != ("err", "ENOENT")
                        for i in range(0, n, 1000)]
               + [lstat_view(mb.mnt / "d" / f"old{i}") for i in range(0, 200, 10)],
               [True] * (n // 1000) + [("err", "ENOENT")] * 20,
               "B: names cached before the storm", timeout=30)
    eventually(lambda: listing(mb.mnt / "d"), want, "B's listing after the storm",
               timeout=30, interval=0.5)
    st = mb.stats()
    print({k: st.get(k) for k in STATS_KEYS + ("change_degraded",)})


RACE_USER = textwrap.dedent("""
    import errno, os, random, sys, time, collections, json
    root, seconds, seed = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    c = collections.Counter()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        p = os.path.join(root, "t%d" % rng.randrange(2))
        k = rng.choice(["open-write", "chmod", "truncate", "lstat", "listdir"])
        try:
            if k == "open-write":
                fd = os.open(p, os.O_WRONLY | os.O_NOFOLLOW)
                os.write(fd, b"y")
                os.close(fd)
            elif k == "chmod":
                os.chmod(p, 0o644)
            elif k == "truncate":
                os.truncate(p, 3)
            elif k == "lstat":
                os.lstat(p)
            else:
                os.listdir(p)
            c[k + " ok"] += 1
        except OSError as e:
            c[k + " " + errno.errorcode.get(e.errno, str(e.errno))] += 1
    print(json.dumps(c))
""")

RACE_TOGGLER = textwrap.dedent("""
    import os, random, sys, time
    root, seconds, seed = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        p = os.path.join(root, "t%d" % rng.randrange(2))
        k = rng.randrange(6)
        try:
            if k == 0:
                os.mkdir(p)
            elif k == 1:
                os.rmdir(p)
            elif k == 2:
                with open(p, "w") as f:
                    f.write("x")
            elif k == 3:
                os.unlink(p)
            elif k == 4:
                os.symlink("zz", p)
            else:
                os.rename(p, os.path.join(root, "t%d" % rng.randrange(2)))
        except OSError:
            pass
    print("done")
""")

# what a process may see when another client changes a name under it: the
# errors a local filesystem gives for the old or the new object (ESTALE, as
# on NFS, is tolerated); EIO or EOPNOTSUPP are not among them
RACE_OK_ERRORS = {"ENOENT", "EISDIR", "ENOTDIR", "ELOOP", "ESTALE", "EEXIST",
                  "ENOTEMPTY", "EINVAL"}


def test_racing_type_changes_no_eio(workdir, make_mount):
    """Names flip between file, directory and symlink (through mount B and
    directly; ext4 reuses the freed inode numbers at once) while processes
    use them through mount A: every operation gets a result or an ordinary
    error, never EIO (a FUSE inode the kernel had to declare bad, e.g.
    because a node id came back with another type) or EOPNOTSUPP."""
    import json
    backing = shared_backing(workdir)
    ma = make_mount(backing=backing, extra_args=EVENTS)
    mb = make_mount(backing=backing, extra_args=EVENTS)
    secs = "5"
    cmds = [[PYTHON, "-c", RACE_TOGGLER, str(mb.mnt), secs, "1"],
            [PYTHON, "-c", RACE_TOGGLER, str(backing), secs, "2"],
            [PYTHON, "-c", RACE_USER, str(ma.mnt), secs, "3"],
            [PYTHON, "-c", RACE_USER, str(ma.mnt), secs, "4"]]
    hung, outs = _run_bounded(cmds, PROC_BOUND)
    assert not hung, f"still running after {PROC_BOUND}s: {hung}"
    total = {}
    for c, rc, out, errs in outs:
        assert rc == 0, f"{c[3:]} exited {rc}: {errs[-2000:]}"
        if c[3] == str(ma.mnt):
            for k, v in json.loads(out).items():
                total[k] = total.get(k, 0) + v
    bad = {k: v for k, v in total.items()
           if not k.endswith(" ok") and k.split()[-1] not in RACE_OK_ERRORS}
    assert not bad, (f"operations through A racing with type changes elsewhere "
                     f"failed with {bad}\n  all outcomes: {sorted(total.items())}")
    assert sum(v for k, v in total.items() if k.endswith(" ok")) > 0, total


# --------------------------------------------------------------------------
# other modes

MODE_SCENARIOS = ["create", "unlink", "chmod", "overwrite_same_size",
                  "listing_changes", "symlink_retarget", "rename_dir_with_children"]


@pytest.mark.parametrize("via", ["mountA", "direct"])
@pytest.mark.parametrize("scen", MODE_SCENARIOS)
@pytest.mark.parametrize("args", [("--coherence=ttl:300",),
                                  ("--watch=poll:200",),
                                  ("--coherence=events", "--watch=inotify"),
                                  ("--coherence=events", "--writeback-cache")],
                         ids=["ttl300", "poll200", "inotify", "writeback"])
def test_modes_eventually_see_changes(args, scen, via, workdir, make_mount):
    s = SCENARIOS[scen]
    backing = shared_backing(workdir)
    s.setup(backing)
    ma = make_mount(backing=backing, extra_args=args)
    mb = make_mount(backing=backing, extra_args=args)
    if via == "mountA":
        check_change(s, backing, ma.mnt, [("mount B", mb.mnt)],
                     own=("mount A", ma.mnt))
    else:
        check_change(s, backing, backing,
                     [("mount A", ma.mnt), ("mount B", mb.mnt)])


@pytest.mark.parametrize("via", ["mountA", "direct"])
@pytest.mark.parametrize("scen", MODE_SCENARIOS + ["page_cache_mmap", "hardlink_add",
                                                   "xattr_set", "truncate_shrink"])
def test_off_sees_changes_immediately(scen, via, workdir, make_mount):
    """--coherence=off caches nothing: the next syscall after the change
    already shows it (no waiting)."""
    s = SCENARIOS[scen]
    backing = shared_backing(workdir)
    s.setup(backing)
    ma = make_mount(backing=backing, extra_args=("--coherence=off",))
    mb = make_mount(backing=backing, extra_args=("--coherence=off",))
    before = s.observe(backing)
    assert s.observe(mb.mnt) == before and s.observe(ma.mnt) == before
    s.change(ma.mnt if via == "mountA" else backing)
    after = s.observe(backing)
    assert after != before
    for name, root in (("mount A", ma.mnt), ("mount B", mb.mnt)):
        got = s.observe(root)
        assert got == after, (f"--coherence=off {name} right after the change\n"
                              f"  expected: {short(after)}\n  observed: {short(got)}")


def test_env_coherence_mode(workdir, make_mount):
    """EDDYFS_COHERENCE=off (env fallback) behaves like --coherence=off."""
    from conftest import base_env
    backing = shared_backing(workdir)
    wfile(backing / "f", b"1111")
    mb = make_mount(backing=backing, env=base_env(EDDYFS_COHERENCE="off"))
    assert read_or_err(mb.mnt / "f") == b"1111"
    pwrite(backing / "f", b"2222", 0)
    assert read_or_err(mb.mnt / "f") == b"2222"


# --------------------------------------------------------------------------
# stats

STATS_KEYS = ("notify_sent", "notify_coalesced", "notify_skipped", "notify_failed",
              "notify_overflows", "notify_queued", "notify_invalidate_all",
              "change_events", "change_own_suppressed", "change_fallbacks",
              "watches", "watch_failures")


def test_stats_keys_move(workdir, make_mount):
    backing = shared_backing(workdir)
    os.mkdir(backing / "d")
    ma = make_mount(backing=backing, extra_args=EVENTS)
    mb = make_mount(backing=backing, extra_args=EVENTS)
    names = [f"n{i}" for i in range(10)]
    for n in names:                               # negative entries in B
        assert lstat_view(mb.mnt / "d" / n) == ("err", "ENOENT")
    assert listing(mb.mnt / "d") == []
    sa0, sb0 = ma.stats(), mb.stats()
    for s, who in ((sa0, "A"), (sb0, "B")):
        missing = [k for k in STATS_KEYS if k not in s]
        assert not missing, f"stats of {who} lack {missing}: {s}"
        assert s["watches"] >= 1, f"{who}: watches {s['watches']}"
    for n in names:
        wfile(ma.mnt / "d" / n, b"x")
    for n in names:
        eventually(lambda: field(mb.mnt / "d" / n, "size"), 1, f"B sees d/{n}")
    # B's daemon sent invalidations for changes it did not make
    sb1 = wait_for(lambda: (lambda s: s if s["notify_sent"] > sb0["notify_sent"]
                            and s["change_events"] > sb0["change_events"] else None)(mb.stats()),
                   timeout=SEE_TIMEOUT, what="notify_sent/change_events to grow in B")
    # A recognised its own creates and did not echo them
    sa1 = wait_for(lambda: (lambda s: s if s["change_own_suppressed"]
                            >= sa0["change_own_suppressed"] + len(names) else None)(ma.stats()),
                   timeout=SEE_TIMEOUT,
                   what="change_own_suppressed to grow by the creates in A")
    assert sa1["change_events"] > sa0["change_events"]
    for s, who in ((sa1, "A"), (sb1, "B")):
        for k in ("notify_failed", "notify_overflows", "watch_failures",
                  "change_fallbacks", "notify_invalidate_all"):
            assert s[k] == 0, f"{who}: {k} = {s[k]} after a handful of creates\n{s}"


# --------------------------------------------------------------------------
# deadlock hunt with the writeback cache

WRITER = textwrap.dedent("""
    import os, random, sys, time
    root, role, seconds, seed = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    rng = random.Random(seed)
    files = [os.path.join(root, "w%d" % i) for i in range(3)]
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        p = rng.choice(files)
        k = rng.random()
        try:
            if role == "appender":
                if k < 0.4:
                    with open(p, "ab") as f:
                        f.write(os.urandom(rng.randrange(1, 9000)))
                elif k < 0.8:
                    fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)
                    os.pwrite(fd, b"x" * rng.randrange(1, 70000), rng.randrange(0, 200000))
                    if rng.random() < 0.2:
                        os.fsync(fd)
                    os.close(fd)
                elif k < 0.9:
                    with open(p, "rb") as f:
                        f.read()
                else:
                    os.stat(p)
            elif role == "mmapper":
                # each mmap write in a child: a truncate elsewhere can make
                # the mapping's pages vanish (SIGBUS), which must only kill
                # that child
                pid = os.fork()
                if pid == 0:
                    import mmap
                    try:
                        fd = os.open(p, os.O_RDWR)
                        size = os.fstat(fd).st_size
                        if size:
                            m = mmap.mmap(fd, min(size, 65536))
                            off = rng.randrange(0, len(m))
                            m[off:off + 1] = b"m"
                            if rng.random() < 0.3:
                                m.flush()
                            m.close()
                    finally:
                        os._exit(0)
                os.waitpid(pid, 0)
            else:
                if k < 0.35:
                    os.truncate(p, rng.randrange(0, 100000))
                elif k < 0.7:
                    with open(p, "wb") as f:
                        f.write(b"r" * rng.randrange(0, 50000))
                elif k < 0.85:
                    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
                    os.pwrite(fd, b"y" * 4096, rng.randrange(0, 100000))
                    os.ftruncate(fd, rng.randrange(0, 50000))
                    os.close(fd)
                else:
                    with open(p, "rb") as f:
                        f.read()
        except OSError:
            pass
        n += 1
    print(n)
""")


def _run_bounded(cmds, bound):
    """Start all argv lists, wait for all within `bound` seconds; kill the
    laggards and report them."""
    procs = [(c, subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)) for c in cmds]
    deadline = time.monotonic() + bound
    hung, outs = [], []
    for c, p in procs:
        try:
            out, errs = p.communicate(timeout=max(0.1, deadline - time.monotonic()))
            outs.append((c, p.returncode, out, errs))
        except subprocess.TimeoutExpired:
            hung.append(c)
    for c, p in procs:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
    return hung, outs


def _stat_bounded(path, bound=30):
    r = subprocess.run([PYTHON, "-c", "import os,sys; os.stat(sys.argv[1]); "
                        "os.path.isdir(sys.argv[1]) and os.listdir(sys.argv[1]); "
                        "print('ok')", str(path)],
                       capture_output=True, text=True, timeout=bound)
    return r.stdout.strip()


def test_writeback_cache_no_deadlock(workdir, make_mount):
    backing = shared_backing(workdir)
    for i in range(3):
        wfile(backing / f"w{i}", b"seed" * 1000)
    args = ("--coherence=events", "--writeback-cache")
    ma = make_mount(backing=backing, extra_args=args)
    mb = make_mount(backing=backing, extra_args=args)
    secs = "5"
    cmds = [[PYTHON, "-c", WRITER, str(ma.mnt), "appender", secs, str(i)] for i in range(3)]
    cmds.append([PYTHON, "-c", WRITER, str(ma.mnt), "mmapper", secs, "5"])
    cmds.append([PYTHON, "-c", WRITER, str(backing), "rewriter", secs, "10"])
    cmds.append([PYTHON, "-c", WRITER, str(mb.mnt), "rewriter", secs, "11"])
    hung, outs = _run_bounded(cmds, PROC_BOUND)
    assert not hung, f"writers still running after {PROC_BOUND}s (deadlock?): {hung}"
    for c, rc, out, errs in outs:
        assert rc == 0, f"{c[3:]} exited {rc}: {errs[-2000:]}"
        assert int(out.strip()) > 0
    for m in (ma, mb):
        try:
            assert _stat_bounded(m.mnt) == "ok"
            assert _stat_bounded(m.mnt / "w0") == "ok"
        except subprocess.TimeoutExpired:
            pytest.fail(f"{m.mnt} does not answer stat after the writers (deadlock?)")
        assert pid_alive(m.pid)
    # (no convergence check: with the writeback cache the kernel keeps its
    # own i_size and ignores the size the daemon reports, so a size change
    # made elsewhere is not guaranteed to show -- the contract says the
    # option is not meant for backing dirs changed elsewhere)
    for i in range(3):
        for m in (ma, mb):
            r = subprocess.run([PYTHON, "-c", "import sys; open(sys.argv[1], 'rb').read()",
                                str(m.mnt / f"w{i}")], capture_output=True, text=True,
                               timeout=PROC_BOUND)
            assert r.returncode == 0, f"reading {m.mnt}/w{i} afterwards: {r.stderr}"


# --------------------------------------------------------------------------
# locks across mounts

DENIED = ("err EAGAIN", "err EACCES")


@pytest.fixture
def lockenv(workdir, make_mount, request):
    backing = shared_backing(workdir)
    wfile(backing / "f", b"L" * 1000)
    locks = getattr(request, "param", "shared")
    args = tuple(EVENTS) + (f"--locks={locks}",)
    ma = make_mount(backing=backing, extra_args=args)
    mb = make_mount(backing=backing, extra_args=args)
    holders = []

    class Env:
        pass
    e = Env()
    e.backing, e.a, e.b = backing / "f", ma.mnt / "f", mb.mnt / "f"
    e.ma, e.mb = ma, mb

    def hold(path, **kw):
        h = LockHolder(path, **kw)
        holders.append(h)
        return h.hold()
    e.hold = hold
    yield e
    for h in holders:
        h.kill()


def _denied(r, what):
    assert r in DENIED, (f"{what}: expected the lock to be refused "
                         f"(EAGAIN/EACCES), got {r!r} -- lock granted on both")


def _granted_eventually(path, what, **kw):
    wait_for(lambda: try_lock(path, **kw).startswith("ok"), timeout=SEE_TIMEOUT,
             what=what)


@pytest.mark.parametrize("kind", ["posix", "ofd", "flock"])
def test_lock_mount_vs_mount(kind, lockenv):
    e = lockenv
    h = e.hold(e.a, kind=kind)
    _denied(try_lock(e.b, kind=kind), f"{kind} lock via B while A holds one")
    _denied(try_lock(e.a, kind=kind), f"{kind} lock via A (other process) while A holds one")
    _denied(try_lock(e.backing, kind=kind), f"direct {kind} lock while A holds one")
    h.release()
    _granted_eventually(e.b, f"{kind} lock via B after A's holder exited", kind=kind)
    # and the other way round
    h = e.hold(e.b, kind=kind)
    _denied(try_lock(e.a, kind=kind), f"{kind} lock via A while B holds one")
    h.release()
    _granted_eventually(e.a, f"{kind} lock via A after B's holder exited", kind=kind)


@pytest.mark.parametrize("kind", ["posix", "ofd", "flock"])
def test_lock_direct_vs_mounts(kind, lockenv):
    e = lockenv
    h = e.hold(e.backing, kind=kind)
    _denied(try_lock(e.a, kind=kind), f"{kind} lock via A while a plain process holds one")
    _denied(try_lock(e.b, kind=kind), f"{kind} lock via B while a plain process holds one")
    h.release()
    _granted_eventually(e.a, f"{kind} lock via A after the plain holder exited", kind=kind)
    _granted_eventually(e.b, f"{kind} lock via B after the plain holder exited", kind=kind)


def test_lock_posix_vs_ofd_across_mounts(lockenv):
    """classic POSIX and OFD locks conflict with each other, also across mounts"""
    e = lockenv
    h = e.hold(e.a, kind="posix")
    _denied(try_lock(e.b, kind="ofd"), "OFD lock via B while A holds a POSIX lock")
    h.release()
    h = e.hold(e.b, kind="ofd")
    _denied(try_lock(e.a, kind="posix"), "POSIX lock via A while B holds an OFD lock")
    _denied(try_lock(e.backing, kind="posix"), "direct POSIX lock while B holds an OFD lock")
    h.release()


def test_lock_ranges_and_getlk(lockenv):
    e = lockenv
    h = e.hold(e.a, kind="posix", start=10, length=20)
    # disjoint ranges do not conflict, overlapping ones do
    assert try_lock(e.b, start=100, length=10).startswith("ok"), \
        "a disjoint POSIX range via B was refused"
    assert try_lock(e.backing, start=30, length=5).startswith("ok"), \
        "a disjoint POSIX range on the backing file was refused"
    _denied(try_lock(e.b, start=25, length=10), "overlapping POSIX range via B")
    _denied(try_lock(e.backing, start=0, length=11), "overlapping direct POSIX range")
    # F_GETLK through B reports A's lock: type, range, and pid -1 (other
    # mount).  The kernel's FUSE layer turns a pid it cannot resolve (-1)
    # into 0 for classic F_GETLK, so 0 is accepted as well.
    r = get_lock(e.b, start=0, length=0)
    assert r in ("ok w 10 20 -1", "ok w 10 20 0"), \
        f"F_GETLK via B while A holds w[10,30): {r!r}"
    # through A itself (another process on the same mount): the holder's pid
    r = get_lock(e.a, start=0, length=0)
    assert r == f"ok w 10 20 {h.pid}", f"F_GETLK via A (same mount): {r!r}"
    # a non-overlapping query reports no lock
    r = get_lock(e.b, start=200, length=10)
    assert r.startswith("ok u"), f"F_GETLK via B on a free range: {r!r}"
    # OFD query sees it too
    r = get_lock(e.b, kind="ofd", start=0, length=0)
    assert r.startswith("ok w 10 20"), f"F_OFD_GETLK via B: {r!r}"
    h.release()
    r = wait_for(lambda: (lambda r: r if r.startswith("ok u") else None)(get_lock(e.b)),
                 timeout=SEE_TIMEOUT, what="F_GETLK via B to report no lock after release")


def test_lock_getlk_direct_holder(lockenv):
    """a plain process's classic POSIX lock: F_GETLK through a mount reports
    its pid"""
    e = lockenv
    h = e.hold(e.backing, kind="posix", start=5, length=7)
    for p, who in ((e.a, "A"), (e.b, "B")):
        r = get_lock(p)
        assert r == f"ok w 5 7 {h.pid}", f"F_GETLK via {who} while a plain process " \
                                         f"(pid {h.pid}) holds w[5,12): {r!r}"
    h.release()


def test_lock_direct_sees_mount_lock(lockenv):
    e = lockenv
    e.hold(e.a, kind="posix", start=0, length=100)
    r = get_lock(e.backing, start=50, length=1)
    assert r.startswith("ok w"), f"F_GETLK on the backing file while A holds w[0,100): {r!r}"


@pytest.mark.parametrize("kind", ["posix", "flock"])
def test_lock_read_locks_shared(kind, lockenv):
    e = lockenv
    h = e.hold(e.a, kind=kind, ltype="r")
    assert try_lock(e.b, kind=kind, ltype="r").startswith("ok"), \
        "a shared/read lock via B was refused while A holds a shared/read lock"
    assert try_lock(e.backing, kind=kind, ltype="r").startswith("ok"), \
        "a direct shared/read lock was refused while A holds a shared/read lock"
    _denied(try_lock(e.b, kind=kind, ltype="w"), f"{kind} write lock via B over A's read lock")
    _denied(try_lock(e.backing, kind=kind, ltype="w"), f"direct {kind} write lock over A's read lock")
    h.release()


@pytest.mark.parametrize("waiter_on", ["B", "direct"])
@pytest.mark.parametrize("kind", ["posix", "flock"])
def test_lock_blocking_waits_for_release(kind, waiter_on, lockenv):
    """F_SETLKW / blocking flock through B (or directly) waits while A holds
    the lock and gets it once A releases."""
    e = lockenv
    h = e.hold(e.a, kind=kind)
    target = e.b if waiter_on == "B" else e.backing
    w = LockHolder(target, kind=kind, mode="wait")
    try:
        # the waiter must not be granted while A holds the lock
        early = w.ready(timeout=1.0)
        assert early is None, (f"blocking {kind} lock via {waiter_on} returned "
                               f"{early!r} while A holds the lock -- granted on both")
        h.release()
        r = w.ready(timeout=PROC_BOUND)
        assert r is not None and r.startswith("ok"), \
            f"blocking {kind} lock via {waiter_on} after A released: {r!r}"
        # now A is refused while the waiter holds it
        _denied(try_lock(e.a, kind=kind), f"{kind} via A while the former waiter holds it")
    finally:
        w.kill()


@pytest.mark.parametrize("kind", ["posix", "ofd", "flock"])
def test_lock_released_when_holder_killed(kind, lockenv):
    e = lockenv
    h = e.hold(e.a, kind=kind)
    _denied(try_lock(e.b, kind=kind), f"{kind} via B while A's holder is alive")
    os.kill(h.pid, signal.SIGKILL)
    h.p.wait(timeout=PROC_BOUND)
    _granted_eventually(e.b, f"{kind} via B after A's holder was killed", kind=kind)
    _granted_eventually(e.backing, f"direct {kind} after A's holder was killed", kind=kind)


@pytest.mark.parametrize("lockenv", ["posix"], indirect=True)
def test_lock_released_on_close_not_exit(lockenv):
    """--locks=posix: closing any fd of the file releases the process's
    locks (the process stays alive), as POSIX says"""
    e = lockenv
    code = textwrap.dedent("""
        import fcntl, os, sys
        fd = os.open(sys.argv[1], os.O_RDWR)
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        print("locked", flush=True)
        sys.stdin.readline()
        fd2 = os.open(sys.argv[1], os.O_RDONLY)
        os.close(fd2)
        print("closed", flush=True)
        sys.stdin.readline()
    """)
    p = subprocess.Popen([PYTHON, "-c", code, str(e.a)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "locked"
        _denied(try_lock(e.b), "POSIX via B while A's process holds it")
        p.stdin.write("\n")
        p.stdin.flush()
        assert p.stdout.readline().strip() == "closed"
        _granted_eventually(e.b, "POSIX via B after A's process closed another fd")
    finally:
        p.kill()
        p.wait()


def test_lock_shared_mode_released_with_its_open_file(lockenv):
    """--locks=shared (default, documented): closing another descriptor of
    the file keeps the lock; closing the descriptor it was taken with
    releases it, while the process stays alive"""
    e = lockenv
    code = textwrap.dedent("""
        import fcntl, os, sys
        fd = os.open(sys.argv[1], os.O_RDWR)
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        print("locked", flush=True)
        sys.stdin.readline()
        fd2 = os.open(sys.argv[1], os.O_RDONLY)
        os.close(fd2)
        print("closed other", flush=True)
        sys.stdin.readline()
        os.close(fd)
        print("closed", flush=True)
        sys.stdin.readline()
    """)
    p = subprocess.Popen([PYTHON, "-c", code, str(e.a)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "locked"
        _denied(try_lock(e.b), "POSIX via B while A's process holds it")
        p.stdin.write("\n")
        p.stdin.flush()
        assert p.stdout.readline().strip() == "closed other"
        _denied(try_lock(e.b), "POSIX via B after A's process closed another fd")
        p.stdin.write("\n")
        p.stdin.flush()
        assert p.stdout.readline().strip() == "closed"
        _granted_eventually(e.b, "POSIX via B after A's process closed its fd")
    finally:
        p.kill()
        p.wait()


def test_lock_follows_the_file_across_rename(lockenv):
    """a lock belongs to the file, not the name: after a rename elsewhere
    the new name is still locked"""
    e = lockenv
    h = e.hold(e.a, kind="posix")
    os.rename(e.backing, e.backing.parent / "g")
    g_b = e.mb.mnt / "g"
    eventually(lambda: lstat_view(g_b) != ("err", "ENOENT"), True, "B sees g")
    _denied(try_lock(g_b), "POSIX lock via B on the renamed file while A holds it")
    _denied(try_lock(e.backing.parent / "g"), "direct POSIX lock on the renamed file")
    h.release()
    _granted_eventually(g_b, "POSIX lock via B on g after A released")
