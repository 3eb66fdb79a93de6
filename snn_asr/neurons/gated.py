"""The "v1" neuron: an input-dependent forget gate on the synaptic current."""

from __future__ import annotations

import torch

from snn_asr.neurons.base import NeuronState, SpikingNeuron


class GatedLIFNeuron(SpikingNeuron):
    """The "v1" neuron: LIF whose synaptic current has an input-dependent forget gate.

    Example
    -------
    >>> layer = GatedLIFNeuron(4, 3)
    >>> layer(torch.randn(2, 7, 4))[0].shape
    torch.Size([2, 7, 3])
    """

    gates = 2
    nonnegative = True  # I >= 0 (relu x a gate), and truncation keeps V - Y >= 0

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
