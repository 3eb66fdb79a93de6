"""Neural language models in the recipes: training SpeechBrain's ``RNNLM`` and using it in decoding.

- :class:`LMBrain` trains a token-level LM (``speechbrain.lobes.models.RNNLM.RNNLM``, built
  with ``return_hidden: True``) on ``tokens_bos`` -> ``tokens_eos`` with SpeechBrain's NLL,
  keeping the checkpoints of lowest dev loss (``recipes/LibriSpeech/train_lm.py``).
- :func:`load_rnnlm` rebuilds such an LM from its experiment folder (architecture from the
  saved ``hyperparams.yaml``, weights from the best checkpoint); :func:`load_rnnlm_for` also
  checks that it was trained with the ASR model's tokenizer.
- :func:`rnnlm_rescorer` re-ranks N-best lists with it (SpeechBrain's ``RNNLMRescorer``),
  :func:`with_rnnlm` adds it to an attention beam search (``RNNLMScorer``, shallow fusion).

The LM's tokens must be the ASR model's: train it with the ASR model's tokenizer.
"""

from __future__ import annotations

import copy
import math
from io import StringIO
from pathlib import Path

import ruamel.yaml
import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.decoders.scorer import RescorerBuilder, RNNLMRescorer, RNNLMScorer, ScorerBuilder

from snn_asr.recipes.brain import RecipeBrain
from snn_asr.recipes.checkpoints import same_vocabulary, sound_checkpoint, tokenizer_problem


class LMBrain(RecipeBrain):
    """Next-token training of ``modules.lm`` (returns ``(logits, hidden)``) with ``hparams.compute_cost``.

    Logs loss and perplexity per epoch, anneals the learning rate on the dev loss
    (``lr_annealing``) and keeps the checkpoints of lowest dev loss (meta key ``loss``).
    """

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        tokens_bos, _ = batch.tokens_bos
        logits, _ = self.modules.lm(tokens_bos)
        return self.hparams.log_softmax(logits)

    def compute_objectives(self, predictions, batch, stage):
        tokens_eos, tokens_len = batch.tokens_eos
        return self.hparams.compute_cost(predictions, tokens_eos, length=tokens_len)

    def on_stage_end(self, stage, stage_loss, epoch=None):
        super().on_stage_end(stage, stage_loss, epoch)
        stats = {"loss": stage_loss, "perplexity": math.exp(min(stage_loss, 50.0))}
        if stage == sb.Stage.VALID:
            self.end_dev_epoch(epoch, stats, anneal_on="loss", keep_lowest="loss")
        elif stage == sb.Stage.TEST:
            self.log_test(stats)


def load_rnnlm(folder: str | Path, key: str = "lm_model") -> tuple[torch.nn.Module, str]:
    """The LM trained in experiment ``folder``, with the weights of its lowest-dev-loss sound checkpoint.

    A corrupt checkpoint is skipped with a warning (the next best is used); a corrupt
    ``hyperparams.yaml`` or tokenizer copy, or no sound checkpoint, is a one-line ``ValueError``.

    Only the ``key`` entry of the saved ``hyperparams.yaml`` is built (nothing else there is
    instantiated, so paths in it need not exist from here); the checkpoints and the copy of
    the tokenizer (``tokenizer.model``) are looked up in ``folder/save``.

    Returns
    -------
    model, tokenizer_file
        The LM in eval mode, and the sentencepiece model it was trained with.
    """
    folder = Path(folder)
    hparams_file = folder / "hyperparams.yaml"
    if not hparams_file.is_file():
        raise FileNotFoundError(f"{hparams_file} not found: pass the output folder of the LM recipe")
    yaml = ruamel.yaml.YAML()
    try:
        saved = yaml.load(hparams_file.read_text(encoding="utf-8"))
        stream = StringIO()
        yaml.dump({key: saved[key]}, stream)
        model = load_hyperpyyaml(stream.getvalue())[key]
    except Exception as err:  # ruamel, hyperpyyaml and the LM's constructor raise many types
        reason = " ".join(str(err).split())[:100] or type(err).__name__
        raise ValueError(
            f"{hparams_file} is corrupt or not an LM recipe's ({reason}); pass the output folder of the "
            "LM recipe, or train the LM again"
        ) from None
    checkpointer = sb.utils.checkpoints.Checkpointer(folder / "save", recoverables={"model": model})
    checkpoint = sound_checkpoint(checkpointer, min_key="loss")  # broken ones skipped, never loaded
    model.load_state_dict(torch.load(checkpoint.paramfiles["model"], map_location="cpu", weights_only=True))
    tokenizer_file = folder / "save" / "tokenizer.model"
    problem = tokenizer_problem(tokenizer_file) if tokenizer_file.is_file() else "tokenizer.model is missing"
    if problem:
        raise ValueError(
            f"the LM's tokenizer copy in {folder / 'save'}: {problem}; copy the ASR model's tokenizer "
            f"(the --tokenizer_file the LM was trained with) to {tokenizer_file}"
        )
    return model.eval(), str(tokenizer_file)


def load_rnnlm_for(folder: str | Path, tokenizer_file: str | Path) -> torch.nn.Module:
    """The LM of :func:`load_rnnlm`; a one-line ``ValueError`` unless it was trained on the tokens of
    ``tokenizer_file`` (:func:`~snn_asr.recipes.checkpoints.same_vocabulary`)."""
    lm, lm_tokenizer = load_rnnlm(folder)
    if not same_vocabulary(Path(lm_tokenizer), Path(tokenizer_file)):
        raise ValueError(
            f"the RNNLM in {folder} was trained with tokenizer {lm_tokenizer}, not this model's "
            f"{tokenizer_file}: train it with --tokenizer_file {tokenizer_file}"
        )
    return lm


def rnnlm_rescorer(
    language_model: torch.nn.Module, tokenizer, weight: float, bos_index: int, eos_index: int
) -> RescorerBuilder:
    """SpeechBrain's N-best rescorer with one ``RNNLMRescorer``: ``score + weight * log P_LM(text)``.

    ``tokenizer`` is the ``sentencepiece.SentencePieceProcessor`` the LM was trained with;
    hypothesis texts are upper-cased (as LibriSpeech transcripts are) and scored with
    ``bos_index`` in front and ``eos_index`` at the end. The LM stays on its device.
    """
    device = str(next(language_model.parameters()).device)
    rescorer = RNNLMRescorer(
        language_model, tokenizer, device=device, bos_index=bos_index, eos_index=eos_index, pad_index=0
    )
    return RescorerBuilder(rescorers=[rescorer], weights={"rnnlm": weight})


def with_rnnlm(searcher, language_model: torch.nn.Module, weight: float, temperature: float = 1.0):
    """A copy of a SpeechBrain seq2seq beam searcher that also scores tokens with ``language_model``.

    Shallow fusion: the searcher's ``ScorerBuilder`` (its scorers and weights, e.g. CTC) plus
    an ``RNNLMScorer`` of weight ``weight``; the original searcher is unchanged and the copy
    shares its modules.

    Example
    -------
    >>> from speechbrain.decoders import S2SRNNBeamSearcher
    >>> from speechbrain.lobes.models.RNNLM import RNNLM
    >>> from speechbrain.nnet.RNN import AttentionalRNNDecoder
    >>> emb, lin = torch.nn.Embedding(6, 3), sb.nnet.linear.Linear(n_neurons=6, input_size=4)
    >>> dec = AttentionalRNNDecoder("gru", "content", 4, 4, 1, enc_dim=5, input_size=3)
    >>> ctc = sb.decoders.scorer.CTCScorer(sb.nnet.linear.Linear(n_neurons=6, input_size=5), 0, 2)
    >>> scorer = ScorerBuilder(partial_scorers=[ctc], weights={"ctc": 0.4})
    >>> searcher = S2SRNNBeamSearcher(emb, dec, lin, bos_index=1, eos_index=2, min_decode_ratio=0,
    ...                               max_decode_ratio=1, beam_size=2, scorer=scorer)
    >>> lm = RNNLM(output_neurons=6, embedding_dim=3, rnn_neurons=4, dnn_neurons=4, return_hidden=True)
    >>> fused = with_rnnlm(searcher, lm, weight=0.5)
    >>> sorted(k for k, w in fused.scorer.weights.items() if w), searcher.scorer is scorer
    (['ctc', 'rnnlm'], True)
    >>> hyps, *_ = fused(torch.rand(2, 7, 5), torch.ones(2))
    >>> len(hyps)
    2
    """
    old = searcher.scorer or ScorerBuilder()
    weights = {name: old.weights[name] for name in [*old.full_scorers, *old.partial_scorers]}
    fused = copy.copy(searcher)
    fused.scorer = ScorerBuilder(
        full_scorers=[*old.full_scorers.values(), RNNLMScorer(language_model, temperature=temperature)],
        partial_scorers=list(old.partial_scorers.values()),
        weights={**weights, "rnnlm": weight},
        scorer_beam_scale=old.scorer_beam_scale,
    )
    return fused
