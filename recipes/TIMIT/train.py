#!/usr/bin/env python3
"""Phone recognition on TIMIT with a spiking recurrent encoder (or LSTM/GRU), CTC or joint CTC/attention.

Trains on the TIMIT training set (48 phones), anneals on the 50-speaker dev set and tests on
the 24-speaker core test set, scoring PER on the 39-phone set. Writes ``wer_test.txt``
(per-utterance alignments), ``wer_test.json`` (the PER by SpeechBrain and by jiwer),
``ops_test.json`` (multiplications, spike rates, ratio to a same-size GRU), training curves
and spike plots to the output folder. With an attentional decoder in the YAML
(``snn_ctc_att.yaml``) the label encoder also holds ``<bos>``/``<eos>`` and test decoding is
the YAML's joint CTC/attention beam search.

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

import speechbrain as sb
import torch

from snn_asr.recipes.brain import ASRBrain, bos_eos_tokens, ctc_beam_searcher
from snn_asr.recipes.cli import main_guard, start_experiment
from snn_asr.recipes.ngram import arpa_from_manifest

RECIPE_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(RECIPE_DIR))
from timit_prepare import PHONES_48, map_to_39, prepare_timit  # noqa: E402


class PhoneBrain(ASRBrain):
    """Scores on TIMIT's 39-phone set (Lee & Hon); blank, bos and eos in hypotheses are dropped."""

    def to_units(self, token_ids):
        return [
            map_to_39([p for p in self.label_encoder.decode_ndim(seq) if p in PHONES_48]) for seq in token_ids
        ]

    def text_to_units(self, text):
        return map_to_39(text.split())


def dataio_prepare(hparams):
    """Datasets with ``sig`` (waveform) and ``tokens`` (phone ids), and the label encoder.

    When the YAML sets ``bos_index``/``eos_index`` (attention decoders), the label encoder
    holds ``<bos>``/``<eos>`` there and the datasets also give ``tokens_bos``/``tokens_eos``.
    """
    attention = "bos_index" in hparams
    save = Path(hparams["save_folder"])
    datasets = {
        split: sb.dataio.dataset.DynamicItemDataset.from_csv(save / f"{split}.csv", replacements={})
        for split in ("train", "dev", "test")
    }
    datasets["train"] = datasets["train"].filtered_sorted(sort_key="duration")

    label_encoder = sb.dataio.encoder.CTCTextEncoder()

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def audio_pipeline(wav):
        return sb.dataio.dataio.read_audio(wav)

    @sb.utils.data_pipeline.takes("phn")
    @sb.utils.data_pipeline.provides("phn_list", "tokens_bos", "tokens_eos", "tokens")
    def text_pipeline(phn):
        phn_list = phn.strip().split()
        yield phn_list
        ids = label_encoder.encode_sequence(phn_list)
        if attention:
            yield from bos_eos_tokens(ids, hparams["bos_index"], hparams["eos_index"])
        else:
            yield from (None, None, torch.LongTensor(ids))

    sb.dataio.dataset.add_dynamic_item(list(datasets.values()), audio_pipeline)
    sb.dataio.dataset.add_dynamic_item(list(datasets.values()), text_pipeline)
    special_labels = {"blank_label": hparams["blank_index"]}
    if attention:
        special_labels.update(bos_label=hparams["bos_index"], eos_label=hparams["eos_index"])
    lab_enc_file = save / "label_encoder.txt"
    label_encoder.load_or_create(  # the full 48-phone set, whether or not the training data has them all
        path=lab_enc_file, from_iterables=[PHONES_48], special_labels=special_labels
    )
    label_encoder.expect_len(hparams["output_neurons"])
    keys = ["id", "sig", "tokens", *(["tokens_bos", "tokens_eos"] if attention else [])]
    sb.dataio.dataset.set_output_keys(list(datasets.values()), keys)
    return datasets, label_encoder


def main() -> None:
    hparams, run_opts = start_experiment(
        sys.argv[1:],
        RECIPE_DIR,
        required={
            "data_folder": "pass --data_folder /path/to/TIMIT (holding TRAIN/ and TEST/); without TIMIT, "
            "make a mini corpus with: python tools/make_mini_timit.py data/mini_timit --size ci"
        },
    )
    sb.utils.distributed.run_on_main(
        prepare_timit,
        kwargs={
            "data_folder": hparams["data_folder"],
            "save_folder": hparams["save_folder"],
            "skip_prep": hparams["skip_prep"],
            "sample_rate": hparams["sample_rate"],
        },
    )
    datasets, label_encoder = dataio_prepare(hparams)
    brain = PhoneBrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    brain.label_encoder = label_encoder
    vocab = ["▁" + label_encoder.ind2lab[i] for i in range(len(label_encoder))]  # one "word" per phone
    ctc_beam = hparams["beam_size"] > 0 and not brain.attention
    if ctc_beam:
        brain.test_search = ctc_beam_searcher(hparams, vocab)
    tests = {"dev": datasets["dev"], "test": datasets["test"]}
    brain.fit_and_test(datasets["train"], datasets["dev"], tests)
    if ctc_beam and hparams["phone_lm_order"] > 0:
        save = Path(hparams["save_folder"])
        arpa = save / f"phone_{hparams['phone_lm_order']}gram.arpa"
        sb.utils.distributed.run_on_main(
            arpa_from_manifest, args=[save / "train.csv", "phn", hparams["phone_lm_order"], arpa]
        )
        brain.test_search = ctc_beam_searcher(
            hparams, vocab, kenlm_model_path=str(arpa), alpha=hparams["lm_weight"], beta=hparams["lm_bonus"]
        )
        brain.test(tests, suffix="_phone_lm")


if __name__ == "__main__":
    main_guard(main)
