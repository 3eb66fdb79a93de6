"""Fbank frames of a waveform that arrives in pieces, each exactly as a whole-file Fbank has it.

SpeechBrain's ``Fbank`` centres its STFT windows, so frame ``f`` needs the samples up to
``f * hop + n_fft / 2``. :func:`fbank_frames` computes frames ``f0:f1`` from the samples their
windows reach; :class:`FbankStream` keeps a stream's recent samples and hands out the frames
whose windows have arrived, with the log-Mel floor ``top_db`` below the loudest frame so far (a
file's is below its loudest frame: the one difference). :class:`~snn_asr.inference.streaming.LiveTranscriber`
and :class:`StreamingFbank` (SpeechBrain ``StreamingASR``'s feature extractor) both run on it.

SpeechBrain's own ``StreamingFeatureWrapper`` does not fit a bare ``Fbank``: ``StreamingASR``
feeds it ``(stride - 1) * chunk_size`` samples (159 hops' worth of 16 frames, not 160), and the
centred STFT adds a frame to every call, so its frames drift from the whole file's.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from speechbrain.lobes.features import Fbank
from speechbrain.utils.filter_analysis import FilterProperties
from torch import nn

__all__ = [
    "MIN_CHUNK_FRAMES",
    "FbankStream",
    "StreamingFbank",
    "fbank_context_frames",
    "fbank_frames",
    "floored_values",
    "unfloored",
]

MIN_CHUNK_FRAMES = 16
"""Fewest frames in a chunk of chunked decoding: shorter requests are raised to it, and a file's
short tail joins the chunk before it. BLAS libraries run products of few rows on other kernels,
which round differently: MKL on an Intel Xeon, with a transposed weight (``F.linear``, SpeechBrain's
Fbank), below 16 rows (measured for inputs of 40 to 2048). With at least 16 frames a chunk's products
run on the kernels a whole-file pass uses, and its rows come out bit for bit the same; without it,
a file's last few frames differed in the last bit, and a spike fed by them could flip."""


def fbank_context_frames(fbank: Fbank) -> int:
    """Frames of samples an STFT window reaches on each side of its frame (``ceil(n_fft / 2 / hop)``)."""
    stft = fbank.compute_STFT
    return -(-(stft.n_fft // 2) // stft.hop_length)


@contextmanager
def unfloored(fbank: Fbank) -> Iterator[Fbank]:
    """``fbank`` without its log-Mel floor (``top_db`` below each call's maximum) while in the block."""
    top_db, fbank.compute_fbanks.top_db = fbank.compute_fbanks.top_db, float("inf")
    try:
        yield fbank
    finally:
        fbank.compute_fbanks.top_db = top_db


def fbank_frames(fbank: Fbank, signal: torch.Tensor, f0: int, f1: int, first: int = 0) -> torch.Tensor:
    """Fbank frames ``f0:f1`` (1, f1 - f0, n_mels) as a whole-file Fbank has them, before its floor.

    Each is computed on the waveform plus the neighbouring samples its STFT window reaches.
    ``signal`` holds the stream from frame ``first`` on (``first * hop`` samples dropped, at
    least :func:`fbank_context_frames` before ``f0`` kept). Fbank floors each call at its own
    maximum - ``top_db``; that floor is left to the caller (the file's, or a stream's so far).

    Example
    -------
    >>> fbank = Fbank(n_mels=40)
    >>> wav = torch.randn(16000)
    >>> whole = fbank(wav[None])
    >>> part = fbank_frames(fbank, wav, 30, 60)
    >>> top_db = fbank.compute_fbanks.top_db
    >>> bool(torch.equal(part, torch.max(whole[:, 30:60], whole.amax() - top_db)))
    True
    """
    hop, margin = fbank.compute_STFT.hop_length, fbank_context_frames(fbank)
    s0 = max(0, f0 - margin)
    assert s0 >= first, "the stream was trimmed past the samples frame f0 needs"
    with unfloored(fbank):
        feats = fbank(signal[None, (s0 - first) * hop : (f1 + margin - first) * hop])
    return feats[:, f0 - s0 : f1 - s0]


def floored_values(fbank: Fbank, signal: torch.Tensor) -> int:
    """How many Fbank values of (samples,) ``signal`` its log-Mel floor (``top_db`` below the loudest
    frame) raised: where it is not 0, a stream (floored below its loudest frame so far) differs.

    Example
    -------
    >>> floored_values(Fbank(n_mels=40), torch.randn(8000))
    0
    """
    with unfloored(fbank):
        raw = fbank(signal[None])
    return int((fbank(signal[None]) != raw).sum())


class FbankStream:
    """A waveform arriving in pieces (:meth:`push`), handed out as whole-file Fbank frames (:meth:`take`).

    Arguments
    ---------
    fbank : Fbank
        SpeechBrain's ``Fbank`` of the model.
    peak : float, optional
        The loudest frame's value, where known (a file's): the floor is then the file's.

    Example
    -------
    >>> fbank, wav = Fbank(n_mels=40), torch.randn(16000)
    >>> stream = FbankStream(fbank)
    >>> parts = []
    >>> for start in range(0, 16000, 2544):
    ...     stream.push(wav[start : start + 2544])
    ...     parts.append(stream.take(stream.computable))
    >>> parts.append(stream.take(stream.total))
    >>> bool(torch.allclose(torch.cat(parts, 1), fbank(wav[None])))
    True
    """

    def __init__(self, fbank: Fbank, peak: float | None = None):
        self.fbank = fbank
        self.hop = fbank.compute_STFT.hop_length
        self.margin = fbank_context_frames(fbank)
        self.top_db = fbank.compute_fbanks.top_db if fbank.compute_fbanks.log_mel else None
        self.peak = -math.inf if peak is None else peak
        self.buffer = torch.zeros(0)
        self.first = 0  # the frame the buffer starts at
        self.received = 0  # samples
        self.done = 0  # frames handed out

    def push(self, samples: torch.Tensor) -> None:
        """Adds (samples,) float samples at the model's rate."""
        self.buffer = torch.cat([self.buffer, samples.float().flatten().to(self.buffer.device)])
        self.received += samples.numel()

    @property
    def computable(self) -> int:
        """Frames whose STFT windows have arrived (a later sample changes none of them)."""
        return max(0, self.received // self.hop - self.margin)

    @property
    def total(self) -> int:
        """The frames a whole-file (centred) Fbank of what has arrived has: at the end of a stream."""
        return self.received // self.hop + 1 if self.received else 0

    def take(self, end: int) -> torch.Tensor:
        """Frames ``done:end`` (1, end - done, n_mels), floored ``top_db`` below the loudest so far."""
        if end <= self.done:
            return self.buffer.new_zeros(1, 0, self.fbank.compute_fbanks.n_mels)
        feats = fbank_frames(self.fbank, self.buffer, self.done, end, first=self.first)
        if self.top_db is not None:
            self.peak = max(self.peak, float(feats.amax()))
            feats = torch.max(feats, torch.tensor(self.peak - self.top_db))
        keep_from = max(self.first, end - self.margin)  # the samples no frame from end on needs go
        self.buffer = self.buffer[(keep_from - self.first) * self.hop :]
        self.first, self.done = keep_from, end
        return feats


class StreamingFbank(nn.Module):
    """SpeechBrain ``StreamingASR``'s ``fea_streaming_extractor``: Fbank, then the normaliser, by chunks.

    Each call takes the next chunk of samples (batch 1) and returns the normalised frames that
    became computable, in groups of at least :data:`MIN_CHUNK_FRAMES` (none until then), so the
    encoder sees the frames, and values, of a whole-file pass. The zero chunks ``StreamingASR``
    appends at the end (:meth:`get_recommended_final_chunk_count`) bring out the file's last
    frames, and frames of the silence after it.

    Arguments
    ---------
    compute_features : Fbank
        The model's ``Fbank``.
    normalize : nn.Module
        The model's frozen ``InputNormalization``.
    """

    def __init__(self, compute_features: Fbank, normalize: nn.Module):
        super().__init__()
        self.compute_features, self.normalize = compute_features, normalize
        self.properties: FilterProperties = compute_features.get_filter_properties()

    def make_streaming_context(self) -> FbankStream:
        return FbankStream(self.compute_features)

    def get_recommended_final_chunk_count(self, frames_per_chunk: int) -> int:
        """Zero chunks that bring out every frame of the file: its windows' reach, then a whole group."""
        needed = (fbank_context_frames(self.compute_features) + 2 * MIN_CHUNK_FRAMES) * self.properties.stride
        return -(-needed // frames_per_chunk)

    def forward(
        self, chunk: torch.Tensor, context: FbankStream, lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(1, samples) -> (1, frames, n_mels) normalised features; ``frames`` may be 0."""
        if chunk.shape[0] != 1:
            raise ValueError("StreamingFbank streams one signal at a time (batch 1)")
        context.push(chunk[0])
        if context.computable - context.done < MIN_CHUNK_FRAMES:
            return chunk.new_zeros(1, 0, self.compute_features.compute_fbanks.n_mels)
        return self.normalize(context.take(context.computable))
