"""python -m snn_asr.quickstart: options, the commands it runs, skipping of finished steps (no training)."""

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from snn_asr import quickstart as qs


def utterance_corpus(root):
    """A corpus folder with the tool's marker and two test-clean utterances."""
    chapter = root / "test-clean" / "11" / "22"
    chapter.mkdir(parents=True)
    (chapter / "11-22.trans.txt").write_text("11-22-0000 THE BOY SAT\n11-22-0001 A CAT RAN\n")
    (root / "CORPUS.JSON").write_text("{}")
    return chapter / "11-22-0000.flac"


class FakeRun:
    """Records subprocess.run calls; the transcribe call answers with one JSON line."""

    def __init__(self, returncode=0):
        self.calls, self.returncode = [], returncode

    def __call__(self, command, **kwargs):
        self.calls.append(command)
        stdout = json.dumps({"file": "x.flac", "text": "the boy sat"}) + "\n"
        return SimpleNamespace(returncode=self.returncode, stdout=stdout)


@pytest.fixture
def fake_run(monkeypatch):
    fake = FakeRun()
    monkeypatch.setattr(qs.subprocess, "run", fake)
    monkeypatch.setattr(qs, "check_espeak", lambda: None)
    return fake


def test_options_reach_the_recipe_command(tmp_path):
    args, extra = qs.parse_args(
        ["--out", str(tmp_path), "--epochs", "3", "--vocab-size", "40", "--dropout", "0.1"]
    )
    steps = qs.plan(args, extra)
    assert [s.name for s in steps] == ["corpus", "train", "export", "transcribe"]
    train = steps[1].command
    options = dict(zip(train[3::2], train[4::2]))
    assert train[1].endswith("recipes/LibriSpeech/train.py") and train[2] == "hparams/snn.yaml"
    assert options["--number_of_epochs"] == "3" and options["--vocab_size"] == "40"
    assert options["--dropout"] == "0.1"  # an unknown option is a recipe override
    assert options["--data_folder"] == str(tmp_path.resolve() / "corpus")
    assert options["--test_splits"] == "[test-clean]"
    with pytest.raises(SystemExit):
        qs.parse_args(["--dropout"])  # an override without its value


def test_dry_run_prints_every_command_and_runs_nothing(tmp_path, fake_run, capsys):
    assert qs.main(["--out", str(tmp_path / "q"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert fake_run.calls == []
    assert not (tmp_path / "q").exists()
    for piece in ("tools/make_librispeech_corpus.py espeak", "recipes/LibriSpeech/train.py hparams/snn.yaml",
                  "tools/export_model.py", "snn-asr transcribe"):  # fmt: skip
        assert piece in out, piece


def test_finished_steps_are_skipped(tmp_path, fake_run, capsys):
    out = tmp_path / "q"
    audio = utterance_corpus(out / "corpus")
    (out / "train").mkdir()
    (out / "train" / "wer_test-clean.txt").write_text("%WER 20.00 [ 2 / 10, 0 ins, 1 del, 1 sub ]\n")
    (out / "train" / "wer_test-clean_ngram.txt").write_text("%WER 10.00 [ 1 / 10, 0 ins, 0 del, 1 sub ]\n")
    record(out, [])
    qs.main(["--out", str(out)])
    # only the export and the transcription ran, the latter on the first held-out utterance
    assert [c[1] for c in fake_run.calls] == [str(qs.EXPORT_TOOL), "-m"]
    assert str(audio) in fake_run.calls[1]
    held = json.loads((out / "held_out.json").read_text())
    assert held["reference"] == "THE BOY SAT" and held["hypothesis"] == "the boy sat"
    printed = capsys.readouterr().out
    assert "20.00%" in printed and "10.00%" in printed and "skipped" in printed

    (out / "model").mkdir()
    (out / "model" / "model.ckpt").write_text("")
    (out / "model" / "lm.arpa").write_text("")
    fake_run.calls.clear()
    qs.main(["--out", str(out)])  # all done: a rerun runs nothing
    assert fake_run.calls == []


def record(out, options):
    """``steps.json`` as a run with ``options`` leaves it after its corpus and train steps."""
    args, extra = qs.parse_args(["--out", str(out), *options])
    corpus, train = qs.plan(args, extra)[:2]
    (out / "steps.json").write_text(json.dumps({"corpus": corpus.command, "train": train.command}))


def test_steps_made_with_other_options_are_redone_with_the_steps_after_them(tmp_path, fake_run, capsys):
    out = tmp_path / "q"
    utterance_corpus(out / "corpus")
    (out / "train").mkdir()
    (out / "train" / "wer_test-clean_ngram.txt").write_text("%WER 10.00 [ 1 / 10, 0 ins, 0 del, 1 sub ]\n")
    (out / "train" / "old_checkpoint").write_text("")
    record(out, ["--size", "tiny", "--epochs", "2", "--hidden-size", "32"])
    with pytest.raises(SystemExit, match="no test-clean transcripts"):  # the fake corpus step made none
        qs.main(["--out", str(out), "--size", "ci", "--epochs", "10"])
    printed = capsys.readouterr().out
    assert "[corpus] redone, replacing" in printed and "(--size tiny -> ci)" in printed
    assert not (out / "corpus").exists() and fake_run.calls[0][1] == str(qs.CORPUS_TOOL)

    utterance_corpus(out / "corpus")
    (out / "train").mkdir()
    (out / "train" / "old_checkpoint").write_text("")
    record(out, ["--epochs", "2", "--hidden-size", "32"])  # the corpus is this run's, the model is not
    fake_run.calls.clear()
    qs.main(["--out", str(out), "--epochs", "10"])
    printed = capsys.readouterr().out
    assert "[corpus] skipped" in printed
    assert "[train] redone" in printed and "--number_of_epochs 2 -> 10, --hidden_size 32 -> 256" in printed
    assert not (out / "train" / "old_checkpoint").exists()
    assert [c[1] for c in fake_run.calls] == [str(qs.RECIPE), str(qs.EXPORT_TOOL), "-m"]


def test_failed_step_stops_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(qs.subprocess, "run", FakeRun(returncode=1))
    monkeypatch.setattr(qs, "check_espeak", lambda: None)
    with pytest.raises(SystemExit, match="step corpus failed"):
        qs.main(["--out", str(tmp_path)])


def test_missing_espeak_is_one_line_with_the_fix(monkeypatch):
    def no_library(name):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(qs.ctypes, "CDLL", no_library)
    with pytest.raises(SystemExit, match="apt-get install espeak-ng"):
        qs.check_espeak()


def test_command_line_dry_run():
    command = [sys.executable, "-m", "snn_asr.quickstart", "--dry-run", "--out", "/nonexistent/q"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=qs.REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n[") == 3 and "--number_of_epochs 10" in result.stdout
