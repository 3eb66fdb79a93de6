"""The LibriSpeech RNNLM step on a tiny digits corpus: LM recipe, CTC N-best rescoring, attention fusion."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sentencepiece
import torch
from corpora import make_digits

from snn_asr.recipes.rnnlm import load_rnnlm, rnnlm_rescorer

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "LibriSpeech"
ASR = ["--hidden_size", "32", "--batch_size", "4", "--vocab_size", "20", "--test_splits", "[test-clean]"]
LM = [
    "--vocab_size",
    "20",
    "--emb_dim",
    "16",
    "--rnn_layers",
    "1",
    "--rnn_neurons",
    "32",
    "--dnn_neurons",
    "32",
]
LM += ["--batch_size", "4", "--lr", "0.01", "--number_of_epochs", "3"]


def run(script: str, hparams: str, data: Path, out: Path, *extra: str, check: bool = True):
    cmd = [
        sys.executable,
        str(RECIPE / script),
        hparams,
        "--data_folder",
        str(data),
        "--output_folder",
        str(out),
    ]
    proc = subprocess.run([*cmd, *extra], cwd=out.parent, capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def wer(path: Path) -> float:
    return float(re.search(r"%WER ([\d.]+)", path.read_text()).group(1))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A digits corpus, a 1-epoch CTC model (its tokenizer) and a 3-epoch RNNLM on that tokenizer."""
    root = tmp_path_factory.mktemp("rnnlm")
    data = make_digits(root / "digits", "--size", "tiny")
    asr = root / "asr"
    run("train.py", "hparams/snn.yaml", data, asr, *ASR, "--number_of_epochs", "1", "--ngram_order", "0")
    lm = root / "lm"
    run(
        "train_lm.py",
        "hparams/lm.yaml",
        data,
        lm,
        *LM,
        "--tokenizer_file",
        str(asr / "save" / "20_unigram.model"),
    )
    return data, asr, lm


def test_lm_recipe_learns_checkpoints_and_resumes(trained):
    data, asr, lm = trained
    log = (lm / "train_log.txt").read_text()
    dev = [float(x) for x in re.findall(r"valid loss: ([\d.e+-]+)", log)]
    assert len(dev) == 3 and dev[-1] < dev[0], log
    assert "valid perplexity" in log
    model, tokenizer_file = load_rnnlm(lm)
    assert Path(tokenizer_file).read_bytes() == (asr / "save" / "20_unigram.model").read_bytes()
    assert model.out.w.out_features == 20 and not model.training
    logits, _ = model(torch.tensor([[1, 5, 6]]))
    assert logits.shape == (1, 3, 20)
    run("train_lm.py", "hparams/lm.yaml", data, lm, *LM, "--tokenizer_file", str(tokenizer_file))
    assert re.findall(r"^epoch: (\d+)", (lm / "train_log.txt").read_text(), flags=re.M) == ["1", "2", "3"]


def test_ctc_nbest_rescoring_writes_rnnlm_wer(trained):
    data, asr, lm = trained
    run(
        "train.py",
        "hparams/snn.yaml",
        data,
        asr,
        *ASR,
        "--number_of_epochs",
        "1",
        "--ngram_order",
        "0",
        "--rnnlm_folder",
        str(lm),
    )
    assert wer(asr / "wer_test-clean_rnnlm.txt") >= 0
    check = json.loads((asr / "wer_test-clean_rnnlm.json").read_text())
    assert check["agree"] and check["speechbrain"]["edits"] == check["jiwer"]["edits"]


def test_rescorer_ranks_by_the_lm_as_its_weight_grows(trained):
    _, _, lm = trained
    model, tokenizer_file = load_rnnlm(lm)
    sp = sentencepiece.SentencePieceProcessor(model_file=tokenizer_file)
    texts = ["ONE TWO THREE", "WON TOO THREE", "ONE ONE ONE ONE ONE ONE ONE"]
    beam_scores = [0.0, -0.1, -0.2]
    lm_scores = (
        rnnlm_rescorer(model, sp, 1.0, bos_index=1, eos_index=2).rescorers["rnnlm"].rescore_hyps([texts])
    )
    ranked, _ = rnnlm_rescorer(model, sp, 0.0, 1, 2).rescore([list(texts)], [list(beam_scores)])
    assert ranked[0] == texts  # weight 0: the beam search's order
    ranked, scores = rnnlm_rescorer(model, sp, 1e4, 1, 2).rescore([list(texts)], [list(beam_scores)])
    assert ranked[0][0] == texts[int(lm_scores.argmax())]
    assert scores[0] == sorted(scores[0], reverse=True)


def test_attention_model_fuses_the_rnnlm(trained):
    data, asr, lm = trained
    out = asr.parent / "att"
    (out / "save").mkdir(parents=True)
    shutil.copy(asr / "save" / "20_unigram.model", out / "save")  # the LM's tokenizer
    shutil.copy(asr / "save" / "20_unigram.json", out / "save")  # and its stamp: kept, not remade
    tiny = ["--emb_size", "16", "--dec_neurons", "32", "--beam_size", "2", "--valid_beam_size", "2"]
    run(
        "train.py",
        "hparams/snn_ctc_att.yaml",
        data,
        out,
        *ASR,
        *tiny,
        "--max_decode_ratio",
        "0.3",
        "--number_of_epochs",
        "1",
        "--rnnlm_folder",
        str(lm),
    )
    assert wer(out / "wer_test-clean.txt") >= 0 and wer(out / "wer_test-clean_rnnlm.txt") >= 0


def test_rnnlm_of_another_tokenizer_is_one_clear_line(trained):
    data, asr, lm = trained
    out = asr.parent / "other_vocab"
    other = [a.replace("20", "22") for a in ASR]  # --vocab_size 22: another tokenizer
    proc = run("train.py", "hparams/snn.yaml", data, out, *other, "--rnnlm_folder", str(lm), check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "was trained with tokenizer" in proc.stderr.strip().splitlines()[-1]
    assert not (out / "train_log.txt").exists()  # refused before training


@pytest.mark.parametrize(
    "damaged, said",
    [
        ("save/CKPT+*/model.ckpt", "every checkpoint in"),  # truncated: none sound is left
        ("save/tokenizer.model", "tokenizer.model is corrupt (not a sentencepiece model)"),
        ("hyperparams.yaml", "is corrupt or not an LM recipe's"),
    ],
)
def test_a_corrupt_rnnlm_folder_is_one_clear_line_before_training(trained, tmp_path, damaged, said):
    data, asr, lm = trained
    broken = tmp_path / "lm"
    shutil.copytree(lm, broken)
    for path in broken.glob(damaged):
        path.write_bytes(path.read_bytes()[:100])
    out = tmp_path / "asr"
    proc = run("train.py", "hparams/snn.yaml", data, out, *ASR, "--rnnlm_folder", str(broken), check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert said in proc.stderr.strip().splitlines()[-1] and proc.stderr.strip().splitlines()[-1].startswith(
        "error: "
    )
    assert not (out / "train_log.txt").exists()  # refused before training
