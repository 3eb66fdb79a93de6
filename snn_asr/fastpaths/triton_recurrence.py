"""The GPU recurrence: Triton kernels for the neurons, cuBLAS for ``U``, and a hand-written BPTT.

On CUDA the reference loop (:meth:`SpikingNeuron.forward <snn_asr.neurons.base.SpikingNeuron.forward>`)
launches some thirty small kernels per frame and layer, each recorded by autograd. Here one
:class:`torch.autograd.Function` runs a layer over the sequence with the kernels of
:mod:`snn_asr.fastpaths.triton_kernels`:

- **lif and v1** at a fixed running scale (eval, and training with ``scale_update="batch"``
  once ``M`` exists): one launch for the whole sequence, forward and backward; v1's forget
  gates are one ``torch.sigmoid`` over the sequence first.
- **v2:** per frame, ``U (Y[n-1]/M)`` through :func:`~snn_asr.primitives.linear.linear`
  (cuBLAS on CUDA, as in the reference), the gates' sigmoid, then one kernel for the current,
  membrane, quantizer, padding merge and what BPTT keeps. Backward: one kernel and one matmul
  per frame, then ``dU`` in one matmul.
- **A scale that moves every frame** (``scale_update="frame"``, or a quantizer's first batch):
  the frame's ``max|V|`` is folded into the EMA by a one-program kernel on the device, between
  the membrane and the spikes, so no frame waits for the host. Only one ``int(steps)`` per
  layer and batch crosses to the host.

The quantizer is the reference's, exactly: trunc, threshold, and ``s = (1/M) * levels``; the
straight-through gradient is identity where ``|V| <= M``. Under ``TRITON_INTERPRET=1`` the
kernels run on CPU tensors (how CI tests them: ``tests/test_triton_recurrence.py``); compiled
on a GPU, Triton may contract a multiply-add into an FMA, so the spikes can differ from the
reference's where a membrane lies within rounding of a quantization level.

Not done: capturing the per-frame launches of v2 in a CUDA graph, or a persistent kernel
holding ``U`` on chip; nothing here has run on a GPU yet (``benchmarks/gpu_training.py``
is the one command that times it when one is lent).
"""

from __future__ import annotations

import os

import torch

from snn_asr.fastpaths.fused import KINDS, LIF, V2, _corrections, recurrence_inputs
from snn_asr.neurons import NeuronState, SpikingNeuron
from snn_asr.neurons.quantizer import EPS_MARGIN
from snn_asr.primitives.linear import linear

__all__ = ["triton_available", "triton_forward", "triton_supports"]

MAX_BLOCK = 1024
"""Neurons per program: a power of two; the frame's partial maxima are one per program."""


def triton_available(device: torch.device | str) -> bool:
    """Whether Triton runs kernels on ``device``: CUDA, or CPU under ``TRITON_INTERPRET=1``.

    Example
    -------
    >>> triton_available("cpu") == (os.environ.get("TRITON_INTERPRET") == "1")
    True
    """
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    kind = torch.device(device).type
    return kind == "cuda" or (kind == "cpu" and os.environ.get("TRITON_INTERPRET") == "1")


def triton_supports(layer: SpikingNeuron, x: torch.Tensor) -> bool:
    """Whether :func:`triton_forward` runs ``layer`` on ``x``: a stock neuron in float32, Triton there.

    Example
    -------
    >>> from snn_asr.neurons import LIFNeuron
    >>> triton_supports(LIFNeuron(3, 2), torch.zeros(1, 4, 3)) == triton_available("cpu")
    True
    """
    return (
        type(layer) in KINDS
        and layer.quantizer.ema.dtype == torch.float32  # the kernels' constants are float32
        and x.device == layer.quantizer.ema.device
        and triton_available(x.device)
    )


def _grid(elements: int) -> tuple[int, int]:
    block = min(MAX_BLOCK, max(16, 1 << (elements - 1).bit_length()))
    return block, -(-elements // block)


class _TritonRecurrence(torch.autograd.Function):
    """``(drive, weight, I0, V0, Y0) -> (spikes, I, V, Y)`` of a layer; ``weight``: tau, U or None."""

    @staticmethod
    def forward(ctx, drive, weight, i0, v0, y0, kind, quantizer, train, mask, valid, detach_reset):
        from snn_asr.fastpaths import triton_kernels as k

        batch, time, _ = drive.shape
        hidden = i0.shape[1]
        elements = batch * hidden
        block, programs = _grid(elements)
        save = any(ctx.needs_input_grad[:5])
        per_frame = train and quantizer.per_frame  # one host sync per layer and batch
        levels = quantizer.levels * (1.0 - EPS_MARGIN)
        new = i0.new_empty  # the state's dtype, float32; the drive may be bfloat16 (autocast)
        scales, s = new(time + 1), new(time + 1)  # the scale frame n fires with: scales[n + 1]
        scales[0] = quantizer.scale
        s[0] = quantizer.scale.reciprocal() * levels  # as quantize(): levels / M
        if not per_frame:
            scales[1:], s[1:] = scales[0], s[0]
        current = new(time, batch, hidden)
        v, y = v0.clone(), y0.clone()
        out = new(batch, time, hidden)
        keep = drive.new_zeros((time if save else 1, batch, hidden), dtype=torch.int8)
        levels_all = new(time + 1 if kind == V2 else 1, batch, hidden)
        partial = new(time, programs)
        valid8 = (i0.new_ones(batch, time, dtype=torch.bool) if valid is None else valid).to(torch.int8)
        leak = weight.detach().contiguous() if kind == LIF else i0
        gates, forget = drive, drive
        if kind != LIF:  # v1's forget gates now; v2's frame by frame, below
            forget = torch.sigmoid(drive[..., :hidden]) if kind != V2 else new(batch, time, hidden)
        if kind == V2:
            gates = new(batch, time, 2 * hidden)
            levels_all[0] = y / quantizer.scale
        common = dict(
            H=hidden, KIND=kind, BITS=quantizer.bits, THRESHOLD=quantizer.threshold,
            UNSIGNED=quantizer.unsigned, SAVE=save,
        )  # fmt: skip
        any_valid = valid8.amax(0)
        if per_frame:
            count = torch.cumsum(any_valid, 0) - 1  # the fold each frame is, counted from 0
            steps = int(quantizer.steps)
            corr = _corrections(quantizer.momentum, steps, time, torch.empty((), dtype=i0.dtype))
            corr = corr.to(i0.device)
            ema = quantizer.ema.view(1)

        def membrane(n0: int, n1: int) -> None:
            k.membrane_kernel[(programs,)](
                n0, n1, gates, gates.stride(0), gates.stride(1), forget, forget.stride(0), forget.stride(1),
                leak, mask, valid8, valid8.stride(0), i0, current, v, y, out, out.stride(0), out.stride(1),
                keep, levels_all, partial, scales, s, elements, programs,
                FIRE=not per_frame, BLOCK=block, **common,
            )  # fmt: skip

        # Interpreted on CPU, MKL's small GEMMs round by the operand's alignment in memory: a fresh
        # copy of a frame's Y/M is aligned as the reference's own fresh Y/M, so they stay bit-equal.
        aligned_copy = drive.device.type == "cpu"
        for n0 in range(0, time) if (kind == V2 or per_frame) else (0,):
            n1 = n0 + 1 if (kind == V2 or per_frame) else time
            if kind == V2:  # the reference's ops: drive + linear(Y/M, U), sigmoid of the forget half
                recurrent = levels_all[n0].clone() if aligned_copy else levels_all[n0]
                torch.add(drive[:, n0], linear(recurrent, weight), out=gates[:, n0])
                torch.sigmoid(gates[:, n0, :hidden], out=forget[:, n0])
            membrane(n0, n1)
            if per_frame:
                k.scale_kernel[(1,)](
                    n0, partial, any_valid, count, corr, ema, scales, s, programs,
                    float(quantizer.momentum), float(1.0 - quantizer.momentum),
                    LEVELS=levels, BLOCK_P=max(16, 1 << (programs - 1).bit_length()),
                )  # fmt: skip
                k.fire_kernel[(programs,)](
                    n0, valid8, valid8.stride(0), v, y, out, out.stride(0), out.stride(1), keep,
                    levels_all, scales, s, elements, BLOCK=block, **common,
                )  # fmt: skip
        if per_frame:
            quantizer.steps.add_(any_valid.sum())
        elif train:  # scale_update="batch": as the reference, once after the batch
            quantizer.update(partial.amax(1), valid)
        if save and quantizer.surrogate == "firing":  # no gradient where it did not fire
            keep.mul_(out.transpose(0, 1) != 0)
        ctx.kind, ctx.block, ctx.programs, ctx.scales = kind, block, programs, scales
        ctx.detach_reset = detach_reset
        ctx.save_for_backward(weight, i0, mask, valid8, current, gates, forget, keep, levels_all)
        return out, current[-1].clone(), v, y

    @staticmethod
    def backward(ctx, gout, gi_last, gv_last, gy_last):
        from snn_asr.fastpaths import triton_kernels as k

        weight, i0, mask, valid8, current, gates, forget, keep, levels_all = ctx.saved_tensors
        kind, block, programs = ctx.kind, ctx.block, ctx.programs
        time, batch, hidden = current.shape
        gout = gout.contiguous()
        gi, gv, gy = gi_last.contiguous().clone(), gv_last.contiguous().clone(), gy_last.contiguous().clone()
        rec = torch.zeros_like(gi)
        gdrive = gates.new_empty(batch, time, hidden if kind == LIF else 2 * hidden)
        gleak = torch.zeros_like(gi) if kind == LIF else gi
        leak = weight.detach().contiguous() if kind == LIF else gi

        def frames(n0: int, n1: int) -> None:
            k.backward_kernel[(programs,)](
                n0, n1, gout, gout.stride(0), gout.stride(1), rec, gi, gv, gy, gleak, leak, mask,
                valid8, valid8.stride(0), i0, current, gates, gates.stride(0), gates.stride(1),
                forget, forget.stride(0), forget.stride(1), keep, gdrive, gdrive.stride(0),
                gdrive.stride(1), batch * hidden,
                H=hidden, KIND=kind, RECURRENT=kind == V2, DETACH_RESET=ctx.detach_reset, BLOCK=block,
            )  # fmt: skip

        gweight = None
        if kind == V2:
            for n in reversed(range(time)):
                frames(n, n + 1)
                torch.div(gdrive[:, n] @ weight, ctx.scales[n], out=rec)  # dL/dY[n-1] through U
            gy += rec
            if ctx.needs_input_grad[1]:  # dU = sum over (b, n) of gdrive[b, n]^T (Y[b, n-1] / M[n])
                inputs = levels_all[:time].transpose(0, 1).reshape(-1, hidden)
                gweight = gdrive.reshape(-1, 2 * hidden).t() @ inputs
        else:
            frames(0, time)
            gweight = gleak.sum(0) if kind == LIF else None
        return gdrive, gweight, gi, gv, gy, None, None, None, None, None, None


def triton_forward(
    layer: SpikingNeuron,
    x: torch.Tensor,
    state: NeuronState | None = None,
    valid: torch.Tensor | None = None,
) -> tuple[torch.Tensor, NeuronState]:
    """``layer(x, state, valid)`` through the Triton recurrence; the contract of ``SpikingNeuron.forward``.

    Arguments
    ---------
    layer : SpikingNeuron
        A layer for which :func:`triton_supports` holds.
    x : torch.Tensor
        Input (batch, time, input_size). Under autocast the matmuls (``W X``, ``U Y``) run in the
        autocast dtype and the recurrence in float32: the drive is cast to float32 first.
    state : NeuronState, optional
        State to continue from; zeros when ``None``. Gradients reach it.
    valid : torch.Tensor, optional
        (batch, time) bool, False on padded frames.

    Returns
    -------
    spikes : torch.Tensor
        (batch, time, hidden_size).
    state : NeuronState
        The state after each sequence's last valid frame.

    Example
    -------
    >>> from snn_asr.neurons import RecurrentGatedLIFNeuron
    >>> layer, x = RecurrentGatedLIFNeuron(4, 3).eval(), torch.randn(2, 5, 4)
    >>> if triton_supports(layer, x):  # CUDA, or TRITON_INTERPRET=1
    ...     assert torch.equal(triton_forward(layer, x)[0], layer(x)[0])
    """
    if not triton_supports(layer, x):
        raise ValueError(
            f"no Triton recurrence for {type(layer).__name__} on {x.device} {x.dtype}: it needs Triton "
            "and a CUDA device (or TRITON_INTERPRET=1 on CPU)"
        )
    given = recurrence_inputs(layer, x, state, valid, layer.quantizer.ema.dtype)
    out, *final = _TritonRecurrence.apply(
        given.drive,
        given.weight,
        *given.state,
        given.kind,
        layer.quantizer,
        layer.training,
        given.mask,
        None if valid is None else valid.contiguous(),
        layer.detach_reset,
    )
    return out, NeuronState(*final)
