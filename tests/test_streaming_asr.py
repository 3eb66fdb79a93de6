"""SpeechBrain's own StreamingASR (and EncoderASR) on the bundled folders: snn-asr's transcripts."""

from __future__ import annotations

import pytest
import torch
from corpora import REPO
from speechbrain.inference.ASR import EncoderASR, StreamingASR
from speechbrain.utils.dynamic_chunk_training import DynChunkTrainConfig

from snn_asr.inference import SpikingASR
from snn_asr.inference.fbank_stream import floored_values

AN4_SAMPLES = REPO / "tests" / "data" / "an4-samples"
FSDD = REPO / "tests" / "data" / "fsdd" / "recordings"
CASES = [
    ("snn-an4", AN4_SAMPLES / "an430-fvap-b.wav"),
    ("snn-an4", AN4_SAMPLES / "cen1-fcaw-b.wav"),
    ("snn-digits", FSDD / "1_nicolas_1.wav"),
    ("snn-digits", FSDD / "1_nicolas_8.wav"),
]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    loaded = {}
    for name in ("snn-an4", "snn-digits"):
        source, save = str(REPO / "pretrained" / name), tmp_path_factory.mktemp(name)
        loaded[name] = (
            SpikingASR.from_hparams(source=source),
            StreamingASR.from_hparams(source=source, savedir=str(save / "streaming")),
            EncoderASR.from_hparams(source=source, savedir=str(save / "encoder")),
        )
    return loaded


@pytest.mark.parametrize("name, path", CASES, ids=[f"{n}-{p.stem}" for n, p in CASES])
@pytest.mark.parametrize("chunk", [16, 5])
def test_streaming_asr_gives_snn_asrs_transcript(models, name, path, chunk):
    ours, streaming, stock = models[name]
    assert (
        floored_values(ours.parts.compute_features, ours.load_audio(str(path))) == 0
    )  # where the whole file's floor bites, a stream's floor differs
    expected = ours.transcribe_file(str(path))
    config = DynChunkTrainConfig(chunk, 0)
    assert streaming.transcribe_file(str(path), config, use_torchaudio_streaming=False) == expected
    pieces = list(streaming.transcribe_file_streaming(str(path), config, use_torchaudio_streaming=False))
    assert "".join(pieces) == expected and len(pieces) > 3 and expected
    assert " ".join(stock.transcribe_file(str(path)).split()) == expected  # EncoderASR: its own spacing


def test_the_encoder_context_is_the_state_and_a_bidirectional_encoder_refuses(models):
    enc = models["snn-digits"][1].mods.enc
    context = enc.make_streaming_context(DynChunkTrainConfig(16, 0))
    x = torch.randn(1, 40, 40)
    with torch.no_grad():
        out = torch.cat([enc.forward_streaming(x[:, i : i + 20], context) for i in (0, 20)], 1)
        assert torch.equal(out, enc(x)[0]) and context.state.shape == (2, 3, 1, 256)
        assert enc.forward_streaming(x[:, :0], context).shape == (1, 0, 256)
    from snn_asr import SpikingRNN

    with pytest.raises(ValueError, match="bidirectional"):
        SpikingRNN(4, input_size=3, bidirectional=True).make_streaming_context()
