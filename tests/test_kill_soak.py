"""A short kill soak (tools/kill_soak.py): a run SIGKILLed 3 times finishes as if never killed."""

from __future__ import annotations

import subprocess
import sys

from corpora import REPO


def test_a_run_killed_three_times_finishes_with_the_uninterrupted_runs_history(tmp_path):
    tool = [sys.executable, str(REPO / "tools" / "kill_soak.py"), "--kills", "3", "--epochs", "2"]
    done = subprocess.run([*tool, "--work", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "equal the uninterrupted run's: True" in done.stdout, done.stdout
    assert done.stdout.count("\nkill ") >= 3 and "OK: finished, every epoch logged once" in done.stdout
