"""The Kneser-Ney ARPA writer: normalised distributions, and kenlm reads and agrees with it."""

import math
import random

import pytest

from snn_asr.recipes.ngram import BOS, EOS, UNK, estimate, write_arpa

WORDS = "one two three four five six seven eight nine zero oh".split()


def corpus(n=200, seed=0):
    rng = random.Random(seed)
    return [
        [rng.choice(WORDS[: rng.randint(3, len(WORDS))]) for _ in range(rng.randint(1, 7))] for _ in range(n)
    ]


def prob(model, history, word):
    """p(word | history) from the ARPA-form model, backing off as kenlm does (natural units)."""
    history = tuple(history)[-(len(model) - 1) :] if len(model) > 1 else ()
    backoff = 0.0
    while True:
        gram = (*history, word)
        entries = model[len(gram) - 1]
        if gram in entries:
            return 10 ** (entries[gram][0] + backoff)
        if not history:
            return 10 ** (model[0][(UNK,)][0] + backoff)
        context = model[len(history) - 1].get(history)
        backoff += context[1] if context else 0.0
        history = history[1:]


@pytest.mark.parametrize("order", [1, 2, 3])
def test_every_history_gives_a_normalised_distribution(order):
    model = estimate(corpus(), order)
    vocab = [w for (w,) in model[0] if w != BOS]
    histories = [(), (BOS,), ("one",), ("two", "three"), (BOS, "one"), ("zero", "oh"), ("nine", "unseen")]
    for history in histories:
        total = sum(prob(model, history, w) for w in vocab)
        assert total == pytest.approx(1.0, abs=1e-6), history


def test_kenlm_reads_the_arpa_and_scores_like_the_model(tmp_path):
    kenlm = pytest.importorskip("kenlm")
    sentences = corpus()
    model = estimate(sentences, 3)
    lm = kenlm.Model(str(write_arpa(sentences, 3, tmp_path / "lm.arpa")))
    assert lm.order == 3
    for sentence in [["one", "two"], ["zero", "oh", "nine", "nine"], ["seven", "unknownword"]]:
        ours, history = 0.0, [BOS]
        for word in [*sentence, EOS]:
            ours += math.log10(prob(model, history, word if word in WORDS or word == EOS else UNK))
            history.append(word)
        assert lm.score(" ".join(sentence), bos=True, eos=True) == pytest.approx(ours, abs=1e-4)


def test_frequent_continuations_score_higher():
    sentences = [["a", "b"]] * 20 + [["a", "c"]] * 2 + [["c", "b"]] * 5
    model = estimate(sentences, 2)
    assert prob(model, ["a"], "b") > prob(model, ["a"], "c") > prob(model, ["a"], "a")


def test_order_must_be_positive():
    with pytest.raises(ValueError, match="order"):
        estimate([["a"]], 0)
