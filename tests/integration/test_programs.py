"""Real programs on an eddyfs mount: tar, cp -a, git, python venv, sqlite
(WAL, concurrent reader). Every test runs on the dir and the mem backend;
the checks of the backing directory apply to dir only."""

import json
import os
import shutil
import sqlite3
import subprocess
import textwrap

import pytest

from conftest import all_backends, run_as_cmd
from eddy_conform import hang_guard, snapshot  # noqa: F401

pytestmark = all_backends

PY = "/usr/bin/python3"
CMD_TIMEOUT = 600


def run(argv, cwd=None, env=None, check=True, **kw):
    r = subprocess.run([str(a) for a in argv], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=CMD_TIMEOUT,
                       **kw)
    if check and r.returncode != 0:
        raise AssertionError("command failed rc=%d: %s\nstdout:\n%s\n"
                             "stderr:\n%s" % (r.returncode, " ".join(
                                 map(str, argv)), r.stdout[-4000:],
                                 r.stderr[-4000:]))
    return r


def build_tree(root):
    """A varied tree: nested dirs, sizes 0..3 MiB, sparse file, symlinks
    (relative, absolute, dangling, to dir), hard links, a fifo, odd names,
    odd modes, xattrs, fixed timestamps."""
    root = str(root)
    os.makedirs(os.path.join(root, "a", "b", "c"))
    os.makedirs(os.path.join(root, "empty"))
    os.makedirs(os.path.join(root, "x" * 200, "y" * 200))
    sizes = [0, 1, 511, 4096, 4097, 65536, 100_000, 3 << 20]
    for i, n in enumerate(sizes):
        with open(os.path.join(root, "a", "f%d" % n), "wb") as f:
            f.write(os.urandom(n) if i % 2 else (b"%d\n" % i) * (n // 2 + 1))
    with open(os.path.join(root, "a", "b", "sparse"), "wb") as f:
        f.seek(5 << 20)
        f.write(b"end")
    with open(os.path.join(root, "x" * 200, "y" * 200, "deep"), "w") as f:
        f.write("deep file\n")
    os.symlink("../f4096", os.path.join(root, "a", "b", "rel"))
    os.symlink("/etc/hostname", os.path.join(root, "a", "abs"))
    os.symlink("nowhere", os.path.join(root, "a", "dangling"))
    os.symlink("b/c", os.path.join(root, "a", "dirlink"))
    os.link(os.path.join(root, "a", "f1"), os.path.join(root, "a", "b",
                                                        "hard1"))
    os.link(os.path.join(root, "a", "f1"), os.path.join(root, "hard2"))
    os.mkfifo(os.path.join(root, "a", "fifo"))
    for n in ("sp ace", "new\nline", "\u00fcml\u00e4ut", "back\\slash"):
        with open(os.path.join(root, n), "w") as f:
            f.write(n)
    os.chmod(os.path.join(root, "a", "f511"), 0o4755)
    os.chmod(os.path.join(root, "a", "f0"), 0o000)
    os.chmod(os.path.join(root, "a", "f1"), 0o600)
    os.chmod(os.path.join(root, "a", "b", "c"), 0o2750)
    os.chmod(os.path.join(root, "empty"), 0o1777)
    os.chown(os.path.join(root, "a", "f4097"), 1000, 1000)
    os.lchown(os.path.join(root, "a", "abs"), 1001, 1001)
    os.setxattr(os.path.join(root, "a", "f65536"), "user.tag", b"xattr val")
    os.setxattr(os.path.join(root, "a", "b"), "user.dirtag", b"d")
    # fixed timestamps everywhere, children first
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for n in filenames + dirnames:
            os.utime(os.path.join(dirpath, n), ns=(1_500_000_000_123_456_789,
                                                   1_400_000_000_987_654_321),
                     follow_symlinks=False)
    os.utime(root, ns=(1_500_000_000_000_000_000, 1_400_000_000_000_000_000))


def times_snapshot(root, ns=True):
    res = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            res[os.path.relpath(p, root)] = (
                st.st_mtime_ns if ns else int(st.st_mtime))
    return res


def find_listing(root):
    r = run(["find", ".", "-printf", r"%y %m %n %s %U:%G %l %p\n"], cwd=root)
    return sorted(r.stdout.split("\n"))


def test_tar_roundtrip(native_dir, mount, workdir):
    src = native_dir / "tree"
    build_tree(src)
    archive = workdir / "tree.tar"
    run(["tar", "--xattrs", "--xattrs-include=user.*", "-cpf", archive,
         "-C", native_dir, "tree"])
    run(["tar", "--xattrs", "--xattrs-include=user.*", "-xpf", archive,
         "-C", mount.mnt])
    dst = mount.mnt / "tree"
    # (diff cannot compare fifos; snapshot() below covers the fifo)
    r = run(["diff", "-r", "--no-dereference", "-x", "fifo", src, dst],
            check=False)
    assert r.returncode == 0, "diff -r found differences:\n" + r.stdout[-4000:]
    assert snapshot(str(dst)) == snapshot(str(src))
    if mount.backing is not None:
        assert snapshot(str(mount.backing / "tree")) == snapshot(str(src))
    assert times_snapshot(dst, ns=False) == times_snapshot(src, ns=False)
    assert find_listing(dst) == find_listing(src)
    # and tar c from the mount gives an archive with the same members
    archive2 = workdir / "tree2.tar"
    run(["tar", "--xattrs", "--xattrs-include=user.*", "-cpf", archive2,
         "-C", mount.mnt, "tree"])
    l1 = run(["tar", "--xattrs", "-tvf", archive]).stdout
    l2 = run(["tar", "--xattrs", "-tvf", archive2]).stdout
    # (tar pads its columns to the widest entry so far: the padding depends
    # on the order the directories were listed in)
    assert sorted(" ".join(l.split()) for l in l1.splitlines()) == \
        sorted(" ".join(l.split()) for l in l2.splitlines())
    # extract the second archive natively and compare contents
    re_dir = workdir / "re"
    re_dir.mkdir()
    run(["tar", "--xattrs", "--xattrs-include=user.*", "-xpf", archive2,
         "-C", re_dir])
    assert snapshot(str(re_dir / "tree")) == snapshot(str(src))


def test_cp_a_matches_native(native_dir, mount):
    src = native_dir / "tree"
    build_tree(src)
    ref = native_dir / "cp_ref"
    run(["cp", "-a", src, ref])
    dst = mount.mnt / "cp_dst"
    r = run(["cp", "-a", src, dst], check=False)
    assert r.returncode == 0, r.stderr
    assert snapshot(str(dst)) == snapshot(str(ref))
    assert times_snapshot(dst) == times_snapshot(ref)
    stored = dst
    if mount.backing is not None:
        stored = mount.backing / "cp_dst"
        assert snapshot(str(stored)) == snapshot(str(ref))
    # holes survive (cp detects them with SEEK_HOLE/SEEK_DATA): the 5 MiB
    # sparse file with 3 bytes of data stays sparse where it is stored
    sparse = "a/b/sparse"
    assert os.lstat(ref / sparse).st_blocks * 512 < 1 << 20
    assert os.lstat(stored / sparse).st_blocks * 512 < 1 << 20
    # cp -a back out of the mount
    back = native_dir / "cp_back"
    run(["cp", "-a", dst, back])
    assert snapshot(str(back)) == snapshot(str(ref))
    assert times_snapshot(back) == times_snapshot(ref)


def _git_env(home):
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "GIT_AUTHOR_DATE": "2020-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE": "2020-01-01T00:00:00Z",
        "LC_ALL": "C",
    }


GIT_SCRIPT = r"""
set -e
cd "$1"
git init -q -b main repo
cd repo
git config core.autocrlf false
mkdir -p src/sub docs
for i in $(seq 1 60); do echo "line $i of file $i" > src/file$i.txt; done
head -c 300000 /dev/urandom > docs/blob.bin
printf '#!/bin/sh\necho hi\n' > run.sh; chmod 755 run.sh
ln -s src/file1.txt link
git add -A
git commit -q -m first
for r in 1 2 3 4 5; do
  for i in $(seq 1 12); do echo "round $r" >> src/file$i.txt; done
  git mv src/file$((50+r)).txt src/sub/moved$r.txt
  git rm -q src/file$((40+r)).txt
  git commit -q -am "round $r"
done
git tag v1
git status --porcelain
git log --oneline | wc -l
git gc -q --aggressive --prune=now
git fsck --full --strict
git status --porcelain
git count-objects -v | grep -E '^(count|packs):'
cd ..
git clone -q repo clone
cd clone
git status --porcelain
git log --oneline | wc -l
git diff --stat v1 HEAD
test -x run.sh
readlink link
"""


def _check_git_output(out):
    lines = out.split("\n")
    # two "git status --porcelain" before/after gc print nothing; the log
    # count is 6 twice; after gc everything is packed
    assert "6" in lines, out
    assert lines.count("6") == 2, out
    assert "count: 0" in lines, out
    assert "packs: 1" in lines, out
    assert "src/file1.txt" in lines, out
    assert not any(l.startswith(("??", " M", "M ", " D", "A ")) for l in lines), out


def test_git_workflow(mount, workdir):
    home = workdir / "home"
    home.mkdir()
    script = workdir / "git.sh"
    script.write_text(GIT_SCRIPT)
    r = run(["sh", script, mount.mnt], env=_git_env(home))
    _check_git_output(r.stdout)
    if mount.backing is None:
        return
    # the same repository is consistent when read directly from the backing
    r = run(["git", "-C", mount.backing / "repo", "fsck", "--full"],
            env=_git_env(home))
    r = run(["git", "-C", mount.backing / "repo", "status", "--porcelain"],
            env=_git_env(home))
    assert r.stdout == ""


def test_git_workflow_as_user(mount, workdir):
    home = workdir / "home1000"
    home.mkdir()
    os.chown(home, 1000, 1000)
    d = mount.mnt / "u1000"
    d.mkdir()
    os.chown(d, 1000, 1000)
    script = workdir / "git.sh"
    script.write_text(GIT_SCRIPT)
    os.chmod(script, 0o644)
    r = run_as_cmd(1000, 1000, ["sh", script, d], env=_git_env(home),
                   timeout=CMD_TIMEOUT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    _check_git_output(r.stdout)
    # everything in the backing dir (mem: in the mount) belongs to the user
    top = d if mount.backing is None else mount.backing / "u1000"
    for dirpath, dirnames, filenames in os.walk(top):
        for n in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, n))
            assert (st.st_uid, st.st_gid) == (1000, 1000), \
                os.path.join(dirpath, n)


def test_python_venv(mount):
    venv = mount.mnt / "venv"
    r = run([PY, "-c", "import ensurepip"], check=False)
    args = [PY, "-m", "venv"]
    if r.returncode != 0:
        args.append("--without-pip")
    r = run(args + [venv], check=False)
    if r.returncode != 0 and "--without-pip" not in args:
        r = run([PY, "-m", "venv", "--without-pip", "--clear", venv])
    assert r.returncode == 0, r.stderr
    vpy = venv / "bin" / "python"
    assert os.path.islink(vpy) or os.path.isfile(vpy)
    code = textwrap.dedent("""
        import sys, json, sqlite3, decimal, email.parser, xml.dom.minidom
        print(json.dumps({"prefix": sys.prefix, "base": sys.base_prefix,
                          "venv": sys.prefix != sys.base_prefix}))
    """)
    r = run([vpy, "-c", code], env={"PATH": "/usr/bin:/bin"})
    info = json.loads(r.stdout)
    assert info["venv"] is True
    assert os.path.realpath(info["prefix"]) == os.path.realpath(venv)
    # the venv's own site-packages is importable / writable
    sp = run([vpy, "-c", "import sysconfig; print(sysconfig.get_paths()"
                         "['purelib'])"]).stdout.strip()
    with open(os.path.join(sp, "eddymod.py"), "w") as f:
        f.write("VALUE = 42\n")
    r = run([vpy, "-c", "import eddymod; print(eddymod.VALUE)"],
            env={"PATH": "/usr/bin:/bin"})
    assert r.stdout.strip() == "42"
    # bytecode got cached on the mount
    assert any(n.startswith("eddymod.") for n in os.listdir(
        os.path.join(sp, "__pycache__")))
    # activate script works in a shell
    r = run(["bash", "-c", ". %s/bin/activate && python -c "
             "'import sys; print(sys.prefix)'" % venv])
    assert os.path.realpath(r.stdout.strip()) == os.path.realpath(venv)


READER = r"""
import sqlite3, sys, os, json
db, done_flag = sys.argv[1], sys.argv[2]
counts = []
while True:
    done = os.path.exists(done_flag)
    con = sqlite3.connect(db, timeout=60)
    try:
        mode = con.execute("PRAGMA journal_mode").fetchone()[0]
        n, s = con.execute(
            "SELECT count(*), coalesce(sum(v), 0) FROM t").fetchone()
    finally:
        con.close()
    counts.append((n, s))
    if done:
        break
print(json.dumps({"mode": mode, "counts": counts}))
"""


def test_sqlite_wal_with_concurrent_reader(mount, workdir):
    db = mount.mnt / "test.db"
    con = sqlite3.connect(str(db), timeout=60)
    try:
        _sqlite_wal(con, db, mount, workdir)
    finally:
        con.close()


def _sqlite_wal(con, db, mount, workdir):
    assert con.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER, "
                "payload TEXT)")
    con.execute("CREATE INDEX tv ON t(v)")
    con.commit()
    done = workdir / "writer-done"
    reader_py = workdir / "reader.py"
    reader_py.write_text(READER)
    reader = subprocess.Popen([PY, str(reader_py), str(db), str(done)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        rows = 0
        for txn in range(100):
            with con:
                con.executemany(
                    "INSERT INTO t (v, payload) VALUES (?, ?)",
                    [(1, "row %d %s" % (rows + i, "p" * (i % 50)))
                     for i in range(100)])
            rows += 100
        done.write_text("1")
        out, err = reader.communicate(timeout=CMD_TIMEOUT)
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()
    assert reader.returncode == 0, err
    res = json.loads(out)
    assert res["mode"] == "wal"
    counts = res["counts"]
    # every snapshot the reader saw is a whole number of transactions,
    # consistent (count == sum(v)), and never goes backwards
    assert all(n % 100 == 0 and n == s for n, s in counts), counts[:50]
    assert [n for n, _ in counts] == sorted(n for n, _ in counts)
    assert counts[-1][0] == 10_000
    # while the writer connection is still open (WAL not checkpointed),
    # a separate reader process sees the rows: python and the sqlite3 CLI
    r = run([PY, "-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); "
             "print(c.execute('select count(*) from t').fetchone()[0])", db])
    assert r.stdout.strip() == "10000"
    if shutil.which("sqlite3"):
        r = run(["sqlite3", db, "PRAGMA integrity_check; "
                 "SELECT count(*) FROM t;"])
        assert r.stdout.split() == ["ok", "10000"], r.stdout
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert os.path.exists(str(db) + "-wal")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.execute("UPDATE t SET v = 2 WHERE id % 2 = 0")
    con.commit()
    assert con.execute("SELECT sum(v) FROM t").fetchone()[0] == 15_000
    con.execute("VACUUM")
    con.close()
    # the backing file (mem: the file, reopened) is a valid database with
    # the same content
    con = sqlite3.connect(str((mount.backing or mount.mnt) / "test.db"))
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("SELECT count(*), sum(v) FROM t").fetchone() == \
            (10_000, 15_000)
    finally:
        con.close()


def test_sqlite_cli_rollback_journal(mount):
    if not shutil.which("sqlite3"):
        pytest.skip("sqlite3 CLI not installed")
    db = mount.mnt / "cli.db"
    sql = ["CREATE TABLE k (a INTEGER PRIMARY KEY, b TEXT);", "BEGIN;"]
    sql += ["INSERT INTO k (b) VALUES ('%s');" % ("v%d" % i * 10)
            for i in range(5000)]
    sql += ["COMMIT;", "PRAGMA integrity_check;", "SELECT count(*) FROM k;"]
    r = run(["sqlite3", db], input="\n".join(sql))
    assert r.stdout.split() == ["ok", "5000"], r.stdout
    assert not os.path.exists(str(db) + "-journal")
