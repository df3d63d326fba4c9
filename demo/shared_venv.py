#!/usr/bin/python3
"""Demo 2: two clients sharing a Python virtual environment.

Client A runs `python3 -m venv --without-pip` (a CI setup step, say) and
then tells B it is done (outside the filesystem); B uses it at once:
  1. B/venv/bin/python runs inside the venv (sys.prefix != sys.base_prefix)
  2. B/venv/pyvenv.cfg has its "home =" line
  3. `. B/venv/bin/activate; python` runs the venv's interpreter
Twice: once for a B that had looked for the venv before it existed (a job
waiting for it), once for a B that never looked.
Expected: every check passes in the control; under chaos B finds no venv
(its cached absence, meta-ttl) or empty files (A's writes still pending,
write-delay) -- printed as they happen. If chaos breaks nothing, this demo
says so and fails."""

import os
import subprocess
import sys

from common import clients, header, verdict

KNOBS = dict(meta_ttl=1000, write_delay=1000)
CHECK_PY = "import sys; print(sys.prefix != sys.base_prefix)"


def checks(venv):
    out = []
    try:
        r = subprocess.run([str(venv / "bin" / "python"), "-c", CHECK_PY],
                           capture_output=True, text=True, timeout=60, cwd="/")
        good = r.returncode == 0 and r.stdout.strip() == "True"
        why = "sys.prefix=venv" if good else (
            (r.stderr.strip().splitlines() or ["prints " + r.stdout.strip()])[-1][:60])
    except OSError as e:
        good, why = False, os.strerror(e.errno)
    out.append(("bin/python in venv", good, why))
    try:
        cfg = (venv / "pyvenv.cfg").read_text()
        good = "home = " in cfg
        why = "home line present" if good else "%d bytes, no home line" % len(cfg)
    except OSError as e:
        good, why = False, os.strerror(e.errno)
    out.append(("pyvenv.cfg", good, why))
    r = subprocess.run(["bash", "-c", '. "$1/bin/activate" && python -c "$2"', "-",
                        str(venv), CHECK_PY], capture_output=True, text=True, timeout=60,
                       cwd="/")
    good = r.returncode == 0 and r.stdout.strip() == "True"
    why = "venv's python" if good else (
        (r.stderr.strip().splitlines() or ["system python"])[-1].split(": ")[-1][:60])
    out.append(("activate; python", good, why))
    return out


def run(mode):
    res = {}
    with clients(mode, **KNOBS) as (a, b, _backing):
        for case, looked in (("B looked first", True), ("B never looked", False)):
            name = "venv1" if looked else "venv2"
            if looked:
                os.path.exists(b / name)
            # -I and cwd=/: never import a venv.py of the current directory
            subprocess.run([sys.executable, "-I", "-m", "venv", "--without-pip", str(a / name)],
                           cwd="/", check=True, timeout=120)
            res[case] = checks(b / name)
    return res


def main():
    header("Demo 2: a virtual environment made by A, used by B at once", KNOBS)
    res = {m: run(m) for m in ("control", "chaos")}
    fails = {m: 0 for m in res}
    for case in res["control"]:
        print("-- %s" % case)
        for i, (check, _g, _w) in enumerate(res["control"][case]):
            row = "   %-18s" % check
            for m in ("control", "chaos"):
                _c, good, why = res[m][case][i]
                fails[m] += not good
                row += " %-7s %s: %-28s" % (m, "ok " if good else "BAD", why)
            print(row.rstrip())
    if fails["control"]:
        return verdict(False, "the control run failed %d check(s): the scenario itself is "
                       "broken" % fails["control"])
    if not fails["chaos"]:
        return verdict(False, "chaos did not break the shared venv with the current "
                       "features (no difference to report)")
    return verdict(True, "control: every check passed; chaos: %d of %d failed"
                   % (fails["chaos"], sum(len(v) for v in res["chaos"].values())))


if __name__ == "__main__":
    sys.exit(main())
