"""The recipes' LSTM/GRU baselines run unpacked, and that changes nothing that is scored.

SpeechBrain's ``LSTM``/``GRU`` pack the batch when given ``lengths``; on CPU that is several
times slower per step. The baseline YAMLs set ``encoder_lengths: False``, so the encoder sees
no lengths. For a unidirectional RNN the outputs at real frames never depend on the padding
after them, so packed and unpacked outputs must agree there (checked below).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hyperpyyaml import load_hyperpyyaml

ROOT = Path(__file__).resolve().parents[1]
BASELINES = [
    ROOT / "recipes" / recipe / "hparams" / f"{name}.yaml"
    for recipe in ("LibriSpeech", "TIMIT")
    for name in ("lstm", "gru")
]


@pytest.mark.parametrize("hparams_file", BASELINES, ids=lambda p: f"{p.parts[-3]}-{p.stem}")
def test_unpacked_baseline_equals_packed_on_real_frames(hparams_file, tmp_path):
    overrides = {"data_folder": str(tmp_path), "output_folder": str(tmp_path / "out"), "hidden_size": 32}
    with open(hparams_file) as f:
        hparams = load_hyperpyyaml(f, overrides)
    assert hparams["encoder_lengths"] is False
    encoder = hparams["encoder"].eval()
    assert not encoder.rnn.bidirectional, "unpacked outputs are only exact for a unidirectional RNN"

    torch.manual_seed(0)
    feats = torch.randn(3, 50, hparams["n_mels"])
    lengths = torch.tensor([1.0, 0.62, 0.3])
    with torch.no_grad():
        packed, _ = encoder(feats, lengths=lengths)
        unpacked, _ = encoder(feats)
    for row, rel in enumerate(lengths):
        frames = int(round(float(rel) * feats.shape[1]))
        torch.testing.assert_close(unpacked[row, :frames], packed[row, :frames], rtol=1e-5, atol=1e-6)
        if frames < feats.shape[1]:  # padding does get outputs unpacked: they are what is skipped
            assert unpacked[row, frames:].abs().sum() > 0
