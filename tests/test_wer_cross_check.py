"""SpeechBrain's error rate against jiwer's on the same hypotheses
(``snn_asr.recipes.brain.cross_check_wer``)."""

import pytest
from speechbrain.utils.metric_stats import ErrorRateStats

from snn_asr.recipes.brain import WERMismatchError, cross_check_wer


def stats(pairs):
    """ErrorRateStats of (reference, hypothesis) text pairs."""
    out = ErrorRateStats()
    ids = [f"u{i}" for i in range(len(pairs))]
    out.append(ids, [hyp.split() for _, hyp in pairs], [ref.split() for ref, _ in pairs])
    return out


def test_agrees_on_insertions_deletions_and_empty_hypotheses():
    pairs = [("THE CAT SAT", "THE CAT SAT"), ("A B C D", "A X C"), ("ONE TWO", ""), ("HI", "HI HI HI")]
    check = cross_check_wer(stats(pairs))
    assert check["agree"]
    assert check["speechbrain"]["edits"] == check["jiwer"]["edits"] == 6  # 0 + 2 + 2 + 2
    assert check["speechbrain"]["ref_tokens"] == check["jiwer"]["ref_tokens"] == 10
    assert check["speechbrain"]["wer"] == pytest.approx(check["jiwer"]["wer"]) == 60.0


def test_a_disagreement_raises():
    tampered = stats([("A B C", "A B C")])
    tampered.scores[0]["hyp_tokens"] = ["A"]  # jiwer now sees two deletions SpeechBrain never counted
    with pytest.raises(WERMismatchError, match="disagree"):
        cross_check_wer(tampered)
