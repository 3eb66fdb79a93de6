"""Inference: pretrained model folders (:mod:`~snn_asr.inference.asr`) and the ``snn-asr`` command
(:mod:`~snn_asr.inference.cli`).

``from snn_asr.inference import SpikingASR`` works as before; the names load on first use, so
``snn-asr --help`` does not pay for importing SpeechBrain's inference stack.
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {"SpikingASR": "asr", "ModelError": "asr", "Transcript": "asr", "Segment": "asr"}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)
