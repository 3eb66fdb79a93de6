"""Fused recurrence of the spiking neurons with a hand-written backward pass (BPTT).

The reference loop (:meth:`SpikingNeuron.forward <snn_asr.neurons.base.SpikingNeuron.forward>`) spends
some thirty small tensor ops per frame, each recorded by autograd. Here one
:class:`torch.autograd.Function` runs a layer over the whole sequence: per frame, one
kernel computes the synaptic current, the membrane, the frame's ``max|V|`` (in training
it updates the running scale, per frame or once after the batch as the quantizer's
``scale_update`` says), the spike function and the padding merge in one pass over
(batch, hidden); ``v2`` adds the matmul ``U (Y[n-1]/M)`` (oneDNN, ``U`` packed once
per sequence: :mod:`snn_asr.primitives.linear`); sigmoids stay torch ops, so they round as in the
reference. The backward pass runs the recurrence in reverse, one kernel (and for ``v2``
one matmul) per frame, then gets ``dU`` from one matmul per sequence. What a layer saves
for its backward pass lives in (time, batch, hidden) buffers that are reused from one
training step to the next (:mod:`snn_asr.primitives.workspace`).

The time loops run compiled (:mod:`snn_asr.fastpaths.native`: the per-frame torch ops called from
C++, the kernels split over batch rows on torch's threads); where no compiler built them,
the same loops run here in Python with the ``numba`` kernels below. The two agree bit for bit.

The forward pass repeats the reference's float operations in the reference's order,
so spikes, states and running scales are bit-identical to it; gradients agree to
float rounding (``tests/test_fused.py``). The straight-through gradient is the
quantizer's: identity where ``|V| <= M`` (and, with ``surrogate="firing"``, where the neuron
fired), zero elsewhere; a detached reset (``detach_reset``) drops the reset's term. Unsigned
codes run the same kernels with their ``n`` and the lower clip at 0.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
import torch

from snn_asr.fastpaths.native import compiled_loops
from snn_asr.neurons import GatedLIFNeuron, LIFNeuron, NeuronState, RecurrentGatedLIFNeuron, SpikingNeuron
from snn_asr.neurons.quantizer import EPS_MARGIN, SpikeQuantizer
from snn_asr.primitives.linear import matmul_nt, pack, uses_onednn
from snn_asr.primitives.workspace import PASSING, empty_huge, workspace_of

LIF, V1, V2 = 0, 1, 2
KINDS = {LIFNeuron: LIF, GatedLIFNeuron: V1, RecurrentGatedLIFNeuron: V2}
# Constants handed to the kernels in the model's dtype (numba would promote Python literals to float64).
_MOMENTUM, _REST, _LEVELS, _THRESHOLD, _SCALE, _MIN_SCALE, _ZERO, _ONE, _TWO, _RESET, _FLOOR = range(11)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _quantize(v, scale, bits, p, out):
    """:func:`~snn_asr.neurons.quantizer.quantize` of the 1-D ``v`` into ``out``, same float ops in order."""
    zero = p[_ZERO]  # constants in locals: read from ``p`` inside the loop, they would block vectorizing
    if bits == 1:
        theta = scale / p[_TWO]
        for h in range(v.shape[0]):
            out[h] = theta if v[h] >= theta else zero
        return
    s, threshold = (p[_ONE] / scale) * p[_LEVELS], p[_THRESHOLD]
    bottom = p[_FLOOR] * scale  # -scale (floor -1, exact), or 0: the unsigned code
    for h in range(v.shape[0]):
        q = np.trunc(s * max(min(v[h], scale), bottom))
        out[h] = zero if abs(q) <= threshold else q / s


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _forward_frame(
    n, kind, per_frame, bits, p, corr, ema, updates, scales, tops, forget, gates, gn, leak, mask, valid, i0,
    current, v, y, out, f_all, c_all, st, ns, levels, levels_all, ls,
):  # fmt: skip
    """Frame ``n`` of the batch: writes ``current[n]`` and ``out[:, n]``, updates ``v``, ``y``.

    ``gates[:, gn]`` holds this frame's drive (lif) or gate pre-activations (v1, v2)
    and ``forget`` the forget gate. What the backward pass needs goes to
    ``f_all``, ``c_all`` and ``st`` at frame ``ns``; the frame's ``max|V|`` over valid rows
    goes to ``tops[n]``, the scale the frame fired with to ``scales[n + 1]`` (``per_frame``:
    after folding ``tops[n]`` into the running scale), and (v2) the next frame's ``Y / M`` to
    ``levels`` and ``levels_all[:, ls]``.
    """
    batch, hidden = v.shape
    zero, one = p[_ZERO], p[_ONE]
    top = zero
    any_valid = False
    for b in range(batch):
        if not valid[b, n]:
            continue
        any_valid = True
        i_prev = i0[b] if n == 0 else current[n - 1, b]
        cur, volt, g, m, vb, yb = current[n, b], out[b, n], gates[b, gn], mask[b], v[b], y[b]
        # short loops of few arrays, so that LLVM vectorizes them (see _backward_frame)
        if kind == LIF:
            for h in range(hidden):
                cur[h] = leak[h] * i_prev[h] + g[h] * m[h]
        else:
            f, c_keep, f_keep = forget[b], c_all[ns, b], f_all[ns, b]
            f_keep[:] = f
            for h in range(hidden):
                c_keep[h] = max(g[hidden + h], zero)
            for h in range(hidden):
                cur[h] = f[h] * i_prev[h] + (one - f[h]) * (c_keep[h] * m[h])
        for h in range(hidden):
            volt[h] = vb[h] + cur[h] - yb[h]  # the new voltage, until quantized below
        for h in range(hidden):
            top = max(top, abs(volt[h]))
    tops[n] = top
    if per_frame and any_valid:
        ema[0] = ema[0] * p[_MOMENTUM] + p[_REST] * top
        scale = max(ema[0] / corr[updates[0]], p[_MIN_SCALE])
        updates[0] += 1
        scales[n + 1] = scale
    else:
        scale = p[_SCALE]
        scales[n + 1] = scales[n]
    for b in range(batch):
        vb, yb, o = v[b], y[b], out[b, n]
        if valid[b, n]:
            keep = st[ns, b]
            for h in range(hidden):
                keep[h] = abs(o[h]) <= scale
                vb[h] = o[h]
            _quantize(vb, scale, bits, p, yb)
            o[:] = yb
        else:
            current[n, b] = i0[b] if n == 0 else current[n - 1, b]
            for h in range(hidden):
                o[h] = yb[h] * zero
    if kind == V2:
        for b in range(batch):
            for h in range(hidden):
                levels[b, h] = y[b, h] / scales[n + 1]
            levels_all[b, ls] = levels[b]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _backward_frame(
    n, kind, p, gout, rec, gi, gv, gy, leak, gleak, mask, valid, i0, current, f_all, c_all, st, gdrive, gframe
):  # fmt: skip
    """Reverse of :func:`_forward_frame`: moves ``dL/d(I, V, Y)`` from after frame ``n`` to before it.

    Writes ``dL/d gates[:, n]`` to ``gdrive[:, n]`` and to ``gframe`` (contiguous, for the
    next matmul), and ``dL/d tau`` into ``gleak``;
    ``rec`` is ``dL/dY[n]`` through frame ``n+1``'s ``U`` (zeros for lif and v1).
    """
    batch, hidden = gv.shape
    zero, one, reset = p[_ZERO], p[_ONE], p[_RESET]
    for b in range(batch):
        if not valid[b, n]:
            for h in range(hidden):
                gy[b, h] += rec[b, h]
            gframe[b, :] = zero
            gdrive[b, n, :] = zero
            continue
        # Row views and short loops of few arrays: numba cannot tell LLVM that the arrays don't
        # overlap, and one loop over all of them was too many to check at run time, so it ran
        # unvectorized (3x slower). ``gi`` holds dL/dI[n] once the second loop has run.
        gf, g_cur, gvb, gyb, rb = gframe[b], gi[b], gv[b], gy[b], rec[b]
        go, keep, m = gout[b, n], st[n, b], mask[b]
        i_prev = i0[b] if n == 0 else current[n - 1, b]
        for h in range(hidden):
            gvb[h] = gvb[h] + ((gyb[h] + rb[h] + go[h]) if keep[h] else zero)  # straight through
        for h in range(hidden):
            gyb[h] = -(gvb[h] * reset)  # reset 1 (exact), or 0: a detached reset
            g_cur[h] = g_cur[h] + gvb[h]
        if kind == LIF:
            for h in range(hidden):
                gleak[h] += g_cur[h] * i_prev[h]
                gf[h] = g_cur[h] * m[h]
            for h in range(hidden):
                g_cur[h] = g_cur[h] * leak[h]
        else:
            f_n, c_n = f_all[n, b], c_all[n, b]
            for h in range(hidden):
                gf[h] = g_cur[h] * (i_prev[h] - c_n[h] * m[h]) * (one - f_n[h]) * f_n[h]
            for h in range(hidden):
                gf[hidden + h] = (g_cur[h] * (one - f_n[h]) * m[h]) if c_n[h] > zero else zero
            for h in range(hidden):
                g_cur[h] = g_cur[h] * f_n[h]
        gdrive[b, n] = gf


def _corrections(momentum: float, steps: int, count: int, like: torch.Tensor) -> torch.Tensor:
    """Bias corrections ``1 - momentum**k`` for ``k = steps+1 .. steps+count``.

    Each is the same 0-d torch op as in ``SpikeQuantizer.scale`` (a vectorized pow
    may round differently); once one rounds to 1 so do the rest.
    """
    corr = like.new_ones(count)
    for k in range(count):
        c = 1.0 - momentum ** torch.tensor(float(steps + k + 1), dtype=like.dtype)
        if float(c) == 1.0:
            break
        corr[k] = c
    return corr


def _constants(
    quantizer: SpikeQuantizer, per_frame: bool, dtype: torch.dtype, detach_reset: bool = False
) -> np.ndarray:
    """The kernels' constants; ``per_frame``: the scale moves every frame (else it stays ``p[_SCALE]``).

    ``p[_RESET]`` is the reset's weight in the backward pass: 1, or 0 for a detached reset;
    ``p[_FLOOR] * M`` the quantizer's lower clip: ``-M``, or 0 for the unsigned code.
    """
    levels = quantizer.levels * (1.0 - EPS_MARGIN)
    scale = 0.0 if per_frame else float(quantizer.scale)
    values = [quantizer.momentum, 1.0 - quantizer.momentum, levels, quantizer.threshold, scale, 1e-8, 0, 1, 2]
    values += [0.0 if detach_reset else 1.0, 0.0 if quantizer.unsigned else -1.0]
    return torch.tensor(values, dtype=dtype).numpy()


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


class _FusedRecurrence(torch.autograd.Function):
    """``(drive, weight, I0, V0, Y0) -> (spikes, I, V, Y)`` of a layer; ``weight``: tau, U or None."""

    @staticmethod
    def forward(ctx, drive, weight, i0, v0, y0, kind, quantizer, train, mask, valid, workspace, detach_reset):
        batch, time, _ = drive.shape
        hidden, dtype = i0.shape[1], drive.dtype
        saving = any(ctx.needs_input_grad[:5])  # for the backward pass
        keep = time if saving else 1
        per_frame = train and quantizer.per_frame  # else the frames fire at a fixed scale
        p = torch.from_numpy(_constants(quantizer, per_frame, drive.dtype, detach_reset))
        corr = _corrections(quantizer.momentum, int(quantizer.steps), time, drive) if per_frame else p
        valid_all = drive.new_ones(batch, time, dtype=torch.bool) if valid is None else valid
        new = drive.new_empty
        take = workspace.take  # reused across steps, once the tensors made from them are gone
        current = take("current", (time, batch, hidden), dtype)
        # Returned: pooled only in training, where the spikes feed the graph and go with it (a view
        # of a pool buffer would surprise elsewhere: ``torch.save`` of it stores the whole buffer).
        shape = (batch, time, hidden)
        out = take("out", shape, dtype) if keep > 1 else empty_huge(*shape, dtype=dtype)
        # v2: U's inputs Y[n-1]/M[n] for n = 0..time, which dU needs
        levels_all = take("levels", (batch, time + 1 if keep > 1 and kind == V2 else 1, hidden), dtype)
        gated = (keep if kind != LIF else 1, batch, hidden)
        f_all, c_all = take("f_all", gated, dtype), take("c_all", gated, dtype)
        st = take("st", (keep, batch, hidden), torch.bool)
        v, y, forget = v0.clone(), y0.clone(), new(batch, hidden)
        u, gates, levels = p[:0], drive, new(0, 0)
        if kind == V2:
            u = pack(weight, batch, uses=time)
            gates, levels = new(batch, 1, 2 * hidden), new(batch, hidden)
            torch.div(y, quantizer.scale, out=levels)  # U's input at frame 0; the kernel writes the next ones
            levels_all[:, 0] = levels
        leak = weight.detach() if kind == LIF else p[:0]
        updates = torch.zeros(1, dtype=torch.int64)  # frames with a valid row: those update the scale
        scales = drive.new_empty(time + 1)  # scales[n]: the scale Y[n-1] fired with (U sees Y[n-1]/M)
        scales[0] = quantizer.scale
        tops = drive.new_empty(time)  # each frame's max |V| over valid rows
        ema = quantizer.ema.view(1)
        args = (kind, per_frame, quantizer.bits, p, corr, ema, updates, scales, tops, drive, u, gates, forget)
        args += (levels,)
        args += (levels_all, leak, mask, valid_all, i0, current, v, y, out, f_all, c_all, st, keep > 1)
        loops = compiled_loops()
        if loops is not None:
            loops.forward(*args, kind == V2 and uses_onednn(levels, u))
        else:
            _numba_forward(*args)
        if per_frame:
            quantizer.steps.add_(int(updates[0]))
        elif train:  # scale_update="batch": as the reference, once after the batch
            quantizer.update(tops, valid)
        if saving and quantizer.surrogate == "firing":  # no gradient where it did not fire
            st.logical_and_(out.transpose(0, 1) != 0)
        ctx.kind, ctx.p, ctx.scales = kind, p, scales
        ctx.save_for_backward(weight, i0, mask, valid_all, current, levels_all, f_all, c_all, st)
        return out, current[-1].clone(), v, y

    @staticmethod
    def backward(ctx, gout, gi_last, gv_last, gy_last):
        weight, i0, mask, valid, current, levels_all, f_all, c_all, st = ctx.saved_tensors
        kind, scales = ctx.kind, ctx.scales
        time, batch, hidden = current.shape
        gi, gv, gy = gi_last.clone(), gv_last.clone(), gy_last.clone()
        rec = torch.zeros_like(gi)
        width = hidden if kind == LIF else 2 * hidden
        gdrive = PASSING.take("drive", (batch, time, width), current.dtype)  # returned: dL/d drive
        gframe = rec.new_empty(batch, width)  # the frame's dL/d gates, contiguous for the matmul
        gleak = torch.zeros(hidden, dtype=current.dtype) if kind == LIF else rec[0, :0]
        leak = weight.detach() if kind == LIF else rec[0, :0]
        ut = pack(weight.t().contiguous(), batch, uses=time) if kind == V2 else rec[0, :0]
        if not gout.is_contiguous():  # e.g. the broadcast gradient of a sum
            gout = PASSING.take("grad", gout.shape, gout.dtype).copy_(gout)
        args = (kind, ctx.p, gout, rec, gi, gv, gy, leak, gleak, mask, valid, i0, current, f_all, c_all, st)
        args += (gdrive, gframe, ut, scales)
        loops = compiled_loops()
        if loops is not None:
            loops.backward(*args, kind == V2 and uses_onednn(gframe, ut))
        else:
            _numba_backward(*args)
        gweight = None
        if kind == LIF:
            gweight = gleak
        elif kind == V2:
            gy += rec
            if ctx.needs_input_grad[1]:  # dU = sum over (b, n) of gdrive[b, n]^T (Y[b, n-1] / M[n])
                gweight = gdrive[0].t() @ levels_all[0, :time]
                for b in range(1, batch):
                    gweight.addmm_(gdrive[b].t(), levels_all[b, :time])
        return gdrive, gweight, gi, gv, gy, None, None, None, None, None, None, None


def _numba_forward(
    kind, per_frame, bits, p, corr, ema, updates, scales, tops, drive, u, gates, forget, levels,
    levels_all, leak, mask, valid, i0, current, v, y, out, f_all, c_all, st, keep_all,
):  # fmt: skip
    """The forward time loop in Python (torch ops, numba kernels): the compiled loops' fallback."""
    hidden, time = i0.shape[1], drive.shape[1]
    frames = drive.unbind(1)
    gates_now, gates_f = gates[:, 0], gates[:, 0, :hidden]
    head = (_np(p), _np(corr), _np(ema), _np(updates), _np(scales), _np(tops), _np(forget), _np(gates))
    tail = (_np(leak), _np(mask), _np(valid), _np(i0))
    state = tuple(_np(t) for t in (current, v, y, out, f_all, c_all, st))
    levels_np = (_np(levels), _np(levels_all))
    for n in range(time):
        if kind == V2:
            torch.add(frames[n], matmul_nt(levels, u), out=gates_now)
            torch.sigmoid(gates_f, out=forget)
        elif kind == V1:
            torch.sigmoid(frames[n][:, :hidden], out=forget)
        _forward_frame(
            n, kind, per_frame, bits, *head, 0 if kind == V2 else n, *tail, *state,
            n if keep_all else 0, *levels_np, n + 1 if keep_all else 0,
        )  # fmt: skip


def _numba_backward(
    kind, p, gout, rec, gi, gv, gy, leak, gleak, mask, valid, i0, current, f_all, c_all, st,
    gdrive, gframe, ut, scales,
):  # fmt: skip
    """The backward time loop in Python: the fallback for :mod:`snn_asr.fastpaths.native`."""
    args = [_np(t) for t in (p, gout, rec, gi, gv, gy, leak, gleak, mask, valid, i0, current)]
    args += [_np(t) for t in (f_all, c_all, st, gdrive, gframe)]
    for n in reversed(range(current.shape[0])):
        _backward_frame(n, kind, *args)
        if kind == V2:
            torch.div(matmul_nt(gframe, ut), scales[n], out=rec)


def supports(layer: SpikingNeuron, x: torch.Tensor) -> bool:
    """Whether :func:`fused_forward` applies: a stock neuron class, on CPU, in float32 or float64.

    Example
    -------
    >>> supports(LIFNeuron(3, 2), torch.zeros(1, 4, 3))
    True
    """
    dtype = layer.quantizer.ema.dtype
    return (
        type(layer) in KINDS
        and x.device.type == "cpu"
        and layer.quantizer.ema.device.type == "cpu"
        and dtype in (torch.float32, torch.float64)
        and x.dtype == dtype
    )


class RecurrenceInputs(NamedTuple):
    """What a fast path's autograd function takes from a layer (:func:`recurrence_inputs`)."""

    drive: torch.Tensor
    weight: torch.Tensor | None
    state: NeuronState
    kind: int
    mask: torch.Tensor


def recurrence_inputs(
    layer: SpikingNeuron,
    x: torch.Tensor,
    state: NeuronState | None,
    valid: torch.Tensor | None,
    dtype: torch.dtype,
) -> RecurrenceInputs:
    """The layer's drive ``BN(W X)`` (contiguous, in ``dtype``), its recurrent weight (tau, U or
    ``None``), the state (zeros when ``None``; contiguous, in ``dtype``), its kind and its dropout
    mask (ones when off: multiplying by 1 is exact, the same as no mask)."""
    batch = x.shape[0]
    if state is None:
        state = layer.initial_state(batch, x.to(dtype))
    mask = layer.dropout_mask(batch, x)
    if mask is None:
        mask = x.new_ones(batch, layer.hidden_size)
    kind = KINDS[type(layer)]
    weight = layer.leak() if kind == LIF else layer.u.weight if kind == V2 else None
    return RecurrenceInputs(
        layer.drive(x, valid).to(dtype).contiguous(),
        weight,
        NeuronState(*(t.to(dtype).contiguous() for t in state)),
        kind,
        mask.contiguous(),
    )


def fused_forward(
    layer: SpikingNeuron,
    x: torch.Tensor,
    state: NeuronState | None = None,
    valid: torch.Tensor | None = None,
) -> tuple[torch.Tensor, NeuronState]:
    """``layer(x, state, valid)`` through the fused recurrence; the contract of ``SpikingNeuron.forward``.

    Arguments
    ---------
    layer : SpikingNeuron
        A layer for which :func:`supports` holds.
    x : torch.Tensor
        Input (batch, time, input_size).
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
    >>> layer = RecurrentGatedLIFNeuron(4, 3).eval()
    >>> x = torch.randn(2, 5, 4)
    >>> torch.equal(fused_forward(layer, x)[0], layer(x)[0])
    True
    """
    if not supports(layer, x):
        raise ValueError(f"no fused recurrence for {type(layer).__name__} on {x.device} {x.dtype}")
    given = recurrence_inputs(layer, x, state, valid, x.dtype)
    out, *final = _FusedRecurrence.apply(
        given.drive,
        given.weight,
        *given.state,
        given.kind,
        layer.quantizer,
        layer.training,
        given.mask,
        None if valid is None else valid.contiguous(),
        workspace_of(layer),
        layer.detach_reset,
    )
    return out, NeuronState(*final)
