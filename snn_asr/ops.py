"""Operation and parameter accounting for spiking and conventional recurrent encoders.

Counting rules (per utterance, over its real frames only):

- **Spiking layers are event-driven.** A non-zero value entering a weight matrix
  costs that matrix's fan-out in multiplications: an input element into ``W``
  costs ``gates * hidden``; a layer's own previous spike into ``U`` (v2) costs
  ``2 * hidden``. The first layer's input is counted the same way (Fbank values
  are almost never zero, so it is in effect dense). Eval-mode batch norm folds
  into ``W`` and costs nothing. (The paper's released code counts the first
  layer's input twice and skips ``U`` of the second layer; this does neither.)
- **LSTM/GRU/LiGRU layers are dense**: ``gates * hidden * (input + hidden)`` per frame.
- **Element-wise multiplications** are reported apart: per neuron and frame,
  lif 1 (leak), v1/v2 3 (``F*I``, ``(1-F)*C``, dropout-free), plus 2 for the
  quantizer (scale, de-scale); LSTM 3, GRU 3, LiGRU 2.

Energy uses 45 nm figures (Horowitz, ISSCC 2014): a 32-bit float multiply-accumulate
costs ``E_MAC = 4.6 pJ`` (3.7 multiply + 0.9 add), an accumulate ``E_AC = 0.9 pJ``,
an element-wise multiply ``E_MUL = 3.7 pJ``. A multi-bit spike entering a synapse is
charged a full MAC (its magnitude must still be multiplied); a binary spike
(``bits=1``) is charged an accumulate only. Memory access is not modelled.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from snn_asr.encoders.spiking_rnn import SpikingRNN, valid_frames  # noqa: F401  (SpikingRNN: doctests)
from snn_asr.neurons import GatedLIFNeuron, RecurrentGatedLIFNeuron, SpikingNeuron

E_MAC_PJ = 4.6
E_AC_PJ = 0.9
E_MUL_PJ = 3.7

DENSE_GATES = {"LSTM": 4, "GRU": 3, "LiGRU": 2}
DENSE_ELEMENTWISE = {"LSTM": 3, "GRU": 3, "LiGRU": 2}


def count_parameters(module: nn.Module, matrices_only: bool = True) -> int:
    """Parameters of ``module``; with ``matrices_only`` just the 2-D weight matrices (the paper's count).

    Example
    -------
    >>> count_parameters(SpikingRNN(550, input_size=40, num_layers=2, neuron="v1"))
    649000
    """
    return sum(p.numel() for p in module.parameters() if p.dim() == 2 or not matrices_only)


def dense_mults_per_frame(
    kind: str, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False
) -> tuple[int, int]:
    """(matrix, element-wise) multiplications per frame of a dense ``kind`` RNN ("LSTM", "GRU", "LiGRU").

    Example
    -------
    >>> dense_mults_per_frame("GRU", 40, 550, 2)
    (2788500, 3300)
    """
    gates = DENSE_GATES[kind]
    dirs = 2 if bidirectional else 1
    matrix = 0
    for layer in range(num_layers):
        fan_in = input_size if layer == 0 else hidden_size * dirs
        matrix += gates * hidden_size * (fan_in + hidden_size)
    return matrix * dirs, DENSE_ELEMENTWISE[kind] * hidden_size * num_layers * dirs


@dataclass
class LayerOps:
    """Counts for one recurrent layer (one direction), summed over a batch's real frames."""

    name: str
    kind: str
    hidden_size: int
    frames: int = 0
    spikes: int = 0
    matrix_mults: int = 0
    elementwise_mults: int = 0
    gru_matrix_mults: int = 0
    gru_elementwise_mults: int = 0
    binary: bool = False

    @property
    def spike_rate(self) -> float | None:
        """Fraction of neuron-frames that emitted a non-zero spike (``None`` for dense layers)."""
        if self.kind in DENSE_GATES:
            return None
        return self.spikes / max(1, self.frames * self.hidden_size)


@dataclass
class OpsReport:
    """Per-utterance operation counts of an encoder, against a GRU of the same size."""

    utterances: int
    frames: int
    layers: list[LayerOps] = field(default_factory=list)

    @property
    def matrix_mults(self) -> float:
        """Synaptic (matrix) multiplications per utterance."""
        return sum(layer.matrix_mults for layer in self.layers) / self.utterances

    @property
    def elementwise_mults(self) -> float:
        """Element-wise multiplications per utterance."""
        return sum(layer.elementwise_mults for layer in self.layers) / self.utterances

    @property
    def mults(self) -> float:
        """All multiplications per utterance."""
        return self.matrix_mults + self.elementwise_mults

    @property
    def gru_mults(self) -> float:
        """All multiplications per utterance of a GRU with the same layer sizes."""
        total = sum(layer.gru_matrix_mults + layer.gru_elementwise_mults for layer in self.layers)
        return total / self.utterances

    @property
    def ratio_to_gru(self) -> float:
        """``mults / gru_mults``: below 1 means fewer multiplications than the GRU."""
        return self.mults / max(1.0, self.gru_mults)

    @property
    def energy_uj(self) -> float:
        """Estimated energy per utterance in microjoules (constants in the module docstring)."""
        pj = 0.0
        for layer in self.layers:
            pj += layer.matrix_mults * (E_AC_PJ if layer.binary else E_MAC_PJ)
            pj += layer.elementwise_mults * E_MUL_PJ
        return pj / self.utterances / 1e6

    @property
    def gru_energy_uj(self) -> float:
        """Estimated energy per utterance of the same-size GRU, in microjoules."""
        pj = sum(
            layer.gru_matrix_mults * E_MAC_PJ + layer.gru_elementwise_mults * E_MUL_PJ
            for layer in self.layers
        )
        return pj / self.utterances / 1e6

    @classmethod
    def merge(cls, reports: list[OpsReport]) -> OpsReport:
        """One report over several batches: counts of same-named layers are summed."""
        merged = cls(utterances=0, frames=0)
        layers: dict[str, LayerOps] = {}
        for report in reports:
            merged.utterances += report.utterances
            merged.frames += report.frames
            for layer in report.layers:
                total = layers.setdefault(layer.name, LayerOps(layer.name, layer.kind, layer.hidden_size))
                total.binary = layer.binary
                for counter in (
                    "frames",
                    "spikes",
                    "matrix_mults",
                    "elementwise_mults",
                    "gru_matrix_mults",
                    "gru_elementwise_mults",
                ):
                    setattr(total, counter, getattr(total, counter) + getattr(layer, counter))
        merged.layers = list(layers.values())
        return merged

    def spike_rates(self) -> dict[str, float]:
        """Spike rate of each spiking layer, by layer name."""
        return {layer.name: layer.spike_rate for layer in self.layers if layer.spike_rate is not None}

    def to_dict(self) -> dict:
        """Plain-data summary (JSON-serialisable)."""
        return {
            "utterances": self.utterances,
            "frames_per_utterance": self.frames / self.utterances,
            "mults_per_utterance": self.mults,
            "matrix_mults_per_utterance": self.matrix_mults,
            "mults_per_frame": self.mults * self.utterances / max(1, self.frames),
            "gru_mults_per_utterance": self.gru_mults,
            "ratio_to_gru": self.ratio_to_gru,
            "energy_uj_per_utterance": self.energy_uj,
            "gru_energy_uj_per_utterance": self.gru_energy_uj,
            "spike_rates": self.spike_rates(),
            "layers": [asdict(layer) | {"spike_rate": layer.spike_rate} for layer in self.layers],
        }

    def table(self) -> str:
        """A human-readable summary."""
        lines = [f"{'layer':<28}{'kind':<7}{'spike rate':>11}{'mults/utt':>14}"]
        for layer in self.layers:
            rate = "-" if layer.spike_rate is None else f"{layer.spike_rate:.3f}"
            per_utt = (layer.matrix_mults + layer.elementwise_mults) / self.utterances
            lines.append(f"{layer.name:<28}{layer.kind:<7}{rate:>11}{per_utt:>14,.0f}")
        lines.append(
            f"total mults/utterance {self.mults:,.0f}; same-size GRU {self.gru_mults:,.0f}; "
            f"ratio {self.ratio_to_gru:.3f} (GRU/this = {1 / max(self.ratio_to_gru, 1e-12):.1f}x)"
        )
        lines.append(
            f"energy/utterance {self.energy_uj:.2f} uJ; GRU {self.gru_energy_uj:.2f} uJ "
            f"(45 nm: MAC {E_MAC_PJ} pJ, AC {E_AC_PJ} pJ, MUL {E_MUL_PJ} pJ)"
        )
        return "\n".join(lines)


def _neuron_kind(layer: SpikingNeuron) -> str:
    if isinstance(layer, RecurrentGatedLIFNeuron):
        return "v2"
    if isinstance(layer, GatedLIFNeuron):
        return "v1"
    return "lif"


def _dense_kind(module: nn.Module) -> str | None:
    if isinstance(module, nn.LSTM):
        return "LSTM"
    if isinstance(module, nn.GRU):
        return "GRU"
    if type(module).__name__ == "LiGRU_Layer":  # speechbrain.nnet.RNN.LiGRU's per-layer module
        return "LiGRU"
    return None


class _Counter:
    """Forward hooks that tally spikes and multiplications of every recurrent layer in a model."""

    def __init__(self, model: nn.Module):
        self.layers: dict[str, LayerOps] = {}
        self.frames = 0
        self.handles = []
        for name, module in model.named_modules():
            if isinstance(module, SpikingNeuron):
                self.handles.append(module.register_forward_hook(self._spiking_hook(name), with_kwargs=True))
            elif _dense_kind(module):
                self.handles.append(module.register_forward_hook(self._dense_hook(name)))

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()

    def _entry(self, name: str, kind: str, hidden: int) -> LayerOps:
        return self.layers.setdefault(name, LayerOps(name or "rnn", kind, hidden))

    @staticmethod
    def _add_frames(entry: LayerOps, frames: int, gru_sizes: tuple[int, int, int, bool]) -> None:
        """Counts ``frames`` for ``entry`` and for a GRU of sizes (input, hidden, layers, bidirectional)."""
        matrix, elementwise = dense_mults_per_frame("GRU", *gru_sizes)
        entry.frames += frames
        entry.gru_matrix_mults += matrix * frames
        entry.gru_elementwise_mults += elementwise * frames

    def _spiking_hook(self, name):
        def hook(module: SpikingNeuron, args, kwargs, output):
            x = args[0]
            valid = args[2] if len(args) > 2 else kwargs.get("valid")
            if valid is None:
                valid = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
            spikes = output[0]
            entry = self._entry(name, _neuron_kind(module), module.hidden_size)
            entry.binary = module.quantizer.bits == 1
            frames = int(valid.sum())
            self._add_frames(entry, frames, (module.input_size, module.hidden_size, 1, False))
            entry.spikes += int((spikes[valid] != 0).sum())
            input_events = int((x[valid] != 0).sum())
            entry.matrix_mults += input_events * module.gates * module.hidden_size
            if isinstance(module, RecurrentGatedLIFNeuron):
                # U sees Y[n-1]: every spike except those at each sequence's last frame.
                last = valid & ~torch.cat([valid[:, 1:], torch.zeros_like(valid[:, :1])], dim=1)
                recurrent_events = int((spikes[valid & ~last] != 0).sum())
                entry.matrix_mults += recurrent_events * 2 * module.hidden_size
            per_neuron = (1 if module.gates == 1 else 3) + 2
            entry.elementwise_mults += frames * module.hidden_size * per_neuron

        return hook

    def _dense_hook(self, name):
        def hook(module, args, output):
            x = args[0]
            kind = _dense_kind(module)
            if isinstance(module, (nn.LSTM, nn.GRU)):
                hidden, layers, bidir = module.hidden_size, module.num_layers, module.bidirectional
                input_size = module.input_size
                frames = int(x.batch_sizes.sum()) if hasattr(x, "batch_sizes") else x.shape[0] * x.shape[1]
            else:  # LiGRU_Layer: (batch, time, input) one layer, bidirectional doubles the batch
                hidden, layers, bidir = module.hidden_size, 1, bool(module.bidirectional)
                input_size = module.input_size
                frames = x.shape[0] * x.shape[1]
            entry = self._entry(name, kind, hidden)
            matrix, elementwise = dense_mults_per_frame(kind, input_size, hidden, layers, bidir)
            self._add_frames(entry, frames, (input_size, hidden, layers, bidir))
            entry.matrix_mults += matrix * frames
            entry.elementwise_mults += elementwise * frames

        return hook


@torch.no_grad()
def count_ops(model: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None = None) -> OpsReport:
    """Runs ``model(x)`` (or ``model(x, lengths=lengths)``) in eval mode and counts its recurrent layers.

    Arguments
    ---------
    model : nn.Module
        An encoder (``SpikingRNN``, SpeechBrain ``LSTM``/``GRU``/``LiGRU``, ``CRDNN``...).
        ``lengths`` is passed only if its ``forward`` takes it.
    x : torch.Tensor
        Input batch (batch, time, features).
    lengths : torch.Tensor, optional
        Relative lengths (SpeechBrain convention).

    Returns
    -------
    OpsReport
        Per-utterance counts, spike rates and the same-size GRU's counts.

    Example
    -------
    >>> rnn = SpikingRNN(16, input_size=8, num_layers=2)
    >>> report = count_ops(rnn, torch.randn(2, 30, 8))
    >>> sorted(report.spike_rates())
    ['stacks.0.0', 'stacks.0.1']
    """
    was_training = model.training
    model.eval()
    counter = _Counter(model)
    try:
        if lengths is not None and "lengths" in inspect.signature(model.forward).parameters:
            model(x, lengths=lengths)
        else:
            model(x)
    finally:
        counter.close()
        model.train(was_training)
    valid = valid_frames(lengths, x.shape[0], x.shape[1], x.device)
    frames = int(valid.sum()) if valid is not None else x.shape[0] * x.shape[1]
    return OpsReport(utterances=x.shape[0], frames=frames, layers=list(counter.layers.values()))
