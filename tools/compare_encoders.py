#!/usr/bin/env python3
"""Trains several encoders with the same recipe and data, then tabulates them (Markdown).

Each model is one ``hparams/<name>.yaml`` of the recipe, run as
``recipes/<recipe>/train.py hparams/<name>.yaml --data_folder DATA --output_folder OUT/<name>``
plus the shared overrides given after ``--``, logged to ``OUT/logs``; ``--jobs 2`` trains two
runs at a time, one thread each, seed by seed. A finished run is not trained again and a
killed one resumes from its checkpoints, so rerunning only tabulates. With ``--seeds``, each
model trains once per seed
(``OUT/<model>/<seed>``) and each figure is the seeds' ``mean ± sd`` (with ``--table-only``,
over the seeds that have finished; the ``seeds`` column says how many). The table holds, per
model: dev and test error (and CER where the recipe writes it) without and with the LM (or the
best greedy dev error where the dev set was not scored at the end), the encoder's parameters
(2-D weight matrices, the paper's count), multiplications per frame (event-driven for spiking
layers), the ratio to a same-size GRU, spike rates per layer and the median training time per
epoch. It is printed and written to ``OUT/table.md`` (and ``OUT/table.json``).

Run::

    python tools/compare_encoders.py TIMIT data/timit_medium results/compare_timit \\
        --models snn snn_v1 lif lstm gru -- --hidden_size 256 --number_of_epochs 12
    python tools/compare_encoders.py LibriSpeech data/digits results/compare_digits \\
        --models snn lstm gru -- --hidden_size 256 --vocab_size 24 --test_splits "[test-clean]"
    python tools/compare_encoders.py AN4 ../shared/data/an4 results/AN4 \\
        --models snn snn_v1 lif lstm gru --seeds 1234 1235 1236 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The (dev, test) splits each recipe scores, and its error-rate files' suffixes by LM: column label -> suffix.
SPLITS = {"TIMIT": ("dev", "test"), "LibriSpeech": ("dev-clean", "test-clean"), "AN4": ("dev", "test")}
METRIC = {"TIMIT": "PER", "LibriSpeech": "WER", "AN4": "WER"}
LM_SUFFIXES = {
    "TIMIT": {"": "", "+phone LM": "_phone_lm"},
    "LibriSpeech": {"": "", "+n-gram": "_ngram", "+RNNLM": "_rnnlm"},
    "AN4": {"": "", "+n-gram": "_ngram", "+RNNLM": "_rnnlm", "+n-gram+RNNLM": "_ngram_rnnlm"},
}


def error_rates(run: Path, split: str, suffix: str) -> dict[str, float] | None:
    """``wer`` (and ``cer``/``cer_nospace`` where written) of a split's scoring files, or None if none.

    The JSON file (``wer_<split><suffix>.json``) is read where there is one, else the ``%WER`` line
    of SpeechBrain's ``ErrorRateStats`` text file.
    """
    stem = run / f"wer_{split}{suffix}"
    if stem.with_suffix(".json").is_file():
        scores = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
        found = {"wer": scores["speechbrain"]["wer"]}
        if "cer" in scores:
            found |= {"cer": scores["cer"]["with_spaces"], "cer_nospace": scores["cer"]["without_spaces"]}
        return found
    if not stem.with_suffix(".txt").is_file():
        return None
    match = re.search(r"%WER\s+([\d.]+)", stem.with_suffix(".txt").read_text(encoding="utf-8"))
    return {"wer": float(match.group(1))} if match else None


def finished(recipe: str, run: Path) -> bool:
    """Whether ``run`` holds a finished run of ``recipe``: its history and the test split's op counts."""
    return (run / "history.json").is_file() and (run / f"ops_{SPLITS[recipe][1]}.json").is_file()


def encoder_parameters(run: Path) -> int:
    """2-D weight parameters of the run's encoder, rebuilt from its saved ``hyperparams.yaml``."""
    from hyperpyyaml import load_hyperpyyaml

    from snn_asr.ops import count_parameters

    with open(run / "hyperparams.yaml", encoding="utf-8") as f:
        hparams = load_hyperpyyaml(f)
    return count_parameters(hparams["encoder"])


def summarize(recipe: str, run: Path, lms: list[str] | None = None) -> dict:
    """One run's figures from its files: error rates by column (of the ``lms`` labels of
    :data:`LM_SUFFIXES`, all by default), parameters, op counts, timing."""
    dev, test = SPLITS[recipe]
    row: dict = {}
    for split in (dev, test):
        for lm, suffix in LM_SUFFIXES[recipe].items():
            if lms is not None and (lm or "none") not in lms:
                continue
            for name, value in (error_rates(run, split, suffix) or {}).items():
                if name == "cer_nospace" and split == dev:
                    continue  # the test set's is enough to compare with systems that count no spaces
                label = {"wer": METRIC[recipe], "cer": "CER", "cer_nospace": "CER no space"}[name]
                row[f"{split} {label}{' ' + lm if lm else ''}"] = value
    history = json.loads((run / "history.json").read_text())
    if not any(key.startswith(f"{dev} ") for key in row):  # the dev set was not scored at the end
        row["best dev (greedy)"] = min(h["valid_error_rate"] for h in history)
    row["epochs"] = len(history)
    times = [h["train_seconds"] for h in history if "train_seconds" in h]
    row["s/epoch"] = statistics.median(times) if times else None
    row["parameters"] = encoder_parameters(run)
    ops = json.loads((run / f"ops_{test}.json").read_text())
    row["mults/frame"] = ops["mults_per_frame"]
    row["vs GRU"] = ops["ratio_to_gru"]
    for layer, rate in ops["spike_rates"].items():
        row[f"spike rate {layer}"] = rate
    return row


def aggregate(name: str, runs: list[dict]) -> dict:
    """One table row of a model's runs (seeds): each figure's mean, ``± sd`` over 2 or more seeds."""
    row: dict = {"model": name, "seeds": len(runs)}
    for key in runs[0]:
        values = [r[key] for r in runs if r.get(key) is not None]
        if not values:
            row[key] = None
        elif len(values) > 1 and key not in ("parameters", "epochs"):
            row[key] = (statistics.mean(values), statistics.stdev(values))
        else:
            row[key] = statistics.mean(values) if key != "parameters" else values[0]
    rates = [k for k in row if k.startswith("spike rate ")]
    if rates:  # one column: layer 1 / layer 2 / ...
        row["spike rate"] = " / ".join(_number(row.pop(k), 3) for k in rates)
    return row


def _number(value, digits: int | None = None) -> str:
    if isinstance(value, tuple):
        mean, sd = value
        return _number(mean, digits) if sd == 0 else f"{_number(mean, digits)} ± {_number(sd, digits)}"
    if digits is not None:
        return f"{value:.{digits}f}"
    return f"{value:,.0f}" if value >= 1000 else f"{value:.3f}" if value < 1 else f"{value:.1f}"


def markdown(rows: list[dict]) -> str:
    """Rows as a Markdown table; numbers formatted for reading (``mean ± sd`` over seeds)."""
    columns = [c for c in rows[0] if any(r.get(c) is not None for r in rows)]
    if all(r.get("seeds") == 1 for r in rows):
        columns.remove("seeds")

    def cell(value) -> str:
        if value is None:
            return "-"
        if isinstance(value, int):
            return f"{value:,}"
        return value if isinstance(value, str) else _number(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def check_lms(parser: argparse.ArgumentParser, recipe: str, lms: list[str] | None) -> None:
    """A usage error unless ``--lms`` names LM columns of the recipe's (``none`` for no LM)."""
    known = {lm or "none" for lm in LM_SUFFIXES[recipe]}
    if lms and not set(lms) <= known:
        parser.error(f"--lms takes some of: {' '.join(sorted(known))}")


def train_all(jobs: list[tuple[str, list[str]]], parallel: int) -> None:
    """Runs the commands, ``parallel`` at a time (one thread each when more than one); exits on a failure."""
    env = dict(os.environ)
    if parallel > 1:
        env |= {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    pending, running = list(jobs), []
    while pending or running:
        while pending and len(running) < parallel:
            log, command = pending.pop(0)
            print("$", " ".join(command), f"> {log}", flush=True)
            Path(log).parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a", encoding="utf-8") as out:
                running.append(
                    (log, subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT))
                )
        time.sleep(2)
        for log, process in list(running):
            if process.poll() is not None:
                running.remove((log, process))
                if process.returncode:
                    for _, other in running:
                        other.terminate()
                    sys.exit(f"error: a run failed (see {log}); rerun to resume it")


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
    parser.add_argument("recipe", choices=sorted(SPLITS))
    parser.add_argument("data_folder", type=Path)
    parser.add_argument("out", type=Path, help="one output folder per model is made inside")
    parser.add_argument("--models", nargs="+", default=["snn", "lstm", "gru"], help="hparams file stems")
    parser.add_argument(
        "--seeds", nargs="+", type=int, help="train each model once per seed, in OUT/<model>/<seed>"
    )
    parser.add_argument("--table-only", action="store_true", help="tabulate existing runs, train nothing")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (logs in OUT/logs)")
    parser.add_argument(
        "--lms", nargs="+", help="the LM columns to show (none +n-gram ...; default: all the recipe writes)"
    )
    args = parser.parse_args(argv)
    check_lms(parser, args.recipe, args.lms)

    def folder(name: str, seed: int | None) -> Path:
        return args.out / name if seed is None else args.out / name / str(seed)

    if not args.table_only:
        jobs = []
        for seed in args.seeds or [None]:  # seed by seed: a cut-short run leaves whole seeds
            for name in args.models:
                run, seeded = folder(name, seed), [] if seed is None else ["--seed", str(seed)]
                command = [
                    sys.executable, str(ROOT / "recipes" / args.recipe / "train.py"), f"hparams/{name}.yaml",
                    "--data_folder", str(args.data_folder), "--output_folder", str(run), *seeded, *overrides,
                ]  # fmt: skip
                log = args.out / "logs" / ("-".join(run.relative_to(args.out).parts) + ".log")
                if not finished(args.recipe, run):
                    jobs.append((str(log), command))
        train_all(jobs, args.jobs)
    rows = []
    for name in args.models:
        summaries = []
        for seed in args.seeds or [None]:
            run = folder(name, seed)
            done = finished(args.recipe, run)
            if not done and args.table_only and seed is not None:
                print(f"warning: {str(run)!r} is not finished: left out of {name}'s row", file=sys.stderr)
                continue
            if not done:
                sys.exit(
                    f"error: {str(run)!r} holds no finished run of {name} (no history.json or ops file); "
                    "train it first (drop --table-only), or leave it out of --models"
                )
            summaries.append(summarize(args.recipe, run, args.lms))
        if not summaries:
            sys.exit(f"error: no seed of {name} has finished in {str(args.out / name)!r}; train it first")
        rows.append(aggregate(name, summaries))
    table = markdown(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(table + "\n")
    (args.out / "table.json").write_text(json.dumps(rows, indent=1))  # (mean, sd) pairs as lists
    print(table)


if __name__ == "__main__":
    main()
