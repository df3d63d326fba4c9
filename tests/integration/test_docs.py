"""The README's CLI reference must match what the commands print, exactly."""
import subprocess
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


@pytest.mark.parametrize("cmd", [[], ["mount"], ["umount"], ["stats"], ["chaos"], ["trace"],
                                 ["format"], ["status"], ["fsck"], ["gc"], ["dump"], ["load"], ["ls"]],
                         ids=["eddyfs", "mount", "umount", "stats", "chaos", "trace", "format", "status",
                              "fsck", "gc", "dump", "load", "client"])
def test_help_text_is_in_readme(eddy_bin, cmd):
    p = subprocess.run([eddy_bin, *cmd, "--help"], capture_output=True, text=True)
    assert p.returncode == 0
    assert p.stdout.strip(), "empty help"
    block = "```\n" + p.stdout + "```"
    assert block in README, f"README.md does not contain the current `{' '.join(cmd)} --help`"


def test_version_matches_readme_form(eddy_bin):
    p = subprocess.run([eddy_bin, "--version"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.startswith("eddyfs ")
    assert "`eddyfs --version` prints `eddyfs <version>`" in README
