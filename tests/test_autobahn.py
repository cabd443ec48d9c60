"""Protocol conformance: the Autobahn|Testsuite fuzzing server against wsapi's driver.

Runs cases 1.* to 10.* (301 cases, about 15 s); ``autobahn/run.py`` with no case list runs
all 517. The fuzzing server needs Python 2.7: without it the test is skipped, unless
WSAPI_REQUIRE_AUTOBAHN is set (``.ci/run`` sets it wherever the server installs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SKIPPED = 3  # autobahn/run.py's exit code when the server cannot be installed here


@pytest.mark.autobahn
def test_autobahn_sections_1_to_10(tmp_path: Path) -> None:
    """Every case of sections 1-10 is OK or INFORMATIONAL, behaviour and close."""
    command = [sys.executable, str(ROOT / "autobahn" / "run.py"), "--exclude", "12.*", "13.*"]
    command += ["--expect-cases", "301", "--outdir", str(tmp_path), "--driver-timeout", "600"]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
    )
    print(result.stdout, result.stderr)
    if result.returncode == SKIPPED and not os.environ.get("WSAPI_REQUIRE_AUTOBAHN"):
        pytest.skip("AUTOBAHN SKIPPED: no Python 2.7 for the fuzzing server on this machine")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "index.json").read_text())
    cases = report["wsapi"]
    assert len(cases) == 301
    good = {"OK", "INFORMATIONAL"}
    bad = {
        case: (verdict["behavior"], verdict["behaviorClose"])
        for case, verdict in cases.items()
        if verdict["behavior"] not in good or verdict["behaviorClose"] not in good
    }
    assert bad == {}
