#!/usr/bin/env python3
"""Speech recognition on LibriSpeech with a spiking recurrent encoder (or LSTM/GRU) over subword tokens.

Steps: data preparation (CSV manifests), a sentencepiece tokenizer trained on the training
transcripts (SpeechBrain's wrapper), CTC or joint CTC/attention training with SpeechBrain's
``Brain``, then WER on each test split: CTC models with CTC prefix beam search (greedy with
``beam_size: 0``) and, when ``ngram_order`` or ``ngram_arpa`` is set, again with a kenlm
n-gram (``_ngram``); attention models (``snn_ctc_att.yaml``) with the joint CTC/attention beam
search. With ``rnnlm_folder`` (an RNNLM trained by ``train_lm.py`` with this model's
tokenizer) each split is decoded once more with it (``_rnnlm``): N-best rescoring of the CTC
beam search, or shallow fusion in the attention beam search. Writes ``wer_<split>[_lm].txt``
(per-utterance alignments), ``wer_<split>[_lm].json`` (the WER by SpeechBrain and by jiwer),
``ops_<split>.json`` (multiplications, spike rates, ratio to a same-size GRU), training curves
and spike plots. The flow is every recipe's (:class:`snn_asr.recipes.run.ASRRecipe`); this file
says what is LibriSpeech's.

The tokenizer (``save/<vocab_size>_<token_type>.model``) is remade when the training transcripts
change under the same output folder (its stamp is ``save/<vocab_size>_<token_type>.json``); to
reuse one in another output folder, copy both files.

Run::

    python recipes/LibriSpeech/train.py hparams/snn.yaml --data_folder /path/to/LibriSpeech
    python tools/make_librispeech_corpus.py digits data/digits   # no LibriSpeech? make a mini one
    # then an RNNLM with the model's tokenizer, and the tests again with it:
    python recipes/LibriSpeech/train_lm.py hparams/lm.yaml --data_folder /path/to/LibriSpeech \
        --tokenizer_file results/LibriSpeech/snn_v2/1234/save/256_unigram.model
    python recipes/LibriSpeech/train.py hparams/snn.yaml --data_folder /path/to/LibriSpeech \
        --rnnlm_folder results/LibriSpeech/rnnlm/1234

Authors: snn-asr developers (structure after SpeechBrain's LibriSpeech recipes).
"""

from __future__ import annotations

import sys
from pathlib import Path

from snn_asr.recipes.cli import main_guard
from snn_asr.recipes.data import subword_units
from snn_asr.recipes.run import ASRRecipe

RECIPE_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(RECIPE_DIR))
from librispeech_prepare import prepare_librispeech  # noqa: E402

DATA_HINT = (
    "pass --data_folder /path/to/LibriSpeech (holding train-clean-100/, dev-clean/, test-clean/); "
    "without LibriSpeech, make a mini corpus and train on it with: "
    "python tools/make_librispeech_corpus.py digits data/digits && python recipes/LibriSpeech/train.py "
    "hparams/snn.yaml --data_folder data/digits --test_splits '[test-clean]' --vocab_size 24"
)


def prepare(hparams: dict) -> None:
    """Manifests of the training, dev and test splits (``wrd``: the transcripts) in ``save_folder``."""
    prepare_librispeech(
        data_folder=hparams["data_folder"],
        save_folder=hparams["save_folder"],
        tr_splits=hparams["train_splits"],
        dev_splits=hparams["dev_splits"],
        te_splits=hparams.get("test_splits", []),  # the LM's YAML (train_lm.py) has none
        skip_prep=hparams["skip_prep"],
        sample_rate=hparams.get("sample_rate", 16000),
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
