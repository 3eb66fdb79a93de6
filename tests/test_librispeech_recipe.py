"""LibriSpeech recipe end to end on a connected-digit corpus of real speech (FSDD) in LibriSpeech layout."""

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from corpora import make_digits

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "recipes" / "LibriSpeech" / "train.py"
FAST = ["--hidden_size", "256", "--batch_size", "4", "--lr", "0.002", "--vocab_size", "24"]
FAST += ["--test_splits", "[test-clean]"]


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return make_digits(tmp_path_factory.mktemp("corpus") / "digits", "--size", "ci")


@pytest.fixture(scope="module")
def tiny_digits(tmp_path_factory):
    """24 training utterances: for the runs that check the plumbing, not what is learnt."""
    return make_digits(tmp_path_factory.mktemp("corpus") / "digits", "--size", "tiny")


def wer(path: Path) -> float:
    return float(re.search(r"%WER ([\d.]+)", path.read_text()).group(1))


def speakers(manifest: Path) -> set[str]:
    with open(manifest, newline="") as f:
        return {row["spk_id"] for row in csv.DictReader(f)}


def test_snn_ctc_learns_held_out_speaker_and_decodes_with_ngram(digits, tmp_path):
    out = tmp_path / "snn"
    cmd = [sys.executable, str(TRAIN), "hparams/snn.yaml", "--data_folder", str(digits)]
    cmd += ["--output_folder", str(out), "--number_of_epochs", "6", "--beam_size", "4", *FAST]
    subprocess.run(cmd, check=True, cwd=tmp_path)
    save = out / "save"
    assert speakers(save / "test-clean.csv").isdisjoint(speakers(save / "train.csv"))
    dev = [h["valid_error_rate"] for h in json.loads((out / "history.json").read_text())]
    assert len(dev) == 6 and dev[-1] < dev[0]
    # A random digit string of the right length scores ~90% WER, an empty one 100%. Measured on the
    # FSDD sample (tests/data/fsdd) in 6 epochs: dev WER 100 -> 25, test 48.3, 33.7 with the n-gram.
    beam, with_lm = wer(out / "wer_test-clean.txt"), wer(out / "wer_test-clean_ngram.txt")
    assert beam < 60.0, beam
    assert with_lm < 60.0, with_lm
    ops = json.loads((out / "ops_test-clean.json").read_text())
    assert 0 < ops["ratio_to_gru"] < 1
    assert all(0 < r < 1 for r in ops["spike_rates"].values())
    log = (out / "log.txt").read_text()  # decoding says what it ran and how long it took
    assert re.search(r"test-clean: \d+ utterances decoded in [\d.]+ s \(CTC prefix beam search, beam 4;", log)
    decoded = r"test-clean_ngram: \d+ utterances decoded in [\d.]+ s \(.*beam 4 with the kenlm n-gram"
    assert re.search(decoded, log)
    for name in ("training_curves.png", "spike_raster_test-clean.png", "3gram.arpa"):
        assert (out / name).exists() or (save / name).exists(), name


def test_torchrun_ddp_over_gloo_on_cpu(tiny_digits, tmp_path):
    """Two processes: preparation, tokenizer and n-gram on the main one, then DDP training and test."""
    out = tmp_path / "ddp"
    logs = tmp_path / "logs"  # each rank's output in its own file, for the failure message
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--log-dir", str(logs)]
    cmd += ["--redirects", "3", str(TRAIN), "hparams/snn.yaml", "--distributed_backend", "gloo"]
    cmd += ["--data_folder", str(tiny_digits), "--output_folder", str(out), "--number_of_epochs", "1"]
    cmd += ["--hidden_size", "32", "--vocab_size", "24", "--test_splits", "[test-clean]", "--beam_size", "4"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    if proc.returncode:
        ranks = [
            f"rank {log.parent.name}: ...{log.read_text()[-1500:]}"
            for log in sorted(logs.rglob("stderr.log"))
        ]
        pytest.fail("\n".join([proc.stderr[-1000:], *ranks]))
    assert len(json.loads((out / "history.json").read_text())) == 1
    for name in ("wer_test-clean.txt", "wer_test-clean_ngram.txt", "ops_test-clean.json"):
        assert (out / name).exists(), name
