"""Concurrent runs: a second writer of the same output, or a second recipe run in one folder, is refused."""

from __future__ import annotations

import subprocess
import sys
import time

from corpora import FSDD, REPO

BUNDLED = REPO / "pretrained" / "snn-digits"
CLIP = FSDD / "recordings" / "3_george_0.wav"
HOLD = (
    "import sys, time; from snn_asr.locking import hold_lock; "
    "hold_lock(sys.argv[1], 'x', 'y'); print(1, flush=True); time.sleep(60)"
)
TRANSCRIBE = [sys.executable, "-m", "snn_asr.inference.cli", "transcribe", str(BUNDLED), str(CLIP)]


def holder(lock) -> subprocess.Popen:
    """Another process holding ``lock`` (as a running snn-asr or recipe would)."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "1"
    return process


def test_two_transcribes_writing_one_output_the_second_is_refused(tmp_path):
    out = tmp_path / "out.txt"
    other = holder(tmp_path / ".out.txt.lock")
    try:
        done = subprocess.run([*TRANSCRIBE, "--output", str(out)], capture_output=True, text=True)
    finally:
        other.kill()
        other.wait()
    err = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(err) == 1 and f"pid {other.pid}" in err[0] and str(out) in err[0], err
    assert not out.exists()  # nothing written over the other's output
    time.sleep(0.1)  # the holder is gone (killed): its lock went with it
    again = subprocess.run([*TRANSCRIBE, "--output", str(out)], capture_output=True, text=True)
    assert again.returncode == 0 and out.read_text().startswith(str(CLIP))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]  # no lock file left behind


def test_a_recipe_started_twice_on_one_output_folder_the_second_is_refused(tmp_path):
    out = tmp_path / "run"
    other = holder(out / ".run.lock")
    try:
        done = subprocess.run(
            [sys.executable, str(REPO / "recipes" / "AN4" / "train.py"), "hparams/snn.yaml",
             "--data_folder", str(tmp_path / "no_an4"), "--output_folder", str(out)],
            capture_output=True, text=True,
        )  # fmt: skip
    finally:
        other.kill()
        other.wait()
    message = done.stderr.strip().splitlines()[-1]
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert message == (
        f"error: output folder {str(out)!r} is in use by another process (pid {other.pid}); "
        "wait for that run to finish, or pass another --output_folder"
    ), message
    assert not (out / "hyperparams.yaml").exists()  # refused before writing anything there
