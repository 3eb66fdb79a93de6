"""The AN4 recipe end to end on real speech: its digit-string utterances (needs ``../shared/data/an4``).

AN4's training list holds 181 utterances made only of digit words (``SIX FIVE FIVE EIGHT``), its
test list 23, all by the corpus's own speakers (test speakers never in training). The test
trains the recipe briefly on that subset (an AN4 tree of those lines, the audio linked), then
checks that it learnt (test WER well below the 100% of an empty or random transcript), decoded
with and without the n-gram, and reported CER and op counts.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

from corpora import REPO, shared_corpus

TRAIN = REPO / "recipes" / "AN4" / "train.py"
DIGITS = {"ZERO", "OH", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE"}
FAST = [
    *("--hidden_size", "128", "--batch_size", "8", "--lr", "0.005", "--number_of_epochs", "12"),
    *("--dev_utterances", "20", "--beam_size", "4", "--vocab_size", "20"),
]


def digit_strings(an4: Path, root: Path) -> Path:
    """An AN4 tree in ``root`` of the digit-only lines of both lists, the audio symlinked."""
    for listing, folder in (
        ("an4_train.transcription", "an4_clstk"),
        ("an4_test.transcription", "an4test_clstk"),
    ):
        kept = []
        for line in (an4 / "etc" / listing).read_text().splitlines():
            words = re.sub(r"\([^)]*\)$", "", line).replace("<s>", "").replace("</s>", "").split()
            if words and set(words) <= DIGITS:
                kept.append(line)
                utt = line.rsplit("(", 1)[1].rstrip(")")
                speaker = utt.split("-")[1]
                link = root / "wav" / folder / speaker / f"{utt}.wav"
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(an4 / "wav" / folder / speaker / f"{utt}.wav")
        (root / "etc").mkdir(parents=True, exist_ok=True)
        (root / "etc" / listing).write_text("\n".join(kept) + "\n")
    return root


def wer(path: Path) -> float:
    return float(re.search(r"%WER ([\d.]+)", path.read_text()).group(1))


def test_an4_digit_strings_learnt_and_decoded_with_and_without_the_ngram(tmp_path, model="snn"):
    data = digit_strings(shared_corpus("an4"), tmp_path / "an4")
    out = tmp_path / "run"
    cmd = [sys.executable, str(TRAIN), f"hparams/{model}.yaml", "--data_folder", str(data)]
    cmd += ["--output_folder", str(out), *FAST]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    history = json.loads((out / "history.json").read_text())
    assert history[-1]["valid_error_rate"] < history[0]["valid_error_rate"]
    beam, with_lm = wer(out / "wer_test.txt"), wer(out / "wer_test_ngram.txt")
    assert beam < 70.0 and with_lm < 70.0, (beam, with_lm)
    check = json.loads((out / "wer_test.json").read_text())
    assert check["agree"] and check["cer"]["without_spaces"] < beam  # a word error is a letter or more
    ops = json.loads((out / "ops_test.json").read_text())
    assert 0 < ops["ratio_to_gru"] < 1 and all(0 < r < 1 for r in ops["spike_rates"].values())
