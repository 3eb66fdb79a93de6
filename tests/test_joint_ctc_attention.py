"""Joint CTC/attention recipes (``hparams/snn_ctc_att.yaml``) end to end on tiny synthetic corpora."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from corpora import make_digits

ROOT = Path(__file__).resolve().parents[1]
TINY = [  # a few seconds per epoch on 2 cores; max_decode_ratio bounds the untrained decoder's search
    *("--hidden_size", "32", "--emb_size", "16", "--dec_neurons", "32", "--batch_size", "4", "--lr", "0.005"),
    *("--valid_beam_size", "2", "--max_decode_ratio", "0.3", "--number_of_epochs", "2"),
]


def run_recipe(corpus: str, data: Path, out: Path, *extra: str, beam: int = 2) -> None:
    cmd = [sys.executable, str(ROOT / "recipes" / corpus / "train.py"), "hparams/snn_ctc_att.yaml"]
    cmd += ["--data_folder", str(data), "--output_folder", str(out), *TINY, "--beam_size", str(beam), *extra]
    proc = subprocess.run(cmd, cwd=out.parent, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]


def train_losses(out: Path) -> list[float]:
    return [float(x) for x in re.findall(r"train loss: ([\d.e+-]+)", (out / "train_log.txt").read_text())]


def assert_tested(out: Path, splits: list[str]) -> None:
    losses = train_losses(out)
    assert len(losses) == 2 and losses[1] < losses[0], losses
    for split in splits:
        assert re.search(r"%WER [\d.]+", (out / f"wer_{split}.txt").read_text()), split
        check = json.loads((out / f"wer_{split}.json").read_text())
        ours, theirs = check["speechbrain"], check["jiwer"]
        assert check["agree"] and ours["edits"] == theirs["edits"] and ours["ref_tokens"] > 0, check
        assert ours["wer"] == pytest.approx(theirs["wer"])


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpora")
    tools = ROOT / "tools"
    subprocess.run(
        [sys.executable, str(tools / "make_mini_timit.py"), str(root / "timit"), "--size", "tiny", "--quiet"],
        check=True,
    )
    make_digits(root / "digits", "--size", "tiny")
    return root


def test_timit_joint_ctc_attention(corpora, tmp_path):
    out = tmp_path / "timit_att"
    run_recipe("TIMIT", corpora / "timit", out)
    assert_tested(out, ["dev", "test"])
    labels = (out / "save" / "label_encoder.txt").read_text()
    assert "'<bos>' => 49" in labels and "'<eos>' => 50" in labels and "'<blank>' => 0" in labels
    assert not list(out.glob("wer_*phone_lm*"))  # the phone n-gram is for CTC models only
    assert json.loads((out / "ops_test.json").read_text())["ratio_to_gru"] > 0


def test_librispeech_attention_with_greedy_test_decoding(corpora, tmp_path):
    """``--beam_size 0``: the attention decoder's greedy search (the joint beam search needs a beam)."""
    out = tmp_path / "ls_att"
    options = ("--vocab_size", "20", "--test_splits", "[test-clean]")
    run_recipe("LibriSpeech", corpora / "digits", out, *options, beam=0)
    assert_tested(out, ["test-clean"])
    assert not list(out.glob("wer_*_ngram*"))  # the kenlm n-gram is for CTC models only
