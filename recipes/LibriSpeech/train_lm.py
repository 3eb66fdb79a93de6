#!/usr/bin/env python3
"""Trains an RNN language model (SpeechBrain's ``RNNLM``) on the LibriSpeech training transcripts.

The transcripts are tokenized with an ASR model's sentencepiece tokenizer (``--tokenizer_file``),
so the LM scores that model's tokens; ``train.py --rnnlm_folder <this output_folder>`` then
decodes the test splits once more with it (``wer_<split>_rnnlm.txt``). Trains with
:class:`snn_asr.recipes.rnnlm.LMBrain` (NLL of the next token, learning rate halved on dev plateaus),
keeps the checkpoints of lowest dev loss, resumes from the last one, and logs dev perplexity.
A copy of the tokenizer goes to ``<output_folder>/save/tokenizer.model``, with the LM.

Run::

    python recipes/LibriSpeech/train_lm.py hparams/lm.yaml --data_folder /path/to/LibriSpeech \\
        --tokenizer_file results/LibriSpeech/snn_v2/1234/save/256_unigram.model

Authors: snn-asr developers (structure after SpeechBrain's LibriSpeech LM recipe).
"""

from __future__ import annotations

import filecmp
import shutil
import sys
from pathlib import Path

import sentencepiece
import speechbrain as sb

from snn_asr.recipes.brain import bos_eos_tokens
from snn_asr.recipes.cli import main_guard, start_experiment
from snn_asr.recipes.rnnlm import LMBrain

RECIPE_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(RECIPE_DIR))
from train import DATA_HINT, prepare_manifests  # noqa: E402

TOKENIZER_HINT = (
    "pass --tokenizer_file <ASR output_folder>/save/<vocab_size>_<token_type>.model, the tokenizer "
    "of the ASR model the LM is for (train.py writes it)"
)


def text_datasets(hparams, tokenizer: sentencepiece.SentencePieceProcessor) -> dict:
    """Training and dev transcripts as ``tokens_bos``/``tokens_eos`` datasets."""
    save = Path(hparams["save_folder"])
    datasets = {
        name: sb.dataio.dataset.DynamicItemDataset.from_csv(save / f"{name}.csv", replacements={})
        for name in ("train", "dev")
    }

    @sb.utils.data_pipeline.takes("wrd")
    @sb.utils.data_pipeline.provides("tokens_bos", "tokens_eos")
    def text_pipeline(wrd):
        tokens_bos, tokens_eos, _ = bos_eos_tokens(
            tokenizer.encode_as_ids(wrd), hparams["bos_index"], hparams["eos_index"]
        )
        yield tokens_bos
        yield tokens_eos

    sb.dataio.dataset.add_dynamic_item(list(datasets.values()), text_pipeline)
    sb.dataio.dataset.set_output_keys(list(datasets.values()), ["id", "tokens_bos", "tokens_eos"])
    return datasets


def main() -> None:
    hparams, run_opts = start_experiment(
        sys.argv[1:], RECIPE_DIR, required={"data_folder": DATA_HINT, "tokenizer_file": TOKENIZER_HINT}
    )
    if not Path(hparams["tokenizer_file"]).is_file():
        raise FileNotFoundError(f"tokenizer_file {hparams['tokenizer_file']} not found; {TOKENIZER_HINT}")
    tokenizer = sentencepiece.SentencePieceProcessor(model_file=hparams["tokenizer_file"])
    if tokenizer.get_piece_size() != hparams["vocab_size"]:
        raise ValueError(
            f"vocab_size is {hparams['vocab_size']} but {hparams['tokenizer_file']} has "
            f"{tokenizer.get_piece_size()} tokens: pass --vocab_size {tokenizer.get_piece_size()}"
        )
    kept = Path(hparams["save_folder"]) / "tokenizer.model"
    if not kept.exists():
        sb.utils.distributed.run_on_main(shutil.copyfile, args=[hparams["tokenizer_file"], kept])
    elif not filecmp.cmp(kept, hparams["tokenizer_file"], shallow=False):
        raise ValueError(
            f"the LM in {hparams['output_folder']} was trained with another tokenizer ({kept}) than "
            f"{hparams['tokenizer_file']}: pass a new --output_folder"
        )
    prepare_manifests(hparams, test_splits=[])
    datasets = text_datasets(hparams, tokenizer)
    brain = LMBrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    brain.fit(
        hparams["epoch_counter"],
        datasets["train"],
        datasets["dev"],
        train_loader_kwargs=hparams["train_dataloader_opts"],
        valid_loader_kwargs=hparams["valid_dataloader_opts"],
    )
    brain.evaluate(datasets["dev"], min_key="loss", test_loader_kwargs=hparams["valid_dataloader_opts"])


if __name__ == "__main__":
    main_guard(main)
