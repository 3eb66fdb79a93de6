#!/usr/bin/env python
"""Rewrite a SpeechBrain hparams YAML so its RNN encoder is ``snn_asr.SpikingRNN``.

Usage::

    python tools/convert_hparams.py hparams/train.yaml -o hparams/train_spiking.yaml \\
        [--neuron v2] [--bits 6] [--threshold 3] [--input-quant-bits N] [--keys enc ...]

The rewrite is textual, so comments, order, ``!ref``/``!include`` and formatting
survive. It touches only:

- ``!new:`` / ``!name:`` tags of ``speechbrain.nnet.RNN.{LSTM,GRU,RNN,LiGRU,SLiGRU,QuasiRNN}``:
  the class becomes ``snn_asr.SpikingRNN`` and ``neuron``/``bits``/``threshold``
  are added to its arguments; arguments ``SpikingRNN`` does not take (``nonlinearity``,
  ``normalization``, ``zoneout``, ...) are commented out, never deleted;
- ``!new:speechbrain.lobes.models.CRDNN.CRDNN`` without an ``rnn_class`` (its default
  is LiGRU): an ``rnn_class: !name:snn_asr.SpikingRNN`` entry is added.

Two top-level settings follow the new encoder, so that a converted recipe neither trains into
the old model's folder nor feeds the spiking encoder padded frames:

- ``model_name: X`` becomes ``X_snn_<neuron>`` (where there is no ``model_name``, an
  ``output_folder`` gets the suffix ``_snn_<neuron>`` instead);
- ``encoder_lengths: False`` (this project's recipes: the stock RNNs are run without lengths)
  becomes ``True``: ``SpikingRNN`` takes the lengths, so padded frames never reach its state,
  its batch-norm statistics or its running scale.

RNNs inside language models and attentional decoders (``RNNLM``,
``AttentionalRNNDecoder``) are left alone. Every change is printed, with the
input line number. Exit status 1 (one-line error, nothing written) when the file
is missing or holds no RNN encoder.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

STOCK_RNNS = ("LSTM", "GRU", "RNN", "LiGRU", "SLiGRU", "QuasiRNN")
SPIKING_CLASS = "snn_asr.SpikingRNN"
RNN_TAG = re.compile(r"!(?P<kind>new|name):speechbrain\.nnet\.RNN\.(?P<cls>" + "|".join(STOCK_RNNS) + r")\b")
CRDNN_TAG = re.compile(r"!(new|name):speechbrain\.lobes\.models\.CRDNN\.CRDNN\b")
# Blocks whose RNNs are not acoustic encoders.
NOT_ENCODERS = re.compile(r"!(new|name):\S*\.(RNNLM|AttentionalRNNDecoder)\b")
KEY = re.compile(r"^(?P<indent>\s*)(?:-\s+)?(?P<key>[A-Za-z_][\w.-]*)\s*:(?:\s|$)")
# SpikingRNN's keywords, fixed here so the tool runs without importing torch.
SPIKING_ARGS = (
    "hidden_size",
    "input_shape",
    "input_size",
    "num_layers",
    "bias",
    "dropout",
    "re_init",
    "bidirectional",
    "neuron",
    "implementation",
    "bits",
    "threshold",
    "input_quant_bits",
    "scale_update",
    "unsigned",
    "surrogate",
    "detach_reset",
)


@dataclass
class Options:
    """The ``SpikingRNN`` options written into the converted YAML (``None`` = leave out)."""

    neuron: str = "v2"
    bits: int = 6
    threshold: int = 3
    input_quant_bits: int | None = None

    def items(self) -> list[tuple[str, str]]:
        """``(key, YAML value)`` pairs, in order.

        Example
        -------
        >>> Options(neuron="v1", bits=1).items()
        [('neuron', 'v1'), ('bits', '1'), ('threshold', '3')]
        """
        pairs = [
            ("neuron", self.neuron),
            ("bits", self.bits),
            ("threshold", self.threshold),
            ("input_quant_bits", self.input_quant_bits),
        ]
        return [(k, str(v)) for k, v in pairs if v is not None]


@dataclass
class Conversion:
    """The rewritten YAML text and a human-readable line per change."""

    text: str
    changes: list[str] = field(default_factory=list)
    converted: int = 0


class ConversionError(ValueError):
    """The file cannot be converted (no RNN encoder, or a construct the tool does not rewrite)."""


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _code(line: str) -> str:
    """The line without a trailing ``# comment`` (quotes are not inspected: hparams rarely quote '#')."""
    match = re.search(r"(^|\s)#", line)
    return line if match is None else line[: match.start()]


def _block_end(lines: list[str], start: int) -> int:
    """Index after the last content line nested under ``lines[start]``."""
    base = _indent(lines[start])
    end = start + 1
    for j in range(start + 1, len(lines)):
        if not _is_content(lines[j]):
            continue
        if _indent(lines[j]) <= base:
            break
        end = j + 1
    return end


def _children(lines: list[str], start: int, end: int) -> list[tuple[int, int, str]]:
    """``(first line, end line, key)`` of each mapping entry directly under ``lines[start]``."""
    content = [j for j in range(start + 1, end) if _is_content(lines[j])]
    if not content:
        return []
    child_indent = _indent(lines[content[0]])
    entries: list[tuple[int, int, str]] = []
    for j in content:
        if _indent(lines[j]) != child_indent:
            continue
        match = KEY.match(lines[j])
        if match:
            if entries:
                entries[-1] = (entries[-1][0], j, entries[-1][2])
            entries.append((j, end, match["key"]))
    if entries:  # the last entry ends at its last content line
        first, last, key = entries[-1]
        tail = max(k for k in content if k >= first)
        entries[-1] = (first, tail + 1, key)
    return entries


def _owner(lines: list[str], index: int) -> str:
    """Dotted path of the YAML keys enclosing ``lines[index]`` (for the change summary)."""
    path: list[str] = []
    indent = _indent(lines[index]) + 1
    for j in range(index, -1, -1):
        if _is_content(lines[j]) and _indent(lines[j]) < indent:
            match = KEY.match(lines[j])
            if match:
                path.append(match["key"])
            indent = _indent(lines[j])
            if indent == 0:
                break
    return ".".join(reversed(path)) or "<root>"


def _inside_non_encoder(lines: list[str], index: int) -> str | None:
    """The enclosing LM/decoder class when ``lines[index]`` sits inside one, else ``None``."""
    indent = _indent(lines[index])
    for j in range(index - 1, -1, -1):
        if _is_content(lines[j]) and _indent(lines[j]) < indent:
            match = NOT_ENCODERS.search(_code(lines[j]))
            if match:
                return match[2]
            indent = _indent(lines[j])
            if indent == 0:
                return None
    return None


def _rewrite_flow(code: str, options: Options, where: str, changes: list[str]) -> str:
    """Adds options to (and drops unknown keys from) an inline ``{...}`` argument mapping."""
    open_, close = code.index("{"), code.rindex("}")
    items = [item.strip() for item in _split_top_level(code[open_ + 1 : close]) if item.strip()]
    kept = []
    for item in items:
        key = item.split(":", 1)[0].strip()
        if key not in SPIKING_ARGS:
            changes.append(f"{where}: removed '{item}' (not a SpikingRNN option)")
        else:
            kept.append(item)
    kept += [f"{k}: {v}" for k, v in options.items()]
    return code[:open_] + "{" + ", ".join(kept) + "}" + code[close + 1 :]


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "[{("
        depth -= char in "]})"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return parts + [current]


def _child_indent(lines: list[str], index: int, children: list[tuple[int, int, str]]) -> int:
    if children:
        return _indent(lines[children[0][0]])
    line = lines[index]
    dash = re.match(r"^\s*-\s+", line)
    return (len(dash.group(0)) if dash else _indent(line)) + 4


def convert_text(text: str, options: Options | None = None, keys: list[str] | None = None) -> Conversion:
    """Rewrites every SpeechBrain RNN encoder in hparams ``text`` to ``snn_asr.SpikingRNN``.

    Arguments
    ---------
    text : str
        The hparams YAML.
    options : Options, optional
        ``neuron``/``bits``/``threshold``/``input_quant_bits`` to write (defaults: v2, 6, 3).
    keys : list of str, optional
        Only convert RNNs under these top-level keys.

    Returns
    -------
    Conversion
        The new text and one summary line per change.

    Raises
    ------
    ConversionError
        When no RNN encoder is found.

    Example
    -------
    >>> yaml = "enc: !new:speechbrain.nnet.RNN.LiGRU  # encoder\\n" \\
    ...        "    input_shape: [null, null, 40]\\n    hidden_size: 64\\n    normalization: batchnorm\\n"
    >>> result = convert_text(yaml, Options(bits=4))
    >>> print(result.text, end="")
    enc: !new:snn_asr.SpikingRNN  # encoder
        input_shape: [null, null, 40]
        hidden_size: 64
        # normalization: batchnorm  # convert_hparams: not a SpikingRNN option
        neuron: v2
        bits: 4
        threshold: 3
    >>> print("\\n".join(result.changes))
    line 1 (enc): !new:speechbrain.nnet.RNN.LiGRU -> !new:snn_asr.SpikingRNN
    line 4 (enc): commented out 'normalization: batchnorm' (not a SpikingRNN option)
    line 1 (enc): added neuron: v2, bits: 4, threshold: 3
    """
    options = options or Options()
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    result = Conversion(text="")
    inserts: dict[int, list[str]] = {}  # insert these lines before index
    for i, line in enumerate(lines):
        code = _code(line)
        rnn, crdnn = RNN_TAG.search(code), CRDNN_TAG.search(code)
        if not (rnn or crdnn):
            continue
        where = f"line {i + 1} ({_owner(lines, i)})"
        if keys is not None and _owner(lines, i).split(".")[0] not in keys:
            result.changes.append(f"{where}: skipped (not under --keys {' '.join(keys)})")
            continue
        outer = _inside_non_encoder(lines, i)
        if outer:
            result.changes.append(f"{where}: left {rnn[0] if rnn else 'CRDNN'} alone (inside {outer})")
            continue
        end = _block_end(lines, i)
        children = _children(lines, i, end)
        if not children and end > i + 1:
            raise ConversionError(f"{where}: cannot rewrite positional arguments; use keyword arguments")
        indent = " " * _child_indent(lines, i, children)
        if crdnn:
            if any(key == "rnn_class" for _, _, key in children):
                continue  # an explicit rnn_class is converted where its tag is (or it is not an RNN)
            added = [f"{indent}rnn_class: !name:{SPIKING_CLASS}\n"]
            added += [f"{indent}    {k}: {v}\n" for k, v in options.items()]
            inserts.setdefault(end, []).extend(added)
            result.changes.append(
                f"{where}: CRDNN had no rnn_class (default speechbrain.nnet.RNN.LiGRU); "
                f"added rnn_class: !name:{SPIKING_CLASS} with "
                + ", ".join(f"{k}: {v}" for k, v in options.items())
            )
            result.converted += 1
            continue
        old = rnn[0]
        new = f"!{rnn['kind']}:{SPIKING_CLASS}"
        lines[i] = line.replace(old, new, 1)
        result.changes.append(f"{where}: {old} -> {new}")
        rest = _code(lines[i])[_code(lines[i]).index(new) + len(new) :].strip()
        if rest.startswith("{"):
            code_part = _code(lines[i])
            comment = lines[i][len(code_part) :]
            lines[i] = _rewrite_flow(code_part, options, where, result.changes) + comment
            if not lines[i].endswith("\n"):
                lines[i] += "\n"
            result.changes.append(f"{where}: added " + ", ".join(f"{k}: {v}" for k, v in options.items()))
            result.converted += 1
            continue
        if rest:
            raise ConversionError(f"{where}: cannot rewrite arguments given as {rest!r}; use a block mapping")
        for first, stop, key in children:
            if key in SPIKING_ARGS:
                continue
            for j in range(first, stop):
                if _is_content(lines[j]):
                    pad = _indent(lines[j])
                    lines[j] = lines[j][:pad] + "# " + lines[j][pad:]
            lines[first] = lines[first].rstrip("\n") + "  # convert_hparams: not a SpikingRNN option\n"
            text_of = lines[first].strip()[2:].split("  # convert_hparams")[0]
            result.changes.append(
                f"line {first + 1} ({_owner(lines, i)}): commented out '{text_of}' (not a SpikingRNN option)"
            )
        present = {key for _, _, key in children}
        added = [(k, v) for k, v in options.items() if k not in present]
        inserts.setdefault(end, []).extend(f"{indent}{k}: {v}\n" for k, v in added)
        if added:
            result.changes.append(f"{where}: added " + ", ".join(f"{k}: {v}" for k, v in added))
        result.converted += 1
    if result.converted == 0:
        if SPIKING_CLASS in text:
            raise ConversionError(f"already converted: it uses {SPIKING_CLASS} and no stock RNN encoder")
        raise ConversionError(
            "no SpeechBrain RNN encoder found (looked for !new:/!name: speechbrain.nnet.RNN."
            + "/".join(STOCK_RNNS)
            + " and speechbrain.lobes.models.CRDNN.CRDNN)"
        )
    out = []
    for j, line in enumerate(lines):
        out.extend(inserts.get(j, []))
        out.append(line)
    out.extend(inserts.get(len(lines), []))
    result.text = _rewrite_run_settings("".join(out), options, result.changes)
    return result


TOP_LEVEL = re.compile(
    r"^(?P<key>model_name|output_folder|encoder_lengths):(?P<space>[ \t]*)"
    r"(?P<value>[^#\n]*?)(?P<rest>[ \t]*(#.*)?)$",
    re.M,
)


def _rewrite_run_settings(text: str, options: Options, changes: list[str]) -> str:
    """The converted model's own folder (``model_name``, else ``output_folder``) and lengths.

    Example
    -------
    >>> text = "model_name: lstm\\nencoder_lengths: False  # baselines\\n"
    >>> print(_rewrite_run_settings(text, Options(), []), end="")
    model_name: lstm_snn_v2
    encoder_lengths: True  # baselines
    """
    suffix = f"_snn_{options.neuron}"
    found = {m["key"] for m in TOP_LEVEL.finditer(text)}
    renamed = "model_name" if "model_name" in found else "output_folder"

    def rewrite(match: re.Match) -> str:
        key, value = match["key"], match["value"]
        if key == "encoder_lengths" and value.strip() == "False":
            new = "True"
            why = "SpikingRNN takes the lengths: padded frames never reach its state or statistics"
        elif key == renamed and value.strip().startswith("!") and not value.startswith("!ref "):
            line = text.count("\n", 0, match.start()) + 1
            changes.append(f"line {line} ({key}): left {value.strip()} alone; give the run its own folder")
            return match[0]
        elif key == renamed and value.strip():
            new = value.rstrip() + suffix
            why = "the converted model trains into a folder of its own"
        else:
            return match[0]
        line = text.count("\n", 0, match.start()) + 1
        changes.append(f"line {line} ({key}): {value.strip()} -> {new} ({why})")
        return f"{key}:{match['space']}{new}{match['rest']}"

    return TOP_LEVEL.sub(rewrite, text)


def check_yaml(text: str) -> None:
    """Parses ``text`` as YAML (tags kept, nothing built); raises ``ConversionError`` if it is invalid.

    Example
    -------
    >>> check_yaml("enc: !new:snn_asr.SpikingRNN\\n    hidden_size: 4\\n")
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        YAML(typ="rt").load(text)
    except YAMLError as err:
        raise ConversionError(f"the converted YAML does not parse: {err}") from err


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status.

    Example
    -------
    >>> main(["/no/such/hparams.yaml", "-o", "/tmp/out.yaml"])
    1
    """
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("hparams", type=Path, help="SpeechBrain hparams YAML to convert")
    parser.add_argument("-o", "--output", required=True, help="where to write the new YAML ('-' for stdout)")
    parser.add_argument("--neuron", default="v2", choices=["v2", "v1", "lif"])
    parser.add_argument("--bits", type=int, default=6)
    parser.add_argument("--threshold", type=int, default=3)
    parser.add_argument("--input-quant-bits", type=int, default=None)
    parser.add_argument(
        "--keys", nargs="+", default=None, help="only convert RNNs under these top-level keys"
    )
    args = parser.parse_args(argv)
    report = sys.stderr if args.output == "-" else sys.stdout
    if not args.hparams.is_file():
        print(f"error: {args.hparams}: no such hparams file", file=sys.stderr)
        return 1
    if args.output != "-" and Path(args.output).resolve() == args.hparams.resolve():
        print(
            f"error: -o {args.output} is the input file; write the converted YAML to another path",
            file=sys.stderr,
        )
        return 1
    options = Options(args.neuron, args.bits, args.threshold, args.input_quant_bits)
    try:
        result = convert_text(args.hparams.read_text(), options, args.keys)
        check_yaml(result.text)
    except ConversionError as err:
        print(f"error: {args.hparams}: {err}", file=sys.stderr)
        return 1
    if args.output == "-":
        sys.stdout.write(result.text)
    else:
        Path(args.output).write_text(result.text)
    print(
        f"{args.hparams}: converted {result.converted} RNN encoder(s) to {SPIKING_CLASS} -> {args.output}",
        file=report,
    )
    for change in result.changes:
        print(f"  {change}", file=report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
