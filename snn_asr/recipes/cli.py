"""Command-line entry of the recipes: find the hparams file, apply overrides, fail in one clear line.

A recipe's command line is ``python recipes/<corpus>/train.py hparams/<model>.yaml`` then
SpeechBrain's options and ``--key value`` overrides of the YAML. Bad input ends the run with
exit status 1 and a single line ``error: ...`` on stderr that names the file or option and
the fix, never a traceback:

- a missing hparams file, a missing required option (``--data_folder``), an option
  SpeechBrain's parser rejects (:func:`load_recipe`, :class:`RecipeError`);
- an override that is not valid YAML, given twice, not a key of the YAML (with the
  closest key as a suggestion), or of the wrong kind for its default (``--hidden_size abc``
  where the YAML has an integer, ``--test_splits test-clean`` where it has a list), checked
  before anything is built (:func:`check_overrides`); any other failure to build the
  hyperparameters is reported with the overrides and the first line of the cause;
- data problems found by the preparation (:class:`~snn_asr.dataio.DataError` and any other
  ``ValueError`` or ``FileNotFoundError``) and a sentencepiece ``vocab_size`` too large for
  the training transcripts (:func:`main_guard`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import gc
import io
import re
import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import ruamel.yaml
import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml

from snn_asr.locking import hold_lock


class RecipeError(SystemExit):
    """A user-facing problem with a recipe's arguments; exits with a one-line message."""

    def __init__(self, message: str):
        super().__init__(f"error: {message}")


def resolve_hparams(path: str, recipe_dir: Path) -> Path:
    """``path`` as given if it exists, else relative to the recipe folder.

    Example
    -------
    >>> resolve_hparams("hparams/snn.yaml", Path("recipes/TIMIT")).as_posix()
    'recipes/TIMIT/hparams/snn.yaml'
    """
    given = Path(path)
    if given.is_file():
        return given
    candidate = recipe_dir / path
    if candidate.is_file():
        return candidate
    choices = ", ".join(sorted(p.name for p in (recipe_dir / "hparams").glob("*.yaml")))
    raise RecipeError(f"hparams file {path} not found (here or in {recipe_dir}); choose one of: {choices}")


def load_recipe(argv: list[str], recipe_dir: str | Path, required: dict[str, str] | None = None):
    """Parses a recipe command line like ``sb.parse_arguments`` and loads its YAML.

    Arguments
    ---------
    argv : list of str
        ``sys.argv[1:]``: the hparams file, then SpeechBrain options and ``--key value`` overrides.
    recipe_dir : path
        The recipe's folder, where ``hparams/`` lives.
    required : dict, optional
        Hyperparameters that must be set (not null), each with the hint printed when it is missing.

    Returns
    -------
    hparams, hparams_file, run_opts, overrides
    """
    recipe_dir = Path(recipe_dir)
    usage = f"usage: python {sys.argv[0]} hparams/<model>.yaml [SpeechBrain options] [--key value ...]"
    if not argv or argv[0] in ("-h", "--help"):
        choices = ", ".join(sorted(f"hparams/{p.name}" for p in (recipe_dir / "hparams").glob("*.yaml")))
        if not argv:
            raise RecipeError(f"{usage} (hparams files: {choices}; add --help after one for its keys)")
        print(
            f"{usage}\n\nhparams files: {choices}\n{sys.argv[0]} hparams/<model>.yaml --help lists "
            "SpeechBrain's options and that YAML's keys, each settable as --key value."
        )
        raise SystemExit(0)
    if argv[0].startswith("-"):
        raise RecipeError(f"{usage}: the hparams file comes first")
    argv = [str(resolve_hparams(argv[0], recipe_dir)), *argv[1:]]
    argparse_output = io.StringIO()
    try:
        with contextlib.redirect_stderr(argparse_output):
            hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    except SystemExit as err:
        if not err.code:  # --help: SpeechBrain's options are printed; the YAML's keys follow
            print(yaml_keys_help(argv[0]))
            raise
        said = [line for line in argparse_output.getvalue().splitlines() if ": error: " in line]
        reason = said[-1].split(": error: ", 1)[1] if said else "rejected"
        raise RecipeError(
            f"bad command-line option: {reason} (see python {sys.argv[0]} hparams/<model>.yaml --help)"
        ) from None
    if not any(arg.split("=")[0] == "--distributed_backend" for arg in argv):
        backend = ddp_backend(run_opts.get("device") or "cpu")
        run_opts = dataclasses.replace(run_opts, distributed_backend=backend)  # RunOptions is frozen
    pairs = check_overrides(overrides, hparams_file)
    with open(hparams_file, encoding="utf-8") as fin:
        try:
            hparams = load_hyperpyyaml(fin, overrides)
        except Exception as err:  # hyperpyyaml raises many types; the user needs one line
            first = _reason(err)
            for key, hint in (required or {}).items():
                if "PLACEHOLDER" in first and key in first:
                    raise RecipeError(f"--{key} is required: {hint}") from None
            raise RecipeError(
                f"could not load {hparams_file} with {_as_options(pairs) or 'no overrides'}: {first}; "
                "check the values of these options"
            ) from None
    for key, hint in (required or {}).items():
        if hparams.get(key) in (None, ""):
            raise RecipeError(f"{key} is not set in {hparams_file}: {hint}")
    return hparams, hparams_file, run_opts, overrides


_TOP_KEY = re.compile(r"^(?P<key>[A-Za-z_]\w*):[ \t]*(?P<value>[^#\n]*?)[ \t]*(?:#[ \t]*(?P<comment>.*))?$")


def yaml_keys_help(hparams_file: str | Path) -> str:
    """The ``--key value`` overrides of a recipe YAML: each top-level key with a plain value, its
    default and its comment (objects built with ``!new:``/``!name:`` are left out).

    Example
    -------
    >>> print(yaml_keys_help("recipes/TIMIT/hparams/snn.yaml").splitlines()[0])
    keys of recipes/TIMIT/hparams/snn.yaml (--key value on the command line):
    """
    lines = [f"keys of {hparams_file} (--key value on the command line):"]
    for line in Path(hparams_file).read_text(encoding="utf-8").splitlines():
        match = _TOP_KEY.match(line)
        if not match or match["value"].startswith(("!new:", "!name:", "!apply:", "!include")):
            continue
        default = match["value"] or "(a block)"
        comment = f"  {match['comment']}" if match["comment"] else ""
        lines.append(f"  --{match['key']} {default}{comment}")
    return "\n".join(lines)


def _reason(err: BaseException) -> str:
    """The first line of an exception's message, joining hyperpyyaml's ``(what, why)`` pairs."""
    if isinstance(err, ruamel.yaml.error.MarkedYAMLError) or hasattr(err, "problem"):
        parts = [getattr(err, "context", None), getattr(err, "problem", None)]
        text = ": ".join(str(p) for p in parts if p)
    elif len(err.args) > 1 and all(isinstance(a, str) for a in err.args):
        text = ": ".join(err.args)
    else:
        text = str(err)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def _as_options(pairs: list[tuple[str, str]]) -> str:
    return " ".join(f"--{key} {shlex.quote(raw) if raw else ''}".rstrip() for key, raw in pairs)


_KIND_TEXT = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "seq": "a list",
    "map": "a mapping",
}


def _kind(node) -> str | None:
    """``int``, ``float``, ``bool``, ``null``, ``str``, ``seq``, ``map``; ``None`` for a custom tag."""
    tag = str(node.tag)
    return tag.rsplit(":", 1)[1] if tag.startswith("tag:yaml.org,2002:") else None


def _text(node) -> str:
    """A YAML node as one would type it on the command line (flow style)."""
    if isinstance(node, ruamel.yaml.nodes.SequenceNode):
        return "[" + ", ".join(_text(item) for item in node.value) + "]"
    if isinstance(node, ruamel.yaml.nodes.MappingNode):
        return "{" + ", ".join(f"{_text(k)}: {_text(v)}" for k, v in node.value) + "}"
    return str(node.value)


PER_LAYER_KEYS = ("threshold", "bits", "spike_rate_penalty", "spike_rate_target")
"""Number keys that also take a list, one value per layer (``--threshold "[3, 7]"``)."""


def check_overrides(overrides: str, hparams_file: str | Path) -> list[tuple[str, str]]:
    """Checks SpeechBrain's override YAML (``"key: value"`` lines) against the hparams file.

    Raises a one-line :class:`RecipeError` for an argument that is not ``--key value``, a
    value that is not valid YAML, a key given twice, a key the file does not have (naming
    the closest one) and a value of another kind than the file's default: an integer,
    number, boolean or list where the file has one (a list also for :data:`PER_LAYER_KEYS`;
    ``null`` is always accepted; strings,
    nulls and tagged values such as ``!new:`` or ``!ref`` in the file are not checked).

    Returns
    -------
    list of (key, raw value)
        The overrides in command-line order.

    Example
    -------
    >>> check_overrides("hidden_size: 8\\nlr: 1e-3", "recipes/TIMIT/hparams/snn.yaml")
    [('hidden_size', '8'), ('lr', '1e-3')]
    >>> check_overrides("hidden_size: abc", "recipes/TIMIT/hparams/snn.yaml")
    Traceback (most recent call last):
      ...
    snn_asr.recipes.cli.RecipeError: error: --hidden_size abc: expected an integer (snn.yaml has ...
    """
    file_name = Path(hparams_file).name
    pairs: list[tuple[str, str]] = []
    for line in overrides.splitlines():
        key, colon, raw = line.partition(":")
        key, raw = key.strip(), raw.strip()
        if not colon or not key or line[:1].isspace():
            raise RecipeError(
                f"unexpected argument {line.strip()!r}: options come as --key value after the hparams file"
            )
        pairs.append((key, raw))
    yaml = ruamel.yaml.YAML()
    try:
        defaults = {k.value: v for k, v in yaml.compose(Path(hparams_file).read_text(encoding="utf-8")).value}
    except Exception:  # a broken hparams file: hyperpyyaml reports it when loading
        defaults = None
    seen: dict[str, str] = {}
    for key, raw in pairs:
        if key in seen:
            raise RecipeError(f"--{key} is given twice ({seen[key]!r} and {raw!r}); pass it once")
        seen[key] = raw
        try:
            node = yaml.compose(f"{key}: {raw}").value[0][1]
        except ruamel.yaml.YAMLError as err:
            raise RecipeError(
                f"--{key} {raw}: not valid YAML ({_reason(err)}); fix the value (close its brackets, "
                "or quote it)"
            ) from None
        if defaults is None:
            continue
        if key not in defaults:
            close = difflib.get_close_matches(key, [k for k in defaults if not k.startswith("__")], n=1)
            hint = f"did you mean --{close[0]}?" if close else f"options are the keys of {hparams_file}"
            raise RecipeError(f"unknown option --{key}: {file_name} has no key {key!r}; {hint}")
        default = defaults[key]
        expected, got = _kind(default), _kind(node)
        if expected is None or got is None or expected in ("str", "null") or got == "null" and raw:
            continue
        if not raw:
            raise RecipeError(f"--{key} has no value; pass e.g. --{key} {shlex.quote(_text(default))}")
        if got == expected or (expected == "float" and got == "int"):
            continue
        if key in PER_LAYER_KEYS and expected in ("int", "float") and got == "seq":
            continue  # one value per layer (SpikingRNN checks their count)
        example = f"; pass e.g. --{key} {shlex.quote(_text(default))}" if expected != "map" else ""
        raise RecipeError(
            f"--{key} {raw}: expected {_KIND_TEXT.get(expected, expected)} ({file_name} has {key}: "
            f"{_text(default)}){example}"
        )
    return pairs


def ddp_backend(device: str) -> str:
    """The ``torchrun`` backend unless ``--distributed_backend`` is given: NCCL on CUDA, gloo on CPU.

    Example
    -------
    >>> ddp_backend("cuda:0"), ddp_backend("cpu")
    ('nccl', 'gloo')
    """
    return "nccl" if str(device).startswith("cuda") else "gloo"


def start_experiment(argv: list[str], recipe_dir: str | Path, required: dict[str, str] | None = None):
    """:func:`load_recipe`, then DDP set-up and the experiment folder; returns ``(hparams, run_opts)``."""
    hparams, hparams_file, run_opts, overrides = load_recipe(argv, recipe_dir, required)
    sb.utils.distributed.ddp_init_group(run_opts)
    if sb.utils.distributed.if_main_process():  # one run per output folder (DDP ranks: the main one locks)
        output = str(hparams["output_folder"])
        hold_lock(
            Path(output) / ".run.lock",
            f"output folder {output!r}",
            "wait for that run to finish, or pass another --output_folder",
        )
    sb.create_experiment_directory(
        hparams["output_folder"], hyperparams_to_save=hparams_file, overrides=overrides
    )
    # SpeechBrain copies the file that called it (this one); keep the recipe's script instead.
    script = Path(sys.argv[0]).resolve()
    if sb.utils.distributed.if_main_process() and script.is_file():
        output = Path(hparams["output_folder"])
        (output / Path(__file__).name).unlink(missing_ok=True)
        shutil.copy(script, output)
    return hparams, run_opts


_VOCAB_TOO_HIGH = re.compile(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)")
_VOCAB_TOO_LOW = re.compile(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)")


def main_guard(main: Callable[[], None]) -> None:
    """Runs ``main()``; user-facing errors print one line ``error: ...`` and exit with status 1.

    Those are ``ValueError`` (:class:`~snn_asr.dataio.DataError` from the data checks),
    ``FileNotFoundError``, and sentencepiece's "Vocabulary size too high" (which a small
    corpus meets with the default ``vocab_size``) or "smaller than required_chars".
    :class:`RecipeError` exits by itself. Under ``torchrun`` the process group is then
    torn down (:func:`end_distributed`).
    """
    finished = False
    try:
        main()
        finished = True
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f"error: {' '.join(str(err).split())}")
    except RuntimeError as err:
        high, low = _VOCAB_TOO_HIGH.search(str(err)), _VOCAB_TOO_LOW.search(str(err))
        if high:
            sys.exit(
                f"error: --vocab_size {high.group(1)} is too large for the training transcripts "
                f"(sentencepiece can make at most {high.group(2)} tokens of them); pass --vocab_size "
                f"{high.group(2)} or less, or train on more text"
            )
        if low:
            sys.exit(
                f"error: --vocab_size {low.group(1)} is too small for the characters of the training "
                f"transcripts (they need {low.group(2)} tokens); pass --vocab_size {low.group(2)} or more"
            )
        raise
    finally:
        end_distributed(finished)


def end_distributed(finished: bool) -> None:
    """Tears the DDP process group down while the interpreter is still whole (no-op without one).

    Left to interpreter exit (or to an ``atexit`` hook, while the DDP wrappers still held
    the group), gloo's threads sometimes outlived teardown and a rank that had finished
    aborted ("terminate called without an active exception"; in a two-process DDP script,
    5 of 105 runs with the ``atexit`` hook, 0 of 125 torn down as here). So: after a run that
    ``finished``, the ranks first wait for each other, so that none closes its connections
    while another may still use them; the garbage collector frees what still holds the
    group (``main``'s brain and its DDP wrappers); then the group is destroyed, which joins
    its threads.
    """
    if not torch.distributed.is_initialized():
        return
    if finished:
        torch.distributed.barrier()
    gc.collect()
    torch.distributed.destroy_process_group()
