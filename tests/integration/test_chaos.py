"""The chaos layer (issue 4, first part): ChaosFS's knobs with faithful,
observer-relative semantics, on real mounts with two clients over one
backing directory.

Timing: a check that something is still stale uses a delay or TTL of a
minute (the check happens long before it ends); a check that something
became visible waits for it with a bound (wait_for), or makes it happen
(fsync, `eddyfs chaos set`). No timing threshold is asserted."""

import errno
import fcntl
import json
import os
import re
import subprocess

import pytest

from conftest import base_env, parse_stats, wait_for

LONG = "60000"          # ms: "still stale" for the whole test


def chaos(*knobs):
    """extra_args for a chaos mount with these knobs (others set to 0)."""
    d = {"meta-ttl": "0", "write-delay": "0", "rename-delay": "0", "drop-prob": "0"}
    for k in knobs:
        key, val = k.split("=", 1)
        d[key] = val
    args = ["--chaos"]
    for key, val in d.items():
        args += [f"--{key}", val]
    return args


def two_clients(make_mount, a_knobs=(), b_knobs=()):
    a = make_mount(extra_args=chaos(*a_knobs) + ["--client-id", "A"])
    b = make_mount(backing=a.backing, extra_args=chaos(*b_knobs) + ["--client-id", "B"])
    return a, b


def read(p):
    with open(p, "rb") as f:
        return f.read()


def stat_or_errno(p):
    try:
        return os.stat(p)
    except OSError as e:
        return e.errno


# --------------------------------------------------------------------------
# write delay: the writer sees its data at once, the others late


def test_writer_sees_own_writes_others_see_them_late(make_mount):
    a, b = two_clients(make_mount, a_knobs=["write-delay=" + LONG])
    (a.backing / "f").write_bytes(b"old")
    with open(a.mnt / "f", "r+b") as f:
        f.write(b"NEW-and-longer")
        f.flush()
        # read-your-writes, through another descriptor too
        assert read(a.mnt / "f") == b"NEW-and-longer"
        assert os.stat(a.mnt / "f").st_size == len(b"NEW-and-longer")
        # the other client and the truth still have the old data
        assert read(b.mnt / "f") == b"old"
        assert os.stat(b.mnt / "f").st_size == 3
        assert (a.backing / "f").read_bytes() == b"old"
        st = a.stats()
        assert st["chaos_pending"] >= 1
        # fsync publishes
        os.fsync(f.fileno())
    assert (a.backing / "f").read_bytes() == b"NEW-and-longer"
    assert read(b.mnt / "f") == b"NEW-and-longer"
    assert a.stats()["chaos_pending"] == 0


def test_write_published_after_the_delay(make_mount):
    a, b = two_clients(make_mount, a_knobs=["write-delay=200"])
    (a.mnt / "f").write_bytes(b"x" * 5000)
    wait_for(lambda: read(b.mnt / "f") == b"x" * 5000, timeout=30,
             what="the write published to the other client")
    assert a.stats()["chaos_published"] >= 1


def test_append_and_overwrite_view(make_mount):
    """The writer's view applies its pending changes in order: appends,
    overwrites inside, truncates, holes."""
    a, b = two_clients(make_mount, a_knobs=["write-delay=" + LONG])
    p = a.mnt / "f"
    (a.backing / "f").write_bytes(b"0123456789")
    with open(p, "ab") as f:
        f.write(b"ABC")
    with open(p, "r+b") as f:
        f.seek(2)
        f.write(b"xx")
        f.seek(20)
        f.write(b"Z")
    expect = b"01xx456789ABC" + b"\0" * 7 + b"Z"
    assert read(p) == expect
    os.truncate(p, 4)
    assert read(p) == b"01xx"
    assert os.stat(p).st_size == 4
    with open(p, "ab") as f:
        f.write(b"!")
    assert read(p) == b"01xx!"
    assert read(b.mnt / "f") == b"0123456789"
    # clear publishes everything, in order
    r = a.run("chaos", "clear", "--mount", a.mnt)
    assert r.returncode == 0, r.stderr
    assert (a.backing / "f").read_bytes() == b"01xx!"
    assert read(b.mnt / "f") == b"01xx!"


def test_truncate_and_o_trunc_delayed(make_mount):
    a, b = two_clients(make_mount, a_knobs=["write-delay=" + LONG])
    (a.backing / "f").write_bytes(b"keep me")
    with open(a.mnt / "f", "wb") as f:      # O_TRUNC
        pass
    assert read(a.mnt / "f") == b""
    assert read(b.mnt / "f") == b"keep me"
    assert (a.backing / "f").read_bytes() == b"keep me"


def test_pending_writes_published_at_unmount(make_mount):
    a, b = two_clients(make_mount, a_knobs=["write-delay=" + LONG])
    (a.mnt / "f").write_bytes(b"before unmount")
    assert (a.backing / "f").read_bytes() == b""
    a.umount()
    assert (a.backing / "f").read_bytes() == b"before unmount"


def test_large_sequential_write_readback(make_mount):
    """Sequential writes coalesce; the writer reads its 8 MiB back exactly."""
    a, b = two_clients(make_mount, a_knobs=["write-delay=" + LONG])
    data = os.urandom(8 << 20)
    with open(a.mnt / "big", "wb") as f:
        for i in range(0, len(data), 128 << 10):
            f.write(data[i:i + (128 << 10)])
    assert read(a.mnt / "big") == data
    assert os.stat(b.mnt / "big").st_size == 0
    with open(a.mnt / "big", "rb+") as f:
        os.fsync(f.fileno())
    assert read(b.mnt / "big") == data


# --------------------------------------------------------------------------
# meta-ttl: the observer keeps serving what it fetched


def test_observer_serves_cached_attributes_names_absences_listings(make_mount):
    a, b = two_clients(make_mount, b_knobs=["meta-ttl=" + LONG])
    d = a.backing
    (d / "old").write_bytes(b"abc")
    # B fetches: attributes, a name, an absence, a listing
    assert os.stat(b.mnt / "old").st_size == 3
    assert stat_or_errno(b.mnt / "new") == errno.ENOENT
    assert sorted(os.listdir(b.mnt)) == ["old"]
    # A changes all of it
    (a.mnt / "new").write_bytes(b"fresh")
    with open(a.mnt / "old", "ab") as f:
        f.write(b"defgh")
    os.rename(a.mnt / "old", a.mnt / "moved")
    # A sees its own changes at once
    assert sorted(os.listdir(a.mnt)) == ["moved", "new"]
    # B still serves what it cached: absence, old name, old size, listing
    assert stat_or_errno(b.mnt / "new") == errno.ENOENT
    assert os.stat(b.mnt / "old").st_size == 3
    assert sorted(os.listdir(b.mnt)) == ["old"]
    st = b.stats()
    assert st["chaos_stale_absent_hits"] >= 1
    assert st["chaos_stale_entry_hits"] >= 1
    assert st["chaos_stale_listing_hits"] >= 1
    # B's own change is seen by B at once
    (b.mnt / "mine").write_bytes(b"b")
    assert os.stat(b.mnt / "mine").st_size == 1
    assert "mine" in os.listdir(b.mnt)
    # a shorter TTL applies to what is cached too
    r = b.run("chaos", "set", "--mount", b.mnt, "meta-ttl=0")
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(b.mnt)) == ["mine", "moved", "new"]
    assert stat_or_errno(b.mnt / "old") == errno.ENOENT
    assert os.stat(b.mnt / "moved").st_size == 8


def test_ttl_expires_by_itself(make_mount):
    a, b = two_clients(make_mount, b_knobs=["meta-ttl=300"])
    assert stat_or_errno(b.mnt / "f") == errno.ENOENT
    (a.mnt / "f").write_bytes(b"1")
    wait_for(lambda: (b.mnt / "f").exists(), timeout=30,
             what="the cached absence to expire")


def test_cached_name_of_a_removed_file(make_mount):
    """A name cached by B still leads to the inode A removed (NFS-like):
    B keeps reading its last attributes until the TTL ends."""
    a, b = two_clients(make_mount, b_knobs=["meta-ttl=" + LONG])
    (a.mnt / "gone").write_bytes(b"data")
    assert os.stat(b.mnt / "gone").st_size == 4
    os.unlink(a.mnt / "gone")
    assert not (a.mnt / "gone").exists()
    assert os.stat(b.mnt / "gone").st_size == 4


# --------------------------------------------------------------------------
# drops


def test_drop_everything_fails_with_eio_and_leaks_nothing(make_mount):
    a = make_mount(extra_args=chaos())
    (a.mnt / "f").write_bytes(b"hello")
    r = a.run("chaos", "set", "--mount", a.mnt, "drop-prob=1")
    assert r.returncode == 0, r.stderr
    for _ in range(20):
        with pytest.raises(OSError) as e:
            read(a.mnt / "f")
        assert e.value.errno == errno.EIO
    # lookups are never dropped: the name still resolves for access()
    assert os.access(a.mnt / "f", os.F_OK)
    r = a.run("chaos", "set", "--mount", a.mnt, "drop-prob=0")
    assert r.returncode == 0, r.stderr
    assert read(a.mnt / "f") == b"hello"
    st = a.stats()
    assert st["chaos_dropped"] >= 20
    wait_for(lambda: a.stats()["open_files"] == 0, what="no open file left")


def test_dropped_flush_fails_close_after_the_data_is_written(make_mount):
    a = make_mount(extra_args=chaos())
    fd = os.open(a.mnt / "f", os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"written")
    r = a.run("chaos", "set", "--mount", a.mnt, "drop-prob=1", "drop-errno=ENOSPC")
    assert r.returncode == 0, r.stderr
    with pytest.raises(OSError) as e:
        os.close(fd)
    assert e.value.errno == errno.ENOSPC
    a.run("chaos", "clear", "--mount", a.mnt)
    assert (a.backing / "f").read_bytes() == b"written"
    wait_for(lambda: a.stats()["open_files"] == 0, what="the file closed for real")


WORKLOAD = r"""
import os, sys, json
d = sys.argv[1]
out = []
for i in range(60):
    p = os.path.join(d, "f%d" % (i % 5))
    try:
        fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
    except OSError as e:
        out.append("open:%d" % e.errno); continue
    try:
        os.write(fd, b"x")
        out.append("w")
    except OSError as e:
        out.append("write:%d" % e.errno)
    try:
        os.close(fd)
        out.append("c")
    except OSError as e:
        out.append("close:%d" % e.errno)
print(json.dumps(out))
"""


def run_workload(mnt):
    r = subprocess.run(["/usr/bin/python3", "-c", WORKLOAD, str(mnt)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_decision_log_and_replay(make_mount, workdir):
    log = workdir / "decisions.jsonl"
    a = make_mount(extra_args=chaos("drop-prob=0.3") + ["--seed", "7",
                                                        "--decision-log", log])
    first = run_workload(a.mnt)
    assert any(":" in o for o in first), "p=0.3 dropped nothing in 180 operations"
    a.umount()
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    drops = [x for x in lines if x["decision"] in ("drop", "pass")]
    assert drops and all(x["client"] == "client" for x in drops)
    assert [x["seq"] for x in drops] == sorted(x["seq"] for x in drops)
    # same seed, same client, same requests: same outcomes
    b = make_mount(extra_args=chaos("drop-prob=0.3") + ["--seed", "7"])
    assert run_workload(b.mnt) == first
    # replay with another seed: the log decides
    c = make_mount(extra_args=chaos("drop-prob=0.3") + ["--seed", "99", "--replay", log])
    assert run_workload(c.mnt) == first
    assert c.stats()["chaos_replay_divergences"] == 0


def test_replay_reports_divergence(make_mount, workdir):
    log = workdir / "decisions.jsonl"
    a = make_mount(extra_args=chaos("drop-prob=0.5") + ["--seed", "3",
                                                        "--decision-log", log])
    run_workload(a.mnt)
    a.umount()
    b = make_mount(extra_args=chaos("drop-prob=0.5") + ["--replay", log])
    for _ in range(3):
        try:
            os.listdir(b.mnt)       # opendir first: not what the log has
        except OSError:
            pass
    wait_for(lambda: b.stats()["chaos_replay_divergences"] == 1, what="divergence")
    assert re.search(r"replay diverged at seq \d+: the log has \w+, this run opendir",
                     b.log.read_text())


# --------------------------------------------------------------------------
# locks, knobs, refusals


def test_locks_conflict_across_chaos_clients(make_mount):
    a, b = two_clients(make_mount, a_knobs=["meta-ttl=" + LONG],
                       b_knobs=["meta-ttl=" + LONG])
    (a.mnt / "lock").write_bytes(b"")
    fa = open(a.mnt / "lock", "r+")
    fb = open(b.mnt / "lock", "r+")
    try:
        fcntl.lockf(fa, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(OSError) as e:
            fcntl.lockf(fb, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert e.value.errno in (errno.EAGAIN, errno.EACCES)
    finally:
        fa.close()
        fb.close()


def test_chaosfs_environment_and_precedence(make_mount):
    env = base_env(CHAOSFS_META_TTL_MS="111", CHAOSFS_WRITE_DELAY_MS="222",
                   EDDYFS_WRITE_DELAY_MS="333", CHAOSFS_DROP_PROB="0.25",
                   CHAOSFS_SEED="5", CHAOSFS_CLIENT_ID="envclient")
    a = make_mount(env=env, extra_args=["--rename-delay", "444"])
    st = a.stats()
    assert st["chaos_meta_ttl_ms"] == 111
    assert st["chaos_write_delay_ms"] == 333      # EDDYFS_ beats CHAOSFS_
    assert st["chaos_rename_delay_ms"] == 444     # the flag beats both
    assert st["chaos_drop_ppm"] == 250000
    assert st["chaos_seed"] == 5
    assert "envclient" in a.log.read_text()


def test_chaosfs_defaults(make_mount):
    a = make_mount(extra_args=["--chaos"])
    st = a.stats()
    assert (st["chaos_meta_ttl_ms"], st["chaos_write_delay_ms"],
            st["chaos_rename_delay_ms"], st["chaos_drop_ppm"]) == (1500, 800, 1200, 0)


def test_no_chaos_no_layer(make_mount):
    a = make_mount()
    assert not any(k.startswith("chaos_") for k in a.stats())


@pytest.mark.parametrize("args,env,msg", [
    (["--meta-ttl", "abc"], {}, "--meta-ttl=abc"),
    (["--write-delay", "-5"], {}, "--write-delay=-5"),
    (["--drop-prob", "1.5"], {}, "--drop-prob=1.5"),
    (["--drop-errno", "EWHATEVER"], {}, "drop-errno"),
    (["--seed", "x"], {}, "--seed x"),
    (["--chaos=nfs3"], {}, "unknown profile"),
    (["--chaos", "--coherence=off"], {}, "--coherence does not apply"),
    (["--chaos", "--queues"], {}, "cannot be combined"),
    ([], {"CHAOSFS_META_TTL_MS": "soon"}, "CHAOSFS_META_TTL_MS"),
    ([], {"CHAOSFS_DROP_PROB": "-0.1"}, "CHAOSFS_DROP_PROB"),
], ids=["ttl", "delay", "prob", "errno", "seed", "profile", "coherence", "queues",
        "env-ttl", "env-prob"])
def test_bad_values_refused(make_mount, args, env, msg):
    m = make_mount(extra_args=args, env=base_env(**env), check=False)
    r = m.mount_result
    assert r.returncode == 2, r.stderr
    assert msg in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not m.is_mounted()


def test_replay_log_garbage_refused(make_mount, workdir):
    bad = workdir / "bad.jsonl"
    bad.write_text("not json\n")
    m = make_mount(extra_args=["--replay", bad], check=False)
    assert m.mount_result.returncode == 2
    assert "line 1 is not a decision record" in m.mount_result.stderr


def test_chaos_cli(make_mount, run_eddy, workdir):
    a = make_mount(extra_args=chaos())
    r = run_eddy("chaos", "set", "--mount", a.mnt, "meta-ttl=25", "drop-errno=EDQUOT")
    assert r.returncode == 0, r.stderr
    st = parse_stats(r.stdout)
    assert st["chaos_meta_ttl_ms"] == 25 and st["chaos_drop_errno"] == errno.EDQUOT
    assert parse_stats(run_eddy("chaos", "show", "--mount", a.mnt).stdout)[
        "chaos_meta_ttl_ms"] == 25
    for argv, rc in [(["set", "--mount", a.mnt, "meta-ttl=-1"], 2),
                     (["set", "--mount", a.mnt, "colour=blue"], 2),
                     (["set", "--mount", a.mnt], 2),
                     (["frobnicate", "--mount", a.mnt], 2),
                     (["show"], 2),
                     (["show", "--mount", workdir], 2)]:
        r = run_eddy("chaos", *argv)
        assert r.returncode == rc, (argv, r.stdout, r.stderr)
        assert r.stderr.startswith("eddyfs: "), r.stderr
    # a plain mount has no chaos to control
    p = make_mount()
    r = run_eddy("chaos", "show", "--mount", p.mnt)
    assert r.returncode == 1 and "does not know" in r.stderr


def test_programs_on_a_chaos_client(make_mount):
    """Real programs on one chaos client see a consistent filesystem
    (read-your-writes): tar and a checksum round trip, git init+commit."""
    a = make_mount(extra_args=["--chaos"])
    src = a.mnt / "src"
    os.mkdir(src)
    for i in range(30):
        (src / f"file{i}").write_bytes(os.urandom(1000 + 100 * i))
    r = subprocess.run(["tar", "-cf", str(a.mnt / "t.tar"), "-C", str(a.mnt), "src"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    os.mkdir(a.mnt / "out")
    r = subprocess.run(["tar", "-xf", str(a.mnt / "t.tar"), "-C", str(a.mnt / "out")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    for i in range(30):
        assert read(a.mnt / "out" / "src" / f"file{i}") == read(src / f"file{i}")
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@x",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@x")
    for argv in (["git", "init", "-q"], ["git", "add", "."],
                 ["git", "commit", "-qm", "one"], ["git", "fsck", "--strict"]):
        r = subprocess.run(argv, cwd=str(src), capture_output=True, text=True,
                           timeout=120, env=env)
        assert r.returncode == 0, (argv, r.stderr)


# --------------------------------------------------------------------------
# rename-delay: namespace and attribute changes


def tree(root):
    """{relative path: (kind, content or target, mode)} of a tree."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if os.path.islink(p):
                out[rel] = ("l", os.readlink(p), 0)
            elif os.path.isdir(p):
                out[rel] = ("d", None, st.st_mode & 0o7777)
            else:
                out[rel] = ("f", read(p), st.st_mode & 0o7777)
    return out


def test_namespace_changes_seen_late_by_others(make_mount):
    a, b = two_clients(make_mount, a_knobs=["rename-delay=" + LONG,
                                            "write-delay=" + LONG])
    (a.backing / "victim").write_bytes(b"v")
    (a.backing / "olddir").mkdir()
    os.mkdir(a.mnt / "d")
    (a.mnt / "d" / "inner").write_bytes(b"inside a new dir")
    (a.mnt / "f").write_bytes(b"file")
    os.symlink("f", a.mnt / "sym")
    os.link(a.mnt / "f", a.mnt / "hard")
    os.rename(a.mnt / "f", a.mnt / "g")
    os.unlink(a.mnt / "victim")
    os.rmdir(a.mnt / "olddir")
    os.chmod(a.mnt / "g", 0o600)
    expect = {"d": ("d", None, 0o755), "d/inner": ("f", b"inside a new dir", 0o644),
              "g": ("f", b"file", 0o600), "sym": ("l", "f", 0), "hard": ("f", b"file", 0o600)}
    # the client sees its own changes at once (the stale hard link mode is
    # the one inode: chmod through g shows through hard too)
    assert tree(a.mnt) == expect
    assert os.stat(a.mnt / "g").st_ino == os.stat(a.mnt / "hard").st_ino
    # the other client and the truth do not
    assert sorted(os.listdir(b.mnt)) == ["olddir", "victim"]
    assert sorted(os.listdir(a.backing)) == [".eddyfs-chaos", "olddir", "victim"]
    assert a.stats()["chaos_pending"] >= 9
    r = a.run("chaos", "clear", "--mount", a.mnt)
    assert r.returncode == 0, r.stderr
    assert tree(b.mnt) == expect
    assert tree(a.mnt) == expect
    assert a.stats()["chaos_pending"] == 0
    assert ".eddyfs-chaos" not in os.listdir(a.mnt)
    assert ".eddyfs-chaos" not in os.listdir(b.mnt)


def test_namespace_errors_against_the_clients_view(make_mount):
    a, b = two_clients(make_mount, a_knobs=["rename-delay=" + LONG])
    os.mkdir(a.mnt / "d")
    (a.mnt / "d" / "x").write_bytes(b"")
    with pytest.raises(OSError) as e:
        os.rmdir(a.mnt / "d")
    assert e.value.errno == errno.ENOTEMPTY
    with pytest.raises(FileExistsError):
        os.mkdir(a.mnt / "d")
    with pytest.raises(FileExistsError):
        os.open(a.mnt / "d" / "x", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    with pytest.raises(FileNotFoundError):
        os.unlink(a.mnt / "nothing")
    with pytest.raises(IsADirectoryError):
        os.unlink(a.mnt / "d")
    os.unlink(a.mnt / "d" / "x")
    with pytest.raises(FileNotFoundError):
        os.stat(a.mnt / "d" / "x")
    os.rmdir(a.mnt / "d")
    assert os.listdir(a.mnt) == []
    a.run("chaos", "clear", "--mount", a.mnt)
    assert os.listdir(b.mnt) == []


def test_publish_failure_is_lost_logged_and_counted(make_mount):
    a, b = two_clients(make_mount, a_knobs=["rename-delay=" + LONG])
    (b.mnt / "x").write_bytes(b"")
    os.unlink(a.mnt / "x")
    os.unlink(b.mnt / "x")          # B got there first
    r = a.run("chaos", "clear", "--mount", a.mnt)
    assert r.returncode == 0
    assert a.stats()["chaos_publish_failed"] == 1
    assert "publishing a unlink failed" in a.log.read_text()
    a.allow_log_errors = True


def test_unpublished_changes_lost_at_crash_and_cleaned(make_mount):
    a = make_mount(extra_args=chaos("rename-delay=" + LONG) + ["--client-id", "A"])
    backing = a.backing
    (a.mnt / "never").write_bytes(b"lost")
    assert sorted(os.listdir(backing / ".eddyfs-chaos" / "A"))
    os.kill(a.pid, 9)
    subprocess.run(["fusermount3", "-u", "-z", str(a.mnt)], timeout=30)
    wait_for(lambda: not a.is_mounted(), what="unmounted after kill -9")
    a2 = make_mount(backing=backing, extra_args=chaos() + ["--client-id", "A"])
    assert os.listdir(a2.mnt) == []
    assert os.listdir(backing / ".eddyfs-chaos" / "A") == []
    assert "left unpublished" in a2.log.read_text()


TOOLS = os.path.join(os.path.dirname(__file__), "..", "tools")


@pytest.mark.parametrize("tool", ["fsx.py", "metafuzz.py"])
def test_one_client_is_consistent_with_itself(tool, make_mount, native_dir):
    """Read-your-writes under every delay: the seeded data checker and
    metadata fuzzer see a chaos client exactly as a plain directory."""
    a = make_mount(extra_args=chaos("rename-delay=" + LONG, "write-delay=" + LONG,
                                    "meta-ttl=" + LONG))
    ref, test = native_dir / "ref", a.mnt / "test"
    os.mkdir(ref)
    os.mkdir(test)
    argv = ["/usr/bin/python3", os.path.join(TOOLS, tool), "--ref", str(ref),
            "--test", str(test), "--seed", "5", "--ops", "1500"]
    if tool == "fsx.py":
        # publishing rewrites ranges in another order: SEEK_DATA may then
        # legally report a hole as data
        argv.append("--seek-any-legal")
    r = subprocess.run(argv,
                       capture_output=True, text=True, timeout=900, cwd=str(native_dir))
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-6000:]
    # and once everything is published the truth is the same
    a.run("chaos", "clear", "--mount", a.mnt)
    assert tree(a.backing / "test") == tree(ref)


# --------------------------------------------------------------------------
# crash faults


def test_drop_unsynced_loses_what_was_not_published(make_mount):
    a, b = two_clients(make_mount, a_knobs=["write-delay=" + LONG, "rename-delay=" + LONG])
    with open(a.mnt / "kept", "wb") as f:
        f.write(b"synced")
        f.flush()
        os.fsync(f.fileno())
    with open(a.mnt / "kept", "ab") as f:
        f.write(b"+unsynced")
    os.mkdir(a.mnt / "newdir")
    (a.mnt / "newdir" / "x").write_bytes(b"x")
    r = a.run("chaos", "drop-unsynced", "--mount", a.mnt)
    assert r.returncode == 0, r.stderr
    assert parse_stats(r.stdout)["chaos_lost"] >= 4
    # the client keeps running and now sees the truth
    assert sorted(os.listdir(a.mnt)) == ["kept"]
    assert read(a.mnt / "kept") == b"synced"
    assert read(b.mnt / "kept") == b"synced"
    assert os.listdir(a.backing / ".eddyfs-chaos" / "A") == []
    (a.mnt / "after").write_bytes(b"still works")
    assert read(a.mnt / "after") == b"still works"


def test_crash_torn_is_seeded_and_ends_the_client(make_mount, workdir):
    outcomes = []
    for run in range(2):
        a = make_mount(extra_args=chaos("write-delay=" + LONG) + ["--seed", "11"])
        a.allow_log_errors = True
        data = bytes(range(256)) * 64
        with open(a.mnt / "f", "wb") as f:
            f.write(data)
        r = a.run("chaos", "crash", "--torn", "--mount", a.mnt)
        assert r.returncode == 0, r.stderr
        st = parse_stats(r.stdout)
        assert st["chaos_lost"] == 1
        assert pid_gone_wait(st["chaos_crash_pid"])
        with pytest.raises(OSError) as e:
            os.listdir(a.mnt)
        assert e.value.errno == errno.ENOTCONN
        r = a.run("umount", "--mount", a.mnt)
        assert r.returncode == 0, r.stderr
        torn = (a.backing / "f").read_bytes()
        assert len(torn) < len(data) and data.startswith(torn)
        outcomes.append(len(torn))
    assert outcomes[0] == outcomes[1], "same seed, same tear"


def pid_gone_wait(pid):
    def gone():
        try:
            os.kill(pid, 0)
            return False
        except ProcessLookupError:
            return True
    wait_for(gone, what=f"pid {pid} gone")
    return True


# --------------------------------------------------------------------------
# targeted faults


def test_fault_rules_by_op_path_and_count(make_mount):
    a = make_mount(extra_args=chaos() + [
        "--fault", "op=write,path=logs/*.log,after=2,count=2",
        "--fault", "op=unlink,path=keep*",
        "--fault", "op=fsync,errno=EDQUOT,every=2"])
    os.mkdir(a.mnt / "logs")
    results = []
    fd = os.open(a.mnt / "logs" / "app.log", os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
    for i in range(6):
        try:
            os.write(fd, b"%d\n" % i)
            results.append("ok")
        except OSError as e:
            results.append(errno.errorcode[e.errno])
    os.close(fd)
    # the third and fourth writes fail with the realistic default, ENOSPC
    assert results == ["ok", "ok", "ENOSPC", "ENOSPC", "ok", "ok"]
    (a.mnt / "logs" / "other.txt").write_text("x")          # path does not match
    (a.mnt / "keepme").write_text("x")
    with pytest.raises(OSError) as e:
        os.unlink(a.mnt / "keepme")
    assert e.value.errno == errno.EBUSY
    fd = os.open(a.mnt / "logs" / "other.txt", os.O_RDWR)
    outcomes = []
    for _ in range(4):
        try:
            os.fsync(fd)
            outcomes.append("ok")
        except OSError as e:
            outcomes.append(errno.errorcode[e.errno])
    os.close(fd)
    assert outcomes == ["EDQUOT", "ok", "EDQUOT", "ok"]
    st = a.stats()
    assert st["chaos_rule_1_fired"] == 2 and st["chaos_rule_1_matched"] == 6
    shown = a.run("chaos", "show", "--mount", a.mnt).stdout
    assert "# chaos rule 1: op=write,path=logs/*.log,after=2,count=2" in shown
    assert st["chaos_rule_2_fired"] == 1


def test_fault_latency_delays_only_the_faulted_call(make_mount):
    import threading
    import time
    a = make_mount(extra_args=chaos())
    (a.mnt / "slow").write_bytes(b"s")
    (a.mnt / "fast").write_bytes(b"f")
    r = a.run("chaos", "fault", "--mount", a.mnt, "op=read,path=slow,errno=none,delay=3000")
    assert r.returncode == 0, r.stderr
    done = {}

    def slow_reader():
        done["slow"] = read(a.mnt / "slow")
        done["slow_t"] = time.monotonic()

    t = threading.Thread(target=slow_reader)
    t.start()
    wait_for(lambda: a.stats()["chaos_rule_1_fired"] == 1, what="the slow read to start")
    # while the slow read is held, the rest of the mount answers
    assert read(a.mnt / "fast") == b"f"
    assert "slow" not in done, "the faulted call did not wait"
    t.join(timeout=60)
    assert done["slow"] == b"s"


def test_fault_rules_refused_and_cleared(make_mount, run_eddy):
    m = make_mount(extra_args=["--fault", "op=frobnicate"], check=False)
    assert m.mount_result.returncode == 2
    assert "not an operation" in m.mount_result.stderr
    m = make_mount(env=base_env(EDDYFS_FAULTS="op=read;errno=EWHAT"), check=False)
    assert m.mount_result.returncode == 2 and "errno=EWHAT" in m.mount_result.stderr
    a = make_mount(env=base_env(EDDYFS_FAULTS="op=read,count=1;op=write,count=1"))
    st = a.stats()
    assert "chaos_rule_2_fired" in st
    for bad in ["op=read,prob=7", "delay=-1", "nokey", "errno=none"]:
        r = run_eddy("chaos", "fault", "--mount", a.mnt, bad)
        assert r.returncode == 2, (bad, r.stderr)
    assert run_eddy("chaos", "clear", "--mount", a.mnt).returncode == 0
    assert not any(k.startswith("chaos_rule_") for k in a.stats())


# --------------------------------------------------------------------------
# the nfs profile


def nfs_clients(make_mount, a_opts="", b_opts=""):
    a = make_mount(extra_args=["--chaos=nfs" + (":" + a_opts if a_opts else ""),
                               "--client-id", "A"])
    b = make_mount(backing=a.backing,
                   extra_args=["--chaos=nfs" + (":" + b_opts if b_opts else ""),
                               "--client-id", "B"])
    return a, b


def test_nfs_write_behind_and_close_to_open(make_mount):
    a, b = nfs_clients(make_mount, "actimeo=60", "actimeo=60")
    (a.mnt / "f").write_bytes(b"v1")
    assert read(b.mnt / "f") == b"v1"
    fa = open(a.mnt / "f", "wb")
    fa.write(b"version two")
    fa.flush()
    # write-behind: nothing reaches the server before close
    assert (a.backing / "f").read_bytes() == b""
    assert read(a.mnt / "f") == b"version two"
    assert os.stat(b.mnt / "f").st_size == 2          # B's cached attributes
    fa.close()
    assert (a.backing / "f").read_bytes() == b"version two"
    # B: a stat within the attribute timeout is stale, an open revalidates
    assert os.stat(b.mnt / "f").st_size == 2
    assert read(b.mnt / "f") == b"version two"
    assert os.stat(b.mnt / "f").st_size == len(b"version two")


def test_nfs_nocto_keeps_serving_cached_attributes(make_mount):
    a, b = nfs_clients(make_mount, "", "actimeo=60,nocto")
    (a.mnt / "f").write_bytes(b"12")
    assert os.stat(b.mnt / "f").st_size == 2
    (a.mnt / "f").write_bytes(b"123456")
    with open(b.mnt / "f", "rb") as f:
        assert os.fstat(f.fileno()).st_size == 2   # no revalidation at open


def test_nfs_lookupcache(make_mount):
    a, b = nfs_clients(make_mount, "", "acdirmin=60,acdirmax=60")
    _, c = nfs_clients(make_mount, "", "acdirmin=60,acdirmax=60,lookupcache=pos")
    assert stat_or_errno(b.mnt / "new") == errno.ENOENT
    (a.mnt / "new").write_bytes(b"")
    assert stat_or_errno(b.mnt / "new") == errno.ENOENT    # cached absence (all)
    c_back = c.backing
    assert stat_or_errno(c.mnt / "x") == errno.ENOENT
    (c_back / "x").write_bytes(b"")
    assert os.path.exists(c.mnt / "x")                     # pos: absences not cached


def test_nfs_silly_rename(make_mount):
    a, b = nfs_clients(make_mount)
    (a.mnt / "f").write_bytes(b"still here")
    fd = os.open(a.mnt / "f", os.O_RDONLY)
    os.unlink(a.mnt / "f")
    names = os.listdir(a.backing)
    assert len(names) == 1 and re.fullmatch(r"\.nfs[0-9a-f]{16}[0-9a-f]{8}", names[0])
    assert os.read(fd, 100) == b"still here"
    with pytest.raises(OSError) as e:
        os.unlink(a.mnt / names[0])
    assert e.value.errno == errno.EBUSY
    os.close(fd)
    wait_for(lambda: os.listdir(a.backing) == [], what=".nfs file removed at last close")


def test_nfs_estale_after_another_client_removes(make_mount):
    a, b = nfs_clients(make_mount, "", "noac")
    (a.mnt / "g").write_bytes(b"gee")
    fd = os.open(b.mnt / "g", os.O_RDONLY)
    os.unlink(a.mnt / "g")
    with pytest.raises(OSError) as e:
        os.read(fd, 10)
    assert e.value.errno == errno.ESTALE
    with pytest.raises(OSError) as e:
        os.fstat(fd)
    assert e.value.errno == errno.ESTALE
    os.close(fd)


def test_nfs_o_append_race_between_clients(make_mount):
    a, b = nfs_clients(make_mount, "actimeo=60", "actimeo=60")
    (a.mnt / "log").write_bytes(b"x")
    fa = os.open(a.mnt / "log", os.O_WRONLY | os.O_APPEND)
    fb = os.open(b.mnt / "log", os.O_WRONLY | os.O_APPEND)
    assert os.fstat(fb).st_size == 1        # B caches the size
    os.write(fa, b"AAAA")
    os.close(fa)
    os.write(fb, b"BBBB")          # appends at the end B has cached: 1
    os.close(fb)
    assert (a.backing / "log").read_bytes() == b"xBBBB"


def test_nfs_timestamp_granularity(make_mount):
    a = make_mount(extra_args=["--chaos=nfs:tsgran=1000"])
    (a.mnt / "t").write_bytes(b"")
    st = os.stat(a.mnt / "t")
    assert st.st_mtime_ns % 1_000_000_000 == 0


@pytest.mark.parametrize("profile,msg", [
    ("nfs:bogus", "unknown nfs option"),
    ("nfs:acregmin=10,acregmax=5", "minimum above"),
    ("nfs:lookupcache=some", "lookupcache=some"),
    ("nfs:actimeo=-1", "actimeo=-1"),
])
def test_nfs_options_refused(make_mount, profile, msg):
    m = make_mount(extra_args=["--chaos=" + profile], check=False)
    assert m.mount_result.returncode == 2
    assert msg in m.mount_result.stderr


# --------------------------------------------------------------------------
# partitions


def test_partition_soft_serves_the_cache_and_times_out(make_mount):
    a = make_mount(extra_args=chaos("meta-ttl=" + LONG))
    (a.mnt / "f").write_bytes(b"data")
    assert os.stat(a.mnt / "f").st_size == 4
    r = a.run("chaos", "partition", "--mount", a.mnt, "softerr=300")
    assert r.returncode == 0, r.stderr
    assert os.stat(a.mnt / "f").st_size == 4           # from the client's cache
    with pytest.raises(OSError) as e:
        read(a.mnt / "f")                              # needs the server
    assert e.value.errno == errno.ETIMEDOUT
    r = a.run("chaos", "partition", "--mount", a.mnt, "soft=300")
    with pytest.raises(OSError) as e:
        os.stat(a.mnt / "other")
    assert e.value.errno == errno.EIO
    assert a.run("chaos", "heal", "--mount", a.mnt).returncode == 0
    assert read(a.mnt / "f") == b"data"
    st = a.stats()
    assert st["chaos_partition"] == 0 and st["chaos_partition_timed_out"] >= 2
    r = a.run("chaos", "partition", "--mount", a.mnt, "sometimes")
    assert r.returncode != 0 and "use hard" in r.stderr


def test_partition_hard_holds_requests_until_healed(make_mount):
    import threading
    a, b = two_clients(make_mount, a_knobs=["write-delay=100"])
    (a.backing / "f").write_bytes(b"old")
    assert read(a.mnt / "f") == b"old"
    assert a.run("chaos", "partition", "--mount", a.mnt).returncode == 0
    got = {}

    def reader():
        got["data"] = read(a.mnt / "f")

    t = threading.Thread(target=reader)
    t.start()
    wait_for(lambda: a.stats()["chaos_partition_held"] >= 1, what="a held request")
    assert "data" not in got
    assert read(b.mnt / "f") == b"old"      # the other client is not partitioned
    assert a.run("chaos", "heal", "--mount", a.mnt).returncode == 0
    t.join(timeout=60)
    assert got["data"] == b"old"


# --------------------------------------------------------------------------
# concurrency


def _stress_worker(mnt, seed, seconds):
    import random
    import time
    r = random.Random(seed)
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        p = os.path.join(mnt, "d%d" % r.randrange(3), "f%d" % r.randrange(8))
        op = r.randrange(7)
        try:
            if op == 0:
                os.makedirs(os.path.dirname(p), exist_ok=True)
            elif op == 1:
                with open(p, "ab") as f:
                    f.write(os.urandom(r.randrange(1, 5000)))
            elif op == 2:
                os.unlink(p)
            elif op == 3:
                os.rename(p, p + "x")
            elif op == 4:
                with open(p, "rb") as f:
                    f.read()
            elif op == 5:
                os.listdir(os.path.dirname(p))
            else:
                os.truncate(p, r.randrange(100))
        except OSError:
            pass
        n += 1
    return n


def test_clients_racing_converge_once_published(make_mount):
    """Four processes on two chaos clients (delays, TTLs, drops) race on
    the same names; once both publish everything and stop caching, both
    see exactly the backing directory. Sanitizers check the daemons."""
    import multiprocessing
    knobs = ["meta-ttl=100", "write-delay=50", "rename-delay=50", "drop-prob=0.02"]
    a, b = two_clients(make_mount, a_knobs=knobs, b_knobs=knobs)
    a.allow_log_errors = b.allow_log_errors = True
    with multiprocessing.get_context("fork").Pool(4) as pool:
        ops = pool.starmap(_stress_worker, [(a.mnt, 1, 5), (a.mnt, 2, 5),
                                            (b.mnt, 3, 5), (b.mnt, 4, 5)])
    assert sum(ops) > 100
    for m in (a, b):
        assert m.run("chaos", "clear", "--mount", m.mnt).returncode == 0

    def files(root):
        out = {}
        for dp, dn, fn in os.walk(root):
            dn[:] = [d for d in dn if d != ".eddyfs-chaos"]
            for n in fn:
                out[os.path.relpath(os.path.join(dp, n), root)] = read(os.path.join(dp, n))
        return out
    truth = files(a.backing)
    assert files(a.mnt) == truth
    assert files(b.mnt) == truth
