#!/usr/bin/env python3
"""Trains several encoders with the same recipe and data, then tabulates them (Markdown).

Each model is one ``hparams/<name>.yaml`` of the recipe, run as
``recipes/<recipe>/train.py hparams/<name>.yaml --data_folder DATA --output_folder OUT/<name>``
plus the shared overrides given after ``--``. A finished run resumes from its checkpoints,
so rerunning only tabulates. The table holds, per model: test error without and with
the LM, best dev error, the encoder's parameters (2-D weight matrices, the paper's count),
multiplications per frame and per utterance (event-driven for spiking layers), the ratio
to a same-size GRU, spike rates per layer and the median training time per epoch. It is
printed and written to ``OUT/table.md`` (and ``OUT/table.json``).

Run::

    python tools/compare_encoders.py TIMIT data/timit_medium results/compare_timit \\
        --models snn snn_v1 lif lstm gru -- --hidden_size 256 --number_of_epochs 12
    python tools/compare_encoders.py LibriSpeech data/digits results/compare_digits \\
        --models snn lstm gru -- --hidden_size 256 --vocab_size 24 --test_splits "[test-clean]"
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Error-rate files each recipe writes per test split, by column label: (prefix, suffix).
ERROR_FILES = {
    "TIMIT": {"PER": ("wer_", ""), "PER +phone LM": ("wer_", "_phone_lm")},
    "LibriSpeech": {"WER": ("wer_", ""), "WER +n-gram": ("wer_", "_ngram"), "WER +RNNLM": ("wer_", "_rnnlm")},
}
TEST_SPLIT = {"TIMIT": "test", "LibriSpeech": "test-clean"}


def error_rate(path: Path) -> float | None:
    """The ``%WER`` figure of a SpeechBrain ``ErrorRateStats`` file, or None if there is none."""
    if not path.exists():
        return None
    match = re.search(r"%WER\s+([\d.]+)", path.read_text(encoding="utf-8"))
    return float(match.group(1)) if match else None


def encoder_parameters(run: Path) -> int:
    """2-D weight parameters of the run's encoder, rebuilt from its saved ``hyperparams.yaml``."""
    from hyperpyyaml import load_hyperpyyaml

    from snn_asr.ops import count_parameters

    with open(run / "hyperparams.yaml", encoding="utf-8") as f:
        hparams = load_hyperpyyaml(f)
    return count_parameters(hparams["encoder"])


def summarize(recipe: str, name: str, run: Path) -> dict:
    """One table row from a finished run's files."""
    split = TEST_SPLIT[recipe]
    row: dict = {"model": name}
    for label, (prefix, suffix) in ERROR_FILES[recipe].items():
        row[label] = error_rate(run / f"{prefix}{split}{suffix}.txt")
    history = json.loads((run / "history.json").read_text())
    row["best dev"] = min(h["valid_error_rate"] for h in history)
    row["epochs"] = len(history)
    times = [h["train_seconds"] for h in history if "train_seconds" in h]
    row["s/epoch"] = statistics.median(times) if times else None
    row["parameters"] = encoder_parameters(run)
    ops = json.loads((run / f"ops_{split}.json").read_text())
    row["mults/frame"] = ops["mults_per_frame"]
    row["mults/utt"] = ops["mults_per_utterance"]
    row["vs GRU"] = ops["ratio_to_gru"]
    rates = ops["spike_rates"]
    row["spike rate"] = " / ".join(f"{r:.3f}" for r in rates.values()) if rates else "-"
    return row


def markdown(rows: list[dict]) -> str:
    """Rows as a Markdown table; numbers formatted for reading."""
    columns = [c for c in rows[0] if any(r.get(c) is not None for r in rows)]

    def cell(value) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:,.0f}" if value >= 1000 else f"{value:.3f}" if value < 1 else f"{value:.2f}"
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    overrides = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        usage="%(prog)s RECIPE DATA_FOLDER OUT [--models ...] [--table-only] [-- RECIPE OVERRIDES ...]",
        epilog="Everything after -- goes to every model's train.py as is (--key value overrides of its "
        "YAML, e.g. -- --hidden_size 256 --number_of_epochs 6).",
    )
    parser.add_argument("recipe", choices=sorted(ERROR_FILES))
    parser.add_argument("data_folder", type=Path)
    parser.add_argument("out", type=Path, help="one output folder per model is made inside")
    parser.add_argument("--models", nargs="+", default=["snn", "lstm", "gru"], help="hparams file stems")
    parser.add_argument("--table-only", action="store_true", help="tabulate existing runs, train nothing")
    args = parser.parse_args(argv)
    rows = []
    for name in args.models:
        run = args.out / name
        if not args.table_only:
            command = [
                sys.executable, str(ROOT / "recipes" / args.recipe / "train.py"), f"hparams/{name}.yaml",
                "--data_folder", str(args.data_folder), "--output_folder", str(run), *overrides,
            ]  # fmt: skip
            print("$", " ".join(command), flush=True)
            if subprocess.run(command, env=os.environ).returncode:
                sys.exit(f"error: training {name} failed (see above); rerun to resume it")
        finished = [run / "history.json", run / f"ops_{TEST_SPLIT[args.recipe]}.json"]
        if not all(path.is_file() for path in finished):
            sys.exit(
                f"error: {str(run)!r} holds no finished run of {name} (no history.json or ops file); "
                "train it first (drop --table-only), or leave it out of --models"
            )
        rows.append(summarize(args.recipe, name, run))
    table = markdown(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(table + "\n")
    (args.out / "table.json").write_text(json.dumps(rows, indent=1))
    print(table)


if __name__ == "__main__":
    main()
