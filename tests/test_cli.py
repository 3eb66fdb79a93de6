"""The ``snn-asr`` command: output formats, inputs from folders and lists, bad inputs and models."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pretrained_model
import soundfile as sf
import torch
from pretrained_model import training_files

from snn_asr.inference import SpikingASR
from snn_asr.inference.cli import main

BUNDLED = pretrained_model.REPO / "pretrained" / "snn-digits"

pretrained = pretrained_model.pretrained  # the session's trained model (fixture)


def run_cli(capsys, *args) -> tuple[int, str, list[str]]:
    status = main(["transcribe", *map(str, args)])
    out, err = capsys.readouterr()
    return status, out, err.splitlines()


def test_text_json_ctm(pretrained, capsys):
    model, _, corpus = pretrained
    files = training_files(corpus)[:3]
    status, out, _ = run_cli(capsys, model, *files, "--beam", "0")  # greedy: token times too
    assert status == 0 and [line.split("\t")[0] for line in out.splitlines()] == list(map(str, files))
    texts = [line.split("\t")[1] for line in out.splitlines()]
    status, out, _ = run_cli(capsys, model, *files, "--format", "json", "--beam", "0")
    rows = [json.loads(line) for line in out.splitlines()]
    assert status == 0 and [r["text"] for r in rows] == texts
    for row in rows:
        assert set(row) == {"file", "text", "duration", "words", "tokens"}
        assert isinstance(row["duration"], float) and row["duration"] > 0
        for item in row["words"] + row["tokens"]:
            assert set(item) == {"text", "start", "end"} and isinstance(item["text"], str)
            assert 0 <= item["start"] < item["end"] <= row["duration"] + 0.02
        assert " ".join(w["text"] for w in row["words"]) == row["text"]
    status, out, _ = run_cli(capsys, model, *files, "--format", "ctm", "--beam", "0")
    lines = [line.split() for line in out.splitlines()]
    assert status == 0 and len(lines) == sum(len(r["words"]) for r in rows)
    for stem in {f.stem for f in files}:
        mine = [cols for cols in lines if cols[0] == stem]
        assert all(5 <= len(cols) <= 6 and cols[1] == "1" and float(cols[3]) > 0 for cols in mine)
        starts = [float(cols[2]) for cols in mine]
        assert starts == sorted(starts)


def test_defaults_decode_as_the_model_folder_was_exported(pretrained, capsys):
    """The walkthrough's model was trained with --beam_size 4 and exported with its 3-gram."""
    model, _, corpus = pretrained
    assert SpikingASR.from_hparams(source=str(model)).folder_decoding() == (4, model / "lm.arpa")
    files = training_files(corpus)[:3]
    status, default, _ = run_cli(capsys, model, *files)
    assert status == 0 and default.strip()
    assert default == run_cli(capsys, model, *files, "--beam", "4", "--lm", model / "lm.arpa")[1]
    assert default == run_cli(capsys, model, *files, "--beam", "4")[1]  # a beam: the folder's LM with it
    no_lm = run_cli(capsys, model, *files, "--no-lm")[1]
    assert no_lm == run_cli(capsys, model, *files, "--beam", "4", "--no-lm")[1]


def test_folder_list_report_and_output(pretrained, capsys, tmp_path):
    model, _, corpus = pretrained
    files = training_files(corpus)[:2]
    folder = tmp_path / "in"
    folder.mkdir()
    for f in files:
        shutil.copy(f, folder)
    listing = tmp_path / "files.txt"
    listing.write_text(f"{files[0]}\n\n")
    status, out, err = run_cli(
        capsys, model, folder, "--list", listing, "--report", "--output", tmp_path / "o"
    )
    assert status == 0 and out == ""
    assert len((tmp_path / "o").read_text().splitlines()) == 3
    reports = [line for line in err if "RTF" in line]
    assert len(reports) == 4 and all("spike rate" in r and "same-size GRU" in r for r in reports)
    assert reports[-1].startswith("all 3 files:") and "uJ an utterance" in reports[-1]  # the total


def test_bad_inputs_are_reported_and_the_rest_transcribed(pretrained, capsys, tmp_path):
    model, _, corpus = pretrained
    good = training_files(corpus)[0]
    bad = {
        "missing": tmp_path / "missing.wav",
        "not audio": tmp_path / "notes.wav",
        "truncated": tmp_path / "cut.flac",
        "0 samples": tmp_path / "empty.wav",
        "0 bytes": tmp_path / "nothing.flac",
    }
    bad["not audio"].write_text("hello\n")
    data = good.read_bytes()
    bad["truncated"].write_bytes(data[: len(data) // 2])
    sf.write(bad["0 samples"], np.zeros(0), 16000)
    bad["0 bytes"].write_bytes(b"")
    silence = tmp_path / "silence.wav"
    sf.write(silence, np.zeros(16000), 16000)
    status, out, err = run_cli(capsys, model, bad["missing"], good, *list(bad.values())[1:], silence)
    assert status == 1
    assert out.splitlines() == [f"{good}\t{out.splitlines()[0].split(chr(9))[1]}", f"{silence}\t"]
    *errors, summary = [line for line in err if line.startswith("error:")]
    assert summary == f"error: {len(bad)} of {len(bad) + 2} inputs gave no transcript (each named above)"
    assert len(errors) == len(bad) and all(str(path) in line for path, line in zip(bad.values(), errors))
    assert any(line.startswith("warning:") and str(silence) in line for line in err)


def test_bad_model_folder_and_console_script(pretrained, capsys, tmp_path):
    model = shutil.copytree(pretrained[0], tmp_path / "model")
    (model / "normalizer.ckpt").unlink()
    status, out, err = run_cli(capsys, model, training_files(pretrained[2])[0])
    assert (
        status == 2 and out == "" and len(err) == 1 and "normalizer.ckpt" in err[0] and "re-export" in err[0]
    )
    done = subprocess.run(["snn-asr", "transcribe", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--chunk-seconds" in done.stdout
    assert "spoken length" in " ".join(done.stdout.split())  # what a CTC word's duration is


def test_a_device_this_machine_lacks_is_one_line_that_does_not_blame_the_model(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on a machine without a GPU
    status, out, err = run_cli(capsys, "--device", "cuda:0", BUNDLED, "a.wav")
    assert (
        status == 2
        and out == ""
        and err == ["error: device 'cuda:0': this machine has 0 usable CUDA GPUs; use --device cpu"]
    )
