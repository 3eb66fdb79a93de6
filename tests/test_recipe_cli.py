"""Recipe command lines: hparams path resolution, required options, bad overrides; YAML variants and keys."""

import ast
import dataclasses
import difflib
import re
import subprocess
import sys
from pathlib import Path

import pytest
import ruamel.yaml
import speechbrain as sb
import torch
from speechbrain.utils.run_opts import RunOptions

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
        ("AN4", "lstm"),
        ("AN4", "gru"),
        ("AN4", "snn_v1"),
        ("AN4", "lif"),
    ],
)
def test_hparams_variants_differ_only_in_the_encoder(recipe, variant):
    """The encoder block, and on AN4 the non-spiking encoders' learning rate (chosen on dev)."""
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
        "scale_update:",
        "    scale_update:",
        # the spiking encoders' sparsity controls (snn.yaml's encoder block)
        *("threshold:", "unsigned:", "surrogate:", "detach_reset:", "spike_rate_penalty:"),
        *("spike_rate_target:", "    unsigned:", "    surrogate:", "    detach_reset:"),
        *("spike_rate_warmup:", "input_quant_bits:", "    input_quant_bits:"),
        *(("lr:",) if recipe == "AN4" and variant in ("lstm", "gru") else ()),
    )
    assert changed and all(line[1:].startswith(allowed) for line in changed), changed


def yaml_references(node) -> set[str]:
    """Top-level keys a YAML node refers to (``!ref <key>``, ``!ref <key>/...``, ``!copy <key>``)."""
    if isinstance(node, ruamel.yaml.nodes.ScalarNode):
        return (
            set(re.findall(r"<([A-Za-z_]\w*)", node.value)) if str(node.tag) in ("!ref", "!copy") else set()
        )
    children = node.value if isinstance(node, ruamel.yaml.nodes.SequenceNode) else []
    if isinstance(node, ruamel.yaml.nodes.MappingNode):
        children = [child for pair in node.value for child in pair]
    return set().union(*(yaml_references(child) for child in children))


def names_read_by(files) -> set[str]:
    """Names the recipe code can read hparams by: its string constants (docstrings and f-string pieces
    left out) and the attributes it reads off ``hparams``, ``hp`` or ``self.hparams``."""
    names = set()
    for path in files:
        tree = ast.parse(Path(path).read_text())
        skipped = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        skipped |= {
            id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skipped:
                names.add(node.value)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                owner = (
                    node.value.attr
                    if isinstance(node.value, ast.Attribute)
                    else getattr(node.value, "id", "")
                )
                if owner in ("hparams", "hp"):
                    names.add(node.attr)
    return names


def unread_keys(hparams_file: Path, code: set[str]) -> list[str]:
    """Top-level keys of ``hparams_file`` that nothing reads: not the recipe code (``code``), not
    SpeechBrain's ``Brain`` (it reads its run options, e.g. ``max_grad_norm``, from the hparams), not
    another key through ``!ref``, and not hyperpyyaml itself (``__``-keys run when loading)."""
    top = ruamel.yaml.YAML().compose(hparams_file.read_text(encoding="utf-8"))
    referenced = yaml_references(top)
    run_options = {f.name for f in dataclasses.fields(RunOptions)}
    keys = [key.value for key, _ in top.value]
    return [k for k in keys if not k.startswith("__") and k not in code | run_options | referenced]


RECIPE_CODE = [*ROOT.glob("recipes/*/*.py"), *(ROOT / "snn_asr" / "recipes").glob("*.py")]
RECIPE_YAMLS = sorted(ROOT.glob("recipes/*/hparams/*.yaml"))


@pytest.mark.parametrize("hparams_file", RECIPE_YAMLS, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_every_hparams_key_is_read(hparams_file):
    assert unread_keys(hparams_file, names_read_by(RECIPE_CODE)) == []


def test_an_unread_key_is_found(tmp_path):
    yaml = tmp_path / "x.yaml"
    yaml.write_text(
        "a: 1\nb: !ref <a>\nshuffled: True\n__seed: !apply:int [3]\nmax_grad_norm: 2\nc: !new:int []\n"
    )
    assert unread_keys(yaml, {"b", "c"}) == ["shuffled"]  # a: read through b's !ref; b, c: by the code


def test_grad_clip_is_the_brains_max_grad_norm(tmp_path):
    for recipe in ("TIMIT", "LibriSpeech"):
        argv = ["hparams/snn.yaml", "--data_folder", str(tmp_path), "--output_folder", str(tmp_path / recipe)]
        hparams, _, run_opts, _ = load_recipe([*argv, "--grad_clip", "1.5"], ROOT / "recipes" / recipe)
        brain = sb.Brain(modules=hparams["modules"], hparams=hparams, run_opts=run_opts)
        assert brain.max_grad_norm == 1.5, recipe


@pytest.mark.parametrize(
    "script,args,expected",
    [
        ("TIMIT/train.py", ["--help"], "hparams files: hparams/gru.yaml"),
        ("TIMIT/train.py", ["hparams/snn.yaml", "--help"], "  --hidden_size 550"),
        ("LibriSpeech/train_lm.py", ["--help"], "usage: python "),
        ("TIMIT/timit_prepare.py", ["--help"], "data_folder save_folder"),
        ("LibriSpeech/librispeech_prepare.py", ["--help"], "data_folder save_folder"),
    ],
)
def test_help_exits_0_and_says_what_to_pass(script, args, expected):
    path = ROOT / "recipes" / script
    done = subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and expected in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
    if "--help" == args[0] and "prepare" not in script:
        assert f"usage: python {path}" in done.stdout  # the script run, not another one's name


def test_compare_encoders_table_of_a_missing_run_is_one_line(tmp_path):
    tool = ROOT / "tools" / "compare_encoders.py"
    cmd = [sys.executable, str(tool), "TIMIT", str(tmp_path / "data"), str(tmp_path / "out"), "--table-only"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        f"error: {str(tmp_path / 'out' / 'snn')!r} holds no finished run of snn (no history.json or ops "
        "file); train it first (drop --table-only), or leave it out of --models"
    )
