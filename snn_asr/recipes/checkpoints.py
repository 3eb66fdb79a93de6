"""Checkpoints a killed or damaged run can trust: incomplete or corrupt ones are set aside, never loaded.

SpeechBrain's ``Checkpointer.save_checkpoint`` writes a checkpoint's ``CKPT.yaml`` first and its
parameter files after it, so a run killed in between leaves a folder that
``recover_if_possible`` takes for a checkpoint, and loading its truncated or missing file fails
deep in torch. A disk error or a stray copy can do the same to any file. Before every recovery
(start of training, each evaluation), :func:`set_aside_broken_checkpoints` checks each
checkpoint: every recoverable's file present; torch's files (zip archives) whole, their CRCs
right, loadable with ``weights_only=True`` (a pickle that would run code is refused unrun); the
small text files (epoch counter, dataloader position, Brain state) readable. A broken
one is renamed ``BROKEN+<name>`` (out of SpeechBrain's sight, kept for inspection), with one
warning line, so the run resumes from the newest sound checkpoint (and trains again the epochs
after it). If checkpoints exist and none is sound, the run refuses in one line, leaving them in
place, rather than silently starting from scratch; the one exception is a lone checkpoint with a
file missing or truncated, which is a kill during the run's first save (``save_and_keep_only``
deletes an older checkpoint only once the new one is whole): it is set aside with a warning
that training starts from epoch 1.

The same goes for what a run reads from another output folder or keeps beside its checkpoints:
:func:`sound_checkpoint` picks an RNNLM's best checkpoint that passes these checks (skipping
broken ones with a warning), and :func:`tokenizer_problem` tells a corrupt sentencepiece model.
"""

from __future__ import annotations

import logging
import pickle
import zipfile
from pathlib import Path

import sentencepiece
import torch
from speechbrain.utils.checkpoints import Checkpoint, Checkpointer

__all__ = [
    "BROKEN_PREFIX",
    "checkpoint_problem",
    "set_aside_broken_checkpoints",
    "sound_checkpoint",
    "tokenizer_problem",
]

logger = logging.getLogger(__name__)
BROKEN_PREFIX = "BROKEN+"
TORCH_SAVED = {"optimizer", "generator"}  # added after the recoverables (Brain.init_optimizers, RecipeBrain)


def checkpoint_problem(folder: Path, recoverables: dict) -> str | None:
    """What is wrong with checkpoint ``folder`` (one phrase naming the file), or ``None`` if it is sound.

    Example
    -------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> (folder / "counter.ckpt").write_text("3")
    1
    >>> checkpoint_problem(folder, {"counter": None, "model": None})
    'model.ckpt is missing'
    """
    for name in recoverables:
        if not (folder / f"{name}.ckpt").is_file():
            return f"{name}.ckpt is missing"
    for path in sorted(folder.glob("*.ckpt")):
        name = path.stem
        torch_saved = name in TORCH_SAVED or hasattr(recoverables.get(name), "state_dict")
        if zipfile.is_zipfile(path):
            try:
                with zipfile.ZipFile(path) as archive:
                    bad = archive.testzip()
            except Exception as err:  # zipfile raises BadZipFile, OSError, EOFError, UnicodeDecodeError, ...
                return f"{path.name} is corrupt ({type(err).__name__}: {' '.join(str(err).split())[:80]})"
            if bad is not None:
                return f"{path.name} is corrupt (bad CRC in {bad})"
            try:  # as SpeechBrain will load it: weights only, so a pickle naming code is refused, not run
                torch.load(path, map_location="cpu", weights_only=True)
            except pickle.UnpicklingError:
                return f"{path.name} holds pickled code (objects other than tensors), refused unrun"
            except Exception as err:
                return f"{path.name} does not load ({type(err).__name__}: {' '.join(str(err).split())[:80]})"
        elif torch_saved:
            size = path.stat().st_size
            return f"{path.name} is truncated or not a torch file (no zip directory in its {size} bytes)"
        else:
            try:
                if not path.read_text(encoding="utf-8").strip():
                    return f"{path.name} is empty"
            except UnicodeDecodeError:
                return f"{path.name} is corrupt (not text)"
    return None


def set_aside_broken_checkpoints(checkpointer: Checkpointer) -> list[str]:
    """Renames each broken checkpoint of ``checkpointer`` to ``BROKEN+<name>``; returns warning lines.

    Raises
    ------
    ValueError
        Checkpoints exist and every one is broken (one line, naming the folder and the fix).
    """
    checkpoints = checkpointer.list_checkpoints()
    problems = {ckpt.path: checkpoint_problem(ckpt.path, checkpointer.recoverables) for ckpt in checkpoints}
    broken = {path: problem for path, problem in problems.items() if problem is not None}
    first_save_cut = len(checkpoints) == 1 and any(
        word in problem for problem in broken.values() for word in ("is missing", "truncated")
    )  # a kill during the first save: the one before a later save is deleted only once that is whole
    if (
        checkpoints and len(broken) == len(checkpoints) and not first_save_cut
    ):  # a rerun must not start afresh
        path, problem = next(iter(broken.items()))
        raise ValueError(
            f"every checkpoint in {str(checkpointer.checkpoints_dir)!r} is incomplete or corrupt (e.g. "
            f"{path.name}: {problem}); restore them, or delete the CKPT+* folders to train from scratch"
        )
    warnings = []
    for path, problem in broken.items():
        aside = path.with_name(BROKEN_PREFIX + path.name)
        path.rename(aside)
        warnings.append(
            f"checkpoint {str(path)!r} is incomplete or corrupt ({problem}); set aside as {aside.name}"
        )
    if first_save_cut and broken:
        warnings[-1] += "; it was the run's first, cut by a kill: training starts from epoch 1"
    for line in warnings:
        logger.warning(line)
    return warnings


def sound_checkpoint(checkpointer: Checkpointer, min_key: str) -> Checkpoint:
    """The checkpoint of lowest ``min_key`` that passes :func:`checkpoint_problem`; broken ones are skipped.

    Nothing is renamed (the folder may be another run's). Each skipped checkpoint gets one warning line.

    Raises
    ------
    FileNotFoundError
        There is no checkpoint with ``min_key``.
    ValueError
        Every one is broken (one line, naming the folder and the fix).
    """
    candidates = checkpointer.find_checkpoints(min_key=min_key, max_num_checkpoints=None)
    where = str(checkpointer.checkpoints_dir)
    if not candidates:
        raise FileNotFoundError(f"no checkpoint in {where!r}: train it first")
    problems = []
    for checkpoint in candidates:
        problem = checkpoint_problem(checkpoint.path, checkpointer.recoverables)
        if problem is None:
            return checkpoint
        problems.append(problem)
        logger.warning(f"checkpoint {str(checkpoint.path)!r} is corrupt ({problem}); skipped")
    raise ValueError(
        f"every checkpoint in {where!r} is incomplete or corrupt (e.g. {problems[0]}); "
        "restore them, or train again into a new output folder"
    )


def tokenizer_problem(path: Path) -> str | None:
    """What is wrong with sentencepiece model ``path`` (one phrase), or ``None`` if it loads.

    Example
    -------
    >>> import tempfile
    >>> garbage = Path(tempfile.mkdtemp()) / "50_unigram.model"
    >>> _ = garbage.write_bytes(b"not a model")
    >>> tokenizer_problem(garbage)
    '50_unigram.model is corrupt (not a sentencepiece model)'
    """
    try:
        sentencepiece.SentencePieceProcessor(model_file=str(path))
    except (RuntimeError, OSError):  # sentencepiece: "Internal: could not parse ModelProto", or unreadable
        return f"{Path(path).name} is corrupt (not a sentencepiece model)"
    return None


def same_vocabulary(first: Path, second: Path) -> bool:
    """Whether two sentencepiece models have the same pieces, ids and scores (so the same tokens).

    Not the same bytes: a model records its training input's path, so one trained on the same
    transcripts in another output folder differs in bytes only there.
    """

    def vocabulary(path: Path) -> list[tuple[str, float]]:
        sp = sentencepiece.SentencePieceProcessor(model_file=str(path))
        return [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]

    return vocabulary(first) == vocabulary(second)
