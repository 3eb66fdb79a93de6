"""The one place that chooses how a spiking layer runs: the reference loop or a fast path.

The reference (:mod:`snn_asr.neurons`) holds the equations and knows no fast path; each fast
path (:mod:`snn_asr.fastpaths`) builds on the reference and is tested to agree with it. This
module sits above both and picks one:

- ``"reference"``: :meth:`SpikingNeuron.forward <snn_asr.neurons.base.SpikingNeuron.forward>`,
  one step per frame, autograd through every op;
- ``"fused"``: :func:`~snn_asr.fastpaths.fused.fused_forward`, the CPU recurrence with a
  hand-written BPTT (bit-identical forward);
- ``"auto"``: on CUDA the Triton recurrence where it applies
  (:func:`~snn_asr.fastpaths.triton_recurrence.triton_supports`: a stock neuron class, float32),
  on CPU the fused one (:func:`~snn_asr.fastpaths.fused.supports`: a stock neuron class,
  float32/64), the reference elsewhere;
- ``"triton"``: :func:`~snn_asr.fastpaths.triton_recurrence.triton_forward`, the GPU recurrence
  (Triton kernels, cuBLAS for ``U``, hand-written BPTT); ``"auto"`` picks it for CUDA tensors;
- ``"scan"``: :func:`~snn_asr.fastpaths.scan.scan_forward`, the frames in one ``scan`` (eval
  mode, no padding): what an exported graph (ONNX, :mod:`snn_asr.inference.onnx_export`) traces;
- event-driven streaming (:class:`~snn_asr.fastpaths.event_driven.EventDrivenRNN`: batch 1,
  eval mode, CPU) works on a whole encoder rather than a layer: :func:`event_driven_stream`.

A new fast path adds its name to :data:`IMPLEMENTATIONS`, its
``supports`` test to :func:`choose` and its call to :func:`run_layer`; nothing else changes.
"""

from __future__ import annotations

import torch
from torch import nn

from snn_asr.fastpaths.event_driven import EventDrivenRNN, event_driven_supports
from snn_asr.fastpaths.fused import fused_forward, supports
from snn_asr.fastpaths.native import compiled_loops
from snn_asr.fastpaths.scan import scan_forward
from snn_asr.fastpaths.triton_recurrence import triton_forward, triton_supports
from snn_asr.neurons.base import NeuronState, SpikingNeuron

IMPLEMENTATIONS = ("auto", "reference", "fused", "scan", "triton")
"""The names :func:`run_layer` (and ``SpikingRNN(implementation=...)``) accepts."""


def prepare(device: str | torch.device) -> None:
    """Makes ready, before the first frame, what the fast paths on ``device`` run.

    On CPU that is the compiled loops (:func:`~snn_asr.fastpaths.native.compiled_loops`: about
    30 s once per CPU, announced, then cached), so that no first call, and no timing of it,
    silently includes the build.
    """
    if torch.device(device).type == "cpu":
        compiled_loops()


def check_implementation(name: str) -> str:
    """``name`` when it is one of :data:`IMPLEMENTATIONS`, else a one-line ``ValueError``.

    Example
    -------
    >>> check_implementation("fused")
    'fused'
    """
    if name not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {name!r}")
    return name


def choose(layer: SpikingNeuron, x: torch.Tensor, implementation: str = "auto") -> str:
    """The implementation :func:`run_layer` uses for ``layer`` on ``x``: an :data:`IMPLEMENTATIONS` name.

    Example
    -------
    >>> from snn_asr.neurons import LIFNeuron
    >>> layer, x = LIFNeuron(3, 2), torch.zeros(1, 4, 3)
    >>> choose(layer, x), choose(layer, x, "reference"), choose(layer, x.half())
    ('fused', 'reference', 'reference')
    """
    check_implementation(implementation)
    if implementation == "auto":
        if x.device.type == "cuda" and triton_supports(layer, x):
            return "triton"
        return "fused" if supports(layer, x) else "reference"
    return implementation


def run_layer(
    layer: SpikingNeuron,
    x: torch.Tensor,
    state: NeuronState | None = None,
    valid: torch.Tensor | None = None,
    implementation: str = "auto",
) -> tuple[torch.Tensor, NeuronState]:
    """Runs ``layer`` over (batch, time, input_size) with the implementation :func:`choose` picks.

    The contract is the reference's (:meth:`SpikingNeuron.forward
    <snn_asr.neurons.base.SpikingNeuron.forward>`): spikes (batch, time, hidden) and the state
    after each sequence's last valid frame.

    Example
    -------
    >>> from snn_asr.neurons import RecurrentGatedLIFNeuron
    >>> layer, x = RecurrentGatedLIFNeuron(4, 3).eval(), torch.randn(2, 5, 4)
    >>> fused, reference = (run_layer(layer, x, implementation=name)[0] for name in ("fused", "reference"))
    >>> torch.equal(fused, reference)
    True
    """
    paths = {"fused": fused_forward, "scan": scan_forward, "triton": triton_forward}
    recurrence = paths.get(choose(layer, x, implementation))
    return layer(x, state, valid, recurrence=recurrence)  # a module call: forward hooks see every path


def event_driven_stream(encoder: nn.Module) -> EventDrivenRNN | None:
    """An event-driven streaming runner for ``encoder`` where one applies, else ``None``.

    It applies to a unidirectional ``SpikingRNN`` in eval mode, on CPU, made of stock neurons.

    Example
    -------
    >>> from snn_asr import SpikingRNN
    >>> type(event_driven_stream(SpikingRNN(8, input_size=5).eval())).__name__
    'EventDrivenRNN'
    >>> event_driven_stream(SpikingRNN(8, input_size=5).train()) is None
    True
    """
    return EventDrivenRNN(encoder) if event_driven_supports(encoder) else None
