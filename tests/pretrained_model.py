"""A small trained model for the inference and CLI tests, trained once per test session.

The LibriSpeech recipe on a tiny digits corpus made from the repository's FSDD sample
(``tests/corpora.py``; 24 training utterances, 2 x 64 v2 neurons,
30 epochs at a constant learning rate, about 30 s on 2 cores), exported with
``tools/export_model.py``. It fits its training utterances well enough to output digit words,
so transcripts of those are non-empty. Shared by both test modules through a folder under
pytest's session temp dir.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from corpora import REPO, make_digits

TRAIN = [
    "--hidden_size", "64", "--vocab_size", "24", "--number_of_epochs", "30", "--batch_size", "2",
    "--lr", "0.01", "--dropout", "0.0", "--test_splits", "[test-clean]", "--beam_size", "0",
    "--ngram_order", "0", "--device", "cpu",
    "--lr_annealing",
    "!new:speechbrain.nnet.schedulers.NewBobScheduler {initial_value: 0.01, annealing_factor: 1.0}",
]  # fmt: skip


def run(args: list[str], cwd: Path) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]


def trained_model(root: Path) -> tuple[Path, Path, Path]:
    """(model folder, recipe run folder, corpus folder) under ``root``, made on first use."""
    model, output, corpus = root / "model", root / "run", root / "digits"
    if not (model / "hyperparams.yaml").is_file():
        root.mkdir(parents=True, exist_ok=True)
        make_digits(corpus, "--size", "tiny", "--jobs", "1")
        run([str(REPO / "recipes/LibriSpeech/train.py"), "hparams/snn.yaml", "--data_folder", str(corpus),
             "--output_folder", str(output), *TRAIN], root)  # fmt: skip
        run([str(REPO / "tools/export_model.py"), str(output), str(model)], root)
    return model, output, corpus


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> tuple[Path, Path, Path]:
    return trained_model(tmp_path_factory.getbasetemp() / "pretrained_digits")


def training_files(corpus: Path) -> list[Path]:
    return sorted((corpus / "train-clean-100").rglob("*.flac"))
