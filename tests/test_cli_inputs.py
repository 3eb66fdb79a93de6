"""``snn-asr transcribe`` as people use speech tools: our own errors, nothing skipped silently,
headerless PCM and stdin, decoder noise folded into our lines, and Whisper-style subtitles.

All on the bundled digits model and the repository's FSDD sample (no training).
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from corpora import FSDD, REPO

from snn_asr.inference.asr import Segment, Transcript
from snn_asr.inference.cli import main
from snn_asr.inference.formats import CueOptions, cues, write_result

BUNDLED = REPO / "pretrained" / "snn-digits"
CLIP = FSDD / "recordings" / "3_george_0.wav"


def run_cli(capsys, *args) -> tuple[int, str, list[str]]:
    status = main(["transcribe", *map(str, args)])
    out, err = capsys.readouterr()
    return status, out, err.splitlines()


def cli(*args, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """The console command in a subprocess: what a terminal shows, C libraries' stderr included."""
    return subprocess.run(
        [sys.executable, "-m", "snn_asr.inference.cli", *map(str, args)], input=stdin, capture_output=True
    )


@pytest.mark.parametrize(
    "model, words",
    [
        ("/nonexistent/model", "does not exist; pass a folder written by tools/export_model.py"),
        ("models/snn-an4", "does not exist; pass a folder written by tools/export_model.py"),
        (BUNDLED / "README.md", "is a file, not a model folder"),
    ],
)
def test_a_model_folder_that_is_not_there_is_our_own_one_line(capsys, model, words):
    status, out, err = run_cli(capsys, model, CLIP)
    assert status == 2 and out == "" and len(err) == 1 and words in err[0], err
    assert "Repo id must be" not in err[0]


def test_a_folder_names_what_it_leaves_out_and_an_empty_folder_is_an_error(capsys, tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    data, rate = sf.read(CLIP, dtype="int16")
    sf.write(clips / "a.wav", data, rate)
    sf.write(clips / "b.flac", data, rate)
    (clips / "c.raw").write_bytes(data.astype("<i2").tobytes())
    (clips / "notes.txt").write_text("not audio\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    status, out, err = run_cli(capsys, BUNDLED, clips, empty)
    assert status == 1
    assert [line.split("\t")[0] for line in out.splitlines()] == [str(clips / "a.wav"), str(clips / "b.flac")]
    assert any(line.startswith("warning:") and "notes.txt" in line and "left out 1" in line for line in err)
    raw_error = [line for line in err if line.startswith("error:") and "c.raw" in line]
    assert raw_error and "--raw-rate 16000 --raw-encoding s16le" in raw_error[0]
    assert any(line.startswith("error:") and str(empty) in line and "no audio" in line for line in err)
    assert err[-1] == "error: 2 of 4 inputs gave no transcript (each named above)"
    # told the PCM format, the .raw file reads as the WAV it came from: the same transcript
    status, out, _ = run_cli(capsys, BUNDLED, clips, "--raw-rate", rate, "--raw-encoding", "s16le")
    texts = dict(line.split("\t") for line in out.splitlines())
    assert status == 0 and texts[str(clips / "c.raw")] == texts[str(clips / "a.wav")]


class Stdin:
    """``sys.stdin`` holding ``data`` as its bytes (not a terminal)."""

    def __init__(self, data: bytes):
        self.buffer = io.BytesIO(data)

    def isatty(self) -> bool:
        return False


def test_pcm_and_headered_audio_on_stdin(capsys, monkeypatch):
    data, rate = sf.read(CLIP, dtype="int16")
    status, out, err = run_cli(capsys, BUNDLED, CLIP)
    assert status == 0, err
    expected = out.split("\t")[1]
    big_endian = data.astype(">i2").tobytes()
    monkeypatch.setattr(sys, "stdin", Stdin(big_endian))
    status, out, err = run_cli(capsys, BUNDLED, "-", "--raw-rate", rate, "--raw-encoding", "s16be")
    assert status == 0 and out == f"-\t{expected}", err
    monkeypatch.setattr(sys, "stdin", Stdin(CLIP.read_bytes()))
    status, out, err = run_cli(capsys, BUNDLED, "-")
    assert status == 0 and out == f"-\t{expected}", err
    monkeypatch.setattr(sys, "stdin", Stdin(big_endian))
    status, out, err = run_cli(capsys, BUNDLED, "-")
    assert status == 1 and err[0].startswith("error: stdin: ") and "--raw-rate 16000" in err[0]


def damaged_mp3(path) -> None:
    """An MP3 with bytes flipped in its frames: libmpg123 complains on fd 2 while decoding it."""
    data, rate = sf.read(CLIP, dtype="float32")
    sf.write(path, np.tile(data, 4), rate, format="MP3")
    damaged = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    for i in rng.integers(2000, len(damaged) - 100, 40):
        damaged[i] = int(rng.integers(0, 256))
    path.write_bytes(bytes(damaged))


def test_decoder_noise_stays_out_of_the_terminal(tmp_path):
    mp3 = tmp_path / "damaged.mp3"
    damaged_mp3(mp3)
    plain = subprocess.run(
        [sys.executable, "-c", f"import soundfile; soundfile.read({str(mp3)!r})"], capture_output=True
    )
    assert b"libmpg123" in plain.stderr  # the noise is real: what users saw
    done = cli("transcribe", BUNDLED, mp3, CLIP, "--beam", "4")  # the folder's n-gram: kenlm loads it
    lines = done.stderr.decode().splitlines()
    assert b"libmpg123" not in done.stderr and b"[src/" not in done.stderr, lines
    assert b"****" not in done.stderr and b"unigrams" not in done.stderr, lines  # kenlm's loading noise
    assert len(done.stdout.decode().splitlines()) == 1 + (done.returncode == 0)
    assert [line for line in lines if str(mp3) in line], "the damaged file is named in our own line"
    assert all(re.match(r"(error|warning): ", line) for line in lines), lines


def test_subtitle_cues_follow_pauses_and_limits():
    words = [Segment(w, t, t + 0.04) for w, t in [("A", 0.2), ("B", 0.5), ("C", 0.8), ("D", 2.6), ("E", 2.9)]]
    assert [c.text for c in cues(words, 4.0)] == ["A B C", "D E"]  # the 1.8 s pause
    assert [c.text for c in cues(words, 4.0, CueOptions(max_words=2))] == ["A B", "C", "D E"]
    assert [c.text for c in cues(words, 4.0, CueOptions(max_line_width=3))] == ["A B", "C", "D E"]
    first, second = cues(words, 4.0)
    assert first.start == 0.2 and first.end == pytest.approx(1.84) and second.end == 3.94
    assert cues(words, 3.0)[-1].end == 3.0  # never past the audio


def test_srt_vtt_tsv_as_whisper_writes_them(tmp_path):
    words = [Segment("ONE", 0.31, 0.35), Segment("TWO", 3661.5, 3661.54)]
    transcript = Transcript("ONE TWO", words, [], 3662.0)
    out = {}
    for fmt in ("srt", "vtt", "tsv"):
        with open(tmp_path / fmt, "w") as handle:
            write_result(handle, fmt, "a.wav", transcript)
        out[fmt] = (tmp_path / fmt).read_text()
    assert out["srt"] == "1\n00:00:00,310 --> 00:00:01,350\nONE\n\n2\n01:01:01,500 --> 01:01:02,000\nTWO\n\n"
    assert out["vtt"] == "WEBVTT\n\n00:00.310 --> 00:01.350\nONE\n\n01:01:01.500 --> 01:01:02.000\nTWO\n\n"
    assert out["tsv"] == "start\tend\ttext\n310\t1350\tONE\n3661500\t3662000\tTWO\n"


def test_format_all_and_output_dir(capsys, tmp_path):
    second = FSDD / "recordings" / "7_george_1.wav"
    status, _, err = run_cli(capsys, BUNDLED, CLIP, "--format", "all", "--output", tmp_path / "one.txt")
    assert status == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"one.{x}" for x in ("ctm", "json", "srt", "tsv", "txt", "vtt")
    ]
    assert (tmp_path / "one.srt").read_text().startswith("1\n00:00:0")
    status, out, err = run_cli(capsys, BUNDLED, CLIP, second, "--format", "srt")
    assert status == 2 and "--output-dir" in err[0]
    status, _, err = run_cli(
        capsys, BUNDLED, CLIP, second, "--format", "vtt", "--output-dir", tmp_path / "subs"
    )
    assert status == 0 and sorted(p.name for p in (tmp_path / "subs").iterdir()) == [
        "3_george_0.vtt",
        "7_george_1.vtt",
    ]


class _Planted:
    """Unpickling this would create the file ``path``: the code a malicious checkpoint carries."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("name", ["model.ckpt", "normalizer.ckpt"])
def test_a_checkpoint_that_would_run_code_is_refused_without_running_it(capsys, tmp_path, name):
    model = shutil.copytree(BUNDLED, tmp_path / "model")
    planted = tmp_path / "planted"
    torch.save({"weights": _Planted(planted)}, model / name)
    status, out, err = run_cli(capsys, model, CLIP)
    assert status == 2 and out == "" and len(err) == 1 and name in err[0] and "pickled code" in err[0], err
    assert not planted.exists()


def test_a_model_yaml_naming_other_code_is_refused_unless_trusted(capsys, tmp_path):
    model = shutil.copytree(BUNDLED, tmp_path / "model")
    planted = tmp_path / "planted"
    yaml = model / "hyperparams.yaml"
    yaml.write_text(
        yaml.read_text() + f"\nsurprise: !apply:pathlib.Path.touch [!new:pathlib.Path [{planted}]]\n"
    )
    status, out, err = run_cli(capsys, model, CLIP)
    assert (
        status == 2
        and len(err) == 1
        and "'pathlib.Path.touch' (!apply:)" in err[0]
        and "--trust-model-code" in err[0]
    )
    assert not planted.exists()
    status, out, err = run_cli(capsys, model, CLIP, "--trust-model-code")
    assert status == 0 and planted.exists()  # trusted: it ran what it names


@pytest.mark.parametrize("name", ["snn-an4", "lstm-an4"])
def test_the_bundled_an4_models_decode_as_their_folders_say(capsys, name):
    from snn_asr.inference import SpikingASR

    model = REPO / "pretrained" / name
    asr = SpikingASR.from_hparams(source=str(model))
    assert asr.folder_decoding() == (16, model / "lm.arpa") and asr.folder_rnnlm() is not None
    clips = sorted((REPO / "tests" / "data" / "an4-samples").glob("*.wav"))  # AN4 test speakers
    status, default, err = run_cli(capsys, model, *clips)
    assert status == 0 and err == [] and all(line.split("\t")[1] for line in default.splitlines()), err
    explicit = "--beam", "16", "--lm", model / "lm.arpa", "--rnnlm-weight", asr.hparams.rnnlm_weight
    assert default == run_cli(capsys, model, *clips, *explicit)[1]
    status, plain, _ = run_cli(capsys, model, *clips, "--no-rnnlm")
    assert status == 0 and all(line.split("\t")[1] for line in plain.splitlines())
    status, mixed, _ = run_cli(capsys, model, clips[0], "--no-rnnlm", *clips[1:])  # inputs after options
    assert status == 0 and mixed == plain
