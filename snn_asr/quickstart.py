"""Quickstart: from nothing to a spiking-encoder ASR model transcribing held-out speech, on CPU.

No data and no downloads: it makes its own speech with espeak-ng. Needs a **source checkout**
(``pip install -e .`` from the repository): it runs the repository's ``tools/`` and
``recipes/``, found next to this package, and needs espeak-ng (``apt-get install espeak-ng``).
Four steps, each printed as a command before it runs and skipped when its output exists and was
made by the same command (a rerun resumes where a run stopped, or only prints the results; a step
whose options changed is redone, replacing its output, and so are the steps after it; the
commands that made the outputs are kept in ``OUT/steps.json``):

1. ``corpus``: ``tools/make_librispeech_corpus.py espeak OUT/corpus``, espeak-ng sentences
   (about 400 words) in LibriSpeech's layout; train, dev and test voices are disjoint;
2. ``train``: ``recipes/LibriSpeech/train.py hparams/snn.yaml`` (v2 spiking encoder, CTC over
   sentencepiece tokens) into ``OUT/train``, with the test WER of CTC prefix beam search without
   and with the recipe's 3-gram (``wer_test-clean.txt``, ``wer_test-clean_ngram.txt``);
3. ``export``: ``tools/export_model.py OUT/train OUT/model`` (a pretrained model folder);
4. ``transcribe``: ``snn-asr transcribe OUT/model`` on the first test-clean file (a held-out
   voice) with beam search and the model's n-gram; result in ``OUT/held_out.json``.

Then it prints the reference next to the hypothesis, the test WERs and each step's wall time.
Other ``--key value`` options go to the recipe as YAML overrides (e.g. ``--lr 0.003``). To keep
a run while trying other settings, give the new one another ``--out``.

Run::

    python -m snn_asr.quickstart                      # into results/quickstart
    python -m snn_asr.quickstart --out results/qs --epochs 12 --lr 0.003
    python -m snn_asr.quickstart --dry-run            # print the commands only
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS_TOOL = REPO / "tools" / "make_librispeech_corpus.py"
EXPORT_TOOL = REPO / "tools" / "export_model.py"
RECIPE = REPO / "recipes" / "LibriSpeech" / "train.py"
TEST_SPLIT = "test-clean"


@dataclass
class Step:
    """One step: its name, the file whose existence means it ran, its command, and its own output
    folder (replaced when the step is redone; ``None``: only ``done_when``)."""

    name: str
    done_when: Path
    command: list[str]
    folder: Path | None = None

    def made_by(self, record: dict[str, list[str]]) -> bool:
        """Whether its output exists and was made by this command (``record``: ``steps.json``)."""
        return self.done_when.exists() and record.get(self.name) == self.command

    def clear(self) -> None:
        """Removes the output of an earlier run with other options."""
        if self.folder is not None and self.folder.is_dir():
            shutil.rmtree(self.folder)
        self.done_when.unlink(missing_ok=True)


def read_record(out: Path) -> dict[str, list[str]]:
    """The command that made each finished step's output (``OUT/steps.json``)."""
    path = out / "steps.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def changed_options(old: list[str] | None, new: list[str]) -> str:
    """What differs between two commands, for the "redo" line.

    Example
    -------
    >>> changed_options(["t", "--size", "tiny", "--lr", "1"], ["t", "--size", "ci", "--lr", "1"])
    '--size tiny -> ci'
    """
    if old is None:
        return "made before the commands were recorded"
    before, after = _options(old), _options(new)
    keys = [k for k in dict.fromkeys([*after, *before]) if before.get(k) != after.get(k)]
    changes = [f"{k} {before.get(k, '(none)')} -> {after.get(k, '(none)')}" for k in keys]
    return ", ".join(changes) or "another command"


def _options(command: list[str]) -> dict[str, str]:
    return {arg: value for arg, value in zip(command, command[1:]) if arg.startswith("--")}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m snn_asr.quickstart",
        description=__doc__.split("\n\n")[0],
        epilog="Other --key value options are passed to the recipe as YAML overrides.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=Path("results/quickstart"), help="output folder")
    parser.add_argument("--size", default="ci", choices=("tiny", "ci", "large"), help="corpus size")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs")
    parser.add_argument("--hidden-size", type=int, default=256, help="spiking neurons per layer")
    parser.add_argument("--vocab-size", type=int, default=40, help="sentencepiece tokens")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=0.005, help="Adam learning rate")
    parser.add_argument("--beam", type=int, default=8, help="CTC prefix beam size (test and transcription)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    return parser


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    """Quickstart options and the extra recipe overrides (``--key value`` pairs).

    Example
    -------
    >>> args, extra = parse_args(["--epochs", "3", "--dropout", "0.1"])
    >>> args.epochs, extra
    (3, ['--dropout', '0.1'])
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if any(not a.startswith("--") for a in extra[::2]) or len(extra) % 2:
        parser.error(f"recipe overrides must be --key value pairs, got: {' '.join(extra)}")
    if args.epochs < 1 or args.beam < 1:
        parser.error("--epochs and --beam must be at least 1")
    return args, extra


def held_out_utterance(corpus: Path) -> tuple[Path, str]:
    """The first test-clean utterance of a LibriSpeech-layout corpus: (audio file, reference words)."""
    for trans in sorted((corpus / TEST_SPLIT).glob("*/*/*.trans.txt")):
        for line in trans.read_text(encoding="utf-8").splitlines():
            utt, _, words = line.partition(" ")
            return trans.parent / f"{utt}.flac", words
    raise SystemExit(f"error: no {TEST_SPLIT} transcripts in {corpus}; delete it and run again")


def plan(args: argparse.Namespace, extra: list[str]) -> list[Step]:
    """The four steps for the options ``args`` and recipe overrides ``extra``."""
    out, py = args.out.resolve(), sys.executable
    corpus, run, model = out / "corpus", out / "train", out / "model"
    if (corpus / "CORPUS.JSON").exists():
        audio = str(held_out_utterance(corpus)[0])
    else:  # known once the corpus exists
        audio = f"{corpus}/{TEST_SPLIT}/<first utterance>.flac"
    lm = ["--lm", str(model / "lm.arpa")]  # the recipe's n-gram, when the export has one
    if (model / "model.ckpt").exists() and not (model / "lm.arpa").exists():
        lm = []
    recipe_args = {
        "--data_folder": corpus,
        "--output_folder": run,
        "--test_splits": f"[{TEST_SPLIT}]",
        "--number_of_epochs": args.epochs,
        "--hidden_size": args.hidden_size,
        "--vocab_size": args.vocab_size,
        "--batch_size": args.batch_size,
        "--lr": args.lr,
        "--beam_size": args.beam,
    }
    train = [py, str(RECIPE), "hparams/snn.yaml"]
    for key, value in recipe_args.items():
        train += [key, str(value)]
    return [
        Step("corpus", corpus / "CORPUS.JSON",
             [py, str(CORPUS_TOOL), "espeak", str(corpus), "--size", args.size], corpus),
        Step("train", run / f"wer_{TEST_SPLIT}_ngram.txt", train + extra, run),
        Step("export", model / "model.ckpt", [py, str(EXPORT_TOOL), str(run), str(model), "--overwrite"],
             model),
        Step("transcribe", out / "held_out.json",
             [py, "-m", "snn_asr.inference.cli", "transcribe", str(model), audio, "--format", "json",
              "--beam", str(args.beam), *lm]),
    ]  # fmt: skip


def shown(command: list[str]) -> str:
    """A command as a user would type it (``python`` for this interpreter, ``snn-asr`` for the CLI).

    Example
    -------
    >>> shown([sys.executable, "-m", "snn_asr.inference.cli", "transcribe", "my model"])
    "snn-asr transcribe 'my model'"
    """
    if command[1:3] == ["-m", "snn_asr.inference.cli"]:
        return shlex.join(["snn-asr", *command[3:]])
    return shlex.join(["python" if command[0] == sys.executable else command[0], *command[1:]])


def check_espeak() -> None:
    """One-line exit unless libespeak-ng loads (the corpus tool speaks through it)."""
    try:
        ctypes.CDLL(ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1")
    except OSError:
        raise SystemExit(
            "error: espeak-ng is not installed (the quickstart makes its speech with it): "
            "apt-get install espeak-ng"
        ) from None


def clear_unfinished_corpus(corpus: Path) -> None:
    """Removes a corpus folder that an interrupted run left without its ``CORPUS.JSON``."""
    ours = {"train-clean-100", "dev-clean", TEST_SPLIT, "SPEAKERS.TXT", "README.TXT"}
    if corpus.is_dir() and {p.name for p in corpus.iterdir()} <= ours:
        shutil.rmtree(corpus)


def run_step(step: Step, args: argparse.Namespace) -> None:
    """Runs one step's command, its output on this terminal (transcribe: saved with the reference)."""
    if step.name == "corpus":
        check_espeak()
        clear_unfinished_corpus(step.done_when.parent)
    if step.name != "transcribe":
        if subprocess.run(step.command).returncode != 0:
            fail(step)
        return
    result = subprocess.run(step.command, stdout=subprocess.PIPE, text=True)
    if result.returncode != 0:
        fail(step)
    audio, reference = held_out_utterance(args.out.resolve() / "corpus")
    line = json.loads(result.stdout.splitlines()[0])
    step.done_when.write_text(
        json.dumps({"file": str(audio), "reference": reference, "hypothesis": line["text"]}, indent=1) + "\n"
    )


def fail(step: Step) -> None:
    raise SystemExit(
        f"error: step {step.name} failed (see above); fix it and run again: finished steps are skipped"
    )


def wer_line(path: Path) -> str:
    """``12.34% (5 errors / 40 words ...)`` from the first line of a recipe's ``wer_*.txt``."""
    first = path.read_text(encoding="utf-8").splitlines()[:1] if path.is_file() else []
    match = re.match(r"%WER\s+([\d.]+)\s+\[(.*)\]", first[0]) if first else None
    return f"{float(match.group(1)):.2f}% [{match.group(2).strip()}]" if match else "not found"


def report(out: Path, times: dict[str, float | None]) -> None:
    """The held-out transcription, the test WERs and the wall time of each step."""
    held = json.loads((out / "held_out.json").read_text())
    print(f"\nheld-out file: {held['file']}")
    print(f"  reference:  {held['reference']}")
    print(f"  hypothesis: {held['hypothesis'].upper()}")
    print(f"test WER ({TEST_SPLIT}, held-out voices):")
    print(f"  beam search:          {wer_line(out / 'train' / f'wer_{TEST_SPLIT}.txt')}")
    print(f"  beam search + 3-gram: {wer_line(out / 'train' / f'wer_{TEST_SPLIT}_ngram.txt')}")
    print("wall time:")
    for name, seconds in times.items():
        print(f"  {name:<11} " + ("skipped (output exists)" if seconds is None else f"{seconds:7.1f} s"))
    print(f"  {'total':<11} {sum(s or 0.0 for s in times.values()):7.1f} s")
    print(f"model: {out / 'model'} (see its README.md; docs/inference.md for the API and CLI)")


def main(argv: list[str] | None = None) -> int:
    args, extra = parse_args(argv)
    for tool in (CORPUS_TOOL, RECIPE, EXPORT_TOOL):
        if not tool.is_file():
            raise SystemExit(f"error: {tool} not found; the quickstart needs a source checkout of snn-asr")
    out, times, redo = args.out.resolve(), {}, False
    for index in range(4):
        step = plan(args, extra)[index]  # planned anew: the held-out file and n-gram are known late
        record = read_record(out)
        if step.made_by(record) and not redo:
            print(f"[{step.name}] skipped: {step.done_when} exists, made by the same command")
            times[step.name] = None
            continue
        if step.done_when.exists() or (step.folder is not None and step.folder.exists()):
            why = (
                "an earlier step was redone" if redo else changed_options(record.get(step.name), step.command)
            )
            print(f"[{step.name}] redone, replacing {step.folder or step.done_when} ({why})")
            if not args.dry_run:
                step.clear()
        redo = True  # the steps after this one take its new output
        print(f"[{step.name}] {shown(step.command)}", flush=True)
        if args.dry_run:
            continue
        start = time.perf_counter()
        run_step(step, args)
        times[step.name] = time.perf_counter() - start
        (out / "steps.json").write_text(json.dumps({**read_record(out), step.name: step.command}, indent=1))
    if not args.dry_run:
        report(args.out.resolve(), times)
    return 0


if __name__ == "__main__":
    sys.exit(main())
