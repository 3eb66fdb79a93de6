"""Pretrained models: load an exported model folder and transcribe audio, whole or streamed.

A model folder (written by ``tools/export_model.py``) is laid out like a SpeechBrain model card:
``hyperparams.yaml`` (inference only), ``model.ckpt`` (``ModuleList[enc, ctc_lin]``),
``normalizer.ckpt`` (frozen global Fbank statistics), ``tokenizer.ckpt`` (a sentencepiece model
or a ``CTCTextEncoder`` label file), optionally ``lm.arpa`` (the recipe's n-gram), ``rnnlm.ckpt``
(a character RNNLM that re-ranks the beam's N-best list, built by the YAML's ``rnnlm``) and a
``README.md`` model card. Its ``encoder`` is a ``LengthsCapableSequential`` of
``compute_features -> normalize -> enc -> ctc_lin -> log_softmax``, so SpeechBrain's stock
``speechbrain.inference.ASR.EncoderASR`` loads and runs it too (greedy CTC).

:class:`SpikingASR` adds to ``EncoderASR``: audio of any sample rate and channel count
(:func:`snn_asr.dataio.load_audio`), word and token times, CTC prefix beam search with an optional
kenlm n-gram, chunked (streaming) decoding of long audio through the encoder's carried state, and
op counts (:func:`snn_asr.ops.count_ops`). For a causal encoder (unidirectional ``SpikingRNN``,
LSTM, GRU) streaming gives the same tokens as decoding the whole file: chunks of waveform overlap
so that every Fbank frame sees exactly the samples a whole-file Fbank would, the per-utterance
log-Mel floor (``top_db``) is taken from a first pass over the whole file, and no chunk is shorter
than :data:`MIN_CHUNK_FRAMES` (see there why).
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import pickle
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from speechbrain.dataio.encoder import CTCTextEncoder
from speechbrain.decoders.ctc import CTCPrefixBeamSearcher
from speechbrain.inference.ASR import EncoderASR
from torch import nn

from snn_asr.dataio import DataError, load_audio
from snn_asr.dispatch import event_driven_stream, prepare
from snn_asr.inference.fbank_stream import MIN_CHUNK_FRAMES, fbank_context_frames, fbank_frames
from snn_asr.inference.trust import UntrustedModelError, check_model_yaml
from snn_asr.ops import OpsReport, count_ops
from snn_asr.recipes.rnnlm import rnnlm_rescorer

__all__ = [
    "CHAIN_YAML",
    "LM_FILE",
    "RNNLM_FILE",
    "RNNLM_KEYS",
    "MIN_CHUNK_FRAMES",
    "ModelError",
    "Segment",
    "SpikingASR",
    "Transcript",
    "chunk_bounds",
]

LM_FILE = "lm.arpa"
RNNLM_FILE = "rnnlm.ckpt"
RNNLM_KEYS = ("rnnlm_weight", "rnnlm_topk", "bos_index", "eos_index", "rnnlm")
"""A folder's RNNLM entries: its rescoring weight and N-best size, the LM's sentence ids, the LM."""
CHAIN_YAML = """encoder: !new:speechbrain.nnet.containers.LengthsCapableSequential
    compute_features: !ref <compute_features>
    normalize: !ref <normalize>
    enc: !ref <enc>
    ctc_lin: !ref <ctc_lin>
    log_softmax: !ref <log_softmax>
"""
"""A model folder's inference chain, as :attr:`SpikingASR.parts` reads it (and SpeechBrain's
``EncoderASR`` runs it): the YAML both exporters write (tools/export_model.py, ONNX export)."""
SPM_SPACE = "▁"
REEXPORT = "re-export the model with: python tools/export_model.py <recipe_output_folder> <model_dir>"


def chunk_bounds(total: int, chunk_frames: int) -> list[tuple[int, int]]:
    """``(start, end)`` frames of each chunk of ``total`` frames: ``chunk_frames`` long, at least
    :data:`MIN_CHUNK_FRAMES`, and a tail shorter than that joined to the chunk before it.

    Example
    -------
    >>> chunk_bounds(100, 40)
    [(0, 40), (40, 80), (80, 100)]
    >>> chunk_bounds(90, 40)
    [(0, 40), (40, 90)]
    >>> chunk_bounds(40, 5)
    [(0, 16), (16, 40)]
    """
    size = max(chunk_frames, MIN_CHUNK_FRAMES)
    bounds = [(start, min(total, start + size)) for start in range(0, total, size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < MIN_CHUNK_FRAMES:
        bounds[-2:] = [(bounds[-2][0], total)]
    return bounds


class ModelError(DataError):
    """A model folder that cannot be loaded: missing or corrupt file, wrong layout (one line)."""


@dataclass(frozen=True)
class Segment:
    """A word or token with its time span in seconds (CTC frames times :meth:`SpikingASR.ctc_frame_shift`).

    ``start`` is where CTC's peak run for the first token begins and ``end`` where the last
    token's run ends: CTC marks a token in a run of a few frames (tens of ms), not over the
    sound, so a word's span is not its spoken length (see docs/inference.md).
    """

    text: str
    start: float
    end: float


@dataclass
class Transcript:
    """One file's result: text, timed words and tokens, audio length and (optionally) op counts."""

    text: str
    words: list[Segment]
    tokens: list[Segment]
    duration: float
    seconds: float = 0.0  # processing time
    ops: OpsReport | None = None

    @property
    def rtf(self) -> float:
        """Real-time factor: processing time / audio duration."""
        return self.seconds / max(self.duration, 1e-9)

    def to_dict(self) -> dict:
        """Plain data for JSON: ``text``, ``duration``, ``words`` and ``tokens`` as dicts."""
        return {
            "text": self.text,
            "duration": self.duration,
            "words": [dataclasses.asdict(w) for w in self.words],
            "tokens": [dataclasses.asdict(t) for t in self.tokens],
        }


class _Stateful(nn.Module):
    """``enc(x, hx=state)`` as ``forward(x)``, keeping the state and output (for :func:`count_ops`).

    An encoder without ``hx`` (a ``CRDNN``, a CNN front end before the RNN) is called as ``enc(x)``.
    """

    def __init__(self, enc: nn.Module, hx=None):
        super().__init__()
        self.enc, self.hx, self.out = enc, hx, None
        self.carries_state = "hx" in inspect.signature(enc.forward).parameters
        self.training = enc.training  # in the mode of what it wraps (eval at inference), not nn.Module's True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.carries_state:
            self.out, self.hx = self.enc(x, hx=self.hx)
        else:
            out = self.enc(x)
            self.out = out[0] if isinstance(out, tuple) else out
        return self.out


def ctc_runs(best: torch.Tensor, blank: int) -> list[tuple[int, int, int]]:
    """Tokens greedy CTC emits from per-frame best ids, as ``(id, first frame, end frame)``.

    Example
    -------
    >>> ctc_runs(torch.tensor([0, 3, 3, 0, 0, 3, 5, 5, 0]), blank=0)
    [(3, 1, 3), (3, 5, 6), (5, 6, 8)]
    """
    ids, counts = torch.unique_consecutive(best, return_counts=True)
    ends = counts.cumsum(0)
    return [(int(i), int(e - c), int(e)) for i, c, e in zip(ids.tolist(), counts, ends) if i != blank]


class SpikingASR(EncoderASR):
    """SpeechBrain's ``EncoderASR`` for exported snn-asr models, with timings, beam search and streaming.

    Example
    -------
    >>> asr = SpikingASR.from_hparams(source="pretrained/snn-digits")  # the bundled model
    >>> asr.transcribe_file("x.flac")  # doctest: +SKIP
    'ONE TWO THREE'
    >>> asr.set_decoder(beam_size=8, lm_path="pretrained/snn-digits/lm.arpa")  # doctest: +SKIP
    >>> asr.transcribe_path("long.wav", chunk_seconds=30).words[0]  # doctest: +SKIP
    Segment(text='ONE', start=0.31, end=0.62)
    """

    folder: Path | None = None
    """The local model folder it was loaded from (``None``: fetched by SpeechBrain from elsewhere)."""

    event_driven = False
    """Run a spiking encoder through :class:`~snn_asr.fastpaths.event_driven.EventDrivenRNN` where it applies
    (one file at a time on CPU, without ``report``): work follows the spike count. Its sums run in
    another order than the dense path's, so a spike can differ by one quantum (see that module),
    and a quantized recurrent network can carry such a difference on: on the bundled digits model
    3 of 12 held-out transcripts changed. Off by default, so results equal the training-time path."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.searcher: CTCPrefixBeamSearcher | None = None
        self.rescorer = None  # SpeechBrain's RescorerBuilder over the folder's RNNLM, if set_decoder used it

    @classmethod
    def from_hparams(
        cls, source: str | os.PathLike, *args, local_only: bool = False, trust_code: bool = False, **kwargs
    ) -> SpikingASR:
        """Loads a model folder (or any ``source`` SpeechBrain fetches); problems raise :class:`ModelError`.

        A local folder loads offline and in place when no ``savedir`` is given. ``local_only``
        (the CLI's ``MODEL_DIR``): a path that is not here is an error, never a Hugging Face repo id.
        A local folder's ``hyperparams.yaml`` may only use the modules of
        :data:`~snn_asr.inference.trust.ALLOWED_MODULES` unless ``trust_code``
        (:mod:`snn_asr.inference.trust`).
        """
        _check_device(str((kwargs.get("run_opts") or {}).get("device", "cpu")))
        folder = Path(source)
        fix = "pass a folder written by tools/export_model.py (e.g. pretrained/snn-digits)"
        if folder.is_file():
            raise ModelError(f"{str(folder)!r} is a file, not a model folder; {fix}.")
        hub_id = re.fullmatch(r"[\w.-]+/[\w.-]+", os.fspath(source)) and not local_only
        if not folder.exists() and not hub_id:
            raise ModelError(f"model folder {str(folder)!r} does not exist; {fix}.")
        if folder.is_dir() and not (folder / kwargs.get("hparams_file", "hyperparams.yaml")).is_file():
            raise ModelError(f"{str(folder)!r} is not a model folder (no hyperparams.yaml); {REEXPORT}.")
        if folder.is_dir() and not trust_code:
            try:
                check_model_yaml(folder / kwargs.get("hparams_file", "hyperparams.yaml"))
            except UntrustedModelError as err:
                raise ModelError(str(err)) from None
        hparams_file = folder / kwargs.get("hparams_file", "hyperparams.yaml")
        if folder.is_dir() and re.search(r"^model_folder:", hparams_file.read_text(encoding="utf-8"), re.M):
            overrides = dict(kwargs.get("overrides") or {})  # an ONNX folder names its graph by the folder
            kwargs["overrides"] = {**overrides, "model_folder": str(folder.resolve())}
        try:
            asr = super().from_hparams(os.fspath(source), *args, **kwargs)
        except DataError as err:  # ours, already one line naming the file (an ONNX folder's graph)
            raise ModelError(str(err)) from None
        except Exception as err:  # torch, sentencepiece and hyperpyyaml raise many types
            if not folder.exists():  # "namespace/name": not here, and not fetched as a Hugging Face repo
                why = " ".join(str(err).split())[:120]
                hub = f"does not exist, nor could it be fetched from the Hugging Face hub ({why})"
                raise ModelError(f"model folder {str(folder)!r} {hub}; {fix}.") from err
            raise ModelError(_describe_load_error(folder, err)) from err
        _check_graph_fits(asr)
        prepare(asr.device)  # a first build of the CPU loops is announced here, not timed in a decode
        asr.folder = folder if folder.is_dir() else None
        return asr

    def folder_decoding(self) -> tuple[int, Path | None]:
        """The decoding the model folder was exported with: its ``beam_size`` (0, greedy, where it
        has none) and its ``lm.arpa`` where there is one and a beam to use it in.

        Example
        -------
        >>> SpikingASR.from_hparams(source="pretrained/snn-digits").folder_decoding()
        (0, None)
        """
        beam = int(getattr(self.hparams, "beam_size", 0) or 0)
        lm = self.folder / LM_FILE if self.folder is not None else None
        return beam, lm if beam > 0 and lm is not None and lm.is_file() else None

    def folder_rnnlm(self) -> nn.Module | None:
        """The folder's RNNLM (its YAML's ``rnnlm``, weights from ``rnnlm.ckpt``), or ``None``.

        Example
        -------
        >>> SpikingASR.from_hparams(source="pretrained/snn-digits").folder_rnnlm() is None
        True
        """
        return getattr(self.hparams, "rnnlm", None)

    # ------------------------------------------------------------------ model facts
    @property
    def parts(self) -> nn.Module:
        """The inference chain: ``compute_features``, ``normalize``, ``enc``, ``ctc_lin``, ``log_softmax``."""
        return self.mods.encoder

    @property
    def sample_rate(self) -> int:
        """Sample rate the model expects (Hz); audio is resampled to it."""
        return int(self.hparams.sample_rate)

    @property
    def frame_shift(self) -> float:
        """Seconds between Fbank frames (the STFT hop)."""
        return self.parts.compute_features.compute_STFT.hop_length / self.sample_rate

    def feature_frames(self, samples: int) -> int:
        """Fbank frames of ``samples`` samples: one per hop, plus one (the STFT is centred)."""
        return samples // self.parts.compute_features.compute_STFT.hop_length + 1

    def ctc_frame_shift(self, feature_frames: int, ctc_frames: int) -> float:
        """Seconds between CTC frames: :attr:`frame_shift` times the encoder's time subsampling.

        The subsampling (a ``CRDNN``'s time pooling, a ``ConvolutionFrontEnd``'s stride; 1 for a
        bare RNN) is read off the model's output: Fbank frames in / CTC frames out, rounded to the
        integer stride ``s`` (a padded stride leaves ``ceil(frames / s)`` frames, a pooling
        ``floor(frames / s)``: both round back to ``s`` beyond a few frames).

        Example
        -------
        >>> asr = SpikingASR.from_hparams(source="pretrained/snn-digits")
        >>> asr.ctc_frame_shift(301, 301), asr.ctc_frame_shift(301, 151)
        (0.01, 0.02)
        """
        return self.frame_shift * max(1, round(feature_frames / max(1, ctc_frames)))

    @property
    def blank_index(self) -> int:
        return int(self.hparams.blank_index)

    @property
    def streamable(self) -> bool:
        """Whether chunked decoding equals whole-file decoding: a causal encoder taking ``hx``, no deltas."""
        fbank, enc = self.parts.compute_features, self.parts.enc
        return (
            not getattr(enc, "bidirectional", False)
            and "hx" in inspect.signature(enc.forward).parameters
            and not (fbank.deltas or fbank.context)
        )

    def vocabulary(self) -> list[str]:
        """Token labels by id: sentencepiece pieces, or ``▁``-prefixed labels of a ``CTCTextEncoder``.

        Each label of a ``CTCTextEncoder`` (e.g. a TIMIT phone) is its own word.
        """
        if isinstance(self.tokenizer, CTCTextEncoder):
            return [SPM_SPACE + self.tokenizer.ind2lab[i] for i in range(len(self.tokenizer))]
        return [self.tokenizer.id_to_piece(i) for i in range(self.tokenizer.vocab_size())]

    def set_decoder(
        self,
        beam_size: int = 0,
        lm_path: str | os.PathLike | None = None,
        lm_weight: float | None = None,
        lm_bonus: float | None = None,
        rnnlm: nn.Module | None = None,
        rnnlm_weight: float | None = None,
    ) -> None:
        """Greedy CTC (``beam_size=0``) or SpeechBrain's ``CTCPrefixBeamSearcher``, optionally with kenlm
        and an RNNLM (e.g. :meth:`folder_rnnlm`) re-ranking its ``rnnlm_topk`` best hypotheses.

        ``lm_weight``/``lm_bonus`` (the searcher's ``alpha``/``beta``) and ``rnnlm_weight`` default
        to the recipe's values.
        """
        self.rescorer = None
        if beam_size <= 0:
            if lm_path or rnnlm is not None:
                raise ValueError("a language model needs beam search: pass a beam size > 0")
            self.searcher = None
            return
        lm_options = {}
        if lm_path:
            if not Path(lm_path).is_file():
                raise ModelError(f"LM file {str(lm_path)!r} not found; pass an ARPA file (e.g. {LM_FILE}).")
            lm_options = {
                "kenlm_model_path": os.fspath(lm_path),
                "alpha": self.hparams.lm_weight if lm_weight is None else lm_weight,
                "beta": self.hparams.lm_bonus if lm_bonus is None else lm_bonus,
            }
        if rnnlm is not None:
            weight = self.hparams.rnnlm_weight if rnnlm_weight is None else rnnlm_weight
            bos, eos = self.hparams.bos_index, self.hparams.eos_index
            self.rescorer = rnnlm_rescorer(rnnlm.to(self.device).eval(), self.tokenizer, weight, bos, eos)
            lm_options["topk"] = self.hparams.rnnlm_topk
        self.searcher = CTCPrefixBeamSearcher(
            blank_index=self.blank_index, vocab_list=self.vocabulary(), beam_size=beam_size, **lm_options
        )

    # ------------------------------------------------------------------ decoding
    def text_of(self, ids: list[int]) -> str:
        """The text of token ids (pieces joined into words, spaces between words)."""
        if isinstance(self.tokenizer, CTCTextEncoder):
            return " ".join(self.tokenizer.decode_ndim(ids))
        return " ".join(self.tokenizer.decode_ids(ids).split())  # a lone "▁" gives no empty word

    def _greedy(self, best: torch.Tensor, duration: float, shift: float) -> Transcript:
        """Transcript from per-frame best token ids (frames,), ``shift`` seconds apart."""
        vocab = self.vocabulary()
        runs = ctc_runs(best, self.blank_index)
        tokens = [Segment(vocab[i].lstrip(SPM_SPACE) or vocab[i], s * shift, e * shift) for i, s, e in runs]
        groups: list[list[tuple[int, int, int]]] = []
        for run in runs:
            if not groups or vocab[run[0]].startswith(SPM_SPACE):
                groups.append([])
            groups[-1].append(run)
        words = [Segment(self.text_of([r[0] for r in g]), g[0][1] * shift, g[-1][2] * shift) for g in groups]
        words = [w for w in words if w.text]
        return Transcript(self.text_of([r[0] for r in runs]), words, tokens, duration)

    def _beam(self, log_probs: torch.Tensor, duration: float, shift: float) -> Transcript:
        """Transcript of the best beam for (frames, vocab) log-probabilities ``shift`` seconds apart."""
        nbest = self.searcher(log_probs[None], torch.ones(1))[0]
        hyp = nbest[0]
        if self.rescorer is not None:  # the N-best re-ranked by beam score + weight * RNNLM log-prob
            ranked, _ = self.rescorer.rescore([[h.text for h in nbest]], [[h.lm_score for h in nbest]])
            hyp = next(h for h in nbest if h.text == ranked[0][0])
        words = [Segment(w, s * shift, e * shift) for w, (s, e) in hyp.text_frames or []]
        return Transcript(hyp.text, words, [], duration)

    def _decode(self, scores: torch.Tensor, duration: float, shift: float) -> Transcript:
        """Beam search over (frames, vocab) log-probabilities, or greedy CTC of (frames,) best ids."""
        return self._beam(scores, duration, shift) if self.searcher else self._greedy(scores, duration, shift)

    def transcribe_batch(
        self, wavs: torch.Tensor, wav_lens: torch.Tensor
    ) -> tuple[list[str], list[list[int]]]:
        """Texts and greedy token ids of a batch (as ``EncoderASR``), honouring :meth:`set_decoder`.

        Arguments
        ---------
        wavs : torch.Tensor
            (batch, samples) at :attr:`sample_rate`.
        wav_lens : torch.Tensor
            (batch,) relative lengths.
        """
        with torch.no_grad():
            log_probs = self.encode_batch(wavs, wav_lens).cpu()
        shift = self.ctc_frame_shift(self.feature_frames(wavs.shape[1]), log_probs.shape[1])
        texts, ids = [], []
        for lp, rel in zip(log_probs, wav_lens.tolist()):
            lp = lp[: int(round(rel * lp.shape[0]))]
            duration = rel * wavs.shape[1] / self.sample_rate
            texts.append(self._decode(lp if self.searcher else lp.argmax(-1), duration, shift).text)
            ids.append([i for i, _, _ in ctc_runs(lp.argmax(-1), self.blank_index)])
        return texts, ids

    def transcribe_file(self, path: str | os.PathLike, **kwargs) -> str:
        """Text of an audio file of any rate and channel count (``kwargs``: :meth:`transcribe_signal`)."""
        return self.transcribe_path(path, **kwargs).text

    def transcribe_path(self, path: str | os.PathLike, **kwargs) -> Transcript:
        """:meth:`transcribe_signal` of a file; bad files raise :class:`snn_asr.dataio.AudioError`."""
        return self.transcribe_signal(load_audio(path, self.sample_rate), **kwargs)

    @torch.no_grad()
    def transcribe_signal(
        self, signal: torch.Tensor, chunk_seconds: float | None = None, report: bool = False
    ) -> Transcript:
        """Transcribes a (samples,) waveform at :attr:`sample_rate`.

        Arguments
        ---------
        signal : torch.Tensor
            (samples,) mono waveform.
        chunk_seconds : float, optional
            Decode in chunks of this length through the encoder's state (bounded memory; same
            tokens as whole-file decoding when :attr:`streamable`). ``None``: whole file.
        report : bool
            Also count operations and spike rates (``Transcript.ops``).
        """
        start = time.perf_counter()
        duration = signal.numel() / self.sample_rate
        if chunk_seconds and not self.streamable:
            chunk_seconds = None  # a bidirectional encoder needs the whole file
        chunk_frames = int(chunk_seconds / self.frame_shift) if chunk_seconds else None
        outputs, reports = [], []  # greedy keeps only each frame's best id: bounded memory
        for log_probs, ops in self.stream_log_probs(signal, chunk_frames, report):
            outputs.append(log_probs[0] if self.searcher else log_probs[0].argmax(-1))
            reports += [ops] if ops else []
        joined = torch.cat(outputs)
        shift = self.ctc_frame_shift(self.feature_frames(signal.numel()), joined.shape[0])
        result = self._decode(joined, duration, shift)
        if reports:
            result.ops = dataclasses.replace(OpsReport.merge(reports), utterances=1)
        result.seconds = time.perf_counter() - start
        return result

    def features(self, signal: torch.Tensor, chunk_frames: int | None = None) -> Iterator[torch.Tensor]:
        """Normalised Fbank of a (samples,) waveform as (1, frames, n_mels) chunks; all frames if ``None``.

        Chunks (:func:`chunk_bounds`) hold exactly the frames (and values) of a whole-file Fbank:
        each is computed on the waveform plus the neighbouring samples its STFT windows reach, and
        the log-Mel floor (``top_db`` below the file's maximum) comes from a first pass over the file.
        """
        signal = signal.to(self.device)
        if chunk_frames is None:
            yield self.parts.normalize(self.parts.compute_features(signal[None]))
            return
        bounds = chunk_bounds(self.feature_frames(signal.numel()), chunk_frames)
        floor = None
        if self.parts.compute_features.compute_fbanks.log_mel:  # the whole-file floor, as Fbank computes it
            floor = torch.stack([self.exact_frames(signal, f0, f1).amax() for f0, f1 in bounds]).amax()
            floor = floor - self.parts.compute_features.compute_fbanks.top_db
        for f0, f1 in bounds:
            feats = self.exact_frames(signal, f0, f1)
            yield self.parts.normalize(feats if floor is None else torch.max(feats, floor))

    def exact_frames(self, signal: torch.Tensor, f0: int, f1: int, first: int = 0) -> torch.Tensor:
        """Fbank frames ``f0:f1`` (1, f1 - f0, n_mels) as a whole-file Fbank has them, before its floor
        (:func:`~snn_asr.inference.fbank_stream.fbank_frames`)."""
        return fbank_frames(self.parts.compute_features, signal, f0, f1, first)

    def context_frames(self) -> int:
        """Frames of samples an STFT window reaches on each side of its frame (``ceil(n_fft / 2 / hop)``)."""
        return fbank_context_frames(self.parts.compute_features)

    def encoder_runner(self, report: bool = False) -> Callable[[torch.Tensor], torch.Tensor]:
        """``run(feats) -> encoded`` for (1, frames, n_mels) chunks, carrying the encoder's state.

        Event-driven (:attr:`event_driven`, without ``report``) where it applies, else dense; with
        ``report`` the runner is a module for :func:`~snn_asr.ops.count_ops` (its ``out``: the output).
        """
        stream = event_driven_stream(self.parts.enc) if self.event_driven and not report else None
        if stream is not None:
            return lambda feats: stream(feats[0])[None]
        return _Stateful(self.parts.enc)

    def stream_log_probs(
        self, signal: torch.Tensor, chunk_frames: int | None = None, report: bool = False
    ) -> Iterator[tuple[torch.Tensor, OpsReport | None]]:
        """CTC log-probabilities of a (samples,) waveform as (1, frames, vocab) chunks, carrying the state.

        With ``report``, each chunk comes with the encoder's :class:`~snn_asr.ops.OpsReport`.

        Example
        -------
        >>> asr = SpikingASR.from_hparams(source="pretrained/snn-digits")
        >>> wav = torch.randn(48000)
        >>> whole = next(asr.stream_log_probs(wav))[0]
        >>> parts = torch.cat([lp for lp, _ in asr.stream_log_probs(wav, 100)], 1)
        >>> bool((whole.argmax(-1) == parts.argmax(-1)).all())
        True
        """
        encoder = self.encoder_runner(report)
        for feats in self.features(signal, chunk_frames):
            ops = count_ops(encoder, feats) if report else None
            encoded = encoder.out if report else encoder(feats)
            yield self.parts.log_softmax(self.parts.ctc_lin(encoded)).cpu(), ops


def _check_graph_fits(asr: SpikingASR) -> None:
    """A one-line :class:`ModelError` for an ONNX folder whose graph does not fit its tokenizer or Fbank."""
    enc = asr.parts.enc
    if not hasattr(enc, "vocab_size"):  # a torch encoder: its checkpoint was checked on loading
        return
    fix = "the folder mixes two exports; export it again with tools/export_onnx.py"
    tokens, n_mels = len(asr.vocabulary()), asr.parts.compute_features.compute_fbanks.n_mels
    if enc.vocab_size != tokens:
        raise ModelError(
            f"{str(enc.model_file)!r} outputs {enc.vocab_size} tokens, the tokenizer has {tokens}; {fix}"
        )
    if enc.input_size != n_mels:
        raise ModelError(
            f"{str(enc.model_file)!r} takes {enc.input_size} features, the Fbank gives {n_mels}; {fix}"
        )


def _check_device(device: str) -> None:
    """A one-line :class:`ValueError` for a device this machine does not have (before any loading)."""
    try:
        where = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device {device!r} is not a torch device; pass --device cpu or cuda:0") from None
    if where.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (where.index or 0) >= count:
            message = f"this machine has {count} usable CUDA GPUs; use --device cpu"
            raise ValueError(f"device {device!r}: {message}")


def _describe_load_error(folder: Path, err: Exception) -> str:
    """One line naming the file of a model folder that failed to load, and the fix."""
    missing = getattr(err, "filename", None)
    if isinstance(err, FileNotFoundError) and missing:
        return f"model file {missing!r} is missing; {REEXPORT}."
    first = " ".join(str(err).split()) or type(err).__name__
    for path in sorted(folder.glob("*.ckpt")) if folder.is_dir() else []:
        if path.name in first:  # e.g. sentencepiece naming the tokenizer it could not parse
            return f"model file {str(path)!r} is corrupt ({first[:160]}); {REEXPORT}."
        if path.name != "tokenizer.ckpt":
            try:
                torch.load(path, map_location="cpu", weights_only=True)
            except pickle.UnpicklingError as unpickling:
                if "Weights only load failed" in str(unpickling):  # a pickle naming code: refused, not run
                    problem = (
                        "holds pickled code (objects other than tensors), refused: it could run anything"
                    )
                    return f"model file {str(path)!r} {problem}; {REEXPORT} from a trusted run."
                problem = "is corrupt or truncated (not a PyTorch checkpoint)"
                return f"model file {str(path)!r} {problem}; {REEXPORT}."
            except Exception:  # any unreadable checkpoint is the culprit
                problem = "is corrupt or truncated (not a PyTorch checkpoint)"
                return f"model file {str(path)!r} {problem}; {REEXPORT}."
    return f"could not load the model in {str(folder)!r} ({first[:200]}); {REEXPORT}."
