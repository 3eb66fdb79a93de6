#!/usr/bin/env python3
"""Scores ``snn-asr transcribe`` output (text format) against reference transcripts, with jiwer.

References are matched to hypotheses by utterance id, the audio file's stem. Reference files:
AN4 ``.transcription`` (``[<s>] WORDS [</s>] (id)`` a line), LibriSpeech ``*.trans.txt`` and
Kaldi ``text`` (``id WORDS`` a line). Prints WER, and CER with and without spaces (ESPnet counts
the space as a token). An utterance without a hypothesis counts as deleted, and is named.

Run::

    snn-asr transcribe pretrained/snn-an4 ../shared/data/an4/wav/an4test_clstk > hyp.txt
    python tools/score_transcripts.py hyp.txt ../shared/data/an4/etc/an4_test.transcription
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import jiwer

AN4_LINE = re.compile(r"^(?:<s>)?(.*?)(?:</s>)?\s*\(([^()]+)\)\s*$")


def read_references(path: Path) -> dict[str, str]:
    """Utterance id -> words of an AN4 ``.transcription`` or an ``id WORDS`` file."""
    references = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        an4 = AN4_LINE.match(line.strip())
        if an4:
            utt, words = an4.group(2), an4.group(1)
        else:
            utt, _, words = line.strip().partition(" ")
        references[utt] = " ".join(words.split())
    return references


def read_hypotheses(path: Path) -> dict[str, str]:
    """Utterance id (the file stem) -> words of ``snn-asr transcribe``'s text output."""
    hypotheses = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        audio, _, text = line.partition("\t")
        hypotheses[Path(audio).stem] = " ".join(text.split())
    return hypotheses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("hypotheses", type=Path, help="snn-asr transcribe output (--format text)")
    parser.add_argument("references", type=Path, help="AN4 .transcription, trans.txt or Kaldi text")
    args = parser.parse_args(argv)
    refs, hyps = read_references(args.references), read_hypotheses(args.hypotheses)
    missing = sorted(set(refs) - set(hyps))
    if missing:
        names = ", ".join(missing[:5])
        print(
            f"warning: {len(missing)} utterances have no hypothesis (scored as deleted): {names}",
            file=sys.stderr,
        )
    ids = sorted(refs)
    ref, hyp = [refs[i] for i in ids], [hyps.get(i, "") for i in ids]
    words = sum(len(r.split()) for r in ref)
    wer = jiwer.wer(ref, hyp)
    cer = jiwer.cer(ref, hyp)
    cer_nospace = jiwer.cer([r.replace(" ", "") for r in ref], [h.replace(" ", "") for h in hyp])
    print(
        f"{len(ids)} utterances, {words} words: WER {100 * wer:.2f}, CER {100 * cer:.2f} "
        f"(spaces counted), {100 * cer_nospace:.2f} (no spaces)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
