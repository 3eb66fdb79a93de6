#!/usr/bin/env python3
"""Speech recognition on AN4 (CMU Census database) with a spiking recurrent encoder (or LSTM/GRU), CTC.

Trains on 848 utterances of 66 speakers, picks the checkpoint and the settings on the dev set (the
first 100 utterances of the sorted training list, 8 speakers, as ESPnet's AN4 recipe) and tests
on AN4's test set (130 utterances, 10 other speakers). Tokens are characters (sentencepiece
``char``: AN4 is mostly spelled letters, each a one-character word). Writes ``wer_<split>.txt``,
``wer_<split>.json`` (WER by SpeechBrain and jiwer), ``ops_<split>.json`` (multiplications,
spike rates, ratio to a same-size GRU), training curves and spike plots; CTC models are tested
again with a word n-gram of the training transcripts (``wer_<split>_ngram.txt``) and, with
``rnnlm_folder`` (a character RNNLM trained by ``train_lm.py`` with this model's tokenizer), with
N-best rescoring by it (``wer_<split>_rnnlm.txt``). The flow is every recipe's
(:class:`snn_asr.recipes.run.ASRRecipe`); this file says what is AN4's.

Run::

    python recipes/AN4/train.py hparams/snn.yaml --data_folder /path/to/an4
    git clone https://github.com/cmusphinx/an4 /path/to/an4   # no AN4? it is 64 MB
    # then the RNNLM on the training transcripts, and the tests again with it:
    python recipes/AN4/train_lm.py hparams/lm.yaml --data_folder /path/to/an4 \
        --tokenizer_file results/AN4/snn_v2/1234/save/31_char.model
    python recipes/AN4/train.py hparams/snn.yaml --data_folder /path/to/an4 \
        --rnnlm_folder results/AN4/rnnlm/1234

Authors: snn-asr developers (structure after SpeechBrain's recipes; splits after ESPnet's egs2/an4).
"""

from __future__ import annotations

import sys
from pathlib import Path

from snn_asr.recipes.cli import main_guard
from snn_asr.recipes.data import subword_units
from snn_asr.recipes.run import ASRRecipe

RECIPE_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(RECIPE_DIR))
from an4_prepare import GET_DATA, prepare_an4  # noqa: E402

DATA_HINT = f"pass --data_folder /path/to/an4 (holding wav/ and etc/); {GET_DATA}"


def prepare(hparams: dict) -> None:
    """The train, dev and test manifests (``wrd``: the words) in ``save_folder``."""
    prepare_an4(
        data_folder=hparams["data_folder"],
        save_folder=hparams["save_folder"],
        dev_utterances=hparams["dev_utterances"],
        skip_prep=hparams["skip_prep"],
        sample_rate=hparams.get("sample_rate", 16000),  # the LM's YAML (train_lm.py) has none
    )


RECIPE = ASRRecipe(
    folder=RECIPE_DIR,
    data_hint=DATA_HINT,
    prepare=prepare,
    units=subword_units,
    test_splits=lambda hparams: hparams["test_splits"],
)

if __name__ == "__main__":
    main_guard(RECIPE.run)
