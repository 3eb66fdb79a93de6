"""TIMIT recipe end to end on a mini TIMIT made here: training, decoding, outputs, resume, errors."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "recipes" / "TIMIT" / "train.py"
FAST = ["--hidden_size", "256", "--batch_size", "4", "--lr", "0.002", "--beam_size", "4"]


@pytest.fixture(scope="module")
def mini_timit(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus") / "mini_timit"
    subprocess.run(
        [sys.executable, str(ROOT / "tools" / "make_mini_timit.py"), str(out), "--size", "ci", "--quiet"],
        check=True,
    )
    return out


def recipe(data, out, *extra):
    return [
        sys.executable,
        str(TRAIN),
        "hparams/snn.yaml",
        "--data_folder",
        str(data),
        "--output_folder",
        str(out),
        *extra,
    ]


def dev_error_rates(out: Path) -> list[float]:
    log = (out / "train_log.txt").read_text()
    return [float(x) for x in re.findall(r"valid error_rate: ([\d.e+-]+)", log)]


def test_snn_recipe_learns_phones_and_writes_its_reports(mini_timit, tmp_path):
    out = tmp_path / "snn"
    subprocess.run(recipe(mini_timit, out, "--number_of_epochs", "6", *FAST), check=True, cwd=tmp_path)
    dev = dev_error_rates(out)
    assert len(dev) == 6
    assert dev[0] > 90.0  # untrained: almost everything deleted
    test_per = float(re.search(r"%WER ([\d.]+)", (out / "wer_test.txt").read_text()).group(1))
    # measured here: dev PER 97 -> 22 after 6 epochs, test PER similar; 50 leaves room for seeds/CPUs
    assert test_per < 50.0, test_per
    lm_per = float(re.search(r"%WER ([\d.]+)", (out / "wer_test_phone_lm.txt").read_text()).group(1))
    assert lm_per < 50.0, lm_per  # beam search with the phone bigram built from the training phones
    for name in ("wer_dev.txt", "training_curves.png", "spike_raster_test.png", "spike_rates_test.png"):
        assert (out / name).stat().st_size > 0, name
    ops = json.loads((out / "ops_test.json").read_text())
    assert 0 < ops["ratio_to_gru"] < 1
    assert set(ops["spike_rates"]) == {"stacks.0.0", "stacks.0.1"}
    assert all(0 < r < 1 for r in ops["spike_rates"].values())


def test_broken_or_mismatched_checkpoints_are_refused_in_one_line(mini_timit, tmp_path):
    """(A killed run resuming, every epoch logged once, is tests/test_kill_soak.py's.)"""
    out = tmp_path / "resume"
    cmd = recipe(mini_timit, out, "--number_of_epochs", "1", "--hidden_size", "32", "--beam_size", "0")
    subprocess.run(cmd, check=True, cwd=tmp_path, capture_output=True)
    saved = sorted((out / "save").glob("CKPT+*"))
    originals = {path: (path / "model.ckpt").read_bytes() for path in saved}
    for path in saved:  # every checkpoint corrupt (a flipped byte): refused, not a silent fresh start
        damaged = bytearray(originals[path])
        damaged[len(damaged) // 2] ^= 0xFF
        (path / "model.ckpt").write_bytes(bytes(damaged))
    more = recipe(mini_timit, out, "--number_of_epochs", "4", "--hidden_size", "32", "--beam_size", "0")
    proc = subprocess.run(more, cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    message = proc.stderr.strip().splitlines()[-1]
    assert message.startswith("error: every checkpoint in") and "delete the CKPT+* folders" in message
    for path, data in originals.items():
        (path / "model.ckpt").write_bytes(data)
    other = recipe(mini_timit, out, "--number_of_epochs", "4", "--hidden_size", "48", "--beam_size", "0")
    proc = subprocess.run(other, cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    message = proc.stderr.strip().splitlines()[-1]
    assert message.startswith(f"error: {str(out)!r} holds a run of a model with other settings"), message
    assert "pass a new --output_folder, or delete" in message


def test_missing_data_folder_is_one_clear_line(tmp_path):
    missing = tmp_path / "no_such_timit"
    proc = subprocess.run(recipe(missing, tmp_path / "out"), cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode != 0
    message = proc.stderr.strip().splitlines()[-1]
    assert "Traceback" not in proc.stderr
    assert str(missing) in message and "make_mini_timit.py" in message


def test_no_data_folder_says_what_to_pass(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(TRAIN), "hparams/snn.yaml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "--data_folder is required" in proc.stderr


def test_torchrun_ddp_over_gloo_on_cpu(mini_timit, tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        *recipe(mini_timit, out)[1:],
        "--number_of_epochs",
        "1",
        "--hidden_size",
        "32",
        "--beam_size",
        "0",
        "--distributed_backend",
        "gloo",
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(dev_error_rates(out)) == 1
    assert (out / "wer_test.txt").exists() and (out / "ops_test.json").exists()


def test_augmented_training_with_sparsity_controls_logs_a_finite_loss_and_rates(mini_timit, tmp_path):
    """One epoch with augmentation and the sparsity controls from the command line (one run for both)."""
    out = tmp_path / "augment"
    cmd = recipe(mini_timit, out, "--number_of_epochs", "1", "--hidden_size", "32", "--beam_size", "0")
    controls = ["--spike_rate_penalty", "0.5", "--unsigned", "True", "--threshold", "[7, 15]"]
    controls += ["--surrogate", "firing", "--input_quant_bits", "8", "--spike_rate_warmup", "2"]
    subprocess.run([*cmd, "--augment", "True", "--phone_lm_order", "0", *controls], check=True, cwd=tmp_path)
    (epoch,) = json.loads((out / "history.json").read_text())
    assert 0 < epoch["train_loss"] < 1e3
    assert set(epoch["train_spike_rates"]) == {"layers.0", "layers.1"}
    assert all(0 <= r <= 1 for r in epoch["train_spike_rates"].values())
    assert "train rate layers.0" in (out / "train_log.txt").read_text()
    hparams = (out / "hyperparams.yaml").read_text()
    assert "augment: true" in hparams.lower()
    assert "spike_rate_penalty: 0.5" in hparams and "surrogate: firing" in hparams
    assert "input_quant_bits: 8" in hparams and "spike_rate_warmup: 2" in hparams


@pytest.mark.parametrize(
    "override, message",
    [
        (["--surrogate", "smooth"], "surrogate must be one of"),
        (["--spike_rate_warmup", "-1"], "spike_rate_warmup a whole number"),
    ],
)
def test_a_bad_sparsity_override_is_one_line(mini_timit, tmp_path, override, message):
    cmd = recipe(mini_timit, tmp_path / "bad", "--number_of_epochs", "1", "--hidden_size", "32")
    result = subprocess.run([*cmd, *override], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr
