"""Batch normalization over batch x time that ignores padded frames."""

from __future__ import annotations

import torch
from torch import nn


class MaskedBatchNorm(nn.BatchNorm1d):
    """``BatchNorm1d`` over the valid frames of a padded ``(batch, time, features)`` batch.

    SpeechBrain's ``BatchNorm1d`` normalizes over every frame, padding included,
    so in training mode a sequence's output would depend on how much padding its
    batch carries. This subclass takes the statistics from the valid frames only
    and otherwise behaves as ``torch.nn.BatchNorm1d`` (same running statistics,
    same ``state_dict``).

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
        if valid is None or not self.training or bool(valid.all()):
            flat = super().forward(x.reshape(-1, x.shape[-1]))
            return flat.reshape(x.shape)
        frames = x[valid]
        normed = super().forward(frames)
        out = torch.zeros_like(x)
        out[valid] = normed
        return out
