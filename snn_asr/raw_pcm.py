"""Headerless PCM (``.raw``/``.pcm`` files, bytes on stdin), read with ``soundfile``'s RAW reader."""

from __future__ import annotations

import io
import os
from pathlib import Path

import soundfile as sf
import torch

from snn_asr.dataio import DataError, _audio_error, _mono_at

__all__ = ["RAW_ENCODINGS", "read_raw_pcm"]

RAW_ENCODINGS = {
    # name (as ffmpeg -f and arecord spell it): (soundfile subtype, endianness, bytes a sample)
    "s8": ("PCM_S8", "FILE", 1),
    "u8": ("PCM_U8", "FILE", 1),
    "s16le": ("PCM_16", "LITTLE", 2),
    "s16be": ("PCM_16", "BIG", 2),
    "s24le": ("PCM_24", "LITTLE", 3),
    "s24be": ("PCM_24", "BIG", 3),
    "s32le": ("PCM_32", "LITTLE", 4),
    "s32be": ("PCM_32", "BIG", 4),
    "f32le": ("FLOAT", "LITTLE", 4),
    "f32be": ("FLOAT", "BIG", 4),
    "f64le": ("DOUBLE", "LITTLE", 8),
    "f64be": ("DOUBLE", "BIG", 8),
    "mulaw": ("ULAW", "FILE", 1),
    "alaw": ("ALAW", "FILE", 1),
}
"""Headerless PCM encodings :func:`read_raw_pcm` reads (the names ``ffmpeg -f`` and ``arecord`` use)."""


def read_raw_pcm(
    source: str | os.PathLike | bytes,
    rate: int,
    encoding: str = "s16le",
    channels: int = 1,
    sample_rate: int | None = 16000,
) -> torch.Tensor:
    """Reads headerless PCM (a ``.raw``/``.pcm`` file, or bytes such as stdin) as :func:`load_audio` does.

    Arguments
    ---------
    source : str, PathLike or bytes
        The file, or its bytes.
    rate, encoding, channels
        What the bytes hold: ``rate`` Hz, one of :data:`RAW_ENCODINGS`, interleaved channels.
    sample_rate : int or None
        Target rate (``None``: keep ``rate``).

    Returns
    -------
    torch.Tensor
        (samples,) float32 in [-1, 1], mono.

    Example
    -------
    >>> import numpy as np
    >>> pcm = np.array([0, 16384, -16384, 0], dtype="<i2").tobytes()
    >>> read_raw_pcm(pcm, 16000, "s16le").tolist()
    [0.0, 0.5, -0.5, 0.0]
    """
    name = "<stdin>" if isinstance(source, bytes) else os.fspath(source)
    if encoding not in RAW_ENCODINGS:
        raise DataError(f"unknown raw encoding {encoding!r}; use one of {', '.join(RAW_ENCODINGS)}")
    if isinstance(source, bytes):
        data_bytes = source
    elif not os.path.isfile(name):
        raise _audio_error(name, "file not found", "check the path")
    else:
        data_bytes = Path(name).read_bytes()
    subtype, endian, width = RAW_ENCODINGS[encoding]
    frame = width * channels
    if len(data_bytes) < frame:
        raise _audio_error(
            name, f"holds {len(data_bytes)} bytes, not one {encoding} sample", "check the input"
        )
    raw = io.BytesIO(data_bytes[: len(data_bytes) - len(data_bytes) % frame])
    data, _ = sf.read(
        raw,
        dtype="float32",
        always_2d=True,
        format="RAW",
        samplerate=rate,
        channels=channels,
        subtype=subtype,
        endian=endian,
    )
    return _mono_at(data, rate, sample_rate)
