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

Every count is over each utterance's real frames: ``valid_frames`` of the relative ``lengths``
(``round(lengths * time)``, the mask ``SpikingRNN`` itself uses), at the time resolution of the
layer counted, for spiking and dense layers alike, whether or not the model was given the lengths.
(SpeechBrain's packing of an LSTM/GRU truncates ``lengths * time``: counting its packed frames
dropped a frame, 181 of 182, when the product was not a whole number.)

Energy uses the 45 nm figures of Horowitz ("Computing's energy problem", ISSCC 2014), in
:data:`ENERGY_PJ`: a 32-bit float multiply costs 3.7 pJ and a 32-bit float add 0.9 pJ, so a
multiply-accumulate ``MAC`` 4.6 pJ, an accumulate ``AC`` 0.9 pJ, an element-wise multiply ``MUL``
3.7 pJ. The price of a synaptic product follows its *operand*, the value entering the weight
matrix, not the layer's own output: a real-valued operand (Fbank features, a CNN's output) or a
multi-bit spike costs a MAC (a multi-bit spike's magnitude must still be multiplied: an upper
bound); an operand with a single non-zero magnitude in the batch (binary spikes, ``bits=1``:
``0`` or ``theta``) folds that value into the weight and costs an AC. So at ``bits=1`` the
first layer's ``W`` on Fbank pays MACs, the next layer's ``W`` and every ``U`` pay ACs.
Memory access is not modelled.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from snn_asr.encoders.spiking_rnn import SpikingRNN, valid_frames  # noqa: F401  (SpikingRNN: doctests)
from snn_asr.neurons import GatedLIFNeuron, RecurrentGatedLIFNeuron, SpikingNeuron

ENERGY_PJ = {"MAC": 3.7 + 0.9, "AC": 0.9, "MUL": 3.7}
"""Picojoules per operation at 45 nm (Horowitz, ISSCC 2014): 32-bit float multiply 3.7, add 0.9."""

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
    accumulates: int = 0  # the part of ``matrix_mults`` on a binary operand, charged as an AC

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
    def mults_per_frame(self) -> float:
        """All multiplications per frame (the per-utterance count over the frames of an utterance)."""
        return self.mults * self.utterances / max(1, self.frames)

    @property
    def ratio_to_gru(self) -> float:
        """``mults / gru_mults``: below 1 means fewer multiplications than the GRU."""
        return self.mults / max(1.0, self.gru_mults)

    @property
    def energy_uj(self) -> float:
        """Estimated energy per utterance in microjoules (constants in the module docstring)."""
        pj = sum(
            (layer.matrix_mults - layer.accumulates) * ENERGY_PJ["MAC"]
            + layer.accumulates * ENERGY_PJ["AC"]
            + layer.elementwise_mults * ENERGY_PJ["MUL"]
            for layer in self.layers
        )
        return pj / self.utterances / 1e6

    @property
    def gru_energy_uj(self) -> float:
        """Estimated energy per utterance of the same-size GRU, in microjoules."""
        pj = sum(
            layer.gru_matrix_mults * ENERGY_PJ["MAC"] + layer.gru_elementwise_mults * ENERGY_PJ["MUL"]
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
                for counter in (
                    "frames",
                    "spikes",
                    "matrix_mults",
                    "elementwise_mults",
                    "gru_matrix_mults",
                    "gru_elementwise_mults",
                    "accumulates",
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
            "mults_per_frame": self.mults_per_frame,
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
            f"(45 nm: {', '.join(f'{op} {pj:.1f} pJ' for op, pj in ENERGY_PJ.items())})"
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


def real_frames(lengths: torch.Tensor | None, batch: int, time: int, device=None) -> torch.Tensor:
    """(batch, time) mask of the real frames a layer counts: :func:`valid_frames`, or all without lengths.

    The one frame count of every model, spiking or dense, at the layer's own time resolution.

    Example
    -------
    >>> real_frames(torch.tensor([1.0, 0.9087]), 2, 200).sum(1)  # 181.74 frames round to 182
    tensor([200, 182])
    """
    valid = valid_frames(lengths, batch, time, device)
    return torch.ones(batch, time, dtype=torch.bool, device=device) if valid is None else valid


def _one_magnitude(operand: torch.Tensor) -> bool:
    """Whether the non-zero entries of ``operand`` share one magnitude (binary spikes: ``W x`` is adds)."""
    magnitudes = operand[operand != 0].abs()
    return magnitudes.numel() > 0 and bool((magnitudes == magnitudes[0]).all())


class _Counter:
    """Forward hooks that tally spikes and multiplications of every recurrent layer in a model.

    ``lengths`` (relative, SpeechBrain's) give each layer's real frames through :func:`real_frames`.
    """

    def __init__(self, model: nn.Module, lengths: torch.Tensor | None = None):
        self.layers: dict[str, LayerOps] = {}
        self.lengths = lengths
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

    @staticmethod
    def _add_products(entry: LayerOps, operand: torch.Tensor, fan_out: int) -> None:
        """Each non-zero value of ``operand`` entering a weight matrix costs ``fan_out`` products."""
        products = int((operand != 0).sum()) * fan_out
        entry.matrix_mults += products
        if _one_magnitude(operand):
            entry.accumulates += products

    def _spiking_hook(self, name):
        def hook(module: SpikingNeuron, args, kwargs, output):
            x = args[0]
            valid = args[2] if len(args) > 2 else kwargs.get("valid")
            if valid is None:  # a model not given the lengths still has padded frames
                valid = real_frames(self.lengths, x.shape[0], x.shape[1], x.device)
            spikes = output[0]
            entry = self._entry(name, _neuron_kind(module), module.hidden_size)
            frames = int(valid.sum())
            self._add_frames(entry, frames, (module.input_size, module.hidden_size, 1, False))
            entry.spikes += int((spikes[valid] != 0).sum())
            self._add_products(entry, x[valid], module.gates * module.hidden_size)
            if isinstance(module, RecurrentGatedLIFNeuron):
                # U sees Y[n-1]: every spike except those at each sequence's last frame.
                last = valid & ~torch.cat([valid[:, 1:], torch.zeros_like(valid[:, :1])], dim=1)
                self._add_products(entry, spikes[valid & ~last], 2 * module.hidden_size)
            per_neuron = (1 if module.gates == 1 else 3) + 2
            entry.elementwise_mults += frames * module.hidden_size * per_neuron

        return hook

    def _dense_hook(self, name):
        def hook(module, args, output):
            x = args[0]
            kind = _dense_kind(module)
            if hasattr(x, "batch_sizes"):  # a PackedSequence: batch_sizes[t] sequences reach frame t
                batch, time = int(x.batch_sizes[0]), len(x.batch_sizes)
            elif isinstance(module, (nn.LSTM, nn.GRU)) and not module.batch_first:
                time, batch = x.shape[:2]
            else:  # batch first, as SpeechBrain's LSTM/GRU and LiGRU_Layer (one layer)
                batch, time = x.shape[:2]
            layers = module.num_layers if isinstance(module, (nn.LSTM, nn.GRU)) else 1
            hidden, input_size, bidir = module.hidden_size, module.input_size, bool(module.bidirectional)
            frames = int(real_frames(self.lengths, batch, time, x.data.device).sum())
            entry = self._entry(name, kind, hidden)
            matrix, elementwise = dense_mults_per_frame(kind, input_size, hidden, layers, bidir)
            self._add_frames(entry, frames, (input_size, hidden, layers, bidir))
            entry.matrix_mults += matrix * frames
            entry.elementwise_mults += elementwise * frames

        return hook


@torch.no_grad()
def count_ops(model: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None = None) -> OpsReport:
    """Runs ``model(x)`` (or ``model(x, lengths=lengths)``) in eval mode and counts its recurrent layers.

    Every module's mode is restored afterwards, each to its own (a wrapper's flag says nothing
    about the modules inside it).

    Arguments
    ---------
    model : nn.Module
        An encoder (``SpikingRNN``, SpeechBrain ``LSTM``/``GRU``/``LiGRU``, ``CRDNN``...).
        ``lengths`` is passed only if its ``forward`` takes it.
    x : torch.Tensor
        Input batch (batch, time, features).
    lengths : torch.Tensor, optional
        Relative lengths (SpeechBrain convention); the real frames of every layer, whether or
        not ``model`` takes them (:func:`real_frames`).

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
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    counter = _Counter(model, lengths)
    try:
        if lengths is not None and "lengths" in inspect.signature(model.forward).parameters:
            model(x, lengths=lengths)
        else:
            model(x)
    finally:
        counter.close()
        for module, training in modes:
            module.training = training  # not model.train(...): that would give every child the model's flag
    frames = int(real_frames(lengths, x.shape[0], x.shape[1], x.device).sum())
    return OpsReport(utterances=x.shape[0], frames=frames, layers=list(counter.layers.values()))


@torch.no_grad()
def spike_trains(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Eval-mode spikes (time, hidden) of each spiking layer of ``model`` for the first sequence of ``x``.

    Example
    -------
    >>> trains = spike_trains(SpikingRNN(8, input_size=5, num_layers=2), torch.randn(1, 30, 5))
    >>> {name: tuple(s.shape) for name, s in trains.items()}
    {'stacks.0.0': (30, 8), 'stacks.0.1': (30, 8)}
    """
    captured: dict[str, torch.Tensor] = {}
    hooks = [
        module.register_forward_hook(lambda m, a, out, name=name: captured.__setitem__(name, out[0][0]))
        for name, module in model.named_modules()
        if isinstance(module, SpikingNeuron)
    ]
    was_training = model.training
    try:
        model.eval()(x[:1])
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return captured
