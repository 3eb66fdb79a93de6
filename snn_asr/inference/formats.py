"""Output formats of ``snn-asr transcribe``: text, JSON Lines and CTM; SRT, WebVTT and TSV subtitles.

Subtitles follow Whisper's CLI (``--output_format srt|vtt|tsv``): SRT numbers its cues and writes
``HH:MM:SS,mmm``; WebVTT starts with ``WEBVTT`` and writes ``[HH:]MM:SS.mmm``; TSV has a
``start``/``end``/``text`` header and integer milliseconds. Cues are made of CTC word times
(:class:`~snn_asr.inference.asr.Segment`): a new cue starts after a pause longer than
:attr:`CueOptions.max_pause`, or when a cue would pass :attr:`CueOptions.max_words`,
:attr:`CueOptions.max_seconds` or :attr:`CueOptions.max_line_width` characters. A CTC word time is
where its peaks lie, tens of milliseconds, so a cue stays on screen :data:`CUE_HOLD` seconds past
its last word's peak, or until the next cue starts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:  # not at run time: the command line reads FORMATS without loading SpeechBrain
    from snn_asr.inference.asr import Segment, Transcript

__all__ = ["CUE_HOLD", "FORMATS", "MANY_FILE_FORMATS", "SUFFIXES", "CueOptions", "cues", "write_result"]

MANY_FILE_FORMATS = ("text", "json", "ctm")
"""Formats that hold the results of many files in one output, one file after another."""
SUBTITLE_FORMATS = ("srt", "vtt", "tsv")
FORMATS = MANY_FILE_FORMATS + SUBTITLE_FORMATS
SUFFIXES = {"text": ".txt", "json": ".json", "ctm": ".ctm", "srt": ".srt", "vtt": ".vtt", "tsv": ".tsv"}
CUE_HOLD = 1.0
"""Seconds a cue stays up after its last word's CTC peak (unless the next cue starts sooner)."""


@dataclass(frozen=True)
class CueOptions:
    """When a subtitle cue ends: ``max_words`` words, ``max_seconds`` long, a pause over
    ``max_pause`` seconds between words, a line over ``max_line_width`` characters."""

    max_words: int = 8
    max_seconds: float = 5.0
    max_pause: float = 0.8
    max_line_width: int = 42  # the common broadcast limit (BBC, Netflix: 42 characters a line)


def cues(words: list[Segment], duration: float, options: CueOptions = CueOptions()) -> list[Segment]:
    """Subtitle cues from timed words: each a :class:`Segment` of its words' text and its display span.

    Example
    -------
    >>> from snn_asr.inference.asr import Segment
    >>> words = [Segment("ONE", 0.3, 0.35), Segment("TWO", 0.8, 0.85), Segment("NINE", 3.0, 3.05)]
    >>> cues(words, duration=3.5)
    [Segment(text='ONE TWO', start=0.3, end=1.85), Segment(text='NINE', start=3.0, end=3.5)]
    """
    groups: list[list[Segment]] = []
    for word in words:
        last = groups[-1] if groups else None
        if (
            last is None
            or word.start - last[-1].end > options.max_pause
            or len(last) >= options.max_words
            or word.end - last[0].start > options.max_seconds
            or len(" ".join(w.text for w in last + [word])) > options.max_line_width
        ):
            groups.append([word])
        else:
            last.append(word)
    from snn_asr.inference.asr import Segment  # deferred: see the imports

    spans = []
    for i, group in enumerate(groups):
        end = min(group[-1].end + CUE_HOLD, duration)
        if i + 1 < len(groups):
            end = min(end, groups[i + 1][0].start)
        spans.append(Segment(" ".join(w.text for w in group), group[0].start, max(end, group[-1].end)))
    return spans


def _clock(seconds: float, decimal: str, always_hours: bool) -> str:
    """``HH:MM:SS<decimal>mmm`` (hours left out below one hour unless ``always_hours``), as Whisper writes."""
    ms = round(seconds * 1000)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    head = f"{hours:02d}:" if always_hours or hours else ""
    return f"{head}{minutes:02d}:{secs:02d}{decimal}{ms:03d}"


def write_result(
    out: TextIO, fmt: str, path: str, transcript: Transcript, options: CueOptions = CueOptions()
) -> None:
    """One input's result in ``fmt`` (one of :data:`FORMATS`; see the module docstring)."""
    if fmt == "text":
        out.write(f"{path}\t{transcript.text}\n")
    elif fmt == "json":
        out.write(json.dumps({"file": path, **transcript.to_dict()}, ensure_ascii=False) + "\n")
    elif fmt == "ctm":
        stem = Path(path).stem
        for word in transcript.words:
            out.write(f"{stem} 1 {word.start:.3f} {word.end - word.start:.3f} {word.text}\n")
    else:
        spans = cues(transcript.words, transcript.duration, options)
        if fmt == "tsv":
            out.write("start\tend\ttext\n")
            out.writelines(f"{round(c.start * 1000)}\t{round(c.end * 1000)}\t{c.text}\n" for c in spans)
        elif fmt == "vtt":
            out.write("WEBVTT\n\n")
            for c in spans:
                out.write(f"{_clock(c.start, '.', False)} --> {_clock(c.end, '.', False)}\n{c.text}\n\n")
        else:
            for i, c in enumerate(spans, 1):
                out.write(f"{i}\n{_clock(c.start, ',', True)} --> {_clock(c.end, ',', True)}\n{c.text}\n\n")
    out.flush()
