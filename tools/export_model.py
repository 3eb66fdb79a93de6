#!/usr/bin/env python3
"""Exports a finished recipe run as a pretrained model folder (a SpeechBrain-style model card).

::

    python tools/export_model.py results/LibriSpeech/snn_v2/1234 pretrained/snn_v2_librispeech

Reads the run's ``hyperparams.yaml`` (the training YAML after overrides), takes the best
checkpoint of ``save/CKPT+*`` (lowest ``error_rate``) and writes to the model folder:

- ``hyperparams.yaml``: inference only. The run's ``compute_features``, ``normalize``,
  ``encoder`` (as ``enc``), ``ctc_lin`` and ``log_softmax`` definitions, wired as SpeechBrain's
  ``EncoderASR`` expects (``encoder``, ``tokenizer``, ``decoding_function``, ``modules``,
  ``pretrainer``), so ``speechbrain.inference.ASR.EncoderASR`` and
  ``snn_asr.inference.SpikingASR`` both load it; for a causal ``SpikingRNN`` with a sentencepiece
  tokenizer also what ``speechbrain.inference.ASR.StreamingASR`` needs (:data:`STREAMING`);
- ``model.ckpt`` (``ModuleList[enc, ctc_lin]``), ``normalizer.ckpt`` (global Fbank statistics);
- ``tokenizer.ckpt``: the run's sentencepiece model (LibriSpeech) or 48-phone label encoder (TIMIT);
- ``lm.arpa``: the n-gram the recipe built for beam search, if any;
- ``rnnlm.ckpt``, with ``--rnnlm_folder``: the weights of an RNNLM of ``recipes/<Corpus>/train_lm.py``
  trained with the run's tokenizer (its lowest-dev-loss checkpoint); the YAML gains its definition
  (``rnnlm``) and the run's ``rnnlm_weight``/``rnnlm_topk``: ``snn-asr transcribe`` re-ranks the
  beam's N-best list with it, as the recipe's ``wer_test_rnnlm.txt`` was scored;
- ``README.md``: model card with training data, error rates (``wer_*.txt``) and op counts
  (``ops_*.json``) of the run.

CTC models only (a run with an attentional decoder is refused).
"""

from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import sys
from pathlib import Path

import ruamel.yaml
import torch
from hyperpyyaml import resolve_references
from speechbrain.utils.checkpoints import Checkpointer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # snn_asr without installing
from snn_asr.dataio import DataError, read_manifest  # noqa: E402
from snn_asr.inference.asr import CHAIN_YAML, LM_FILE, RNNLM_FILE  # noqa: E402
from snn_asr.recipes.rnnlm import load_rnnlm_for  # noqa: E402

PARTS = ("compute_features", "normalize", "encoder", "ctc_lin", "log_softmax")
RNNLM_SCALARS = {"rnnlm_weight": 0.25, "rnnlm_topk": 8, "bos_index": 1, "eos_index": 2}
"""Copied from the run's YAML when an RNNLM is exported (these defaults where it has none)."""
SCALARS = {"sample_rate": 16000, "blank_index": 0, "beam_size": 0, "lm_weight": 0.5, "lm_bonus": 1.0}
"""Copied from the run's YAML (these defaults where it has none): ``beam_size``, ``lm_weight`` and
``lm_bonus`` are the decoding ``snn-asr transcribe`` uses unless told otherwise."""

WIRING = """
# Inference chain: waveform -> Fbank -> frozen global normalisation -> encoder -> CTC log-probs
asr_model: !new:torch.nn.ModuleList
    - [!ref <enc>, !ref <ctc_lin>]
{chain}audio_normalizer: !new:speechbrain.dataio.preprocess.AudioNormalizer
    sample_rate: !ref <sample_rate>
tokenizer: {tokenizer}
decoding_function: !name:snn_asr.inference.streaming_ctc.ctc_greedy_decode  # EncoderASR's and StreamingASR's
    blank_id: !ref <blank_index>

modules:
    encoder: !ref <encoder>

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        model: !ref <asr_model>
        normalizer: !ref <normalize>
        tokenizer: !ref <tokenizer>
"""


STREAMING = """
# SpeechBrain's StreamingASR: Fbank chunk by chunk, the encoder's state as its context, greedy CTC
fea_streaming_extractor: !new:snn_asr.inference.fbank_stream.StreamingFbank
    compute_features: !ref <compute_features>
    normalize: !ref <normalize>
proj_enc: !new:torch.nn.Sequential
    - !ref <ctc_lin>
    - !ref <log_softmax>
make_decoder_streaming_context: !name:snn_asr.inference.streaming_ctc.CTCStreamingContext
make_tokenizer_streaming_context: !name:snn_asr.inference.streaming_ctc.SpmStreamingContext
tokenizer_decode_streaming: !name:snn_asr.inference.streaming_ctc.spm_decode_streaming
"""
"""What ``StreamingASR`` needs beside the EncoderASR wiring: written for a causal ``SpikingRNN`` with a
sentencepiece tokenizer (its modules ``enc`` and ``proj_enc`` join ``modules``)."""
STREAMING_MODULES = "    enc: !ref <enc>\n    proj_enc: !ref <proj_enc>\n"


def streaming_applies(hparams: dict, tokenizer: str) -> bool:
    """Whether the run's model streams in SpeechBrain's ``StreamingASR``: a unidirectional
    ``SpikingRNN`` (its state is the context) with a sentencepiece tokenizer."""
    encoder = hparams["encoder"]
    spiking = encoder.tag.value.removeprefix("!new:") in (
        "snn_asr.SpikingRNN",
        "snn_asr.encoders.spiking_rnn.SpikingRNN",
    )
    return spiking and not encoder.get("bidirectional", False) and "sentencepiece" in tokenizer


def fail(message: str) -> SystemExit:
    return SystemExit(f"error: {message}")


def _strip_comments(node) -> None:
    """Drops the training YAML's comments from a round-trip node (recursively)."""
    if hasattr(node, "ca"):
        node.ca.items.clear()
        node.ca.comment = None
    for child in node.values() if isinstance(node, dict) else node if isinstance(node, list) else []:
        _strip_comments(child)


def load_run_yaml(text: str) -> dict:
    """A run's ``hyperparams.yaml`` as round-trip YAML nodes, references resolved, nothing instantiated."""
    return ruamel.yaml.YAML().load(resolve_references(text).getvalue())


def inference_yaml(hparams: dict, tokenizer: str, header: str, rnnlm: dict | None = None) -> str:
    """The inference ``hyperparams.yaml`` from a run's training YAML (:func:`load_run_yaml`).

    Example
    -------
    >>> text = "n: 4\\nenc: !new:torch.nn.Linear\\n    in_features: !ref <n>\\n    out_features: 2\\n"
    >>> text += "sample_rate: 8000\\nlm_weight: 0.3\\n"
    >>> for key in PARTS[:2] + PARTS[3:]:
    ...     text += f"{key}: !new:torch.nn.Identity\\n"
    >>> run = load_run_yaml(text.replace("enc:", "encoder:"))
    >>> out = inference_yaml(run, "!new:sentencepiece.SentencePieceProcessor", "")
    >>> print(out[: out.index("# Inference")].strip())
    sample_rate: 8000
    blank_index: 0
    beam_size: 0
    lm_weight: 0.3
    lm_bonus: 1.0
    compute_features: !new:torch.nn.Identity
    normalize: !new:torch.nn.Identity
    enc: !new:torch.nn.Linear
      in_features: 4
      out_features: 2
    ctc_lin: !new:torch.nn.Identity
    log_softmax: !new:torch.nn.Identity
    """
    missing = [key for key in PARTS if key not in hparams]
    if missing:
        raise fail(f"the run's hyperparams.yaml lacks {missing}; export works on CTC recipe runs")
    out = ruamel.yaml.comments.CommentedMap((key, hparams.get(key, value)) for key, value in SCALARS.items())
    for key in PARTS:
        _strip_comments(hparams[key])
        out["enc" if key == "encoder" else key] = hparams[key]
    if rnnlm is not None:  # the LM recipe's lm_model: built here, its weights loaded from rnnlm.ckpt
        out.update((key, hparams.get(key, value)) for key, value in RNNLM_SCALARS.items())
        _strip_comments(rnnlm)
        out["rnnlm"] = rnnlm
    buffer = io.StringIO()
    ruamel.yaml.YAML().dump(out, buffer)
    wiring = WIRING.format(tokenizer=tokenizer, chain=CHAIN_YAML)
    if rnnlm is not None:
        wiring += "        rnnlm: !ref <rnnlm>\n"
    if streaming_applies(hparams, tokenizer):
        wiring = wiring.replace(
            "    encoder: !ref <encoder>\n", "    encoder: !ref <encoder>\n" + STREAMING_MODULES
        )
        wiring += STREAMING
    return header + buffer.getvalue() + wiring


def best_checkpoint(save: Path):
    """The checkpoint with the lowest ``error_rate`` in its ``CKPT.yaml`` meta (SpeechBrain's own search)."""
    ckpt = Checkpointer(save).find_checkpoint(min_key="error_rate")
    if ckpt is None:
        raise fail(f"no checkpoint with an error_rate in {str(save)!r}; let the recipe finish an epoch first")
    return ckpt


def find_tokenizer(save: Path, hparams: dict) -> tuple[Path, str, str]:
    """(file, YAML of the tokenizer object, description): label encoder (TIMIT) or sentencepiece."""
    labels = save / "label_encoder.txt"
    if labels.is_file():
        return labels, "!new:speechbrain.dataio.encoder.CTCTextEncoder", "label encoder (one token per phone)"
    name = f"{hparams.get('vocab_size')}_{hparams.get('token_type')}.model"
    if not (save / name).is_file():
        raise fail(f"no tokenizer in {str(save)!r} (looked for label_encoder.txt and {name})")
    return save / name, "!new:sentencepiece.SentencePieceProcessor", f"sentencepiece {name}"


def find_lm(save: Path, hparams: dict) -> Path | None:
    """The recipe's ARPA n-gram: ``ngram_arpa`` if given, else the one it built in ``save/``."""
    given = hparams.get("ngram_arpa")
    if given and Path(given).is_file():
        return Path(given)
    built = sorted(save.glob("*gram.arpa"))
    return built[0] if built else None


def run_metrics(run: Path) -> tuple[list[tuple[str, str]], dict[str, dict]]:
    """(split, error-rate line) from each ``wer_*.txt`` and the ``ops_*.json`` reports of a run."""
    errors = []
    for path in sorted(run.glob("wer_*.txt")):
        first = path.read_text(encoding="utf-8").splitlines()[:1]
        match = re.match(r"%WER\s+([\d.]+)\s+\[(.*)\]", first[0]) if first else None
        if match:
            split = path.stem.removeprefix("wer_")
            scores = path.with_suffix(".json")
            cer = json.loads(scores.read_text()).get("cer") if scores.is_file() else None
            cer_cell = f"{cer['with_spaces']:.2f} / {cer['without_spaces']:.2f}" if cer else "-"
            errors.append((split, f"{float(match.group(1)):.2f} | {cer_cell} |{match.group(2)}"))
    ops = {
        path.stem.removeprefix("ops_"): json.loads(path.read_text())
        for path in sorted(run.glob("ops_*.json"))
    }
    return errors, ops


def model_card(
    run: Path,
    hparams: dict,
    ckpt,
    tokenizer: str,
    lm: Path | None,
    notes: str = "",
    rnnlm: Path | None = None,
) -> str:
    """README.md of the model folder; ``notes`` (Markdown: where the data came from, how it was
    trained, its licence) go first under "Training data"; ``rnnlm``: the LM run exported with it."""
    save = run / "save"
    train = read_manifest(save / "train.csv") if (save / "train.csv").is_file() else {}
    hours = sum(row["duration"] for row in train.values()) / 3600
    errors, ops = run_metrics(run)
    counter = ckpt.path / "counter.ckpt"
    epoch = counter.read_text().strip() if counter.is_file() else "?"
    unit = "PER (39 phones)" if "label encoder" in tokenizer else "WER"
    lines = [
        f"# {hparams.get('model_name', run.name)}: snn-asr CTC model",
        "",
        f"Encoder `{type_of(hparams)}` "
        f"({hparams.get('hidden_size', '?')} x {hparams.get('num_layers', '?')}), "
        f"CTC over {tokenizer}; exported from `{run}` by `tools/export_model.py`.",
        "",
        "## Training data",
        "",
        *([notes.strip(), ""] if notes.strip() else []),
        f"- data folder: `{hparams.get('data_folder')}`, splits {hparams.get('train_splits', 'train')}",
        f"- {len(train)} training utterances, {hours:.2f} h; best checkpoint: epoch {epoch}, "
        f"dev error rate {ckpt.meta.get('error_rate', float('nan')):.2f}",
        "",
        "## Results",
        "",
        f"| test split | {unit} | CER (spaces counted / not) | details |",
        "|---|---|---|---|",
        *[f"| {split} | {line} |" for split, line in errors],
        "",
        "| test split | mults/frame | vs same-size GRU | spike rates |",
        "|---|---|---|---|",
        *[
            f"| {split} | {r['mults_per_frame']:,.0f} | {r['ratio_to_gru']:.3f} | "
            + ", ".join(f"{k} {v:.3f}" for k, v in r["spike_rates"].items())
            + " |"
            for split, r in ops.items()
        ],
        "",
        "## Use",
        "",
        "```python",
        "from snn_asr.inference import SpikingASR",
        "",
        'asr = SpikingASR.from_hparams(source="<this folder>")',
        'print(asr.transcribe_file("speech.flac"))',
        "```",
        "",
        "```bash",
        "snn-asr transcribe <this folder> speech.flac --format json",
        "```",
        "",
        f"The command decodes as the folder says: beam {hparams.get('beam_size', 0) or 0}"
        + (f" with its n-gram `{LM_FILE}`" if lm and hparams.get("beam_size") else "")
        + (
            f", its {hparams.get('rnnlm_topk', 8)} best re-ranked by the RNNLM `{RNNLM_FILE}` "
            f"(weight {hparams.get('rnnlm_weight', 0.25)})"
            if rnnlm and hparams.get("beam_size")
            else ""
        )
        + " (`--beam 0` for greedy, `--no-lm` without the n-gram"
        + (", `--no-rnnlm` without the RNNLM" if rnnlm else "")
        + ").",
        "",
        "Files: `hyperparams.yaml`, `model.ckpt`, `normalizer.ckpt`, `tokenizer.ckpt`"
        + (f", `{LM_FILE}` (n-gram of the recipe: {lm.name})" if lm else "")
        + (f", `{RNNLM_FILE}` (RNNLM of `{portable_path(rnnlm)}`)" if rnnlm else "")
        + ". See docs/inference.md of snn-asr.",
        "",
    ]
    return "\n".join(lines)


def type_of(hparams: dict) -> str:
    """The encoder class and neuron of the run, e.g. ``snn_asr.SpikingRNN (v2)``."""
    encoder = hparams["encoder"]
    neuron = encoder.get("neuron") if isinstance(encoder, dict) else None
    return encoder.tag.value.removeprefix("!new:") + (f" ({neuron})" if neuron else "")


def portable_path(path: Path) -> str:
    """``path`` relative to the repository when inside it, else its last two parts: no machine's folders.

    Example
    -------
    >>> portable_path(REPO / "results" / "run")
    'results/run'
    >>> portable_path(Path("/home/someone/experiments/run7"))
    'experiments/run7'
    """
    path = path.resolve()
    if path.is_relative_to(REPO):
        return path.relative_to(REPO).as_posix()
    return Path(*path.parts[-2:]).as_posix()


def export(
    run: Path, model_dir: Path, overwrite: bool = False, notes: str = "", rnnlm_folder: Path | None = None
) -> Path:
    """Writes the model folder of recipe run ``run`` to ``model_dir`` (see the module docstring)."""
    hparams_file, save = run / "hyperparams.yaml", run / "save"
    if not hparams_file.is_file() or not save.is_dir():
        raise fail(f"{str(run)!r} is not a recipe output folder (needs hyperparams.yaml and save/)")
    if model_dir.exists() and any(model_dir.iterdir()) and not overwrite:
        raise fail(f"{str(model_dir)!r} exists and is not empty; pass --overwrite to replace it")
    hparams = load_run_yaml(hparams_file.read_text(encoding="utf-8"))
    if "dec" in hparams:
        raise fail("the run has an attentional decoder; only CTC models can be exported for now")
    ckpt = best_checkpoint(save)
    tokenizer_file, tokenizer_yaml, tokenizer_desc = find_tokenizer(save, hparams)
    lm = find_lm(save, hparams)
    rnnlm = rnnlm_yaml = None
    if rnnlm_folder is not None:
        try:
            rnnlm = load_rnnlm_for(rnnlm_folder, tokenizer_file)
        except (FileNotFoundError, ValueError) as err:
            raise fail(str(err)) from None
        lm_run = load_run_yaml((rnnlm_folder / "hyperparams.yaml").read_text(encoding="utf-8"))
        rnnlm_yaml = lm_run["lm_model"]
    header = (
        f"# snn-asr pretrained model, inference only: exported from {portable_path(run)}\n"
        f"# (checkpoint {ckpt.path.name}) by tools/export_model.py. Load with\n"
        "# snn_asr.inference.SpikingASR or speechbrain.inference.ASR.EncoderASR.\n\n"
    )
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "hyperparams.yaml").write_text(
        inference_yaml(hparams, tokenizer_yaml, header, rnnlm_yaml), encoding="utf-8"
    )
    for name in ("model.ckpt", "normalizer.ckpt"):
        shutil.copyfile(ckpt.path / name, model_dir / name)
    shutil.copyfile(tokenizer_file, model_dir / "tokenizer.ckpt")
    if lm:
        shutil.copyfile(lm, model_dir / LM_FILE)
    if rnnlm is not None:
        torch.save(rnnlm.state_dict(), model_dir / RNNLM_FILE)
    card = model_card(run, hparams, ckpt, tokenizer_desc, lm, notes, rnnlm_folder)
    (model_dir / "README.md").write_text(card, encoding="utf-8")
    return model_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="recipe output folder (holding hyperparams.yaml and save/)")
    parser.add_argument("model_dir", type=Path, help="model folder to write")
    parser.add_argument("--overwrite", action="store_true", help="replace files in a non-empty model_dir")
    parser.add_argument(
        "--notes", type=Path, help="Markdown for the card: the data's origin, training, licence"
    )
    parser.add_argument(
        "--rnnlm_folder",
        type=Path,
        help="train_lm.py's output folder (the run's tokenizer): bundle its RNNLM",
    )
    args = parser.parse_args(argv)
    try:
        notes = args.notes.read_text(encoding="utf-8") if args.notes else ""
        out = export(args.run, args.model_dir, args.overwrite, notes, args.rnnlm_folder)
    except (OSError, DataError) as err:
        raise fail(str(err)) from None
    print(f"exported {args.run} to {out}")


if __name__ == "__main__":
    main()
