#!/usr/bin/env python3
"""Speech recognition on LibriSpeech with a spiking recurrent encoder (or LSTM/GRU) over subword tokens.

Steps: data preparation (CSV manifests), a sentencepiece tokenizer trained on the training
transcripts (SpeechBrain's wrapper), CTC or joint CTC/attention training with SpeechBrain's
``Brain``, then WER on each test split with greedy CTC, CTC prefix beam search and, when
``ngram_order`` or ``ngram_arpa`` is set, beam search with a kenlm n-gram. Writes
``wer_<split>.txt`` (per-utterance alignments), ``ops_<split>.json`` (multiplications, spike
rates, ratio to a same-size GRU), training curves and spike plots.

Run::

    python recipes/LibriSpeech/train.py hparams/snn.yaml --data_folder /path/to/LibriSpeech
    python tools/make_librispeech_corpus.py digits data/digits   # no LibriSpeech? make a mini one

Authors: snn-asr developers (structure after SpeechBrain's LibriSpeech recipes).
"""

from __future__ import annotations

import sys
from pathlib import Path

import speechbrain as sb
import torch
from speechbrain.decoders.ctc import CTCPrefixBeamSearcher
from speechbrain.tokenizers.SentencePiece import SentencePiece

from snn_asr.asr_brain import ASRBrain
from snn_asr.ngram import arpa_from_manifest
from snn_asr.recipe_cli import main_guard, start_experiment

RECIPE_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(RECIPE_DIR))
from librispeech_prepare import prepare_librispeech  # noqa: E402

DATA_HINT = (
    "pass --data_folder /path/to/LibriSpeech (holding train-clean-100/, dev-clean/, test-clean/); "
    "without LibriSpeech, make a mini corpus with: python tools/make_librispeech_corpus.py digits data/digits"
)


class WordBrain(ASRBrain):
    """Scores words: token ids are decoded by the sentencepiece tokenizer."""

    def to_units(self, token_ids):
        return [self.tokenizer.sp.decode_ids([int(t) for t in seq]).split() for seq in token_ids]


def dataio_prepare(hparams, tokenizer):
    """Datasets with ``sig``, ``tokens``, ``tokens_bos`` and ``tokens_eos``, one per split."""
    save = Path(hparams["save_folder"])
    splits = ["train", "dev", *hparams["test_splits"]]
    datasets = {}
    for name in splits:
        datasets[name] = sb.dataio.dataset.DynamicItemDataset.from_csv(save / f"{name}.csv", replacements={})
    datasets["train"] = datasets["train"].filtered_sorted(sort_key="duration")

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def audio_pipeline(wav):
        return sb.dataio.dataio.read_audio(wav)

    @sb.utils.data_pipeline.takes("wrd")
    @sb.utils.data_pipeline.provides("tokens_list", "tokens_bos", "tokens_eos", "tokens")
    def text_pipeline(wrd):
        tokens_list = tokenizer.sp.encode_as_ids(wrd)
        yield tokens_list
        yield torch.LongTensor([hparams["bos_index"]] + tokens_list)
        yield torch.LongTensor(tokens_list + [hparams["eos_index"]])
        yield torch.LongTensor(tokens_list)

    sb.dataio.dataset.add_dynamic_item(list(datasets.values()), audio_pipeline)
    sb.dataio.dataset.add_dynamic_item(list(datasets.values()), text_pipeline)
    sb.dataio.dataset.set_output_keys(
        list(datasets.values()), ["id", "sig", "tokens", "tokens_bos", "tokens_eos"]
    )
    return datasets


def train_tokenizer(hparams) -> SentencePiece:
    """Sentencepiece model on the training transcripts (loaded when it already exists)."""
    return SentencePiece(
        model_dir=hparams["save_folder"],
        vocab_size=hparams["vocab_size"],
        annotation_train=str(Path(hparams["save_folder"]) / "train.csv"),
        annotation_read="wrd",
        model_type=hparams["token_type"],
        character_coverage=1.0,
        bos_id=hparams["bos_index"],
        eos_id=hparams["eos_index"],
    )


def ngram_lm(hparams) -> str | None:
    """Path of the ARPA n-gram for beam search: the given one, or one built from the training text."""
    if hparams["ngram_arpa"]:
        return hparams["ngram_arpa"]
    if not hparams["ngram_order"]:
        return None
    save = Path(hparams["save_folder"])
    arpa = save / f"{hparams['ngram_order']}gram.arpa"
    sb.utils.distributed.run_on_main(
        arpa_from_manifest, args=[save / "train.csv", "wrd", hparams["ngram_order"], arpa]
    )
    return str(arpa)


def main() -> None:
    hparams, run_opts = start_experiment(sys.argv[1:], RECIPE_DIR, required={"data_folder": DATA_HINT})
    sb.utils.distributed.run_on_main(
        prepare_librispeech,
        kwargs={
            "data_folder": hparams["data_folder"],
            "save_folder": hparams["save_folder"],
            "tr_splits": hparams["train_splits"],
            "dev_splits": hparams["dev_splits"],
            "te_splits": hparams["test_splits"],
            "skip_prep": hparams["skip_prep"],
        },
    )
    tokenizer = train_tokenizer(hparams)  # SpeechBrain's wrapper trains on the main process only
    datasets = dataio_prepare(hparams, tokenizer)
    brain = WordBrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    brain.tokenizer = tokenizer
    tests = {name: datasets[name] for name in hparams["test_splits"]}
    vocab = [tokenizer.sp.id_to_piece(i) for i in range(tokenizer.sp.get_piece_size())]
    if hparams["beam_size"] > 0 and not brain.attention:
        brain.test_search = CTCPrefixBeamSearcher(
            blank_index=hparams["blank_index"], vocab_list=vocab, beam_size=hparams["beam_size"]
        )
    brain.fit_and_test(datasets["train"], datasets["dev"], tests)
    arpa = ngram_lm(hparams)
    if arpa and not brain.attention and hparams["beam_size"] > 0:
        brain.test_search = CTCPrefixBeamSearcher(
            blank_index=hparams["blank_index"],
            vocab_list=vocab,
            beam_size=hparams["beam_size"],
            kenlm_model_path=arpa,
            alpha=hparams["lm_weight"],
            beta=hparams["lm_bonus"],
        )
        brain.test(tests, suffix="_ngram")


if __name__ == "__main__":
    main_guard(main)
