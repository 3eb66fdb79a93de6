"""Large CPU buffers reused from one training step to the next.

Why by hand: PyTorch has no caching allocator on CPU, and glibc hands blocks this
large back to the kernel on ``free``. A training step at the paper's size makes a dozen
(batch, time, features) tensors of 17-35 MB, and every one first-touches fresh pages:
tens of thousands of page faults per step, each a trap and a zeroed 4 KiB page (a fresh
35 MB output costs about 9 ms more than a reused one). :class:`Workspace` keeps a
module's large buffers and hands them out again once nothing holds them any more; the
fused recurrence (:mod:`snn_asr.fastpaths.fused`) keeps what it saves for its backward pass, its
spikes there, :func:`snn_asr.primitives.linear.linear` its output; what passes from layer to layer
(the drive, ``dL/d drive``, ``dL/d spikes``) goes through the shared :data:`PASSING`.
New buffers are marked for transparent huge pages, which Linux then maps 2 MiB at a time.
"""

from __future__ import annotations

import ctypes
import math
import sys
import threading
import weakref

import torch
from torch import nn

_MADV_HUGEPAGE, _HUGE_PAGE = 14, 2 << 20
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
_USE_COUNT = getattr(torch._C, "_storage_Use_Count", None)
HEADROOM = 1.25
"""New buffers are this much larger than asked, so the next, slightly longer batch fits."""
POOL_MIN_BYTES = 1 << 20
"""Smaller buffers come from ``torch.empty``: they are served without page faults anyway, and
at one frame per call (streaming) the pool's bookkeeping would cost more than it saves."""


def empty_huge(*shape: int, dtype: torch.dtype) -> torch.Tensor:
    """``torch.empty(shape)`` on CPU whose whole 2 MiB pages are marked ``MADV_HUGEPAGE`` (Linux only).

    Example
    -------
    >>> empty_huge(3, 4, dtype=torch.float32).shape
    torch.Size([3, 4])
    """
    out = torch.empty(*shape, dtype=dtype)
    if _LIBC is not None and out.nbytes >= 2 * _HUGE_PAGE:
        start = -(-out.data_ptr() // _HUGE_PAGE) * _HUGE_PAGE
        end = (out.data_ptr() + out.nbytes) // _HUGE_PAGE * _HUGE_PAGE
        _LIBC.madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), _MADV_HUGEPAGE)
    return out


class Workspace:
    """Named CPU buffers, each handed out again once no tensor made from it is alive.

    Example
    -------
    >>> ws = Workspace()
    >>> a = ws.take("current", (500, 16, 550), torch.float32)
    >>> ptr = a.data_ptr()
    >>> del a
    >>> b = ws.take("current", (400, 16, 550), torch.float32)  # the same memory again
    >>> b.data_ptr() == ptr
    True
    >>> ws.take("current", (400, 16, 550), torch.float32).data_ptr() == ptr  # not while ``b`` is alive
    False
    """

    def __init__(self) -> None:
        self._bases: dict[str, torch.Tensor] = {}
        self._lock = threading.Lock()  # checking a buffer free and handing it out is one step

    def take(
        self, name: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """A tensor of ``shape``, contents undefined: a view of buffer ``name`` if it is free and fits.

        Off the CPU (whose devices have caching allocators of their own) always a new tensor.
        """
        numel = math.prod(shape)
        if numel * dtype.itemsize < POOL_MIN_BYTES or torch.device(device).type != "cpu":
            return torch.empty(shape, dtype=dtype, device=device)
        with self._lock:
            base = self._bases.get(name)
            if base is None or base.dtype != dtype or base.numel() < numel or not self._free(base):
                base = empty_huge(math.ceil(numel * HEADROOM), dtype=dtype)
                self._bases[name] = base
            return base[:numel].view(shape)

    @staticmethod
    def _free(base: torch.Tensor) -> bool:
        """No view of ``base`` is alive: its storage is held by ``base`` alone (and the probe's handle)."""
        return _USE_COUNT is not None and _USE_COUNT(base.untyped_storage()._cdata) == 2


PASSING = Workspace()
"""Buffers of tensors that only pass between layers within a step: the drive on its way from
batch norm to the recurrence, gradients on their way back. Shared by all layers, so that a
step holds one buffer per role rather than one per layer (each is dead before the next layer
asks for it; were one still held, :meth:`Workspace.take` would hand out a new buffer)."""

_WORKSPACES: weakref.WeakKeyDictionary[nn.Module, Workspace] = weakref.WeakKeyDictionary()


def workspace_of(module: nn.Module) -> Workspace:
    """``module``'s workspace, made on first use and dropped with the module.

    Kept beside the module rather than as an attribute of it, so that ``copy.deepcopy``
    and pickling of models never meet its lock or its buffers.

    Example
    -------
    >>> layer = nn.Linear(2, 2)
    >>> workspace_of(layer) is workspace_of(layer)
    True
    """
    workspace = _WORKSPACES.get(module)
    if workspace is None:  # not ``setdefault``: that would build a Workspace on every call
        workspace = _WORKSPACES[module] = Workspace()
    return workspace
