#!/usr/bin/env python3
"""Phone recognition on TIMIT with a spiking recurrent encoder (or LSTM/GRU), CTC or joint CTC/attention.

Trains on the TIMIT training set (48 phones), anneals on the 50-speaker dev set and tests on
the 24-speaker core test set, scoring PER on the 39-phone set. Writes ``wer_test.txt``
(per-utterance alignments), ``wer_test.json`` (the PER by SpeechBrain and by jiwer),
``ops_test.json`` (multiplications, spike rates, ratio to a same-size GRU), training curves
and spike plots to the output folder; CTC models are tested again with a phone n-gram
(``phone_lm_order``, ``wer_test_phone_lm.txt``). With an attentional decoder in the YAML
(``snn_ctc_att.yaml``) the label encoder also holds ``<bos>``/``<eos>`` and test decoding is
the YAML's joint CTC/attention beam search. The flow is every recipe's
(:class:`snn_asr.recipes.run.ASRRecipe`); this file says what is TIMIT's.

Run::

    python recipes/TIMIT/train.py hparams/snn.yaml --data_folder /path/to/TIMIT
    python recipes/TIMIT/train.py hparams/snn_ctc_att.yaml --data_folder /path/to/TIMIT
    python tools/make_mini_timit.py data/mini_timit --size ci   # no TIMIT? make a mini one
    torchrun --nproc_per_node=2 recipes/TIMIT/train.py hparams/snn.yaml --data_folder ... --distributed_launch

Authors: snn-asr developers (structure after SpeechBrain's TIMIT recipes).
"""

from __future__ import annotations

import sys
from pathlib import Path

from snn_asr.recipes.cli import main_guard
from snn_asr.recipes.data import LabelUnits, label_units
from snn_asr.recipes.run import ASRRecipe, NgramOptions

RECIPE_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(RECIPE_DIR))
from timit_prepare import PHONES_48, map_to_39, prepare_timit  # noqa: E402


def prepare(hparams: dict) -> None:
    """The train, dev and core-test manifests (``phn``: 48 phones)."""
    prepare_timit(
        data_folder=hparams["data_folder"],
        save_folder=hparams["save_folder"],
        skip_prep=hparams["skip_prep"],
        sample_rate=hparams["sample_rate"],
    )


def phones(hparams: dict) -> LabelUnits:
    """The full 48-phone set, whether or not the training data has them all; scored on 39."""
    return label_units(hparams, "phn", labels=PHONES_48, score=map_to_39)


RECIPE = ASRRecipe(
    folder=RECIPE_DIR,
    data_hint="pass --data_folder /path/to/TIMIT (holding TRAIN/ and TEST/); without TIMIT, make a mini "
    "corpus with: python tools/make_mini_timit.py data/mini_timit --size ci",
    prepare=prepare,
    units=phones,
    test_splits=lambda hparams: ["dev", "test"],
    ngram=NgramOptions(order="phone_lm_order", arpa=None, file="phone_{order}gram.arpa", suffix="_phone_lm"),
)

if __name__ == "__main__":
    main_guard(RECIPE.run)
