"""The spiking neurons, the reference implementation: one layer each, one neuron to a module.

These are the equations (Ponghiran & Roy, AAAI 2022), written once. Per layer, at
frame ``n``, with input ``X``, a dropout mask ``m`` drawn once per sequence,
batch norm ``BN`` over batch x time and the multi-bit spike ``Q``
(:mod:`snn_asr.neurons.quantizer`):

- ``lif``: ``I[n] = tau * I[n-1] + m * BN(W X[n])``, ``tau`` per neuron, clamped to [0, 1];
- ``v1``: ``F = sigmoid(BN_f(W_f X[n]))``, ``C = relu(BN_c(W_c X[n]))``,
  ``I[n] = F * I[n-1] + (1 - F) * C * m``;
- ``v2``: as ``v1`` with ``+ U_f Y[n-1]/M`` inside the sigmoid and ``+ U_c Y[n-1]/M``
  inside the relu (``U`` without bias, initialised orthogonal times
  :data:`RECURRENT_GAIN`; ``M`` is the quantizer's running scale, see below);
- all: ``V[n] = V[n-1] + I[n] - Y[n-1]`` and ``Y[n] = Q(V[n])``.

**Sparsity controls** (off by default; ``README.md``, "Sparsity", has their measurements):
``Q``'s threshold and bits per layer; the unsigned code for v1/v2 (``unsigned``: their ``V`` is
never negative, so every level carries a magnitude); the spike's backward rule (``surrogate``:
the paper's straight-through, or ``"firing"``, no gradient through silent neurons); a detached
reset (``detach_reset``: ``- sg(Y[n-1])``); and, in the recipes' loss, a spike-rate penalty
(:mod:`snn_asr.recipes.sparsity`). The first three are in :mod:`~snn_asr.neurons.quantizer`.

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
whole sequence at once (:meth:`~snn_asr.neurons.base.SpikingNeuron.drive`); the time loop
(:meth:`~snn_asr.neurons.base.SpikingNeuron.step`) holds only the recurrence. The fast paths
(:mod:`snn_asr.fastpaths`) must agree with this code; nothing here imports them.

Modules: :mod:`~snn_asr.neurons.quantizer` (the multi-bit spike ``Q``),
:mod:`~snn_asr.neurons.normalization` (``BN`` over valid frames),
:mod:`~snn_asr.neurons.base` (state, membrane, the reference loop), and one per neuron:
:mod:`~snn_asr.neurons.lif`, :mod:`~snn_asr.neurons.gated` (v1),
:mod:`~snn_asr.neurons.recurrent` (v2).
"""

from snn_asr.neurons.base import NeuronState, SpikingNeuron
from snn_asr.neurons.gated import GatedLIFNeuron
from snn_asr.neurons.lif import LIFNeuron
from snn_asr.neurons.normalization import MaskedBatchNorm
from snn_asr.neurons.quantizer import SpikeQuantizer
from snn_asr.neurons.recurrent import RECURRENT_GAIN, RecurrentGatedLIFNeuron

NEURONS = {"lif": LIFNeuron, "v1": GatedLIFNeuron, "v2": RecurrentGatedLIFNeuron}
"""The neuron classes by the name ``SpikingRNN(neuron=...)`` takes."""

__all__ = [
    "NEURONS",
    "RECURRENT_GAIN",
    "GatedLIFNeuron",
    "LIFNeuron",
    "MaskedBatchNorm",
    "NeuronState",
    "RecurrentGatedLIFNeuron",
    "SpikeQuantizer",
    "SpikingNeuron",
]
