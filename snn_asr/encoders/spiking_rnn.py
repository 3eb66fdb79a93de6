"""``SpikingRNN``: a multi-layer spiking recurrent encoder with SpeechBrain's RNN interface."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from snn_asr.dispatch import check_implementation, run_layer
from snn_asr.neurons import NEURONS, NeuronState, SpikeQuantizer


def valid_frames(lengths: torch.Tensor | None, batch: int, time: int, device) -> torch.Tensor | None:
    """(batch, time) bool mask of real frames from SpeechBrain's relative ``lengths``; ``None`` if none."""
    if lengths is None:
        return None
    frames = torch.round(lengths.to(device).float() * time).long().clamp(1, time)
    return torch.arange(time, device=device).unsqueeze(0) < frames.unsqueeze(1)


def reverse_valid(x: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Reverses each sequence of (batch, time, ...) within its own length; padding stays at the end."""
    time = x.shape[1]
    if valid is None:
        return x.flip(1)
    frames = valid.sum(1, keepdim=True)
    index = torch.arange(time, device=x.device).unsqueeze(0)
    source = torch.where(index < frames, frames - 1 - index, index)
    source = source.view(*source.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, source)


def per_layer(value: float | Sequence[float], num_layers: int, name: str, kind: type = int) -> list:
    """``value`` as ``kind`` for each of ``num_layers`` layers: one for all, or one each (a one-line
    error else).

    Example
    -------
    >>> per_layer(3, 2, "threshold"), per_layer([3, 5], 2, "threshold"), per_layer(8, 1, "weight", float)
    ([3, 3], [3, 5], [8.0])
    """
    if isinstance(value, (int, float)):
        return [kind(value)] * num_layers
    values = [kind(v) for v in value]
    if len(values) != num_layers:
        raise ValueError(f"{name} has {len(values)} values for {num_layers} layers: give one, or one a layer")
    return values


@dataclass
class SpikingRNNStreamingContext:
    """SpeechBrain's streaming context for :class:`SpikingRNN`: the layers' state after the last chunk."""

    state: torch.Tensor | None = None


class SpikingRNN(nn.Module):
    """Multi-layer spiking recurrent encoder (Ponghiran & Roy, AAAI 2022).

    A drop-in for ``speechbrain.nnet.RNN.LSTM``: same constructor keywords, same
    ``forward(x, hx=None, lengths=None)`` returning ``(output, hidden)``, and 4-D
    inputs flattened the same way. Each layer is a spiking neuron from
    :mod:`snn_asr.neurons` whose multi-bit spikes feed the next layer; bidirectional
    layers run both directions, as torch's ``LSTM(bidirectional=True)`` does, and the two
    outputs, concatenated, feed the next layer. The neurons are ``stacks[direction][layer]``.

    Arguments
    ---------
    hidden_size : int
        Neurons per layer (and direction).
    input_shape : sequence of int, optional
        Expected input shape, e.g. ``[batch, time, features]``; gives the input size.
    input_size : int, optional
        Input features, when ``input_shape`` is not given.
    num_layers : int
        Stacked layers.
    bias : bool
        Bias on the input projections.
    dropout : float
        Per-sequence dropout on each layer's synaptic current.
    re_init : bool
        Xavier input weights and orthogonal recurrent weights (always done here;
        kept for SpeechBrain compatibility).
    bidirectional : bool
        Each layer also runs over the reversed sequence (within each sequence's length);
        the two directions' spikes, concatenated, feed the next layer and form the output.
    neuron : str
        ``"v2"`` (gated + recurrent, default), ``"v1"`` (gated) or ``"lif"``.
    bits : int or sequence of int
        Spike resolution; ``bits=1`` gives binary spikes (see :mod:`snn_asr.neurons.quantizer`).
        A sequence gives each layer its own (both directions alike).
    threshold : int or sequence of int
        Quantization levels that do not fire; per layer as ``bits``.
    input_quant_bits : int, optional
        Quantize the input features to this many bits (threshold 0), as in the paper.
    implementation : str
        The layers' recurrence: ``"auto"`` (Triton on CUDA, fused on CPU, where they apply),
        ``"fused"``, ``"triton"``, ``"scan"`` or ``"reference"``; settable later.
        :mod:`snn_asr.dispatch` makes the choice.
    scale_update : str
        When the running scales ``M`` move in training: ``"batch"`` (default: once per batch,
        over its valid frames) or ``"frame"`` (the paper's: every frame); see
        :class:`~snn_asr.neurons.SpikeQuantizer`. Eval mode is the same for both.
    unsigned : bool
        Unsigned spike codes (v1 and v2 only): twice the levels at the same bits
        (:mod:`snn_asr.neurons.quantizer`).
    surrogate : str
        The spike's backward rule: ``"straight_through"`` (the paper's) or ``"firing"`` (no
        gradient through silent neurons).
    detach_reset : bool
        Detach the membrane's reset ``- Y[n-1]`` from the graph
        (:class:`~snn_asr.neurons.SpikingNeuron`).

    Example
    -------
    >>> rnn = SpikingRNN(hidden_size=8, input_shape=[4, 10, 20], num_layers=2)
    >>> out, hidden = rnn(torch.randn(4, 10, 20))
    >>> out.shape, hidden.shape
    (torch.Size([4, 10, 8]), torch.Size([2, 3, 4, 8]))
    >>> out2, _ = rnn(torch.randn(4, 10, 20), hx=hidden)  # continue the stream
    >>> bi = SpikingRNN(hidden_size=8, input_size=5, num_layers=2, bidirectional=True)
    >>> [layer.input_size for layer in bi.layers]  # layer 2 reads both directions of layer 1
    [5, 5, 16, 16]
    """

    def __init__(
        self,
        hidden_size: int,
        input_shape: Sequence[int] | None = None,
        input_size: int | None = None,
        num_layers: int = 1,
        bias: bool = True,
        dropout: float = 0.0,
        re_init: bool = True,
        bidirectional: bool = False,
        neuron: str = "v2",
        bits: int = 6,
        threshold: int = 3,
        input_quant_bits: int | None = None,
        implementation: str = "auto",
        scale_update: str = "batch",
        unsigned: bool = False,
        surrogate: str = "straight_through",
        detach_reset: bool = False,
    ):
        super().__init__()
        if input_shape is None and input_size is None:
            raise ValueError("SpikingRNN needs input_shape or input_size")
        if input_size is None:
            input_size = int(math.prod(input_shape[2:]))
        if neuron not in NEURONS:
            raise ValueError(f"neuron must be one of {sorted(NEURONS)}, got {neuron!r}")
        self.hidden_size = hidden_size
        self.input_size = input_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.neuron = neuron
        self.bits = bits
        self.threshold = threshold
        self.scale_update = scale_update
        cls = NEURONS[neuron]
        directions = 2 if bidirectional else 1
        layer_bits = per_layer(bits, num_layers, "bits")
        layer_thresholds = per_layer(threshold, num_layers, "threshold")
        self.stacks = nn.ModuleList(
            nn.ModuleList(
                cls(
                    input_size if i == 0 else hidden_size * directions,
                    hidden_size,
                    bits=layer_bits[i],
                    threshold=layer_thresholds[i],
                    dropout=dropout,
                    bias=bias,
                    scale_update=scale_update,
                    unsigned=unsigned,
                    surrogate=surrogate,
                    detach_reset=detach_reset,
                )
                for i in range(num_layers)
            )
            for _ in range(directions)
        )
        self.input_quantizer = None
        if input_quant_bits:
            self.input_quantizer = SpikeQuantizer(input_quant_bits, threshold=0, scale_update=scale_update)
        self.implementation = implementation

    @property
    def implementation(self) -> str:
        """Which recurrence the layers run: one of :data:`snn_asr.dispatch.IMPLEMENTATIONS`."""
        return self._implementation

    @implementation.setter
    def implementation(self, value: str) -> None:
        self._implementation = check_implementation(value)

    @property
    def layers(self) -> list[nn.Module]:
        """Every neuron layer in the order of the state ``hidden``: layer-major, direction-minor."""
        return [layer for depth in zip(*self.stacks) for layer in depth]

    def forward(
        self,
        x: torch.Tensor,
        hx: torch.Tensor | None = None,
        lengths: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encodes a batch.

        Arguments
        ---------
        x : torch.Tensor
            (batch, time, features) or (batch, time, channels, features).
        hx : torch.Tensor, optional
            State from a previous call, (layers * directions, 3, batch, hidden), holding
            current, voltage and last spikes, in the order of :attr:`layers` (as torch's
            ``LSTM``: layer-major, direction-minor); continues the sequence exactly.
        lengths : torch.Tensor, optional
            Relative lengths in [0, 1] (SpeechBrain's convention).

        Returns
        -------
        output : torch.Tensor
            Spikes of the last layer, (batch, time, hidden * directions).
        hidden : torch.Tensor
            The state after each sequence's last valid frame, shaped as ``hx``.
        """
        if x.dim() == 4:
            x = x.reshape(x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
        if x.dim() != 3:
            raise ValueError(f"SpikingRNN expects (batch, time, features), got shape {tuple(x.shape)}")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"SpikingRNN built for {self.input_size} input features, got {x.shape[-1]}")
        valid = valid_frames(lengths, x.shape[0], x.shape[1], x.device)
        if self.input_quantizer is not None:
            x = self.input_quantizer(x, valid)
        states = iter(hx.unbind(0) if hx is not None else [None] * len(self.layers))
        h, finals = x, []
        for depth in zip(*self.stacks):  # one layer, each direction in turn
            outputs = []
            for direction, layer in enumerate(depth):
                state = next(states)
                state = None if state is None else NeuronState(*state.unbind(0))
                inputs = reverse_valid(h, valid) if direction else h  # backward: reversed in time
                out, final = run_layer(layer, inputs, state, valid, self._implementation)
                outputs.append(reverse_valid(out, valid) if direction else out)
                finals.append(torch.stack(final))
            h = torch.cat(outputs, dim=-1) if self.bidirectional else outputs[0]  # cat of one would copy
        return h, torch.stack(finals)

    def make_streaming_context(self, config: object = None) -> SpikingRNNStreamingContext:
        """A fresh context for :meth:`forward_streaming` (SpeechBrain's ``StreamingASR`` contract).

        ``config`` (a ``DynChunkTrainConfig``) changes nothing: a causal encoder's context is its
        state, whatever the chunk size.
        """
        if self.bidirectional:
            raise ValueError("a bidirectional SpikingRNN needs the whole sequence: it cannot stream")
        return SpikingRNNStreamingContext()

    def forward_streaming(self, x: torch.Tensor, context: SpikingRNNStreamingContext) -> torch.Tensor:
        """Encodes the next chunk (batch, time, features) from ``context``'s state, which it updates.

        Example
        -------
        >>> enc = SpikingRNN(8, input_size=4).eval()
        >>> x, context = torch.randn(1, 30, 4), enc.make_streaming_context()
        >>> chunks = torch.cat([enc.forward_streaming(x[:, i : i + 10], context) for i in (0, 10, 20)], 1)
        >>> bool(torch.equal(chunks, enc(x)[0]))
        True
        """
        if x.shape[1] == 0:  # a chunk too short to bring out a frame (StreamingASR's feature extractor)
            directions = 2 if self.bidirectional else 1
            return x.new_zeros(x.shape[0], 0, self.hidden_size * directions)
        out, context.state = self(x, hx=context.state)
        return out
