"""Encoder demo: parameters, op counts and spike rasters of the paper-size encoders.

Runs the 40 -> 550 x 2 encoders (v2, v1, lif, LSTM, GRU) on 40-dim Fbank features of
speech-like audio (a synthetic voiced signal, or a file given with ``--audio``), prints
the parameter and multiplication table and writes a spike raster PNG.
The networks are untrained: training-mode passes over the input, repeated until the eval-mode
spike rates stop moving (:func:`calibrate`), only set batch norm's statistics and the spike
scales, so spike rates are those of a fresh initialisation calibrated to convergence.

Run::

    python -m snn_asr.demo --out results/demo
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import speechbrain.nnet.RNN as sb_rnn
import torch
from speechbrain.lobes.features import Fbank

from snn_asr.encoders.spiking_rnn import SpikingRNN
from snn_asr.ops import count_ops, count_parameters, spike_trains
from snn_asr.recipes.plots import spike_raster

SAMPLE_RATE = 16000


def speech_like_audio(seconds: float = 3.0, seed: int = 0) -> torch.Tensor:
    """A voiced, speech-like waveform (samples,): gliding pitch, moving formants, syllabic rhythm, pauses.

    Example
    -------
    >>> speech_like_audio(0.5).shape
    torch.Size([8000])
    """
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = 120 + 30 * torch.sin(2 * math.pi * 0.7 * t + float(torch.rand(1, generator=gen)) * 6)
    phase = 2 * math.pi * torch.cumsum(f0, 0) / SAMPLE_RATE
    formants = [(500 + 300 * torch.sin(2 * math.pi * 1.3 * t + k), 90.0 + 40 * k) for k in range(3)]
    wave = torch.zeros_like(t)
    for harmonic in range(1, 40):
        freq = harmonic * f0
        gain = sum(
            torch.exp(-((freq - (c * (k + 1))) ** 2) / (2 * bw**2)) for k, (c, bw) in enumerate(formants)
        )
        wave += gain * torch.sin(harmonic * phase) / harmonic**0.5
    syllables = (torch.sin(2 * math.pi * 4 * t) > -0.3).float() * (
        torch.sin(2 * math.pi * 0.4 * t) > -0.6
    ).float()
    wave = wave * syllables + 0.01 * torch.randn(t.shape, generator=gen)
    return 0.3 * wave / wave.abs().max()


def fbank_features(wavs: torch.Tensor) -> torch.Tensor:
    """40-dim log Mel filterbanks with per-utterance mean/variance normalisation: (batch, frames, 40)."""
    feats = Fbank(n_mels=40)(wavs)
    return (feats - feats.mean(1, keepdim=True)) / (feats.std(1, keepdim=True) + 1e-5)


def encoders(input_size: int = 40, hidden: int = 550, layers: int = 2) -> dict[str, torch.nn.Module]:
    """The paper's five encoders at the given size."""
    spiking = {
        name: SpikingRNN(hidden, input_size=input_size, num_layers=layers, neuron=name)
        for name in ("v2", "v1", "lif")
    }
    return spiking | {
        "LSTM": sb_rnn.LSTM(hidden, input_size=input_size, num_layers=layers),
        "GRU": sb_rnn.GRU(hidden, input_size=input_size, num_layers=layers),
    }


CALIBRATION_PASSES = 50
"""Training-mode passes before counting: batch norm's running statistics (an EMA of momentum 0.1)
are then within 0.9^50 = 0.5% of the input's, where three passes left them about 27% of the way."""


@torch.no_grad()
def calibrate(model: torch.nn.Module, feats: torch.Tensor, passes: int = CALIBRATION_PASSES) -> int:
    """``passes`` training-mode passes over ``feats`` (batch, time, features); returns the passes made.

    Only batch norm's running statistics and the spike scales change; a model without spiking
    layers needs none.

    Example
    -------
    >>> calibrate(SpikingRNN(8, input_size=5), torch.randn(2, 20, 5), passes=4)
    4
    """
    if not any(isinstance(m, SpikingRNN) for m in model.modules()):
        return 0
    for _ in range(passes):
        model.train()(feats)
    return passes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--audio", help="an audio file to encode instead of the synthetic signal")
    parser.add_argument("--out", default="results/demo", help="folder for the spike raster PNG")
    parser.add_argument("--batch", type=int, default=4, help="utterances of synthetic audio")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    if args.audio:
        from snn_asr.dataio import load_audio

        wavs = load_audio(args.audio, SAMPLE_RATE).unsqueeze(0)
    else:
        wavs = torch.stack([speech_like_audio(seed=i) for i in range(args.batch)])
    feats = fbank_features(wavs)
    print(f"input: {feats.shape[0]} utterance(s), {feats.shape[1]} frames of 40-dim Fbank")
    print("| encoder | parameters (2-D weights) | mults/frame | vs same-size GRU | spike rates | passes |")
    print("|---|---|---|---|---|---|")
    for name, model in encoders().items():
        passes = calibrate(model, feats)  # batch-norm statistics and spike scales from this input
        report = count_ops(model.eval(), feats)
        rates = " / ".join(f"{r:.3f}" for r in report.spike_rates().values()) or "-"
        per_frame = report.mults_per_frame
        ratio = report.ratio_to_gru
        row = (
            f"| {name} | {count_parameters(model):,} | {per_frame:,.0f} | {ratio:.3f} | {rates} | {passes} |"
        )
        print(row)
        if name == "v2":
            trains = {f"layer {i}": s for i, s in enumerate(spike_trains(model, feats).values(), 1)}
            path = spike_raster(trains, Path(args.out) / "spike_raster_v2.png")
    print(f"spike raster of v2 (untrained): {path}")


if __name__ == "__main__":
    main()
