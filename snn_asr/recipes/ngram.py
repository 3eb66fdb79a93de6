"""A small interpolated Kneser-Ney n-gram estimator that writes ARPA files for kenlm.

Why this exists: the ``kenlm`` pip package reads ARPA files but ships no ``lmplz`` to
estimate them, and no maintained pip-installable library writes ARPA. This module covers
the small corpora of the recipes (phone bigrams for TIMIT, word n-grams for the mini
LibriSpeech corpora); for real LibriSpeech, use the official ARPA files as they are.

Estimation (Chen & Goodman's interpolated Kneser-Ney with one discount per order):
the highest order uses raw counts, lower orders use continuation counts (the number of
distinct words seen before an n-gram), except n-grams starting with ``<s>``, which keep
raw counts as in KenLM. With ``D_k = n1 / (n1 + 2 n2)`` per order k::

    p(w | h) = max(a(h w) - D_k, 0) / S(h) + gamma(h) * p(w | h[1:])
    gamma(h) = D_k * |{w : a(h w) > 0}| / S(h),    S(h) = sum_w a(h w)

and unigrams interpolate with the uniform distribution over the vocabulary (``<unk>``
included). Seen n-grams are written with their interpolated probability and
``gamma`` as back-off weight, which is exactly this model in ARPA's back-off form.
"""

from __future__ import annotations

import csv
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

from snn_asr.dataio import column_stamp, is_prepared, mark_prepared

BOS, EOS, UNK = "<s>", "</s>", "<unk>"


def _discount(counts: Iterable[int]) -> float:
    histogram = Counter(c for c in counts if c in (1, 2))
    n1, n2 = histogram[1], histogram[2]
    if n1 == 0 or n2 == 0:
        return 0.5
    return min(max(n1 / (n1 + 2 * n2), 0.1), 0.9)


def estimate(sentences: Iterable[list[str]], order: int) -> list[dict[tuple, tuple[float, float]]]:
    """Interpolated Kneser-Ney model: per order, ``{ngram: (log10 prob, log10 backoff)}``.

    Example
    -------
    >>> model = estimate([["a", "b"], ["a", "c"], ["b", "a"]], order=2)
    >>> sorted(model[0])[:3]
    [('</s>',), ('<s>',), ('<unk>',)]
    """
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    raw: list[Counter] = [Counter() for _ in range(order)]
    for sentence in sentences:
        tokens = [BOS, *sentence, EOS]
        for k in range(1, order + 1):
            for i in range(len(tokens) - k + 1):
                gram = tuple(tokens[i : i + k])
                if gram != (BOS,):
                    raw[k - 1][gram] += 1
    adjusted: list[Counter] = [Counter() for _ in range(order)]
    adjusted[order - 1] = raw[order - 1]
    for k in range(1, order):
        left_contexts = Counter(gram[1:] for gram in raw[k])  # distinct words before each k-gram
        for gram, count in raw[k - 1].items():
            adjusted[k - 1][gram] = count if gram[0] == BOS else left_contexts.get(gram, count)
    vocab = sorted({w for gram in raw[0] for w in gram} | {UNK, EOS})
    probs: list[dict[tuple, float]] = [dict() for _ in range(order)]
    gammas: list[dict[tuple, float]] = [dict() for _ in range(order)]
    for k in range(1, order + 1):
        counts = adjusted[k - 1]
        discount = _discount(counts.values())
        totals, types = defaultdict(int), defaultdict(int)
        for gram, count in counts.items():
            totals[gram[:-1]] += count
            types[gram[:-1]] += 1
        for history in totals:
            gammas[k - 1][history] = discount * types[history] / totals[history]
        grams = list(counts) + ([(w,) for w in vocab if (w,) not in counts] if k == 1 else [])
        for gram in grams:
            history = gram[:-1]
            lower = 1.0 / len(vocab) if k == 1 else _backoff_prob(probs, gammas, gram[1:])
            probs[k - 1][gram] = max(counts.get(gram, 0) - discount, 0) / totals[history] + (
                gammas[k - 1][history] * lower
            )
    model = []
    for k in range(1, order + 1):
        entries = {}
        for gram, p in probs[k - 1].items():
            backoff = gammas[k].get(gram) if k < order else None
            entries[gram] = (math.log10(p), math.log10(backoff) if backoff else 0.0)
        if k == 1:
            entries[(BOS,)] = (-99.0, math.log10(gammas[1][(BOS,)]) if order > 1 else 0.0)
        model.append(entries)
    return model


def _backoff_prob(probs, gammas, gram: tuple) -> float:
    """p(gram[-1] | gram[:-1]) from the orders estimated so far, backing off as ARPA does."""
    k = len(gram)
    if gram in probs[k - 1]:
        return probs[k - 1][gram]
    if k == 1:
        return probs[0][(UNK,)]
    return gammas[k - 1].get(gram[:-1], 1.0) * _backoff_prob(probs, gammas, gram[1:])


def arpa_from_manifest(manifest: str | Path, column: str, order: int, path: str | Path) -> Path:
    """An ARPA n-gram over the space-separated ``column`` of a CSV manifest, written unless up to date.

    The ARPA file is kept while the stamp beside it (``path`` with ``.json``) holds the same order
    and transcripts (:func:`~snn_asr.dataio.column_stamp`): changed training transcripts under the
    same output folder write a new one.

    Example
    -------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "train.csv").write_text("ID,duration,wav,phn\\na,1,x,sil b sil\\nb,1,x,sil b b sil\\n")
    >>> arpa_from_manifest(folder / "train.csv", "phn", 2, folder / "lm.arpa").name
    'lm.arpa'
    """
    path = Path(path)
    stamp = path.with_suffix(".json")
    options = {"order": order, "column": column, "transcripts": column_stamp(manifest, column)}
    if not is_prepared([path], stamp, options):
        with open(manifest, encoding="utf-8", newline="") as fin:
            sentences = [row[column].split() for row in csv.DictReader(fin)]
        stamp.unlink(missing_ok=True)
        write_arpa(sentences, order, path)
        mark_prepared(stamp, options)
    return path


def write_arpa(sentences: Iterable[list[str]], order: int, path: str | Path) -> Path:
    """Estimates an order-``order`` Kneser-Ney model from tokenised sentences and writes it as ARPA.

    Example
    -------
    >>> import tempfile
    >>> arpa = write_arpa([["a", "b"], ["b", "a"]], 2, tempfile.mkdtemp() + "/lm.arpa")
    >>> arpa.read_text().splitlines()[:3]
    ['', '\\\\data\\\\', 'ngram 1=5']
    """
    model = estimate(sentences, order)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        out.write("\n\\data\\\n")
        for k, entries in enumerate(model, 1):
            out.write(f"ngram {k}={len(entries)}\n")
        for k, entries in enumerate(model, 1):
            out.write(f"\n\\{k}-grams:\n")
            for gram in sorted(entries):
                logp, backoff = entries[gram]
                line = f"{logp:.6f}\t{' '.join(gram)}"
                if k < order:
                    line += f"\t{backoff:.6f}"
                out.write(line + "\n")
        out.write("\n\\end\\\n")
    return path
