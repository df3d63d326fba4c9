"""`eddyfs trace` (issue 4, "Seeing the race"): two chaos clients over one
backing directory write decision logs; the trace of both must show every
drop, cache answer, delay and publication of each client (counted against
the JSON lines themselves), as text and as a self-contained HTML page.
Bad input is refused with one line and exit 2."""

import json
import os
import re
import xml.etree.ElementTree as ET

import pytest

LONG = "60000"
MARKS = {"D": ("drop",), "S": ("cached", "cached-absent"), "~": ("delay",),
         "P": ("published",), "!": ("publish-failed", "lost", "torn", "diverged", "silly-rename")}


def chaos(*knobs):
    """extra_args for a chaos mount with these knobs (others set to 0)."""
    d = {"meta-ttl": "0", "write-delay": "0", "rename-delay": "0", "drop-prob": "0"}
    for k in knobs:
        key, val = k.split("=", 1)
        d[key] = val
    return ["--chaos"] + [x for key, val in d.items() for x in (f"--{key}", val)]


def attempt(fn, *args):
    try:
        return fn(*args)
    except OSError as e:
        return e.errno


def write(p, data):
    with open(p, "w") as f:
        f.write(data)


def workload(a, b):
    """A makes files (some dropped, the rest delayed); B keeps asking for
    them from its long-lived cache (stale absences) and gets drops too."""
    for i in range(12):
        attempt(write, a.mnt / f"f{i}", f"v{i}\n")
        attempt(os.stat, b.mnt / f"f{i}")
        attempt(os.stat, b.mnt / f"f{i}")
        attempt(os.listdir, b.mnt)
        attempt(os.stat, b.mnt)


@pytest.fixture
def logs(make_mount, workdir):
    """Two clients' decision logs after a racy workload and unmount."""
    la, lb = workdir / "a.jsonl", workdir / "b.jsonl"
    a = make_mount(extra_args=chaos("write-delay=150", "rename-delay=150", "drop-prob=0.5")
                   + ["--seed", "1", "--client-id", "A", "--decision-log", la])
    b = make_mount(backing=a.backing,
                   extra_args=chaos("meta-ttl=" + LONG, "drop-prob=0.5")
                   + ["--seed", "1", "--client-id", "B", "--decision-log", lb])
    workload(a, b)
    a.umount()
    b.umount()
    return la, lb


def records(*paths):
    out = []
    for p in paths:
        out += [json.loads(x) for x in p.read_text().splitlines() if x.strip()]
    return out


def counts(recs, client):
    d = {}
    for r in recs:
        if r["client"] == client:
            d[r["decision"]] = d.get(r["decision"], 0) + 1
    return d


def timeline_cells(text):
    """{client: [cell, ...]} from the text timeline."""
    lines = text.splitlines()
    head = next(i for i, x in enumerate(lines) if x.lstrip().startswith("time (s)"))
    clients = [c.strip() for c in lines[head].split(" | ")[1:]]
    cells = {c: [] for c in clients}
    for row in lines[head + 2:]:
        if not row.strip():
            break
        parts = row.split(" | ")
        assert re.fullmatch(r" *\d+\.\d{3}", parts[0]), row
        for c, cell in zip(clients, parts[1:]):
            if cell.strip(" |"):
                cells[c].append(cell.strip(" |"))
    return cells


def test_decision_log_starts_with_wall_clock(logs):
    for path, client in zip(logs, "AB"):
        first = json.loads(path.read_text().splitlines()[0])
        assert first["decision"] == "start" and first["client"] == client
        assert first["seed"] == 1 and first["t_ms"] == 0
        assert abs(first["wall_ms"] / 1000 - os.path.getmtime(path)) < 600


def test_text_timeline_matches_the_logs(logs, run_eddy):
    recs = records(*logs)
    r = run_eddy("trace", "--width", "120", *logs)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    cells = timeline_cells(r.stdout)
    assert set(cells) == {"A", "B"}
    seen = set()
    for client in "AB":
        want = counts(recs, client)
        for mark, kinds in MARKS.items():
            n = sum(want.get(k, 0) for k in kinds)
            got = sum(1 for c in cells[client] if c.startswith(mark + " "))
            assert got == n, (client, mark, r.stdout)
            if n:
                seen.add(mark)
        # the summary counts every decision kind
        for kind in ("pass", "drop", "cached", "cached-absent", "delay", "published"):
            m = re.search(rf"^  . {re.escape(kind)} +(\d+) +(\d+)$", r.stdout, re.M)
            assert m, (kind, r.stdout)
            assert int(m.group(1 + "AB".index(client))) == want.get(kind, 0), kind
    assert seen >= {"D", "S", "~", "P"}, seen
    # every delayed change of A was published (unmount publishes): one
    # stale window each
    a = counts(recs, "A")
    assert a.get("delay", 0) == a.get("published", 0) > 0
    assert re.search(rf"^  A: {a['published']} changes?, \d+ to \d+ ms late", r.stdout, re.M)
    assert "D " in r.stdout and "EIO" in r.stdout


def test_time_axis_and_window(logs, run_eddy, workdir):
    r = run_eddy("trace", *logs)
    assert r.returncode == 0, r.stderr
    times = [float(x) for x in re.findall(r"^ *(\d+\.\d{3}) \|", r.stdout, re.M)]
    assert times == sorted(times) and times
    # one file holding both clients gives the same timeline
    both = workdir / "both.jsonl"
    both.write_text(logs[1].read_text() + logs[0].read_text())
    r2 = run_eddy("trace", both)
    assert r2.returncode == 0, r2.stderr
    assert timeline_cells(r2.stdout) == timeline_cells(r.stdout)
    # an empty window
    r3 = run_eddy("trace", "--from", "100000000", *logs)
    assert r3.returncode == 0, r3.stderr
    assert "nothing but passed operations" in r3.stdout
    assert re.search(r"^  D drop +0 +0$", r3.stdout, re.M)


def test_html_page(logs, run_eddy, workdir):
    out = workdir / "race.html"
    r = run_eddy("trace", "--html", out, *logs)
    assert r.returncode == 0, r.stderr
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert "http" not in html and "src=" not in html and "href" not in html
    root = ET.fromstring(re.sub(r"<!DOCTYPE[^>]*>", "", html))
    svg = root.find(".//svg")
    assert svg is not None
    lanes = [e for e in svg.iter("rect") if (e.get("class") or "").split()[0:1] == ["lane"]]
    assert len(lanes) == 3                          # the truth + A + B
    names = [t.text for t in svg.iter("text") if t.get("class") == "lname"]
    assert names == ["the truth", "A", "B"]
    titles = [t.text for t in svg.iter("title")]
    recs = records(*logs)
    drops = sum(1 for x in recs if x["decision"] == "drop")
    assert sum(1 for t in titles if " D " in t) == drops
    pubs = sum(1 for x in recs if x["decision"] == "published")
    assert sum(1 for t in titles if t and "the truth changed" in t) == pubs
    assert "legend" in html


def test_refusals(run_eddy, workdir, logs):
    missing = workdir / "nope.jsonl"
    r = run_eddy("trace", logs[0], missing)
    assert r.returncode == 2
    assert r.stderr.startswith(f"eddyfs: trace: {missing}: ")
    assert len(r.stderr.splitlines()) == 1 and r.stdout == ""

    bad = workdir / "bad.jsonl"
    lines = logs[0].read_text().splitlines()[:2]
    for garbage in ("this is not json", '{"t_ms":1,"client":"A"}', "[1,2]",
                    '{"t_ms":1,"client":"A","op":"read","decision":5}'):
        bad.write_text("\n".join(lines + [garbage]) + "\n")
        r = run_eddy("trace", bad)
        assert r.returncode == 2, garbage
        assert r.stderr.startswith(f"eddyfs: trace: {bad}:3: "), r.stderr
        assert len(r.stderr.splitlines()) == 1 and r.stdout == ""

    for argv in (["trace"], ["trace", "--from", "x", logs[0]], ["trace", "--bogus", logs[0]],
                 ["trace", "--from", "10", "--to", "5", logs[0]]):
        r = run_eddy(*argv)
        assert r.returncode == 2, argv
        assert len(r.stderr.splitlines()) == 1, r.stderr


def test_log_without_start_line(run_eddy, workdir):
    old = workdir / "old.jsonl"
    old.write_text('{"t_ms":5,"client":"X","seq":1,"op":"read","ino":3,'
                   '"decision":"drop","errno":5}\n'
                   '{"t_ms":7,"client":"X","seq":2,"op":"getattr","ino":3,'
                   '"decision":"cached"}\n')
    r = run_eddy("trace", old)
    assert r.returncode == 0
    assert "no start line" in r.stderr
    cells = timeline_cells(r.stdout)
    assert cells == {"X": ["D read #3 EIO", "S getattr #3"]}


def test_unknown_and_nfs_decisions_are_shown(run_eddy, workdir):
    log = workdir / "nfs.jsonl"
    log.write_text('{"t_ms":0,"client":"N","seq":0,"op":"start","ino":0,"decision":"start",'
                   '"wall_ms":1000,"seed":18446744073709551615}\n'
                   '{"t_ms":3,"client":"N","seq":0,"op":"unlink","ino":1,"name":"f",'
                   '"decision":"silly-rename"}\n'
                   '{"t_ms":4,"client":"N","seq":0,"op":"read","ino":2,'
                   '"decision":"from-the-future"}\n')
    r = run_eddy("trace", log)
    assert r.returncode == 0, r.stderr
    assert "seed 18446744073709551615" in r.stdout
    assert timeline_cells(r.stdout) == {
        "N": ["! silly-rename unlink f", "? from-the-future read #2"]}
    assert re.search(r"^  \? other +1$", r.stdout, re.M)
