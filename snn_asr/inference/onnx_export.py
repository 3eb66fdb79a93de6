"""ONNX export of a model folder: normalisation, spiking encoder and CTC head as one graph.

The graph (``model.onnx``) maps Fbank features (batch, time, n_mels) and the layers' state
(layers, 3, batch, hidden: current, voltage, last spikes) to CTC log-probabilities (batch, time,
vocab), the state after the last frame and the last layer's spikes (batch, time, hidden: for
parity checks and spike counts). The time axis is dynamic: each layer's frames run
in an ONNX ``Scan`` (the encoder's ``"scan"`` recurrence, :mod:`snn_asr.fastpaths.scan`, which
runs the reference's own step), so one graph serves whole files and streaming chunks. The
frozen global normalisation is in the graph; the Fbank is not (its STFT and Mel filters stay
SpeechBrain's): the folder's ``hyperparams.yaml`` builds the same ``Fbank`` as the torch
folder's, and :class:`~snn_asr.inference.SpikingASR` loads the folder with onnxruntime behind it
(:class:`~snn_asr.inference.onnx_runtime.OnnxEncoder`).

The folder also holds what sherpa-onnx's CTC models carry: metadata ``vocab_size``,
``subsampling_factor``, ``normalize_type`` and a ``tokens.txt`` whose blank is ``<blk>``.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import ruamel.yaml
import torch
from torch import nn

from snn_asr.encoders.spiking_rnn import SpikingRNN
from snn_asr.inference.asr import CHAIN_YAML, LM_FILE, RNNLM_FILE, RNNLM_KEYS, SpikingASR
from snn_asr.inference.onnx_runtime import (
    FEATURES,
    LOG_PROBS,
    ONNX_FILE,
    SPIKES,
    STATE,
    STATE_OUT,
    OnnxEncoder,
)

__all__ = ["ONNX_FILE", "OPSET", "ExportedChain", "export_onnx", "quantize_int8"]

OPSET = 18
COPIED = ("sample_rate", "blank_index", "beam_size", "lm_weight", "lm_bonus", "compute_features",
          "audio_normalizer", "tokenizer", "decoding_function")  # fmt: skip
"""Entries of the torch folder's YAML the ONNX folder keeps as they are."""

WIRING = f"""
# Normalisation, encoder and CTC head are the ONNX graph: the chain below is Fbank -> model.onnx.
model_folder: .  # SpikingASR.from_hparams sets it to the folder it loads
normalize: !new:torch.nn.Identity
enc: !new:snn_asr.inference.onnx_runtime.OnnxEncoder
    model_file: !ref <model_folder>/{ONNX_FILE}
ctc_lin: !new:torch.nn.Identity
log_softmax: !new:torch.nn.Identity

{CHAIN_YAML}
modules:
    encoder: !ref <encoder>

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        tokenizer: !ref <tokenizer>
"""


class ExportedChain(nn.Module):
    """What ``model.onnx`` computes: ``(feats, state) -> (log_probs, state_out)``.

    Built from a loaded model's parts (``normalize``, ``enc``, ``ctc_lin``, ``log_softmax``),
    sharing their weights; the encoder runs its ``"scan"`` recurrence.

    Example
    -------
    >>> asr = SpikingASR.from_hparams(source="pretrained/snn-digits")
    >>> chain = ExportedChain(asr.parts)
    >>> feats = torch.randn(1, 30, 40)
    >>> log_probs, state, spikes = chain(feats, chain.initial_state(1))
    >>> reference = asr.parts.log_softmax(asr.parts.ctc_lin(asr.parts.enc(asr.parts.normalize(feats))[0]))
    >>> bool(torch.equal(log_probs, reference)), tuple(state.shape)
    (True, (2, 3, 1, 256))
    """

    def __init__(self, parts: nn.Module):
        super().__init__()
        enc = parts.enc
        if not isinstance(enc, SpikingRNN) or enc.bidirectional:
            kind = "a bidirectional SpikingRNN" if isinstance(enc, SpikingRNN) else type(enc).__name__
            raise ValueError(
                f"ONNX export takes a unidirectional SpikingRNN encoder (its state carried from chunk to "
                f"chunk); this model's is {kind}"
            )
        self.normalize, self.enc, self.ctc_lin, self.log_softmax = (
            parts.normalize, enc, parts.ctc_lin, parts.log_softmax
        )  # fmt: skip

    def initial_state(self, batch: int) -> torch.Tensor:
        """All-zero state (layers, 3, batch, hidden)."""
        return torch.zeros(len(self.enc.layers), 3, batch, self.enc.hidden_size)

    def forward(self, feats: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(log_probs (batch, time, vocab), state_out, spikes of the last layer (batch, time, hidden))."""
        implementation, self.enc.implementation = self.enc.implementation, "scan"
        try:
            encoded, final = self.enc(self.normalize(feats), hx=state)
        finally:
            self.enc.implementation = implementation
        return self.log_softmax(self.ctc_lin(encoded)), final, encoded


def _tokens_txt(asr: SpikingASR) -> str:
    """sherpa-onnx's ``tokens.txt``: ``<piece> <id>`` a line, the CTC blank written ``<blk>``."""
    return "".join(
        f"{'<blk>' if i == asr.blank_index else piece} {i}\n" for i, piece in enumerate(asr.vocabulary())
    )


def _onnx_yaml(model_yaml: Path, header: str) -> str:
    """The ONNX folder's ``hyperparams.yaml``: the torch folder's :data:`COPIED` entries, :data:`WIRING`."""
    yaml = ruamel.yaml.YAML()
    source = yaml.load(model_yaml.read_text(encoding="utf-8"))
    kept = ruamel.yaml.comments.CommentedMap((key, source[key]) for key in COPIED if key in source)
    kept.update((key, source[key]) for key in RNNLM_KEYS if "rnnlm" in source and key in source)
    buffer = io.StringIO()
    yaml.dump(kept, buffer)
    rnnlm = "        rnnlm: !ref <rnnlm>\n" if "rnnlm" in source else ""  # a torch LM, as kenlm is C++
    return header + buffer.getvalue() + WIRING + rnnlm


def export_onnx(model_dir: str | Path, out_dir: str | Path, opset: int = OPSET) -> Path:
    """Writes ``out_dir``: ``model.onnx``, ``hyperparams.yaml``, the tokenizer, ``tokens.txt``, the
    n-gram, RNNLM and card where the model folder has them. Returns ``out_dir/model.onnx``.

    Raises a one-line ``ValueError`` for a model it cannot export (not a unidirectional
    ``SpikingRNN``). The export is checked: onnxruntime runs the graph on another length and batch.
    """
    import onnx  # optional: pip install 'snn-asr[onnx]'

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    asr = SpikingASR.from_hparams(source=str(model_dir), local_only=True)
    chain = ExportedChain(asr.parts).eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / ONNX_FILE
    n_mels = asr.parts.compute_features.compute_fbanks.n_mels
    example = (torch.randn(2, 50, n_mels), chain.initial_state(2))  # size 1 would fix the batch axis
    batch, time = torch.export.Dim("batch"), torch.export.Dim("time")
    with torch.no_grad():
        torch.onnx.export(
            chain,
            example,
            str(path),
            input_names=[FEATURES, STATE],
            output_names=[LOG_PROBS, STATE_OUT, SPIKES],
            dynamic_shapes=({0: batch, 1: time}, {2: batch}),
            opset_version=opset,
            dynamo=True,
            external_data=False,  # one file: the weights are small
            verbose=False,
        )
    graph = onnx.load(str(path))
    metadata = {
        "model_type": "snn-asr-ctc",
        "vocab_size": str(len(asr.vocabulary())),
        "subsampling_factor": "1",
        "normalize_type": "",  # the global normalisation is in the graph
        "blank_index": str(asr.blank_index),
        "n_mels": str(n_mels),
        "sample_rate": str(asr.sample_rate),
    }
    onnx.helper.set_model_props(graph, metadata)
    onnx.save(graph, str(path))
    header = (
        f"# snn-asr ONNX export of {model_dir} by tools/export_onnx.py: Fbank here, then {ONNX_FILE}\n"
        "# (normalisation, encoder, CTC head). Load with snn_asr.inference.SpikingASR, or run\n"
        "# snn-asr transcribe --backend onnxruntime.\n\n"
    )
    (out_dir / "hyperparams.yaml").write_text(_onnx_yaml(model_dir / "hyperparams.yaml", header))
    shutil.copyfile(model_dir / "tokenizer.ckpt", out_dir / "tokenizer.ckpt")
    for name in (LM_FILE, RNNLM_FILE, "README.md"):
        if (model_dir / name).is_file():
            shutil.copyfile(model_dir / name, out_dir / name)
    (out_dir / "tokens.txt").write_text(_tokens_txt(asr))
    _check_export(chain, path, n_mels)
    return path


def _check_export(chain: ExportedChain, path: Path, n_mels: int) -> None:
    """Runs the graph in onnxruntime on another length and batch than the export's example, and
    checks its output's shape against torch's (parity itself is tests/test_onnx.py's)."""
    onnx_encoder = OnnxEncoder(path)
    feats = torch.randn(2, 77, n_mels)
    with torch.no_grad():
        expected = chain(feats, chain.initial_state(2))[0]
    got = onnx_encoder(feats)[0]
    if got.shape != expected.shape:
        raise RuntimeError(
            f"the exported graph gives shape {tuple(got.shape)}, torch {tuple(expected.shape)}"
        )


def quantize_int8(out_dir: str | Path, int8_dir: str | Path) -> Path:
    """A copy of ONNX folder ``out_dir`` in ``int8_dir`` with onnxruntime's dynamic int8 quantization
    of the weights (``MatMul``/``Gemm``): activations are quantized per call, spikes stay float."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    out_dir, int8_dir = Path(out_dir), Path(int8_dir)
    shutil.copytree(out_dir, int8_dir, dirs_exist_ok=True)
    root = logging.getLogger()
    level, root.level = root.level, logging.ERROR  # its advice to pre-process goes to the root logger
    try:
        quantize_dynamic(str(out_dir / ONNX_FILE), str(int8_dir / ONNX_FILE), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    return int8_dir / ONNX_FILE
