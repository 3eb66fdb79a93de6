"""The LIF neuron: a learnable leak on the synaptic current (the paper's baseline)."""

from __future__ import annotations

import torch
from torch import nn

from snn_asr.neurons.base import SpikingNeuron


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
