"""The recipe flow, one call per step: what every ``recipes/<Corpus>/train.py`` runs.

An ASR recipe is an :class:`ASRRecipe` holding what differs between corpora: the data preparation,
the units (subword tokens or phones, with their scoring), the test splits and the YAML names of its
n-gram options. :meth:`ASRRecipe.run` does the rest, the same for every corpus:

1. the command line and the experiment folder (:func:`~snn_asr.recipes.cli.start_experiment`);
2. the manifests, written on the main process by the recipe's ``prepare``;
3. the units: tokenizer or label encoder, made or reloaded on the manifests' stamp
   (:func:`~snn_asr.recipes.data.subword_units`, :func:`~snn_asr.recipes.data.label_units`);
4. the datasets, the training set ordered by ``sorting`` (:func:`~snn_asr.recipes.data.asr_datasets`);
5. training, then the best checkpoint tested by :class:`~snn_asr.recipes.brain.ASRBrain`: greedy or
   CTC prefix beam search (``beam_size``), op counts, spike plots;
6. the test splits decoded again with the language models: a kenlm n-gram of the training
   transcripts (keyed on them, :func:`~snn_asr.recipes.ngram.arpa_from_manifest`) and, with
   ``rnnlm_folder``, an RNNLM (N-best rescoring, or shallow fusion in the attention search).

Gradient clipping is SpeechBrain's: the YAMLs' ``max_grad_norm: !ref <grad_clip>`` is read by
``Brain`` (``--max_grad_norm`` on the command line overrides it). :func:`run_lm_recipe` is the same
flow for the RNNLM (``recipes/LibriSpeech/train_lm.py``).
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import sentencepiece
import speechbrain as sb
import torch
from speechbrain.utils.distributed import run_on_main

from snn_asr.recipes.brain import ASRBrain, ctc_beam_searcher
from snn_asr.recipes.checkpoints import same_vocabulary, tokenizer_problem
from snn_asr.recipes.cli import main_guard, start_experiment
from snn_asr.recipes.data import SubwordUnits, Units, asr_datasets, text_datasets
from snn_asr.recipes.ngram import arpa_from_manifest
from snn_asr.recipes.rnnlm import LMBrain, load_rnnlm_for, rnnlm_rescorer, with_rnnlm

__all__ = ["ASRRecipe", "NgramOptions", "new_brain", "run_lm_recipe"]

TOKENIZER_HINT = (
    "pass --tokenizer_file <ASR output_folder>/save/<vocab_size>_<token_type>.model, the tokenizer "
    "of the ASR model the LM is for (train.py writes it)"
)


@dataclass(frozen=True)
class NgramOptions:
    """The YAML keys of a recipe's n-gram for CTC beam search.

    ``order`` (0: no n-gram), ``arpa`` (a ready ARPA file instead; ``None``: the recipe has no such
    key), ``file`` (the ARPA built from the training transcripts, in ``save_folder``) and
    ``suffix`` (of the WER files of that decoding, ``wer_<split><suffix>.txt``).
    """

    order: str = "ngram_order"
    arpa: str | None = "ngram_arpa"
    file: str = "{order}gram.arpa"
    suffix: str = "_ngram"


def new_brain(brain_class: type[sb.Brain], hparams: dict, run_opts: dict, **options) -> sb.Brain:
    """``brain_class`` on the YAML's ``modules``, ``opt_class`` and ``checkpointer``."""
    return brain_class(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
        **options,
    )


@dataclass(frozen=True)
class ASRRecipe:
    """What an ASR recipe says about its corpus; :meth:`run` is the rest.

    Attributes
    ----------
    folder : Path
        The recipe's folder (holding ``hparams/``).
    data_hint : str
        Printed when ``--data_folder`` is missing: where to get the corpus, or how to make a small one.
    prepare : callable
        ``hparams`` -> writes ``train``, ``dev`` and the test splits' manifests in ``save_folder``.
    units : callable
        ``hparams`` -> the :class:`~snn_asr.recipes.data.Units` (made after the manifests).
    test_splits : callable
        ``hparams`` -> the names of the splits tested (``dev`` may be one).
    ngram : NgramOptions
        The YAML names of its n-gram options.
    """

    folder: Path
    data_hint: str
    prepare: Callable[[dict], object]
    units: Callable[[dict], Units]
    test_splits: Callable[[dict], Sequence[str]]
    ngram: NgramOptions = field(default_factory=NgramOptions)

    def run(self, argv: list[str] | None = None) -> None:
        """The recipe's command line (``sys.argv[1:]`` by default), from data preparation to reports."""
        hparams, run_opts = start_experiment(
            sys.argv[1:] if argv is None else argv, self.folder, required={"data_folder": self.data_hint}
        )
        rnnlm_folder = hparams.get("rnnlm_folder")  # only the recipes with an RNNLM step have the key
        if rnnlm_folder and hparams["beam_size"] < 1:
            raise ValueError("rnnlm_folder needs beam search: set beam_size > 0")
        run_on_main(self.prepare, args=[hparams])
        units = self.units(hparams)
        lm = load_rnnlm_for(rnnlm_folder, _tokenizer_file(units)) if rnnlm_folder else None
        names = list(self.test_splits(hparams))
        datasets = asr_datasets(hparams, units, ["train", "dev", *names])
        brain = new_brain(ASRBrain, hparams, run_opts, units=units)
        tests = {name: datasets[name] for name in names}
        ctc_beam = hparams["beam_size"] > 0 and not brain.attention
        if ctc_beam:
            brain.test_search = ctc_beam_searcher(hparams, units.vocabulary())
        brain.fit_and_test(datasets["train"], datasets["dev"], tests)
        arpa = self.ngram_file(hparams, units) if ctc_beam else None
        ngram = {"kenlm_model_path": arpa, "alpha": hparams["lm_weight"], "beta": hparams["lm_bonus"]}
        if arpa:
            brain.test_search = ctc_beam_searcher(hparams, units.vocabulary(), **ngram)
            brain.test(tests, suffix=self.ngram.suffix)
        if lm is not None:
            decode_with_rnnlm(brain, lm, hparams, tests)
            if arpa:  # the n-gram in the beam, then the RNNLM over its N-best: both LMs
                decode_with_rnnlm(brain, lm, hparams, tests, ngram=ngram, suffix=f"{self.ngram.suffix}_rnnlm")

    def ngram_file(self, hparams: dict, units: Units) -> str | None:
        """The ARPA n-gram for beam search: the YAML's ready one, or one of the training transcripts."""
        if self.ngram.arpa and hparams[self.ngram.arpa]:
            return hparams[self.ngram.arpa]
        order = hparams[self.ngram.order]
        if not order:
            return None
        save = Path(hparams["save_folder"])
        arpa = save / self.ngram.file.format(order=order)
        run_on_main(arpa_from_manifest, args=[save / "train.csv", units.column, order, arpa])
        return str(arpa)


def _tokenizer_file(units: Units) -> str:
    if not isinstance(units, SubwordUnits):
        raise ValueError("rnnlm_folder needs a recipe with a sentencepiece tokenizer")
    return units.model_file


def decode_with_rnnlm(
    brain: ASRBrain,
    lm: torch.nn.Module,
    hparams: dict,
    tests: dict,
    ngram: dict | None = None,
    suffix: str = "_rnnlm",
) -> None:
    """Decodes ``tests`` again with the RNNLM ``lm``; writes ``wer_<split><suffix>.txt``.

    CTC models: N-best rescoring of the CTC prefix beam search (``rnnlm_topk`` hypotheses), whose
    beam also holds the kenlm n-gram given as ``ngram`` (``CTCPrefixBeamSearcher`` options);
    attention models: shallow fusion in the YAML's ``test_search``.
    """
    lm.to(brain.device)
    if brain.attention:
        brain.test_search = with_rnnlm(hparams["test_search"], lm, hparams["rnnlm_weight"])
    else:
        brain.test_search = ctc_beam_searcher(
            hparams, brain.units.vocabulary(), topk=hparams["rnnlm_topk"], **(ngram or {})
        )
        brain.rescorer = rnnlm_rescorer(
            lm, brain.units.sp, hparams["rnnlm_weight"], hparams["bos_index"], hparams["eos_index"]
        )
    brain.test(tests, suffix=suffix)
    brain.rescorer = None


def lm_tokenizer(hparams: dict) -> sentencepiece.SentencePieceProcessor:
    """The ASR model's tokenizer (``tokenizer_file``), checked, with a copy kept beside the LM.

    The copy (``save_folder/tokenizer.model``) is what :func:`~snn_asr.recipes.rnnlm.load_rnnlm`
    returns; a later run in the same folder with another tokenizer is refused in one line.
    """
    given = hparams["tokenizer_file"]
    if not Path(given).is_file():
        raise FileNotFoundError(f"tokenizer_file {given} not found; {TOKENIZER_HINT}")
    problem = tokenizer_problem(Path(given))
    if problem:
        raise ValueError(f"tokenizer_file {given}: {problem}; {TOKENIZER_HINT}")
    tokenizer = sentencepiece.SentencePieceProcessor(model_file=given)
    if tokenizer.get_piece_size() != hparams["vocab_size"]:
        raise ValueError(
            f"vocab_size is {hparams['vocab_size']} but {given} has {tokenizer.get_piece_size()} tokens: "
            f"pass --vocab_size {tokenizer.get_piece_size()}"
        )
    kept = Path(hparams["save_folder"]) / "tokenizer.model"
    if not kept.exists():
        run_on_main(shutil.copyfile, args=[given, kept])
    elif problem := tokenizer_problem(kept):
        raise ValueError(
            f"{kept}: {problem}; it should be the copy of {given} this LM was trained "
            f"with: copy {given} over it"
        )
    elif not same_vocabulary(kept, Path(given)):
        raise ValueError(
            f"the LM in {hparams['output_folder']} was trained with another tokenizer ({kept}) than "
            f"{given}: pass a new --output_folder"
        )
    return tokenizer


def run_lm_recipe(
    folder: Path, data_hint: str, prepare: Callable[[dict], object], argv: list[str] | None = None
) -> None:
    """Trains an RNNLM on the training transcripts (``wrd``), tokenized by an ASR model's tokenizer.

    The flow of :meth:`ASRRecipe.run` for :class:`~snn_asr.recipes.rnnlm.LMBrain`: command line,
    tokenizer check (:func:`lm_tokenizer`), manifests (``prepare``: ``train`` and ``dev``),
    datasets, training (checkpoints of lowest dev loss, resumed), the dev loss of the best one.
    """
    hparams, run_opts = start_experiment(
        sys.argv[1:] if argv is None else argv,
        folder,
        required={"data_folder": data_hint, "tokenizer_file": TOKENIZER_HINT},
    )
    tokenizer = lm_tokenizer(hparams)
    run_on_main(prepare, args=[hparams])
    datasets = text_datasets(hparams, tokenizer.encode_as_ids, "wrd", ["train", "dev"])
    brain = new_brain(LMBrain, hparams, run_opts)
    brain.fit(
        hparams["epoch_counter"],
        datasets["train"],
        datasets["dev"],
        train_loader_kwargs=hparams["train_dataloader_opts"],
        valid_loader_kwargs=hparams["valid_dataloader_opts"],
    )
    brain.evaluate(datasets["dev"], min_key="loss", test_loader_kwargs=hparams["valid_dataloader_opts"])


def lm_recipe_main(recipe_file: str | Path) -> None:
    """A recipe's ``train_lm.py``: :func:`run_lm_recipe` on the ``DATA_HINT`` and ``prepare`` of the
    ``train.py`` beside ``recipe_file``, its errors one line (:func:`~snn_asr.recipes.cli.main_guard`)."""
    folder = Path(recipe_file).resolve().parent
    sys.path.insert(0, str(folder))  # train.py imports its <corpus>_prepare.py from there
    spec = importlib.util.spec_from_file_location(f"{folder.name}_train", folder / "train.py")
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    main_guard(lambda: run_lm_recipe(folder, train.DATA_HINT, train.prepare))
