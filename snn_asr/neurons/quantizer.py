"""Multi-bit spikes: uniform quantization with a running scale, a firing
threshold and a straight-through gradient.

This module is the single home of the spike function Q used by every neuron
(see :mod:`snn_asr.neurons`) and by every fast path, which must agree with it.

With ``n = 2**(bits - 1)`` levels per sign and a running scale ``M``
(an exponential moving average of a frame's ``max|V|``, see :class:`SpikeQuantizer`), the
quantizer computes::

    s = n * (1 - 1e-4) / M
    q = trunc(s * clip(V, -M, M))          # integers in [-(n-1), n-1]
    q = 0  where |q| <= threshold          # the firing threshold
    Y = q / s

so a neuron fires once ``|V| >= (threshold + 1) * M / n`` (up to the 1e-4
margin) and emits a signed multi-bit spike.

**Unsigned spikes** (``unsigned=True``, for v1 and v2). Their current is ``>= 0`` (a relu times
a gate in (0, 1)) and truncation keeps ``V - Y >= 0``, so their spikes are never negative and
the signed code leaves half its levels unused. The unsigned code spends all of them on
magnitudes: ``n = 2**bits`` and ``clip(V, 0, M)``, so ``q`` is in ``[0, 2**bits - 1]``, twice
the resolution at the same bits (one bit fewer for the same resolution). LIF's current can be
negative, so LIF keeps the signed code.

**The gradient** (``surrogate``). The spike's backward pass is the straight-through estimator,
zeroed outside ``[-M, M]`` (``"straight_through"``, the paper's rule). It passes gradient through
silent neurons too (``|q| <= threshold``), whose forward output is 0; ``"firing"`` passes it only
where the neuron fires. With the reset by subtraction not detached (see
:class:`~snn_asr.neurons.base.SpikingNeuron`'s ``detach_reset``), the straight-through rule gives
``dV[n]/dV[n-1] = 1 - 1 = 0`` for every neuron-frame: a silent neuron carries ``V`` forward
exactly, yet its gradient says it forgets it; ``"firing"`` (or a detached reset) gives it the
true ``1``. The default stays the paper's rule; ``README.md``, "Sparsity", has the measurements.

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
SURROGATES = ("straight_through", "firing")
"""The spike's backward rules (``SpikeQuantizer(surrogate=...)``; see the module docstring)."""


def levels(bits: int, unsigned: bool = False) -> int:
    """``n`` of the quantizer: ``2**(bits - 1)`` levels per sign, or ``2**bits`` unsigned.

    Example
    -------
    >>> levels(6), levels(6, unsigned=True)
    (32, 64)
    """
    return 2**bits if unsigned else 2 ** (bits - 1)


def quantize(
    v: torch.Tensor, scale: torch.Tensor, bits: int, threshold: int, unsigned: bool = False
) -> torch.Tensor:
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
    unsigned : bool
        The unsigned code: ``q`` in ``[0, 2**bits - 1]`` (bits >= 2).

    Returns
    -------
    torch.Tensor
        Spikes ``Y`` with the same shape as ``v``.

    Example
    -------
    >>> v = torch.tensor([0.05, 0.2, -0.5, 2.0])
    >>> quantize(v, torch.tensor(1.0), bits=3, threshold=0)
    tensor([ 0.0000,  0.0000, -0.2500,  0.7501])
    >>> quantize(v, torch.tensor(1.0), bits=3, threshold=0, unsigned=True)
    tensor([0.0000, 0.1250, 0.0000, 0.8751])
    """
    if bits == 1:
        theta = scale / 2
        return (v >= theta).to(v.dtype) * theta
    s = levels(bits, unsigned) * (1.0 - EPS_MARGIN) / scale
    floor = torch.zeros_like(scale) if unsigned else -scale
    q = torch.trunc(s * torch.maximum(torch.minimum(v, scale), floor))
    q = torch.where(q.abs() <= threshold, torch.zeros_like(q), q)
    return q / s


class _StraightThrough(torch.autograd.Function):
    """Q in the forward pass, identity inside [-M, M] in the backward pass (where it fires: ``firing``)."""

    @staticmethod
    def forward(ctx, v, scale, bits, threshold, unsigned, firing):
        y = quantize(v, scale, bits, threshold, unsigned)
        ctx.save_for_backward(v, scale, y)
        ctx.firing = firing
        return y

    @staticmethod
    def backward(ctx, grad):
        v, scale, y = ctx.saved_tensors
        through = v.abs() <= scale
        if ctx.firing:
            through = through & (y != 0)
        return grad * through.to(grad.dtype), None, None, None, None, None


def spike(
    v: torch.Tensor,
    scale: torch.Tensor,
    bits: int,
    threshold: int,
    unsigned: bool = False,
    surrogate: str = "straight_through",
) -> torch.Tensor:
    """Differentiable multi-bit spike: :func:`quantize` with a straight-through gradient.

    ``surrogate="firing"`` passes the gradient only where the neuron fires.

    Example
    -------
    >>> v = torch.tensor([0.3, 5.0, 0.1], requires_grad=True)
    >>> spike(v, torch.tensor(1.0), bits=3, threshold=0).sum().backward()
    >>> v.grad
    tensor([1., 0., 1.])
    >>> v.grad = None
    >>> spike(v, torch.tensor(1.0), bits=3, threshold=0, surrogate="firing").sum().backward()
    >>> v.grad
    tensor([1., 0., 0.])
    """
    return _StraightThrough.apply(v, scale, bits, threshold, unsigned, surrogate == "firing")


SCALE_UPDATES = ("batch", "frame")
"""When the running scale ``M`` moves in training (``SpikeQuantizer(scale_update=...)``)."""
DEFAULT_MOMENTUM = {"batch": 0.9, "frame": 0.99}
"""EMA decay of ``M`` per update: batch norm's per batch, the paper's per frame."""


class SpikeQuantizer(nn.Module):
    """Multi-bit spike generator with a bias-corrected running scale.

    ``M`` is an exponential moving average of a frame's ``max|V|`` (over the batch's valid
    rows), with Adam-style bias correction; in eval mode it is frozen. ``scale_update`` says
    when it moves in training:

    - ``"batch"`` (default): once per batch, by the mean of the batch's frame maxima (frames
      with a valid row); every frame of the batch fires at the ``M`` from before it, as it
      will at eval time. The frozen ``M`` then weighs every frame of the last batches alike.
      (The very first batch, with no ``M`` yet, moves it every frame: :attr:`per_frame`.)
    - ``"frame"`` (the paper's): every frame folds its maximum in, then fires at the updated
      ``M``. With decay 0.99 the EMA remembers about the last 100 frames (1 s), so the frozen
      ``M`` follows the tail of the last training batch (a quiet tail lowers it).

    Both estimate the same quantity, a typical frame's ``max|V|``. The average and the update
    count are buffers, so they are saved in the ``state_dict``.

    Arguments
    ---------
    bits : int
        Spike resolution (>= 1; see the module docstring for one bit).
    threshold : int
        Levels that do not fire (multi-bit only).
    momentum : float, optional
        EMA decay per update; default :data:`DEFAULT_MOMENTUM` of ``scale_update``.
    scale_update : str
        ``"batch"`` or ``"frame"``, see above.
    unsigned : bool
        The unsigned code (``q`` in ``[0, 2**bits - 1]``; see the module docstring).
    surrogate : str
        The backward rule, one of :data:`SURROGATES` (see the module docstring).

    Example
    -------
    >>> q = SpikeQuantizer(bits=6, threshold=3)
    >>> y = q(torch.tensor([[[1.0], [-2.0]]]))  # (batch, time, features); no M yet: frame by frame
    >>> int(q.steps), round(float(q.scale), 4)
    (2, 1.5263)
    >>> y = q(torch.tensor([[[3.0], [0.2]]]))  # then once per batch, by the mean of its frame maxima
    >>> int(q.steps), round(float(q.scale), 4)
    (3, 1.5535)
    >>> y.flatten()
    tensor([1.5051, 0.1942])
    """

    def __init__(
        self,
        bits: int = 6,
        threshold: int = 3,
        momentum: float | None = None,
        scale_update: str = "batch",
        unsigned: bool = False,
        surrogate: str = "straight_through",
    ):
        super().__init__()
        if bits < 1:
            raise ValueError(f"bits must be >= 1, got {bits}")
        if scale_update not in SCALE_UPDATES:
            raise ValueError(f"scale_update must be one of {SCALE_UPDATES}, got {scale_update!r}")
        if surrogate not in SURROGATES:
            raise ValueError(f"surrogate must be one of {SURROGATES}, got {surrogate!r}")
        self.bits = bits
        self.unsigned = unsigned
        self.surrogate = surrogate
        self.threshold = threshold
        self.scale_update = scale_update
        self.momentum = DEFAULT_MOMENTUM[scale_update] if momentum is None else momentum
        self.register_buffer("ema", torch.zeros(()))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    @property
    def threshold(self) -> int:
        """Levels ``|q| <= threshold`` that do not fire; checked against the code's levels when set."""
        return self._threshold

    @threshold.setter
    def threshold(self, value: int) -> None:
        top = levels(self.bits, self.unsigned) - 1  # the largest level q
        if value < 0:
            raise ValueError(f"threshold must be >= 0, got {value}")
        if self.bits > 1 and value >= top:
            raise ValueError(
                f"threshold={value} silences every level of a {self.bits}-bit spike; use threshold < {top}"
            )
        self._threshold = int(value)

    @property
    def levels(self) -> int:
        """``n``, the levels per sign (:func:`levels`)."""
        return levels(self.bits, self.unsigned)

    @property
    def per_frame(self) -> bool:
        """Whether the next batch moves ``M`` every frame: ``scale_update="frame"``, or no ``M`` yet.

        Before its first update there is no ``M`` to fire at (1.0 stands in), and a batch
        fired at 1.0 can run the membranes away (``M`` in the hundreds after one batch, for
        dozens of batches to forget), so the first batch folds its frames in as they come.
        """
        return self.scale_update == "frame" or int(self.steps) == 0

    @property
    def scale(self) -> torch.Tensor:
        """The bias-corrected running scale ``M`` (1.0 before any update).

        Tensor ops only, no Python branch on ``steps``, so that an exported graph
        (:mod:`snn_asr.fastpaths.scan`) computes it as eager code does.
        """
        correction = 1.0 - self.momentum ** self.steps.to(self.ema.dtype)
        return torch.where(
            self.steps == 0, torch.ones_like(self.ema), (self.ema / correction).clamp_min(1e-8)
        )

    @torch.no_grad()
    def fold(self, top: torch.Tensor) -> None:
        """One EMA update of ``M`` with the 0-d statistic ``top``."""
        self.ema.mul_(self.momentum).add_((1.0 - self.momentum) * top)
        self.steps.add_(1)

    def update(self, maxima: torch.Tensor, valid: torch.Tensor | None = None) -> None:
        """Folds a batch's frame maxima (time,) in, in time order: their mean ("batch"), or each in turn.

        ``valid`` (batch, time) is the batch's mask: frames without a valid row are left out.
        """
        if valid is not None:
            maxima = maxima[valid.any(0)]
        if maxima.numel() == 0:  # every row padded: nothing to learn from
            return
        if self.per_frame:
            for top in maxima:
                self.fold(top)
        else:
            self.fold(maxima.mean())

    @staticmethod
    def frame_maxima(v: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """``max|v|`` of each frame of ``v`` (batch, time, ...) over its valid rows (0 where none), (time,).

        Example
        -------
        >>> v = torch.tensor([[[1.0], [-3.0], [2.0]], [[-5.0], [0.5], [9.0]]])
        >>> SpikeQuantizer.frame_maxima(v, valid=torch.tensor([[True, True, False], [True, True, False]]))
        tensor([5., 3., 0.])
        """
        a = v.detach().abs()
        if valid is not None:
            a = a.masked_fill(~valid.view(*valid.shape, *[1] * (v.dim() - 2)), 0)
        return a.amax(dim=[d for d in range(v.dim()) if d != 1])

    def fire(self, v: torch.Tensor) -> torch.Tensor:
        """Spikes for ``v`` at the current scale, without updating it."""
        return spike(v, self.scale, self.bits, self.threshold, self.unsigned, self.surrogate)

    def forward(self, v: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """Spikes for a whole sequence ``v`` (batch, time, ...) whose values do not depend on them.

        For the encoder's input. In training, ``M`` first takes in the frames (:meth:`update`),
        ``valid`` (batch, time) keeping padded frames out; all fire at the resulting ``M``.
        """
        if v.dim() < 2:
            raise ValueError(f"SpikeQuantizer expects (batch, time, ...), got shape {tuple(v.shape)}")
        if self.training:
            self.update(self.frame_maxima(v, valid), valid)
        return self.fire(v)

    def extra_repr(self) -> str:
        return (
            f"bits={self.bits}, threshold={self.threshold}, momentum={self.momentum}, "
            f"scale_update={self.scale_update!r}"
            + (", unsigned=True" if self.unsigned else "")
            + (f", surrogate={self.surrogate!r}" if self.surrogate != "straight_through" else "")
        )
