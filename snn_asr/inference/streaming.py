"""Live decoding of an unbounded audio stream (a microphone, a pipe): partial and final hypotheses.

:class:`LiveTranscriber` takes samples in pieces of any size and decodes them with greedy CTC,
carrying the encoder's state from chunk to chunk (event-driven on CPU by default). Each chunk's
Fbank frames are those of a whole-file Fbank (:class:`~snn_asr.inference.fbank_stream.FbankStream`),
every chunk holds at least :data:`~snn_asr.inference.asr.MIN_CHUNK_FRAMES` frames, and only the log-Mel floor
differs: a file's is ``top_db`` below its loudest frame, a stream's ``top_db`` below its loudest
frame so far. Given the file's peak (``peak``), a piped file's final texts, joined, equal
``snn-asr transcribe``'s greedy text of it, token for token (tested); where an endpoint falls
inside a word (the model emitting a word's next piece after ``min_silence`` of silence), that
word is cut in two. Without it (a live stream), frames before the loudest one that lie more than
``top_db`` (80 dB) below it are floored higher in the file than in the stream: on a LibriSpeech
utterance that starts quietly, that made 4 word edits in the 14 words of the bundled digits model's output;
on digits with the loudest frame early, nothing.

**Endpointing** is by energy (:mod:`snn_asr.inference.endpointing`): an utterance ends in a final
hypothesis, and the next one starts. The encoder's state runs on across endpoints, as in
whole-file decoding; endpoints only cut the text.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from snn_asr.inference.asr import MIN_CHUNK_FRAMES, SpikingASR, ctc_runs
from snn_asr.inference.endpointing import Endpointing, hop_levels_db
from snn_asr.inference.fbank_stream import FbankStream

__all__ = ["Endpointing", "LiveTranscriber", "StreamEvent"]


@dataclass(frozen=True)
class StreamEvent:
    """A ``partial`` hypothesis (the utterance so far, when it changed) or an utterance's ``final`` text."""

    kind: str
    text: str
    start: float  # seconds from the start of the stream
    end: float


@dataclass
class ChunkTiming:
    """One chunk's processing: its audio length and the seconds it took (features, encoder, CTC)."""

    audio: float
    seconds: float


@dataclass
class _Utterance:
    start_frame: int
    before: int  # the best id of the frame before it: a token run going on across the endpoint is not new
    best: list[torch.Tensor] = field(default_factory=list)  # per-frame best ids of each chunk
    heard: bool = False  # a non-silent hop since the start
    silent_run: int = 0  # trailing silent hops
    text: str = ""


class LiveTranscriber:
    """Greedy CTC decoding of a stream pushed in pieces; yields :class:`StreamEvent` s.

    Arguments
    ---------
    asr : SpikingASR
        A streamable model (causal encoder carrying ``hx``).
    chunk_frames : int
        Fbank frames per chunk (10 ms each): the latency floor; at least ``MIN_CHUNK_FRAMES``.
    endpointing : Endpointing, optional
        When an utterance ends (default: :class:`Endpointing`'s).
    peak : float, optional
        The loudest log-Mel value to floor against from the first frame on (a file's, where it is
        known ahead); ``None``, a live stream: its loudest value so far.

    Example
    -------
    >>> asr = SpikingASR.from_hparams(source="pretrained/snn-digits")
    >>> live = LiveTranscriber(asr)
    >>> events = live.push(torch.zeros(8000)) + live.finish()
    >>> [e.kind for e in events]
    []
    """

    def __init__(
        self,
        asr: SpikingASR,
        chunk_frames: int = 16,
        endpointing: Endpointing | None = None,
        peak: float | None = None,
    ):
        if not asr.streamable:
            raise ValueError("this model's encoder cannot stream (bidirectional, or no carried state)")
        self.asr, self.endpointing = asr, endpointing or Endpointing()
        self.chunk = max(chunk_frames, MIN_CHUNK_FRAMES)
        self.fbank = FbankStream(asr.parts.compute_features, peak)  # the floor is top_db below the peak
        self.encoder: Callable[[torch.Tensor], torch.Tensor] = asr.encoder_runner()
        self.done = 0  # frames decoded
        self.timings: list[ChunkTiming] = []
        self.utterance = _Utterance(0, asr.blank_index)

    def push(self, samples: torch.Tensor) -> list[StreamEvent]:
        """Adds (samples,) float samples at the model's rate; returns the events they complete."""
        self.fbank.push(samples)
        events = []
        while self.fbank.computable - self.done >= self.chunk + MIN_CHUNK_FRAMES:  # never a short last chunk
            events += self._decode(self.done + self.chunk)
        return events

    def finish(self) -> list[StreamEvent]:
        """Decodes what is left at the end of the stream; returns its events, the last utterance's final."""
        events = []
        if self.fbank.total > self.done:
            events += self._decode(self.fbank.total)
        return events + self._final()

    def _decode(self, end: int) -> list[StreamEvent]:
        started = time.perf_counter()
        hop, first = self.fbank.hop, self.fbank.first
        energies = hop_levels_db(self.fbank.buffer[(self.done - first) * hop :], hop, end - self.done)
        feats = self.fbank.take(end)
        with torch.no_grad():
            encoded = self.encoder(self.asr.parts.normalize(feats))
            best = self.asr.parts.ctc_lin(encoded)[0].argmax(-1).cpu()
        self.timings.append(
            ChunkTiming((end - self.done) * self.asr.frame_shift, time.perf_counter() - started)
        )
        events, start = [], self.done
        for offset, db in enumerate(energies):  # endpoints can fall inside a chunk
            silent = db < self.endpointing.silence_db
            utt = self.utterance
            utt.heard |= not silent
            utt.silent_run = utt.silent_run + 1 if silent else 0
            if utt.heard and utt.silent_run * self.asr.frame_shift >= self.endpointing.min_silence:
                utt.best.append(best[start - self.done : self.done + offset + 1 - self.done])
                events += self._final(next_start=self.done + offset + 1)
                start = self.done + offset + 1
        self.utterance.best.append(best[start - self.done :])
        self.done = end
        text = self._text()
        if text != self.utterance.text:
            self.utterance.text = text
            events.append(StreamEvent("partial", text, *self._span(end)))
        return events

    def _text(self) -> str:
        best = torch.cat([torch.tensor([self.utterance.before]), *self.utterance.best])
        return self.asr.text_of([i for i, start, _ in ctc_runs(best, self.asr.blank_index) if start > 0])

    def _span(self, end: int) -> tuple[float, float]:
        return self.utterance.start_frame * self.asr.frame_shift, end * self.asr.frame_shift

    def _final(self, next_start: int | None = None) -> list[StreamEvent]:
        """The current utterance's final event (none if it is empty), and a new utterance."""
        end = self.done if next_start is None else next_start
        text = self._text()
        event = [StreamEvent("final", text, *self._span(end))] if text else []
        last = [b for b in self.utterance.best if b.numel()]
        self.utterance = _Utterance(end, int(last[-1][-1]) if last else self.utterance.before)
        return event
