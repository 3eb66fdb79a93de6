"""``x W^T + b`` for the spiking layers: oneDNN's GEMM on CPU in float32, ``F.linear`` elsewhere.

Why by hand: torch sends a float32 ``torch.mm`` on CPU to MKL, and there is no switch
to send it to oneDNN instead (``torch.backends.mkldnn.matmul`` covers bf16/tf32 only).
On the AMD EPYC this project is measured on, oneDNN runs the spiking layers' shapes
1.4-1.8x faster than MKL (``benchmarks/gemm_backends.py``), and ``torch.nn.LSTM``, the
baseline, already runs on oneDNN (its fused RNN primitive). So the input projections
``W X``, the recurrent ``U Y`` and their input gradients go through
``torch.ops.mkldnn._linear_pointwise``, the dense-in, dense-out oneDNN linear that
TorchInductor emits. Weight gradients stay on ``torch.mm``: for the transposed
``(out, batch*time) x (batch*time, in)`` product MKL is the faster (oneDNN would need
both operands transposed in memory first).

For ``U Y`` the reference loop (:mod:`snn_asr.neurons`) calls :func:`linear` and the fused
recurrence (:mod:`snn_asr.fastpaths.fused`) :func:`matmul_nt`; both end in the same oneDNN call for
the same shapes, so they stay bit-identical.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from snn_asr.primitives.workspace import PASSING, Workspace


def _onednn_linear():
    """``torch.ops.mkldnn._linear_pointwise`` where this torch build has it, else ``None``."""
    if not torch.backends.mkldnn.is_available():
        return None
    return getattr(torch.ops.mkldnn, "_linear_pointwise", None)


_ONEDNN = _onednn_linear()
_REORDER = getattr(torch.ops.mkldnn, "_reorder_linear_weight", None) if _ONEDNN else None


ONEDNN_MIN_MACS = 1 << 20
"""Smallest product (rows x in x out multiply-adds) sent to oneDNN. Below it oneDNN's fixed
cost per call (about 15 us) outweighs its faster kernel: at batch 1, ``(1 x 40) -> 1100``
took 20 us on oneDNN against 7 us on MKL."""


def _onednn_applies(rows: int, weight: torch.Tensor, x_dtype: torch.dtype, x_device: torch.device) -> bool:
    return (
        _ONEDNN is not None
        and not torch.compiler.is_compiling()  # an exported graph (ONNX) has no oneDNN op: F.linear
        and x_device.type == "cpu"
        and weight.device.type == "cpu"
        and x_dtype == torch.float32
        and weight.dtype == torch.float32
        and rows * weight.shape[0] * weight.shape[1] >= ONEDNN_MIN_MACS
    )


def uses_onednn(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether :func:`linear` and :func:`matmul_nt` run on oneDNN for these operands.

    Example
    -------
    >>> uses_onednn(torch.zeros(16, 550), torch.zeros(1100, 550))
    True
    >>> uses_onednn(torch.zeros(1, 40), torch.zeros(1100, 40))  # too small to pay for the call
    False
    >>> uses_onednn(torch.zeros(16, 550, dtype=torch.float64), torch.zeros(1100, 550, dtype=torch.float64))
    False
    """
    rows = x.numel() // x.shape[-1] if x.dim() and x.shape[-1] else 0
    return _onednn_applies(rows, weight, x.dtype, x.device)


PACK_MIN_USES = 16
"""Fewest products for which :func:`pack` reorders: one reorder costs about as much as 16
products save (0.66 ms against 40 us each at the paper's size, ``benchmarks/gemm_backends.py``)."""


def pack(weight: torch.Tensor, rows: int, uses: int) -> torch.Tensor:
    """``weight`` (out, in) reordered once into oneDNN's layout for ``uses`` calls of :func:`matmul_nt`.

    A plain weight is reordered inside every call; a recurrence calls :func:`matmul_nt`
    once per frame with the same weight and ``rows`` rows, and packing it once makes each
    call 1.25-1.35x faster at the paper's size, with bit-identical results. Returns
    ``weight`` itself where oneDNN does not apply or for fewer than :data:`PACK_MIN_USES` uses.

    Example
    -------
    >>> x, w = torch.randn(16, 550), torch.randn(1100, 550)
    >>> torch.equal(matmul_nt(x, pack(w, 16, uses=100)), matmul_nt(x, w))
    True
    """
    if (
        _REORDER is not None
        and uses >= PACK_MIN_USES
        and _onednn_applies(rows, weight, weight.dtype, weight.device)
    ):
        return _REORDER(weight.detach(), rows)
    return weight.detach()


def matmul_nt(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``x @ weight.T`` without autograd: (rows, in) x (out, in) -> (rows, out); ``weight`` may be packed.

    Example
    -------
    >>> x, w = torch.randn(2, 3), torch.randn(4, 3)
    >>> torch.allclose(matmul_nt(x, w), x @ w.T, atol=1e-6)
    True
    """
    if uses_onednn(x, weight):
        return _ONEDNN(x, weight, None, "none", [], "")
    return x @ weight.t()


CHUNK_BYTES = 4 << 20
"""Size of the row blocks in which :func:`linear` writes its output (see :func:`_onednn_rows`)."""


def _onednn_rows(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, workspace: Workspace | None, name: str
) -> torch.Tensor:
    """oneDNN's ``x W^T + b`` for ``x`` (..., in), written block by block into one (..., out) tensor.

    oneDNN allocates each output afresh, and an output of tens of MB comes straight from
    the kernel: at (8000 x 1100) first-touching it cost 9 ms, against 5 ms for the product
    itself at ``in = 40``. Products of row blocks of about :data:`CHUNK_BYTES` reuse
    glibc's heap, and their copies go into ``workspace``'s buffer ``name``, reused from one
    step to the next. A row's result does not depend on how many rows share the call, so the
    blocks change no bit (``tests/test_linear.py``). Without a workspace, one call: the
    output's pages would be fresh either way.
    """
    flat = x.reshape(-1, x.shape[-1])
    rows, features = flat.shape[0], weight.shape[0]
    shape = (*x.shape[:-1], features)
    if workspace is None:
        return _ONEDNN(flat, weight, bias, "none", [], "").view(shape)
    out = workspace.take(name, shape, x.dtype)
    out_flat = out.view(rows, features)
    step = max(1, CHUNK_BYTES // (features * x.element_size()))
    for start in range(0, rows, step):
        out_flat[start : start + step] = _ONEDNN(flat[start : start + step], weight, bias, "none", [], "")
    return out


class _Linear(torch.autograd.Function):
    """``x W^T + b`` with oneDNN's forward and input gradient, MKL's weight gradient."""

    @staticmethod
    def forward(ctx, x, weight, bias, workspace):
        ctx.save_for_backward(x, weight)
        ctx.has_bias, ctx.pooled = bias is not None, workspace is not None
        return _onednn_rows(x, weight, bias, workspace, "out")

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        flat = grad.reshape(-1, grad.shape[-1])
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            passing = PASSING if ctx.pooled else None  # dL/dx passes on to the layer below
            gx = _onednn_rows(grad, weight.t().contiguous(), None, passing, "grad")
        if ctx.needs_input_grad[1]:
            gw = flat.t() @ x.reshape(-1, x.shape[-1])
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = flat.sum(0)
        return gx, gw, gb, None


def linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    workspace: Workspace | None = None,
) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` with gradients: (..., in) -> (..., out), on oneDNN where it applies.

    With a ``workspace`` (:mod:`snn_asr.primitives.workspace`), the output of a training step goes into
    a buffer of it reused from one step to the next, and the input gradient into one of
    :data:`~snn_asr.primitives.workspace.PASSING`.

    Example
    -------
    >>> x, w, b = torch.randn(2, 5, 3), torch.randn(4, 3), torch.randn(4)
    >>> torch.allclose(linear(x, w, b), torch.nn.functional.linear(x, w, b), atol=1e-5)
    True
    """
    if not uses_onednn(x, weight):
        return F.linear(x, weight, bias)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, weight, bias)):
        return _Linear.apply(x, weight, bias, workspace)
    return _onednn_rows(x, weight, bias, None, "out")  # no graph to record: skip the Function's overhead
