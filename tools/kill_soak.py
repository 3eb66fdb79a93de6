#!/usr/bin/env python3
"""Kills a recipe run with SIGKILL at random moments, restarts it each time, then checks nothing was lost.

The run: the LibriSpeech recipe on a tiny connected-digit corpus made from the repository's FSDD
sample (2 x 32 v2 neurons, ``--epochs`` epochs, greedy test decoding). Each kill lands at a random
moment of the run's life, or (one in five each) just as a new checkpoint folder appears, to catch
a save half-written, or just after validation starts; the log tells what it interrupted (start-up,
a batch, validation, a checkpoint save, test: the recipes' Brain logs each stage as it starts).
After ``--kills`` kills the run is left to finish, and the checks are:

- it finished (exit status 0, its test error file written);
- every epoch appears exactly once in ``train_log.txt``, and ``history.json`` holds each once;
- no checkpoint left is half-written (each passes :func:`snn_asr.recipes.checkpoints.checkpoint_problem`;
  ones set aside as ``BROKEN+`` are counted);
- its history (each epoch's training loss and dev error) and its test WER equal an uninterrupted
  run's exactly: the checkpoints hold the random generators' state, and training on the CPU is
  deterministic, so a resumed run computes what the uninterrupted one did.

Run::

    python tools/kill_soak.py --kills 20 --epochs 6
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from snn_asr.recipes.checkpoints import BROKEN_PREFIX, checkpoint_problem  # noqa: E402

TRAIN = ROOT / "recipes" / "LibriSpeech" / "train.py"
FSDD = ROOT / "tests" / "data" / "fsdd"
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}  # every run alike: a thread count changes float sums


def recipe(data: Path, out: Path, epochs: int) -> list[str]:
    return [
        sys.executable, str(TRAIN), "hparams/snn.yaml", "--data_folder", str(data),
        "--output_folder", str(out),
        "--number_of_epochs", str(epochs), "--hidden_size", "32", "--vocab_size", "24", "--batch_size", "2",
        "--beam_size", "0", "--test_splits", "[test-clean]", "--device", "cpu",
    ]  # fmt: skip


STAGE_STARTS = {"train": "a batch", "valid": "validation", "test": "test"}
"""The recipes' Brain logs ``<stage> stage starts``: what a kill after that line interrupted."""


def phase(out: Path) -> str:
    """What the run was doing, from the last lines of its log."""
    log = out / "log.txt"
    text = log.read_text(errors="replace")[-3000:] if log.is_file() else ""
    lines = [line for line in text.splitlines() if " - " in line]
    last = lines[-1] if lines else ""
    if not last:
        return "start-up"
    if "Saved an end-of-epoch checkpoint" in last or "Deleted checkpoint" in last:
        return "after a checkpoint save"
    for line in reversed(lines):
        for stage, where in STAGE_STARTS.items():
            if f"{stage} stage starts" in line:
                return where
    return "start-up"


def stage_starts(out: Path, stage: str) -> int:
    log = out / "log.txt"
    return log.read_text(errors="replace").count(f"{stage} stage starts") if log.is_file() else 0


def run_killed(cmd: list[str], out: Path, rng: random.Random, budget: float, target: str) -> str:
    """Starts the run and SIGKILLs it: at a random moment (``target`` "random"), within the next
    checkpoint save ("save") or the next validation ("valid"); returns what it interrupted."""
    process = subprocess.Popen(
        cmd, cwd=out.parent, env=ONE_THREAD, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    save = out / "save"
    before = set(save.glob("CKPT+*")) if save.is_dir() else set()
    validations = stage_starts(out, "valid")
    waiting = target != "random"
    deadline = time.monotonic() + (2 * budget if waiting else rng.uniform(1.0, budget))
    reached = False
    while time.monotonic() < deadline and process.poll() is None:
        if target == "save" and save.is_dir() and set(save.glob("CKPT+*")) - before:
            time.sleep(rng.uniform(0, 0.02))  # within the save: its files are being written
            reached = True
            break
        if target == "valid" and stage_starts(out, "valid") > validations:
            time.sleep(rng.uniform(0, 0.05))  # within the dev set's batches
            reached = True
            break
        time.sleep(0.005 if waiting else 0.05)
    if process.poll() is not None:
        return "finished before the kill"
    where = "during a checkpoint save" if target == "save" and reached else phase(out)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return where


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, help="keep the runs here (default: a temp folder)")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    work = args.work or Path(tempfile.mkdtemp(prefix="snn-asr-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / "digits"
    if not data.is_dir():
        subprocess.run(
            [sys.executable, str(ROOT / "tools" / "make_librispeech_corpus.py"), "digits", str(data),
             "--size", "tiny", "--jobs", "1", "--fsdd", str(FSDD)],
            check=True, capture_output=True,
        )  # fmt: skip
    prepare = "from snn_asr.dispatch import prepare; prepare('cpu')"  # the compiled loops, outside the timing
    subprocess.run([sys.executable, "-c", prepare], cwd=ROOT, check=True, capture_output=True)
    clean = work / "clean"
    full_run, first_save = timed_run(recipe(data, clean, args.epochs), clean)
    print(f"uninterrupted run: {full_run:.0f} s (its first checkpoint after {first_save:.0f} s)")
    phases: Counter = Counter()
    kills, problems, rounds, broken = 0, [], 0, 0
    expected = outcome(clean)
    while kills < args.kills:  # a run that finishes before enough kills: another from scratch
        rounds += 1
        soaked = work / f"soaked{rounds}"
        while kills < args.kills:  # then check_run lets it finish
            target = {2: "save", 4: "valid"}.get(kills % 5, "random")
            left = 1 - epochs_done(soaked) / args.epochs  # a resumed run: start-up, then what is left
            budget = first_save + (full_run - first_save) * left
            where = run_killed(recipe(data, soaked, args.epochs), soaked, rng, budget, target)
            if where == "finished before the kill":
                break
            kills += 1
            phases[where] += 1
            print(f"kill {kills} (run {rounds}): {where}", flush=True)
        found, aside = check_run(data, soaked, work, args.epochs)
        problems += [f"run {rounds}: {problem}" for problem in found]
        broken += aside
        if not found and outcome(soaked) != expected:
            problems.append(f"run {rounds}: history or test WER {outcome(soaked)}, uninterrupted {expected}")
    print(f"{kills} kills over {rounds} runs: " + ", ".join(f"{n} {p}" for p, n in phases.most_common()))
    losses = ", ".join(f"{loss:.4f}" for loss, _ in expected[0])
    print(
        f"checkpoints set aside as half-written: {broken}; every killed run's history and test WER equal "
        f"the uninterrupted run's: {not problems} (training losses {losses}; test WER {expected[1]})"
    )
    for problem in problems:
        print(f"PROBLEM: {problem}")
    print(
        "OK: finished, every epoch logged once, no half-written checkpoint used" if not problems else "FAILED"
    )
    return 1 if problems else 0


def timed_run(cmd: list[str], out: Path) -> tuple[float, float]:
    """Runs ``cmd`` to the end: its seconds, and the seconds until its first checkpoint appeared."""
    started = time.monotonic()
    process = subprocess.Popen(
        cmd, cwd=out.parent, env=ONE_THREAD, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    first_save = None
    while process.poll() is None:
        if first_save is None and any((out / "save").glob("CKPT+*")):
            first_save = time.monotonic() - started
        time.sleep(0.05)
    if process.returncode != 0:
        raise SystemExit(
            f"error: the uninterrupted run failed (status {process.returncode}); see {out}/log.txt"
        )
    full_run = time.monotonic() - started
    return full_run, full_run if first_save is None else first_save


def read_history(run: Path) -> list[dict] | None:
    """The run's ``history.json`` (``[]`` before its first epoch); ``None`` where it is unreadable."""
    history = run / "history.json"
    try:
        return json.loads(history.read_text()) if history.is_file() else []
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def epochs_done(run: Path) -> int:
    return len(read_history(run) or [])


def outcome(run: Path) -> tuple[list[tuple[float, float]], str]:
    """A finished run's (training loss, dev error) per epoch and its test WER line."""
    history = read_history(run) or []
    wer = re.search(r"%WER [\d.]+", (run / "wer_test-clean.txt").read_text())
    return [(h["train_loss"], h["valid_error_rate"]) for h in history], wer.group(0) if wer else "?"


def check_run(data: Path, soaked: Path, work: Path, epochs: int) -> tuple[list[str], int]:
    """The checks of a killed run, after one more restart: its problems, and checkpoints set aside."""
    final = subprocess.run(
        recipe(data, soaked, epochs), cwd=work, env=ONE_THREAD, capture_output=True, text=True
    )
    problems = []
    if final.returncode != 0:
        problems.append(f"the last restart failed: {final.stderr.strip().splitlines()[-1:]}")
    log = soaked / "train_log.txt"
    logged = re.findall(r"^epoch: (\d+),", log.read_text(), flags=re.M) if log.is_file() else []
    if logged != [str(e) for e in range(1, epochs + 1)]:
        problems.append(f"train_log.txt epochs {logged}, not 1..{epochs} once each")
    history = read_history(soaked)
    if history is None:
        problems.append("history.json is not readable JSON (half-written?)")
    elif [h["epoch"] for h in history] != list(range(1, epochs + 1)):
        problems.append(f"history.json epochs {[h['epoch'] for h in history]}")
    save = soaked / "save"
    for ckpt in save.glob("CKPT+*"):
        problem = checkpoint_problem(ckpt, {})
        if problem:
            problems.append(f"{ckpt.name}: {problem}")
    if not (soaked / "wer_test-clean.txt").is_file():
        problems.append("no test result")
    return problems, len(list(save.glob(f"{BROKEN_PREFIX}*")))


if __name__ == "__main__":
    sys.exit(main())
