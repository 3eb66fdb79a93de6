#!/usr/bin/env python3
"""Trains a character RNN language model (SpeechBrain's ``RNNLM``) on the AN4 training transcripts.

The 848 training transcripts (dev's 100 are its dev set, as the ASR recipe's) are tokenized with
an ASR model's sentencepiece ``char`` tokenizer (``--tokenizer_file``), so the LM scores that
model's characters; ``train.py --rnnlm_folder <this output_folder>`` then decodes dev and test
once more with it (``wer_<split>_rnnlm.txt``, N-best rescoring of the CTC beam search). The flow,
checkpoints and resuming are the LibriSpeech LM recipe's (:func:`snn_asr.recipes.run.run_lm_recipe`),
on this recipe's data preparation.

Run::

    python recipes/AN4/train_lm.py hparams/lm.yaml --data_folder /path/to/an4 \\
        --tokenizer_file results/AN4/snn_v2/1234/save/31_char.model

Authors: snn-asr developers (structure after SpeechBrain's LibriSpeech LM recipe).
"""

from snn_asr.recipes.run import lm_recipe_main

if __name__ == "__main__":
    lm_recipe_main(__file__)
