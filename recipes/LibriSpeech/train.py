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
and spike plots.

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

import filecmp
import sys
from pathlib import Path

import speechbrain as sb
import torch
from speechbrain.tokenizers.SentencePiece import SentencePiece

from snn_asr.recipes.brain import ASRBrain, bos_eos_tokens, ctc_beam_searcher
from snn_asr.recipes.cli import main_guard, start_experiment
from snn_asr.recipes.ngram import arpa_from_manifest
from snn_asr.recipes.rnnlm import load_rnnlm, rnnlm_rescorer, with_rnnlm

RECIPE_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(RECIPE_DIR))
from librispeech_prepare import prepare_librispeech  # noqa: E402

DATA_HINT = (
    "pass --data_folder /path/to/LibriSpeech (holding train-clean-100/, dev-clean/, test-clean/); "
    "without LibriSpeech, make a mini corpus and train on it with: "
    "python tools/make_librispeech_corpus.py digits data/digits && python recipes/LibriSpeech/train.py "
    "hparams/snn.yaml --data_folder data/digits --test_splits '[test-clean]' --vocab_size 24"
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
        yield from bos_eos_tokens(tokens_list, hparams["bos_index"], hparams["eos_index"])

    sb.dataio.dataset.add_dynamic_item(list(datasets.values()), audio_pipeline)
    sb.dataio.dataset.add_dynamic_item(list(datasets.values()), text_pipeline)
    sb.dataio.dataset.set_output_keys(
        list(datasets.values()), ["id", "sig", "tokens", "tokens_bos", "tokens_eos"]
    )
    return datasets


def prepare_manifests(hparams, test_splits: list[str]) -> None:
    """CSV manifests of the training, dev and ``test_splits`` splits in ``save_folder`` (main process)."""
    sb.utils.distributed.run_on_main(
        prepare_librispeech,
        kwargs={
            "data_folder": hparams["data_folder"],
            "save_folder": hparams["save_folder"],
            "tr_splits": hparams["train_splits"],
            "dev_splits": hparams["dev_splits"],
            "te_splits": test_splits,
            "skip_prep": hparams["skip_prep"],
            "sample_rate": hparams.get("sample_rate", 16000),
        },
    )


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


def rnnlm_for(hparams, tokenizer: SentencePiece) -> torch.nn.Module:
    """The RNNLM in ``rnnlm_folder``; ``ValueError`` when it was trained with another tokenizer."""
    lm, lm_tokenizer = load_rnnlm(hparams["rnnlm_folder"])
    tokenizer_file = tokenizer.prefix_model_file + ".model"
    if not filecmp.cmp(lm_tokenizer, tokenizer_file, shallow=False):
        raise ValueError(
            f"the RNNLM in {hparams['rnnlm_folder']} was trained with tokenizer {lm_tokenizer}, "
            f"not this model's {tokenizer_file}: train it with --tokenizer_file {tokenizer_file}"
        )
    return lm


def decode_with_rnnlm(brain: WordBrain, lm: torch.nn.Module, hparams, tests: dict, vocab: list[str]) -> None:
    """Decodes ``tests`` again with the RNNLM ``lm``; writes ``wer_<split>_rnnlm.txt``.

    CTC models: N-best rescoring of the CTC prefix beam search (``rnnlm_topk`` hypotheses);
    attention models: shallow fusion in the YAML's ``test_search``.
    """
    lm.to(brain.device)
    if brain.attention:
        brain.test_search = with_rnnlm(hparams["test_search"], lm, hparams["rnnlm_weight"])
    else:
        brain.test_search = ctc_beam_searcher(hparams, vocab, topk=hparams["rnnlm_topk"])
        brain.rescorer = rnnlm_rescorer(
            lm, brain.tokenizer.sp, hparams["rnnlm_weight"], hparams["bos_index"], hparams["eos_index"]
        )
    brain.test(tests, suffix="_rnnlm")


def main() -> None:
    hparams, run_opts = start_experiment(sys.argv[1:], RECIPE_DIR, required={"data_folder": DATA_HINT})
    if hparams["rnnlm_folder"] and hparams["beam_size"] < 1:
        raise ValueError("rnnlm_folder needs beam search: set beam_size > 0")
    prepare_manifests(hparams, hparams["test_splits"])
    tokenizer = train_tokenizer(hparams)  # SpeechBrain's wrapper trains on the main process only
    lm = rnnlm_for(hparams, tokenizer) if hparams["rnnlm_folder"] else None
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
        brain.test_search = ctc_beam_searcher(hparams, vocab)
    brain.fit_and_test(datasets["train"], datasets["dev"], tests)
    arpa = ngram_lm(hparams) if not brain.attention and hparams["beam_size"] > 0 else None
    if arpa:
        brain.test_search = ctc_beam_searcher(
            hparams, vocab, kenlm_model_path=arpa, alpha=hparams["lm_weight"], beta=hparams["lm_bonus"]
        )
        brain.test(tests, suffix="_ngram")
    if lm is not None:
        decode_with_rnnlm(brain, lm, hparams, tests, vocab)


if __name__ == "__main__":
    main_guard(main)
