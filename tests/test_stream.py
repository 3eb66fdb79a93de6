"""``snn-asr stream``: live decoding of PCM piped in, against ``snn-asr transcribe`` of the same audio."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from corpora import FSDD, REPO
from test_cli_inputs import Stdin

from snn_asr.dataio import load_audio
from snn_asr.inference import SpikingASR
from snn_asr.inference.cli import main
from snn_asr.inference.endpointing import Endpointing
from snn_asr.inference.streaming import LiveTranscriber

BUNDLED = REPO / "pretrained" / "snn-digits"
SPEECH = REPO / "tests" / "data" / "librispeech-samples" / "LibriSpeech" / "test-clean" / "1089" / "134686"


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """Four FSDD digits with a second of near-silence after each: four utterances in one file."""
    clips = [
        load_audio(FSDD / "recordings" / f"{d}_jackson_{i}.wav") for d, i in [(1, 0), (5, 3), (9, 2), (0, 4)]
    ]
    gap = torch.zeros(16000)
    signal = torch.cat([torch.cat([c, gap]) for c in clips])
    signal += 1e-4 * torch.randn(signal.shape, generator=torch.Generator().manual_seed(0))
    path = tmp_path_factory.mktemp("stream") / "digits.wav"
    sf.write(path, signal.numpy(), 16000, subtype="PCM_16")
    return path


def pcm(path) -> bytes:
    data, rate = sf.read(path, dtype="int16")
    assert rate == 16000
    return data.astype("<i2").tobytes()


@pytest.mark.parametrize("dense", [False, True])
def test_piped_stream_finals_join_to_the_greedy_transcript(digits, dense, capsys, monkeypatch):
    flags = ["--dense"] if dense else []
    assert (
        main(["transcribe", str(BUNDLED), str(digits), "--beam", "0", *([] if dense else ["--event-driven"])])
        == 0
    )
    expected = capsys.readouterr().out.split("\t")[1].split()
    monkeypatch.setattr(sys, "stdin", Stdin(pcm(digits)))
    assert main(["stream", str(BUNDLED), "-", "--timestamps", *flags]) == 0
    finals = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert len(finals) == 4, "one final per spoken digit: the gaps are endpoints"
    assert " ".join(text for _, _, text in finals).split() == expected
    starts = [float(start) for start, _, _ in finals]
    assert starts == sorted(starts) and all(float(e) > float(s) for s, e, _ in finals)


def test_real_speech_streams_to_the_same_text_in_pieces_of_any_size():
    asr = SpikingASR.from_hparams(source=str(BUNDLED))
    signal = load_audio(SPEECH / "1089-134686-0000.flac")
    expected = asr.transcribe_signal(signal).text  # greedy, dense
    rng = np.random.default_rng(0)
    peak = float(asr.parts.compute_features(signal[None]).amax())  # the file's: its floor, as transcribe's
    live, events, at = (
        LiveTranscriber(asr, chunk_frames=20, endpointing=Endpointing(-35.0, 0.3), peak=peak),
        [],
        0,
    )
    while at < signal.numel():
        step = int(rng.integers(1, 4000))
        events += live.push(signal[at : at + step])
        at += step
    events += live.finish()
    finals = [e.text for e in events if e.kind == "final"]
    assert len(finals) > 1  # its pauses are endpoints
    # the same tokens; only where an endpoint falls inside a word is that word cut in two
    assert "".join(finals).replace(" ", "") == expected.replace(" ", "")
    assert all(t.seconds > 0 for t in live.timings) and min(t.audio for t in live.timings) >= 0.2 - 1e-9


def test_report_rate_and_microphone_errors(digits, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", Stdin(pcm(digits)))
    assert main(["stream", str(BUNDLED), "-", "--report"]) == 0
    lines = capsys.readouterr().err.splitlines()
    chunks = [line for line in lines if line.startswith("chunk: ")]
    assert len(chunks) > 10 and "ms of audio in" in chunks[0]
    assert lines[-1].startswith("stream: ") and "p95" in lines[-1] and "RTF" in lines[-1]
    monkeypatch.setattr(sys, "stdin", Stdin(pcm(digits)))
    assert main(["stream", str(BUNDLED), "-", "--raw-rate", "8000"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "expects 16000 Hz" in err[0] and "sox" in err[0]
    try:
        import sounddevice  # noqa: F401
    except ImportError:
        assert main(["stream", str(BUNDLED), "--mic"]) == 2
        err = capsys.readouterr().err.splitlines()
        assert err == ["error: --mic needs the sounddevice package: pip install sounddevice"]
