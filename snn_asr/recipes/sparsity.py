"""The spike-rate penalty: a loss term that makes a spiking encoder's spikes sparse, and its rates.

A layer's **spike rate** is the fraction of its valid neuron-frames that fire (``Y != 0``): what
the event-driven path's multiplications scale with (:mod:`snn_asr.ops`). It counts, so it has no
gradient; the penalty uses the layer's **activity** instead, the mean spike level ``|Y| / M``
(in [0, 1): ``|q| / n``) over valid neuron-frames, whose straight-through gradient lowers the
membranes that fire. Per training batch::

    loss += sum over layers l with rate_l > target_l of weight_l * activity_l

so ``target`` (default 0: always on) leaves a layer alone once it is as sparse as asked; weight and
target are one value for every layer, or one per layer. ``warmup`` (epochs, default 0: the full
weight from the first batch) ramps the weights linearly from 0 in epoch 1 to full in epoch
``warmup + 1``, so the model leaves CTC's all-blank start before it is asked to be sparse; the ramp
follows the epoch counter, so a resumed run continues it. The recipes' ``Brain`` adds the penalty
(YAML ``spike_rate_penalty: <weight>``, ``spike_rate_target``, ``spike_rate_warmup``) and logs each
layer's mean training rate per epoch (``history.json``, ``train_log.txt``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from snn_asr.encoders.spiking_rnn import SpikingRNN, per_layer
from snn_asr.neurons import SpikingNeuron


class SpikeRatePenalty:
    """Collects each spiking layer's spikes in training (forward hooks) for the rate penalty and rates.

    The hooks see every implementation alike (:mod:`snn_asr.dispatch` calls layers as modules).

    Arguments
    ---------
    encoder : nn.Module
        Holds :class:`~snn_asr.neurons.SpikingNeuron` layers (a ``SpikingRNN``, or a model with one).
    weight : float or sequence of float
        The penalty's weight (0: rates only), or one per layer (in ``layers.<i>`` order).
    target : float or sequence of float
        Layers at or below this spike rate are not penalised; one, or one per layer.
    warmup : int
        Epochs over which the weights ramp up from 0 (see :meth:`start_epoch`); 0: no ramp.

    Example
    -------
    >>> from snn_asr import SpikingRNN
    >>> enc = SpikingRNN(8, input_size=4, num_layers=2).train()
    >>> penalty = SpikeRatePenalty(enc, weight=0.1)
    >>> _ = enc(torch.randn(3, 20, 4))
    >>> sorted(penalty.rates())  # the last training batch's, per layer
    ['layers.0', 'layers.1']
    >>> penalty.loss().requires_grad  # added to the recipe's loss
    True
    >>> SpikeRatePenalty(enc, weight=8, warmup=4).start_epoch(2)  # the weights' factor this epoch
    0.25
    """

    def __init__(
        self,
        encoder: nn.Module,
        weight: float | Sequence[float] = 0.0,
        target: float | Sequence[float] = 0.0,
        warmup: int = 0,
    ):
        names = list(layer_names(encoder).items())
        weights = per_layer(weight, len(names), "spike_rate_penalty", float)
        targets = per_layer(target, len(names), "spike_rate_target", float)
        if min(weights) < 0 or not all(0 <= t < 1 for t in targets) or int(warmup) != warmup or warmup < 0:
            raise ValueError(
                f"spike_rate_penalty must be >= 0 (got {weight}), spike_rate_target in [0, 1) "
                f"(got {target}), spike_rate_warmup a whole number of epochs >= 0 (got {warmup})"
            )
        self.warmup = int(warmup)
        self.ramp = 1.0  # the weights' factor in this epoch (start_epoch)
        self.weights = {name: w for (_, name), w in zip(names, weights)}
        self.targets = {name: t for (_, name), t in zip(names, targets)}
        self._captured: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._totals: dict[str, list[float]] = {}
        for layer, name in names:
            layer.register_forward_hook(self._hook(name))

    @classmethod
    def of_recipe(cls, modules: nn.Module, hparams) -> SpikeRatePenalty | None:
        """The penalty of a recipe's ``encoder`` module, with the YAML's ``spike_rate_penalty`` and
        ``spike_rate_target`` (default 0: rates only); ``None`` when it has no spiking layer."""
        encoder = getattr(modules, "encoder", None)
        if encoder is None or not any(isinstance(m, SpikingNeuron) for m in encoder.modules()):
            return None
        return cls(
            encoder,
            weight=getattr(hparams, "spike_rate_penalty", 0.0),
            target=getattr(hparams, "spike_rate_target", 0.0),
            warmup=getattr(hparams, "spike_rate_warmup", 0),
        )

    def start_epoch(self, epoch: int) -> float:
        """Sets and returns the weights' factor for training epoch ``epoch`` (1-based):
        ``min(1, (epoch - 1) / warmup)``, or 1 without a warm-up."""
        self.ramp = min(1.0, (epoch - 1) / self.warmup) if self.warmup else 1.0
        return self.ramp

    def _hook(self, name: str):
        def hook(module, args, output):
            if module.training:
                spikes, valid = spikes_and_valid(args, output)
                self._captured[name] = (spikes / module.quantizer.scale, valid)

        return hook

    def rates(self) -> dict[str, float]:
        """Each layer's spike rate in the last training forward pass."""
        return {name: float(rate) for name, (rate, _) in self._measure().items()}

    def _measure(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """``name -> (rate, activity)`` of the captured spikes, over valid neuron-frames."""
        out = {}
        for name, (levels, valid) in self._captured.items():
            keep = valid.unsqueeze(-1).to(levels.dtype)
            count = keep.sum() * levels.shape[-1]
            rate = ((levels != 0).to(levels.dtype) * keep).sum().detach() / count
            out[name] = (rate, (levels.abs() * keep).sum() / count)
        return out

    def loss(self) -> torch.Tensor:
        """The penalty for the last training forward pass (0 when none); tallies its rates."""
        measured = self._measure()
        self._captured = {}
        total = torch.zeros(())
        for name, (rate, activity) in measured.items():
            tally = self._totals.setdefault(name, [0.0, 0])
            tally[0] += float(rate)
            tally[1] += 1
            if self.weights[name] and self.ramp and float(rate) > self.targets[name]:
                total = total.to(activity.device) + self.ramp * self.weights[name] * activity
        return total

    def epoch_rates(self) -> dict[str, float]:
        """Each layer's mean rate over the batches since the last call (then reset)."""
        rates = {name: round(s / n, 4) for name, (s, n) in self._totals.items() if n}
        self._totals = {}
        return rates


def spikes_and_valid(args: tuple, output: tuple) -> tuple[torch.Tensor, torch.Tensor]:
    """A spiking layer's spikes (batch, time, hidden) and valid frames (batch, time), from a forward
    hook's ``args`` (``x, state, valid``) and ``output``; all frames valid where none was given."""
    spikes = output[0]
    valid = args[2] if len(args) > 2 else None
    if valid is None:
        valid = torch.ones(spikes.shape[:2], dtype=torch.bool, device=spikes.device)
    return spikes, valid


def layer_names(encoder: nn.Module) -> dict[nn.Module, str]:
    """Short names of the spiking layers: ``layers.<i>`` in a ``SpikingRNN``'s order, else module paths.

    Example
    -------
    >>> from snn_asr import SpikingRNN
    >>> list(layer_names(SpikingRNN(4, input_size=2, num_layers=2)).values())
    ['layers.0', 'layers.1']
    """
    rnns = [m for m in encoder.modules() if isinstance(m, SpikingRNN)]
    if len(rnns) == 1:
        return {layer: f"layers.{i}" for i, layer in enumerate(rnns[0].layers)}
    return {m: name for name, m in encoder.named_modules() if isinstance(m, SpikingNeuron)}
