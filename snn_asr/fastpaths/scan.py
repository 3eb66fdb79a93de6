"""The recurrence as one ``scan`` over time: the form an exported graph (ONNX) carries.

A Python time loop, traced by ``torch.export``, is frozen at the example's length. Here each
frame runs the reference's own :meth:`~snn_asr.neurons.base.SpikingNeuron.step` inside
``torch._higher_order_ops.scan.scan`` (the scan that ``torch.export`` captures and
``torch.onnx`` writes as an ONNX ``Scan``: no public API offers it yet), so the graph takes any
number of frames, and the layer state goes in and comes out. Inference only (eval mode), on
whole sequences of one length (no padding mask). Run eagerly, torch compiles the scan's body
(as it does for every higher-order op), and the compiled body can round a membrane's sum in
the last bit otherwise than the loop: the tests hold the spikes equal to the reference's and
the state within float32 rounding (1e-5 relative).
"""

from __future__ import annotations

import torch
from torch._higher_order_ops.scan import scan

from snn_asr.neurons.base import NeuronState, SpikingNeuron

__all__ = ["scan_forward", "scan_supports"]


def scan_supports(layer: SpikingNeuron, valid: torch.Tensor | None) -> bool:
    """Whether :func:`scan_forward` runs ``layer``: eval mode and no padding mask."""
    return not layer.training and valid is None


def scan_forward(
    layer: SpikingNeuron,
    x: torch.Tensor,
    state: NeuronState | None = None,
    valid: torch.Tensor | None = None,
) -> tuple[torch.Tensor, NeuronState]:
    """The reference's contract (spikes (batch, time, hidden), final state) with the frames in a scan.

    Example
    -------
    >>> from snn_asr.neurons import RecurrentGatedLIFNeuron
    >>> layer = RecurrentGatedLIFNeuron(4, 3).eval()
    >>> x = torch.randn(2, 9, 4)
    >>> spikes, final = scan_forward(layer, x)
    >>> reference, last = layer(x)
    >>> close = all(torch.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in zip(final, last))
    >>> bool(torch.equal(spikes, reference)), close
    (True, True)
    """
    if not scan_supports(layer, valid):
        raise ValueError("the scan recurrence runs in eval mode on unpadded sequences (valid=None) only")
    if state is None:
        state = layer.initial_state(x.shape[0], x)

    def frame(carry: tuple[torch.Tensor, ...], drive: torch.Tensor):
        new = layer.step(drive, NeuronState(*carry))
        return tuple(new), new.spikes.clone()  # scan's outputs may not alias its carry

    carry = tuple(t.clone() for t in state)  # scan's carry may not alias (views of one hx, one zeros)
    final, spikes = scan(frame, carry, layer.drive(x), dim=1)
    return spikes, NeuronState(*final)
