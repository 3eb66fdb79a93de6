"""Batch normalization over batch x time that ignores padded frames."""

from __future__ import annotations

import torch
from torch import nn

from snn_asr.primitives.workspace import PASSING, workspace_of


class _BatchStatsNorm(torch.autograd.Function):
    """Batch norm with batch statistics over the valid rows of ``x`` (batch, time, features).

    Why by hand: ``nn.BatchNorm1d`` allocates its output afresh on every call, and at the
    paper's size (16 x 500 frames x 1100 features) first-touching those 35 MB costs 9 ms of
    page faults, twice the kernel's own time. Here the same kernel (``native_batch_norm.out``,
    bit-identical to ``F.batch_norm``) writes into a reused buffer (:mod:`snn_asr.primitives.workspace`),
    as do the gathers of the masked case. The backward pass is torch's
    ``native_batch_norm_backward`` (its ``.out`` variant only adds a copy). ``index`` holds
    the flat (batch x time) indices of the valid frames, or is ``None``.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, momentum, eps, index, workspace):
        features = x.shape[-1]
        flat = x.reshape(-1, features)
        if index is None:
            frames = flat
        else:
            frames = workspace.take("frames", (index.numel(), features), x.dtype, x.device)
            torch.index_select(flat, 0, index, out=frames)
        if frames.shape[0] < 2:
            raise ValueError(f"Expected more than 1 value per channel when training, got {frames.shape[0]}")
        if index is None:  # the output: the drive, on its way to the recurrence
            normed = PASSING.take("drive", frames.shape, x.dtype, x.device)
        else:
            normed = workspace.take("normed", frames.shape, x.dtype, x.device)
        mean, invstd = x.new_empty(features), x.new_empty(features)
        torch.ops.aten.native_batch_norm.out(
            frames, weight, bias, running_mean, running_var, True, momentum, eps,
            out=normed, save_mean=mean, save_invstd=invstd,
        )  # fmt: skip
        ctx.eps = eps
        ctx.save_for_backward(frames, weight, mean, invstd, index)
        if index is None:
            return normed.view(x.shape)
        return _scatter("drive", normed, index, x.shape)

    @staticmethod
    def backward(ctx, grad):
        frames, weight, mean, invstd, index = ctx.saved_tensors
        features = grad.shape[-1]
        grad_frames = grad.reshape(-1, features)
        if index is not None:
            grad_frames = grad_frames.index_select(0, index)
        mask = [ctx.needs_input_grad[0], weight is not None and ctx.needs_input_grad[1]]
        mask.append(weight is not None and ctx.needs_input_grad[2])
        gx, gw, gb = torch.ops.aten.native_batch_norm_backward(
            grad_frames, frames, weight, None, None, mean, invstd, True, ctx.eps, mask
        )
        if gx is not None and index is not None:
            gx = _scatter("bn_grad", gx, index, grad.shape)
        elif gx is not None:
            gx = gx.view(grad.shape)
        return gx, gw, gb, None, None, None, None, None, None


def _scatter(name: str, rows: torch.Tensor, index: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """``rows`` (n, features) put at flat frames ``index`` of zeros shaped (batch, time, features)."""
    out = PASSING.take(name, (shape[0] * shape[1], shape[2]), rows.dtype, rows.device).zero_()
    return out.index_copy_(0, index, rows).view(shape)


class MaskedBatchNorm(nn.BatchNorm1d):
    """``BatchNorm1d`` over the valid frames of a padded ``(batch, time, features)`` batch.

    SpeechBrain's ``BatchNorm1d`` normalizes over every frame, padding included,
    so in training mode a sequence's output would depend on how much padding its
    batch carries. This subclass takes the statistics from the valid frames only
    (padded frames come out as zeros) and otherwise behaves as ``torch.nn.BatchNorm1d``:
    same running statistics, same ``state_dict``, bit-identical outputs.

    Example
    -------
    >>> bn = MaskedBatchNorm(3)
    >>> x = torch.randn(2, 5, 3)
    >>> valid = torch.tensor([[True] * 5, [True] * 2 + [False] * 3])
    >>> bn(x, valid).shape
    torch.Size([2, 5, 3])
    """

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """Normalizes ``x`` of shape (batch, time, features); ``valid`` is (batch, time) bool."""
        if self.weight is not None and x.dtype != self.weight.dtype:  # autocast: normalize in float32,
            x = x.to(self.weight.dtype)  # as autocast does for layer_norm (the drive feeds the recurrence)
        if not self.training and self.running_mean is not None:  # running statistics: frame by frame
            return super().forward(x.reshape(-1, x.shape[-1])).reshape(x.shape)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.num_batches_tracked is not None:  # as nn.BatchNorm1d.forward
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked)
        index = None if valid is None or bool(valid.all()) else valid.flatten().nonzero().squeeze(1)
        return _BatchStatsNorm.apply(
            x, self.weight, self.bias, self.running_mean, self.running_var, momentum, self.eps, index,
            workspace_of(self),
        )  # fmt: skip
