"""TIMIT labels for espeak-ng speech: its IPA phonemes mapped to TIMIT's 61 phones, with times.

``timit_segments`` turns espeak-ng's phoneme events (:mod:`espeak_synthesis`) into ``.PHN``
segments and ``word_segments`` gives the ``.WRD`` segments. Used by ``make_mini_timit.py``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
from espeak_synthesis import Synthesis
from sentence_grammar import PUNCTUATION

# espeak-ng's IPA phoneme names -> TIMIT 61-set phones. Stops and affricates get their
# closure added by :func:`timit_segments`.
IPA_TO_TIMIT: dict[str, tuple[str, ...]] = {
    # consonants
    "b": ("b",), "d": ("d",), "ɡ": ("g",), "p": ("p",), "t": ("t",), "t̪": ("t",), "k": ("k",),
    "dʒ": ("jh",), "tʃ": ("ch",), "f": ("f",), "v": ("v",), "θ": ("th",), "ð": ("dh",),
    "s": ("s",), "z": ("z",), "ʃ": ("sh",), "ʒ": ("zh",), "h": ("hh",), "m": ("m",), "n": ("n",),
    "ŋ": ("ng",), "l": ("l",), "ɫ": ("l",), "ɹ": ("r",), "r": ("r",), "w": ("w",), "ʍ": ("w",),
    "j": ("y",), "ɾ": ("dx",), "ʔ": ("q",), "n̩": ("en",), "m̩": ("em",), "l̩": ("el",),
    "ŋ̍": ("eng",), "əl": ("el",),
    # vowels
    "i": ("iy",), "iː": ("iy",), "ɪ": ("ih",), "ᵻ": ("ix",), "e": ("ey",), "ei": ("ey",),
    "eɪ": ("ey",), "eː": ("ey",), "ɛ": ("eh",), "eə": ("eh",), "æ": ("ae",), "a": ("ae",),
    "ɛə": ("ae",), "a:": ("aa",), "aa": ("aa",), "aː": ("aa",), "ɑ": ("aa",), "ɑː": ("aa",),
    "ɑə": ("aa",), "ɒ": ("aa",), "ɔ": ("ao",), "ɔː": ("ao",), "ɔə": ("ao",), "oə": ("ao",),
    "o": ("ow",), "oː": ("ow",), "oʊ": ("ow",), "əʊ": ("ow",), "ʌʊ": ("ow",), "ʊ": ("uh",),
    "ʉ": ("uh",), "ʊə": ("uh",), "uː": ("uw",), "ʉː": ("uw",), "əu": ("uw",), "ʌ": ("ah",),
    "ə": ("ax",), "ɐ": ("ax",), "ɚ": ("axr",), "ɜ": ("axr",), "ɜː": ("er",), "ɝ": ("er",),
    "əɹ": ("er",), "ʌɹ": ("er",), "əɪ": ("er",), "aɪ": ("ay",), "aʊ": ("aw",), "æʊ": ("aw",),
    "ʌʉ": ("aw",), "ɔɪ": ("oy",), "oɪ": ("oy",),
    # vowel sequences in one espeak phoneme
    "aɪə": ("ay", "ax"), "aɪɚ": ("ay", "axr"), "iə": ("iy", "ax"), "ɑːɹ": ("aa", "r"),
    "ɑɹ": ("aa", "r"), "ɔːɹ": ("ao", "r"), "ɔɹ": ("ao", "r"), "oːɹ": ("ao", "r"),
    "ɪɹ": ("ih", "r"), "ɛɹ": ("eh", "r"), "ʊɹ": ("uh", "r"), "ʉɹ": ("uh", "r"),
}  # fmt: skip
MODIFIERS = frozenset({"ʲ", ""})  # espeak phonemes that only colour the previous one: merged into it
STRESS = "ˈˌ"
CLOSURES = {"b": "bcl", "d": "dcl", "g": "gcl", "p": "pcl", "t": "tcl", "k": "kcl", "jh": "dcl", "ch": "tcl"}
RELEASE_SHARE = {"b": 0.3, "d": 0.3, "g": 0.3, "p": 0.45, "t": 0.45, "k": 0.45, "jh": 0.6, "ch": 0.65}


def ipa_to_timit(ipa: str) -> tuple[str, ...]:
    """TIMIT phones of one espeak-ng IPA phoneme (stress marks ignored; no closures).

    Raises ``KeyError`` for a phoneme outside :data:`IPA_TO_TIMIT`.

    Example
    -------
    >>> ipa_to_timit("ˈɑːɹ")
    ('aa', 'r')
    >>> ipa_to_timit("ʔ")
    ('q',)
    """
    name = ipa.strip(STRESS)
    if name in MODIFIERS:
        return ()
    return IPA_TO_TIMIT[name]


def timit_segments(
    synthesis: Synthesis, lead: int = 0, total: int | None = None
) -> list[tuple[int, int, str]]:
    """TIMIT phone segments ``(start, end, phone)`` of a synthesis, in 22.05 kHz samples.

    Each espeak phoneme lasts until the next one starts; its IPA name is mapped by
    :func:`ipa_to_timit`; stops and affricates are split into closure and release;
    modifiers (``ʲ``) are merged into the previous phone; pauses become ``pau``, and the
    silence at both ends ``h#``. Segments are contiguous from 0 to ``total``.

    Arguments
    ---------
    synthesis : Synthesis
        Output of :func:`synthesize`.
    lead : int
        Samples of silence added before the audio (shifts every time).
    total : int, optional
        Length of the padded audio (default: ``lead + len(audio)``).

    Example
    -------
    >>> out = synthesize("en-us", "Good.")
    >>> [p for _, _, p in timit_segments(out)]
    ['h#', 'gcl', 'g', 'uh', 'dcl', 'd', 'h#']
    """
    total = lead + len(synthesis.audio) if total is None else total
    events = synthesis.phonemes
    raw: list[tuple[int, int, tuple[str, ...] | None]] = []  # None: pause
    for i, ph in enumerate(events):
        start = lead + ph.sample
        end = lead + (events[i + 1].sample if i + 1 < len(events) else len(synthesis.audio))
        if end <= start:  # spoken inside the previous phoneme (e.g. a coda /l/): take its last third
            phones = () if ph.is_pause else ipa_to_timit(ph.ipa)
            if phones and raw and raw[-1][2] and raw[-1][1] - raw[-1][0] >= 6:
                prev_start, prev_end, prev = raw[-1]
                cut = prev_end - (prev_end - prev_start) // 3
                raw[-1] = (prev_start, cut, prev)
                raw.append((cut, prev_end, phones))
            continue
        if ph.is_pause:
            raw.append((start, end, None))
            continue
        phones = ipa_to_timit(ph.ipa)
        if not phones:  # modifier: extend the previous phone
            if raw and raw[-1][2]:
                raw[-1] = (raw[-1][0], end, raw[-1][2])
            else:
                raw.append((start, end, None))
            continue
        raw.append((start, end, phones))
    segments: list[tuple[int, int, str]] = []
    first = next((i for i, r in enumerate(raw) if r[2]), None)
    last = max((i for i, r in enumerate(raw) if r[2]), default=None)
    if first is None:
        return [(0, total, "h#")]
    segments.append((0, raw[first][0], "h#"))
    for start, end, phones in raw[first : last + 1]:
        if phones is None:
            segments.append((start, end, "pau"))
            continue
        if len(phones) == 1 and phones[0] in CLOSURES and end - start >= 8:
            release = max(1, round((end - start) * RELEASE_SHARE[phones[0]]))
            segments += [(start, end - release, CLOSURES[phones[0]]), (end - release, end, phones[0])]
            continue
        shares = [1.0] if len(phones) == 1 else [0.65] + [0.35 / (len(phones) - 1)] * (len(phones) - 1)
        bounds = [start] + [start + round((end - start) * sum(shares[: k + 1])) for k in range(len(phones))]
        bounds[-1] = end
        segments += [(a, b, p) for a, b, p in zip(bounds, bounds[1:], phones) if b > a]
    segments.append((raw[last][1], total, "h#"))
    return [s for s in segments if s[1] > s[0]]


def _word_spans(text: str) -> list[tuple[int, str]]:
    """(1-based character position, lower-case word) of each word of ``text``."""
    spans = []
    for match in re.finditer(r"\S+", text):
        token = match.group()
        word = token.strip(PUNCTUATION)
        if word:
            spans.append((match.start() + token.index(word) + 1, word.lower()))
    return spans


def word_segments(
    synthesis: Synthesis, text: str, phones: Sequence[tuple[int, int, str]], lead: int = 0
) -> list[tuple[int, int, str]]:
    """Word segments ``(start, end, word)`` of a synthesis, in the time base of ``phones``.

    espeak-ng reports where each word starts (a word event with its text position); a
    word spans the phones from its start to the next word's start, less pauses. espeak
    speaks a few word pairs as one unit (e.g. "there were"): their phones are shared in
    proportion to the words' letters (approximate).

    Arguments
    ---------
    synthesis : Synthesis
        Output of :func:`synthesize` for ``text``.
    text : str
        The sentence.
    phones : sequence of (start, end, phone)
        From :func:`timit_segments` with the same ``lead``.
    lead : int
        Samples of silence added before the audio.

    Example
    -------
    >>> out = synthesize("en-us", "Good dog.")
    >>> [w for _, _, w in word_segments(out, "Good dog.", timit_segments(out))]
    ['good', 'dog']
    """
    spans = _word_spans(text)
    events = sorted((s + lead, pos) for s, pos, length in synthesis.words if length > 0)
    if not events:
        raise RuntimeError(f"espeak-ng reported no words for {text!r}")
    groups: list[list[str]] = [[] for _ in events]
    for position, word in spans:  # each word joins the last event at or before it
        k = max([i for i, (_, pos) in enumerate(events) if pos <= position], default=0)
        groups[k].append(word)
    bounds = [-math.inf] + [s for s, _ in events[1:]] + [math.inf]
    out: list[tuple[int, int, str]] = []
    for k, words in enumerate(groups):
        inside = [(a, b) for a, b, p in phones if p not in ("h#", "pau") and bounds[k] <= a < bounds[k + 1]]
        if not words:
            continue
        if not inside:
            raise RuntimeError(f"no phones for {' '.join(words)!r} in {text!r}")
        letters = np.cumsum([len(w) for w in words]) / sum(len(w) for w in words)
        cuts = [0] + [
            max(j + 1, min(len(inside), round(len(inside) * share))) for j, share in enumerate(letters)
        ]
        cuts[-1] = len(inside)
        for j, word in enumerate(words):
            part = inside[cuts[j] : max(cuts[j + 1], cuts[j] + 1)] or inside[-1:]
            out.append((part[0][0], part[-1][1], word))
    return out
