"""The neuron base class: input projection, batch norm, membrane, spike, and the reference time loop.

Subclasses (:mod:`~snn_asr.neurons.lif`, :mod:`~snn_asr.neurons.gated`,
:mod:`~snn_asr.neurons.recurrent`) give the synaptic current; the equations are listed in
:mod:`snn_asr.neurons`. :meth:`SpikingNeuron.forward` is the reference: one
:meth:`SpikingNeuron.step` per frame. Which implementation a :class:`~snn_asr.SpikingRNN`
runs (this loop or a fast path) is chosen in :mod:`snn_asr.dispatch`, not here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn

from snn_asr.neurons.normalization import MaskedBatchNorm
from snn_asr.neurons.quantizer import SpikeQuantizer
from snn_asr.primitives.linear import linear
from snn_asr.primitives.workspace import workspace_of


class NeuronState(NamedTuple):
    """Synaptic current ``I``, membrane potential ``V`` and last spike ``Y``, each (batch, hidden)."""

    current: torch.Tensor
    voltage: torch.Tensor
    spikes: torch.Tensor


Recurrence = Callable[..., tuple[torch.Tensor, NeuronState]]
"""A fast path's layer function, ``(layer, x, state, valid) -> (spikes, state)``."""


class SpikingNeuron(nn.Module):
    """Base class: input projection, batch norm, membrane and spike function.

    Subclasses set ``gates`` (the number of input projections) and implement
    :meth:`synaptic_current`.

    Arguments
    ---------
    input_size : int
        Features of the input ``X``.
    hidden_size : int
        Neurons in the layer.
    bits, threshold : int
        Spike resolution and firing threshold (see :class:`SpikeQuantizer`).
    scale_update : str
        When the running scale moves in training: ``"batch"`` or ``"frame"`` (see :class:`SpikeQuantizer`).
    unsigned, surrogate
        The spike's code and backward rule (see :class:`SpikeQuantizer`).
    detach_reset : bool
        Detach the reset ``- Y[n-1]`` from the graph (snnTorch's ``reset_mechanism`` option): the
        gradient then sees ``dV[n]/dV[n-1] = 1``, the membrane's true carry, instead of the
        straight-through ``1 - 1 = 0`` (:mod:`~snn_asr.neurons.quantizer`, "The gradient").
        Off by default: without that cancellation nothing bounds BPTT through the membrane.
        Measured on 2 x 32 layers, 4 x 50 frames (gradient norm of the last 10 frames' spikes):
        lif 1.2e4 -> 3.5e6, v1 438 -> 3.8e4, and v2 653 -> 6.5e15 (non-finite at 200
        frames: ``U`` closes the loop), so a one-epoch mini-TIMIT run of v2 with it ends in a
        non-finite loss.
    dropout : float
        Probability of dropping a neuron's current for a whole sequence.
    bias : bool
        Whether ``W`` has a bias (batch norm follows, so it is usually redundant).
    """

    gates = 1
    nonnegative = False
    """Whether the membrane never goes negative (then the unsigned spike code applies)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bits: int = 6,
        threshold: int = 3,
        dropout: float = 0.0,
        bias: bool = True,
        scale_update: str = "batch",
        unsigned: bool = False,
        surrogate: str = "straight_through",
        detach_reset: bool = False,
    ):
        super().__init__()
        if unsigned and not self.nonnegative:
            raise ValueError(
                f"{type(self).__name__}'s current can be negative, so its spikes need the signed code: "
                "use unsigned=False"
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.dropout = dropout
        self.detach_reset = detach_reset
        self.w = nn.Linear(input_size, self.gates * hidden_size, bias=bias)
        self.norm = MaskedBatchNorm(self.gates * hidden_size)
        self.quantizer = SpikeQuantizer(
            bits, threshold, scale_update=scale_update, unsigned=unsigned, surrogate=surrogate
        )
        self.build_recurrence()
        self.reset_parameters()

    def build_recurrence(self) -> None:
        """Creates the parameters of the recurrence proper (none in the base class)."""

    def reset_parameters(self) -> None:
        """Xavier-uniform ``W`` (as SpeechBrain's ``rnn_init`` does for input weights)."""
        nn.init.xavier_uniform_(self.w.weight)
        if self.w.bias is not None:
            nn.init.zeros_(self.w.bias)

    def initial_state(self, batch: int, like: torch.Tensor) -> NeuronState:
        """All-zero state for ``batch`` sequences, on ``like``'s device and dtype."""
        zeros = like.new_zeros(batch, self.hidden_size)
        return NeuronState(zeros, zeros, zeros)

    def drive(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """``BN(W X)`` for the whole sequence: (batch, time, in) -> (batch, time, gates*hidden)."""
        return self.norm(linear(x, self.w.weight, self.w.bias, workspace_of(self.w)), valid)

    def dropout_mask(self, batch: int, like: torch.Tensor) -> torch.Tensor | None:
        """Inverted-dropout mask ``m`` (batch, hidden), shared over time; ``None`` when off."""
        if not self.training or self.dropout == 0.0:
            return None
        keep = 1.0 - self.dropout
        return like.new_empty(batch, self.hidden_size).bernoulli_(keep) / keep

    def synaptic_current(
        self, drive: torch.Tensor, state: NeuronState, mask: torch.Tensor | None
    ) -> torch.Tensor:
        """``I[n]`` from this frame's drive (batch, gates*hidden) and the previous state."""
        raise NotImplementedError

    def step(
        self,
        drive: torch.Tensor,
        state: NeuronState,
        mask: torch.Tensor | None = None,
        valid: torch.Tensor | None = None,
        maxima: list[torch.Tensor] | None = None,
    ) -> NeuronState:
        """One frame of the recurrence; ``valid`` (batch,) bool keeps padded rows out of the scale.

        In training, the frame's ``max|V|`` over valid rows is appended to ``maxima`` where
        given, the batch's tally that :meth:`forward` folds into the running scale after the
        last frame (``scale_update="batch"``); else it is folded in at once, before firing.
        """
        current = self.synaptic_current(drive, state, mask)
        reset = state.spikes.detach() if self.detach_reset else state.spikes
        voltage = state.voltage + current - reset
        if self.training:
            frame = None if valid is None else valid.unsqueeze(1)  # (batch, 1): this frame alone
            top = self.quantizer.frame_maxima(voltage.unsqueeze(1), frame)
            if maxima is None:
                self.quantizer.update(top, frame)
            else:
                maxima.append(top)
        spikes = self.quantizer.fire(voltage)
        return NeuronState(current, voltage, spikes)

    def forward(
        self,
        x: torch.Tensor,
        state: NeuronState | None = None,
        valid: torch.Tensor | None = None,
        recurrence: Recurrence | None = None,
    ) -> tuple[torch.Tensor, NeuronState]:
        """Runs the layer over a sequence, one :meth:`step` per frame: the reference every fast path matches.

        A fast path runs in its place when :mod:`snn_asr.dispatch` passes one as ``recurrence``:
        the layer is still called as a module, so forward hooks (op counts, spike plots) see
        every implementation alike. This module imports no fast path.

        Arguments
        ---------
        x : torch.Tensor
            Input (batch, time, input_size).
        state : NeuronState, optional
            State to continue from; zeros when ``None``.
        valid : torch.Tensor, optional
            (batch, time) bool, False on padded frames: those frames output zero
            and leave the state untouched.
        recurrence : callable, optional
            ``recurrence(layer, x, state, valid)`` with this method's contract, run instead
            of the reference loop; ``None`` runs the reference.

        Returns
        -------
        spikes : torch.Tensor
            (batch, time, hidden_size).
        state : NeuronState
            The state after each sequence's last valid frame.
        """
        if recurrence is not None:
            return recurrence(self, x, state, valid)
        batch, time = x.shape[:2]
        if state is None:
            state = self.initial_state(batch, x)
        drive = self.drive(x, valid)
        mask = self.dropout_mask(batch, x)
        outputs = []
        maxima = None if self.quantizer.per_frame else []  # the tally of a once-per-batch update
        for n in range(time):
            frame_valid = None if valid is None else valid[:, n]
            new = self.step(drive[:, n], state, mask, frame_valid, maxima)
            if frame_valid is not None:
                keep = frame_valid.unsqueeze(1)
                new = NeuronState(*(torch.where(keep, a, b) for a, b in zip(new, state)))
                outputs.append(new.spikes * keep)
            else:
                outputs.append(new.spikes)
            state = new
        if maxima:  # training, scale_update="batch": M moves once, after the batch
            self.quantizer.update(torch.cat(maxima), valid)
        return torch.stack(outputs, dim=1), state

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, dropout={self.dropout}" + (
            ", detach_reset=True" if self.detach_reset else ""
        )
