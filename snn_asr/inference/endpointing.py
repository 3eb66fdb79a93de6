"""Energy-based endpointing for live decoding: when an utterance in a stream has ended.

A 10 ms hop whose RMS level is below :attr:`Endpointing.silence_db` dBFS is silent;
:attr:`Endpointing.min_silence` seconds of silence after a hop that was not end the utterance.
Light on purpose (torch only): the command line reads its defaults without loading a model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Endpointing", "hop_levels_db"]


@dataclass(frozen=True)
class Endpointing:
    """End of utterance: ``min_silence`` s of hops quieter than ``silence_db`` dBFS RMS, after sound."""

    silence_db: float = -45.0
    min_silence: float = 0.6


def hop_levels_db(samples: torch.Tensor, hop: int, hops: int) -> list[float]:
    """RMS level in dBFS of each of ``hops`` hops of ``hop`` samples (missing samples: silence).

    Example
    -------
    >>> [round(db) for db in hop_levels_db(torch.full((320,), 0.5), 160, 3)]
    [-6, -6, -200]
    """
    pieces = torch.nn.functional.pad(samples[: hops * hop], (0, max(0, hops * hop - samples.numel())))
    rms = pieces.view(hops, hop).pow(2).mean(1).sqrt()
    return (20 * torch.log10(rms.clamp_min(1e-10))).tolist()
