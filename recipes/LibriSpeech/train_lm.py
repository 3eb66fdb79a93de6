#!/usr/bin/env python3
"""Trains an RNN language model (SpeechBrain's ``RNNLM``) on the LibriSpeech training transcripts.

The transcripts are tokenized with an ASR model's sentencepiece tokenizer (``--tokenizer_file``),
so the LM scores that model's tokens; ``train.py --rnnlm_folder <this output_folder>`` then
decodes the test splits once more with it (``wer_<split>_rnnlm.txt``). Trains with
:class:`snn_asr.recipes.rnnlm.LMBrain` (NLL of the next token, learning rate halved on dev plateaus),
keeps the checkpoints of lowest dev loss, resumes from the last one, and logs dev perplexity.
A copy of the tokenizer goes to ``<output_folder>/save/tokenizer.model``, with the LM. The flow is
:func:`snn_asr.recipes.run.run_lm_recipe`, on the ASR recipe's data preparation.

Run::

    python recipes/LibriSpeech/train_lm.py hparams/lm.yaml --data_folder /path/to/LibriSpeech \\
        --tokenizer_file results/LibriSpeech/snn_v2/1234/save/256_unigram.model

Authors: snn-asr developers (structure after SpeechBrain's LibriSpeech LM recipe).
"""

from snn_asr.recipes.run import lm_recipe_main

if __name__ == "__main__":
    lm_recipe_main(__file__)
