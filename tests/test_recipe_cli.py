"""Recipe command lines: hparams path resolution, required options, bad overrides; YAML variants."""

import difflib
from pathlib import Path

import pytest
import torch

from snn_asr.recipes.cli import RecipeError, load_recipe, main_guard, resolve_hparams

ROOT = Path(__file__).resolve().parents[1]
TIMIT = ROOT / "recipes" / "TIMIT"


def test_hparams_resolve_against_the_recipe_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_hparams("hparams/snn.yaml", TIMIT) == TIMIT / "hparams" / "snn.yaml"
    with pytest.raises(RecipeError, match="not found.*choose one of: gru.yaml, lif.yaml, lstm.yaml"):
        resolve_hparams("hparams/nope.yaml", TIMIT)


def test_missing_data_folder_names_what_to_pass(tmp_path):
    with pytest.raises(RecipeError, match="--data_folder is required: pass it"):
        load_recipe(
            ["hparams/snn.yaml", "--output_folder", str(tmp_path)], TIMIT, required={"data_folder": "pass it"}
        )


def test_bad_override_is_one_line(tmp_path):
    with pytest.raises(RecipeError) as err:
        load_recipe(["hparams/snn.yaml", "--data_folder", str(tmp_path), "--hidden_size", "[1, 2"], TIMIT)
    assert "--hidden_size [1, 2: not valid YAML" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(RecipeError) as err:  # passes the checks, fails to build
        load_recipe(["hparams/snn.yaml", "--data_folder", str(tmp_path), "--hidden_size", "-5"], TIMIT)
    assert "could not load" in str(err.value) and "--hidden_size -5" in str(err.value)
    assert "\n" not in str(err.value)


def one_rank_group(store: Path) -> None:
    """A gloo process group of one process, as ``torchrun`` would leave the recipe."""
    torch.distributed.init_process_group("gloo", init_method=f"file://{store}", rank=0, world_size=1)


def test_main_guard_tears_the_process_group_down(tmp_path):
    main_guard(lambda: one_rank_group(tmp_path / "finished"))
    assert not torch.distributed.is_initialized()

    def fails():
        one_rank_group(tmp_path / "failed")
        raise ValueError("bad input")

    with pytest.raises(SystemExit, match="error: bad input"):
        main_guard(fails)
    assert not torch.distributed.is_initialized()


@pytest.mark.parametrize(
    "recipe,variant",
    [
        ("TIMIT", "lstm"),
        ("TIMIT", "gru"),
        ("TIMIT", "snn_v1"),
        ("TIMIT", "lif"),
        ("LibriSpeech", "lstm"),
        ("LibriSpeech", "gru"),
    ],
)
def test_hparams_variants_differ_only_in_the_encoder(recipe, variant):
    folder = ROOT / "recipes" / recipe / "hparams"
    base = (folder / "snn.yaml").read_text().splitlines()
    other = (folder / f"{variant}.yaml").read_text().splitlines()
    changed = [
        line
        for line in difflib.unified_diff(base, other, n=0, lineterm="")
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    allowed = (
        "# ",
        "model_name:",
        "encoder:",
        "encoder_lengths:",
        "    neuron:",
        "    bits:",
        "    threshold:",
    )
    assert changed and all(line[1:].startswith(allowed) for line in changed), changed
