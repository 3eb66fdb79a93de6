"""The Triton kernels of the GPU recurrence (:mod:`snn_asr.fastpaths.triton_recurrence`).

Every kernel works on the layer's (batch, hidden) neurons flattened, ``BLOCK`` of them per
program, and loops over a range of frames inside the kernel: all frames at once where the
neurons of a frame do not depend on each other (lif and v1 at a fixed running scale), one
frame per launch where they do (v2's ``U``, and a scale that moves every frame). The
equations are the reference's (:mod:`snn_asr.neurons`), in the reference's float order;
the recurrent product ``U (Y/M)`` is not in here but goes through cuBLAS, so no ``tl.dot``
shape limit applies. Importing this module needs Triton; with ``TRITON_INTERPRET=1`` set
before the import, the kernels run on CPU tensors (how CI tests them).
"""

from __future__ import annotations

import triton
import triton.language as tl

LIF, V1, V2 = 0, 1, 2  # the neuron kinds, as in snn_asr.fastpaths.fused


@triton.jit
def _quantize(v, scale, s, BITS: tl.constexpr, THRESHOLD: tl.constexpr, UNSIGNED: tl.constexpr):
    """:func:`~snn_asr.neurons.quantizer.quantize` with ``s = (1 / M) * levels`` given."""
    if BITS == 1:
        theta = scale * 0.5  # exact, as scale / 2
        return tl.where(v >= theta, theta, 0.0)
    floor = 0.0 if UNSIGNED else -scale
    q = (s * tl.maximum(tl.minimum(v, scale), floor)).to(tl.int32).to(v.dtype)  # trunc: |q| < 2**BITS
    q = tl.where(tl.abs(q) <= THRESHOLD, 0.0, q)
    return tl.math.div_rn(q, s)


@triton.jit
def _fire(
    n, e, inside, active, y, volt, scales_ptr, s_ptr, y_ptr, out_ptr, keep_ptr, levels_ptr,
    stride_ob, stride_on, b, h, E,
    KIND: tl.constexpr, BITS: tl.constexpr, THRESHOLD: tl.constexpr, UNSIGNED: tl.constexpr,
    SAVE: tl.constexpr,
):  # fmt: skip
    """Spikes of frame ``n`` at the scale it fires with (``scales[n + 1]``); padded rows keep ``y``."""
    scale = tl.load(scales_ptr + n + 1)
    spikes = tl.where(active, _quantize(volt, scale, tl.load(s_ptr + n + 1), BITS, THRESHOLD, UNSIGNED), y)
    tl.store(y_ptr + e, spikes, mask=inside)
    tl.store(out_ptr + b * stride_ob + n * stride_on + h, tl.where(active, spikes, 0.0), mask=inside)
    if SAVE:  # where the straight-through gradient passes
        tl.store(keep_ptr + n * E + e, (active & (tl.abs(volt) <= scale)).to(tl.int8), mask=inside)
    if KIND == V2:  # U's input at the next frame: Y[n] / M
        tl.store(levels_ptr + (n + 1) * E + e, tl.math.div_rn(spikes, scale), mask=inside)


@triton.jit
def membrane_kernel(
    n0, n1, g_ptr, stride_gb, stride_gn, f_ptr, stride_fb, stride_fn, leak_ptr, mask_ptr,
    valid_ptr, stride_vb, i0_ptr, cur_ptr, v_ptr, y_ptr, out_ptr, stride_ob, stride_on,
    keep_ptr, levels_ptr, partial_ptr, scales_ptr, s_ptr, E, PROGRAMS,
    H: tl.constexpr, KIND: tl.constexpr, FIRE: tl.constexpr, BITS: tl.constexpr,
    THRESHOLD: tl.constexpr, UNSIGNED: tl.constexpr, SAVE: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """Frames ``n0 .. n1-1``: current, membrane, the frame's partial ``max|V|`` and, with ``FIRE``, spikes.

    ``g`` holds the drive (lif) or gate pre-activations (v1, v2; the candidate in its second
    half), ``f`` the forget gates. Without ``FIRE`` the new membrane stays in ``v`` for
    :func:`fire_kernel`, once :func:`scale_kernel` has moved the scale.
    """
    pid = tl.program_id(0)
    e = pid * BLOCK + tl.arange(0, BLOCK)
    inside = e < E
    b, h = e // H, e % H
    m = tl.load(mask_ptr + e, mask=inside, other=0.0)
    if KIND == LIF:
        leak = tl.load(leak_ptr + h, mask=inside, other=0.0)
    for n in range(n0, n1):
        active = inside & (tl.load(valid_ptr + b * stride_vb + n, mask=inside, other=0) != 0)
        if n == 0:
            i_prev = tl.load(i0_ptr + e, mask=inside, other=0.0)
        else:
            i_prev = tl.load(cur_ptr + (n - 1) * E + e, mask=inside, other=0.0)
        v = tl.load(v_ptr + e, mask=inside, other=0.0)
        y = tl.load(y_ptr + e, mask=inside, other=0.0)
        g = g_ptr + b * stride_gb + n * stride_gn + h
        if KIND == LIF:
            current = leak * i_prev + tl.load(g, mask=inside, other=0.0) * m
        else:
            f = tl.load(f_ptr + b * stride_fb + n * stride_fn + h, mask=inside, other=0.0)
            candidate = tl.maximum(tl.load(g + H, mask=inside, other=0.0), 0.0)
            current = f * i_prev + (1.0 - f) * (candidate * m)
        volt = v + current - y
        tl.store(cur_ptr + n * E + e, tl.where(active, current, i_prev), mask=inside)
        tl.store(partial_ptr + n * PROGRAMS + pid, tl.max(tl.where(active, tl.abs(volt), 0.0), axis=0))
        volt = tl.where(active, volt, v)
        tl.store(v_ptr + e, volt, mask=inside)
        if FIRE:
            _fire(
                n, e, inside, active, y, volt, scales_ptr, s_ptr, y_ptr, out_ptr, keep_ptr, levels_ptr,
                stride_ob, stride_on, b, h, E, KIND, BITS, THRESHOLD, UNSIGNED, SAVE,
            )  # fmt: skip


@triton.jit
def scale_kernel(
    n, partial_ptr, any_ptr, count_ptr, corr_ptr, ema_ptr, scales_ptr, s_ptr, PROGRAMS, momentum, rest,
    LEVELS: tl.constexpr, BLOCK_P: tl.constexpr,
):  # fmt: skip
    """Frame ``n``'s fold of its ``max|V|`` into the running scale, on the device (no host sync).

    As :meth:`SpikeQuantizer.fold <snn_asr.neurons.quantizer.SpikeQuantizer.fold>` then
    ``scale``: where the frame has a valid row, ``ema = ema * momentum + rest * top`` and
    ``M = max(ema / corr, 1e-8)``; elsewhere ``M`` stays. Writes ``scales[n + 1]`` and ``s[n + 1]``.
    """
    p = tl.arange(0, BLOCK_P)
    top = tl.max(tl.load(partial_ptr + n * PROGRAMS + p, mask=p < PROGRAMS, other=0.0), axis=0)
    scale = tl.load(scales_ptr + n)
    if tl.load(any_ptr + n) != 0:
        ema = tl.load(ema_ptr) * momentum + rest * top
        tl.store(ema_ptr, ema)
        scale = tl.maximum(tl.math.div_rn(ema, tl.load(corr_ptr + tl.load(count_ptr + n))), 1e-8)
    tl.store(scales_ptr + n + 1, scale)
    tl.store(s_ptr + n + 1, tl.math.div_rn(1.0, scale) * LEVELS)


@triton.jit
def fire_kernel(
    n, valid_ptr, stride_vb, v_ptr, y_ptr, out_ptr, stride_ob, stride_on, keep_ptr, levels_ptr,
    scales_ptr, s_ptr, E,
    H: tl.constexpr, KIND: tl.constexpr, BITS: tl.constexpr, THRESHOLD: tl.constexpr,
    UNSIGNED: tl.constexpr, SAVE: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """Frame ``n``'s spikes from the membrane :func:`membrane_kernel` left in ``v``."""
    e = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    inside = e < E
    b, h = e // H, e % H
    active = inside & (tl.load(valid_ptr + b * stride_vb + n, mask=inside, other=0) != 0)
    y = tl.load(y_ptr + e, mask=inside, other=0.0)
    volt = tl.load(v_ptr + e, mask=inside, other=0.0)
    _fire(
        n, e, inside, active, y, volt, scales_ptr, s_ptr, y_ptr, out_ptr, keep_ptr, levels_ptr,
        stride_ob, stride_on, b, h, E, KIND, BITS, THRESHOLD, UNSIGNED, SAVE,
    )  # fmt: skip


@triton.jit
def backward_kernel(
    n0, n1, gout_ptr, stride_ob, stride_on, rec_ptr, gi_ptr, gv_ptr, gy_ptr, gleak_ptr, leak_ptr,
    mask_ptr, valid_ptr, stride_vb, i0_ptr, cur_ptr, g_ptr, stride_gb, stride_gn, f_ptr, stride_fb,
    stride_fn, keep_ptr, gdrive_ptr, stride_db, stride_dn, E,
    H: tl.constexpr, KIND: tl.constexpr, RECURRENT: tl.constexpr, DETACH_RESET: tl.constexpr,
    BLOCK: tl.constexpr,
):  # fmt: skip
    """Frames ``n1-1`` down to ``n0`` of BPTT: moves ``dL/d(I, V, Y)`` from after each frame to before it.

    Writes ``dL/d drive`` (lif) or ``dL/d gates`` (v1, v2) of each frame to ``gdrive``, and
    (lif) adds each neuron's ``dL/d tau`` over the frames to ``gleak`` (batch, hidden).
    ``rec`` (``RECURRENT``: v2) is ``dL/dY[n]`` through frame ``n+1``'s ``U``.
    """
    e = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    inside = e < E
    b, h = e // H, e % H
    m = tl.load(mask_ptr + e, mask=inside, other=0.0)
    gi = tl.load(gi_ptr + e, mask=inside, other=0.0)
    gv = tl.load(gv_ptr + e, mask=inside, other=0.0)
    gy = tl.load(gy_ptr + e, mask=inside, other=0.0)
    if KIND == LIF:
        leak = tl.load(leak_ptr + h, mask=inside, other=0.0)
        gleak = tl.load(gleak_ptr + e, mask=inside, other=0.0)
    for k in range(n0, n1):
        n = n1 - 1 - (k - n0)
        active = inside & (tl.load(valid_ptr + b * stride_vb + n, mask=inside, other=0) != 0)
        if RECURRENT:
            rec = tl.load(rec_ptr + e, mask=inside, other=0.0)
        else:
            rec = 0.0
        if n == 0:
            i_prev = tl.load(i0_ptr + e, mask=inside, other=0.0)
        else:
            i_prev = tl.load(cur_ptr + (n - 1) * E + e, mask=inside, other=0.0)
        go = tl.load(gout_ptr + b * stride_ob + n * stride_on + h, mask=inside, other=0.0)
        keep = tl.load(keep_ptr + n * E + e, mask=inside, other=0) != 0
        gv_new = gv + tl.where(keep, gy + rec + go, 0.0)  # straight through
        gi_new = gi + gv_new
        d = gdrive_ptr + b * stride_db + n * stride_dn + h
        if KIND == LIF:
            gleak = tl.where(active, gleak + gi_new * i_prev, gleak)
            tl.store(d, tl.where(active, gi_new * m, 0.0), mask=inside)
            gi_new = gi_new * leak
        else:
            f = tl.load(f_ptr + b * stride_fb + n * stride_fn + h, mask=inside, other=0.0)
            c = tl.load(g_ptr + b * stride_gb + n * stride_gn + H + h, mask=inside, other=0.0)
            c = tl.maximum(c, 0.0)
            gf = gi_new * (i_prev - c * m) * (1.0 - f) * f
            gc = tl.where(c > 0.0, gi_new * (1.0 - f) * m, 0.0)
            tl.store(d, tl.where(active, gf, 0.0), mask=inside)
            tl.store(d + H, tl.where(active, gc, 0.0), mask=inside)
            gi_new = gi_new * f
        if DETACH_RESET:  # the reset - Y[n-1] is a constant: no gradient to Y[n-1] through it
            gy = tl.where(active, 0.0, gy + rec)
        else:
            gy = tl.where(active, -gv_new, gy + rec)
        gv = tl.where(active, gv_new, gv)
        gi = tl.where(active, gi_new, gi)
    tl.store(gi_ptr + e, gi, mask=inside)
    tl.store(gv_ptr + e, gv, mask=inside)
    tl.store(gy_ptr + e, gy, mask=inside)
    if KIND == LIF:
        tl.store(gleak_ptr + e, gleak, mask=inside)
