"""The LibriSpeech RNNLM step on a tiny digits corpus: LM recipe, CTC N-best rescoring, attention fusion."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jiwer
import pytest
import sentencepiece
import torch
from corpora import make_digits

from snn_asr.dataio import read_manifest
from snn_asr.inference import SpikingASR
from snn_asr.inference.cli import main as snn_asr_cli
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


def test_an_exported_folder_rescores_with_its_rnnlm_as_the_recipe_did(trained, tmp_path, capsys):
    """tools/export_model.py --rnnlm_folder bundles the LM; snn-asr's default decoding then scores
    what the recipe's N-best rescoring scored, and --no-rnnlm what its plain beam search did."""
    data, asr, lm = trained
    run("train.py", "hparams/snn.yaml", data, asr, *ASR, "--ngram_order", "0", "--rnnlm_folder", str(lm))
    folder = tmp_path / "model"
    export = [sys.executable, str(ROOT / "tools" / "export_model.py"), str(asr), str(folder)]
    proc = subprocess.run(
        [*export, "--rnnlm_folder", str(tmp_path / "no_lm")], capture_output=True, text=True
    )
    assert proc.returncode == 1 and proc.stderr.startswith("error: ") and len(proc.stderr.splitlines()) == 1
    assert "pass the output folder of the LM recipe" in proc.stderr and not folder.exists()
    proc = subprocess.run([*export, "--rnnlm_folder", str(lm)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "rnnlm: !ref <rnnlm>" in (folder / "hyperparams.yaml").read_text()
    model = SpikingASR.from_hparams(source=str(folder))
    bundled, trained_lm = model.folder_rnnlm(), load_rnnlm(lm)[0]
    assert bundled is not None and bundled.state_dict().keys() == trained_lm.state_dict().keys()
    assert all(
        torch.equal(a, b) for a, b in zip(bundled.state_dict().values(), trained_lm.state_dict().values())
    )
    rows = read_manifest(asr / "save" / "test-clean.csv").values()
    files, refs = [row["wav"] for row in rows], [row["wrd"] for row in rows]

    def cli_wer(*options: str) -> float:
        assert snn_asr_cli(["transcribe", str(folder), *files, *options]) == 0
        hyps = dict(line.split("\t") for line in capsys.readouterr().out.splitlines())
        return 100 * jiwer.wer(refs, [hyps[f] for f in files])

    assert cli_wer() == pytest.approx(wer(asr / "wer_test-clean_rnnlm.txt"), abs=0.01)
    assert cli_wer("--no-rnnlm") == pytest.approx(wer(asr / "wer_test-clean.txt"), abs=0.01)
    model.set_decoder(4, rnnlm=bundled)
    assert model.rescorer is not None and model.searcher.topk == model.hparams.rnnlm_topk
    model.set_decoder(0)
    assert model.rescorer is None
    with pytest.raises(ValueError, match="needs beam search"):
        model.set_decoder(0, rnnlm=bundled)


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
