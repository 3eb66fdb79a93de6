"""A few hundred fuzzed inputs (tools/fuzz_inputs.py): each a transcript or one line naming its file."""

from __future__ import annotations

import importlib.util
import json
import sys

from corpora import REPO


def load_tool():
    spec = importlib.util.spec_from_file_location("fuzz_inputs", REPO / "tools" / "fuzz_inputs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_three_hundred_fuzzed_inputs_give_no_traceback_hang_or_lost_file(tmp_path, capsys):
    report = tmp_path / "fuzz.json"
    status = load_tool().main(["--cases", "300", "--seconds", "120", "--seed", "1", "--report", str(report)])
    outcomes = json.loads(report.read_text())
    findings = [o for o in outcomes if o["finding"]]
    assert status == 0 and not findings, findings[:5]
    assert len(outcomes) >= 250  # within its time bound, it ran (nearly) all of them
    results = {o["result"] for o in outcomes}
    assert {"transcript", "error line", "manifests"} <= results  # both kinds of outcome, on every path
