"""Reference implementation of the spiking neurons: one layer each.

These are the equations (Ponghiran & Roy, AAAI 2022), written once. Per layer, at
frame ``n``, with input ``X``, a dropout mask ``m`` drawn once per sequence,
batch norm ``BN`` over batch x time and the multi-bit spike ``Q``
(:mod:`snn_asr.quantizer`):

- ``lif``: ``I[n] = tau * I[n-1] + m * BN(W X[n])``, ``tau`` per neuron, clamped to [0, 1];
- ``v1``: ``F = sigmoid(BN_f(W_f X[n]))``, ``C = relu(BN_c(W_c X[n]))``,
  ``I[n] = F * I[n-1] + (1 - F) * C * m``;
- ``v2``: as ``v1`` with ``+ U_f Y[n-1]/M`` inside the sigmoid and ``+ U_c Y[n-1]/M``
  inside the relu (``U`` without bias, initialised orthogonal times
  :data:`RECURRENT_GAIN`; ``M`` is the quantizer's running scale, see below);
- all: ``V[n] = V[n-1] + I[n] - Y[n-1]`` and ``Y[n] = Q(V[n])``.

**Why ``U`` sees ``Y/M``.** ``Y = q M / n`` carries the running scale ``M``, an EMA of
``max|V|``. Fed back as ``U Y``, it closes a loop in training: a larger ``M`` gives
larger spikes, a larger ``relu(... + U_c Y)`` current, a larger ``V`` and so a larger
``M``. On multi-second utterances that loop ran away (``M`` from 7 to 4e5 within 35
Adam steps, then non-finite gradients), whatever the learning rate. ``Y/M = q/n`` is
the spike level in [-1, 1], independent of ``M``, like an LSTM's ``h``. At inference
``M`` is frozen, so this is exactly the paper's ``U Y`` with ``U`` read as ``U/M``: the
same function class, the same multiplications (the event-driven path folds ``1/M``
into ``U``). Dividing by ``M`` also weakens ``U``'s drive at initialisation by ``M``
(about 3 in trained layers), so ``U`` starts at :data:`RECURRENT_GAIN` times an
orthogonal matrix.

The input projections ``W X`` have no recurrence, so they are computed for the
whole sequence at once (:meth:`SpikingNeuron.drive`); the time loop
(:meth:`SpikingNeuron.step`) holds only the recurrence. Fast paths elsewhere
must agree with this code.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .linear import linear
from .normalization import MaskedBatchNorm
from .quantizer import SpikeQuantizer
from .workspace import workspace_of


class NeuronState(NamedTuple):
    """Synaptic current ``I``, membrane potential ``V`` and last spike ``Y``, each (batch, hidden)."""

    current: torch.Tensor
    voltage: torch.Tensor
    spikes: torch.Tensor


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
    dropout : float
        Probability of dropping a neuron's current for a whole sequence.
    bias : bool
        Whether ``W`` has a bias (batch norm follows, so it is usually redundant).
    """

    gates = 1
    implementation = "auto"
    """Which recurrence :meth:`forward` runs: one of ``IMPLEMENTATIONS``."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bits: int = 6,
        threshold: int = 3,
        dropout: float = 0.0,
        bias: bool = True,
    ):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.dropout = dropout
        self.w = nn.Linear(input_size, self.gates * hidden_size, bias=bias)
        self.norm = MaskedBatchNorm(self.gates * hidden_size)
        self.quantizer = SpikeQuantizer(bits, threshold)
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
    ) -> NeuronState:
        """One frame of the recurrence; ``valid`` (batch,) bool keeps padded rows out of the scale."""
        current = self.synaptic_current(drive, state, mask)
        voltage = state.voltage + current - state.spikes
        if self.training:
            self.quantizer.update(voltage if valid is None else voltage[valid])
        spikes = self.quantizer.fire(voltage)
        return NeuronState(current, voltage, spikes)

    def forward(
        self,
        x: torch.Tensor,
        state: NeuronState | None = None,
        valid: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, NeuronState]:
        """Runs the layer over a sequence: :meth:`reference_forward`'s contract and results.

        Dispatches on ``self.implementation``: ``"reference"`` runs the loop of
        :meth:`reference_forward`, ``"fused"`` the fused recurrence of
        :mod:`snn_asr.fused` (bit-identical forward, hand-written backward) and
        ``"auto"`` the fused one where it applies (CPU, float32/64, a stock neuron
        class), the reference elsewhere.
        """
        from .fused import fused_forward, supports  # fused builds on this module

        if self.implementation == "fused" or (self.implementation == "auto" and supports(self, x)):
            return fused_forward(self, x, state, valid)
        return self.reference_forward(x, state, valid)

    def reference_forward(
        self,
        x: torch.Tensor,
        state: NeuronState | None = None,
        valid: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, NeuronState]:
        """Runs the layer over a sequence, one :meth:`step` per frame (the reference).

        Arguments
        ---------
        x : torch.Tensor
            Input (batch, time, input_size).
        state : NeuronState, optional
            State to continue from; zeros when ``None``.
        valid : torch.Tensor, optional
            (batch, time) bool, False on padded frames: those frames output zero
            and leave the state untouched.

        Returns
        -------
        spikes : torch.Tensor
            (batch, time, hidden_size).
        state : NeuronState
            The state after each sequence's last valid frame.
        """
        batch, time = x.shape[:2]
        if state is None:
            state = self.initial_state(batch, x)
        drive = self.drive(x, valid)
        mask = self.dropout_mask(batch, x)
        outputs = []
        for n in range(time):
            frame_valid = None if valid is None else valid[:, n]
            new = self.step(drive[:, n], state, mask, frame_valid)
            if frame_valid is not None:
                keep = frame_valid.unsqueeze(1)
                new = NeuronState(*(torch.where(keep, a, b) for a, b in zip(new, state)))
                outputs.append(new.spikes * keep)
            else:
                outputs.append(new.spikes)
            state = new
        return torch.stack(outputs, dim=1), state

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, dropout={self.dropout}"


class LIFNeuron(SpikingNeuron):
    """Leaky integrate-and-fire with a learnable leak ``tau`` per neuron (the paper's baseline).

    Example
    -------
    >>> layer = LIFNeuron(4, 3)
    >>> y, state = layer(torch.randn(2, 7, 4))
    >>> y.shape, state.voltage.shape
    (torch.Size([2, 7, 3]), torch.Size([2, 3]))
    """

    gates = 1

    def build_recurrence(self) -> None:
        self.tau = nn.Parameter(torch.empty(self.hidden_size))

    def reset_parameters(self) -> None:
        super().reset_parameters()
        with torch.no_grad():
            self.tau.uniform_(0.8, 1.0)

    def leak(self) -> torch.Tensor:
        """``tau`` clamped to [0, 1] (the value the equations use)."""
        return self.tau.clamp(0.0, 1.0)

    def synaptic_current(self, drive, state, mask):
        inject = drive if mask is None else drive * mask
        return self.leak() * state.current + inject


class GatedLIFNeuron(SpikingNeuron):
    """The "v1" neuron: LIF whose synaptic current has an input-dependent forget gate.

    Example
    -------
    >>> layer = GatedLIFNeuron(4, 3)
    >>> layer(torch.randn(2, 7, 4))[0].shape
    torch.Size([2, 7, 3])
    """

    gates = 2

    def gate_inputs(self, drive: torch.Tensor, state: NeuronState) -> torch.Tensor:
        """Pre-activations of the forget gate and candidate current (batch, 2*hidden)."""
        return drive

    def synaptic_current(self, drive, state, mask):
        forget, candidate = self.gate_inputs(drive, state).chunk(2, dim=-1)
        forget = torch.sigmoid(forget)
        candidate = torch.relu(candidate)
        if mask is not None:
            candidate = candidate * mask
        return forget * state.current + (1.0 - forget) * candidate


class RecurrentGatedLIFNeuron(GatedLIFNeuron):
    """The "v2" neuron (the proposed model): v1 plus recurrent weights ``U`` on the layer's own last spikes.

    ``U`` acts on the spike levels ``Y[n-1] / M`` (see the module docstring for why).

    Example
    -------
    >>> layer = RecurrentGatedLIFNeuron(4, 3)
    >>> layer.u.weight.shape
    torch.Size([6, 3])
    """

    def build_recurrence(self) -> None:
        self.u = nn.Linear(self.hidden_size, 2 * self.hidden_size, bias=False)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        with torch.no_grad():
            for block in self.u.weight.split(self.hidden_size, dim=0):
                nn.init.orthogonal_(block, gain=RECURRENT_GAIN)

    def gate_inputs(self, drive, state):
        return drive + linear(state.spikes / self.quantizer.scale, self.u.weight)


RECURRENT_GAIN = 3.0
"""Initial gain of v2's orthogonal ``U``. ``U`` sees spike levels ``Y/M`` in [-1, 1]; gain 3 gives
it the drive that ``U Y`` had at a typical running scale ``M`` of 3. On
``benchmarks/long_memory.py --steps 250 --iters 600 --forget-bias 3`` (recall over 250 frames,
chance 0.25) v2 reached accuracy 0.293 with gain 1, 1.000 with gain 3 and 0.992 with gain 6."""
IMPLEMENTATIONS = ("auto", "reference", "fused")
NEURONS = {"lif": LIFNeuron, "v1": GatedLIFNeuron, "v2": RecurrentGatedLIFNeuron}
