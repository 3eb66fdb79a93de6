"""Event-driven streaming inference of a trained :class:`~snn_asr.SpikingRNN`, batch 1.

In eval mode batch norm is an affine map, so it folds into the input weights:
``BN(W x + b) = W' x + b'``. A frame then costs, per layer, one row of ``W'^T``
per non-zero input and (``v2``) one row of ``U^T`` per non-zero previous spike,
gathered and accumulated: work follows the spike count, not the layer size (``v2``'s
``U`` sees spikes in units of the frozen scale ``M``, so ``1/M`` is folded into ``U`` too).
The rows hold each neuron's gates side by side (columns ``h * gates + g``). The gates and
the spike function follow the reference equations of :mod:`snn_asr.neurons` (the
quantizer's float ops are shared with :mod:`snn_asr.fastpaths.fused`). Whether a model runs
here is decided in :mod:`snn_asr.dispatch`.

The frame loop runs compiled (``csrc/event_driven.cpp``, built with the fused recurrence's
loops by :mod:`snn_asr.fastpaths.native`), each frame's neurons split over torch's threads: reading
the rows is the cost, and one core's cache bandwidth does not serve them fast. Where the
C++ loops are not built, the ``numba`` kernel :func:`_run_layer` runs, bit for bit the same
(``tests/test_event_driven.py`` runs both).

Accuracy: the sums run in a different order than the dense reference's matmuls
(and the folded weights round differently), so membrane potentials differ by float
rounding. A model in float64 matches the dense reference to ~1e-12; in float32,
potentials match to ~1e-5 relative and a spike can change by one quantum where a
potential lies within that of a quantization boundary (``tests/test_event_driven.py``).
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import nn

from snn_asr.fastpaths.fused import _ONE, _SCALE, _ZERO, KINDS, LIF, V2, _constants, _quantize
from snn_asr.fastpaths.native import compiled_loops
from snn_asr.neurons import SpikingNeuron
from snn_asr.neurons.quantizer import SpikeQuantizer


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _run_layer(kind, bits, p, x, wt, bias, ut, leak, i, v, y, z, out, events):
    """Frames ``x`` (time, in) through one layer from state ``(i, v, y)`` (updated); spikes to ``out``.

    ``wt``, ``bias``, ``ut`` and the scratch ``z`` (hidden*gates,) are gate-interleaved;
    ``events[0]`` counts the non-zero inputs and previous spikes gathered.
    """
    hidden = v.shape[0]
    width = z.shape[0]
    for n in range(x.shape[0]):
        z[:] = bias
        for j in range(x.shape[1]):
            xj = x[n, j]
            if xj != p[_ZERO]:
                events[0] += 1
                for k in range(width):
                    z[k] += xj * wt[j, k]
        if kind == V2:
            for j in range(hidden):
                yj = y[j]
                if yj != p[_ZERO]:
                    events[0] += 1
                    for k in range(width):
                        z[k] += yj * ut[j, k]
        for h in range(hidden):
            if kind == LIF:
                i[h] = leak[h] * i[h] + z[h]
            else:  # gates interleaved: forget at 2h, input at 2h + 1
                f = p[_ONE] / (p[_ONE] + np.exp(-z[2 * h]))
                i[h] = f * i[h] + (p[_ONE] - f) * max(z[2 * h + 1], p[_ZERO])
            v[h] = v[h] + i[h] - y[h]
        _quantize(v, p[_SCALE], bits, p, y)
        out[n] = y


class EventDrivenLayer:
    """One spiking layer with batch norm folded into its weights; runs frames one sequence at a time.

    Arguments
    ---------
    neuron : SpikingNeuron
        A stock ``lif``, ``v1`` or ``v2`` layer, in eval mode.

    Example
    -------
    >>> from snn_asr.neurons import RecurrentGatedLIFNeuron
    >>> layer = EventDrivenLayer(RecurrentGatedLIFNeuron(4, 3).eval())
    >>> layer(np.ones((5, 4), dtype=np.float32)).shape
    (5, 3)
    """

    def __init__(self, neuron: SpikingNeuron):
        if neuron.training:
            raise ValueError("EventDrivenLayer needs a layer in eval mode (batch norm folds only then)")
        if type(neuron) not in KINDS:
            raise TypeError(f"no event-driven path for {type(neuron).__name__}")
        self.kind = KINDS[type(neuron)]
        self.bits = neuron.quantizer.bits
        self.hidden_size = neuron.hidden_size
        dtype = neuron.quantizer.ema.dtype
        self.dtype = torch.empty(0, dtype=dtype).numpy().dtype
        self.p = _constants(neuron.quantizer, per_frame=False, dtype=dtype)
        with torch.no_grad():
            w, bias = _fold(neuron)
            gates = w.shape[0] // self.hidden_size
            ut = (
                _interleave(neuron.u.weight.t() / neuron.quantizer.scale, gates)
                if self.kind == V2
                else w.new_zeros(0, 0)
            )
            leak = neuron.leak() if self.kind == LIF else w.new_zeros(0)
            wt, bias = _interleave(w.t(), gates), _interleave(bias[None], gates)
            self.wt, self.bias, self.ut, self.leak = (
                t.contiguous().to("cpu", dtype).numpy() for t in (wt, bias[0], ut, leak)
            )
        self.z = np.empty(self.bias.shape[0], dtype=self.dtype)
        self.events = np.zeros(1, dtype=np.int64)
        # the same memory as torch tensors, for the compiled kernel
        self._weights = [torch.from_numpy(a) for a in (self.p, self.wt, self.bias, self.ut, self.leak)]
        self._scratch = torch.from_numpy(self.z), torch.from_numpy(self.events)
        self.reset()

    def reset(self) -> None:
        """Zero state: current, voltage and last spikes, each (hidden,)."""
        self.current, self.voltage, self.spikes = (np.zeros(self.hidden_size, self.dtype) for _ in range(3))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Spikes (time, hidden) for inputs ``x`` (time, in), continuing from and updating the state."""
        out = np.empty((x.shape[0], self.hidden_size), dtype=self.dtype)
        x = np.ascontiguousarray(x, dtype=self.dtype)
        compiled = compiled_loops()
        if compiled is None:
            _run_layer(
                self.kind, self.bits, self.p, x, self.wt, self.bias, self.ut, self.leak,
                self.current, self.voltage, self.spikes, self.z, out, self.events,
            )  # fmt: skip
            return out
        p, wt, bias, ut, leak = self._weights
        z, events = self._scratch
        state = (torch.from_numpy(a) for a in (self.current, self.voltage, self.spikes))
        x_t, out_t = torch.from_numpy(x), torch.from_numpy(out)
        compiled.event_layer(self.kind, self.bits, p, x_t, wt, bias, ut, leak, *state, z, out_t, events)
        return out


def _interleave(t: torch.Tensor, gates: int) -> torch.Tensor:
    """Columns of ``t`` (rows, gates*hidden), gate-major, reordered neuron-major: ``h * gates + g``."""
    return t.reshape(t.shape[0], gates, t.shape[1] // gates).transpose(1, 2).reshape(t.shape[0], -1)


def _fold(neuron: SpikingNeuron) -> tuple[torch.Tensor, torch.Tensor]:
    """``(W', b')`` with ``W' x + b' = BN(W x + b)`` in eval mode, computed in float64."""
    norm = neuron.norm
    w = neuron.w.weight.double()
    bias = neuron.w.bias.double() if neuron.w.bias is not None else w.new_zeros(w.shape[0])
    gain = torch.rsqrt(norm.running_var.double() + norm.eps)
    shift = -norm.running_mean.double() * gain
    if norm.affine:
        gain, shift = gain * norm.weight.double(), shift * norm.weight.double() + norm.bias.double()
    return w * gain[:, None], bias * gain + shift


def event_driven_supports(rnn: nn.Module) -> bool:
    """Whether ``rnn`` streams event-driven: a one-direction, eval-mode CPU ``SpikingRNN`` of stock neurons.

    Example
    -------
    >>> from snn_asr import SpikingRNN
    >>> event_driven_supports(SpikingRNN(8, input_size=5).eval())
    True
    """
    stacks = getattr(rnn, "stacks", None)  # a SpikingRNN (not imported: the encoders build on this package)
    return (
        stacks is not None
        and hasattr(rnn, "input_quantizer")
        and not rnn.bidirectional
        and not rnn.training
        and all(type(layer) in KINDS and layer.w.weight.device.type == "cpu" for layer in stacks[0])
    )


class EventDrivenRNN:
    """Streaming, event-driven inference of a unidirectional :class:`SpikingRNN` for one utterance.

    Frames can be fed one at a time or in chunks of any length; the state carries
    over, so the outputs do not depend on the chunking. The state converts to and
    from ``SpikingRNN``'s ``hidden`` layout, (layers, 3, 1, hidden).

    Arguments
    ---------
    rnn : SpikingRNN
        A trained encoder in eval mode (``rnn.eval()``), unidirectional.

    Example
    -------
    >>> from snn_asr import SpikingRNN
    >>> rnn = SpikingRNN(8, input_size=5, num_layers=2).eval()
    >>> stream = EventDrivenRNN(rnn)
    >>> x = torch.randn(6, 5)
    >>> y = torch.cat([stream(x[:2]), stream(x[2:])])
    >>> y.shape, stream.hidden().shape
    (torch.Size([6, 8]), torch.Size([2, 3, 1, 8]))
    >>> dense, _ = rnn(x[None])
    >>> bool((dense[0] - y).abs().max() < 1e-4)
    True
    """

    def __init__(self, rnn: nn.Module):
        if rnn.bidirectional:
            raise ValueError("a bidirectional encoder needs the whole sequence: no streaming")
        if rnn.training:
            raise ValueError("EventDrivenRNN needs the encoder in eval mode")
        self.layers = [EventDrivenLayer(layer) for layer in rnn.stacks[0]]
        quantizer: SpikeQuantizer | None = rnn.input_quantizer
        self.input_bits = quantizer.bits if quantizer is not None else 0
        if quantizer is not None:
            self.input_p = _constants(quantizer, per_frame=False, dtype=quantizer.ema.dtype)

    def reset(self) -> None:
        """Starts a new utterance: zero state everywhere."""
        for layer in self.layers:
            layer.reset()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes of the last layer (time, hidden) for frames ``x`` (time, features); carries the state."""
        h = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=self.layers[0].dtype)
        if self.input_bits:
            h = h.copy()
            for frame in h:
                _quantize(frame, self.input_p[_SCALE], self.input_bits, self.input_p, frame)
        for layer in self.layers:
            h = layer(h)
        return torch.from_numpy(h)

    def hidden(self) -> torch.Tensor:
        """The state as ``SpikingRNN`` returns it: (layers, 3, 1, hidden), current, voltage, spikes."""
        return torch.stack(
            [torch.from_numpy(np.stack([n.current, n.voltage, n.spikes]))[:, None] for n in self.layers]
        )

    def load_hidden(self, hidden: torch.Tensor) -> None:
        """Continues from a ``SpikingRNN`` state (layers, 3, 1, hidden), e.g. one returned by ``rnn(x)``."""
        for layer, state in zip(self.layers, hidden.detach()[:, :, 0]):
            layer.current, layer.voltage, layer.spikes = (s.cpu().numpy().astype(layer.dtype) for s in state)
