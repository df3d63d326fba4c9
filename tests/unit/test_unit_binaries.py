"""Runs the C unit tests (tests/unit/*.c, built by `make`) under the
ASan+UBSan build and under ThreadSanitizer, one pytest case per C test."""
import os
import re
import subprocess
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILDS = {"asan": os.path.join(ROOT, "build/asan/test_unit"),
          "tsan": os.path.join(ROOT, "build/tsan/test_unit")}


def _cases():
    src = ""
    for name in sorted(os.listdir(os.path.join(ROOT, "tests/unit"))):
        if name.startswith("test_") and name.endswith(".c"):
            src += open(os.path.join(ROOT, "tests/unit", name)).read()
    return re.findall(r"^TEST\((\w+)\)", src, re.M)


@pytest.mark.parametrize("build", sorted(BUILDS))
@pytest.mark.parametrize("case", _cases())
def test_unit(build, case):
    exe = BUILDS[build]
    if not os.path.exists(exe):
        pytest.fail(f"{exe} is not built (run make all asan tsan)")
    env = dict(os.environ, TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1")
    p = subprocess.run([exe, case], capture_output=True, text=True, env=env, timeout=300)
    out = p.stdout + p.stderr
    assert p.returncode == 0 and "1 passed, 0 failed" in out, out
    assert "ThreadSanitizer" not in out and "AddressSanitizer" not in out, out
