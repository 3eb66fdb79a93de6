"""Command-line entry of the recipes: find the hparams file, apply overrides, fail in one clear line."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml


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
    if not argv or argv[0].startswith("-"):
        raise RecipeError(f"usage: python {recipe_dir / 'train.py'} hparams/<model>.yaml [--key value ...]")
    argv = [str(resolve_hparams(argv[0], recipe_dir)), *argv[1:]]
    try:
        hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    except SystemExit as err:
        raise RecipeError(f"bad command-line options {argv[1:]} (see --help)") from err
    with open(hparams_file, encoding="utf-8") as fin:
        try:
            hparams = load_hyperpyyaml(fin, overrides)
        except Exception as err:  # hyperpyyaml raises many types; the user needs one line
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            for key, hint in (required or {}).items():
                if "PLACEHOLDER" in first and key in first:
                    raise RecipeError(f"--{key} is required: {hint}") from err
            raise RecipeError(f"could not load {hparams_file} with overrides {overrides!r}: {first}") from err
    for key, hint in (required or {}).items():
        if hparams.get(key) in (None, ""):
            raise RecipeError(f"{key} is not set in {hparams_file}: {hint}")
    return hparams, hparams_file, run_opts, overrides


def start_experiment(argv: list[str], recipe_dir: str | Path, required: dict[str, str] | None = None):
    """:func:`load_recipe`, then DDP set-up and the experiment folder; returns ``(hparams, run_opts)``."""
    hparams, hparams_file, run_opts, overrides = load_recipe(argv, recipe_dir, required)
    sb.utils.distributed.ddp_init_group(run_opts)
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


def main_guard(main) -> None:
    """Runs ``main()``; user-facing errors (``ValueError`` subclasses from data checks) print one line."""
    try:
        main()
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f"error: {err}")
