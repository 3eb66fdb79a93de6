"""Multi-bit spikes: uniform quantization with a running scale, a firing
threshold and a straight-through gradient.

This module is the single home of the spike function Q used by every neuron
(see :mod:`snn_asr.neurons`) and by every fast path, which must agree with it.

With ``n = 2**(bits - 1)`` levels per sign and a running scale ``M``
(an exponential moving average of ``max|V|``), the quantizer computes::

    s = n * (1 - 1e-4) / M
    q = trunc(s * clip(V, -M, M))          # integers in [-(n-1), n-1]
    q = 0  where |q| <= threshold          # the firing threshold
    Y = q / s

so a neuron fires once ``|V| >= (threshold + 1) * M / n`` (up to the 1e-4
margin) and emits a signed multi-bit spike. The backward pass is the
straight-through estimator, zeroed outside ``[-M, M]``.

**One bit.** A single bit cannot carry both a sign and a magnitude, and the
formula above would round every value to zero at ``bits=1`` (a bug of the
paper's released code). Here ``bits=1`` means a *binary, unsigned* spike of
one quantum ``theta = M / 2``: ``Y = theta * [V >= theta]``. ``threshold``
is not used at one bit; the firing threshold is ``theta``. Because the
neurons reset by subtraction (``V <- V - Y``), a binary neuron behaves as a
classic integrate-and-fire unit with threshold ``theta``.
"""

from __future__ import annotations

import torch
from torch import nn

EPS_MARGIN = 1e-4


def quantize(v: torch.Tensor, scale: torch.Tensor, bits: int, threshold: int) -> torch.Tensor:
    """Forward value of the multi-bit spike function (no gradient logic).

    Arguments
    ---------
    v : torch.Tensor
        Membrane potential, any shape.
    scale : torch.Tensor
        The running scale ``M`` (a positive scalar tensor).
    bits : int
        Spike resolution in bits (>= 1).
    threshold : int
        Quantization levels ``|q| <= threshold`` that do not fire (bits >= 2).

    Returns
    -------
    torch.Tensor
        Spikes ``Y`` with the same shape as ``v``.

    Example
    -------
    >>> v = torch.tensor([0.05, 0.2, -0.5, 2.0])
    >>> quantize(v, torch.tensor(1.0), bits=3, threshold=0)
    tensor([ 0.0000,  0.0000, -0.2500,  0.7501])
    """
    if bits == 1:
        theta = scale / 2
        return (v >= theta).to(v.dtype) * theta
    n = 2 ** (bits - 1)
    s = n * (1.0 - EPS_MARGIN) / scale
    q = torch.trunc(s * torch.maximum(torch.minimum(v, scale), -scale))
    q = torch.where(q.abs() <= threshold, torch.zeros_like(q), q)
    return q / s


class _StraightThrough(torch.autograd.Function):
    """Q in the forward pass, identity inside [-M, M] in the backward pass."""

    @staticmethod
    def forward(ctx, v, scale, bits, threshold):
        ctx.save_for_backward(v, scale)
        return quantize(v, scale, bits, threshold)

    @staticmethod
    def backward(ctx, grad):
        v, scale = ctx.saved_tensors
        return grad * (v.abs() <= scale).to(grad.dtype), None, None, None


def spike(v: torch.Tensor, scale: torch.Tensor, bits: int, threshold: int) -> torch.Tensor:
    """Differentiable multi-bit spike: :func:`quantize` with a straight-through gradient.

    Example
    -------
    >>> v = torch.tensor([0.3, 5.0], requires_grad=True)
    >>> spike(v, torch.tensor(1.0), bits=2, threshold=0).sum().backward()
    >>> v.grad
    tensor([1., 0.])
    """
    return _StraightThrough.apply(v, scale, bits, threshold)


class SpikeQuantizer(nn.Module):
    """Multi-bit spike generator with a bias-corrected running scale.

    In training mode every call updates ``M``, an exponential moving average of
    ``max|V|`` (over the whole tensor given), with Adam-style bias correction, then
    quantizes with it. In eval mode ``M`` is frozen. The average and the step
    count are buffers, so they are saved in the ``state_dict``.

    Arguments
    ---------
    bits : int
        Spike resolution (>= 1; see the module docstring for one bit).
    threshold : int
        Levels that do not fire (multi-bit only).
    momentum : float
        EMA decay of the running scale.

    Example
    -------
    >>> q = SpikeQuantizer(bits=6, threshold=3)
    >>> y = q(torch.tensor([[0.01, 1.0, -2.0]]))
    >>> round(float(q.scale), 4)
    2.0
    >>> y
    tensor([[ 0.0000,  0.9376, -1.9377]])
    """

    def __init__(self, bits: int = 6, threshold: int = 3, momentum: float = 0.99):
        super().__init__()
        if bits < 1:
            raise ValueError(f"bits must be >= 1, got {bits}")
        if threshold < 0:
            raise ValueError(f"threshold must be >= 0, got {threshold}")
        if bits > 1 and threshold >= 2 ** (bits - 1) - 1:
            raise ValueError(
                f"threshold={threshold} silences every level of a {bits}-bit spike; "
                f"use threshold < {2 ** (bits - 1) - 1}"
            )
        self.bits = bits
        self.threshold = threshold
        self.momentum = momentum
        self.register_buffer("ema", torch.zeros(()))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    @property
    def scale(self) -> torch.Tensor:
        """The bias-corrected running scale ``M`` (1.0 before any update)."""
        if int(self.steps) == 0:
            return torch.ones((), device=self.ema.device)
        correction = 1.0 - self.momentum ** self.steps.to(self.ema.dtype)
        return (self.ema / correction).clamp_min(1e-8)

    @torch.no_grad()
    def update(self, v: torch.Tensor) -> None:
        """Folds ``max|v|`` into the running scale; an empty ``v`` (all rows padded) changes nothing."""
        if v.numel() == 0:
            return
        self.ema.mul_(self.momentum).add_((1.0 - self.momentum) * v.detach().abs().max())
        self.steps.add_(1)

    def fire(self, v: torch.Tensor) -> torch.Tensor:
        """Spikes for ``v`` at the current scale, without updating it."""
        return spike(v, self.scale, self.bits, self.threshold)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        """Spikes for membrane potential ``v`` (any shape); updates the scale in training."""
        if self.training:
            self.update(v)
        return self.fire(v)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, threshold={self.threshold}, momentum={self.momentum}"
