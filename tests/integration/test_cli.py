"""CLI contract tests: refusals, usage errors, help/version, env fallbacks,
umount semantics."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import (WORK_ROOT, base_env, is_mounted, mkdir_traversable,
                      mount_fstype, pid_alive, read_mounts,
                      wait_for)

REFUSAL_TIMEOUT = 60  # bound: a refusal must never start serving


# --------------------------------------------------------------------------
# helpers

def snap(p):
    """A snapshot of path p for 'untouched' checks: None if missing, else
    (type+mode, uid, gid, mtime_ns, listing-or-size)."""
    p = str(p)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return None
    if os.path.isdir(p) and not os.path.islink(p):
        extra = tuple(sorted(os.listdir(p)))
    else:
        extra = st.st_size
    return (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, extra)


def _test_root(p):
    """The per-test work dir that contains path p."""
    rel = Path(os.path.abspath(str(p))).relative_to(WORK_ROOT)
    return WORK_ROOT / rel.parts[0]


def mount_table(root=None):
    """Mounts at or below root (the test's own work dir): other tests may be
    mounting and unmounting elsewhere concurrently."""
    ms = read_mounts()
    if root is not None:
        r = str(root)
        ms = [m for m in ms if m[1] == r or m[1].startswith(r + "/")]
    return sorted(ms)


def one_eddyfs_line(stderr):
    lines = [l for l in stderr.splitlines() if l.strip()]
    return len(lines) == 1 and lines[0].startswith("eddyfs: ")


def assert_refused(run_eddy, args, watch, cwd=None, exact_line=True,
                   env=None):
    """Run eddyfs args; assert exit 2, one 'eddyfs: ' stderr line, and that
    the watched paths and the mount table are unchanged."""
    before = {str(p): snap(p) for p in watch}
    root = _test_root(watch[0])
    table = mount_table(root)
    try:
        r = run_eddy(*args, cwd=cwd, env=env, timeout=REFUSAL_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"eddyfs {' '.join(map(str, args))} did not exit "
                    f"(expected a refusal with exit status 2)")
    desc = (f"eddyfs {' '.join(map(str, args))}\nrc={r.returncode}\n"
            f"stdout: {r.stdout!r}\nstderr: {r.stderr!r}")
    assert r.returncode == 2, desc
    if exact_line:
        assert one_eddyfs_line(r.stderr), \
            "expected exactly one stderr line starting 'eddyfs: '\n" + desc
    else:
        assert any(l.startswith("eddyfs: ") for l in r.stderr.splitlines()), \
            "expected a stderr line starting 'eddyfs: '\n" + desc
    after = {str(p): snap(p) for p in watch}
    assert after == before, "refusal touched the file system\n" + desc
    assert mount_table(root) == table, "refusal changed the mount table\n" + desc
    return r


MODES = {
    "fg": lambda wd: [],
    "bg": lambda wd: ["--background", "--log-file", str(wd / "refused.log")],
}


@pytest.fixture(params=sorted(MODES))
def mode_args(request, workdir):
    return MODES[request.param](workdir)


def mkd(p):
    return mkdir_traversable(p)


# --------------------------------------------------------------------------
# mount refusals

def test_refuse_missing_backing(run_eddy, workdir, mode_args):
    b, m = workdir / "nope", mkd(workdir / "m")
    assert_refused(run_eddy, ["mount", *mode_args, b, m], [b, m, workdir])


def test_refuse_backing_is_file(run_eddy, workdir, mode_args):
    b, m = workdir / "file", mkd(workdir / "m")
    b.write_text("data")
    assert_refused(run_eddy, ["mount", *mode_args, b, m], [b, m])


def test_refuse_missing_mountpoint(run_eddy, workdir, mode_args):
    b, m = mkd(workdir / "b"), workdir / "nope"
    (b / "x").write_text("x")
    assert_refused(run_eddy, ["mount", *mode_args, b, m], [b, m, workdir])


def test_refuse_mountpoint_is_file(run_eddy, workdir, mode_args):
    b, m = mkd(workdir / "b"), workdir / "file"
    m.write_text("data")
    assert_refused(run_eddy, ["mount", *mode_args, b, m], [b, m])


def test_refuse_mountpoint_nonempty(run_eddy, workdir, mode_args):
    b, m = mkd(workdir / "b"), mkd(workdir / "m")
    (m / "occupant").write_text("here first")
    assert_refused(run_eddy, ["mount", *mode_args, b, m], [b, m, m / "occupant"])


def test_refuse_mountpoint_nonempty_dotfile(run_eddy, workdir, mode_args):
    b, m = mkd(workdir / "b"), mkd(workdir / "m")
    (m / ".hidden").write_text("")
    assert_refused(run_eddy, ["mount", *mode_args, b, m], [b, m])


def test_refuse_mountpoint_already_eddyfs_mount(make_mount, run_eddy, workdir,
                                                mode_args):
    m = make_mount()
    (m.mnt / "f").write_text("first mount")
    b2 = mkd(workdir / "b2")
    assert_refused(run_eddy, ["mount", *mode_args, b2, m.mnt],
                   [b2, m.mnt, m.backing])
    # the original mount is still there, alone, and working
    assert sum(1 for _s, mp, _t, _o in read_mounts() if mp == str(m.mnt)) == 1
    assert (m.mnt / "f").read_text() == "first mount"
    assert os.listdir(b2) == []


def test_refuse_mountpoint_already_other_mount(run_eddy, workdir, mode_args):
    b, m = mkd(workdir / "b"), mkd(workdir / "m")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(m)],
                   check=True)
    assert_refused(run_eddy, ["mount", *mode_args, b, m], [b, m])
    assert mount_fstype(m) == "tmpfs"


def test_refuse_backing_inside_mountpoint(run_eddy, workdir, mode_args):
    m = mkd(workdir / "m")
    b = mkd(m / "b")
    assert_refused(run_eddy, ["mount", *mode_args, b, m], [b, m])


def test_refuse_mountpoint_inside_backing(run_eddy, workdir, mode_args):
    b = mkd(workdir / "b")
    m = mkd(b / "m")
    assert_refused(run_eddy, ["mount", *mode_args, b, m], [b, m])


def test_refuse_mountpoint_deep_inside_backing(run_eddy, workdir, mode_args):
    b = mkd(workdir / "b")
    m = b / "x" / "y" / "m"
    m.mkdir(parents=True)
    assert_refused(run_eddy, ["mount", *mode_args, b, m], [b, m, m.parent])


def test_refuse_mountpoint_inside_backing_via_symlink(run_eddy, workdir, mode_args):
    b = mkd(workdir / "b")
    m = mkd(b / "m")
    link = workdir / "link"
    link.symlink_to(m)
    assert_refused(run_eddy, ["mount", *mode_args, b, link], [b, m, link])


def test_refuse_mountpoint_inside_backing_dotdot(run_eddy, workdir, mode_args):
    b = mkd(workdir / "b")
    mkd(workdir / "other")
    m = mkd(b / "m")
    sneaky = f"{workdir}/other/../b/m"
    assert_refused(run_eddy, ["mount", *mode_args, b, sneaky], [b, m])


def test_refuse_mountpoint_inside_backing_relative(run_eddy, workdir, mode_args):
    b = mkd(workdir / "b")
    m = mkd(b / "m")
    assert_refused(run_eddy, ["mount", *mode_args, "b", "b/m"], [b, m],
                   cwd=str(workdir))


def test_refuse_identical_paths(run_eddy, workdir, mode_args):
    d = mkd(workdir / "d")
    assert_refused(run_eddy, ["mount", *mode_args, d, d], [d])


def test_refuse_identical_paths_trailing_slash(run_eddy, workdir, mode_args):
    d = mkd(workdir / "d")
    assert_refused(run_eddy, ["mount", *mode_args, f"{d}/", f"{d}"], [d])


def test_refuse_identical_paths_via_symlink(run_eddy, workdir, mode_args):
    d = mkd(workdir / "d")
    link = workdir / "link"
    link.symlink_to(d)
    assert_refused(run_eddy, ["mount", *mode_args, d, link], [d, link])


# --------------------------------------------------------------------------
# usage errors

def _usage_cases(b, m):
    return {
        "unknown-long-option": ["mount", "--frobnicate", b, m],
        "unknown-short-option": ["mount", "-Z", b, m],
        "threads-not-a-number": ["mount", "--threads", "abc", b, m],
        "threads-negative": ["mount", "--threads", "-3", b, m],
        "threads-trailing-junk": ["mount", "--threads", "4x", b, m],
        "option-missing-value": ["mount", b, m, "--log-file"],
        "missing-mountpoint-arg": ["mount", b],
        "no-positional-args": ["mount"],
        "too-many-args": ["mount", b, m, m],
        "unknown-command": ["frobnicate"],
        "no-command": [],
        "umount-no-target": ["umount"],
        "umount-unknown-option": ["umount", "--frobnicate", m],
        "stats-no-target": ["stats"],
        "stats-unknown-option": ["stats", "--frobnicate"],
        "version-junk": ["--frobnicate"],
    }


@pytest.mark.parametrize("case", sorted(_usage_cases("B", "M")))
def test_usage_error_exit_2(run_eddy, workdir, case):
    b, m = mkd(workdir / "b"), mkd(workdir / "m")
    (b / "keep").write_text("k")
    args = _usage_cases(b, m)[case]
    before = {str(p): snap(p) for p in (b, m)}
    table = mount_table(workdir)
    r = run_eddy(*args, timeout=REFUSAL_TIMEOUT)
    desc = f"eddyfs {args}\nrc={r.returncode}\nstdout:{r.stdout!r}\nstderr:{r.stderr!r}"
    assert r.returncode == 2, desc
    assert r.stderr.strip(), "usage error without a message on stderr\n" + desc
    assert {str(p): snap(p) for p in (b, m)} == before, desc
    assert mount_table(workdir) == table, desc


def test_bad_fuse_option_exit_2(run_eddy, workdir, mode_args):
    b, m = mkd(workdir / "b"), mkd(workdir / "m")
    assert_refused(run_eddy, ["mount", *mode_args, "-o", "no_such_fuse_option_xyz",
                              b, m], [b, m], exact_line=False)


# --------------------------------------------------------------------------
# help / version

@pytest.mark.parametrize("args,must_mention", [
    (["--help"], ["mount", "umount", "stats"]),
    (["mount", "--help"], ["--background", "--log-file", "--client-id"]),
    (["umount", "--help"], ["--mount", "--mount-base"]),
    (["stats", "--help"], ["--mount"]),
])
def test_help(run_eddy, args, must_mention):
    r = run_eddy(*args)
    out = r.stdout + r.stderr
    assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
    assert "usage" in r.stdout.lower(), f"no usage text on stdout: {r.stdout!r}"
    for word in must_mention:
        assert word in out, f"{args}: help does not mention {word!r}:\n{out}"


def test_version(run_eddy):
    r = run_eddy("--version")
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert any(c.isdigit() for c in r.stdout), f"no version number: {r.stdout!r}"


# --------------------------------------------------------------------------
# env fallbacks

@pytest.fixture
def raw_mount(run_eddy, workdir, register_log):
    """raw_mount(*args, env_extra={}, logs=()) -> CompletedProcess of
    `eddyfs mount --background <args> <backing> <mnt>` with a fresh
    backing/mountpoint (returned as r.backing / r.mnt)."""
    counter = iter(range(1000))

    def go(*args, env_extra=None, background_flag=True, expect_logs=()):
        n = next(counter)
        b, m = mkd(workdir / f"rb{n}"), mkd(workdir / f"rm{n}")
        for log in expect_logs:
            register_log(log)
        argv = ["mount"] + (["--background"] if background_flag else []) \
            + list(args) + [b, m]
        r = run_eddy(*argv, env=base_env(**(env_extra or {})))
        r.backing, r.mnt = b, m
        assert r.returncode == 0, (argv, env_extra, r.stdout, r.stderr)
        assert is_mounted(m), (argv, "not mounted after exit 0", r.stderr)
        return r
    return go


def test_env_client_id_and_log_dir(raw_mount, workdir):
    d = mkd(workdir / "logs")
    r = raw_mount(env_extra={"EDDYFS_CLIENT_ID": "alpha", "EDDYFS_LOG_DIR": d},
                  expect_logs=[d / "alpha.log"])
    (r.mnt / "f").write_text("x")
    assert (d / "alpha.log").is_file(), os.listdir(d)
    assert os.listdir(d) == ["alpha.log"]


def test_env_log_dir_default_client_id(raw_mount, workdir):
    d = mkd(workdir / "logs")
    raw_mount(env_extra={"EDDYFS_LOG_DIR": d}, expect_logs=[d / "client.log"])
    assert os.listdir(d) == ["client.log"]


def test_flag_client_id_beats_env(raw_mount, workdir):
    d = mkd(workdir / "logs")
    raw_mount("--client-id", "beta",
              env_extra={"EDDYFS_CLIENT_ID": "alpha", "EDDYFS_LOG_DIR": d},
              expect_logs=[d / "beta.log"])
    assert os.listdir(d) == ["beta.log"]


def test_flag_log_dir_beats_env(raw_mount, workdir):
    d_env, d_flag = mkd(workdir / "logs_env"), mkd(workdir / "logs_flag")
    raw_mount("--log-dir", d_flag, "--client-id", "c1",
              env_extra={"EDDYFS_LOG_DIR": d_env},
              expect_logs=[d_flag / "c1.log"])
    assert os.listdir(d_flag) == ["c1.log"]
    assert os.listdir(d_env) == []


def test_env_log_file(raw_mount, workdir):
    f = workdir / "envlog.log"
    raw_mount(env_extra={"EDDYFS_LOG_FILE": f}, expect_logs=[f])
    assert f.is_file()


def test_flag_log_file_beats_env(raw_mount, workdir):
    f_env, f_flag = workdir / "env.log", workdir / "flag.log"
    raw_mount("--log-file", f_flag, env_extra={"EDDYFS_LOG_FILE": f_env},
              expect_logs=[f_flag])
    assert f_flag.is_file()
    assert not f_env.exists()


def test_env_background(raw_mount, workdir):
    f = workdir / "bg.log"
    # without --background on the command line: must still return (bounded by
    # the subprocess timeout) with the mount up
    r = raw_mount("--log-file", f, env_extra={"EDDYFS_BACKGROUND": "1"},
                  background_flag=False, expect_logs=[f])
    (r.mnt / "hello").write_text("hi")
    assert (r.backing / "hello").read_text() == "hi"


def test_env_options_ro(raw_mount, workdir):
    f = workdir / "ro.log"
    r = raw_mount("--log-file", f, env_extra={"EDDYFS_OPTIONS": "ro"},
                  expect_logs=[f])
    (r.backing / "exists").write_text("x")
    with pytest.raises(OSError) as ei:
        (r.mnt / "new").write_text("y")
    assert ei.value.errno == 30  # EROFS
    assert not (r.backing / "new").exists()


def test_background_without_log_target_warns(raw_mount):
    r = raw_mount()
    assert r.stderr.strip(), "expected a warning on stderr when --background " \
                             "has no log target"
    (r.mnt / "f").write_text("data")
    assert (r.backing / "f").read_text() == "data"


# --------------------------------------------------------------------------
# umount

def test_umount_plain_dir_refused(run_eddy, workdir):
    d = mkd(workdir / "plain")
    r = run_eddy("umount", "--mount", d)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.strip()


def test_umount_missing_path_refused(run_eddy, workdir):
    r = run_eddy("umount", "--mount", workdir / "nope")
    assert r.returncode == 2, (r.stdout, r.stderr)


def test_umount_tmpfs_refused(run_eddy, workdir):
    m = mkd(workdir / "t")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(m)],
                   check=True)
    r = run_eddy("umount", "--mount", m)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert mount_fstype(m) == "tmpfs"


def _bindfs(src, dst):
    if not shutil.which("bindfs"):
        pytest.skip("bindfs not installed")
    subprocess.run(["bindfs", str(src), str(dst)], check=True, timeout=60)
    wait_for(lambda: is_mounted(dst), what="bindfs mount")


def test_umount_bindfs_refused(run_eddy, workdir):
    src, dst = mkd(workdir / "bsrc"), mkd(workdir / "bdst")
    _bindfs(src, dst)
    r = run_eddy("umount", "--mount", dst)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert is_mounted(dst) and mount_fstype(dst) == "fuse"


def test_stats_non_eddyfs_path_fails(run_eddy, workdir):
    d = mkd(workdir / "plain")
    r = run_eddy("stats", "--mount", d)
    assert r.returncode != 0, (r.stdout, r.stderr)


def test_mount_shows_as_fuse_eddyfs(mount):
    assert mount_fstype(mount.mnt) == "fuse.eddyfs"


def test_umount_waits_for_daemon(make_mount, run_eddy):
    m = make_mount()
    (m.mnt / "f").write_text("x")
    pid = m.pid
    assert pid_alive(pid)
    r = run_eddy("umount", "--mount", m.mnt)
    assert r.returncode == 0, (r.stdout, r.stderr)
    # no waiting here: the contract says umount returns after the daemon exited
    assert not pid_alive(pid), f"daemon {pid} still alive after umount returned"
    assert not is_mounted(m.mnt)
    assert f"unmounted {m.mnt}" in r.stdout.splitlines(), r.stdout
    assert (m.backing / "f").read_text() == "x"


def test_umount_several_mounts(make_mount, run_eddy):
    ms = [make_mount() for _ in range(3)]
    pids = [m.pid for m in ms]
    r = run_eddy("umount", "--mount", ms[0].mnt, "--mount", ms[1].mnt)
    assert r.returncode == 0, (r.stdout, r.stderr)
    lines = r.stdout.splitlines()
    for m in ms[:2]:
        assert f"unmounted {m.mnt}" in lines, r.stdout
        assert not is_mounted(m.mnt)
    for p in pids[:2]:
        assert not pid_alive(p)
    assert is_mounted(ms[2].mnt) and pid_alive(pids[2])
    assert f"unmounted {ms[2].mnt}" not in lines


def test_umount_twice(make_mount, run_eddy):
    m = make_mount()
    assert run_eddy("umount", "--mount", m.mnt).returncode == 0
    r = run_eddy("umount", "--mount", m.mnt)
    assert r.returncode == 2, (r.stdout, r.stderr)


def test_umount_mount_base(make_mount, run_eddy, workdir):
    base = mkd(workdir / "base")
    inside = []
    for i in range(3):
        mp = mkd(base / f"m{i}") if i < 2 else (base / "deep" / "m2")
        if i == 2:
            mkd(base / "deep")
            mkd(mp)
        inside.append(make_mount(mnt=mp))
    # a sibling whose name shares the prefix must be left alone
    sib = mkd(workdir / "base2")
    outside = make_mount(mnt=mkd(sib / "m"))
    bindfs_dst = None
    if shutil.which("bindfs"):
        bsrc = mkd(workdir / "bsrc")
        (bsrc / "bf").write_text("bindfs file")
        bindfs_dst = mkd(base / "bind")
        _bindfs(bsrc, bindfs_dst)
    for i, m in enumerate(inside):
        (m.mnt / f"file{i}").write_text(str(i))
    pids = [m.pid for m in inside]
    out_pid = outside.pid

    r = run_eddy("umount", "--mount-base", base)
    assert r.returncode == 0, (r.stdout, r.stderr)
    lines = r.stdout.splitlines()
    for i, m in enumerate(inside):
        assert f"unmounted {m.mnt}" in lines, r.stdout
        assert not is_mounted(m.mnt), f"{m.mnt} still mounted"
        assert not pid_alive(pids[i]), f"daemon {pids[i]} alive after umount returned"
        assert (m.backing / f"file{i}").read_text() == str(i)
    assert len([l for l in lines if l.startswith("unmounted ")]) == len(inside), r.stdout
    assert is_mounted(outside.mnt) and pid_alive(out_pid)
    (outside.mnt / "still").write_text("ok")
    if bindfs_dst is not None:
        assert mount_fstype(bindfs_dst) == "fuse", "bindfs mount was touched"
        assert (bindfs_dst / "bf").read_text() == "bindfs file"
        subprocess.run(["fusermount3", "-u", str(bindfs_dst)], check=True)
    else:
        pytest.skip("bindfs missing: eddyfs part passed, bindfs part skipped")


def test_umount_mount_base_nothing_mounted(run_eddy, workdir):
    base = mkd(workdir / "empty_base")
    r = run_eddy("umount", "--mount-base", base)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert not [l for l in r.stdout.splitlines() if l.startswith("unmounted")]
