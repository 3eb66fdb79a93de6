"""The recipes' data: units (subword tokens or labels), their encoders made once per data, the datasets.

A recipe trains on token ids and scores in its own units, behind one interface (:class:`Units`):

- :class:`SubwordUnits`: a sentencepiece model (SpeechBrain's ``SentencePiece`` wrapper) trained on
  the training transcripts; scored in words (LibriSpeech);
- :class:`LabelUnits`: SpeechBrain's ``CTCTextEncoder`` over a set of labels, a transcript being a
  sequence of them: TIMIT's 48 phones (scored after folding to 39), or characters.

:func:`subword_units` and :func:`label_units` make them in ``save_folder`` or reload them, as the
data preparation redoes the manifests when the corpus changes: changed transcripts or splits under
the same output folder make a new tokenizer or label encoder. The tokenizer is kept while the stamp
saved beside it (``<vocab_size>_<token_type>.json``) holds: a stamp of the training transcripts
(:func:`~snn_asr.dataio.column_stamp`) and the options (vocabulary size, type, special ids); the
label encoder while ``label_encoder.txt`` holds the labels the transcripts (or the recipe) give.
Where checkpoints trained with the old one are in the folder, the run stops instead, in one line:
their outputs would mean other tokens.

The special ids are four: the CTC blank, ``<bos>``, ``<eos>`` and ``<unk>``. SpeechBrain's
sentencepiece defaults put ``<unk>`` at 0, the blank, so an out-of-vocabulary character of a dev or
test transcript became a blank target. Here the blank is sentencepiece's padding piece ``<pad>``
(``pad_id = blank_index``, a piece encoding never emits) and ``<unk>`` has an id of its own
(``unk_index``). Label units have no ``<unk>``: a label outside the encoder stops the run with one
line naming the manifest and the utterance (:meth:`LabelUnits.check`).

:func:`asr_datasets` (``sig``, ``tokens``, and ``tokens_bos``/``tokens_eos`` when the YAML has a
``bos_index``) and :func:`text_datasets` (the language model's) give SpeechBrain
``DynamicItemDataset`` s per split, the training set ordered by ``sorting`` (:func:`order_training_set`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import speechbrain as sb
import torch
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.dataio.encoder import CTCTextEncoder
from speechbrain.tokenizers.SentencePiece import SentencePiece
from speechbrain.utils.distributed import run_on_main

from snn_asr.dataio import (
    AudioError,
    DataError,
    column_stamp,
    is_prepared,
    mark_prepared,
    quiet_stderr,
    read_manifest,
)
from snn_asr.recipes.checkpoints import tokenizer_problem

__all__ = [
    "SORTINGS",
    "LabelUnits",
    "SubwordUnits",
    "Units",
    "asr_datasets",
    "bos_eos_tokens",
    "label_units",
    "order_training_set",
    "subword_units",
    "text_datasets",
]

logger = logging.getLogger(__name__)
SORTINGS = ("ascending", "descending", "random")


class Units:
    """Token ids of a manifest column's transcripts, and the units they are scored in.

    Attributes
    ----------
    column : str
        The manifest column holding the transcripts (``wrd``, ``phn``).
    """

    column: str

    def encode(self, text: str) -> list[int]:
        """Token ids of one transcript."""
        raise NotImplementedError

    def to_units(self, token_ids: Sequence[Sequence[int]]) -> list[list[str]]:
        """Scoring units (words, phones) of each token-id sequence (blank-free)."""
        raise NotImplementedError

    def text_to_units(self, text: str) -> list[str]:
        """Scoring units of a CTC beam-search hypothesis over :meth:`vocabulary`."""
        raise NotImplementedError

    def vocabulary(self) -> list[str]:
        """The piece of each token id, for SpeechBrain's ``CTCPrefixBeamSearcher`` (``▁`` starts a word)."""
        raise NotImplementedError

    def check(self, manifests: Iterable[str | os.PathLike]) -> None:
        """Raises a one-line :class:`~snn_asr.dataio.DataError` for a transcript the units cannot encode."""


class SubwordUnits(Units):
    """Sentencepiece tokens, scored as the words they decode to.

    Example
    -------
    >>> import tempfile
    >>> from snn_asr.dataio import write_manifest
    >>> save = Path(tempfile.mkdtemp())
    >>> rows = [{"ID": f"u{i}", "duration": 1, "wav": "a", "wrd": w} for i, w in enumerate(["AB BA", "B"])]
    >>> _ = write_manifest(rows, save / "train.csv")
    >>> ids = dict(blank_index=0, bos_index=1, eos_index=2, unk_index=3)
    >>> units = subword_units({"save_folder": save, "vocab_size": 7, "token_type": "char", **ids})
    >>> units.vocabulary()[:4], units.encode("AB X")[-1]
    (['<pad>', '<s>', '</s>', '<unk>'], 3)
    >>> units.to_units([units.encode("BA AB")])
    [['BA', 'AB']]
    """

    def __init__(self, tokenizer: SentencePiece, column: str = "wrd"):
        self.tokenizer = tokenizer
        self.sp = tokenizer.sp
        self.column = column

    @property
    def model_file(self) -> str:
        """The sentencepiece model's file."""
        return self.tokenizer.prefix_model_file + ".model"

    def encode(self, text: str) -> list[int]:
        return self.sp.encode_as_ids(text)

    def to_units(self, token_ids: Sequence[Sequence[int]]) -> list[list[str]]:
        return [self.sp.decode_ids([int(t) for t in seq]).split() for seq in token_ids]

    def text_to_units(self, text: str) -> list[str]:
        return text.split()

    def vocabulary(self) -> list[str]:
        return [self.sp.id_to_piece(i) for i in range(self.sp.get_piece_size())]


class LabelUnits(Units):
    """Labels of a ``CTCTextEncoder`` (phones, characters), scored after ``score``.

    Arguments
    ---------
    encoder : CTCTextEncoder
        The labels and the special ones (blank, and ``<bos>``/``<eos>`` for attention decoders).
    labels : iterable of str
        The labels proper; decoding drops the special ones.
    column : str
        The manifest column of the transcripts.
    tokenize : callable
        A transcript -> its labels (default: split on spaces, as phones are written).
    score : callable
        Labels -> scoring units (default: the labels themselves); TIMIT folds 48 phones to 39.
    piece : callable
        A label -> its piece in :meth:`vocabulary` (default ``"▁" + label``: each label a word).

    Example
    -------
    >>> encoder = CTCTextEncoder()
    >>> encoder.update_from_iterable(["a", "b"], sequence_input=False)
    >>> encoder.insert_blank(index=0)  # moves "a" to the end
    >>> encoder.expect_len(3)
    >>> units = LabelUnits(encoder, ["a", "b"], "phn", score=lambda p: [x.upper() for x in p])
    >>> units.encode("b a"), units.to_units([[1, 0, 2]]), units.text_to_units("a b")
    ([1, 2], [['B', 'A']], ['A', 'B'])
    """

    def __init__(
        self,
        encoder: CTCTextEncoder,
        labels: Iterable[str],
        column: str,
        tokenize: Callable[[str], list[str]] = str.split,
        score: Callable[[list[str]], list[str]] = list,
        piece: Callable[[str], str] = lambda label: "▁" + label,
    ):
        self.encoder = encoder
        self.labels = frozenset(labels)
        self.column = column
        self.tokenize, self.score, self.piece = tokenize, score, piece

    def encode(self, text: str) -> list[int]:
        return self.encoder.encode_sequence(self.tokenize(text))

    def to_units(self, token_ids: Sequence[Sequence[int]]) -> list[list[str]]:
        decoded = (self.encoder.decode_ndim([int(t) for t in seq]) for seq in token_ids)
        return [self.score([label for label in seq if label in self.labels]) for seq in decoded]

    def text_to_units(self, text: str) -> list[str]:
        return self.score(self.tokenize(text))

    def vocabulary(self) -> list[str]:
        return [self.piece(self.encoder.ind2lab[i]) for i in range(len(self.encoder))]

    def check(self, manifests: Iterable[str | os.PathLike]) -> None:
        """Refuses a transcript with a label outside the encoder (it has no ``<unk>``), in one line."""
        for manifest in manifests:
            for utt_id, row in read_manifest(manifest).items():
                unknown = [label for label in self.tokenize(row[self.column]) if label not in self.labels]
                if unknown:
                    raise DataError(
                        f"{str(manifest)!r}: utterance {utt_id} has the label {unknown[0]!r}, which is not "
                        f"one of the {len(self.labels)} labels of the label encoder; fix its transcript, or "
                        "remove the utterance from the corpus."
                    )


def bos_eos_tokens(token_ids: list[int], bos_index: int, eos_index: int):
    """The decoder's input (``<bos>`` + tokens), its target (tokens + ``<eos>``) and the CTC target.

    A data-pipeline helper; all three are ``LongTensor``.

    Example
    -------
    >>> [t.tolist() for t in bos_eos_tokens([5, 6], bos_index=1, eos_index=2)]
    [[1, 5, 6], [5, 6, 2], [5, 6]]
    """
    return (
        torch.LongTensor([bos_index, *token_ids]),
        torch.LongTensor([*token_ids, eos_index]),
        torch.LongTensor(token_ids),
    )


def _has_checkpoints(save_folder: Path) -> bool:
    """Whether ``save_folder`` holds checkpoints (trained with the tokenizer or labels beside them)."""
    return bool(sb.utils.checkpoints.Checkpointer(save_folder).list_checkpoints())


def _refuse_under_checkpoints(made: Path, save_folder: Path, changed: str) -> None:
    """A one-line refusal to remake ``made`` when checkpoints in ``save_folder`` were trained with it."""
    if made.exists() and _has_checkpoints(save_folder):
        raise DataError(
            f"{str(made)!r} was made from other training transcripts or options than this run's "
            f"(changed: {changed}), and the checkpoints in {str(save_folder)!r} were trained with it; "
            f"pass a new --output_folder, or delete {str(save_folder)!r} to start over."
        )


def _expire(made: Sequence[Path], stamp: Path, options: dict, save_folder: Path) -> None:
    """Deletes a tokenizer's files ``made`` unless ``stamp`` holds ``options``; refused under checkpoints."""
    if is_prepared(made[:1], stamp, options):
        return
    saved = json.loads(stamp.read_text()) if stamp.is_file() else {}
    changed = [key for key in options if json.dumps(saved.get(key)) != json.dumps(options[key])]
    _refuse_under_checkpoints(made[0], save_folder, ", ".join(changed))
    for path in made:
        path.unlink(missing_ok=True)


def _remake_if_corrupt(made: Path, problem: str | None, save_folder: Path, also: Sequence[Path] = ()) -> None:
    """Deletes a corrupt tokenizer or label file ``made`` (and ``also``) so it is made again, with a
    warning; refused in one line when checkpoints in ``save_folder`` were trained with it."""
    if problem is None:
        return
    if _has_checkpoints(save_folder):
        raise DataError(
            f"{str(made)!r}: {problem}, and the checkpoints in {str(save_folder)!r} were trained with it; "
            f"restore it (an exported model folder keeps a copy as tokenizer.ckpt or label_encoder.txt), "
            f"or delete {str(save_folder)!r} to start over."
        )
    logger.warning(f"{str(made)!r}: {problem}; made again")
    for path in (made, *also):
        path.unlink(missing_ok=True)


def _write_label_encoder(path: Path, labels: Sequence[str], special_labels: dict, save_folder: Path) -> None:
    """Writes the label encoder of ``labels`` and ``special_labels`` unless ``path`` holds that one."""
    fresh = CTCTextEncoder()
    fresh.update_from_iterable(labels, sequence_input=False)
    fresh.handle_special_labels(special_labels)
    if path.is_file():
        saved = CTCTextEncoder()
        try:
            saved.load(path)
        except Exception as err:  # SpeechBrain parses each line with ast.literal_eval: many types
            _remake_if_corrupt(path, f"is corrupt ({type(err).__name__} reading it)", save_folder)
        else:
            if saved.lab2ind == fresh.lab2ind:
                return
            _refuse_under_checkpoints(path, save_folder, "labels")
    fresh.save(path)


def _distinct_ids(hparams: dict, keys: Sequence[str]) -> dict[str, int]:
    ids = {key: int(hparams[key]) for key in keys if key in hparams}
    if len(set(ids.values())) < len(ids):
        given = ", ".join(f"{key}: {value}" for key, value in ids.items())
        raise ValueError(f"the special token ids must differ ({given}); give each its own id (--<key> N)")
    return ids


def subword_units(hparams: dict, column: str = "wrd") -> SubwordUnits:
    """A sentencepiece tokenizer on ``save_folder/train.csv``'s ``column``: made, or reloaded if up to date.

    YAML keys: ``save_folder``, ``vocab_size``, ``token_type`` (``unigram``, ``bpe``, ``char``),
    ``blank_index`` (the padding piece ``<pad>``), ``bos_index``, ``eos_index``, ``unk_index``.
    Files: ``<vocab_size>_<token_type>.model`` (and ``.vocab``), and the stamp ``.json`` beside them.
    """
    save = Path(hparams["save_folder"])
    ids = _distinct_ids(hparams, ("blank_index", "bos_index", "eos_index", "unk_index"))
    manifest = save / "train.csv"
    prefix = save / f"{hparams['vocab_size']}_{hparams['token_type']}"
    options = {
        "transcripts": column_stamp(manifest, column),
        "vocab_size": hparams["vocab_size"],
        "token_type": hparams["token_type"],
        "character_coverage": 1.0,
        **ids,
    }
    stamp = Path(f"{prefix}.json")
    made = [Path(f"{prefix}.model"), Path(f"{prefix}.vocab"), save / "train.txt"]  # train.txt: the text
    run_on_main(_expire, args=[made, stamp, options, save])
    if made[0].is_file():
        run_on_main(_remake_if_corrupt, args=[made[0], tokenizer_problem(made[0]), save, made[1:]])
    tokenizer = SentencePiece(
        model_dir=str(save),
        vocab_size=hparams["vocab_size"],
        annotation_train=str(manifest),
        annotation_read=column,
        model_type=hparams["token_type"],
        character_coverage=1.0,
        bos_id=ids["bos_index"],
        eos_id=ids["eos_index"],
        pad_id=ids["blank_index"],
        unk_id=ids["unk_index"],
    )
    run_on_main(mark_prepared, args=[stamp, options])
    return SubwordUnits(tokenizer, column)


def label_units(
    hparams: dict,
    column: str,
    labels: Sequence[str] | None = None,
    tokenize: Callable[[str], list[str]] = str.split,
    **unit_options,
) -> LabelUnits:
    """A ``CTCTextEncoder`` of ``labels`` (or of the training transcripts' labels): made, or reloaded.

    YAML keys: ``save_folder``, ``blank_index``, ``output_neurons`` (checked against the labels),
    and ``bos_index``/``eos_index`` when the YAML has them (attention decoders). The encoder is
    SpeechBrain's ``label_encoder.txt``; it is written again when the labels it would hold (the
    training transcripts' ones, or ``labels``, with the special ones) differ from the file's.
    ``unit_options`` (``score``, ``piece``) go to :class:`LabelUnits`.

    Example
    -------
    >>> import tempfile
    >>> from snn_asr.dataio import write_manifest
    >>> save = Path(tempfile.mkdtemp())
    >>> row = {"ID": "u1", "duration": 1.0, "wav": "a.wav", "phn": "sil a b sil"}
    >>> _ = write_manifest([row], save / "train.csv")
    >>> units = label_units({"save_folder": save, "blank_index": 0, "output_neurons": 4}, "phn")
    >>> units.vocabulary()  # the training phones in order of appearance, the first moved for the blank
    ['▁<blank>', '▁a', '▁b', '▁sil']
    """
    save = Path(hparams["save_folder"])
    special = _distinct_ids(hparams, ("blank_index", "bos_index", "eos_index"))
    special_labels = {key.replace("_index", "_label"): value for key, value in special.items()}
    if labels is None:
        sequences = [tokenize(row[column]) for row in read_manifest(save / "train.csv").values()]
        labels = list(dict.fromkeys(label for sequence in sequences for label in sequence))
    path = save / "label_encoder.txt"
    run_on_main(_write_label_encoder, args=[path, labels, special_labels, save])
    encoder = CTCTextEncoder()
    encoder.load(path)
    encoder.expect_len(hparams["output_neurons"])
    return LabelUnits(encoder, labels, column, tokenize, **unit_options)


def order_training_set(dataset: DynamicItemDataset, hparams: dict) -> DynamicItemDataset:
    """The training set in the YAML's ``sorting`` order, as SpeechBrain's recipes do it.

    ``ascending``/``descending``: sorted by ``duration``, not shuffled; ``random``: shuffled anew
    each epoch by the train dataloader (``train_dataloader_opts["shuffle"]`` is set accordingly).

    Example
    -------
    >>> data = DynamicItemDataset({"a": {"duration": 2.0}, "b": {"duration": 1.0}, "c": {"duration": 3.0}})
    >>> hparams = {"sorting": "descending", "train_dataloader_opts": {"batch_size": 2}}
    >>> order_training_set(data, hparams).data_ids, hparams["train_dataloader_opts"]["shuffle"]
    (['c', 'a', 'b'], False)
    """
    sorting = hparams["sorting"]
    if sorting not in SORTINGS:
        raise ValueError(
            f"sorting is {sorting!r}; pass --sorting {', '.join(SORTINGS[:-1])} or {SORTINGS[-1]}"
        )
    hparams["train_dataloader_opts"]["shuffle"] = sorting == "random"
    if sorting == "random":
        return dataset
    return dataset.filtered_sorted(sort_key="duration", reverse=sorting == "descending")


def _manifest_datasets(hparams: dict, splits: Sequence[str]) -> dict[str, DynamicItemDataset]:
    save = Path(hparams["save_folder"])
    datasets = {
        name: DynamicItemDataset.from_csv(save / f"{name}.csv", replacements={})
        for name in dict.fromkeys(splits)
    }
    datasets["train"] = order_training_set(datasets["train"], hparams)
    return datasets


def read_audio(path: str) -> torch.Tensor:
    """SpeechBrain's ``read_audio`` of a manifest's file, a decoding failure as one :class:`AudioError` line.

    Preparation checks each file's header and tail; a frame damaged in the middle (a FLAC frame's
    CRC, say) shows only when the whole file is decoded, here, in the data loader.
    """
    try:
        with quiet_stderr():
            return sb.dataio.dataio.read_audio(path)
    except Exception as err:  # soundfile, torchaudio and SpeechBrain raise many types
        why = " ".join(str(err).split())[:160] or type(err).__name__
        raise AudioError(
            f"Bad audio file {path!r}: it fails to decode ({why}); re-copy it from the original corpus, "
            "or delete it (and its transcript entry), then rerun"
        ) from None


def asr_datasets(hparams: dict, units: Units, splits: Sequence[str]) -> dict[str, DynamicItemDataset]:
    """Datasets of ``save_folder/<split>.csv`` giving ``id``, ``sig`` (waveform) and ``tokens``.

    With ``bos_index`` in the YAML they also give ``tokens_bos``/``tokens_eos`` (attention
    decoders). ``splits`` must include ``train`` (ordered by ``sorting``); every split's
    transcripts are checked by ``units`` first (:meth:`Units.check`).
    """
    save = Path(hparams["save_folder"])
    units.check(save / f"{name}.csv" for name in dict.fromkeys(splits))
    datasets = _manifest_datasets(hparams, splits)
    with_bos_eos = "bos_index" in hparams

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def audio_pipeline(wav):
        return read_audio(wav)

    @sb.utils.data_pipeline.takes(units.column)
    @sb.utils.data_pipeline.provides("tokens_list", "tokens_bos", "tokens_eos", "tokens")
    def text_pipeline(text):
        ids = units.encode(text)
        yield ids
        if with_bos_eos:
            yield from bos_eos_tokens(ids, hparams["bos_index"], hparams["eos_index"])
        else:
            yield from (None, None, torch.LongTensor(ids))

    sb.dataio.dataset.add_dynamic_item(list(datasets.values()), audio_pipeline)
    sb.dataio.dataset.add_dynamic_item(list(datasets.values()), text_pipeline)
    keys = ["id", "sig", "tokens", *(["tokens_bos", "tokens_eos"] if with_bos_eos else [])]
    sb.dataio.dataset.set_output_keys(list(datasets.values()), keys)
    return datasets


def text_datasets(
    hparams: dict, encode: Callable[[str], list[int]], column: str, splits: Sequence[str]
) -> dict[str, DynamicItemDataset]:
    """A language model's datasets: ``tokens_bos``/``tokens_eos`` of ``encode`` (each split's ``column``)."""
    datasets = _manifest_datasets(hparams, splits)

    @sb.utils.data_pipeline.takes(column)
    @sb.utils.data_pipeline.provides("tokens_bos", "tokens_eos")
    def text_pipeline(text):
        tokens_bos, tokens_eos, _ = bos_eos_tokens(encode(text), hparams["bos_index"], hparams["eos_index"])
        yield tokens_bos
        yield tokens_eos

    sb.dataio.dataset.add_dynamic_item(list(datasets.values()), text_pipeline)
    sb.dataio.dataset.set_output_keys(list(datasets.values()), ["id", "tokens_bos", "tokens_eos"])
    return datasets
