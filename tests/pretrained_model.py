"""A small trained model for the inference and CLI tests, trained once per test session.

Made by the export walkthrough of ``docs/inference.md``, its commands as written there at small
size: the LibriSpeech recipe on a tiny digits corpus made from the repository's FSDD sample
(24 training utterances, 2 x 64 v2 neurons, 30 epochs at a constant learning rate, about 30 s
on 2 cores), exported with ``tools/export_model.py``, then transcribed by ``snn-asr``. It fits
its training utterances well enough to output digit words, so transcripts of those are
non-empty. Shared by both test modules through a folder under pytest's session temp dir.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from corpora import FSDD, REPO

WALKTHROUGH = REPO / "docs" / "inference.md"
SMALL = {
    "make_librispeech_corpus.py": {"--size": "tiny", "--jobs": "1", "--fsdd": str(FSDD)},
    "train.py": {
        "--hidden_size": "64", "--number_of_epochs": "30", "--batch_size": "2", "--lr": "0.01",
        "--dropout": "0.0", "--device": "cpu",
        "--lr_annealing":
            "!new:speechbrain.nnet.schedulers.NewBobScheduler {initial_value: 0.01, annealing_factor: 1.0}",
    },
}  # fmt: skip
"""The walkthrough at small size: a tiny corpus (24 training utterances) of the repository's FSDD
sample, as a user's clone has it (``../shared`` may hold the full FSDD), and 2 x 64 neurons fitted
at a constant rate; options not named here run as documented."""


def walkthrough() -> list[list[str]]:
    """The commands of the first ``bash`` block of ``docs/inference.md``, each as its arguments."""
    text = WALKTHROUGH.read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    return [shlex.split(line) for line in block.splitlines() if line.strip()]


def shrunk(command: list[str]) -> list[str]:
    """``command`` with the :data:`SMALL` options of its script, runnable from any folder."""
    if command[0] == "snn-asr":
        command = ["python", "-m", "snn_asr.inference.cli", *command[1:]]
    assert command[0] == "python", command
    script = command[1]
    options = next((o for name, o in SMALL.items() if script.endswith(name)), {})
    args, given = list(command[2:]), set()
    for index, arg in enumerate(args[:-1]):
        if arg in options:
            args[index + 1], given = options[arg], given | {arg}
    args += [item for key, value in options.items() if key not in given for item in (key, value)]
    script = script if script == "-m" else str(REPO / script)
    return [sys.executable, script, *args]


def run(command: list[str], cwd: Path) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(command)}\n{done.stderr[-3000:]}"
    return done.stdout


def trained_model(root: Path) -> tuple[Path, Path, Path]:
    """(model folder, recipe run folder, corpus folder) under ``root``, made on first use by the
    walkthrough of ``docs/inference.md`` at small size."""
    model, output, corpus = root / "models/snn_digits", root / "results/digits", root / "data/digits"
    if not (model / "hyperparams.yaml").is_file():
        root.mkdir(parents=True, exist_ok=True)
        *make, transcribe = walkthrough()
        for command in make:
            run(shrunk(command), root)
        lines = run(shrunk(transcribe), root).splitlines()
        assert len(lines) == len(list((corpus / "test-clean").rglob("*.flac"))), lines
    return model, output, corpus


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> tuple[Path, Path, Path]:
    return trained_model(tmp_path_factory.getbasetemp() / "pretrained_digits")


def training_files(corpus: Path) -> list[Path]:
    return sorted((corpus / "train-clean-100").rglob("*.flac"))
