"""Greedy CTC for SpeechBrain's ``StreamingASR``, chunk by chunk, and for ``EncoderASR``, whole;
and the streaming sentencepiece decoding ``StreamingASR`` calls.

SpeechBrain 1.1 ships streaming decoders for transducers only, and the two interfaces call the
YAML's one ``decoding_function`` key in two ways: ``EncoderASR`` as ``f(log_probs, wav_lens)``,
``StreamingASR`` as ``f(log_probs, context)``. :func:`ctc_greedy_decode` serves both, so one
exported folder loads with either: with relative lengths it is SpeechBrain's own
``ctc_greedy_decode``; with a :class:`CTCStreamingContext` it decodes a chunk, collapsing a token
repeated across the chunk boundary as whole-file decoding would (the context keeps each
sequence's last frame's best token).

:func:`spm_decode_streaming` takes the place of SpeechBrain's ``spm_decode_preserve_leading_space``,
which asks sentencepiece for ``out_type="immutable_proto"`` (refused by sentencepiece 0.2.1 and
later) and keeps the runs of spaces a chunk boundary can make.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
from speechbrain.decoders.ctc import ctc_greedy_decode as speechbrain_ctc_greedy_decode

__all__ = ["CTCStreamingContext", "SpmStreamingContext", "ctc_greedy_decode", "spm_decode_streaming"]


@dataclass
class CTCStreamingContext:
    """Per sequence of the batch, the best token of its last frame so far (``None`` before any)."""

    last: list[int | None] = field(default_factory=list)


def ctc_greedy_decode(
    log_probs: torch.Tensor, lengths_or_context: torch.Tensor | CTCStreamingContext, blank_id: int = 0
) -> list[list[int]]:
    """Token ids per sequence of (batch, frames, vocab) ``log_probs``: whole (relative lengths) or a chunk.

    Example
    -------
    >>> frames = torch.tensor([[[0.0, 9.0], [0.0, 9.0], [9.0, 0.0], [0.0, 9.0]]]).log_softmax(-1)
    >>> ctc_greedy_decode(frames, torch.ones(1))
    [[1, 1]]
    >>> context = CTCStreamingContext()
    >>> [ctc_greedy_decode(frames[:, i : i + 1], context) for i in range(4)]
    [[[1]], [[]], [[]], [[1]]]
    """
    if not isinstance(lengths_or_context, CTCStreamingContext):
        return speechbrain_ctc_greedy_decode(log_probs, lengths_or_context, blank_id)
    context = lengths_or_context
    if not context.last:
        context.last = [None] * log_probs.shape[0]
    tokens = []
    for row, best in enumerate(log_probs.argmax(-1).tolist()):
        emitted = []
        for token in best:
            if token != context.last[row] and token != blank_id:
                emitted.append(token)
            context.last[row] = token
        tokens.append(emitted)
    return tokens


@dataclass
class SpmStreamingContext:
    """What :func:`spm_decode_streaming` remembers of a stream: whether text has started, and
    whether the last chunk ended in a space not yet written (written only before more text)."""

    started: bool = False
    pending_space: bool = False


def spm_decode_streaming(tokenizer, hyps: list[int], context: SpmStreamingContext) -> str:
    """Text of one chunk's token ids, so that the chunks' texts join into the whole file's.

    The whole file's text is sentencepiece's decoding with runs of spaces made one and the ends
    stripped (:meth:`~snn_asr.inference.SpikingASR.text_of`); here a space is written only once
    text follows it, so a word boundary that falls between two chunks comes out once.

    Example
    -------
    >>> import sentencepiece
    >>> sp = sentencepiece.SentencePieceProcessor(model_file="pretrained/snn-digits/tokenizer.ckpt")
    >>> context = SpmStreamingContext()
    >>> ids = sp.encode("ONE TWO")
    >>> texts = [spm_decode_streaming(sp, ids[i : i + 1], context) for i in range(len(ids))]
    >>> "".join(texts) == " ".join(sp.decode(ids).split())
    True
    """
    if not hyps:
        return ""
    raw = (
        " " + tokenizer.decode(hyps)
        if tokenizer.id_to_piece(hyps[0]).startswith("\u2581")
        else tokenizer.decode(hyps)
    )
    text = re.sub(" +", " ", (" " if context.pending_space else "") + raw)
    if not context.started:
        text = text.lstrip(" ")
    context.pending_space = text.endswith(" ") or (context.pending_space and not text)
    text = text.rstrip(" ")
    context.started |= bool(text)
    return text
