"""A few hundred fuzzed inputs (tools/fuzz_inputs.py): each a transcript or one line naming its file."""

from __future__ import annotations

import json
import subprocess
import sys

from corpora import REPO


def test_three_hundred_fuzzed_inputs_give_no_traceback_hang_or_lost_file(tmp_path):
    report = tmp_path / "fuzz.json"
    cmd = [sys.executable, str(REPO / "tools" / "fuzz_inputs.py"), "--cases", "300", "--seconds", "120"]
    done = subprocess.run([*cmd, "--seed", "1", "--report", str(report)], capture_output=True, text=True)
    outcomes = json.loads(report.read_text())
    findings = [o for o in outcomes if o["finding"]]
    assert done.returncode == 0 and not findings, (findings[:5], done.stdout[-2000:], done.stderr[-2000:])
    assert len(outcomes) >= 250  # within its time bound, it ran (nearly) all of them
    results = {o["result"] for o in outcomes}
    assert {"transcript", "error line", "manifests"} <= results  # both kinds of outcome, on every path
    locked = [o for o in outcomes if "unreadable" in o["case"]]
    assert len(locked) == 8  # a file and a folder (3 targets each), and both recipes' transcript files
    if "the files were unreadable to the code under test" in done.stdout:  # as root: run via setpriv
        assert {o["result"] for o in locked} == {"error line"}, locked
