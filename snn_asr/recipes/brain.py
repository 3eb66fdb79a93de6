"""The training and evaluation loops shared by the recipes: encoder + CTC, optionally + attention.

``RecipeBrain`` is the SpeechBrain ``Brain`` every recipe's model trains with: after each dev
epoch it anneals the learning rate (``lr_annealing``), keeps the best checkpoints and logs the
epoch (:meth:`RecipeBrain.end_dev_epoch`); it wraps modules for DDP itself
(:meth:`RecipeBrain._wrap_distributed`). ``ASRBrain`` (here) and ``LMBrain``
(:mod:`~snn_asr.recipes.rnnlm`) build on it.

``ASRBrain``'s modules and hyperparameters come from a recipe's YAML (``compute_features``,
``normalize``, ``encoder``, ``ctc_lin``, ``log_softmax``, ``ctc_cost``; for joint CTC/attention
also ``emb``, ``dec``, ``seq_lin``, ``seq_cost``, ``ctc_weight``, ``valid_search``/``test_search``).
How token ids become scoring units (words for LibriSpeech, 39 phones for TIMIT) is the recipe's
:class:`~snn_asr.recipes.data.Units`. Test-time decoding is set by the recipe flow
(:mod:`~snn_asr.recipes.run`): :attr:`ASRBrain.test_search` (a CTC prefix beam searcher for CTC
models, the YAML's attention beam searcher otherwise) and :attr:`ASRBrain.rescorer` (a SpeechBrain
``RescorerBuilder`` that re-ranks the CTC N-best list).

Per epoch it logs loss and error rate, anneals on the dev loss (``lr_annealing_metric:
error_rate`` for the dev error instead), keeps the best checkpoints, and saves PNG training
curves. At test time it writes SpeechBrain's per-utterance alignment file, an op-count /
spike-rate report of the encoder against a same-size GRU, a spike raster and a spike-rate
histogram, and cross-checks SpeechBrain's error rate against jiwer's on the same hypotheses and
references (:func:`cross_check_wer`; a disagreement raises).
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path

import jiwer
import speechbrain as sb
import torch
from speechbrain.decoders import S2SRNNGreedySearcher
from speechbrain.decoders.ctc import CTCPrefixBeamSearcher
from speechbrain.utils.repro import SaveableGenerator

from snn_asr.dataio import atomic_write_text
from snn_asr.neurons import SpikingNeuron
from snn_asr.ops import OpsReport, count_ops
from snn_asr.recipes.checkpoints import set_aside_broken_checkpoints
from snn_asr.recipes.data import SubwordUnits, Units
from snn_asr.recipes.plots import spike_raster, spike_rate_histogram, training_curves
from snn_asr.recipes.sparsity import SpikeRatePenalty, spikes_and_valid

logger = logging.getLogger(__name__)


class WERMismatchError(RuntimeError):
    """SpeechBrain's ``ErrorRateStats`` and jiwer disagree on the same hypotheses and references."""


def cross_check_wer(error_metrics: sb.utils.metric_stats.ErrorRateStats) -> dict:
    """Word error rate of ``error_metrics``'s hypotheses/references by SpeechBrain and by jiwer.

    Both count edits over the same token lists (jiwer sees them joined by spaces), so the
    error rates, edit counts and reference lengths must agree exactly; raises
    :class:`WERMismatchError` when they do not.

    Returns
    -------
    dict
        ``{"speechbrain": {...}, "jiwer": {...}, "agree": True}``, each with ``wer`` (%),
        ``edits`` and ``ref_tokens``.

    Example
    -------
    >>> stats = sb.utils.metric_stats.ErrorRateStats()
    >>> stats.append(["u1", "u2"], [["A", "X", "C", "D"], []], [["A", "B", "C"], ["D", "E"]])
    >>> cross_check_wer(stats)["jiwer"]
    {'wer': 80.0, 'edits': 4, 'ref_tokens': 5}
    """
    summary = error_metrics.summarize()
    refs = [" ".join(s["ref_tokens"]) for s in error_metrics.scores]
    hyps = [" ".join(s["hyp_tokens"]) for s in error_metrics.scores]
    words = jiwer.process_words(refs, hyps)
    edits = words.substitutions + words.deletions + words.insertions
    ref_tokens = words.hits + words.substitutions + words.deletions
    result = {
        "speechbrain": {
            "wer": float(summary["error_rate"]),
            "edits": int(summary["num_edits"]),
            "ref_tokens": int(summary["num_scored_tokens"]),
        },
        "jiwer": {"wer": 100.0 * words.wer, "edits": edits, "ref_tokens": ref_tokens},
    }
    sb_, jw = result["speechbrain"], result["jiwer"]
    agree = (sb_["edits"], sb_["ref_tokens"]) == (jw["edits"], jw["ref_tokens"])
    if not agree or abs(sb_["wer"] - jw["wer"]) > 1e-6:
        raise WERMismatchError(f"SpeechBrain and jiwer disagree on the same hypotheses: {result}")
    return {**result, "agree": True}


def character_error_rates(error_metrics: sb.utils.metric_stats.ErrorRateStats) -> dict:
    """Character error rates (%) of word hypotheses, by jiwer: ``with_spaces`` counts the space
    between words as a character (as ESPnet scores CER), ``without_spaces`` only the letters.

    Example
    -------
    >>> stats = sb.utils.metric_stats.ErrorRateStats()
    >>> stats.append(["u1"], [["A", "BC"]], [["A", "B", "C"]])
    >>> character_error_rates(stats)
    {'with_spaces': 20.0, 'without_spaces': 0.0}
    """
    refs = [" ".join(s["ref_tokens"]) for s in error_metrics.scores]
    hyps = [" ".join(s["hyp_tokens"]) for s in error_metrics.scores]
    squeeze = lambda texts: [t.replace(" ", "") for t in texts]  # noqa: E731
    return {
        "with_spaces": 100.0 * jiwer.cer(refs, hyps),
        "without_spaces": 100.0 * jiwer.cer(squeeze(refs), squeeze(hyps)),
    }


def ctc_beam_searcher(hparams: dict, vocab: list[str], **options) -> CTCPrefixBeamSearcher:
    """SpeechBrain's CTC prefix beam search over ``vocab`` with the YAML's ``blank_index`` and ``beam_size``.

    ``options`` go to ``CTCPrefixBeamSearcher`` (e.g. ``kenlm_model_path``, ``alpha``, ``topk``).

    Example
    -------
    >>> search = ctc_beam_searcher({"blank_index": 0, "beam_size": 2}, ["<b>", "▁A", "▁B"], topk=2)
    >>> [h.text for h in search(torch.tensor([[[-9.0, 0.0, -9.0], [0.0, -9.0, -1.0]]]), torch.ones(1))[0]]
    ['A', 'A B']
    """
    return CTCPrefixBeamSearcher(
        blank_index=hparams["blank_index"], vocab_list=vocab, beam_size=hparams["beam_size"], **options
    )


def greedy_attention(hparams) -> S2SRNNGreedySearcher:
    """SpeechBrain's greedy search of the YAML's attention decoder (``emb``, ``dec``, ``seq_lin``):
    an attention model's test decoding at ``beam_size: 0`` (the joint CTC/attention beam search
    needs a beam)."""
    return S2SRNNGreedySearcher(
        embedding=hparams.emb,
        decoder=hparams.dec,
        linear=hparams.seq_lin,
        bos_index=hparams.bos_index,
        eos_index=hparams.eos_index,
        min_decode_ratio=0.0,
        max_decode_ratio=hparams.max_decode_ratio,
    )


class RecipeBrain(sb.Brain):
    """A ``Brain`` that ends each dev epoch as every recipe does, and wraps its modules for DDP."""

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.TRAIN:
            self.train_loss = stage_loss

    def on_stage_start(self, stage, epoch=None):
        """Logs each stage (``train``, ``valid``, ``test``) as it starts: a killed run's log says where."""
        logger.info(f"{stage.name.lower()} stage starts" + (f" (epoch {epoch})" if epoch else ""))

    def on_fit_start(self):
        """SpeechBrain's start (the checkpoint is recovered here), a checkpoint of a model with
        other settings than this run's (``--hidden_size``, ``--num_layers``, ...) refused in one line.

        The random generators' state is checkpointed too (SpeechBrain's ``SaveableGenerator``), so
        a resumed run draws what an uninterrupted one would: on the CPU, the same weights."""
        if self.checkpointer is not None:
            if "generator" not in self.checkpointer.recoverables:
                self.checkpointer.add_recoverable("generator", SaveableGenerator())
            set_aside_broken_checkpoints(self.checkpointer)
        try:
            super().on_fit_start()
            self.write_recovered_epoch()
        except RuntimeError as err:
            if "state_dict" not in str(err):  # load_state_dict's "Error(s) in loading state_dict"
                raise
            folder = self.hparams.output_folder
            raise ValueError(
                f"{str(folder)!r} holds a run of a model with other settings than this run's (its "
                f"checkpoint does not fit: {str(err).splitlines()[-1].strip()[:120]}); pass a new "
                f"--output_folder, or delete {str(folder)!r} to start over"
            ) from None

    def on_evaluate_start(self, max_key=None, min_key=None):
        """SpeechBrain's (the best checkpoint is loaded here), after setting broken checkpoints aside."""
        if self.checkpointer is not None:
            set_aside_broken_checkpoints(self.checkpointer)
        super().on_evaluate_start(max_key=max_key, min_key=min_key)

    def end_dev_epoch(self, epoch: int, stats: dict, anneal_on: str, keep_lowest: str) -> None:
        """Anneals the learning rate on ``stats[anneal_on]``, checkpoints, then records and logs the epoch.

        The checkpoints with the lowest ``stats[keep_lowest]`` are kept. The epoch's record goes
        into its checkpoint (``epoch_record`` in the meta) before it is written anywhere: a run
        killed between the checkpoint and the log line writes that line when it resumes
        (:meth:`write_recovered_epoch`), one killed before the checkpoint repeats the epoch. So
        every epoch is logged once, wherever a kill lands.
        """
        old_lr, new_lr = self.hparams.lr_annealing(stats[anneal_on])
        sb.nnet.schedulers.update_learning_rate(self.optimizer, new_lr)
        record = {
            "epoch": int(epoch),
            "lr": float(old_lr),
            "train_loss": float(self.train_loss),
            "train_seconds": round(float(getattr(self, "train_seconds", 0.0)), 1),
            "stats": {key: float(value) for key, value in stats.items()},
            "train_spike_rates": getattr(self, "train_spike_rates", {}),
        }
        meta = {keep_lowest: stats[keep_lowest], "epoch_record": record}
        self.checkpointer.save_and_keep_only(meta=meta, min_keys=[keep_lowest])
        self.write_epoch(record)

    def write_epoch(self, record: dict) -> None:
        """:meth:`record_epoch`, then the epoch's line in the training log."""
        self.record_epoch(record)
        self.hparams.train_logger.log_stats(
            stats_meta={"epoch": record["epoch"], "lr": record["lr"]},
            train_stats={"loss": record["train_loss"]}
            | {f"rate {name}": rate for name, rate in record.get("train_spike_rates", {}).items()},
            valid_stats=record["stats"],
        )

    def write_recovered_epoch(self) -> None:
        """Writes the recovered checkpoint's epoch where a kill left it checkpointed but not logged."""
        ckpt = self.checkpointer.find_checkpoint() if self.checkpointer is not None else None
        record = ckpt.meta.get("epoch_record") if ckpt is not None else None
        log = Path(self.hparams.train_log)
        if not record or not sb.utils.distributed.if_main_process():
            return
        logged = log.is_file() and re.search(rf"^epoch: {record['epoch']},", log.read_text(), flags=re.M)
        if not logged:
            logger.info(
                "epoch %s was checkpointed but not logged (killed in between): logging it now",
                record["epoch"],
            )
            self.write_epoch(record)

    def record_epoch(self, record: dict) -> None:
        """Keeps a checkpointed dev epoch's record (epoch, lr, losses, stats) beyond the log (here: no)."""

    def log_test(self, stats: dict) -> None:
        """Logs a test stage's ``stats`` with the epoch of the checkpoint that was tested."""
        self.hparams.train_logger.log_stats(
            stats_meta={"Epoch loaded": self.hparams.epoch_counter.current}, test_stats=stats
        )

    def _wrap_distributed(self):
        """DDP wrapping without SpeechBrain's SyncBatchNorm conversion, keeping DDP's buffer broadcast.

        Under ``torchrun`` SpeechBrain's ``Brain`` converts every batch norm to ``SyncBatchNorm``,
        which fails on CPU (gloo) and would replace
        :class:`~snn_asr.neurons.normalization.MaskedBatchNorm` (which keeps padding out of the
        statistics) with an unmasked one. So here each process normalises its batch with that
        batch's own statistics; gradients are all-reduced as usual.

        The running buffers (batch norm's running mean and variance, the quantizers' running scale
        M) follow DDP's ``broadcast_buffers=True``, chosen here explicitly (SpeechBrain 1.1.2 passes
        DDP only ``find_unused_parameters``; it has no option for this): at every training forward,
        DDP first copies rank 0's buffers to every rank, each rank then updates its copy from its
        own batch, and the next forward overwrites that again. The statistics kept, and saved in
        the checkpoints (written by rank 0), are therefore rank 0's: running averages over rank 0's
        batches only; the other ranks' batches shape the gradients, not the statistics. We keep
        that because every rank then starts each step with the same model, buffers included, and
        all ranks test with the checkpoint's statistics; without the broadcast each rank's
        statistics would drift apart from the others'. (The feature normaliser, SpeechBrain's
        ``InputNormalization``, has no parameters and is not wrapped: it all-reduces its own
        statistics over the ranks.)
        """
        if not self.distributed_launch:
            return super()._wrap_distributed()
        from torch.nn.parallel import DistributedDataParallel

        device_ids = None if self.distributed_backend == "gloo" else [self.device]
        for name, module in self.modules.items():
            if any(p.requires_grad for p in module.parameters()):
                self.modules[name] = DistributedDataParallel(
                    module,
                    device_ids=device_ids,
                    find_unused_parameters=self.find_unused_parameters,
                    broadcast_buffers=True,
                )


class ASRBrain(RecipeBrain):
    """CTC (and optionally joint CTC/attention) ASR over any encoder with SpeechBrain's RNN interface.

    Arguments
    ---------
    *args, **kwargs
        ``sb.Brain``'s (``modules``, ``opt_class``, ``hparams``, ``run_opts``, ``checkpointer``).
    units : Units
        How token ids become scoring units (:mod:`~snn_asr.recipes.data`).

    Attributes
    ----------
    test_search : callable or None
        Test-time searcher: the YAML's ``test_search`` (attention models; the recipe may
        replace it, e.g. with one that fuses a language model), or a CTC beam searcher set
        by the recipe (CTC models; ``None``: greedy CTC).
    rescorer : speechbrain.decoders.scorer.RescorerBuilder or None
        Re-ranks the N-best list of a CTC ``test_search`` (its ``topk`` hypotheses).
    """

    def __init__(self, *args, units: Units, **kwargs):
        super().__init__(*args, **kwargs)
        self.units = units
        self.test_search = None
        if self.attention:
            self.test_search = (
                self.hparams.test_search if self.hparams.beam_size > 0 else greedy_attention(self.hparams)
            )
        self.rescorer = None
        self.sparsity = SpikeRatePenalty.of_recipe(self.modules, self.hparams)  # and training rates
        self.wer_file = Path(self.hparams.output_folder) / "wer_test.txt"
        self.annealing_metric = getattr(self.hparams, "lr_annealing_metric", "loss")
        if self.annealing_metric not in ("loss", "error_rate"):
            raise ValueError(
                f"lr_annealing_metric is {self.annealing_metric!r}; pass --lr_annealing_metric loss "
                "(or error_rate)"
            )

    def augmenting(self, stage) -> bool:
        """Whether this stage's waveforms go through the YAML's ``wav_augment`` (``augment: True``)."""
        return stage == sb.Stage.TRAIN and bool(getattr(self.hparams, "augment", False))

    def masking(self, stage) -> bool:
        """Whether this stage's features go through ``fea_augment`` (``spec_augment: True``): time and
        frequency masks of the normalised Fbank (SpecAugment); the batch and its labels stay as they are."""
        return stage == sb.Stage.TRAIN and bool(getattr(self.hparams, "spec_augment", False))

    @property
    def attention(self) -> bool:
        """Whether the YAML defines an attentional decoder (joint CTC/attention)."""
        return hasattr(self.modules, "dec")

    def encode(self, wavs: torch.Tensor, wav_lens: torch.Tensor, stage=None) -> torch.Tensor:
        """Features -> normalisation -> (masking) -> encoder: (batch, samples) -> (batch, frames, hidden)."""
        feats = self.hparams.compute_features(wavs)
        feats = self.modules.normalize(feats, wav_lens)
        if self.masking(stage):
            feats, _ = self.hparams.fea_augment(feats, wav_lens)
        # ``encoder_lengths: False`` (the LSTM/GRU YAMLs): a unidirectional RNN's outputs at real
        # frames never see the padding after them, so SpeechBrain's packing (what it does when
        # given lengths) changes nothing we score and only costs time: ~6x per step on CPU.
        lengths = wav_lens if getattr(self.hparams, "encoder_lengths", True) else None
        encoded = self.modules.encoder(feats, lengths=lengths)
        return encoded[0] if isinstance(encoded, tuple) else encoded

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        wavs, wav_lens = batch.sig
        if self.augmenting(stage):
            wavs, wav_lens = self.hparams.wav_augment(wavs, wav_lens)
        encoded = self.encode(wavs, wav_lens, stage)
        out = {"p_ctc": self.hparams.log_softmax(self.modules.ctc_lin(encoded)), "wav_lens": wav_lens}
        if self.attention:
            tokens_bos, _ = batch.tokens_bos
            if self.augmenting(stage):
                tokens_bos = self.hparams.wav_augment.replicate_labels(tokens_bos)
            dec_out, _ = self.modules.dec(self.modules.emb(tokens_bos), encoded, wav_lens)
            out["p_seq"] = self.hparams.log_softmax(self.modules.seq_lin(dec_out))
            if stage != sb.Stage.TRAIN:
                search = self.test_search if stage == sb.Stage.TEST else self.hparams.valid_search
                hyps, *_ = search(encoded, wav_lens)
                out["hyps"] = self.units.to_units(hyps)
        elif stage != sb.Stage.TRAIN:
            out["hyps"] = self.ctc_decode(out["p_ctc"], wav_lens, stage)
        return out

    def ctc_decode(self, p_ctc: torch.Tensor, wav_lens: torch.Tensor, stage) -> list[list[str]]:
        """Scoring units of CTC decoding: greedy on dev; ``self.test_search`` on test if set.

        With ``self.rescorer`` set, the searcher's N-best lists (all at once) are re-ranked by
        ``beam score + weight * rescorer score`` and the best one is kept.
        """
        search = self.test_search if stage == sb.Stage.TEST else None
        if search is None:
            return self.units.to_units(
                sb.decoders.ctc_greedy_decode(p_ctc, wav_lens, blank_id=self.hparams.blank_index)
            )
        nbest = search(p_ctc, wav_lens)
        texts = [beams[0].text if beams else "" for beams in nbest]
        if self.rescorer is not None:
            kept = [i for i, beams in enumerate(nbest) if beams]
            ranked, _ = self.rescorer.rescore(
                [[b.text for b in nbest[i]] for i in kept], [[b.lm_score for b in nbest[i]] for i in kept]
            )
            for i, hyps in zip(kept, ranked):
                texts[i] = hyps[0]
        return [self.units.text_to_units(text) for text in texts]

    def compute_objectives(self, predictions, batch, stage):
        tokens, token_lens = batch.tokens
        wav_lens = predictions["wav_lens"]
        if self.augmenting(stage):
            tokens = self.hparams.wav_augment.replicate_labels(tokens)
            token_lens = self.hparams.wav_augment.replicate_labels(token_lens)
        loss = self.hparams.ctc_cost(predictions["p_ctc"], tokens, wav_lens, token_lens)
        if self.attention:
            tokens_eos, tokens_eos_lens = batch.tokens_eos
            if self.augmenting(stage):
                tokens_eos = self.hparams.wav_augment.replicate_labels(tokens_eos)
                tokens_eos_lens = self.hparams.wav_augment.replicate_labels(tokens_eos_lens)
            seq_loss = self.hparams.seq_cost(predictions["p_seq"], tokens_eos, tokens_eos_lens)
            loss = self.hparams.ctc_weight * loss + (1 - self.hparams.ctc_weight) * seq_loss
        if stage == sb.Stage.TRAIN and self.sparsity is not None:
            loss = loss + self.sparsity.loss()
        if stage != sb.Stage.TRAIN:
            refs = [
                seq[: int(round(float(n) * tokens.shape[1]))] for seq, n in zip(tokens.tolist(), token_lens)
            ]
            self.error_metrics.append(batch.id, predictions["hyps"], self.units.to_units(refs))
        return loss

    def on_stage_start(self, stage, epoch=None):
        super().on_stage_start(stage, epoch)
        if stage == sb.Stage.TRAIN:
            self.epoch_started = time.monotonic()
            if self.sparsity is not None:
                self.sparsity.start_epoch(epoch)
        else:
            self.error_metrics = self.hparams.error_rate_computer()

    def on_stage_end(self, stage, stage_loss, epoch=None):
        super().on_stage_end(stage, stage_loss, epoch)
        if stage == sb.Stage.TRAIN:
            self.train_seconds = time.monotonic() - self.epoch_started
            if self.sparsity is not None:
                self.train_spike_rates = self.sparsity.epoch_rates()
            return
        stats = {"loss": stage_loss, "error_rate": self.error_metrics.summarize("error_rate")}
        if stage == sb.Stage.VALID:
            self.end_dev_epoch(epoch, stats, anneal_on=self.annealing_metric, keep_lowest="error_rate")
            return
        self.log_test(stats)
        if sb.utils.distributed.if_main_process():
            with open(self.wer_file, "w", encoding="utf-8") as w:
                self.error_metrics.write_stats(w)
            check = cross_check_wer(self.error_metrics)
            if isinstance(self.units, SubwordUnits):  # scored in words: their characters too
                check["cer"] = character_error_rates(self.error_metrics)
            atomic_write_text(self.wer_file.with_suffix(".json"), json.dumps(check, indent=1))

    def record_epoch(self, record: dict) -> None:
        """Appends this epoch (losses, dev error, train time) to ``history.json``; redraws the curves.

        The file is replaced whole (:func:`~snn_asr.dataio.atomic_write_text`): a kill while it is
        written leaves the previous epochs' file, and the resumed run appends this epoch again.
        """
        if not sb.utils.distributed.if_main_process():
            return
        epoch = record["epoch"]
        path = Path(self.hparams.output_folder) / "history.json"
        history = _read_history(path)
        history = [h for h in history if h["epoch"] < epoch]
        history.append(
            {
                "epoch": epoch,
                "train_loss": record["train_loss"],
                "valid_loss": record["stats"]["loss"],
                "valid_error_rate": record["stats"]["error_rate"],
                "train_seconds": record["train_seconds"],
                "train_spike_rates": record.get("train_spike_rates", {}),
            }
        )
        atomic_write_text(path, json.dumps(history, indent=1))
        training_curves(
            [h["epoch"] for h in history],
            {
                "train loss": [h["train_loss"] for h in history],
                "dev loss": [h["valid_loss"] for h in history],
                "dev error rate (%)": [h["valid_error_rate"] for h in history],
            },
            Path(self.hparams.output_folder) / "training_curves.png",
        )

    def fit_and_test(self, train, dev, tests: dict) -> dict:
        """Trains (resuming from the last checkpoint), then tests the best one on each split of ``tests``.

        Each test split ``name`` writes ``wer_<name>.txt`` and, from the main process,
        the op-count report and spike plots (:meth:`spiking_report`); returns the reports.
        """
        hp = self.hparams
        self.fit(
            hp.epoch_counter,
            train,
            dev,
            train_loader_kwargs=hp.train_dataloader_opts,
            valid_loader_kwargs=hp.test_dataloader_opts,
        )
        return self.test(tests)

    def search_description(self) -> str:
        """How the test splits are decoded, for the log: the search, its beam, its language model
        (e.g. ``"CTC prefix beam search, beam 16 with the kenlm n-gram"``, ``"greedy CTC"``)."""
        search = self.test_search
        if self.attention:
            beam = getattr(search, "beam_size", None)
            return f"joint CTC/attention beam search, beam {beam}" if beam else "attention greedy search"
        if search is None:
            return "greedy CTC"
        lm = " with the kenlm n-gram" if getattr(search, "kenlm_model_path", None) else ""
        rnnlm = ", RNNLM rescoring" if self.rescorer is not None else ""
        return f"CTC prefix beam search, beam {search.beam_size}{lm}{rnnlm}"

    def test(self, tests: dict, suffix: str = "") -> dict:
        """Evaluates the best checkpoint on each split; writes ``wer_<name><suffix>.txt``.

        ``wer_<name><suffix>.json`` holds SpeechBrain's and jiwer's error rate of the same
        decoding (:func:`cross_check_wer`).

        With an empty ``suffix`` the main process also writes each split's op-count report
        and spike plots (:meth:`spiking_report`) and returns them.
        """
        hp = self.hparams
        reports = {}
        for name, dataset in tests.items():
            self.wer_file = Path(hp.output_folder) / f"wer_{name}{suffix}.txt"
            start = time.perf_counter()
            self.evaluate(dataset, min_key="error_rate", test_loader_kwargs=hp.test_dataloader_opts)
            logger.info(
                f"{name}{suffix}: {len(dataset)} utterances decoded in {time.perf_counter() - start:.1f} s "
                f"({self.search_description()}; --beam_size 0 decodes greedily, for quick runs)"
            )
            if not suffix and sb.utils.distributed.if_main_process():
                reports[name] = self.spiking_report(dataset, name)
                rates = {k: round(v, 3) for k, v in reports[name]["spike_rates"].items()}
                print(
                    f"{name}: {reports[name]['mults_per_frame']:,.0f} mults/frame, "
                    f"ratio to a same-size GRU {reports[name]['ratio_to_gru']:.3f}, spike rates {rates}"
                )
        return reports

    @torch.no_grad()
    def spiking_report(self, dataset, name: str, max_utterances: int = 64) -> dict:
        """Op counts and spike rates of the encoder on up to ``max_utterances`` of ``dataset``.

        Writes ``ops_<name>.json``, ``spike_raster_<name>.png`` and ``spike_rates_<name>.png``
        to the output folder and returns the report as a dict.
        """
        self.modules.eval()
        encoder = getattr(self.modules.encoder, "module", self.modules.encoder)  # unwrapped from DDP
        loader = sb.dataio.dataloader.make_dataloader(dataset, batch_size=8)
        reports, rasters, per_neuron = [], {}, {}
        for batch in loader:
            batch = batch.to(self.device)
            wavs, wav_lens = batch.sig
            feats = self.modules.normalize(self.hparams.compute_features(wavs), wav_lens)
            captured = {}
            hooks = [
                module.register_forward_hook(_capture(captured, layer_name))
                for layer_name, module in encoder.named_modules()
                if isinstance(module, SpikingNeuron)
            ]
            reports.append(count_ops(encoder, feats, wav_lens))
            for hook in hooks:
                hook.remove()
            for layer_name, (spikes, valid) in captured.items():
                rasters.setdefault(layer_name, spikes[0][valid[0]])
                fired = (spikes != 0).float().sum(1)
                per_neuron[layer_name] = per_neuron.get(layer_name, 0) + fired.sum(0)
                per_neuron[layer_name + "#frames"] = per_neuron.get(layer_name + "#frames", 0) + valid.sum()
            if sum(r.utterances for r in reports) >= max_utterances:
                break
        summary = OpsReport.merge(reports).to_dict()
        out = Path(self.hparams.output_folder)
        (out / f"ops_{name}.json").write_text(json.dumps(summary, indent=1))
        if rasters:
            spike_raster(rasters, out / f"spike_raster_{name}.png")
            rates = {
                k: v / per_neuron[k + "#frames"] for k, v in per_neuron.items() if not k.endswith("#frames")
            }
            spike_rate_histogram(rates, out / f"spike_rates_{name}.png")
        return summary


def _capture(store: dict, name: str):
    """Forward hook storing a neuron layer's spikes and valid-frame mask under ``name``."""

    def hook(module, args, output):
        store[name] = spikes_and_valid(args, output)

    return hook


def _read_history(path: Path) -> list[dict]:
    """``history.json``'s epochs; one left unreadable (by an older version, or by hand) is set aside."""
    if not path.exists():
        return []
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        aside = path.with_name(path.name + ".unreadable")
        path.replace(aside)
        logger.warning(
            "%s was not readable JSON: set aside as %s; the curves restart from this epoch "
            "(train_log.txt still has every epoch)",
            path,
            aside.name,
        )
        return []
